//! What to generate: size, seed, mixes and error rates.

use serde::{Deserialize, Serialize};

use crate::Error;

/// Settings of a [`crate::Generator`]. `Default` gives a realistic DACH mix of 1,000 persons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeneratorConfig {
    /// Seed of all randomness. Same config and seed ⇒ the same records, byte for byte.
    pub seed: u64,
    /// Number of distinct persons (each gets one first record).
    pub people: usize,
    /// Where the persons live.
    pub country_mix: CountryMix,
    /// Which system each record comes from.
    pub source_mix: SourceMix,
    /// Mean number of extra records per person, so records ≈ people × (1 + duplicate_rate).
    /// Per person the count is binomial (mostly 0 or 1, sometimes 2 or 3), from 0 to 20.
    pub duplicate_rate: f64,
    /// Share of persons (0..=1) who live with at least one other generated person: couples,
    /// parents with adult children. They share surname, address and sometimes an e-mail
    /// address and a landline, but are different persons.
    pub household_rate: f64,
    /// The year ages are counted from (birth dates give customers aged 16 to 95).
    pub reference_year: i32,
    /// Probability of each corruption per duplicate record.
    pub errors: ErrorRates,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            people: 1_000,
            country_mix: CountryMix::default(),
            source_mix: SourceMix::default(),
            duplicate_rate: 0.3,
            household_rate: 0.4,
            reference_year: 2025,
            errors: ErrorRates::default(),
        }
    }
}

/// Relative shares of countries of residence (need not sum to 1; at least one positive).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CountryMix {
    pub ch: f64,
    pub de: f64,
    pub at: f64,
    pub li: f64,
}

impl Default for CountryMix {
    fn default() -> Self {
        Self {
            ch: 0.40,
            de: 0.35,
            at: 0.22,
            li: 0.03,
        }
    }
}

impl CountryMix {
    pub(crate) fn shares(&self) -> [f64; 4] {
        [self.ch, self.de, self.at, self.li]
    }
}

/// Relative shares of source systems (need not sum to 1; at least one positive).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceMix {
    pub supermarket_pos: f64,
    pub wine_club_web: f64,
    pub recipes_web: f64,
}

impl Default for SourceMix {
    fn default() -> Self {
        Self {
            supermarket_pos: 0.5,
            wine_club_web: 0.2,
            recipes_web: 0.3,
        }
    }
}

impl SourceMix {
    pub(crate) fn shares(&self) -> [f64; 3] {
        [self.supermarket_pos, self.wine_club_web, self.recipes_web]
    }
}

/// Probability (0..=1) of each corruption, applied independently to every duplicate record.
/// First records are left as their source system would export them.
///
/// See [`crate::Corruption`] for what each one does. A corruption that cannot apply (no
/// umlaut to replace, no nickname known, field absent) is skipped and not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ErrorRates {
    pub old_address: f64,
    pub nickname: f64,
    pub other_email: f64,
    pub other_phone: f64,
    pub new_loyalty_card: f64,
    pub phone_format: f64,
    pub birth_date_format: f64,
    pub day_month_swap: f64,
    pub city_variant: f64,
    pub country_variant: f64,
    pub house_number_in_street: f64,
    pub street_abbreviation: f64,
    pub postal_code_variant: f64,
    pub email_domain_typo: f64,
    pub swapped_names: f64,
    pub umlaut: f64,
    pub eszett: f64,
    pub upper_case: f64,
    pub lower_case: f64,
    pub typo: f64,
    pub whitespace: f64,
    pub missing: f64,
}

impl Default for ErrorRates {
    fn default() -> Self {
        Self {
            old_address: 0.15,
            nickname: 0.06,
            other_email: 0.12,
            other_phone: 0.10,
            new_loyalty_card: 0.40,
            phone_format: 0.35,
            birth_date_format: 0.25,
            day_month_swap: 0.02,
            city_variant: 0.08,
            country_variant: 0.20,
            house_number_in_street: 0.08,
            street_abbreviation: 0.15,
            postal_code_variant: 0.05,
            email_domain_typo: 0.02,
            swapped_names: 0.03,
            umlaut: 0.15,
            eszett: 0.10,
            upper_case: 0.06,
            lower_case: 0.06,
            typo: 0.25,
            whitespace: 0.08,
            missing: 0.20,
        }
    }
}

impl ErrorRates {
    /// No corruption at all: duplicates differ only by their source's conventions and gaps.
    pub fn none() -> Self {
        Self::all(0.0)
    }

    /// Every corruption with the same probability `p`.
    pub fn all(p: f64) -> Self {
        Self {
            old_address: p,
            nickname: p,
            other_email: p,
            other_phone: p,
            new_loyalty_card: p,
            phone_format: p,
            birth_date_format: p,
            day_month_swap: p,
            city_variant: p,
            country_variant: p,
            house_number_in_street: p,
            street_abbreviation: p,
            postal_code_variant: p,
            email_domain_typo: p,
            swapped_names: p,
            umlaut: p,
            eszett: p,
            upper_case: p,
            lower_case: p,
            typo: p,
            whitespace: p,
            missing: p,
        }
    }

    fn named(&self) -> [(&'static str, f64); 22] {
        [
            ("errors.old_address", self.old_address),
            ("errors.nickname", self.nickname),
            ("errors.other_email", self.other_email),
            ("errors.other_phone", self.other_phone),
            ("errors.new_loyalty_card", self.new_loyalty_card),
            ("errors.phone_format", self.phone_format),
            ("errors.birth_date_format", self.birth_date_format),
            ("errors.day_month_swap", self.day_month_swap),
            ("errors.city_variant", self.city_variant),
            ("errors.country_variant", self.country_variant),
            ("errors.house_number_in_street", self.house_number_in_street),
            ("errors.street_abbreviation", self.street_abbreviation),
            ("errors.postal_code_variant", self.postal_code_variant),
            ("errors.email_domain_typo", self.email_domain_typo),
            ("errors.swapped_names", self.swapped_names),
            ("errors.umlaut", self.umlaut),
            ("errors.eszett", self.eszett),
            ("errors.upper_case", self.upper_case),
            ("errors.lower_case", self.lower_case),
            ("errors.typo", self.typo),
            ("errors.whitespace", self.whitespace),
            ("errors.missing", self.missing),
        ]
    }
}

/// The largest `people` accepted. Records take about 0.9 KB each in memory, so this is
/// already far beyond one machine; larger is surely a mistake.
pub const MAX_PEOPLE: usize = 100_000_000;
/// The largest `duplicate_rate` accepted.
pub const MAX_DUPLICATE_RATE: f64 = 20.0;

fn invalid(field: &'static str, value: impl ToString, expected: &'static str) -> Error {
    Error::InvalidConfig {
        field,
        value: value.to_string(),
        expected,
    }
}

fn check_probability(field: &'static str, p: f64) -> Result<(), Error> {
    if p.is_finite() && (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(invalid(field, p, "a probability between 0 and 1"))
    }
}

fn check_shares(field: &'static str, shares: &[f64]) -> Result<(), Error> {
    let valid = shares.iter().all(|s| s.is_finite() && *s >= 0.0)
        && shares.iter().any(|&s| crate::rng::share_weight(s) > 0);
    if valid {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("{shares:?}"),
            "non-negative finite shares, at least one of them at least 0.000001",
        ))
    }
}

impl GeneratorConfig {
    /// Checks every value; the generator accepts only valid configs.
    pub fn validate(&self) -> Result<(), Error> {
        if self.people > MAX_PEOPLE {
            return Err(invalid("people", self.people, "at most 100000000"));
        }
        if !(self.duplicate_rate.is_finite()
            && (0.0..=MAX_DUPLICATE_RATE).contains(&self.duplicate_rate))
        {
            return Err(invalid(
                "duplicate_rate",
                self.duplicate_rate,
                "a number between 0 and 20",
            ));
        }
        check_probability("household_rate", self.household_rate)?;
        if !(1900..=2200).contains(&self.reference_year) {
            return Err(invalid(
                "reference_year",
                self.reference_year,
                "a year between 1900 and 2200",
            ));
        }
        check_shares("country_mix", &self.country_mix.shares())?;
        check_shares("source_mix", &self.source_mix.shares())?;
        for (field, p) in self.errors.named() {
            check_probability(field, p)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        assert!(GeneratorConfig::default().validate().is_ok());
    }

    #[test]
    fn invalid_values_are_named() {
        let mut c = GeneratorConfig::default();
        c.errors.typo = 1.5;
        let e = c.validate().expect_err("typo rate 1.5");
        assert!(e.to_string().contains("errors.typo"), "{e}");

        let c = GeneratorConfig {
            duplicate_rate: f64::NAN,
            ..GeneratorConfig::default()
        };
        assert!(c.validate().is_err());

        let c = GeneratorConfig {
            country_mix: CountryMix {
                ch: 0.0,
                de: 0.0,
                at: 0.0,
                li: 0.0,
            },
            ..GeneratorConfig::default()
        };
        let e = c.validate().expect_err("empty mix");
        assert!(e.to_string().contains("country_mix"), "{e}");
    }

    #[test]
    fn config_reads_from_json_with_defaults() {
        let c: GeneratorConfig =
            serde_json::from_str(r#"{"seed": 7, "people": 10, "errors": {"typo": 0.5}}"#)
                .expect("parses");
        assert_eq!(c.seed, 7);
        assert_eq!(c.errors.typo, 0.5);
        assert_eq!(c.errors.umlaut, ErrorRates::default().umlaut);
        assert!(serde_json::from_str::<GeneratorConfig>(r#"{"peple": 10}"#).is_err());
    }
}
