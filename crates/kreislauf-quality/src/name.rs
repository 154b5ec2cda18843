//! Personal names and salutations: whitespace and Unicode clean-up, case repair for names typed
//! in all capitals or all lower case, placeholder detection, and the keys record linkage needs.
//!
//! Why: `MÜLLER`, ` müller ` and `Müller` are the same name, but `McDonald` and `DiCaprio` must
//! keep their capitals, so only all-upper or all-lower input is re-cased (`LUDWIG VAN BEETHOVEN`
//! → `Ludwig van Beethoven`, `GROßMANN` → `Großmann`; `ß` is never turned into `SS`).
//! Duplicate detection compares [`matching_key`] (`Müller` → `mueller`) and
//! [`koelner_phonetik`] (Meier, Mayer, Maier, Meyer → `67`).
//!
//! The salutation is read from what the person chose; gender is never guessed from a first
//! name.

use rphonetic::{Cologne, Encoder};
use serde::{Deserialize, Serialize};
use unicode_normalization::char::is_combining_mark;

use crate::text::{case_of, clean, fold, key_words, recase, Case, Particles};
use crate::FieldOutcome;

const MAX_CHARS: usize = 200;

/// Name particles kept lower case between two words when a name is re-cased.
const PARTICLES: Particles = Particles {
    primary: &[
        "von", "vom", "van", "zu", "zum", "zur", "de", "di", "da", "del", "della", "dei", "degli",
        "des", "du", "do", "dos", "das", "le", "la", "ten", "ter", "te",
    ],
    secondary: &["der", "den", "dem", "und", "los", "las"],
};

/// Whole names (as matching keys) that are test data or placeholders, not people.
const PLACEHOLDERS: &[&str] = &[
    "test",
    "tester",
    "testtest",
    "test test",
    "x",
    "xx",
    "xxx",
    "asdf",
    "qwertz",
    "qwerty",
    "dummy",
    "muster",
    "max muster",
    "mustermann",
    "musterfrau",
    "max mustermann",
    "erika mustermann",
    "hans muster",
    "john doe",
    "jane doe",
    "foo",
    "bar",
    "foobar",
    "unknown",
    "unbekannt",
    "keine angabe",
    "none",
    "null",
    "n a",
    "nn",
    "name",
    "vorname",
    "nachname",
    "first name",
    "last name",
    "firstname",
    "lastname",
    "kunde",
    "customer",
];

/// Words that make any name a placeholder (`Hans Test`, `Erika Musterfrau`).
const PLACEHOLDER_WORDS: &[&str] = &[
    "test",
    "xxx",
    "asdf",
    "qwertz",
    "qwerty",
    "dummy",
    "mustermann",
    "musterfrau",
];

/// Checks and normalises a first name, last name or full name.
///
/// Details: `matching_key` and `koelner_phonetik` (see [`matching_key`], [`koelner_phonetik`]).
pub fn normalise(raw: &str) -> FieldOutcome {
    let cleaned = clean(raw);
    if cleaned.is_empty() {
        return FieldOutcome::blank(raw);
    }
    if cleaned.chars().count() > MAX_CHARS {
        return FieldOutcome::invalid(raw, "longer than 200 characters");
    }
    if cleaned.chars().any(char::is_control) {
        return FieldOutcome::invalid(raw, "contains control characters");
    }
    if !cleaned.chars().any(char::is_alphabetic) {
        return FieldOutcome::invalid(raw, "contains no letters");
    }
    let value = match case_of(&cleaned) {
        Case::Upper | Case::Lower => recase(&cleaned, &PARTICLES),
        Case::Mixed | Case::Uncased => cleaned,
    };
    let key = matching_key(&value);
    let mut outcome = FieldOutcome::usable(raw, value.clone());
    if let Some(key) = &key {
        outcome = outcome.detail("matching_key", key.as_str());
    }
    if let Some(code) = koelner_phonetik(&value) {
        outcome = outcome.detail("koelner_phonetik", code);
    }
    if value.chars().any(char::is_numeric) {
        return outcome.suspect("contains digits");
    }
    if let Some(symbol) = value.chars().find(|c| !is_name_char(*c)) {
        return outcome.suspect(format!("contains the symbol {symbol:?}"));
    }
    if key.as_deref().is_some_and(is_placeholder) {
        return outcome.suspect("looks like a placeholder");
    }
    outcome
}

fn is_name_char(c: char) -> bool {
    c.is_alphabetic()
        || is_combining_mark(c)
        || matches!(c, ' ' | '-' | '.' | ',' | '\'' | '’' | 'ʼ' | '‐')
}

fn is_placeholder(key: &str) -> bool {
    let compact: String = key.chars().filter(|c| *c != ' ').collect();
    let mut chars = compact.chars();
    let repeated = chars
        .next()
        .is_some_and(|first| compact.chars().count() >= 3 && chars.all(|c| c == first));
    repeated
        || PLACEHOLDERS.contains(&key)
        || key.split(' ').any(|word| PLACEHOLDER_WORDS.contains(&word))
}

/// The key duplicate detection compares names by: lower case, umlauts and `ß` transliterated
/// (`ä → ae`, `ß → ss`), accents stripped (`é → e`), apostrophes dropped, hyphens and other
/// punctuation as word breaks. `None` for a name without letters or digits, so blank names
/// never match each other.
///
/// `Müller`, `MUELLER` and `müller` all give `mueller`; `Hans-Peter` gives `hans peter`.
pub fn matching_key(name: &str) -> Option<String> {
    key_words(name)
}

/// The Kölner Phonetik code of each word of the name, space-separated (`Meier` → `67`,
/// `Schmidt` → `862`, `Hans-Peter Müller` → `068 127 657`). `None` when no word has a code.
pub fn koelner_phonetik(name: &str) -> Option<String> {
    let key = key_words(name)?;
    let codes: Vec<String> = key
        .split(' ')
        .map(|word| Cologne.encode(word))
        .filter(|code| !code.is_empty())
        .collect();
    (!codes.is_empty()).then(|| codes.join(" "))
}

/// How a person wants to be addressed, as they chose it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Salutation {
    /// Herr, Mr, Monsieur, Signor.
    Mr,
    /// Frau, Mrs, Ms, Miss, Madame, Signora.
    Ms,
    /// Divers, Mx: address without gender.
    Neutral,
}

/// Reads a salutation (`Herr`, `Frau`, `Hr.`, `Fr.`, `Mr`, `Mrs`, `Ms`, `Mx`, `Madame`,
/// `Monsieur`, `Divers`, …, any case; academic titles such as `Dr.` before it are skipped).
/// `None` when there is none or it is ambiguous (`Herr/Frau`).
pub fn parse_salutation(raw: &str) -> Option<Salutation> {
    const TITLES: &[&str] = &[
        "dr", "prof", "dipl", "ing", "mag", "med", "phil", "lic", "iur",
    ];
    for token in raw.split_whitespace() {
        let folded = fold(token);
        let word = folded.trim_end_matches(['.', ',', ':']);
        if TITLES.contains(&word) {
            continue;
        }
        return match word {
            "herr" | "herrn" | "hr" | "mr" | "mister" | "monsieur" | "signor" | "signore"
            | "sig" | "sr" | "senor" => Some(Salutation::Mr),
            "m" if folded.ends_with('.') => Some(Salutation::Mr),
            "frau" | "fr" | "mrs" | "ms" | "miss" | "madame" | "mme" | "mademoiselle" | "mlle"
            | "signora" | "signorina" | "sig.ra" | "sra" | "senora" => Some(Salutation::Ms),
            "divers" | "mx" | "neutral" => Some(Salutation::Neutral),
            _ => None,
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FieldStatus;

    fn check(input: &str, expected: &str) {
        let outcome = normalise(input);
        assert_eq!(
            outcome.value.as_deref(),
            Some(expected),
            "{input:?}: {outcome:?}"
        );
    }

    fn check_suspicious(input: &str, reason: &str) {
        assert_eq!(normalise(input).status.reason(), Some(reason), "{input:?}");
    }

    #[test]
    fn recases_all_upper_and_all_lower() {
        check("MÜLLER", "Müller");
        check("müller", "Müller");
        check("hans-peter", "Hans-Peter");
        check("HANS-PETER", "Hans-Peter");
        check("o'brien", "O'Brien");
        check("MCDONALD", "McDonald");
        check("GROßMANN", "Großmann");
        check("STRAUẞ", "Strauß");
        check("weiß", "Weiß");
        check("LUDWIG VAN BEETHOVEN", "Ludwig van Beethoven");
        check("johann wolfgang von goethe", "Johann Wolfgang von Goethe");
        check("KARL-THEODOR ZU GUTTENBERG", "Karl-Theodor zu Guttenberg");
        check(
            "ALOIS VON UND ZU LIECHTENSTEIN",
            "Alois von und zu Liechtenstein",
        );
        check("PIETER VAN DER BERG", "Pieter van der Berg");
        check("LEONARDO DA VINCI", "Leonardo da Vinci");
        check("ZOË ÉLODIE", "Zoë Élodie");
        check("VON BÜLOW", "Von Bülow");
    }

    #[test]
    fn keeps_mixed_case_as_given() {
        check("McDonald", "McDonald");
        check("DiCaprio", "DiCaprio");
        check("Ludwig van Beethoven", "Ludwig van Beethoven");
        check("de Vries", "de Vries");
        check("  Anna   Maria\tMüller ", "Anna Maria Müller");
        check("Mu\u{308}ller", "Müller");
        assert_eq!(normalise("Müller").status, FieldStatus::Valid);
        assert_eq!(normalise("MÜLLER").status, FieldStatus::Normalised);
    }

    #[test]
    fn flags_suspicious_names() {
        check_suspicious("Hans2", "contains digits");
        check_suspicious("Hans@Muster", "contains the symbol '@'");
        check_suspicious("Mustermann", "looks like a placeholder");
        check_suspicious("Max Mustermann", "looks like a placeholder");
        check_suspicious("test", "looks like a placeholder");
        check_suspicious("XXX", "looks like a placeholder");
        check_suspicious("asdf", "looks like a placeholder");
        check_suspicious("aaaa", "looks like a placeholder");
        assert_eq!(normalise("Anna").status, FieldStatus::Valid);
        assert_eq!(normalise("Jean-Luc Dupont").status, FieldStatus::Valid);
        assert_eq!(
            normalise("Dr. h.c. Anna O'Neill").status,
            FieldStatus::Valid
        );
    }

    #[test]
    fn rejects_names_without_letters() {
        assert_eq!(
            normalise("1234").status,
            FieldStatus::Invalid {
                reason: "contains no letters".to_owned()
            }
        );
        assert_eq!(normalise(" \t ").status, FieldStatus::Missing);
        assert_eq!(
            normalise(&"a".repeat(201)).status.reason(),
            Some("longer than 200 characters")
        );
    }

    #[test]
    fn builds_matching_keys() {
        let key = |s: &str| matching_key(s);
        assert_eq!(key("Müller"), Some("mueller".to_owned()));
        assert_eq!(key("MUELLER"), Some("mueller".to_owned()));
        assert_eq!(key("Strauß"), Some("strauss".to_owned()));
        assert_eq!(key("René Lévêque"), Some("rene leveque".to_owned()));
        assert_eq!(
            key("Hans-Peter O'Brien"),
            Some("hans peter obrien".to_owned())
        );
        assert_eq!(key("  "), None);
        assert_eq!(key("-"), None);
        assert_eq!(
            normalise("MÜLLER").details["matching_key"],
            serde_json::json!("mueller")
        );
    }

    #[test]
    fn computes_koelner_phonetik() {
        for name in ["Meier", "Mayer", "Maier", "Meyer"] {
            assert_eq!(koelner_phonetik(name), Some("67".to_owned()), "{name}");
        }
        for name in ["Schmidt", "Schmitt", "Schmid"] {
            assert_eq!(koelner_phonetik(name), Some("862".to_owned()), "{name}");
        }
        assert_eq!(koelner_phonetik("Müller"), koelner_phonetik("Mueller"));
        assert_eq!(
            koelner_phonetik("Hans-Peter Müller"),
            Some("068 127 657".to_owned())
        );
        assert_eq!(koelner_phonetik("!!"), None);
    }

    #[test]
    fn parses_salutations() {
        let check = |input: &str, expected: Option<Salutation>| {
            assert_eq!(parse_salutation(input), expected, "{input:?}");
        };
        for input in [
            "Herr", "herr", "HERRN", "Hr.", "Mr", "Mr.", "MONSIEUR", "M.", "Signor",
        ] {
            check(input, Some(Salutation::Mr));
        }
        for input in [
            "Frau", "FRAU", "Fr.", "Mrs", "Ms.", "Miss", "Madame", "Mme", "Signora",
        ] {
            check(input, Some(Salutation::Ms));
        }
        for input in ["Divers", "divers", "Mx", "Mx."] {
            check(input, Some(Salutation::Neutral));
        }
        check("Herr Dr. med.", Some(Salutation::Mr));
        check("Dr. Frau", Some(Salutation::Ms));
        check("Prof. Dr.", None);
        check("Herr/Frau", None);
        check("", None);
        check("Hans", None);
        check("M", None);
        assert_eq!(
            serde_json::to_value(Salutation::Neutral).expect("serialisable"),
            "neutral"
        );
    }
}
