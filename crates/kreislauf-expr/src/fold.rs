//! Case- and accent-insensitive string folding for `ignore_case` comparisons.
//!
//! German umlauts have two accepted spellings ("Zürich" and "Zuerich"), and customers often type
//! neither ("Zurich"). A folded comparison therefore succeeds if either of two folds agree:
//! * *plain*: lower-case with diacritics stripped (`Zürich` → `zurich`, `Crème` → `creme`, `ß` → `ss`);
//! * *transliterated*: lower-case with `ä/ö/ü` → `ae/oe/ue` first (`Zürich` → `zuerich`).
//!
//! So `Zürich` matches `ZURICH`, `zurich` and `Zuerich`. (`Zuerich` and `Zurich` do not match each
//! other: neither fold maps one onto the other.)

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Both folds of one string, compared pairwise (plain with plain, transliterated with transliterated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folded {
    pub plain: String,
    pub translit: String,
}

impl Folded {
    pub fn new(s: &str) -> Self {
        if s.is_ascii() {
            let lower = s.to_ascii_lowercase();
            return Self {
                translit: lower.clone(),
                plain: lower,
            };
        }
        Self {
            plain: fold_plain(s),
            translit: fold_translit(s),
        }
    }
}

/// Lower-case, diacritics stripped, a few ligatures and special letters spelt out.
pub fn fold_plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.nfkd() {
        if is_combining_mark(c) {
            continue;
        }
        push_lower_spelt(&mut out, c);
    }
    out
}

/// Like [`fold_plain`] but German umlauts become `ae`, `oe`, `ue` first.
pub fn fold_translit(s: &str) -> String {
    let mut umlauts_spelt = String::with_capacity(s.len() + 4);
    for c in s.nfc() {
        match c {
            'ä' | 'Ä' => umlauts_spelt.push_str("ae"),
            'ö' | 'Ö' => umlauts_spelt.push_str("oe"),
            'ü' | 'Ü' => umlauts_spelt.push_str("ue"),
            other => umlauts_spelt.push(other),
        }
    }
    fold_plain(&umlauts_spelt)
}

fn push_lower_spelt(out: &mut String, c: char) {
    match c {
        'ß' | 'ẞ' => out.push_str("ss"),
        'æ' | 'Æ' => out.push_str("ae"),
        'œ' | 'Œ' => out.push_str("oe"),
        'ø' | 'Ø' => out.push('o'),
        'ł' | 'Ł' => out.push('l'),
        'đ' | 'Đ' => out.push('d'),
        other => out.extend(other.to_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(a: &str, b: &str) -> bool {
        let (a, b) = (Folded::new(a), Folded::new(b));
        a.plain == b.plain || a.translit == b.translit
    }

    #[test]
    fn umlaut_spellings() {
        assert!(eq("Zürich", "ZURICH"));
        assert!(eq("Zürich", "zuerich"));
        assert!(eq("Zu\u{308}rich", "Zürich"), "decomposed umlaut");
        assert!(eq("Straße", "STRASSE"));
        assert!(eq("Crème Brûlée", "creme brulee"));
        assert!(!eq("Zürich", "Bern"));
        assert!(!eq("Zuerich", "Zurich"));
    }
}
