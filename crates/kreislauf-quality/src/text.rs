//! Text helpers shared by the field checkers: cleaning, case repair and folding for matching keys.

use unicode_normalization::{char::is_combining_mark, UnicodeNormalization};

/// NFC, trimmed, every run of whitespace collapsed to one space.
pub(crate) fn clean(raw: &str) -> String {
    let nfc: String = raw.nfc().collect();
    nfc.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The letter case of a text, ignoring `ß` (it has no customary upper-case form, so `GROßMANN`
/// counts as all upper case).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Case {
    Upper,
    Lower,
    Mixed,
    Uncased,
}

pub(crate) fn case_of(s: &str) -> Case {
    let (mut upper, mut lower) = (false, false);
    for c in s.chars().filter(|c| *c != 'ß') {
        if c.is_uppercase() {
            upper = true;
        } else if c.is_lowercase() {
            lower = true;
        }
    }
    match (upper, lower) {
        (true, false) => Case::Upper,
        (false, true) => Case::Lower,
        (true, true) => Case::Mixed,
        (false, false) => Case::Uncased,
    }
}

/// Words that stay lower case inside a multi-word name, unless they come first or last.
pub(crate) struct Particles {
    /// Lower case wherever they stand between two words (`von`, `van`, `de`, …).
    pub primary: &'static [&'static str],
    /// Lower case only right after another particle (`der` in `van der`, `und` in `von und zu`).
    pub secondary: &'static [&'static str],
}

/// Re-capitalises a cleaned, single-spaced text: every word capitalised (also after a hyphen,
/// a dot, and after `O'`/`D'`-style prefixes; `Mc` keeps its capital), particles lower case.
/// `ß` is never upper-cased.
pub(crate) fn recase(s: &str, particles: &Particles) -> String {
    let tokens: Vec<&str> = s.split(' ').collect();
    let last = tokens.len().saturating_sub(1);
    let mut out = String::with_capacity(s.len());
    let mut previous_particle = false;
    for (i, token) in tokens.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let lower = token.to_lowercase();
        let particle = i > 0
            && i < last
            && (particles.primary.contains(&lower.as_str())
                || (previous_particle && particles.secondary.contains(&lower.as_str())));
        if particle {
            out.push_str(&lower);
        } else {
            out.push_str(&capitalise(&lower));
        }
        previous_particle = particle;
    }
    out.nfc().collect()
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '’' | 'ʼ' | '`' | '´')
}

/// Upper-cases the first letter of each segment of a lower-case word.
fn capitalise(word: &str) -> String {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::with_capacity(word.len());
    let mut start = true;
    let mut segment_letters = 0usize;
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += 1;
        if c.is_alphabetic() {
            if start {
                start = false;
                push_upper(&mut out, c);
                let mc = segment_letters == 0
                    && c == 'm'
                    && chars.get(i) == Some(&'c')
                    && chars.get(i + 1).is_some_and(|n| n.is_alphabetic());
                if mc {
                    out.push('c');
                    i += 1;
                    start = true;
                    segment_letters = 2;
                    continue;
                }
            } else {
                out.push(c);
            }
            segment_letters += 1;
        } else {
            out.push(c);
            if matches!(c, '-' | '.' | '/' | '(') {
                start = true;
                segment_letters = 0;
            } else if is_apostrophe(c) {
                start = segment_letters == 1;
                segment_letters = 0;
            }
        }
    }
    out
}

/// Upper-cases one character, unless its upper case is more than one character (`ß` → `SS`,
/// `ŉ` → `ʼN`): such letters stay as they are, so the result re-cases to itself.
fn push_upper(out: &mut String, c: char) {
    let mut upper = c.to_uppercase();
    match (upper.next(), upper.next()) {
        (Some(u), None) => out.push(u),
        _ => out.push(c),
    }
}

/// Lower case, German transliteration (`ä → ae`, `ö → oe`, `ü → ue`, `ß → ss`, also `æ`, `œ`, `ø`),
/// then accents stripped (`é → e`). For matching keys, never for display.
pub(crate) fn fold(s: &str) -> String {
    let lower = s.nfc().collect::<String>().to_lowercase();
    let mut expanded = String::with_capacity(lower.len() + 4);
    for c in lower.chars() {
        match c {
            'ä' | 'æ' => expanded.push_str("ae"),
            'ö' | 'œ' | 'ø' => expanded.push_str("oe"),
            'ü' => expanded.push_str("ue"),
            'ß' => expanded.push_str("ss"),
            'ł' => expanded.push('l'),
            'đ' | 'ð' => expanded.push('d'),
            'þ' => expanded.push_str("th"),
            'ı' => expanded.push('i'),
            _ => expanded.push(c),
        }
    }
    expanded.nfd().filter(|c| !is_combining_mark(*c)).collect()
}

/// [`fold`], apostrophes dropped, any other non-alphanumeric character a word break, words
/// single-spaced. `None` when nothing is left, so blank values never match each other.
pub(crate) fn key_words(s: &str) -> Option<String> {
    let folded: String = fold(s)
        .chars()
        .filter(|c| !is_apostrophe(*c))
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    let key = folded.split_whitespace().collect::<Vec<_>>().join(" ");
    (!key.is_empty()).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Particles = Particles {
        primary: &[],
        secondary: &[],
    };

    #[test]
    fn cleans_whitespace_and_composes() {
        assert_eq!(clean("  Hans \t\n Peter  "), "Hans Peter");
        assert_eq!(clean("Mu\u{308}ller"), "Müller");
    }

    #[test]
    fn detects_case_ignoring_sharp_s() {
        assert_eq!(case_of("GROßMANN"), Case::Upper);
        assert_eq!(case_of("großmann"), Case::Lower);
        assert_eq!(case_of("McDonald"), Case::Mixed);
        assert_eq!(case_of("12 -"), Case::Uncased);
    }

    #[test]
    fn capitalises_segments() {
        assert_eq!(recase("hans-peter", &NONE), "Hans-Peter");
        assert_eq!(recase("o'brien", &NONE), "O'Brien");
        assert_eq!(recase("mcdonald", &NONE), "McDonald");
        assert_eq!(recase("großmann", &NONE), "Großmann");
        assert_eq!(recase("ß", &NONE), "ß");
        assert_eq!(recase("j.r.", &NONE), "J.R.");
    }

    #[test]
    fn folds_for_keys() {
        assert_eq!(fold("Müller"), "mueller");
        assert_eq!(fold("STRAẞE"), "strasse");
        assert_eq!(fold("Zoë Élodie"), "zoe elodie");
        assert_eq!(key_words("O'Brien-Smith"), Some("obrien smith".to_owned()));
        assert_eq!(key_words(" - "), None);
    }
}
