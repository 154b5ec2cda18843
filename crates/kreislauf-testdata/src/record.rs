//! The generated record, its ground truth and the corruptions applied to it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A country of residence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Country {
    /// Switzerland.
    #[serde(rename = "CH")]
    Ch,
    /// Germany.
    #[serde(rename = "DE")]
    De,
    /// Austria.
    #[serde(rename = "AT")]
    At,
    /// Liechtenstein.
    #[serde(rename = "LI")]
    Li,
}

impl Country {
    /// All countries, in the order of [`crate::CountryMix`].
    pub const ALL: [Country; 4] = [Country::Ch, Country::De, Country::At, Country::Li];

    /// The ISO 3166-1 alpha-2 code.
    pub fn iso_code(self) -> &'static str {
        match self {
            Country::Ch => "CH",
            Country::De => "DE",
            Country::At => "AT",
            Country::Li => "LI",
        }
    }

    /// The international calling code without `+`.
    pub fn calling_code(self) -> &'static str {
        match self {
            Country::Ch => "41",
            Country::De => "49",
            Country::At => "43",
            Country::Li => "423",
        }
    }

    /// Whether national numbers are dialled with a trunk `0` (all but Liechtenstein).
    pub(crate) fn has_trunk_prefix(self) -> bool {
        self != Country::Li
    }

    /// Whether the spelling uses `ß` (Germany, Austria) or always `ss` (Switzerland, Liechtenstein).
    pub(crate) fn uses_eszett(self) -> bool {
        matches!(self, Country::De | Country::At)
    }
}

/// The system a record was exported from. Each has its own field conventions and gaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Loyalty-card sign-up at the till: card always, dates as `24.12.1980`, country as ISO code.
    SupermarketPos,
    /// Wine-club web shop: full address and birth date (age check) as `1980-12-24`, country name.
    WineClubWeb,
    /// Recipes newsletter: e-mail always, little else.
    RecipesWeb,
}

impl Source {
    /// All sources, in the order of [`crate::SourceMix`].
    pub const ALL: [Source; 3] = [
        Source::SupermarketPos,
        Source::WineClubWeb,
        Source::RecipesWeb,
    ];

    /// The stable name written to CSV (`supermarket-pos`, `wine-club-web`, `recipes-web`).
    pub fn as_str(self) -> &'static str {
        match self {
            Source::SupermarketPos => "supermarket-pos",
            Source::WineClubWeb => "wine-club-web",
            Source::RecipesWeb => "recipes-web",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One exported customer record.
///
/// Data fields are `Option<String>` exactly as a real export has them: `None` when the
/// system has no value, `Some("")` or `Some(" ")` when someone left a form field blank, and
/// otherwise the string as it was typed, including its errors. The fields after
/// `loyalty_card` are ground truth and debugging aids: never give them to the code under test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Row key, 1-based, in output order. Carries no information about the person.
    pub record_id: u64,
    /// The exporting system.
    pub source: Source,
    /// The customer number in the exporting system (unique per source).
    pub customer_id: Option<String>,
    pub salutation: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub street: Option<String>,
    pub house_number: Option<String>,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub birth_date: Option<String>,
    pub loyalty_card: Option<String>,
    /// Ground truth: the real person. Records with the same `person_id` are true matches.
    pub person_id: u64,
    /// Ground truth: the household. Different persons in one household are hard non-matches.
    pub household_id: u64,
    /// Ground truth: the `record_id` of the person's first record if this one is a duplicate.
    pub duplicate_of: Option<u64>,
    /// What was done to this duplicate, in order (empty for first records).
    pub corruptions: Vec<Corruption>,
}

/// A data field of [`Record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Salutation,
    FirstName,
    LastName,
    Email,
    Phone,
    Street,
    HouseNumber,
    PostalCode,
    City,
    Country,
    BirthDate,
    LoyaltyCard,
}

impl Field {
    /// The CSV column name.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Salutation => "salutation",
            Field::FirstName => "first_name",
            Field::LastName => "last_name",
            Field::Email => "email",
            Field::Phone => "phone",
            Field::Street => "street",
            Field::HouseNumber => "house_number",
            Field::PostalCode => "postal_code",
            Field::City => "city",
            Field::Country => "country",
            Field::BirthDate => "birth_date",
            Field::LoyaltyCard => "loyalty_card",
        }
    }
}

impl Record {
    /// The value of a data field.
    pub fn field(&self, field: Field) -> Option<&str> {
        self.field_ref(field).as_deref()
    }

    fn field_ref(&self, field: Field) -> &Option<String> {
        match field {
            Field::Salutation => &self.salutation,
            Field::FirstName => &self.first_name,
            Field::LastName => &self.last_name,
            Field::Email => &self.email,
            Field::Phone => &self.phone,
            Field::Street => &self.street,
            Field::HouseNumber => &self.house_number,
            Field::PostalCode => &self.postal_code,
            Field::City => &self.city,
            Field::Country => &self.country,
            Field::BirthDate => &self.birth_date,
            Field::LoyaltyCard => &self.loyalty_card,
        }
    }

    /// The value of a data field, for changing it.
    pub fn field_mut(&mut self, field: Field) -> &mut Option<String> {
        match field {
            Field::Salutation => &mut self.salutation,
            Field::FirstName => &mut self.first_name,
            Field::LastName => &mut self.last_name,
            Field::Email => &mut self.email,
            Field::Phone => &mut self.phone,
            Field::Street => &mut self.street,
            Field::HouseNumber => &mut self.house_number,
            Field::PostalCode => &mut self.postal_code,
            Field::City => &mut self.city,
            Field::Country => &mut self.country,
            Field::BirthDate => &mut self.birth_date,
            Field::LoyaltyCard => &mut self.loyalty_card,
        }
    }

    /// Whether this record is a duplicate of an earlier record of the same person.
    pub fn is_duplicate(&self) -> bool {
        self.duplicate_of.is_some()
    }
}

/// How umlauts and accents were written without them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UmlautStyle {
    /// ü→ue, ö→oe, ä→ae (and é→e): the German convention without an umlaut keyboard.
    Transliterated,
    /// ü→u, ö→o, ä→a, é→e: diacritics dropped, as systems limited to ASCII do.
    Stripped,
}

/// A typing error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TypoKind {
    /// A key next to the right one on a German QWERTZ keyboard.
    Substitution,
    /// Two neighbouring characters swapped.
    Transposition,
    /// A character left out.
    Deletion,
    /// A character too many (a neighbouring key or a doubled letter).
    Insertion,
}

/// How a value went missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// No value at all (`None`).
    Absent,
    /// An empty or whitespace-only string.
    Blank,
    /// A filler such as `-`, `n/a`, `keine@keine.ch` or `01.01.1900`.
    Placeholder,
}

/// The ways a phone number is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhoneStyle {
    /// `079 123 45 67`, `0151 23456789`.
    National,
    /// `0791234567`.
    NationalCompact,
    /// `079-123-45-67`.
    NationalDashes,
    /// `079/123 45 67`, `0151/23456789`.
    NationalSlash,
    /// `(079) 123 45 67`.
    NationalParentheses,
    /// `+41 79 123 45 67`.
    International,
    /// `+41791234567` (E.164).
    InternationalCompact,
    /// `0041 79 123 45 67`.
    InternationalZeroZero,
    /// `+41 (0)79 123 45 67`.
    InternationalTrunk,
}

impl PhoneStyle {
    pub(crate) const ALL: [PhoneStyle; 9] = [
        PhoneStyle::National,
        PhoneStyle::NationalCompact,
        PhoneStyle::NationalDashes,
        PhoneStyle::NationalSlash,
        PhoneStyle::NationalParentheses,
        PhoneStyle::International,
        PhoneStyle::InternationalCompact,
        PhoneStyle::InternationalZeroZero,
        PhoneStyle::InternationalTrunk,
    ];
}

/// The ways a date is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DateFormat {
    /// `24.12.1980`, the DACH standard.
    Dotted,
    /// `1980-12-24` (ISO 8601, HTML date inputs).
    Iso,
    /// `24/12/80`.
    SlashShortYear,
    /// `24.12.80`.
    DottedShortYear,
    /// `4.7.1980` (no leading zeros).
    DottedUnpadded,
    /// `19801224`.
    Compact,
    /// `24-12-1980`.
    Dashed,
}

impl DateFormat {
    pub(crate) const ALL: [DateFormat; 7] = [
        DateFormat::Dotted,
        DateFormat::Iso,
        DateFormat::SlashShortYear,
        DateFormat::DottedShortYear,
        DateFormat::DottedUnpadded,
        DateFormat::Compact,
        DateFormat::Dashed,
    ];
}

/// How a postal code was written differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostalVariant {
    /// `CH-8001`, `D-80331`, `A-1010`, `FL-9490`.
    CountryPrefix,
    /// `4109` for Leipzig's `04109` (a spreadsheet took it for a number).
    LeadingZeroLost,
}

/// One thing done to a duplicate record, recorded for debugging and for per-error analysis
/// of a linker's misses.
///
/// The first group changes what is true about the person at the time of the record (an
/// old address, another e-mail); the rest change how a value was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "corruption", rename_all = "snake_case")]
pub enum Corruption {
    /// The record has the person's previous address (they moved since); a landline there
    /// changes with it.
    OldAddress,
    /// A short or familiar first name (Johannes → Hans, Elisabeth → Lisa).
    Nickname,
    /// The person's other e-mail address.
    OtherEmail,
    /// The person's other phone number (landline instead of mobile or the reverse).
    OtherPhone,
    /// A loyalty card issued later (the lost-card re-registration that creates duplicates).
    NewLoyaltyCard,
    /// The phone number written in another style.
    PhoneFormat { style: PhoneStyle },
    /// The birth date written in another format.
    BirthDateFormat { format: DateFormat },
    /// Day and month of the birth date swapped (only where both are ≤ 12 and differ).
    DayMonthSwapped,
    /// The city written in another way (Genf, Zurich, Frankfurt a.M.).
    CityVariant,
    /// The country written in another way (Schweiz, Suisse, D, Österreich).
    CountryVariant,
    /// The house number typed into the street field (`Bahnhofstrasse 12`, no house number).
    HouseNumberInStreet,
    /// `Straße`/`Strasse` abbreviated to `Str.` (also `Av.`, `Ch.`, `Rte`).
    StreetAbbreviated,
    /// The postal code written differently.
    PostalCodeVariant { variant: PostalVariant },
    /// A typo in the e-mail domain (gmial.com, gmx.dee).
    EmailDomainTypo,
    /// First and last name swapped.
    SwappedNames,
    /// Umlauts and accents written without them.
    Umlaut { field: Field, style: UmlautStyle },
    /// `ß` written `ss` (`to_ss`) or `ss` written `ß`.
    Eszett { field: Field, to_ss: bool },
    /// The field in capitals (`MÜLLER`).
    UpperCase { field: Field },
    /// The field in small letters (`hans müller`).
    LowerCase { field: Field },
    /// A typing error.
    Typo { field: Field, kind: TypoKind },
    /// Leading, trailing or doubled spaces.
    Whitespace { field: Field },
    /// The value is missing.
    Missing { field: Field, how: Missing },
}

impl Corruption {
    /// A stable snake_case name of the kind, for counting.
    pub fn name(&self) -> &'static str {
        match self {
            Corruption::OldAddress => "old_address",
            Corruption::Nickname => "nickname",
            Corruption::OtherEmail => "other_email",
            Corruption::OtherPhone => "other_phone",
            Corruption::NewLoyaltyCard => "new_loyalty_card",
            Corruption::PhoneFormat { .. } => "phone_format",
            Corruption::BirthDateFormat { .. } => "birth_date_format",
            Corruption::DayMonthSwapped => "day_month_swapped",
            Corruption::CityVariant => "city_variant",
            Corruption::CountryVariant => "country_variant",
            Corruption::HouseNumberInStreet => "house_number_in_street",
            Corruption::StreetAbbreviated => "street_abbreviated",
            Corruption::PostalCodeVariant { .. } => "postal_code_variant",
            Corruption::EmailDomainTypo => "email_domain_typo",
            Corruption::SwappedNames => "swapped_names",
            Corruption::Umlaut { .. } => "umlaut",
            Corruption::Eszett { .. } => "eszett",
            Corruption::UpperCase { .. } => "upper_case",
            Corruption::LowerCase { .. } => "lower_case",
            Corruption::Typo { .. } => "typo",
            Corruption::Whitespace { .. } => "whitespace",
            Corruption::Missing { .. } => "missing",
        }
    }

    /// The field a string-level corruption was applied to.
    pub fn field(&self) -> Option<Field> {
        match self {
            Corruption::Umlaut { field, .. }
            | Corruption::Eszett { field, .. }
            | Corruption::UpperCase { field }
            | Corruption::LowerCase { field }
            | Corruption::Typo { field, .. }
            | Corruption::Whitespace { field }
            | Corruption::Missing { field, .. } => Some(*field),
            _ => None,
        }
    }
}

/// Compact form used in the CSV `corruptions` column: `typo:last_name`, `old_address`.
impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        if let Some(field) = self.field() {
            write!(f, ":{}", field.as_str())?;
        }
        Ok(())
    }
}
