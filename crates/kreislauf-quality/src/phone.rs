//! Phone numbers: parsed with libphonenumber's metadata (the `phonenumber` crate) against the
//! default region of the source, normalised to E.164, classified as mobile or fixed line.
//!
//! Why: shops store `079 123 45 67`, `+41 79 123 45 67` and `0041791234567` for the same
//! person; only E.164 makes them one identifier. National formats need the region, so the
//! caller passes the source's default (CH, DE, AT, LI, …); numbers with `+` or `00` carry their
//! own country code.
//!
//! Only digits, spaces and `+ ( ) - / .` are accepted: letters (vanity numbers, "ext.") are
//! treated as invalid rather than guessed at.

use phonenumber::metadata::DATABASE;
use phonenumber::{Mode, ParseError, Type};

use crate::{Country, FieldOutcome};

const MAX_CHARS: usize = 40;

/// Checks a phone number and normalises it to E.164 (`+41446681800`).
///
/// Details: `type` (`mobile`, `fixed_line`, `fixed_line_or_mobile`, `toll_free`, `premium_rate`,
/// `voip`, …), `country_code` (e.g. 41) and `region` (e.g. `"CH"`) when known.
pub fn validate(raw: &str, default_region: Country) -> FieldOutcome {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return FieldOutcome::blank(raw);
    }
    if trimmed.chars().count() > MAX_CHARS {
        return FieldOutcome::invalid(raw, "too long for a phone number");
    }
    if trimmed
        .chars()
        .any(|c| !(c.is_ascii_digit() || c.is_whitespace() || "+()-/.".contains(c)))
    {
        return FieldOutcome::invalid(raw, "contains characters other than digits");
    }
    // `00` is the international prefix in all of Europe; make it explicit for every region.
    let compact: String = trimmed.chars().filter(|c| !c.is_whitespace()).collect();
    let input = match compact.strip_prefix("00") {
        Some(rest) if !rest.starts_with('0') => format!("+{rest}"),
        _ => compact,
    };
    let region = default_region
        .code()
        .parse::<phonenumber::country::Id>()
        .ok();
    let number = match phonenumber::parse(region, &input) {
        Ok(number) => number,
        Err(error) => return FieldOutcome::invalid(raw, parse_reason(&error)),
    };
    let code = number.code().value();
    let number_region = number.country().id();
    let region_name = number_region.map_or_else(|| format!("+{code}"), |id| id.as_ref().to_owned());
    if !number.is_valid() {
        return FieldOutcome::invalid(raw, format!("not a valid number for {region_name}"));
    }
    let e164 = number.format().mode(Mode::E164).to_string();
    let kind = number.number_type(&DATABASE);
    let mut outcome = FieldOutcome::usable(raw, e164)
        .detail("type", type_name(kind))
        .detail("country_code", code);
    if let Some(id) = number_region {
        outcome = outcome.detail("region", id.as_ref());
    }
    match kind {
        Type::PremiumRate => outcome.suspect("premium-rate number"),
        Type::TollFree => outcome.suspect("toll-free number"),
        Type::ShortCode | Type::Emergency | Type::Voicemail => {
            outcome.suspect("service number, not a personal one")
        }
        _ => outcome,
    }
}

/// The number in E.164, for record linkage; `None` when it is missing or invalid.
pub fn matching_key(raw: &str, default_region: Country) -> Option<String> {
    let outcome = validate(raw, default_region);
    outcome.is_usable().then_some(outcome.value).flatten()
}

fn parse_reason(error: &ParseError) -> &'static str {
    match error {
        ParseError::NoNumber => "no phone number found",
        ParseError::InvalidCountryCode => "unknown country calling code",
        ParseError::TooShortAfterIdd | ParseError::TooShortNsn => "too short for a phone number",
        ParseError::TooLong => "too long for a phone number",
        ParseError::MalformedInteger(_) => "malformed phone number",
    }
}

fn type_name(kind: Type) -> &'static str {
    match kind {
        Type::FixedLine => "fixed_line",
        Type::Mobile => "mobile",
        Type::FixedLineOrMobile => "fixed_line_or_mobile",
        Type::TollFree => "toll_free",
        Type::PremiumRate => "premium_rate",
        Type::SharedCost => "shared_cost",
        Type::PersonalNumber => "personal_number",
        Type::Voip => "voip",
        Type::Pager => "pager",
        Type::Uan => "uan",
        Type::Emergency => "emergency",
        Type::Voicemail => "voicemail",
        Type::ShortCode => "short_code",
        Type::StandardRate => "standard_rate",
        Type::Carrier => "carrier",
        Type::NoInternational => "no_international",
        Type::Unknown => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FieldStatus;

    /// `expected`: `Ok((e164, type))` or `Err(reason)`.
    fn check(input: &str, region: Country, expected: Result<(&str, &str), &str>) {
        let outcome = validate(input, region);
        match expected {
            Ok((e164, kind)) => {
                assert_eq!(
                    outcome.value.as_deref(),
                    Some(e164),
                    "{input:?}: {outcome:?}"
                );
                assert_eq!(outcome.details["type"], kind, "{input:?}");
            }
            Err(reason) => assert_eq!(
                outcome.status,
                FieldStatus::Invalid {
                    reason: reason.to_owned()
                },
                "{input:?}"
            ),
        }
    }

    #[test]
    fn parses_swiss_numbers() {
        let fixed = Ok(("+41446681800", "fixed_line"));
        check("044 668 18 00", Country::CH, fixed);
        check("+41 44 668 18 00", Country::CH, fixed);
        check("0041 44 668 18 00", Country::CH, fixed);
        check("0041446681800", Country::DE, fixed);
        check("+41 (0)44 668 18 00", Country::CH, fixed);
        check("044/668.18.00", Country::CH, fixed);
        check("079 123 45 67", Country::CH, Ok(("+41791234567", "mobile")));
        let outcome = validate("+41446681800", Country::CH);
        assert_eq!(outcome.status, FieldStatus::Valid);
        assert_eq!(outcome.details["region"], "CH");
        assert_eq!(outcome.details["country_code"], 41);
        assert_eq!(
            validate("044 668 18 00", Country::CH).status,
            FieldStatus::Normalised
        );
    }

    #[test]
    fn parses_german_austrian_and_liechtenstein_numbers() {
        check(
            "030 1234567",
            Country::DE,
            Ok(("+49301234567", "fixed_line")),
        );
        check("0171 1234567", Country::DE, Ok(("+491711234567", "mobile")));
        check("0664 1234567", Country::AT, Ok(("+436641234567", "mobile")));
        check("01 5123456", Country::AT, Ok(("+4315123456", "fixed_line")));
        check(
            "+423 235 12 34",
            Country::CH,
            Ok(("+4232351234", "fixed_line")),
        );
    }

    #[test]
    fn region_decides_national_formats() {
        // The same digits are a Zurich number in CH and a different one in DE.
        let ch = validate("044 668 18 00", Country::CH);
        let de = validate("044 668 18 00", Country::DE);
        assert_ne!(ch.value, de.value);
    }

    #[test]
    fn rejects_invalid_numbers() {
        assert_eq!(validate("  ", Country::CH).status, FieldStatus::Missing);
        check("1", Country::CH, Err("no phone number found"));
        check("12", Country::CH, Err("not a valid number for CH"));
        check("044 668", Country::CH, Err("not a valid number for CH"));
        check(
            "079 123 45 67 89 01 23",
            Country::CH,
            Err("not a valid number for CH"),
        );
        check(
            "call me",
            Country::CH,
            Err("contains characters other than digits"),
        );
        check(
            "044 668 18 00 ext. 12",
            Country::CH,
            Err("contains characters other than digits"),
        );
        check(
            &"1".repeat(50),
            Country::CH,
            Err("too long for a phone number"),
        );
    }

    #[test]
    fn flags_service_numbers() {
        let outcome = validate("0900 123 456", Country::CH);
        assert_eq!(outcome.status.reason(), Some("premium-rate number"));
        let outcome = validate("0800 123 456", Country::CH);
        assert_eq!(outcome.status.reason(), Some("toll-free number"));
    }

    #[test]
    fn matching_key_is_e164() {
        assert_eq!(
            matching_key("079 123 45 67", Country::CH),
            Some("+41791234567".to_owned())
        );
        assert_eq!(matching_key("12", Country::CH), None);
    }
}
