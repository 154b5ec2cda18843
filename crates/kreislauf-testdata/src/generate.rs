//! Persons, households and the records exported about them.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use crate::config::GeneratorConfig;
use crate::corrupt;
use crate::format::{self, days_in_month, Date, Phone};
use crate::record::{
    Corruption, Country, DateFormat, Field, Missing, PhoneStyle, PostalVariant, Record, Source,
    TypoKind, UmlautStyle,
};
use crate::reference::{self, Locale, Sex, CITIES, FIRST_NAMES, NICKNAMES, STREETS, SURNAMES};
use crate::rng::{share_weight, Rand, Stream, Weighted};
use crate::Error;

/// How people of each country write their phone number, weights in [`PhoneStyle::ALL`] order.
const PHONE_STYLE_WEIGHTS: [[u64; 9]; 4] = [
    [40, 20, 3, 5, 2, 15, 8, 5, 2],  // CH
    [35, 20, 5, 15, 5, 10, 5, 3, 2], // DE
    [45, 20, 3, 8, 2, 12, 5, 3, 2],  // AT
    [45, 15, 3, 0, 2, 20, 8, 7, 0],  // LI
];

fn country_index(c: Country) -> usize {
    match c {
        Country::Ch => 0,
        Country::De => 1,
        Country::At => 2,
        Country::Li => 3,
    }
}

/// What a source system captures and how it writes it.
struct Profile {
    salutation: f64,
    first_name: f64,
    last_name: f64,
    email: f64,
    phone: f64,
    /// Street and house number.
    address: f64,
    /// Postal code and city (always present when the address is).
    locality: f64,
    birth_date: f64,
    loyalty_card: f64,
    country: f64,
    date_format: DateFormat,
    country_style: CountryStyle,
}

#[derive(Clone, Copy)]
enum CountryStyle {
    Iso,
    LocalName,
    English,
}

fn profile(source: Source) -> &'static Profile {
    const POS: Profile = Profile {
        salutation: 0.85,
        first_name: 1.0,
        last_name: 1.0,
        email: 0.55,
        phone: 0.7,
        address: 0.92,
        locality: 0.95,
        birth_date: 0.75,
        loyalty_card: 1.0,
        country: 0.9,
        date_format: DateFormat::Dotted,
        country_style: CountryStyle::Iso,
    };
    const WINE: Profile = Profile {
        salutation: 0.95,
        first_name: 1.0,
        last_name: 1.0,
        email: 1.0,
        phone: 0.6,
        address: 1.0,
        locality: 1.0,
        birth_date: 1.0,
        loyalty_card: 0.3,
        country: 1.0,
        date_format: DateFormat::Iso,
        country_style: CountryStyle::LocalName,
    };
    const RECIPES: Profile = Profile {
        salutation: 0.3,
        first_name: 0.85,
        last_name: 0.75,
        email: 1.0,
        phone: 0.1,
        address: 0.2,
        locality: 0.45,
        birth_date: 0.15,
        loyalty_card: 0.1,
        country: 0.4,
        date_format: DateFormat::Dotted,
        country_style: CountryStyle::English,
    };
    match source {
        Source::SupermarketPos => &POS,
        Source::WineClubWeb => &WINE,
        Source::RecipesWeb => &RECIPES,
    }
}

fn country_text(style: CountryStyle, locale: Locale) -> &'static str {
    let country = locale.country();
    match style {
        CountryStyle::Iso => country.iso_code(),
        CountryStyle::LocalName => reference::country_local_name(locale),
        CountryStyle::English => match country {
            Country::Ch => "Switzerland",
            Country::De => "Germany",
            Country::At => "Austria",
            Country::Li => "Liechtenstein",
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gender {
    Male,
    Female,
    Diverse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HouseNumber {
    number: u16,
    /// `a`, `b`, … or 0.
    letter: u8,
    /// Austrian door number (`45/12`) or 0.
    door: u8,
}

impl HouseNumber {
    fn render(self) -> String {
        let mut s = self.number.to_string();
        if self.letter != 0 {
            s.push(char::from(self.letter));
        }
        if self.door != 0 {
            s.push('/');
            s.push_str(&self.door.to_string());
        }
        s
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Address {
    city: u16,
    street: u16,
    number: HouseNumber,
}

impl Address {
    fn city(&self) -> &'static reference::City {
        &CITIES[usize::from(self.city)]
    }
}

/// The truth about one person.
struct Person {
    id: u64,
    household: u64,
    gender: Gender,
    title: Option<&'static str>,
    first_name: &'static str,
    last_name: String,
    birth: Date,
    address: Address,
    email: String,
    /// Another address they use, created when a record needs it.
    email2: Option<String>,
    mobile: Option<Phone>,
    landline: Option<Phone>,
    card: u64,
    phone_style: PhoneStyle,
}

/// Hasher for keys that are already well mixed (FNV hashes, phone numbers): one multiply
/// instead of SipHash. Only membership is asked, so the hash never affects the output.
#[derive(Default)]
struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, x: u64) {
        let m = (self.0 ^ x).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = m ^ (m >> 29);
    }
}

type FastSet = HashSet<u64, BuildHasherDefault<MixHasher>>;

/// Uniqueness of identifiers across all persons: two different people never share a
/// personal e-mail address, mobile number or loyalty card (households share on purpose).
struct Registry {
    emails: FastSet,
    phones: FastSet,
    next_card: u64,
    card_offset: u64,
}

const CARD_SPACE: u64 = 100_000_000_000;
/// Coprime with 10, so counter → card body is a bijection modulo 10^11.
const CARD_MULTIPLIER: u64 = 61_803_398_873;

impl Registry {
    fn new(seed: u64, people: usize) -> Self {
        Self {
            emails: FastSet::with_capacity_and_hasher(people + people / 4, Default::default()),
            phones: FastSet::with_capacity_and_hasher(people + people / 4, Default::default()),
            next_card: 0,
            card_offset: format::splitmix64(seed) % CARD_SPACE,
        }
    }

    /// A fresh 12-digit card body starting with 2 (unique for the first 10^11 cards).
    fn new_card(&mut self) -> u64 {
        let c = self.next_card;
        self.next_card += 1;
        let scrambled = ((u128::from(c) * u128::from(CARD_MULTIPLIER)
            + u128::from(self.card_offset))
            % u128::from(CARD_SPACE)) as u64;
        200_000_000_000 + scrambled
    }
}

/// Precomputed weighted choices.
struct Tables {
    /// `[locale][0 = male, 1 = female]` → index into [`FIRST_NAMES`].
    first_names: Vec<[Weighted; 2]>,
    surnames: Vec<Weighted>,
    streets: Vec<Weighted>,
    /// Per country → index into [`CITIES`].
    cities: Vec<Weighted>,
    countries: Weighted,
    sources: Weighted,
    providers: Vec<Weighted>,
    mobiles: Vec<Weighted>,
    phone_styles: Vec<Weighted>,
}

fn enumerate_weights<T>(items: &[T], weight: impl Fn(&T) -> u64) -> Weighted {
    Weighted::new(
        items
            .iter()
            .enumerate()
            .map(|(i, item)| (i as u32, weight(item))),
    )
}

impl Tables {
    fn new(config: &GeneratorConfig) -> Self {
        let first_names = Locale::ALL
            .iter()
            .map(|l| {
                let i = l.index();
                let for_sex = |want: Sex| {
                    enumerate_weights(FIRST_NAMES, |(_, sex, w)| {
                        let w = u64::from(w[i]);
                        match *sex {
                            Sex::N => w,
                            s if s == want => 2 * w,
                            _ => 0,
                        }
                    })
                };
                [for_sex(Sex::M), for_sex(Sex::F)]
            })
            .collect();
        let surnames = Locale::ALL
            .iter()
            .map(|l| enumerate_weights(SURNAMES, |(_, w)| u64::from(w[l.index()])))
            .collect();
        let streets = Locale::ALL
            .iter()
            .map(|l| enumerate_weights(STREETS, |(_, w)| u64::from(w[l.index()])))
            .collect();
        let cities = Country::ALL
            .iter()
            .map(|&c| {
                enumerate_weights(CITIES, |city| {
                    if city.locale.country() == c {
                        u64::from(city.weight)
                    } else {
                        0
                    }
                })
            })
            .collect();
        let countries = enumerate_weights(&config.country_mix.shares(), |&s| share_weight(s));
        let sources = enumerate_weights(&config.source_mix.shares(), |&s| share_weight(s));
        let providers = Country::ALL
            .iter()
            .map(|&c| enumerate_weights(reference::email_providers(c), |(_, w)| u64::from(*w)))
            .collect();
        let mobiles = Country::ALL
            .iter()
            .map(|&c| enumerate_weights(reference::mobile_ranges(c), |(_, _, w)| u64::from(*w)))
            .collect();
        let phone_styles = PHONE_STYLE_WEIGHTS
            .iter()
            .map(|w| enumerate_weights(w, |&x| x))
            .collect();
        Self {
            first_names,
            surnames,
            streets,
            cities,
            countries,
            sources,
            providers,
            mobiles,
            phone_styles,
        }
    }
}

/// Generates records from a [`GeneratorConfig`]. Cheap to create; [`Generator::generate`]
/// does the work and can be called repeatedly with the same result.
pub struct Generator {
    config: GeneratorConfig,
    tables: Tables,
}

/// The role of a household member, which decides age and surname.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Head,
    Partner,
    Child,
}

/// Choices for one record, made before it is written out.
struct View {
    address: Address,
    landline: Option<Phone>,
    first_name: &'static str,
    other_email: bool,
    phone: Option<Phone>,
    phone_style: PhoneStyle,
    date_format: DateFormat,
    swap_day_month: bool,
    city_name: &'static str,
    country_text: &'static str,
    card: u64,
}

/// Which fields a record has, decided by its source.
struct Presence {
    salutation: bool,
    first_name: bool,
    last_name: bool,
    email: bool,
    phone: bool,
    address: bool,
    locality: bool,
    birth_date: bool,
    loyalty_card: bool,
    country: bool,
}

impl Generator {
    /// A generator for a valid config.
    pub fn new(config: GeneratorConfig) -> Result<Self, Error> {
        config.validate()?;
        let tables = Tables::new(&config);
        Ok(Self { config, tables })
    }

    /// The config this generator was made with.
    pub fn config(&self) -> &GeneratorConfig {
        &self.config
    }

    /// All records, shuffled (a person's duplicates are not next to each other), with
    /// `record_id` = position + 1.
    pub fn generate(&self) -> Vec<Record> {
        let cfg = &self.config;
        let mut registry = Registry::new(cfg.seed, cfg.people);
        let mut persons = self.persons(&mut registry);

        let mut rng = Rand::new(cfg.seed, Stream::Records);
        let (trials, p_dup) = duplicate_trials(cfg.duplicate_rate);
        let expected = (cfg.people as f64 * (1.0 + cfg.duplicate_rate) * 1.05) as usize;
        let mut records = Vec::with_capacity(expected.min(cfg.people.saturating_mul(25)));
        for person in &mut persons {
            let first = records.len() as u64;
            let source = self.source(&mut rng);
            records.push(self.record(person, source, None, &mut rng, &mut registry));
            let copies = (0..trials).filter(|_| rng.chance(p_dup)).count();
            for _ in 0..copies {
                let source = self.source(&mut rng);
                records.push(self.record(person, source, Some(first), &mut rng, &mut registry));
            }
        }
        drop(persons);
        finish_order(&mut records, cfg.seed);
        records
    }

    fn source(&self, rng: &mut Rand) -> Source {
        let i = self.tables.sources.sample(rng).unwrap_or(0) as usize;
        Source::ALL
            .get(i)
            .copied()
            .unwrap_or(Source::SupermarketPos)
    }

    fn country(&self, rng: &mut Rand) -> Country {
        let i = self.tables.countries.sample(rng).unwrap_or(0) as usize;
        Country::ALL.get(i).copied().unwrap_or(Country::Ch)
    }

    fn city(&self, country: Country, rng: &mut Rand) -> u16 {
        self.tables.cities[country_index(country)]
            .sample(rng)
            .unwrap_or(0) as u16
    }

    // ------------------------------------------------------------------ persons

    fn persons(&self, registry: &mut Registry) -> Vec<Person> {
        let cfg = &self.config;
        let mut rng = Rand::new(cfg.seed, Stream::Persons);
        // Multi-person households have 2.7 members on average (sizes 2, 3, 4 at 50/30/20 %).
        // Start one with probability q so that the share of persons in them is household_rate.
        let r = cfg.household_rate;
        let mean = 2.7;
        let q = if r >= 1.0 {
            1.0
        } else {
            r / (mean - r * (mean - 1.0))
        };
        let mut persons = Vec::with_capacity(cfg.people);
        let mut household = 0u64;
        while persons.len() < cfg.people {
            let remaining = cfg.people - persons.len();
            let size = if remaining >= 2 && rng.chance(q) {
                let s = match rng.below(10) {
                    0..=4 => 2,
                    5..=7 => 3,
                    _ => 4,
                };
                s.min(remaining)
            } else {
                1
            };
            household += 1;
            self.household(household, size, &mut persons, &mut rng, registry);
        }
        persons
    }

    fn household(
        &self,
        id: u64,
        size: usize,
        persons: &mut Vec<Person>,
        rng: &mut Rand,
        registry: &mut Registry,
    ) {
        let country = self.country(rng);
        let city = self.city(country, rng);
        let address = self.address(city, rng);
        let locale = address.city().locale;
        let surname = self.surname(locale, rng);
        let landline = rng
            .chance(if size == 1 { 0.25 } else { 0.45 })
            .then(|| self.landline(city, rng, registry));
        let family_email = (size > 1 && rng.chance(0.3))
            .then(|| self.family_email(&surname, country, rng, registry));

        let roles: &[Role] = match size {
            1 => &[Role::Head],
            2 if rng.chance(0.8) => &[Role::Head, Role::Partner],
            2 => &[Role::Head, Role::Child],
            3 if rng.chance(0.85) => &[Role::Head, Role::Partner, Role::Child],
            3 => &[Role::Head, Role::Child, Role::Child],
            _ => &[Role::Head, Role::Partner, Role::Child, Role::Child],
        };
        let has_children = roles.contains(&Role::Child);
        let first_member = persons.len();
        let mut head_age = 0u32;
        let mut head_gender = Gender::Female;
        let mut first_child_birth: Option<Date> = None;

        for &role in roles {
            let gender = match role {
                Role::Partner if head_gender != Gender::Diverse && rng.chance(0.92) => {
                    if head_gender == Gender::Male {
                        Gender::Female
                    } else {
                        Gender::Male
                    }
                }
                _ => match rng.below(200) {
                    0 | 1 => Gender::Diverse,
                    x if x < 101 => Gender::Male,
                    _ => Gender::Female,
                },
            };
            let age = match role {
                Role::Head if has_children => 40 + rng.between(0, 20) + rng.between(0, 15),
                Role::Head => 18 + rng.between(0, 40) + rng.between(0, 35),
                Role::Partner => (head_age + rng.between(0, 12)).saturating_sub(6).max(18),
                Role::Child => {
                    let oldest = head_age.saturating_sub(20).clamp(16, 35);
                    rng.between(16, oldest)
                }
            };
            if role == Role::Head {
                head_age = age;
                head_gender = gender;
            }
            let mut birth = self.birth_date(age, rng);
            if role == Role::Child {
                match first_child_birth {
                    // Twins: same birth date, same surname, same address: a hard case.
                    Some(b) if rng.chance(0.05) => birth = b,
                    Some(_) => {}
                    None => first_child_birth = Some(birth),
                }
            }
            let last_name = match role {
                Role::Partner => match rng.below(100) {
                    0..=74 => surname.clone(),
                    75..=86 => {
                        let own = self.surname(locale, rng);
                        if rng.chance(0.5) {
                            format!("{surname}-{own}")
                        } else {
                            format!("{own}-{surname}")
                        }
                    }
                    _ => self.surname(locale, rng),
                },
                _ => surname.clone(),
            };
            let first_name = match role {
                // Junior named after a parent (Hans Müller and Hans Müller).
                Role::Child if rng.chance(0.04) => persons[first_member..]
                    .iter()
                    .find(|p| p.gender == gender)
                    .map_or_else(|| self.first_name(locale, gender, rng), |p| p.first_name),
                _ => self.first_name(locale, gender, rng),
            };
            let title = (role != Role::Child
                && age >= 28
                && rng.chance(if country == Country::At { 0.08 } else { 0.04 }))
            .then(|| rng.pick(reference::titles(country)).copied())
            .flatten();
            let email = match &family_email {
                Some(fe) if role != Role::Child && rng.chance(0.6) => fe.clone(),
                _ => {
                    self.personal_email(first_name, &last_name, birth.year, country, rng, registry)
                }
            };
            let mobile = rng
                .chance(if age > 75 { 0.6 } else { 0.93 })
                .then(|| self.mobile(country, rng, registry));
            let phone_style = self.tables.phone_styles[country_index(country)]
                .sample(rng)
                .and_then(|i| PhoneStyle::ALL.get(i as usize).copied())
                .unwrap_or(PhoneStyle::National);
            let card = registry.new_card();
            persons.push(Person {
                id: persons.len() as u64 + 1,
                household: id,
                gender,
                title,
                first_name,
                last_name,
                birth,
                address,
                email,
                email2: None,
                mobile,
                landline,
                card,
                phone_style,
            });
        }
    }

    fn birth_date(&self, age: u32, rng: &mut Rand) -> Date {
        let year = self.config.reference_year - age as i32;
        let month = rng.between(1, 12);
        let day = rng.between(1, days_in_month(year, month));
        Date { year, month, day }
    }

    fn first_name(&self, locale: Locale, gender: Gender, rng: &mut Rand) -> &'static str {
        let sex = match gender {
            Gender::Male => 0,
            Gender::Female => 1,
            Gender::Diverse => rng.below(2),
        };
        self.tables.first_names[locale.index()][sex]
            .sample(rng)
            .and_then(|i| FIRST_NAMES.get(i as usize))
            .map_or("Alex", |(name, _, _)| name)
    }

    fn surname(&self, locale: Locale, rng: &mut Rand) -> String {
        let from_table = reference::TABLE_SURNAME_PER_MILLE[locale.index()];
        if (rng.below(1000) as u64) >= from_table {
            let (stems, endings) = reference::surname_tail(locale);
            let stem = rng.pick(stems).copied().unwrap_or("Stein");
            let ending = rng.pick(endings).copied().unwrap_or("er");
            return format!("{stem}{ending}");
        }
        self.tables.surnames[locale.index()]
            .sample(rng)
            .and_then(|i| SURNAMES.get(i as usize))
            .map_or("Müller", |(name, _)| name)
            .to_owned()
    }

    fn address(&self, city: u16, rng: &mut Rand) -> Address {
        let locale = CITIES[usize::from(city)].locale;
        let street = self.tables.streets[locale.index()].sample(rng).unwrap_or(0) as u16;
        // Small numbers are far more common than large ones.
        let number = 1 + rng.below(120).min(rng.below(120)) as u16;
        let letter = if rng.chance(0.08) {
            b'a' + rng.below(3) as u8
        } else {
            0
        };
        let door = if locale == Locale::At && rng.chance(0.3) {
            rng.between(1, 40) as u8
        } else {
            0
        };
        Address {
            city,
            street,
            number: HouseNumber {
                number,
                letter,
                door,
            },
        }
    }

    /// The address before the person moved: another street in the same town, another
    /// town, or now and then another country.
    fn old_address(&self, current: Address, rng: &mut Rand) -> Address {
        for _ in 0..8 {
            let city = match rng.below(100) {
                0..=49 => current.city,
                50..=91 => self.city(current.city().locale.country(), rng),
                _ => {
                    let c = self.country(rng);
                    self.city(c, rng)
                }
            };
            let a = self.address(city, rng);
            if a != current {
                return a;
            }
        }
        let mut a = current;
        a.number.number = a.number.number.saturating_add(1);
        a
    }

    fn mobile(&self, country: Country, rng: &mut Rand, registry: &mut Registry) -> Phone {
        let ranges = reference::mobile_ranges(country);
        let i = self.tables.mobiles[country_index(country)]
            .sample(rng)
            .unwrap_or(0) as usize;
        let (prefix, len, _) = ranges.get(i).copied().unwrap_or(("79", 7, 1));
        self.unique_phone(country, prefix, len, 1, rng, registry)
    }

    fn landline(&self, city: u16, rng: &mut Rand, registry: &mut Registry) -> Phone {
        let c = &CITIES[usize::from(city)];
        let country = c.locale.country();
        let (prefix, len) = if country == Country::Li {
            let p = rng
                .pick(reference::LI_LANDLINE_PREFIXES)
                .copied()
                .unwrap_or("23");
            (p, 5)
        } else {
            (
                c.area_code,
                reference::landline_subscriber_len(country, c.area_code),
            )
        };
        self.unique_phone(country, prefix, len, 2, rng, registry)
    }

    fn unique_phone(
        &self,
        country: Country,
        prefix: &'static str,
        len: u8,
        first_digit: u32,
        rng: &mut Rand,
        registry: &mut Registry,
    ) -> Phone {
        let base = 10u32.pow(u32::from(len.saturating_sub(1)));
        let mut phone = Phone {
            country,
            prefix,
            subscriber: 0,
            subscriber_len: len,
        };
        for _ in 0..32 {
            // A subscriber number never starts with 0 (or, for landlines, 1).
            phone.subscriber = rng.between(first_digit * base, 10 * base - 1);
            if registry.phones.insert(phone.e164()) {
                break;
            }
        }
        phone
    }

    fn personal_email(
        &self,
        first: &str,
        last: &str,
        birth_year: i32,
        country: Country,
        rng: &mut Rand,
        registry: &mut Registry,
    ) -> String {
        let provider = self.provider(country, rng);
        let mut f = String::with_capacity(first.len() + 2);
        format::email_ascii(first, &mut f);
        let mut l = String::with_capacity(last.len() + 2);
        format::email_ascii(last, &mut l);
        if f.is_empty() {
            f.push_str("kunde");
        }
        if l.is_empty() {
            l.push_str("kunde");
        }
        let f0 = &f[..1];
        let yy = birth_year.rem_euclid(100);
        let mut local = match rng.below(100) {
            0..=29 => format!("{f}.{l}"),
            30..=39 => format!("{f}{l}"),
            40..=49 => format!("{f0}.{l}"),
            50..=57 => format!("{f0}{l}"),
            58..=63 => format!("{l}.{f}"),
            64..=71 => format!("{f}.{l}{yy:02}"),
            72..=76 => format!("{f}{l}{:02}", rng.below(100)),
            77..=80 => format!("{f}_{l}"),
            81..=84 => format!("{l}{f0}"),
            85..=88 => format!("{f}{birth_year}"),
            89..=91 => format!("{f}.{l}{birth_year}"),
            _ => format!("{l}{:03}", rng.below(1000)),
        };
        self.unique_email(&mut local, provider, rng, registry)
    }

    fn family_email(
        &self,
        surname: &str,
        country: Country,
        rng: &mut Rand,
        registry: &mut Registry,
    ) -> String {
        let provider = self.provider(country, rng);
        let mut l = String::with_capacity(surname.len() + 2);
        format::email_ascii(surname, &mut l);
        let mut local = match rng.below(5) {
            0 => format!("familie.{l}"),
            1 => format!("fam.{l}"),
            2 => format!("{l}.familie"),
            3 => format!("{l}s"),
            _ => format!("familie{l}"),
        };
        self.unique_email(&mut local, provider, rng, registry)
    }

    fn provider(&self, country: Country, rng: &mut Rand) -> &'static str {
        let providers = reference::email_providers(country);
        self.tables.providers[country_index(country)]
            .sample(rng)
            .and_then(|i| providers.get(i as usize))
            .map_or("gmail.com", |(p, _)| p)
    }

    /// `local@provider`, with digits appended until no other person has it.
    fn unique_email(
        &self,
        local: &mut String,
        provider: &str,
        rng: &mut Rand,
        registry: &mut Registry,
    ) -> String {
        let mut email = format!("{local}@{provider}");
        let mut tries = 0;
        while !registry.emails.insert(format::fnv1a(&email)) {
            tries += 1;
            if tries > 6 {
                // Practically never: make it unique by construction.
                local.push('.');
                local.push_str(&registry.emails.len().to_string());
            } else {
                local.push(rng.digit());
            }
            email = format!("{local}@{provider}");
        }
        email
    }

    // ------------------------------------------------------------------ records

    fn record(
        &self,
        person: &mut Person,
        source: Source,
        duplicate_of: Option<u64>,
        rng: &mut Rand,
        registry: &mut Registry,
    ) -> Record {
        let p = profile(source);
        let has_phone = person.mobile.is_some() || person.landline.is_some();
        let address = rng.chance(p.address);
        let has = Presence {
            salutation: rng.chance(p.salutation) && person.gender != Gender::Diverse,
            first_name: rng.chance(p.first_name),
            last_name: rng.chance(p.last_name),
            email: rng.chance(p.email),
            phone: rng.chance(p.phone) && has_phone,
            address,
            locality: address || rng.chance(p.locality),
            birth_date: rng.chance(p.birth_date),
            loyalty_card: rng.chance(p.loyalty_card),
            country: rng.chance(p.country),
        };
        let locale = person.address.city().locale;
        let mut view = View {
            address: person.address,
            landline: person.landline,
            first_name: person.first_name,
            other_email: false,
            phone: person.mobile.or(person.landline),
            phone_style: person.phone_style,
            date_format: p.date_format,
            swap_day_month: false,
            city_name: person.address.city().name,
            country_text: country_text(p.country_style, locale),
            card: person.card,
        };
        let mut corruptions = Vec::new();
        if duplicate_of.is_some() {
            self.corrupt_view(person, &has, p, &mut view, &mut corruptions, rng, registry);
        }
        let mut record = self.render(person, source, &has, &view, duplicate_of);
        if duplicate_of.is_some() {
            let country = view.address.city().locale.country();
            self.corrupt_strings(&mut record, country, &mut corruptions, rng);
        }
        record.corruptions = corruptions;
        record
    }

    #[allow(clippy::too_many_arguments)]
    fn corrupt_view(
        &self,
        person: &mut Person,
        has: &Presence,
        profile: &Profile,
        view: &mut View,
        out: &mut Vec<Corruption>,
        rng: &mut Rand,
        registry: &mut Registry,
    ) {
        let e = &self.config.errors;
        if (has.address || has.locality) && rng.chance(e.old_address) {
            view.address = self.old_address(person.address, rng);
            if view.landline.is_some() {
                let old = self.landline(view.address.city, rng, registry);
                if view.phone == person.landline {
                    view.phone = Some(old);
                }
                view.landline = Some(old);
            }
            view.city_name = view.address.city().name;
            view.country_text = country_text(profile.country_style, view.address.city().locale);
            out.push(Corruption::OldAddress);
        }
        if has.first_name && rng.chance(e.nickname) {
            if let Some(short) = nickname(person.first_name, rng) {
                view.first_name = short;
                out.push(Corruption::Nickname);
            }
        }
        if has.email && rng.chance(e.other_email) {
            if person.email2.is_none() {
                let country = person.address.city().locale.country();
                let email2 = self.personal_email(
                    person.first_name,
                    &person.last_name,
                    person.birth.year,
                    country,
                    rng,
                    registry,
                );
                person.email2 = Some(email2);
            }
            view.other_email = true;
            out.push(Corruption::OtherEmail);
        }
        if has.phone && rng.chance(e.other_phone) {
            if let (Some(mobile), Some(landline)) = (person.mobile, view.landline) {
                view.phone = Some(if view.phone == Some(mobile) {
                    landline
                } else {
                    mobile
                });
                out.push(Corruption::OtherPhone);
            }
        }
        if has.loyalty_card && rng.chance(e.new_loyalty_card) {
            view.card = registry.new_card();
            out.push(Corruption::NewLoyaltyCard);
        }
        if has.phone && rng.chance(e.phone_format) {
            if let Some(phone) = view.phone {
                let current = phone.format(view.phone_style);
                let others: Vec<PhoneStyle> = PhoneStyle::ALL
                    .iter()
                    .copied()
                    .filter(|&s| phone.format(s) != current)
                    .collect();
                if let Some(&style) = rng.pick(&others) {
                    view.phone_style = style;
                    out.push(Corruption::PhoneFormat { style });
                }
            }
        }
        if has.birth_date && rng.chance(e.birth_date_format) {
            let others: Vec<DateFormat> = DateFormat::ALL
                .iter()
                .copied()
                .filter(|&f| f != view.date_format)
                .collect();
            if let Some(&format) = rng.pick(&others) {
                view.date_format = format;
                out.push(Corruption::BirthDateFormat { format });
            }
        }
        if has.birth_date && rng.chance(e.day_month_swap) {
            let b = person.birth;
            if b.day <= 12 && b.day != b.month {
                view.swap_day_month = true;
                out.push(Corruption::DayMonthSwapped);
            }
        }
        if has.locality && rng.chance(e.city_variant) {
            if let Some(&alias) = rng.pick(view.address.city().aliases) {
                view.city_name = alias;
                out.push(Corruption::CityVariant);
            }
        }
        if has.country && rng.chance(e.country_variant) {
            let spellings = reference::country_spellings(view.address.city().locale.country());
            let current = view.country_text;
            let others: Vec<&'static str> = spellings
                .iter()
                .copied()
                .filter(|&s| s != current)
                .collect();
            if let Some(&s) = rng.pick(&others) {
                view.country_text = s;
                out.push(Corruption::CountryVariant);
            }
        }
    }

    fn render(
        &self,
        person: &Person,
        source: Source,
        has: &Presence,
        view: &View,
        duplicate_of: Option<u64>,
    ) -> Record {
        let city = view.address.city();
        let country = city.locale.country();
        let salutation = has.salutation.then(|| {
            let (m, f) = reference::salutations(person.address.city().locale);
            let base = if person.gender == Gender::Male { m } else { f };
            match person.title {
                Some(t) if source != Source::RecipesWeb => format!("{base} {t}"),
                _ => base.to_owned(),
            }
        });
        let email = has.email.then(|| match (&person.email2, view.other_email) {
            (Some(e2), true) => e2.clone(),
            _ => person.email.clone(),
        });
        let street = has.address.then(|| {
            let name = STREETS
                .get(usize::from(view.address.street))
                .map_or("Hauptstraße", |(s, _)| s);
            if country.uses_eszett() {
                name.to_owned()
            } else {
                name.replace('ß', "ss")
            }
        });
        Record {
            record_id: 0,
            source,
            customer_id: None,
            salutation,
            first_name: has.first_name.then(|| view.first_name.to_owned()),
            last_name: has.last_name.then(|| person.last_name.clone()),
            email,
            phone: view
                .phone
                .filter(|_| has.phone)
                .map(|p| p.format(view.phone_style)),
            street,
            house_number: has.address.then(|| view.address.number.render()),
            postal_code: has.locality.then(|| city.postal_code.to_owned()),
            city: has.locality.then(|| view.city_name.to_owned()),
            country: has.country.then(|| view.country_text.to_owned()),
            birth_date: has
                .birth_date
                .then(|| person.birth.format(view.date_format, view.swap_day_month)),
            loyalty_card: has.loyalty_card.then(|| format::loyalty_card(view.card)),
            person_id: person.id,
            household_id: person.household,
            duplicate_of,
            corruptions: Vec::new(),
        }
    }

    fn corrupt_strings(
        &self,
        r: &mut Record,
        country: Country,
        out: &mut Vec<Corruption>,
        rng: &mut Rand,
    ) {
        let e = &self.config.errors;
        if rng.chance(e.house_number_in_street) {
            if let (Some(street), Some(number)) = (&r.street, &r.house_number) {
                r.street = Some(format!("{street} {number}"));
                r.house_number = None;
                out.push(Corruption::HouseNumberInStreet);
            }
        }
        if rng.chance(e.street_abbreviation) {
            if let Some(s) = r.street.as_deref().and_then(corrupt::abbreviate_street) {
                r.street = Some(s);
                out.push(Corruption::StreetAbbreviated);
            }
        }
        if rng.chance(e.postal_code_variant) {
            if let Some(code) = &r.postal_code {
                let variant = if code.starts_with('0') && rng.chance(0.7) {
                    PostalVariant::LeadingZeroLost
                } else {
                    PostalVariant::CountryPrefix
                };
                let new = match variant {
                    PostalVariant::LeadingZeroLost => code.trim_start_matches('0').to_owned(),
                    PostalVariant::CountryPrefix => {
                        format!("{}{code}", reference::postal_prefix(country))
                    }
                };
                r.postal_code = Some(new);
                out.push(Corruption::PostalCodeVariant { variant });
            }
        }
        if rng.chance(e.email_domain_typo) {
            if let Some(new) = r
                .email
                .as_deref()
                .and_then(|m| corrupt::email_domain_typo(m, rng))
            {
                r.email = Some(new);
                out.push(Corruption::EmailDomainTypo);
            }
        }
        if rng.chance(e.swapped_names) && r.first_name.is_some() && r.last_name.is_some() {
            std::mem::swap(&mut r.first_name, &mut r.last_name);
            out.push(Corruption::SwappedNames);
        }
        if rng.chance(e.umlaut) {
            let style = if rng.chance(0.7) {
                UmlautStyle::Transliterated
            } else {
                UmlautStyle::Stripped
            };
            for field in [
                Field::FirstName,
                Field::LastName,
                Field::Street,
                Field::City,
            ] {
                if apply(r, field, |s| corrupt::umlauts(s, style)) {
                    out.push(Corruption::Umlaut { field, style });
                }
            }
        }
        if rng.chance(e.eszett) {
            const FIELDS: [Field; 4] = [
                Field::FirstName,
                Field::LastName,
                Field::Street,
                Field::City,
            ];
            let with_eszett: Vec<Field> = FIELDS
                .into_iter()
                .filter(|&f| r.field(f).is_some_and(|s| s.contains('ß')))
                .collect();
            if with_eszett.is_empty() {
                let with_ss: Vec<Field> = [Field::LastName, Field::Street]
                    .into_iter()
                    .filter(|&f| r.field(f).is_some_and(|s| s.contains("ss")))
                    .collect();
                if let Some(&field) = rng.pick(&with_ss) {
                    if apply(r, field, corrupt::ss_to_eszett) {
                        out.push(Corruption::Eszett {
                            field,
                            to_ss: false,
                        });
                    }
                }
            } else {
                for field in with_eszett {
                    if apply(r, field, corrupt::eszett_to_ss) {
                        out.push(Corruption::Eszett { field, to_ss: true });
                    }
                }
            }
        }
        if rng.chance(e.upper_case) {
            let fields: &[Field] = match rng.below(100) {
                0..=49 => &[Field::LastName],
                50..=74 => &[Field::FirstName, Field::LastName],
                75..=89 => &[Field::City],
                _ => &[Field::Street],
            };
            for &field in fields {
                if apply(r, field, corrupt::upper_case) {
                    out.push(Corruption::UpperCase { field });
                }
            }
        }
        if rng.chance(e.lower_case) {
            let fields: &[Field] = match rng.below(100) {
                0..=59 => &[Field::FirstName, Field::LastName],
                60..=79 => &[Field::City],
                _ => &[Field::Street],
            };
            for &field in fields {
                if apply(r, field, corrupt::lower_case) {
                    out.push(Corruption::LowerCase { field });
                }
            }
        }
        if rng.chance(e.typo) {
            let fields = [
                (Field::LastName, 35),
                (Field::FirstName, 25),
                (Field::Street, 20),
                (Field::City, 10),
                (Field::Email, 10),
            ];
            if let Some(field) = pick_present(r, &fields, rng) {
                let kind = match rng.below(4) {
                    0 => TypoKind::Substitution,
                    1 => TypoKind::Transposition,
                    2 => TypoKind::Deletion,
                    _ => TypoKind::Insertion,
                };
                if apply(r, field, |s| corrupt::typo(s, kind, rng)) {
                    out.push(Corruption::Typo { field, kind });
                }
            }
        }
        if rng.chance(e.whitespace) {
            let fields = [
                (Field::FirstName, 25),
                (Field::LastName, 25),
                (Field::Street, 20),
                (Field::City, 10),
                (Field::Email, 15),
                (Field::Phone, 5),
            ];
            if let Some(field) = pick_present(r, &fields, rng) {
                if apply(r, field, |s| Some(corrupt::whitespace(s, rng))) {
                    out.push(Corruption::Whitespace { field });
                }
            }
        }
        if rng.chance(e.missing) {
            let fields = [
                (Field::Email, 20),
                (Field::Phone, 20),
                (Field::BirthDate, 20),
                (Field::Street, 10),
                (Field::Salutation, 10),
                (Field::PostalCode, 5),
                (Field::City, 5),
                (Field::FirstName, 5),
                (Field::Country, 5),
            ];
            if let Some(field) = pick_present(r, &fields, rng) {
                let how = match rng.below(100) {
                    0..=44 => Missing::Absent,
                    45..=79 => Missing::Blank,
                    _ => Missing::Placeholder,
                };
                let value = match how {
                    Missing::Absent => None,
                    Missing::Blank => Some(if rng.chance(0.6) { "" } else { " " }.to_owned()),
                    Missing::Placeholder => {
                        let list = match field {
                            Field::Email => reference::EMAIL_PLACEHOLDERS,
                            Field::Phone => reference::PHONE_PLACEHOLDERS,
                            Field::BirthDate => reference::DATE_PLACEHOLDERS,
                            _ => reference::GENERIC_PLACEHOLDERS,
                        };
                        rng.pick(list).map(|s| (*s).to_owned())
                    }
                };
                *r.field_mut(field) = value;
                if field == Field::Street {
                    r.house_number = None;
                }
                out.push(Corruption::Missing { field, how });
            }
        }
    }
}

/// Replaces a present field's value if `f` changes it; true if it did.
fn apply(r: &mut Record, field: Field, f: impl FnOnce(&str) -> Option<String>) -> bool {
    let slot = r.field_mut(field);
    let Some(old) = slot.as_deref() else {
        return false;
    };
    match f(old) {
        Some(new) if new != old => {
            *slot = Some(new);
            true
        }
        _ => false,
    }
}

/// A weighted choice among the fields that have a non-blank value.
fn pick_present(r: &Record, fields: &[(Field, u64)], rng: &mut Rand) -> Option<Field> {
    let w = Weighted::new(fields.iter().enumerate().map(|(i, &(f, w))| {
        let present = r.field(f).is_some_and(|s| !s.trim().is_empty());
        (i as u32, if present { w } else { 0 })
    }));
    if w.is_empty() {
        return None;
    }
    w.sample(rng)
        .and_then(|i| fields.get(i as usize))
        .map(|&(f, _)| f)
}

fn nickname(first_name: &str, rng: &mut Rand) -> Option<&'static str> {
    let (_, shorts) = NICKNAMES.iter().find(|(full, _)| *full == first_name)?;
    rng.pick(shorts).copied()
}

/// Binomial duplicate counts: `trials` chances of `p` each, mean `rate`.
fn duplicate_trials(rate: f64) -> (usize, f64) {
    if rate <= 0.0 || !rate.is_finite() {
        return (0, 0.0);
    }
    let trials = ((rate * 3.0).ceil() as usize).max(3);
    (trials, rate / trials as f64)
}

/// Shuffles records so that a person's duplicates are scattered, then numbers them and
/// gives each the customer number of its source system.
fn finish_order(records: &mut [Record], seed: u64) {
    let n = records.len();
    let mut order: Vec<u32> = (0..n as u32).collect();
    Rand::new(seed, Stream::Shuffle).shuffle(&mut order);
    // position[old index] = new index
    let mut position = vec![0u32; n];
    for (new, &old) in order.iter().enumerate() {
        position[old as usize] = new as u32;
    }
    for (old, r) in records.iter_mut().enumerate() {
        r.record_id = u64::from(position[old]) + 1;
        r.duplicate_of = r
            .duplicate_of
            .map(|first| u64::from(position[first as usize]) + 1);
    }
    // Move each record to its position by following cycles: O(n) swaps, where sorting
    // would move these large structs O(n log n) times.
    for i in 0..n {
        loop {
            let target = position[i] as usize;
            if target == i {
                break;
            }
            records.swap(i, target);
            position.swap(i, target);
        }
    }

    let mut counters = [0u64; 3];
    for r in records.iter_mut() {
        let slot = match r.source {
            Source::SupermarketPos => 0,
            Source::WineClubWeb => 1,
            Source::RecipesWeb => 2,
        };
        let c = counters[slot];
        counters[slot] += 1;
        r.customer_id = Some(match r.source {
            Source::SupermarketPos => format!("{:09}", 100_000_000 + c),
            Source::WineClubWeb => format!("WC-{:06}", c + 1),
            Source::RecipesWeb => {
                format!("u{:012x}", format::splitmix64(seed ^ c) & 0xffff_ffff_ffff)
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_are_unique_and_valid() {
        let mut reg = Registry::new(1, 0);
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let body = reg.new_card();
            assert!((200_000_000_000..300_000_000_000).contains(&body));
            assert!(seen.insert(body));
        }
    }

    #[test]
    fn duplicate_trials_mean() {
        assert_eq!(duplicate_trials(0.0), (0, 0.0));
        let (t, p) = duplicate_trials(0.3);
        assert!((t as f64 * p - 0.3).abs() < 1e-12);
        let (t, p) = duplicate_trials(5.0);
        assert!(p <= 1.0 / 3.0 + 1e-12 && (t as f64 * p - 5.0).abs() < 1e-9);
    }

    #[test]
    fn house_numbers_render() {
        let h = |number, letter, door| {
            HouseNumber {
                number,
                letter,
                door,
            }
            .render()
        };
        assert_eq!(h(12, 0, 0), "12");
        assert_eq!(h(12, b'a', 0), "12a");
        assert_eq!(h(45, 0, 7), "45/7");
    }
}
