//! Property tests: the normalisers never panic on arbitrary Unicode, and normalising an already
//! normalised value changes nothing (idempotence).

use chrono::NaiveDate;
use kreislauf_quality::{address, birth_date, email, name, phone, score, Country, Field};
use proptest::prelude::*;

const REGIONS: [Country; 4] = [Country::CH, Country::DE, Country::AT, Country::LI];

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 25).unwrap_or_default()
}

fn region() -> impl Strategy<Value = Country> {
    prop::sample::select(REGIONS.to_vec())
}

/// Arbitrary text mixed with the characters the checkers care about.
fn texty() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "\\PC{0,40}",
        "[a-zA-ZäöüÄÖÜßẞéèçñ'’ .,/@+()-]{0,40}",
        "[0-9 +()/.-]{0,25}",
    ]
}

fn email_like() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9ÄÖÜäöüéß._%+'-]{1,20}@[a-zA-Z0-9äöüÄÖÜ-]{1,15}(\\.[a-zA-Z0-9-]{1,8}){0,2}\\.[a-zA-ZÄÖ]{2,6}"
}

fn name_like() -> impl Strategy<Value = String> {
    "[ ]{0,2}[a-zA-ZäöüÄÖÜßẞéÉèçñ'’-]{1,12}( {1,3}[a-zA-ZäöüÄÖÜßẞéÉ'-]{1,12}){0,3}[ ]{0,2}"
}

/// The strategy's values as given, all lower case and all upper case (the inputs that get
/// re-cased).
fn cased<S: Strategy<Value = String>>(make: impl Fn() -> S) -> impl Strategy<Value = String> {
    prop_oneof![
        make(),
        make().prop_map(|s| s.to_lowercase()),
        make().prop_map(|s| s.to_uppercase()),
    ]
}

fn street_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-zäöüÄÖÜßẞ.-]{1,15}( [A-Za-zäöüß.]{1,10}){0,2}(str\\.|str|strasse|straße|Str\\.| Str\\.| Strasse)? {0,2}[0-9]{1,4} ?[a-dA-D]?( ?- ?[0-9]{1,3})?",
        "[0-9]{1,3},? [A-Za-zé]{1,8}( [A-Za-zé]{1,8}){0,2}",
        "[A-Za-zäöüß0-9 .,/-]{1,30}",
    ]
}

fn phone_like() -> impl Strategy<Value = String> {
    "(\\+41|\\+49|\\+43|\\+423|0041|0049|0043|0)?[ ]?[1-9][0-9]{1,3}[ /]?[0-9]{2,4}[ ]?[0-9]{2,4}[ ]?[0-9]{0,3}"
}

/// `f(f(x)) == f(x)` for every input whose first normalisation produced a value.
fn assert_idempotent(
    input: &str,
    f: impl Fn(&str) -> kreislauf_quality::FieldOutcome,
) -> Result<(), TestCaseError> {
    if let Some(value) = f(input).value {
        let again = f(&value);
        prop_assert_eq!(
            again.value.as_deref(),
            Some(value.as_str()),
            "input {:?}",
            input
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn normalisers_never_panic(input in texty(), region in region()) {
        let outcomes = [
            (Field::Email, email::validate(&input)),
            (Field::Phone, phone::validate(&input, region)),
            (Field::FirstName, name::normalise(&input)),
            (Field::Street, address::normalise_street(&input, region)),
            (Field::PostalCode, address::validate_postal_code(&input, region)),
            (Field::Country, address::validate_country(&input)),
            (Field::BirthDate, birth_date::validate(&input, today())),
        ];
        let _ = name::matching_key(&input);
        let _ = name::koelner_phonetik(&input);
        let _ = name::parse_salutation(&input);
        let _ = email::matching_key(&input);
        let _ = address::street_matching_key(&input);
        let _ = address::split_street(&input);
        let refs: Vec<_> = outcomes.iter().map(|(f, o)| (*f, o)).collect();
        prop_assert!(score::score(&refs) <= 100);
        for (_, outcome) in &outcomes {
            prop_assert_eq!(outcome.raw.as_deref(), Some(input.as_str()));
            // Serialisable, and back.
            let json = serde_json::to_string(outcome).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let back: kreislauf_quality::FieldOutcome =
                serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&back, outcome);
        }
    }

    #[test]
    fn names_are_idempotent(input in prop_oneof![cased(name_like), texty()]) {
        assert_idempotent(&input, name::normalise)?;
    }

    #[test]
    fn emails_are_idempotent(input in prop_oneof![email_like(), texty()]) {
        assert_idempotent(&input, email::validate)?;
    }

    #[test]
    fn streets_are_idempotent(input in prop_oneof![cased(street_like), texty()], region in region()) {
        assert_idempotent(&input, |s| address::normalise_street(s, region))?;
    }

    #[test]
    fn phones_are_idempotent(input in prop_oneof![phone_like(), texty()], region in region()) {
        assert_idempotent(&input, |s| phone::validate(s, region))?;
    }

    #[test]
    fn birth_dates_are_idempotent(input in prop_oneof![
        "[0-3]?[0-9][./-][01]?[0-9][./-]([12][0-9])?[0-9]{2}",
        texty(),
    ]) {
        assert_idempotent(&input, |s| birth_date::validate(s, today()))?;
    }

    #[test]
    fn matching_keys_ignore_case_and_umlaut_spelling(input in name_like()) {
        let upper = input.to_uppercase();
        prop_assert_eq!(name::matching_key(&input), name::matching_key(&upper));
        let transliterated = input.replace('ä', "ae").replace('ö', "oe").replace('ü', "ue");
        prop_assert_eq!(name::matching_key(&input), name::matching_key(&transliterated));
    }
}
