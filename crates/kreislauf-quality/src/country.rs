//! Countries as ISO 3166-1 alpha-2 codes, parsed from codes and from the names people type in
//! German, English, French and Italian ("Schweiz", "Suisse", "Svizzera", "Oesterreich", "DEU", …).
//!
//! Why: postal-code rules, the spelling of `Straße`/`Strasse` and the default phone region all
//! depend on the country, and source systems write it in every form.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::text::key_words;

/// A country, by its ISO 3166-1 alpha-2 code. Serialises as the code (`"CH"`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Country(&'static str);

/// A text that names no known country.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown country {0:?}")]
pub struct UnknownCountry(pub String);

impl Country {
    /// Switzerland.
    pub const CH: Country = Country("CH");
    /// Liechtenstein.
    pub const LI: Country = Country("LI");
    /// Germany.
    pub const DE: Country = Country("DE");
    /// Austria.
    pub const AT: Country = Country("AT");
    /// France.
    pub const FR: Country = Country("FR");
    /// Italy.
    pub const IT: Country = Country("IT");
    /// The Netherlands.
    pub const NL: Country = Country("NL");
    /// Belgium.
    pub const BE: Country = Country("BE");
    /// Luxembourg.
    pub const LU: Country = Country("LU");

    /// The country with this alpha-2 code (any case), if ISO 3166-1 assigns it.
    pub fn from_code(code: &str) -> Option<Country> {
        let upper = code.trim().to_ascii_uppercase();
        ISO_CODES
            .binary_search(&upper.as_str())
            .ok()
            .and_then(|i| ISO_CODES.get(i))
            .map(|code| Country(code))
    }

    /// Parses an alpha-2 or alpha-3 code or a country name (German, English, French, Italian;
    /// case, accents and umlaut spelling do not matter).
    pub fn parse(text: &str) -> Option<Country> {
        let key = key_words(text)?;
        let key = key.strip_prefix("the ").unwrap_or(&key);
        if key.len() == 2 {
            if let Some(country) = Country::from_code(key) {
                return Some(country);
            }
        }
        NAMES
            .iter()
            .find(|(_, names)| names.contains(&key))
            .and_then(|(code, _)| Country::from_code(code))
    }

    /// The alpha-2 code, upper case.
    pub fn code(self) -> &'static str {
        self.0
    }

    /// Germany and Austria write `Straße`; Switzerland and Liechtenstein write `Strasse`.
    pub(crate) fn writes_sharp_s(self) -> bool {
        self == Country::DE || self == Country::AT
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl FromStr for Country {
    type Err = UnknownCountry;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Country::parse(s).ok_or_else(|| UnknownCountry(s.to_owned()))
    }
}

impl TryFrom<String> for Country {
    type Error = UnknownCountry;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Country::from_str(&s)
    }
}

impl From<Country> for String {
    fn from(country: Country) -> String {
        country.0.to_owned()
    }
}

/// Every officially assigned ISO 3166-1 alpha-2 code, sorted.
const ISO_CODES: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// Alpha-3 codes and names, as matching keys (lower case, `ö → oe`, accents stripped).
/// DACH first, then the neighbours and the countries customers most often live in.
const NAMES: &[(&str, &[&str])] = &[
    (
        "CH",
        &[
            "che",
            "schweiz",
            "suisse",
            "svizzera",
            "svizra",
            "switzerland",
            "helvetia",
            "schweizerische eidgenossenschaft",
            "confederation suisse",
            "confederazione svizzera",
        ],
    ),
    (
        "LI",
        &[
            "lie",
            "fl",
            "liechtenstein",
            "fuerstentum liechtenstein",
            "principality of liechtenstein",
        ],
    ),
    (
        "DE",
        &[
            "deu",
            "ger",
            "brd",
            "deutschland",
            "germany",
            "allemagne",
            "germania",
            "bundesrepublik deutschland",
            "federal republic of germany",
        ],
    ),
    (
        "AT",
        &[
            "aut",
            "oesterreich",
            "osterreich",
            "austria",
            "autriche",
            "republik oesterreich",
        ],
    ),
    ("FR", &["fra", "frankreich", "france", "francia"]),
    ("IT", &["ita", "italien", "italy", "italie", "italia"]),
    (
        "NL",
        &[
            "nld",
            "niederlande",
            "netherlands",
            "holland",
            "nederland",
            "pays bas",
            "paesi bassi",
        ],
    ),
    (
        "BE",
        &["bel", "belgien", "belgium", "belgique", "belgio", "belgie"],
    ),
    ("LU", &["lux", "luxemburg", "luxembourg", "lussemburgo"]),
    (
        "GB",
        &[
            "gbr",
            "uk",
            "grossbritannien",
            "vereinigtes koenigreich",
            "united kingdom",
            "great britain",
            "england",
            "royaume uni",
            "regno unito",
        ],
    ),
    (
        "US",
        &[
            "usa",
            "united states",
            "united states of america",
            "vereinigte staaten",
            "vereinigte staaten von amerika",
            "amerika",
            "etats unis",
            "stati uniti",
        ],
    ),
    (
        "ES",
        &["esp", "spanien", "spain", "espagne", "spagna", "espana"],
    ),
    ("PT", &["prt", "portugal", "portogallo"]),
    ("PL", &["pol", "polen", "poland", "pologne", "polonia"]),
    (
        "CZ",
        &[
            "cze",
            "tschechien",
            "tschechische republik",
            "czechia",
            "czech republic",
            "republique tcheque",
            "repubblica ceca",
        ],
    ),
    (
        "SK",
        &["svk", "slowakei", "slovakia", "slovaquie", "slovacchia"],
    ),
    ("HU", &["hun", "ungarn", "hungary", "hongrie", "ungheria"]),
    ("SI", &["svn", "slowenien", "slovenia", "slovenie"]),
    ("HR", &["hrv", "kroatien", "croatia", "croatie", "croazia"]),
    (
        "DK",
        &["dnk", "daenemark", "denmark", "danemark", "danimarca"],
    ),
    ("SE", &["swe", "schweden", "sweden", "suede", "svezia"]),
    ("NO", &["nor", "norwegen", "norway", "norvege", "norvegia"]),
    (
        "FI",
        &["fin", "finnland", "finland", "finlande", "finlandia"],
    ),
    ("IS", &["isl", "island", "iceland", "islande", "islanda"]),
    ("IE", &["irl", "irland", "ireland", "irlande", "irlanda"]),
    ("GR", &["grc", "griechenland", "greece", "grece", "grecia"]),
    (
        "TR",
        &[
            "tur", "tuerkei", "turkei", "turkey", "turkiye", "tuerkiye", "turquie", "turchia",
        ],
    ),
    ("RS", &["srb", "serbien", "serbia", "serbie"]),
    (
        "BA",
        &[
            "bih",
            "bosnien und herzegowina",
            "bosnia and herzegovina",
            "bosnie herzegovine",
        ],
    ),
    ("ME", &["mne", "montenegro"]),
    (
        "MK",
        &[
            "mkd",
            "nordmazedonien",
            "north macedonia",
            "macedoine du nord",
            "macedonia del nord",
        ],
    ),
    ("AL", &["alb", "albanien", "albania", "albanie"]),
    ("RO", &["rou", "rumaenien", "romania", "roumanie"]),
    ("BG", &["bgr", "bulgarien", "bulgaria", "bulgarie"]),
    ("UA", &["ukr", "ukraine", "ucraina"]),
    ("RU", &["rus", "russland", "russia", "russie"]),
    (
        "LT",
        &["ltu", "litauen", "lithuania", "lituanie", "lituania"],
    ),
    ("LV", &["lva", "lettland", "latvia", "lettonie", "lettonia"]),
    ("EE", &["est", "estland", "estonia", "estonie"]),
    ("MT", &["mlt", "malta", "malte"]),
    ("CY", &["cyp", "zypern", "cyprus", "chypre", "cipro"]),
    ("MC", &["mco", "monaco"]),
    ("SM", &["smr", "san marino", "saint marin"]),
    ("AD", &["and", "andorra", "andorre"]),
    ("CA", &["can", "kanada", "canada"]),
    ("AU", &["aus", "australien", "australia", "australie"]),
    (
        "BR",
        &["bra", "brasilien", "brazil", "bresil", "brasile", "brasil"],
    ),
    ("CN", &["chn", "china", "chine", "cina"]),
    ("JP", &["jpn", "japan", "japon", "giappone"]),
    ("IN", &["ind", "indien", "india", "inde"]),
    ("IL", &["isr", "israel"]),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Option<&str>) {
        assert_eq!(
            Country::parse(input).map(Country::code),
            expected,
            "{input:?}"
        );
    }

    #[test]
    fn parses_dach_names_and_codes() {
        for input in [
            "Schweiz",
            "Suisse",
            "Svizzera",
            "Switzerland",
            "CH",
            "ch",
            "CHE",
        ] {
            check(input, Some("CH"));
        }
        for input in ["Deutschland", "Germany", "Allemagne", "DE", "DEU"] {
            check(input, Some("DE"));
        }
        for input in [
            "Österreich",
            "Oesterreich",
            "Austria",
            "Autriche",
            "AT",
            "AUT",
        ] {
            check(input, Some("AT"));
        }
        for input in ["Liechtenstein", "LI", "LIE", "FL"] {
            check(input, Some("LI"));
        }
    }

    #[test]
    fn parses_neighbours() {
        check("Frankreich", Some("FR"));
        check("Italia", Some("IT"));
        check("the Netherlands", Some("NL"));
        check("België", Some("BE"));
        check("Luxembourg", Some("LU"));
        check("United Kingdom", Some("GB"));
        check("  schweiz  ", Some("CH"));
    }

    #[test]
    fn rejects_unknown() {
        check("Atlantis", None);
        check("XX", None);
        check("", None);
    }

    #[test]
    fn iso_codes_are_sorted_for_binary_search() {
        assert!(ISO_CODES.windows(2).all(|w| w[0] < w[1]));
        for (code, names) in NAMES {
            assert!(Country::from_code(code).is_some(), "{code}");
            for name in *names {
                assert_eq!(key_words(name).as_deref(), Some(*name), "{name}");
            }
        }
    }

    #[test]
    fn serialises_as_code() {
        let json = serde_json::to_string(&Country::CH).expect("serialisable");
        assert_eq!(json, "\"CH\"");
        let back: Country = serde_json::from_str("\"Schweiz\"").expect("deserialisable");
        assert_eq!(back, Country::CH);
        assert!(serde_json::from_str::<Country>("\"Atlantis\"").is_err());
    }
}
