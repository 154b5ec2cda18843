//! Postal addresses: street and house number, postal code, country.
//!
//! Why: `Bahnhofstr. 12 a`, `BAHNHOFSTRASSE 12A` and `Bahnhofstrasse 12a` are one address.
//! The street line is split into street and house number (also number-first, `12 Rue du Lac`),
//! `Str.`/`Strasse`/`Straße` are written the way the country writes them (`Straße` in Germany
//! and Austria, `Strasse` in Switzerland and Liechtenstein, which do not use `ß`), and
//! [`street_matching_key`] reduces every variant to one key (`bahnhofstr`).
//!
//! Postal codes are checked against the country's format and range. Liechtenstein's codes
//! (9485–9498) lie inside the Swiss range, so the code alone never decides the country: the
//! country field does.

use serde::{Deserialize, Serialize};

use crate::text::{case_of, clean, fold, recase, Case, Particles};
use crate::{Country, FieldOutcome};

const MAX_CHARS: usize = 200;

/// Street-name words kept lower case between two words (`Unter den Linden`, `Rue du Lac`,
/// `Via della Posta`, `Platz der Republik`).
const STREET_PARTICLES: Particles = Particles {
    primary: &[
        "am", "an", "auf", "bei", "beim", "im", "in", "zum", "zur", "der", "die", "das", "dem",
        "den", "des", "und", "vom", "von", "zu", "ob", "de", "di", "da", "du", "del", "della",
        "dei", "degli", "delle", "la", "le", "les", "sur", "sous", "en", "aux", "au", "et",
    ],
    secondary: &[],
};

/// A street line split into its parts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreetLine {
    /// The street name, as written in the line.
    pub street: String,
    /// The house number without inner spaces, letter suffix lower case (`12a`, `5-7`).
    pub house_number: Option<String>,
    /// True when the number came before the street (`12 Rue du Lac`).
    pub number_first: bool,
}

/// Splits a street line into street and house number: `Bahnhofstrasse 12a`, `Bahnhofstr. 12 a`,
/// `Hauptstraße 5-7`, `Via Cantonale 3`, `12 Rue du Lac`. Nothing is re-cased or expanded.
pub fn split_street(line: &str) -> StreetLine {
    let cleaned = clean(line);
    let cleaned = cleaned.trim_end_matches([',', ';']).trim_end();
    let tokens: Vec<&str> = cleaned.split(' ').filter(|t| !t.is_empty()).collect();
    let has_letter = |parts: &[&str]| parts.iter().any(|t| t.chars().any(char::is_alphabetic));

    // Number last (the DACH form), the number possibly spread over up to four tokens.
    for k in (1..=tokens.len().saturating_sub(1).min(4)).rev() {
        let split = tokens.len() - k;
        let (head, tail) = tokens.split_at(split);
        if let Some(number) = house_number(tail) {
            let street = head.join(" ");
            let street = street.trim_end_matches(',').trim_end();
            if has_letter(head) && !street.is_empty() {
                return StreetLine {
                    street: street.to_owned(),
                    house_number: Some(number),
                    number_first: false,
                };
            }
        }
    }
    // Number glued to the street (`Dorfstr.12`, `Bahnhofstrasse12`).
    if let Some((last, head)) = tokens.split_last() {
        let glued = last
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit())
            .and_then(|(at, _)| {
                let (prefix, rest) = (last.get(..at)?, last.get(at..)?);
                let letters = prefix.chars().filter(|c| c.is_alphabetic()).count();
                let ends_well = prefix.ends_with(|c: char| c.is_alphabetic() || c == '.');
                if letters < 3 || !ends_well {
                    return None;
                }
                house_number(&[rest]).map(|number| (prefix, number))
            });
        if let Some((prefix, number)) = glued {
            let mut street = head.join(" ");
            if !street.is_empty() {
                street.push(' ');
            }
            street.push_str(prefix);
            return StreetLine {
                street,
                house_number: Some(number),
                number_first: false,
            };
        }
    }
    // Number first (French, Belgian, Luxembourgish, English forms).
    if let Some((first, rest)) = tokens.split_first() {
        if let Some(number) = house_number(&[first.trim_end_matches(',')]) {
            if has_letter(rest) {
                return StreetLine {
                    street: rest.join(" "),
                    house_number: Some(number),
                    number_first: true,
                };
            }
        }
    }
    StreetLine {
        street: cleaned.to_owned(),
        house_number: None,
        number_first: false,
    }
}

/// Parses `digits [letter | bis | ter] [(-|/) digits [letter]]` from the joined tokens, e.g.
/// `12`, `12a`, `5-7`, `3/1`, `12b/3`, `1bis`. Tokens may not join two digit runs (`3 4` is
/// not `34`).
fn house_number(tokens: &[&str]) -> Option<String> {
    let digit_boundary = tokens.windows(2).any(|w| match w {
        [a, b] => {
            a.ends_with(|c: char| c.is_ascii_digit()) && b.starts_with(|c: char| c.is_ascii_digit())
        }
        _ => false,
    });
    if digit_boundary {
        return None;
    }
    let joined: String = tokens.concat();
    let mut chars = joined.chars().peekable();
    let mut out = String::new();
    let part = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>, out: &mut String| {
        let mut digits = 0;
        while let Some(c) = chars.next_if(char::is_ascii_digit) {
            out.push(c);
            digits += 1;
        }
        let letters = chars
            .clone()
            .take_while(char::is_ascii_alphabetic)
            .collect::<String>();
        let letters = letters.to_ascii_lowercase();
        let suffix_len = match letters.as_str() {
            "bis" | "ter" => 3,
            _ if !letters.is_empty() => 1,
            _ => 0,
        };
        for _ in 0..suffix_len {
            if let Some(c) = chars.next() {
                out.push(c.to_ascii_lowercase());
            }
        }
        (1..=5).contains(&digits)
    };
    if !part(&mut chars, &mut out) {
        return None;
    }
    if let Some(separator) = chars.next_if(|c| *c == '-' || *c == '/') {
        out.push(separator);
        if !part(&mut chars, &mut out) {
            return None;
        }
    }
    chars.next().is_none().then_some(out)
}

/// Checks and normalises a street line (street and house number) for the given country.
///
/// Details: `street`, `house_number` (or null) and `matching_key` (see [`street_matching_key`]).
pub fn normalise_street(raw: &str, country: Country) -> FieldOutcome {
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
    let line = split_street(&cleaned);
    let street = normalise_street_name(&line.street, country);
    let value = match (&line.house_number, line.number_first) {
        (Some(number), true) => format!("{number} {street}"),
        (Some(number), false) => format!("{street} {number}"),
        (None, _) => street.clone(),
    };
    let outcome = FieldOutcome::usable(raw, value)
        .detail("street", street.as_str())
        .detail("house_number", line.house_number.clone())
        .detail("matching_key", key_of_street(&street));
    match line.house_number {
        Some(_) => outcome,
        None => outcome.suspect("no house number"),
    }
}

/// Writes `Str.`/`Strasse`/`Straße` the country's way, then re-cases an all-upper or
/// all-lower street name.
fn normalise_street_name(street: &str, country: Country) -> String {
    let suffix = if country.writes_sharp_s() {
        "straße"
    } else {
        "strasse"
    };
    let expanded = street
        .split(' ')
        .map(|word| expand_strasse(word, suffix))
        .collect::<Vec<_>>()
        .join(" ");
    match case_of(&expanded) {
        Case::Upper | Case::Lower => recase(&expanded, &STREET_PARTICLES),
        Case::Mixed | Case::Uncased => expanded,
    }
}

/// `Bahnhofstr.` → `Bahnhofstrasse`, `Str.` → `Strasse`, `Karl-Marx-Str.` → `Karl-Marx-Strasse`
/// (with `straße` as the suffix for DE/AT). The suffix keeps the case it was written in
/// (`BAHNHOFSTR.` → `BAHNHOFSTRASSE`, `McStr.` → `McStrasse`), so the case of the whole name is
/// judged afterwards.
fn expand_strasse(word: &str, suffix: &str) -> String {
    // `str` without a dot also only counts ending a compound (`Bahnhofstr`) or alone.
    for variant in ["strasse", "straße", "str.", "str"] {
        let Some((prefix, end)) = split_suffix_ignore_case(word, variant) else {
            continue;
        };
        let standalone = prefix.is_empty() || prefix.ends_with('-');
        let compound = prefix.chars().next_back().is_some_and(char::is_alphabetic);
        if !(standalone || compound) {
            continue;
        }
        let replacement = if case_of(end) == Case::Upper {
            upper_keeping_sharp_s(suffix)
        } else if standalone || end.starts_with(char::is_uppercase) {
            capitalised(suffix)
        } else {
            suffix.to_owned()
        };
        return format!("{prefix}{replacement}");
    }
    word.to_owned()
}

fn upper_keeping_sharp_s(s: &str) -> String {
    s.chars()
        .map(|c| if c == 'ß' { c } else { c.to_ascii_uppercase() })
        .collect()
}

fn capitalised(suffix: &str) -> String {
    let mut chars = suffix.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// Splits off `suffix` (compared case-insensitively): `(prefix, suffix as written)`.
fn split_suffix_ignore_case<'a>(word: &'a str, suffix: &str) -> Option<(&'a str, &'a str)> {
    let split = word.len().checked_sub(suffix.len())?;
    let (prefix, end) = (word.get(..split)?, word.get(split..)?);
    (end.to_lowercase() == suffix).then_some((prefix, end))
}

/// The key duplicate detection compares streets by, without the house number: folded like
/// names (`ß → ss`, umlauts, accents), `Strasse`/`Straße`/`Str.` all as `str`, no spaces or
/// punctuation. `Bahnhofstrasse 12a`, `Bahnhofstr.` and `BAHNHOFSTRASSE` give `bahnhofstr`;
/// `Berliner Straße` gives `berlinerstr`. `None` when nothing is left.
pub fn street_matching_key(line: &str) -> Option<String> {
    key_of_street(&split_street(line).street)
}

fn key_of_street(street: &str) -> Option<String> {
    let key: String = fold(street)
        .replace("strasse", "str")
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect();
    (!key.is_empty()).then_some(key)
}

/// Checks a postal code against the country's format and range, normalising spacing and a
/// leading country prefix (`CH-8000`, `D-80331`, `A-1010`, `FL-9490`).
///
/// Checked: CH (4 digits, 1000–9699), LI (9485–9498), DE (5 digits, 01001–99998),
/// AT (4 digits, 1010–9992), FR and IT (5 digits), BE and LU (4 digits), NL (`1234 AB`).
/// For other countries the code is only cleaned and upper-cased (detail `checked: false`).
pub fn validate_postal_code(raw: &str, country: Country) -> FieldOutcome {
    let cleaned = clean(raw).to_uppercase();
    if cleaned.is_empty() {
        return FieldOutcome::blank(raw);
    }
    let numeric = ["CH", "LI", "DE", "AT", "FR", "IT", "BE", "LU", "NL"].contains(&country.code());
    let stripped = if numeric {
        strip_country_prefix(&cleaned, country)
    } else {
        Ok(cleaned)
    };
    let code = match stripped {
        Ok(code) => code,
        Err(reason) => return FieldOutcome::invalid(raw, reason),
    };
    let cc = country.code();
    let digits_in = |n: usize, low: u32, high: u32| -> Result<String, String> {
        let compact: String = code.chars().filter(|c| *c != ' ').collect();
        if compact.len() != n || !compact.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("postal codes in {cc} have {n} digits"));
        }
        let number: u32 = compact
            .parse()
            .map_err(|_| format!("postal codes in {cc} have {n} digits"))?;
        if !(low..=high).contains(&number) {
            return Err(format!(
                "postal code {compact} is outside the range {low:0n$}–{high} for {cc}"
            ));
        }
        Ok(compact)
    };
    let checked = match cc {
        "CH" => digits_in(4, 1000, 9699),
        "LI" => digits_in(4, 9485, 9498),
        "DE" => digits_in(5, 1001, 99998),
        "AT" => digits_in(4, 1010, 9992),
        "FR" | "IT" => digits_in(5, 0, 99999),
        "BE" => digits_in(4, 1000, 9999),
        "LU" => digits_in(4, 0, 9999),
        "NL" => dutch_postal_code(&code),
        _ => {
            let plausible = code.len() <= 10
                && code
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-');
            return if plausible {
                FieldOutcome::usable(raw, code).detail("checked", false)
            } else {
                FieldOutcome::invalid(raw, "not a postal code")
            };
        }
    };
    let value = match checked {
        Ok(value) => value,
        Err(reason) => return FieldOutcome::invalid(raw, reason),
    };
    let in_liechtenstein = country == Country::CH
        && value
            .parse::<u32>()
            .is_ok_and(|n| (9485..=9498).contains(&n));
    let outcome = FieldOutcome::usable(raw, value.clone()).detail("checked", true);
    if in_liechtenstein {
        let mut outcome = outcome.suspect(format!("postal code {value} is in LI, not CH"));
        outcome.suggestion = Some("LI".to_owned());
        outcome
    } else {
        outcome
    }
}

/// Strips `CH-`, `D-`, `A-`, `FL-`, `DE-`, … when it names the given country.
fn strip_country_prefix(code: &str, country: Country) -> Result<String, String> {
    let letters: String = code.chars().take_while(char::is_ascii_alphabetic).collect();
    let rest = code.get(letters.len()..).unwrap_or_default();
    let starts_with_digit = rest
        .trim_start_matches(['-', ' '])
        .starts_with(|c: char| c.is_ascii_digit());
    if letters.is_empty() || letters.len() > 3 || !starts_with_digit {
        return Ok(code.to_owned());
    }
    let named = match letters.as_str() {
        "D" => Some(Country::DE),
        "A" => Some(Country::AT),
        "FL" => Some(Country::LI),
        "F" => Some(Country::FR),
        "I" => Some(Country::IT),
        "B" => Some(Country::BE),
        "L" => Some(Country::LU),
        other => Country::parse(other),
    };
    match named {
        // Liechtenstein is part of the Swiss postal system: `CH-9490` is a Liechtenstein code.
        Some(named) if named == country || (named == Country::CH && country == Country::LI) => {
            Ok(rest.trim_start_matches(['-', ' ']).to_owned())
        }
        Some(named) => Err(format!(
            "prefix {letters} belongs to {named}, not {country}"
        )),
        None => Err(format!("unknown country prefix {letters}")),
    }
}

/// `1234 AB` (letters optional, not SA, SD or SS).
fn dutch_postal_code(code: &str) -> Result<String, String> {
    let compact: String = code.chars().filter(|c| *c != ' ').collect();
    let digits = compact.get(..4).unwrap_or_default();
    let letters = compact.get(4..).unwrap_or_default();
    let digits_ok =
        digits.len() == 4 && digits.chars().all(|c| c.is_ascii_digit()) && !digits.starts_with('0');
    let letters_ok = letters.is_empty()
        || (letters.len() == 2
            && letters.chars().all(|c| c.is_ascii_uppercase())
            && !["SA", "SD", "SS"].contains(&letters));
    if digits_ok && letters_ok {
        Ok(if letters.is_empty() {
            digits.to_owned()
        } else {
            format!("{digits} {letters}")
        })
    } else {
        Err("postal codes in NL look like 1234 AB".to_owned())
    }
}

/// Checks a country field: ISO codes and names in German, English, French and Italian. The
/// normalised value is the ISO 3166-1 alpha-2 code; unknown countries are invalid.
pub fn validate_country(raw: &str) -> FieldOutcome {
    let cleaned = clean(raw);
    if cleaned.is_empty() {
        return FieldOutcome::blank(raw);
    }
    match Country::parse(&cleaned) {
        Some(country) => FieldOutcome::usable(raw, country.code().to_owned()),
        None => FieldOutcome::invalid(raw, format!("unknown country {cleaned:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FieldStatus;

    fn check_split(input: &str, street: &str, number: Option<&str>) {
        let line = split_street(input);
        assert_eq!(
            (line.street.as_str(), line.house_number.as_deref()),
            (street, number),
            "{input:?}"
        );
    }

    fn check(input: &str, country: Country, expected: &str) {
        let outcome = normalise_street(input, country);
        assert_eq!(
            outcome.value.as_deref(),
            Some(expected),
            "{input:?}: {outcome:?}"
        );
    }

    fn check_postal(input: &str, country: Country, expected: Result<&str, &str>) {
        let outcome = validate_postal_code(input, country);
        match expected {
            Ok(value) => assert_eq!(
                outcome.value.as_deref(),
                Some(value),
                "{input:?}: {outcome:?}"
            ),
            Err(reason) => assert_eq!(outcome.status.reason(), Some(reason), "{input:?}"),
        }
    }

    #[test]
    fn splits_street_and_number() {
        check_split("Bahnhofstrasse 12a", "Bahnhofstrasse", Some("12a"));
        check_split("Bahnhofstr. 12 a", "Bahnhofstr.", Some("12a"));
        check_split("Bahnhofstr. 12 A", "Bahnhofstr.", Some("12a"));
        check_split("Hauptstraße 5-7", "Hauptstraße", Some("5-7"));
        check_split("Hauptstraße 5 - 7", "Hauptstraße", Some("5-7"));
        check_split("Musterweg 3/1", "Musterweg", Some("3/1"));
        check_split("Via Cantonale 3", "Via Cantonale", Some("3"));
        check_split("Bahnhofstrasse, 12", "Bahnhofstrasse", Some("12"));
        check_split(
            "Straße des 17. Juni 135",
            "Straße des 17. Juni",
            Some("135"),
        );
        check_split("12 Rue du Lac", "Rue du Lac", Some("12"));
        check_split("12, rue du Lac", "rue du Lac", Some("12"));
        check_split("Im Grund", "Im Grund", None);
        check_split("Route 123456", "Route 123456", None);
        check_split("Postfach 12 3", "Postfach 12", Some("3"));
        check_split("Dorfstr.12", "Dorfstr.", Some("12"));
        check_split("Bahnhofstrasse12a", "Bahnhofstrasse", Some("12a"));
        check_split("Route A1", "Route A1", None);
        check_split("Avenue de la Gare 1bis", "Avenue de la Gare", Some("1bis"));
        check_split("Avenue de la Gare 1 BIS", "Avenue de la Gare", Some("1bis"));
        check_split("Chemin des Vignes 3 B", "Chemin des Vignes", Some("3b"));
    }

    #[test]
    fn normalises_street_spelling_per_country() {
        check("Bahnhofstr. 12 a", Country::CH, "Bahnhofstrasse 12a");
        check("Bahnhofstr. 12 a", Country::DE, "Bahnhofstraße 12a");
        check("Bahnhofstraße 12a", Country::CH, "Bahnhofstrasse 12a");
        check("Bahnhofstrasse 12a", Country::AT, "Bahnhofstraße 12a");
        check("BAHNHOFSTRASSE 12A", Country::CH, "Bahnhofstrasse 12a");
        check("hauptstr 5-7", Country::DE, "Hauptstraße 5-7");
        check("Berliner Str. 5", Country::DE, "Berliner Straße 5");
        check("Karl-Marx-Str. 1", Country::DE, "Karl-Marx-Straße 1");
        check("Lange Strasse 3", Country::LI, "Lange Strasse 3");
        check("VIA CANTONALE 3", Country::CH, "Via Cantonale 3");
        check("12 RUE DU LAC", Country::CH, "12 Rue du Lac");
        check("UNTER DEN LINDEN 77", Country::DE, "Unter den Linden 77");
        check("st.gallerstrasse 4", Country::CH, "St.Gallerstrasse 4");
        check("Dorfstr.12", Country::CH, "Dorfstrasse 12");
        check("Ä MCSTR.0", Country::CH, "Ä McStrasse 0");
        check("BERLINER STR. 5", Country::DE, "Berliner Straße 5");
        check("KARL-MARX-STR. 1", Country::DE, "Karl-Marx-Straße 1");
        check("üStr. 1", Country::DE, "üStraße 1");
        check("  Seestrasse   4 ", Country::CH, "Seestrasse 4");
        assert_eq!(
            normalise_street("Seestrasse 4", Country::CH).status,
            FieldStatus::Valid
        );
        assert_eq!(
            normalise_street("Im Grund", Country::CH).status.reason(),
            Some("no house number")
        );
        assert_eq!(
            normalise_street("12", Country::CH).status.reason(),
            Some("contains no letters")
        );
        assert_eq!(
            normalise_street(" ", Country::CH).status,
            FieldStatus::Missing
        );
    }

    #[test]
    fn builds_street_keys() {
        for input in [
            "Bahnhofstrasse 12a",
            "Bahnhofstraße",
            "Bahnhofstr. 12 a",
            "BAHNHOFSTR",
            "bahnhof-strasse 3",
        ] {
            assert_eq!(
                street_matching_key(input).as_deref(),
                Some("bahnhofstr"),
                "{input:?}"
            );
        }
        assert_eq!(
            street_matching_key("Berliner Straße 5").as_deref(),
            Some("berlinerstr")
        );
        assert_eq!(
            street_matching_key("Rue du Lac").as_deref(),
            Some("ruedulac")
        );
        assert_eq!(street_matching_key("  "), None);
        let outcome = normalise_street("Bahnhofstr. 12 a", Country::CH);
        assert_eq!(outcome.details["matching_key"], "bahnhofstr");
        assert_eq!(outcome.details["house_number"], "12a");
        assert_eq!(outcome.details["street"], "Bahnhofstrasse");
    }

    #[test]
    fn validates_dach_postal_codes() {
        check_postal("8000", Country::CH, Ok("8000"));
        check_postal("CH-8000", Country::CH, Ok("8000"));
        check_postal("ch 8000", Country::CH, Ok("8000"));
        check_postal(
            "0999",
            Country::CH,
            Err("postal code 0999 is outside the range 1000–9699 for CH"),
        );
        check_postal(
            "9700",
            Country::CH,
            Err("postal code 9700 is outside the range 1000–9699 for CH"),
        );
        check_postal(
            "80000",
            Country::CH,
            Err("postal codes in CH have 4 digits"),
        );
        check_postal("9490", Country::LI, Ok("9490"));
        check_postal("FL-9490", Country::LI, Ok("9490"));
        check_postal("CH-9490", Country::LI, Ok("9490"));
        check_postal(
            "8000",
            Country::LI,
            Err("postal code 8000 is outside the range 9485–9498 for LI"),
        );
        check_postal(
            "9490",
            Country::CH,
            Err("postal code 9490 is in LI, not CH"),
        );
        check_postal("01067", Country::DE, Ok("01067"));
        check_postal("D-80331", Country::DE, Ok("80331"));
        check_postal("80 331", Country::DE, Ok("80331"));
        check_postal("1067", Country::DE, Err("postal codes in DE have 5 digits"));
        check_postal(
            "00999",
            Country::DE,
            Err("postal code 00999 is outside the range 01001–99998 for DE"),
        );
        check_postal(
            "99999",
            Country::DE,
            Err("postal code 99999 is outside the range 01001–99998 for DE"),
        );
        check_postal("1010", Country::AT, Ok("1010"));
        check_postal("A-1010", Country::AT, Ok("1010"));
        check_postal(
            "1000",
            Country::AT,
            Err("postal code 1000 is outside the range 1010–9992 for AT"),
        );
        check_postal(
            "D-80331",
            Country::AT,
            Err("prefix D belongs to DE, not AT"),
        );
        check_postal("X-1234", Country::AT, Err("unknown country prefix X"));
        assert_eq!(
            validate_postal_code("8000", Country::CH).status,
            FieldStatus::Valid
        );
        assert_eq!(
            validate_postal_code("", Country::CH).status,
            FieldStatus::Missing
        );
    }

    #[test]
    fn validates_other_postal_codes() {
        check_postal("75001", Country::FR, Ok("75001"));
        check_postal("00184", Country::IT, Ok("00184"));
        check_postal("1000", Country::BE, Ok("1000"));
        check_postal("L-1234", Country::LU, Ok("1234"));
        check_postal("1234ab", Country::NL, Ok("1234 AB"));
        check_postal(
            "1234 SS",
            Country::NL,
            Err("postal codes in NL look like 1234 AB"),
        );
        let us = Country::from_code("US").expect("known code");
        check_postal("90210-1234", us, Ok("90210-1234"));
        check_postal("#!", us, Err("not a postal code"));
        let gb = Country::from_code("GB").expect("known code");
        check_postal("sw1a 1aa", gb, Ok("SW1A 1AA"));
    }

    #[test]
    fn validates_countries() {
        let check = |input: &str, expected: Result<&str, &str>| {
            let outcome = validate_country(input);
            match expected {
                Ok(code) => assert_eq!(outcome.value.as_deref(), Some(code), "{input:?}"),
                Err(reason) => assert_eq!(outcome.status.reason(), Some(reason), "{input:?}"),
            }
        };
        check("Schweiz", Ok("CH"));
        check("Österreich", Ok("AT"));
        check("Allemagne", Ok("DE"));
        check("LIE", Ok("LI"));
        check("Atlantis", Err("unknown country \"Atlantis\""));
        assert_eq!(validate_country("CH").status, FieldStatus::Valid);
        assert_eq!(validate_country("ch").status, FieldStatus::Normalised);
        assert_eq!(validate_country("").status, FieldStatus::Missing);
    }
}
