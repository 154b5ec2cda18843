//! The profile quality score: one number 0–100 from the field outcomes, for dashboards and for
//! sorting the profiles most worth fixing first.
//!
//! Each field has a weight (they add up to 100); e-mail matters most because it is the
//! identifier and the channel. A field earns its full weight when valid or normalised, half
//! when suspicious, nothing when missing, and a quarter of its weight is *deducted* when it is
//! invalid: a wrong value is worse than none, because it looks like data. The total is clamped
//! to 0–100 and rounded half up. Deterministic: integer arithmetic only.

use serde::{Deserialize, Serialize};

use crate::{FieldOutcome, FieldStatus};

/// The profile fields the score covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// E-mail address, weight 30.
    Email,
    /// Phone number, weight 15.
    Phone,
    /// First name, weight 10.
    FirstName,
    /// Last name, weight 15.
    LastName,
    /// Street line (street and house number), weight 10.
    Street,
    /// Postal code, weight 8.
    PostalCode,
    /// Country, weight 4.
    Country,
    /// Birth date, weight 8.
    BirthDate,
}

impl Field {
    /// Every field, in weight order.
    pub const ALL: [Field; 8] = [
        Field::Email,
        Field::LastName,
        Field::Phone,
        Field::FirstName,
        Field::Street,
        Field::PostalCode,
        Field::BirthDate,
        Field::Country,
    ];

    /// The field's share of the score; all weights add up to 100.
    pub fn weight(self) -> u32 {
        match self {
            Field::Email => 30,
            Field::LastName => 15,
            Field::Phone => 15,
            Field::FirstName => 10,
            Field::Street => 10,
            Field::PostalCode => 8,
            Field::BirthDate => 8,
            Field::Country => 4,
        }
    }
}

/// Credit in quarters of the field's weight.
fn quarters(status: &FieldStatus) -> i64 {
    match status {
        FieldStatus::Valid | FieldStatus::Normalised => 4,
        FieldStatus::Suspicious { .. } => 2,
        FieldStatus::Missing => 0,
        FieldStatus::Invalid { .. } => -1,
    }
}

/// The quality score, 0–100, of a profile's field outcomes.
///
/// A field that does not appear counts as missing; a field that appears more than once (two
/// phone numbers) counts with its best outcome.
pub fn score(outcomes: &[(Field, &FieldOutcome)]) -> u8 {
    let total: i64 = Field::ALL
        .iter()
        .map(|field| {
            let best = outcomes
                .iter()
                .filter(|(f, _)| f == field)
                .map(|(_, outcome)| quarters(&outcome.status))
                .max()
                .unwrap_or(0);
            i64::from(field.weight()) * best
        })
        .sum();
    // `total` is in quarter points: 400 is a perfect profile.
    let points = (total.clamp(0, 400) + 2) / 4;
    u8::try_from(points).unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{address, birth_date, email, name, phone, Country};

    fn outcome(status: FieldStatus) -> FieldOutcome {
        FieldOutcome {
            status,
            ..FieldOutcome::missing()
        }
    }

    fn check(fields: &[(Field, FieldStatus)], expected: u8) {
        let outcomes: Vec<(Field, FieldOutcome)> = fields
            .iter()
            .map(|(field, status)| (*field, outcome(status.clone())))
            .collect();
        let refs: Vec<(Field, &FieldOutcome)> = outcomes.iter().map(|(f, o)| (*f, o)).collect();
        assert_eq!(score(&refs), expected, "{fields:?}");
    }

    fn suspicious() -> FieldStatus {
        FieldStatus::Suspicious {
            reason: "x".to_owned(),
        }
    }

    fn invalid() -> FieldStatus {
        FieldStatus::Invalid {
            reason: "x".to_owned(),
        }
    }

    #[test]
    fn weights_add_up_to_100() {
        assert_eq!(Field::ALL.iter().map(|f| f.weight()).sum::<u32>(), 100);
    }

    #[test]
    fn scores_by_weight_and_status() {
        let all_valid: Vec<(Field, FieldStatus)> = Field::ALL
            .iter()
            .map(|f| (*f, FieldStatus::Valid))
            .collect();
        check(&all_valid, 100);
        check(&[], 0);
        check(&[(Field::Email, FieldStatus::Valid)], 30);
        check(&[(Field::Email, FieldStatus::Normalised)], 30);
        check(&[(Field::Email, suspicious())], 15);
        check(&[(Field::Email, FieldStatus::Missing)], 0);
        // Invalid costs more than missing, never below zero.
        check(&[(Field::Email, invalid())], 0);
        check(
            &[
                (Field::Email, invalid()),
                (Field::LastName, FieldStatus::Valid),
            ],
            8,
        );
        check(
            &[
                (Field::Email, FieldStatus::Missing),
                (Field::LastName, FieldStatus::Valid),
            ],
            15,
        );
        // The best of repeated fields counts.
        check(
            &[
                (Field::Phone, invalid()),
                (Field::Phone, FieldStatus::Valid),
            ],
            15,
        );
        // Rounded half up: country suspicious is 2 points.
        check(&[(Field::Country, suspicious())], 2);
    }

    #[test]
    fn scores_a_real_profile() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 25).expect("valid date");
        let email = email::validate("anna.muster@gmial.com");
        let first = name::normalise("ANNA");
        let last = name::normalise("müller");
        let phone = phone::validate("079 123 45 67", Country::CH);
        let street = address::normalise_street("Bahnhofstr. 12a", Country::CH);
        let postal = address::validate_postal_code("8001", Country::CH);
        let country = address::validate_country("Schweiz");
        let birth = birth_date::validate("31.02.1980", today);
        let outcomes = [
            (Field::Email, &email),
            (Field::FirstName, &first),
            (Field::LastName, &last),
            (Field::Phone, &phone),
            (Field::Street, &street),
            (Field::PostalCode, &postal),
            (Field::Country, &country),
            (Field::BirthDate, &birth),
        ];
        // E-mail suspicious (15) + 10 + 15 + 15 + 10 + 8 + 4, birth date invalid (−2).
        assert_eq!(score(&outcomes), 75);
    }
}
