//! String-level corruptions. Each function returns `None` when it does not apply to its
//! input (nothing to change), so the generator records only corruptions that happened.

use crate::record::{TypoKind, UmlautStyle};
use crate::reference::DOMAIN_TYPOS;
use crate::rng::Rand;

/// `(transliterated, stripped)` spellings of a character with an umlaut or accent.
fn diacritic(c: char) -> Option<(&'static str, &'static str)> {
    Some(match c {
        'ä' => ("ae", "a"),
        'ö' => ("oe", "o"),
        'ü' => ("ue", "u"),
        'Ä' => ("Ae", "A"),
        'Ö' => ("Oe", "O"),
        'Ü' => ("Ue", "U"),
        _ => {
            let s = strip_diacritic(c)?;
            (s, s)
        }
    })
}

/// The base letter of an accented Latin letter (é→e, ç→c, ş→s, ı→i), or `None`.
pub(crate) fn strip_diacritic(c: char) -> Option<&'static str> {
    Some(match c {
        'ä' | 'à' | 'â' | 'á' | 'ã' => "a",
        'Ä' | 'À' | 'Â' | 'Á' | 'Ã' => "A",
        'é' | 'è' | 'ê' | 'ë' => "e",
        'É' | 'È' | 'Ê' | 'Ë' => "E",
        'ï' | 'î' | 'í' | 'ı' => "i",
        'Ï' | 'Î' | 'Í' | 'İ' => "I",
        'ö' | 'ô' | 'ó' | 'ò' => "o",
        'Ö' | 'Ô' | 'Ó' | 'Ò' => "O",
        'ü' | 'û' | 'ú' | 'ù' => "u",
        'Ü' | 'Û' | 'Ú' | 'Ù' => "U",
        'ç' | 'ć' | 'č' => "c",
        'Ç' | 'Ć' | 'Č' => "C",
        'ş' | 'š' => "s",
        'Ş' | 'Š' => "S",
        'ž' => "z",
        'Ž' => "Z",
        'ğ' => "g",
        'Ğ' => "G",
        _ => return None,
    })
}

/// Whether `s` has a character that [`umlauts`] would change.
pub(crate) fn has_diacritics(s: &str) -> bool {
    s.chars().any(|c| diacritic(c).is_some())
}

/// Umlauts and accents written without them: `Müller` → `Mueller` or `Muller`,
/// `MÜLLER` → `MUELLER`, `Léa` → `Lea`.
pub fn umlauts(s: &str, style: UmlautStyle) -> Option<String> {
    if !has_diacritics(s) {
        return None;
    }
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 2);
    for (i, &c) in chars.iter().enumerate() {
        match diacritic(c) {
            Some((translit, stripped)) => {
                let rep = match style {
                    UmlautStyle::Transliterated => translit,
                    UmlautStyle::Stripped => stripped,
                };
                // In capitals, Ü becomes UE, not Ue.
                let neighbour_upper = chars
                    .get(i + 1)
                    .or_else(|| i.checked_sub(1).and_then(|j| chars.get(j)))
                    .is_some_and(|n| n.is_uppercase());
                if c.is_uppercase() && neighbour_upper {
                    out.push_str(&rep.to_uppercase());
                } else {
                    out.push_str(rep);
                }
            }
            None => out.push(c),
        }
    }
    Some(out)
}

/// `ß` written `ss`: `Weiß` → `Weiss`, `Hauptstraße` → `Hauptstrasse`.
pub fn eszett_to_ss(s: &str) -> Option<String> {
    s.contains('ß').then(|| s.replace('ß', "ss"))
}

/// `ss` written `ß`, as a German clerk "corrects" a Swiss spelling: `Bahnhofstrasse` →
/// `Bahnhofstraße`, `Weiss` → `Weiß`, `Gross` → `Groß`. Only where German spelling has a `ß`
/// (after a long vowel or diphthong), so `Kirchgasse` and `Rossi` stay as they are.
pub fn ss_to_eszett(s: &str) -> Option<String> {
    const RULES: &[(&str, &str)] = &[
        ("trass", "traß"),
        ("eiss", "eiß"),
        ("Gross", "Groß"),
        ("gross", "groß"),
    ];
    let mut out = None::<String>;
    for (from, to) in RULES {
        let current = out.as_deref().unwrap_or(s);
        if current.contains(from) {
            out = Some(current.replace(from, to));
        }
    }
    out
}

/// Capitals: `Müller` → `MÜLLER` (`ß` becomes `SS`, as Unicode says).
pub fn upper_case(s: &str) -> Option<String> {
    let u = s.to_uppercase();
    (u != s).then_some(u)
}

/// Small letters: `Hans Müller` → `hans müller`.
pub fn lower_case(s: &str) -> Option<String> {
    let l = s.to_lowercase();
    (l != s).then_some(l)
}

/// Keys next to a key on a German QWERTZ keyboard (letters and the digit row).
pub(crate) fn qwertz_neighbours(c: char) -> &'static str {
    match c {
        'q' => "wa",
        'w' => "qeas",
        'e' => "wrsd",
        'r' => "etdf",
        't' => "rzfg",
        'z' => "tugh",
        'u' => "zihj",
        'i' => "uojk",
        'o' => "ipkl",
        'p' => "oüöl",
        'ü' => "pöä",
        'a' => "qwsy",
        's' => "awedxy",
        'd' => "serfcx",
        'f' => "drtgvc",
        'g' => "ftzhbv",
        'h' => "gzujnb",
        'j' => "huikmn",
        'k' => "jiolm",
        'l' => "kopö",
        'ö' => "lpüä",
        'ä' => "öü",
        'y' => "asx",
        'x' => "ysdc",
        'c' => "xdfv",
        'v' => "cfgb",
        'b' => "vghn",
        'n' => "bhjm",
        'm' => "njk",
        '1' => "2q",
        '2' => "13w",
        '3' => "24e",
        '4' => "35r",
        '5' => "46t",
        '6' => "57z",
        '7' => "68u",
        '8' => "79i",
        '9' => "80o",
        '0' => "9ß",
        _ => "",
    }
}

/// A QWERTZ neighbour of `c` in the same case, or `None` if `c` is not on the letter keys.
fn neighbour(c: char, rng: &mut Rand) -> Option<char> {
    let lower = c.to_lowercase().next()?;
    let ns: Vec<char> = qwertz_neighbours(lower).chars().collect();
    let n = *rng.pick(&ns)?;
    if c.is_uppercase() {
        n.to_uppercase().next()
    } else {
        Some(n)
    }
}

/// A typing error of `kind`. Real typos rarely hit the first letter, so for words of four
/// or more characters the first one is left alone. `None` if the string is too short.
pub fn typo(s: &str, kind: TypoKind, rng: &mut Rand) -> Option<String> {
    let mut chars: Vec<char> = s.chars().collect();
    let start = usize::from(chars.len() >= 4);
    let positions: Vec<usize> = match kind {
        TypoKind::Substitution => (start..chars.len())
            .filter(|&i| {
                chars
                    .get(i)
                    .is_some_and(|&c| !qwertz_neighbours_of(c).is_empty())
            })
            .collect(),
        TypoKind::Transposition => (start..chars.len().saturating_sub(1))
            .filter(|&i| chars.get(i) != chars.get(i + 1))
            .collect(),
        TypoKind::Deletion if chars.len() >= 3 => (start..chars.len()).collect(),
        TypoKind::Deletion => Vec::new(),
        TypoKind::Insertion => (start..chars.len())
            .filter(|&i| chars.get(i).is_some_and(|c| c.is_alphanumeric()))
            .collect(),
    };
    let &i = rng.pick(&positions)?;
    let c = *chars.get(i)?;
    match kind {
        TypoKind::Substitution => {
            let n = neighbour(c, rng)?;
            *chars.get_mut(i)? = n;
        }
        TypoKind::Transposition => chars.swap(i, i + 1),
        TypoKind::Deletion => {
            chars.remove(i);
        }
        TypoKind::Insertion => {
            // Half the time a doubled letter (Mülller), otherwise a neighbouring key.
            let extra = if rng.chance(0.5) {
                c
            } else {
                neighbour(c, rng).unwrap_or(c)
            };
            chars.insert(i + 1, extra);
        }
    }
    let out: String = chars.into_iter().collect();
    (out != s).then_some(out)
}

fn qwertz_neighbours_of(c: char) -> &'static str {
    c.to_lowercase().next().map_or("", qwertz_neighbours)
}

/// Stray spaces: trailing, leading, or doubled inside.
pub fn whitespace(s: &str, rng: &mut Rand) -> String {
    match rng.below(4) {
        0 => format!("{s} "),
        1 => format!(" {s}"),
        2 if s.contains(' ') => s.replacen(' ', "  ", 1),
        _ => format!("{s}  "),
    }
}

/// Street-type words abbreviated: `Bahnhofstraße` → `Bahnhofstr.`, `Berliner Straße` →
/// `Berliner Str.`, `Avenue de la Gare` → `Av. de la Gare`.
pub fn abbreviate_street(s: &str) -> Option<String> {
    const RULES: &[(&str, &str)] = &[
        ("straße", "str."),
        ("strasse", "str."),
        ("Straße", "Str."),
        ("Strasse", "Str."),
        ("Avenue", "Av."),
        ("Chemin", "Ch."),
        ("Route", "Rte"),
        ("Platz", "Pl."),
        ("platz", "pl."),
    ];
    RULES
        .iter()
        .find(|(long, _)| s.contains(long))
        .map(|(long, short)| s.replacen(long, short, 1))
}

/// A typo in the domain of an e-mail address: a known slip (`gmial.com`, `gmx.dee`) or, for
/// other domains, a transposition or doubled letter in the domain name.
pub fn email_domain_typo(email: &str, rng: &mut Rand) -> Option<String> {
    let at = email.rfind('@')?;
    let (local, domain) = (&email[..at], &email[at + 1..]);
    if domain.is_empty() {
        return None;
    }
    let lower = domain.to_ascii_lowercase();
    let new_domain = match DOMAIN_TYPOS.iter().find(|(d, _)| *d == lower) {
        Some((_, typos)) => (*rng.pick(typos)?).to_owned(),
        None => {
            let kind = if rng.chance(0.5) {
                TypoKind::Transposition
            } else {
                TypoKind::Insertion
            };
            typo(domain, kind, rng)?
        }
    };
    (new_domain != domain).then(|| format!("{local}@{new_domain}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umlaut_spellings() {
        use UmlautStyle::{Stripped, Transliterated};
        assert_eq!(
            umlauts("Müller", Transliterated).as_deref(),
            Some("Mueller")
        );
        assert_eq!(umlauts("Müller", Stripped).as_deref(), Some("Muller"));
        assert_eq!(
            umlauts("MÜLLER", Transliterated).as_deref(),
            Some("MUELLER")
        );
        assert_eq!(
            umlauts("Öztürk", Transliterated).as_deref(),
            Some("Oeztuerk")
        );
        assert_eq!(umlauts("Jäger", Transliterated).as_deref(), Some("Jaeger"));
        assert_eq!(umlauts("Zürich", Stripped).as_deref(), Some("Zurich"));
        assert_eq!(umlauts("Léa", Transliterated).as_deref(), Some("Lea"));
        assert_eq!(umlauts("Chloé", Stripped).as_deref(), Some("Chloe"));
        assert_eq!(umlauts("Zoë", Transliterated).as_deref(), Some("Zoe"));
        assert_eq!(umlauts("Genève", Transliterated).as_deref(), Some("Geneve"));
        assert_eq!(umlauts("Ä", Transliterated).as_deref(), Some("Ae"));
        assert_eq!(umlauts("Meier", Transliterated), None);
    }

    #[test]
    fn eszett_both_ways() {
        assert_eq!(eszett_to_ss("Weiß").as_deref(), Some("Weiss"));
        assert_eq!(eszett_to_ss("Hauptstraße").as_deref(), Some("Hauptstrasse"));
        assert_eq!(eszett_to_ss("Weiss"), None);
        assert_eq!(
            ss_to_eszett("Bahnhofstrasse").as_deref(),
            Some("Bahnhofstraße")
        );
        assert_eq!(ss_to_eszett("Gross").as_deref(), Some("Groß"));
        assert_eq!(ss_to_eszett("Groß"), None);
        assert_eq!(ss_to_eszett("Strasser").as_deref(), Some("Straßer"));
        assert_eq!(ss_to_eszett("Kirchgasse"), None);
        assert_eq!(ss_to_eszett("Rossi"), None);
    }

    #[test]
    fn case_changes() {
        assert_eq!(upper_case("Müller").as_deref(), Some("MÜLLER"));
        assert_eq!(upper_case("Groß").as_deref(), Some("GROSS"));
        assert_eq!(upper_case("MÜLLER"), None);
        assert_eq!(lower_case("Hans Müller").as_deref(), Some("hans müller"));
        assert_eq!(lower_case("hans"), None);
    }

    /// Levenshtein distance, to check a typo is exactly one edit (or one swap).
    fn edit_distance(a: &str, b: &str) -> usize {
        let a: Vec<char> = a.chars().collect();
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.iter().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                let sub = prev[j] + usize::from(ca != cb);
                cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
            }
            prev = cur;
        }
        prev[b.len()]
    }

    #[test]
    fn substitution_uses_a_qwertz_neighbour() {
        for seed in 0..50 {
            let mut rng = Rand::for_test(seed);
            let out = typo("Schneider", TypoKind::Substitution, &mut rng).expect("applies");
            assert_eq!(out.chars().count(), 9);
            assert!(out.starts_with('S'), "{out}");
            let (orig, new): (Vec<char>, Vec<char>) =
                ("Schneider".chars().collect(), out.chars().collect());
            let diffs: Vec<usize> = (0..9).filter(|&i| orig[i] != new[i]).collect();
            assert_eq!(diffs.len(), 1, "{out}");
            let i = diffs[0];
            assert!(
                qwertz_neighbours(orig[i]).contains(new[i]),
                "{} -> {}",
                orig[i],
                new[i]
            );
        }
        // y and z are swapped on QWERTZ compared with QWERTY.
        assert!(qwertz_neighbours('t').contains('z'));
        assert!(qwertz_neighbours('a').contains('y'));
    }

    #[test]
    fn transposition_deletion_insertion() {
        for seed in 0..50 {
            let mut rng = Rand::for_test(seed);
            let t = typo("Keller", TypoKind::Transposition, &mut rng).expect("applies");
            let mut a: Vec<char> = "Keller".chars().collect();
            let mut b: Vec<char> = t.chars().collect();
            assert_ne!(a, b);
            a.sort_unstable();
            b.sort_unstable();
            assert_eq!(a, b, "{t} is a permutation");
            assert_eq!(edit_distance("Keller", &t), 2, "{t} swaps two neighbours");

            let d = typo("Huber", TypoKind::Deletion, &mut rng).expect("applies");
            assert_eq!(d.chars().count(), 4);
            assert_eq!(edit_distance("Huber", &d), 1);

            let i = typo("Graf", TypoKind::Insertion, &mut rng).expect("applies");
            assert_eq!(i.chars().count(), 5);
            assert_eq!(edit_distance("Graf", &i), 1);
        }
    }

    #[test]
    fn typo_on_tiny_strings_does_not_panic() {
        let mut rng = Rand::for_test(1);
        for s in ["", "a", "ab", "--", "ß"] {
            for kind in [
                TypoKind::Substitution,
                TypoKind::Transposition,
                TypoKind::Deletion,
                TypoKind::Insertion,
            ] {
                if let Some(out) = typo(s, kind, &mut rng) {
                    assert_ne!(out, s);
                }
            }
        }
        assert_eq!(typo("ab", TypoKind::Deletion, &mut rng), None);
        assert_eq!(typo("aa", TypoKind::Transposition, &mut rng), None);
    }

    #[test]
    fn street_abbreviations() {
        assert_eq!(
            abbreviate_street("Bahnhofstraße").as_deref(),
            Some("Bahnhofstr.")
        );
        assert_eq!(
            abbreviate_street("Bahnhofstrasse").as_deref(),
            Some("Bahnhofstr.")
        );
        assert_eq!(
            abbreviate_street("Berliner Straße").as_deref(),
            Some("Berliner Str.")
        );
        assert_eq!(
            abbreviate_street("Avenue de la Gare").as_deref(),
            Some("Av. de la Gare")
        );
        assert_eq!(abbreviate_street("Rosenweg"), None);
    }

    #[test]
    fn email_domain_typos() {
        let mut rng = Rand::for_test(4);
        for _ in 0..20 {
            let out = email_domain_typo("hans.mueller@gmail.com", &mut rng).expect("applies");
            let typos = DOMAIN_TYPOS
                .iter()
                .find(|(d, _)| *d == "gmail.com")
                .map(|(_, t)| *t);
            let domain = out.strip_prefix("hans.mueller@").expect("local part kept");
            assert!(typos.is_some_and(|t| t.contains(&domain)), "{out}");
            let other = email_domain_typo("a@posteo.de", &mut rng).expect("applies");
            assert_ne!(other, "a@posteo.de");
            assert!(other.starts_with("a@"));
        }
        assert_eq!(email_domain_typo("no-at-sign", &mut rng), None);
        assert_eq!(email_domain_typo("x@", &mut rng), None);
    }

    #[test]
    fn whitespace_adds_spaces_only() {
        let mut rng = Rand::for_test(9);
        for _ in 0..20 {
            let out = whitespace("Hans Peter", &mut rng);
            assert_ne!(out, "Hans Peter");
            assert_eq!(
                out.split_whitespace().collect::<Vec<_>>(),
                ["Hans", "Peter"]
            );
        }
    }
}
