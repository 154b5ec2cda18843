//! Seeded synthetic wine-club world with known structure.
//!
//! * **Wines** (types sparkling/white/red/rosé/sweet, grapes, regions in
//!   DACH, Italy and France, sweetness, prices), **deli** products
//!   (cheeses, antipasti, cured meat, sweets) and **recipes** with German
//!   titles and descriptions (cuisine, course, diet, main ingredients,
//!   occasion; many titles are compounds like "Spargelrisotto").
//! * A hidden **pairing truth**: which recipe/deli attribute values go with
//!   which wine attribute values. The marketer's rule document given to the
//!   engine is derived from it honestly: about a quarter of the true pairs
//!   are missing, weights are perturbed, and two rules are plain wrong.
//! * **Behaviour**: profiles with preferences (favourite wine types,
//!   country, price tier, diet, cuisine) shop a few times a year; a trip
//!   buys wine (sometimes a wine plus its hidden "bundle companion"),
//!   often a deli item that goes with the wine, and is followed by clicks
//!   on recipes that go with the wine — preferring freshly published
//!   recipes, as newsletters do. **Seasonality**: sparkling peaks around
//!   New Year, rosé in summer, red in winter, more trips in December.
//!   **Noise**: a share of events hits a random item.
//!
//! So the structure is learnable from behaviour (co-occurrence,
//! preferences) *and* from attributes (pairing, similarity, freshness), as
//! in real retail. Everything derives from the seed.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::analysis::Language;
use crate::catalog::{Catalog, CatalogMeta, CatalogSet, Item, ItemKey};
use crate::interactions::{Interaction, InteractionKind};
use crate::rules::{PairingRule, PairingRules, RuleSide};

/// Size and shape of the generated world.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeneratorConfig {
    /// Seed; same seed, same world.
    pub seed: u64,
    /// Profiles.
    pub profiles: usize,
    /// Wines.
    pub wines: usize,
    /// Deli products.
    pub deli: usize,
    /// Recipes.
    pub recipes: usize,
    /// Days of behaviour from `start`.
    pub days: u32,
    /// Day (from `start`) of the train/test split.
    pub split_day: u32,
    /// Mean shopping trips per profile over the period.
    pub trips_per_profile: f64,
    /// Share of events that hit a random item.
    pub noise: f64,
    /// Stop after this many interactions (benchmarks).
    pub max_interactions: Option<usize>,
    /// Share of wines replaced by a new vintage shortly before the split.
    pub successor_share: f64,
}

impl GeneratorConfig {
    /// The evaluation default: a year, split on 1 December.
    pub fn standard(seed: u64) -> Self {
        Self {
            seed,
            profiles: 8000,
            wines: 400,
            deli: 120,
            recipes: 900,
            days: 731,
            split_day: 700,
            trips_per_profile: 8.0,
            noise: 0.08,
            max_interactions: None,
            successor_share: 0.25,
        }
    }

    /// A small world for tests.
    pub fn small(seed: u64) -> Self {
        Self {
            profiles: 3000,
            wines: 150,
            deli: 50,
            recipes: 300,
            ..Self::standard(seed)
        }
    }

    /// The benchmark world: 100,000 items, 10 million interactions.
    pub fn bench(seed: u64) -> Self {
        Self {
            profiles: 2_000_000,
            wines: 20_000,
            deli: 5_000,
            recipes: 75_000,
            max_interactions: Some(10_000_000),
            ..Self::standard(seed)
        }
    }

    /// Start of the behaviour period (fixed so runs are reproducible).
    pub fn start(&self) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2023, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default()
    }

    /// The split time.
    pub fn split_time(&self) -> DateTime<Utc> {
        self.start() + Duration::days(i64::from(self.split_day))
    }
}

/// One entry of the hidden pairing truth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TruthPair {
    /// Wine attribute (`type` or `country`).
    pub wine_attribute: String,
    /// Wine value.
    pub wine_value: String,
    /// Target catalog (`recipes` or `deli`).
    pub catalog: String,
    /// Target attribute.
    pub attribute: String,
    /// Target value.
    pub value: String,
    /// True affinity.
    pub weight: f64,
}

const WINE_TYPES: [&str; 5] = ["sparkling", "white", "red", "rose", "sweet"];
const WINE_TYPE_SHARE: [f64; 5] = [0.2, 0.3, 0.3, 0.1, 0.1];
const WINE_CATEGORY: [&str; 5] = ["Schaumwein", "Weißwein", "Rotwein", "Roséwein", "Süßwein"];

const REGIONS: [(&str, &str, usize); 19] = [
    ("Mosel", "Deutschland", 0),
    ("Rheingau", "Deutschland", 0),
    ("Pfalz", "Deutschland", 0),
    ("Baden", "Deutschland", 0),
    ("Franken", "Deutschland", 0),
    ("Wachau", "Österreich", 0),
    ("Burgenland", "Österreich", 0),
    ("Wallis", "Schweiz", 0),
    ("Piemont", "Italien", 1),
    ("Toskana", "Italien", 1),
    ("Venetien", "Italien", 1),
    ("Sizilien", "Italien", 1),
    ("Lombardei", "Italien", 1),
    ("Bordeaux", "Frankreich", 2),
    ("Burgund", "Frankreich", 2),
    ("Champagne", "Frankreich", 2),
    ("Elsass", "Frankreich", 2),
    ("Provence", "Frankreich", 2),
    ("Loire", "Frankreich", 2),
];
const COUNTRY_CUISINE: [&str; 3] = ["deutsch", "italienisch", "französisch"];

const GRAPES: [&[&str]; 5] = [
    &["Glera", "Chardonnay", "Pinot Noir", "Riesling"],
    &[
        "Riesling",
        "Grüner Veltliner",
        "Sauvignon Blanc",
        "Chardonnay",
        "Weißburgunder",
        "Silvaner",
    ],
    &[
        "Spätburgunder",
        "Nebbiolo",
        "Sangiovese",
        "Merlot",
        "Cabernet Sauvignon",
        "Blaufränkisch",
        "Zweigelt",
        "Syrah",
    ],
    &["Grenache", "Pinot Noir", "Zweigelt", "Cinsault"],
    &["Riesling", "Muskateller", "Sémillon", "Gewürztraminer"],
];
const SWEETNESS: [&[&str]; 5] = [
    &["brut", "extra dry", "brut nature"],
    &["trocken", "feinherb"],
    &["trocken"],
    &["trocken", "halbtrocken"],
    &["edelsüß", "lieblich"],
];
const AROMAS: [&[&str]; 5] = [
    &["Apfel", "Birne", "Brioche", "Zitrus", "Mandel"],
    &["Pfirsich", "Zitrus", "Apfel", "Kräutern", "Stachelbeere"],
    &["Kirsche", "Brombeere", "Pflaume", "Vanille", "Tabak"],
    &["Erdbeere", "Himbeere", "Melone", "Grapefruit"],
    &["Honig", "Aprikose", "Rosinen", "Quitte"],
];
const PRODUCERS: [&str; 12] = [
    "Weingut Müller",
    "Weingut Becker",
    "Tenuta Rossi",
    "Cantina Bianchi",
    "Domaine Martin",
    "Château Laurent",
    "Weingut Huber",
    "Weingut Schäfer",
    "Tenuta del Sole",
    "Domaine Dubois",
    "Weingut Steiner",
    "Cave Moreau",
];

/// (category, kind, base titles) of deli products.
const DELI: [(&str, &str, &[&str]); 9] = [
    (
        "Käse",
        "hartkäse",
        &[
            "Parmigiano Reggiano",
            "Bergkäse",
            "Comté",
            "Pecorino",
            "Gruyère",
        ],
    ),
    (
        "Käse",
        "weichkäse",
        &["Brie de Meaux", "Camembert", "Taleggio"],
    ),
    (
        "Käse",
        "blauschimmel",
        &["Gorgonzola dolce", "Roquefort", "Stilton"],
    ),
    (
        "Käse",
        "ziegenkäse",
        &[
            "Ziegenfrischkäse",
            "Crottin de Chavignol",
            "Ziegenkäse-Taler",
        ],
    ),
    (
        "Antipasti",
        "oliven",
        &[
            "Oliven aus Apulien",
            "Kalamata-Oliven",
            "Oliven mit Kräutern",
        ],
    ),
    (
        "Antipasti",
        "gemüse",
        &[
            "Getrocknete Tomaten",
            "Artischockenherzen",
            "Gegrillte Paprika",
        ],
    ),
    (
        "Wurst",
        "salami",
        &["Salami Milano", "Fenchelsalami", "Chorizo"],
    ),
    (
        "Wurst",
        "schinken",
        &[
            "Prosciutto di Parma",
            "Schwarzwälder Schinken",
            "Serrano-Schinken",
        ],
    ),
    (
        "Süßes",
        "schokolade",
        &["Zartbitterschokolade", "Nougat", "Cantuccini"],
    ),
];
const DELI_VARIANTS: [&str; 6] = ["", "Bio", "gereift", "Premium", "Hofladen", "Manufaktur"];

/// Wine type → deli kind affinity (hidden truth).
const DELI_TRUTH: [&[(&str, f64)]; 5] = [
    &[
        ("hartkäse", 0.8),
        ("oliven", 0.7),
        ("schinken", 0.8),
        ("ziegenkäse", 0.3),
    ],
    &[
        ("ziegenkäse", 1.0),
        ("weichkäse", 0.7),
        ("gemüse", 0.5),
        ("oliven", 0.3),
    ],
    &[
        ("hartkäse", 1.0),
        ("salami", 0.9),
        ("schinken", 0.5),
        ("schokolade", 0.4),
    ],
    &[("oliven", 0.9), ("gemüse", 0.8), ("ziegenkäse", 0.4)],
    &[("blauschimmel", 1.2), ("schokolade", 0.8)],
];

const COURSES: [(&str, &str, &[&str]); 6] = [
    (
        "antipasti",
        "Antipasti",
        &["Bruschetta", "Crostini", "Carpaccio", "Tapenade"],
    ),
    ("vorspeise", "Vorspeise", &["Salat", "Tatar", "Terrine"]),
    ("suppe", "Suppe", &["Suppe", "Cremesuppe", "Consommé"]),
    (
        "hauptgericht",
        "Hauptgericht",
        &[
            "Risotto", "Braten", "Pasta", "Curry", "Gratin", "Auflauf", "Steak", "Filet", "Ragout",
        ],
    ),
    (
        "dessert",
        "Dessert",
        &["Tarte", "Mousse", "Parfait", "Crumble", "Tiramisu"],
    ),
    (
        "fingerfood",
        "Fingerfood",
        &["Spieße", "Tartelettes", "Häppchen"],
    ),
];

/// (code, compound prefix, "mit" form, diet, dessert ingredient)
const INGREDIENTS: [(&str, &str, &str, &str, bool); 19] = [
    ("spargel", "Spargel", "Spargel", "vegetarisch", false),
    ("tomate", "Tomaten", "Tomaten", "vegan", false),
    ("pilze", "Pilz", "Pilzen", "vegan", false),
    ("kürbis", "Kürbis", "Kürbis", "vegan", false),
    ("zucchini", "Zucchini", "Zucchini", "vegan", false),
    ("aubergine", "Auberginen", "Auberginen", "vegan", false),
    ("rind", "Rinder", "Rindfleisch", "fleisch", false),
    ("schwein", "Schweine", "Schweinefleisch", "fleisch", false),
    ("lamm", "Lamm", "Lamm", "fleisch", false),
    ("geflügel", "Hähnchen", "Hähnchen", "fleisch", false),
    ("wild", "Hirsch", "Hirsch", "fleisch", false),
    ("lachs", "Lachs", "Lachs", "fisch", false),
    ("garnelen", "Garnelen", "Garnelen", "fisch", false),
    ("zander", "Zander", "Zander", "fisch", false),
    ("thunfisch", "Thunfisch", "Thunfisch", "fisch", false),
    ("käse", "Käse", "Käse", "vegetarisch", false),
    ("beeren", "Beeren", "Beeren", "vegan", true),
    ("apfel", "Apfel", "Äpfeln", "vegan", true),
    ("schokolade", "Schoko", "Schokolade", "vegetarisch", true),
];

const CUISINES: [(&str, &str, f64); 6] = [
    ("italienisch", "Italienische", 0.25),
    ("deutsch", "Deutsche", 0.2),
    ("französisch", "Französische", 0.15),
    ("mediterran", "Mediterrane", 0.15),
    ("asiatisch", "Asiatische", 0.1),
    ("österreichisch", "Österreichische", 0.15),
];
const OCCASIONS: [(&str, &str); 7] = [
    ("silvester", "Silvester"),
    ("grillen", "den Grillabend"),
    ("sommer", "laue Sommerabende"),
    ("festtag", "Festtage"),
    ("alltag", "den Alltag"),
    ("brunch", "den Brunch"),
    ("weihnachten", "Weihnachten"),
];
const ADJECTIVES: [&str; 8] = [
    "",
    "",
    "",
    "Schnelles",
    "Klassisches",
    "Cremiges",
    "Würziges",
    "Leichtes",
];

/// Wine type → (recipe attribute, value, affinity) — hidden truth.
const RECIPE_TRUTH: [&[(&str, &str, f64)]; 5] = [
    &[
        ("course", "antipasti", 1.0),
        ("course", "fingerfood", 0.9),
        ("occasion", "silvester", 1.0),
        ("main_ingredients", "garnelen", 0.6),
        ("main_ingredients", "lachs", 0.5),
        ("occasion", "brunch", 0.4),
    ],
    &[
        ("main_ingredients", "spargel", 1.0),
        ("diet", "fisch", 0.8),
        ("main_ingredients", "zander", 0.5),
        ("cuisine", "asiatisch", 0.5),
        ("main_ingredients", "geflügel", 0.5),
        ("course", "vorspeise", 0.3),
    ],
    &[
        ("main_ingredients", "rind", 1.0),
        ("main_ingredients", "wild", 1.0),
        ("main_ingredients", "lamm", 0.8),
        ("main_ingredients", "pilze", 0.5),
        ("occasion", "weihnachten", 0.6),
        ("course", "hauptgericht", 0.3),
    ],
    &[
        ("occasion", "grillen", 1.0),
        ("occasion", "sommer", 0.8),
        ("cuisine", "mediterran", 0.8),
        ("main_ingredients", "zucchini", 0.5),
        ("main_ingredients", "aubergine", 0.5),
    ],
    &[
        ("course", "dessert", 1.2),
        ("main_ingredients", "käse", 0.6),
        ("main_ingredients", "schokolade", 0.7),
        ("main_ingredients", "beeren", 0.4),
    ],
];

#[derive(Clone, Debug)]
struct WineInfo {
    index: u32,
    kind: usize,
    group: usize,
    price: f64,
    available: bool,
    companions: [u32; 2],
    /// Position of the next vintage that replaces this wine.
    successor: Option<u32>,
    /// Day (from start) the wine went on sale; originals: before start.
    release_day: i64,
}

#[derive(Clone, Debug)]
struct RecipeInfo {
    index: u32,
    diet: usize,
    cuisine: usize,
    publish_day: i64,
}

/// Weighted sampling by cumulative sums.
#[derive(Clone, Debug, Default)]
struct Pool {
    members: Vec<u32>,
    cumulative: Vec<f64>,
}

impl Pool {
    fn from_weights(entries: impl IntoIterator<Item = (u32, f64)>) -> Self {
        let mut pool = Pool::default();
        let mut total = 0.0;
        for (member, weight) in entries {
            if weight > 0.0 {
                total += weight;
                pool.members.push(member);
                pool.cumulative.push(total);
            }
        }
        pool
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> Option<u32> {
        let total = *self.cumulative.last()?;
        let target = rng.gen::<f64>() * total;
        let position = self.cumulative.partition_point(|value| *value <= target);
        self.members
            .get(position.min(self.members.len() - 1))
            .copied()
    }
}

/// The generated world (catalogs, rules, truth) and a behaviour sampler.
#[derive(Debug)]
pub struct Generator {
    config: GeneratorConfig,
    catalogs: CatalogSet,
    rules: PairingRules,
    truth: Vec<TruthPair>,
    keys: Vec<ItemKey>,
    wines: Vec<WineInfo>,
    wine_pools: Vec<Pool>,
    deli_pools: Vec<Pool>,
    recipes: Vec<RecipeInfo>,
    recipe_pools: Vec<Pool>,
    first_recipe: u32,
    /// Per recipe: affinity bonus when the wine's country matches.
    recipe_country_bonus: Vec<[f64; 3]>,
    seasonal_recipe_pools: Vec<Pool>,
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box–Muller; rand_distr is not a workspace dependency.
    let u1: f64 = rng.gen::<f64>().max(1e-12);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn pick<'a>(rng: &mut ChaCha8Rng, values: &[&'a str]) -> &'a str {
    values[rng.gen_range(0..values.len())]
}

fn weighted_index(rng: &mut ChaCha8Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut target = rng.gen::<f64>() * total;
    for (index, weight) in weights.iter().enumerate() {
        if target < *weight {
            return index;
        }
        target -= weight;
    }
    weights.len() - 1
}

/// Circular distance in days between a day-of-year and a target day.
fn season_distance(day_of_year: f64, target: f64) -> f64 {
    let distance = (day_of_year - target).abs() % 365.0;
    distance.min(365.0 - distance)
}

fn seasonal_multiplier(kind: usize, day_of_year: f64) -> f64 {
    match kind {
        0 => {
            1.0 + 5.0
                * (-(season_distance(day_of_year, 364.0).powi(2)) / (2.0 * 8.0f64.powi(2))).exp()
        }
        3 => {
            1.0 + 2.0
                * (-(season_distance(day_of_year, 200.0).powi(2)) / (2.0 * 35.0f64.powi(2))).exp()
        }
        2 => {
            1.0 + 0.6
                * (-(season_distance(day_of_year, 350.0).powi(2)) / (2.0 * 45.0f64.powi(2))).exp()
        }
        _ => 1.0,
    }
}

/// Preferences of one profile.
struct Profile {
    type_weights: [f64; 5],
    group: Option<usize>,
    price_center: f64,
    vegetarian: bool,
    cuisine: usize,
    trips: usize,
}

impl Generator {
    /// Builds catalogs, truth and rules from the seed.
    pub fn new(config: GeneratorConfig) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let mut keys = Vec::new();
        let mut wines_catalog = Catalog::new(
            CatalogMeta::new("wines", "weinclub", "product")
                .with_language(Language::German)
                .with_attributes(["type", "grape", "region", "country", "sweetness"]),
        );
        let mut wines: Vec<WineInfo> = Vec::with_capacity(config.wines);
        let mut wine_names: Vec<(String, i32)> = Vec::with_capacity(config.wines);
        let mut wine_quality = Vec::with_capacity(config.wines);
        for number in 0..config.wines {
            let kind = weighted_index(&mut rng, &WINE_TYPE_SHARE);
            let (region, country, group) = REGIONS[rng.gen_range(0..REGIONS.len())];
            let grape = pick(&mut rng, GRAPES[kind]);
            let sweetness = pick(&mut rng, SWEETNESS[kind]);
            let producer = PRODUCERS[rng.gen_range(0..PRODUCERS.len())];
            let vintage = 2016 + rng.gen_range(0..8);
            let price = (9.0
                * (0.55 * normal(&mut rng)).exp()
                * if kind == 0 || kind == 4 { 1.4 } else { 1.0 })
            .clamp(4.9, 150.0);
            let price = (price * 10.0).round() / 10.0 - 0.01;
            let name = match (kind, group) {
                (0, 1) if region == "Venetien" => format!("Prosecco DOC {sweetness}"),
                (0, 1) => format!("Franciacorta {sweetness}"),
                (0, 2) if region == "Champagne" => format!("Champagne {sweetness}"),
                (0, 2) => format!("Crémant {region} {sweetness}"),
                (0, _) => format!("{grape} Sekt {sweetness}"),
                (4, _) => format!(
                    "{grape} {region} {}",
                    if rng.gen_bool(0.5) {
                        "Auslese"
                    } else {
                        "Beerenauslese"
                    }
                ),
                _ => format!("{grape} {region}"),
            };
            let name = format!("{producer} {name}");
            let aromas = AROMAS[kind];
            let (first, second) = (pick(&mut rng, aromas), pick(&mut rng, aromas));
            let mut description = format!(
                "{} aus {region} ({country}), {sweetness}. Aromen von {first} und {second}.",
                WINE_CATEGORY[kind]
            );
            if rng.gen_bool(0.5) {
                let hints: Vec<&str> = RECIPE_TRUTH[kind]
                    .iter()
                    .take(3)
                    .map(|(_, value, _)| *value)
                    .collect();
                description.push_str(&format!(
                    " Passt zu {} und {}.",
                    hints[0],
                    hints[hints.len() - 1]
                ));
            }
            let id = format!("w{number:05}");
            let available = rng.gen::<f64>() > 0.03;
            let item = Item::new(id.clone(), format!("{name} {vintage}"))
                .with_description(description)
                .with_price(price, "EUR")
                .with_category(WINE_CATEGORY[kind])
                .with_attribute("type", WINE_TYPES[kind])
                .with_attribute("grape", grape)
                .with_attribute("region", region)
                .with_attribute("country", country)
                .with_attribute("sweetness", sweetness)
                .with_url(format!("https://weinclub.example/wein/{id}"))
                .with_available(available);
            wines_catalog.upsert(item);
            wines.push(WineInfo {
                index: keys.len() as u32,
                kind,
                group,
                price,
                available,
                companions: [0, 0],
                successor: None,
                release_day: -1000,
            });
            wine_quality.push((0.9 * normal(&mut rng)).exp());
            wine_names.push((name, vintage));
            keys.push(ItemKey::new("wines", id));
        }
        // New vintages: a share of the wines is replaced by its next vintage
        // shortly before the split (same producer, grape, region; new id, no
        // history). The old vintage is sold out from then on — the defining
        // catalog churn of wine retail, learnable only from attributes.
        let originals = wines.len();
        for position in 0..originals {
            if !wines[position].available || rng.gen::<f64>() >= config.successor_share {
                continue;
            }
            let original_id = format!("w{position:05}");
            let Some(original) = wines_catalog.get(&original_id).cloned() else {
                continue;
            };
            let successor_position = wines.len();
            let id = format!("w{successor_position:05}");
            let (name, vintage) = &wine_names[position];
            let price = ((wines[position].price * (1.0 + 0.1 * rng.gen::<f64>())) * 10.0).round()
                / 10.0
                - 0.01;
            let mut item = original.clone();
            item.id = id.clone();
            item.title = format!("{name} {}", vintage + 1);
            item.price = Some(price);
            item.url = Some(format!("https://weinclub.example/wein/{id}"));
            wines_catalog.upsert(item);
            wines_catalog.upsert(original.with_available(false));
            let release_day = i64::from(config.split_day) - rng.gen_range(3..60);
            wines[position].available = false;
            wines[position].successor = Some(successor_position as u32);
            wines.push(WineInfo {
                index: keys.len() as u32,
                successor: None,
                release_day,
                price,
                available: true,
                ..wines[position].clone()
            });
            wine_quality.push(0.0);
            wine_names.push((name.clone(), vintage + 1));
            keys.push(ItemKey::new("wines", id));
        }
        // Hidden bundles: each wine has two companion wines.
        // (Among the original vintages; the chain leads to the current one.)
        let wine_count = originals.max(1);
        for wine in wines.iter_mut() {
            wine.companions = [
                rng.gen_range(0..wine_count) as u32,
                rng.gen_range(0..wine_count) as u32,
            ];
        }

        let mut deli_catalog = Catalog::new(
            CatalogMeta::new("deli", "weinclub", "product").with_language(Language::German),
        );
        let mut deli_kind = Vec::with_capacity(config.deli);
        let mut deli_quality = Vec::with_capacity(config.deli);
        let deli_first = keys.len() as u32;
        for number in 0..config.deli {
            let kind = rng.gen_range(0..DELI.len());
            let (category, code, titles) = DELI[kind];
            let base = pick(&mut rng, titles);
            let variant = DELI_VARIANTS[rng.gen_range(0..DELI_VARIANTS.len())];
            let title = if variant.is_empty() {
                base.to_string()
            } else {
                format!("{base} {variant}")
            };
            let (_, country, _) = REGIONS[rng.gen_range(0..REGIONS.len())];
            let id = format!("d{number:05}");
            let price = ((3.0 + 8.0 * rng.gen::<f64>()) * 10.0).round() / 10.0 - 0.01;
            deli_catalog.upsert(
                Item::new(id.clone(), title)
                    .with_description(format!("{category} aus {country}, sorgfältig ausgewählt."))
                    .with_price(price, "EUR")
                    .with_category(category)
                    .with_attribute("kind", code)
                    .with_attribute("origin", country),
            );
            deli_kind.push(code);
            deli_quality.push((0.7 * normal(&mut rng)).exp());
            keys.push(ItemKey::new("deli", id));
        }

        let mut recipe_catalog = Catalog::new(
            CatalogMeta::new("recipes", "weinclub", "recipe")
                .with_language(Language::German)
                .with_attributes(["course", "cuisine", "diet", "main_ingredients", "occasion"]),
        );
        let first_recipe = keys.len() as u32;
        let mut recipes = Vec::with_capacity(config.recipes);
        let mut recipe_values: Vec<Vec<(&'static str, &'static str)>> =
            Vec::with_capacity(config.recipes);
        let mut recipe_quality = Vec::with_capacity(config.recipes);
        let cuisine_weights: Vec<f64> = CUISINES.iter().map(|(_, _, weight)| *weight).collect();
        for number in 0..config.recipes {
            let course = rng.gen_range(0..COURSES.len());
            let (course_code, course_display, dishes) = COURSES[course];
            let dessert = course_code == "dessert";
            let candidates: Vec<usize> = (0..INGREDIENTS.len())
                .filter(|index| INGREDIENTS[*index].4 == dessert)
                .collect();
            let first = candidates[rng.gen_range(0..candidates.len())];
            let second = if rng.gen_bool(0.4) {
                Some(candidates[rng.gen_range(0..candidates.len())])
                    .filter(|second| *second != first)
            } else {
                None
            };
            let mains: Vec<usize> = std::iter::once(first).chain(second).collect();
            let diet = mains.iter().map(|index| INGREDIENTS[*index].3).fold(
                "vegan",
                |current, next| match (current, next) {
                    ("fleisch", _) | (_, "fleisch") => "fleisch",
                    ("fisch", _) | (_, "fisch") => "fisch",
                    ("vegetarisch", _) | (_, "vegetarisch") => "vegetarisch",
                    _ => "vegan",
                },
            );
            let cuisine = weighted_index(&mut rng, &cuisine_weights);
            let occasion = rng.gen_range(0..OCCASIONS.len());
            let dish = pick(&mut rng, dishes);
            let (_, prefix, with_form, _, _) = INGREDIENTS[first];
            let adjective = pick(&mut rng, &ADJECTIVES);
            let compound = rng.gen_bool(0.5);
            let mut title = if compound {
                format!("{prefix}{}", dish.to_lowercase())
            } else {
                format!("{dish} mit {with_form}")
            };
            if let Some(second) = second {
                let joiner = if compound { "mit" } else { "und" };
                title.push_str(&format!(" {joiner} {}", INGREDIENTS[second].2));
            }
            if !adjective.is_empty() {
                title = format!("{adjective} {title}");
            }
            let description = format!(
                "{} {} mit {}{}. Perfekt für {}. Zubereitung in {} Minuten.",
                CUISINES[cuisine].1,
                course_display,
                INGREDIENTS[first].2,
                second
                    .map(|second| format!(" und {}", INGREDIENTS[second].2))
                    .unwrap_or_default(),
                OCCASIONS[occasion].1,
                15 + 5 * rng.gen_range(0..12)
            );
            let id = format!("r{number:05}");
            let main_codes: Vec<&str> = mains.iter().map(|index| INGREDIENTS[*index].0).collect();
            recipe_catalog.upsert(
                Item::new(id.clone(), title)
                    .with_description(description)
                    .with_category("Rezept")
                    .with_category(course_display)
                    .with_attribute("course", course_code)
                    .with_attribute("cuisine", CUISINES[cuisine].0)
                    .with_attribute("diet", diet)
                    .with_attribute("main_ingredients", main_codes.clone())
                    .with_attribute("occasion", OCCASIONS[occasion].0)
                    .with_url(format!("https://weinclub.example/rezept/{id}")),
            );
            let mut values = vec![
                ("course", course_code),
                ("cuisine", CUISINES[cuisine].0),
                ("diet", diet),
                ("occasion", OCCASIONS[occasion].0),
            ];
            values.extend(
                mains
                    .iter()
                    .map(|index| ("main_ingredients", INGREDIENTS[*index].0)),
            );
            recipe_values.push(values);
            let diet_index = ["vegan", "vegetarisch", "fisch", "fleisch"]
                .iter()
                .position(|known| *known == diet)
                .unwrap_or(3);
            recipes.push(RecipeInfo {
                index: keys.len() as u32,
                diet: diet_index,
                cuisine,
                publish_day: rng.gen_range(-365..i64::from(config.split_day)),
            });
            recipe_quality.push((0.6 * normal(&mut rng)).exp());
            keys.push(ItemKey::new("recipes", id));
        }

        // Sampling pools.
        let wine_pools = (0..WINE_TYPES.len())
            .map(|kind| {
                Pool::from_weights(
                    wines
                        .iter()
                        .zip(&wine_quality)
                        .enumerate()
                        .filter(|(_, (wine, _))| wine.kind == kind)
                        .map(|(position, (_, quality))| (position as u32, *quality)),
                )
            })
            .collect();
        let deli_pools = (0..WINE_TYPES.len())
            .map(|kind| {
                Pool::from_weights(deli_kind.iter().zip(&deli_quality).enumerate().map(
                    |(position, (code, quality))| {
                        let affinity = DELI_TRUTH[kind]
                            .iter()
                            .find(|(truth, _)| truth == code)
                            .map_or(0.02, |(_, weight)| *weight);
                        (position as u32, affinity * quality)
                    },
                ))
            })
            .collect();
        let recipe_affinity = |kind: usize, values: &[(&str, &str)]| -> f64 {
            RECIPE_TRUTH[kind]
                .iter()
                .filter(|(attribute, value, _)| values.contains(&(*attribute, *value)))
                .map(|(_, _, weight)| weight)
                .sum::<f64>()
        };
        let recipe_pools = (0..WINE_TYPES.len())
            .map(|kind| {
                Pool::from_weights(recipe_values.iter().zip(&recipe_quality).enumerate().map(
                    |(position, (values, quality))| {
                        // Squared: recipes that match a wine on several counts
                        // (antipasti *and* Silvester for a sparkling wine) are
                        // the ones newsletters feature and people click.
                        (
                            position as u32,
                            (0.02 + recipe_affinity(kind, values)).powi(2) * quality,
                        )
                    },
                ))
            })
            .collect();
        let recipe_country_bonus = recipes
            .iter()
            .map(|recipe| {
                let mut bonus = [0.55; 3];
                let cuisine = CUISINES[recipe.cuisine].0;
                for (group, matching) in COUNTRY_CUISINE.iter().enumerate() {
                    if cuisine == *matching || (group == 0 && cuisine == "österreichisch") {
                        bonus[group] = 1.0;
                    }
                }
                bonus
            })
            .collect();
        // Seasonal browsing: occasion pools (silvester, grillen/sommer, weihnachten, any).
        let seasonal_recipe_pools = [
            &["silvester"][..],
            &["grillen", "sommer"],
            &["weihnachten", "festtag"],
            &[],
        ]
        .iter()
        .map(|occasions| {
            Pool::from_weights(recipe_values.iter().zip(&recipe_quality).enumerate().map(
                |(position, (values, quality))| {
                    let matches = occasions.is_empty()
                        || values.iter().any(|(attribute, value)| {
                            *attribute == "occasion" && occasions.contains(value)
                        });
                    (position as u32, if matches { *quality } else { 0.0 })
                },
            ))
        })
        .collect();

        let mut truth = Vec::new();
        for (kind, entries) in RECIPE_TRUTH.iter().enumerate() {
            for (attribute, value, weight) in entries.iter() {
                truth.push(TruthPair {
                    wine_attribute: "type".into(),
                    wine_value: WINE_TYPES[kind].into(),
                    catalog: "recipes".into(),
                    attribute: (*attribute).into(),
                    value: (*value).into(),
                    weight: *weight,
                });
            }
            for (value, weight) in DELI_TRUTH[kind].iter() {
                truth.push(TruthPair {
                    wine_attribute: "type".into(),
                    wine_value: WINE_TYPES[kind].into(),
                    catalog: "deli".into(),
                    attribute: "kind".into(),
                    value: (*value).into(),
                    weight: *weight,
                });
            }
        }
        for (country, cuisine) in [
            ("Italien", "italienisch"),
            ("Frankreich", "französisch"),
            ("Deutschland", "deutsch"),
            ("Österreich", "österreichisch"),
        ] {
            truth.push(TruthPair {
                wine_attribute: "country".into(),
                wine_value: country.into(),
                catalog: "recipes".into(),
                attribute: "cuisine".into(),
                value: cuisine.into(),
                weight: 0.45,
            });
        }
        let rules = marketer_rules(&truth, &mut rng);

        let mut catalogs = CatalogSet::new();
        catalogs.insert(wines_catalog);
        catalogs.insert(deli_catalog);
        catalogs.insert(recipe_catalog);
        let _ = deli_first;
        Self {
            config,
            catalogs,
            rules,
            truth,
            keys,
            wines,
            wine_pools,
            deli_pools,
            recipes,
            recipe_pools,
            first_recipe,
            recipe_country_bonus,
            seasonal_recipe_pools,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &GeneratorConfig {
        &self.config
    }

    /// The generated catalogs.
    pub fn catalogs(&self) -> &CatalogSet {
        &self.catalogs
    }

    /// The marketer's rule document (imperfect by design).
    pub fn rules(&self) -> &PairingRules {
        &self.rules
    }

    /// The hidden truth the rules were derived from.
    pub fn truth(&self) -> &[TruthPair] {
        &self.truth
    }

    /// Item keys by generated index (wines, deli, recipes).
    pub fn item_keys(&self) -> &[ItemKey] {
        &self.keys
    }

    /// All interactions as readable records, in generation order.
    pub fn interactions(&self) -> Vec<Interaction> {
        let start = self.config.start();
        let mut interactions = Vec::new();
        self.generate(|profile, item, kind, timestamp| {
            interactions.push(Interaction {
                profile: format!("p{profile:07}"),
                item: self.keys[item as usize].clone(),
                kind,
                timestamp: Utc.timestamp_opt(timestamp, 0).single().unwrap_or(start),
            });
        });
        interactions
    }

    fn profile(&self, rng: &mut ChaCha8Rng) -> Profile {
        let mut type_weights = [0.0; 5];
        for (kind, weight) in type_weights.iter_mut().enumerate() {
            *weight = WINE_TYPE_SHARE[kind] * (1.3 * normal(rng)).exp();
        }
        let group = if rng.gen_bool(0.65) {
            Some(rng.gen_range(0..3))
        } else {
            None
        };
        let price_center = [7.5, 12.0, 22.0][weighted_index(rng, &[0.35, 0.45, 0.2])];
        // Activity varies a lot between customers.
        let activity = (0.8 * normal(rng)).exp() / (0.32f64).exp();
        let trips = (self.config.trips_per_profile * activity * (0.5 + rng.gen::<f64>()))
            .round()
            .max(1.0) as usize;
        Profile {
            type_weights,
            group,
            price_center,
            vegetarian: rng.gen_bool(0.25),
            cuisine: rng.gen_range(0..CUISINES.len()),
            trips,
        }
    }

    /// Follows the vintage chain to the wine on sale at `day`.
    fn current_vintage(&self, mut position: usize, day: f64) -> usize {
        while let Some(next) = self.wines[position].successor {
            if (self.wines[next as usize].release_day as f64) > day {
                break;
            }
            position = next as usize;
        }
        position
    }

    fn choose_wine(
        &self,
        rng: &mut ChaCha8Rng,
        profile: &Profile,
        day: f64,
        after_split: bool,
    ) -> Option<u32> {
        let day_of_year = day % 365.0;
        let weights: Vec<f64> = (0..5)
            .map(|kind| profile.type_weights[kind] * seasonal_multiplier(kind, day_of_year))
            .collect();
        let kind = weighted_index(rng, &weights);
        let pool = &self.wine_pools[kind];
        let mut fallback = None;
        for _ in 0..10 {
            let position = self.current_vintage(pool.sample(rng)? as usize, day);
            let wine = &self.wines[position];
            if after_split && !wine.available {
                continue;
            }
            fallback = Some(position as u32);
            let region_fit = match profile.group {
                Some(group) if group == wine.group => 1.0,
                Some(_) => 0.3,
                None => 0.7,
            };
            let log_ratio = (wine.price / profile.price_center).ln();
            let price_fit = (-(log_ratio * log_ratio) / (2.0 * 0.35 * 0.35)).exp();
            if rng.gen::<f64>() < region_fit * price_fit {
                return Some(position as u32);
            }
        }
        fallback
    }

    fn choose_recipe(
        &self,
        rng: &mut ChaCha8Rng,
        profile: &Profile,
        wine: &WineInfo,
        day: i64,
        pool: &Pool,
    ) -> Option<u32> {
        for _ in 0..12 {
            let position = pool.sample(rng)? as usize;
            let recipe = &self.recipes[position];
            let age = day - recipe.publish_day;
            if age < 0 || (profile.vegetarian && recipe.diet >= 2) {
                continue;
            }
            // Newsletters and feeds push fresh content.
            let freshness = 0.25 + 0.75 * (-(age as f64) / 40.0).exp();
            let cuisine_fit = if recipe.cuisine == profile.cuisine {
                1.0
            } else {
                0.6
            };
            let country_fit = self.recipe_country_bonus[position][wine.group];
            if rng.gen::<f64>() < freshness * cuisine_fit * country_fit {
                return Some(recipe.index);
            }
        }
        None
    }

    /// Generates behaviour, calling `sink(profile, item index, kind,
    /// unix seconds)`; returns the number of interactions.
    pub fn generate(&self, mut sink: impl FnMut(u32, u32, InteractionKind, i64)) -> usize {
        let mut rng = ChaCha8Rng::seed_from_u64(self.config.seed ^ 0x5eed_b10c);
        let start = self.config.start().timestamp();
        let split_day = i64::from(self.config.split_day);
        let days = f64::from(self.config.days);
        let limit = self.config.max_interactions.unwrap_or(usize::MAX);
        let item_count = self.keys.len().max(1);
        let mut emitted = 0usize;
        let mut emit = |rng: &mut ChaCha8Rng,
                        profile: u32,
                        item: u32,
                        kind: InteractionKind,
                        timestamp: i64,
                        emitted: &mut usize| {
            if *emitted >= limit {
                return;
            }
            // Noise: a random item of the same catalog.
            let item = if rng.gen::<f64>() < self.config.noise {
                let (low, high) = if (item as usize) < self.wines.len() {
                    (0, self.wines.len())
                } else if item < self.first_recipe {
                    (self.wines.len(), self.first_recipe as usize)
                } else {
                    (self.first_recipe as usize, item_count)
                };
                rng.gen_range(low..high.max(low + 1)) as u32
            } else {
                item
            };
            // Sold-out wines cannot be bought after the split.
            let is_unavailable_wine =
                (item as usize) < self.wines.len() && !self.wines[item as usize].available;
            if is_unavailable_wine && timestamp >= start + split_day * 86_400 {
                return;
            }
            sink(profile, item, kind, timestamp);
            *emitted += 1;
        };
        for profile_number in 0..self.config.profiles {
            if emitted >= limit {
                break;
            }
            let profile = self.profile(&mut rng);
            for _ in 0..profile.trips {
                // More trips in December (gifts, parties).
                let day = loop {
                    let candidate = rng.gen::<f64>() * days;
                    let density = 1.0
                        + 0.8
                            * (-(season_distance(candidate % 365.0, 355.0).powi(2))
                                / (2.0 * 12.0f64.powi(2)))
                            .exp();
                    if rng.gen::<f64>() * 1.8 < density {
                        break candidate;
                    }
                };
                let day_index = day as i64;
                let timestamp = start + (day * 86_400.0) as i64;
                let after_split = day_index >= split_day;
                let Some(wine_position) = self.choose_wine(&mut rng, &profile, day, after_split)
                else {
                    continue;
                };
                let wine = &self.wines[wine_position as usize];
                let profile_id = profile_number as u32;
                emit(
                    &mut rng,
                    profile_id,
                    wine.index,
                    InteractionKind::Purchase,
                    timestamp,
                    &mut emitted,
                );
                if rng.gen_bool(0.3) {
                    let companion = &self.wines
                        [self.current_vintage(wine.companions[rng.gen_range(0..2)] as usize, day)];
                    emit(
                        &mut rng,
                        profile_id,
                        companion.index,
                        InteractionKind::Purchase,
                        timestamp + 60,
                        &mut emitted,
                    );
                }
                if rng.gen_bool(0.45) {
                    if let Some(deli) = self.deli_pools[wine.kind].sample(&mut rng) {
                        let index = self.wines.len() as u32 + deli;
                        emit(
                            &mut rng,
                            profile_id,
                            index,
                            InteractionKind::Purchase,
                            timestamp + 120,
                            &mut emitted,
                        );
                    }
                }
                let clicks = if rng.gen_bool(0.7) {
                    1 + usize::from(rng.gen_bool(0.4))
                } else {
                    0
                };
                for _ in 0..clicks {
                    let delay = rng.gen_range(3_600..4 * 86_400);
                    if let Some(recipe) = self.choose_recipe(
                        &mut rng,
                        &profile,
                        wine,
                        day_index,
                        &self.recipe_pools[wine.kind],
                    ) {
                        emit(
                            &mut rng,
                            profile_id,
                            recipe,
                            InteractionKind::Click,
                            timestamp + delay,
                            &mut emitted,
                        );
                    }
                }
                if rng.gen_bool(0.25) {
                    let day_of_year = day % 365.0;
                    let season = if season_distance(day_of_year, 364.0) < 14.0 {
                        0
                    } else if season_distance(day_of_year, 200.0) < 50.0 {
                        1
                    } else if season_distance(day_of_year, 350.0) < 30.0 {
                        2
                    } else {
                        3
                    };
                    let pool = &self.seasonal_recipe_pools[season];
                    if let Some(recipe) =
                        self.choose_recipe(&mut rng, &profile, wine, day_index, pool)
                    {
                        let delay = rng.gen_range(0..7 * 86_400);
                        emit(
                            &mut rng,
                            profile_id,
                            recipe,
                            InteractionKind::View,
                            timestamp + delay,
                            &mut emitted,
                        );
                    }
                }
            }
        }
        emitted
    }
}

/// The marketer's rules: ~75% of the true pairs, perturbed weights, two
/// wrong rules.
fn marketer_rules(truth: &[TruthPair], rng: &mut ChaCha8Rng) -> PairingRules {
    let mut rules = PairingRules::new(1);
    rules.description = Some("weinclub pairing knowledge (synthetic)".into());
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for pair in truth {
        if rng.gen::<f64>() < 0.25 {
            continue;
        }
        let base = format!("{}-{}", pair.wine_value, pair.value)
            .to_lowercase()
            .replace(' ', "-");
        let count = counts.entry(base.clone()).or_insert(0);
        *count += 1;
        let id = if *count == 1 {
            base
        } else {
            format!("{base}-{count}")
        };
        let weight = (pair.weight * (0.7 + 0.4 * rng.gen::<f64>()) / 1.2).clamp(0.1, 1.0);
        rules.rules.push(PairingRule {
            id,
            from: RuleSide::new("wines", &pair.wine_attribute, &[&pair.wine_value]),
            to: RuleSide::new(&pair.catalog, &pair.attribute, &[&pair.value]),
            weight: (weight * 100.0).round() / 100.0,
            bidirectional: true,
            note: None,
        });
    }
    for (id, wine_type, attribute, value) in [
        ("sparkling-dessert", "sparkling", "course", "dessert"),
        ("red-zander", "red", "main_ingredients", "zander"),
    ] {
        rules.rules.push(PairingRule {
            id: id.into(),
            from: RuleSide::new("wines", "type", &[wine_type]),
            to: RuleSide::new("recipes", attribute, &[value]),
            weight: 0.3,
            bidirectional: true,
            note: Some("marketer's hunch".into()),
        });
    }
    rules
}
