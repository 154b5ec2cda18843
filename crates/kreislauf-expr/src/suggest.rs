//! "Did you mean" suggestions for misspelt operators, fields and names.

/// The closest candidate to `input` if it is plausibly a typo of it.
pub fn did_you_mean<'a, I>(input: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let input_lower = input.to_lowercase();
    // Allow roughly one edit per three characters, at least one.
    let limit = (input.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (levenshtein(&input_lower, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)))
        .map(|(_, c)| c)
}

/// `, did you mean "x"?` or nothing; ready to append to a message.
pub fn hint<'a, I>(input: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    match did_you_mean(input, candidates) {
        Some(s) => format!(", did you mean \"{s}\"?"),
        None => String::new(),
    }
}

/// Edit distance over chars: insertions, deletions, substitutions and transpositions of
/// adjacent characters (optimal string alignment), so "cuont" is one edit from "count".
pub fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("gt", "gt"), 0);
        assert_eq!(levenshtein("cuont", "count"), 1);
    }

    #[test]
    fn suggests_close_names_only() {
        let ops = ["starts_with", "ends_with", "contains", "gt", "ge"];
        assert_eq!(did_you_mean("start_with", ops), Some("starts_with"));
        assert_eq!(did_you_mean("greater", ops), None);
        assert_eq!(did_you_mean("GT", ops), Some("gt"));
    }
}
