//! Immutable model snapshots, their builder, and the handle that swaps
//! snapshots without blocking readers.
//!
//! A [`Model`] is built by a [`ModelBuilder`] from catalogs, pairing rules
//! and interactions and is never mutated afterwards; requests run against
//! an `Arc<Model>`. The [`RecommenderHandle`] keeps the current snapshot in
//! a `RwLock<Arc<Model>>`: a reader holds the read lock only to clone the
//! `Arc`, builds run without any lock readers need, and publishing is a
//! pointer swap. Heavy parts (text index, co-occurrence graph) are shared
//! between snapshots via `Arc`, so a catalog update (an item sold out, a
//! new recipe) republishes in milliseconds to a second and reuses the
//! learned behaviour, while `refresh()` relearns from all interactions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::{CatalogSet, Item, ItemKey};
use crate::cooc::{build_cooc, CoocConfig, CoocGraph, Popularity, Seasonality};
use crate::error::RecsError;
use crate::interactions::{Interaction, InteractionLog, ItemIdx};
use crate::items::{Interner, ItemTable, NONE};
use crate::recommend::{BlendWeights, Recommendation, Request};
use crate::rules::{PairingRules, ValidationReport};
use crate::text_index::{TextConfig, TextIndex};

/// Request-time parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecommendConfig {
    /// Blend weights for profile requests: a history is a diffuse
    /// context, so time-decayed popularity carries more weight.
    pub blend: BlendWeights,
    /// Blend weights for item requests ("recipes for this Prosecco"):
    /// the anchor is a sharp context, so pairing and co-occurrence lead.
    pub item_blend: BlendWeights,
    /// MMR trade-off: 1.0 = pure relevance, lower = more diverse.
    pub diversity_lambda: f32,
    /// Up-sell price band, as ratios of the anchor price.
    pub upsell_min_ratio: f32,
    /// Upper end of the up-sell band.
    pub upsell_max_ratio: f32,
    /// Candidates considered per matching rule (most popular first).
    pub max_candidates_per_rule: usize,
    /// History items used as anchors for a profile.
    pub max_anchors: usize,
    /// Anchors used for (more expensive) text similarity.
    pub similarity_anchors: usize,
    /// Half-life weighting a profile's history items by recency.
    pub anchor_half_life_days: f64,
    /// Largest `count` a request may ask for.
    pub max_count: usize,
    /// Length of precomputed popularity lists per catalog / category.
    pub popular_list_len: usize,
    /// Weight of attribute similarity (shared facets, weighted by rarity,
    /// times price fit) next to BM25 text similarity (weight 1).
    pub attribute_weight: f32,
    /// Strongest facets of the anchors whose item lists seed candidates.
    pub taste_facets: usize,
    /// Items taken from each seeding facet list (most popular first).
    pub max_candidates_per_facet: usize,
    /// Pseudo-count pulling the customer's value distribution towards the
    /// catalog's base rates (in anchor-weight units).
    pub taste_smoothing: f32,
    /// Exponent of catalog popularity in the taste match (0 = ignore).
    pub taste_popularity_exponent: f32,
    /// Price fit tolerance (standard deviation of log price ratio).
    pub price_tolerance: f32,
}

impl Default for RecommendConfig {
    fn default() -> Self {
        Self {
            blend: BlendWeights::default(),
            item_blend: BlendWeights::for_items(),
            diversity_lambda: 0.9,
            upsell_min_ratio: 1.05,
            upsell_max_ratio: 2.0,
            max_candidates_per_rule: 300,
            max_anchors: 50,
            similarity_anchors: 3,
            anchor_half_life_days: 365.0,
            max_count: 200,
            popular_list_len: 200,
            attribute_weight: 5.0,
            taste_facets: 8,
            max_candidates_per_facet: 150,
            taste_smoothing: 3.0,
            taste_popularity_exponent: 0.5,
            price_tolerance: 0.4,
        }
    }
}

/// All model parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Co-occurrence learning.
    pub cooc: CoocConfig,
    /// Half-life of the popularity signal (short: follows trends and
    /// seasons).
    pub popularity_half_life_days: Option<f64>,
    /// Year-over-year seasonal popularity (`None` = off).
    pub seasonality: Option<Seasonality>,
    /// Text index.
    pub text: TextConfig,
    /// Request-time parameters.
    pub recommend: RecommendConfig,
    /// Threads used to build co-occurrence (0 = 1).
    pub build_threads: usize,
}

impl ModelConfig {
    /// Defaults with a 30-day popularity half-life and 2 build threads.
    pub fn standard() -> Self {
        Self {
            popularity_half_life_days: Some(30.0),
            seasonality: Some(Seasonality::default()),
            build_threads: 2,
            ..Self::default()
        }
    }
}

/// Sizes and timings of a snapshot.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ModelStats {
    /// Interned items (including ids only seen in interactions).
    pub items: usize,
    /// Items currently in a catalog and available.
    pub available_items: usize,
    /// Catalogs.
    pub catalogs: usize,
    /// Interactions learned from.
    pub interactions: usize,
    /// Stored co-occurrence neighbour entries.
    pub cooc_edges: usize,
    /// Distinct index terms.
    pub terms: usize,
    /// Directed pairing rules in effect.
    pub directed_rules: usize,
    /// Rule document version.
    pub rules_version: u64,
    /// Rule document content hash.
    pub rules_hash: String,
    /// Time at which decays are evaluated.
    pub reference_time: DateTime<Utc>,
    /// Milliseconds spent on the item table.
    pub table_millis: u128,
    /// Milliseconds spent on the text index (0 when reused).
    pub text_millis: u128,
    /// Milliseconds spent on co-occurrence and popularity (0 when reused).
    pub behaviour_millis: u128,
    /// Milliseconds spent on rule compilation and popularity lists.
    pub derive_millis: u128,
}

/// One compiled, directed rule with its precomputed candidates.
#[derive(Clone, Debug)]
pub(crate) struct DirectedRule {
    pub(crate) rule_id: Arc<str>,
    pub(crate) from_facets: Vec<u32>,
    pub(crate) to_catalog: u16,
    pub(crate) to_facets: Vec<u32>,
    pub(crate) weight: f32,
    /// Available target items, most popular first, capped.
    pub(crate) candidates: Vec<u32>,
}

/// Everything derived from table + behaviour + rules.
#[derive(Clone, Debug, Default)]
pub(crate) struct Derived {
    pub(crate) rules: Vec<DirectedRule>,
    /// (anchor catalog, facet) → directed rule indices.
    pub(crate) rules_by_facet: HashMap<(u16, u32), Vec<u32>>,
    pub(crate) popular_by_catalog: Vec<Vec<u32>>,
    pub(crate) popular_global: Vec<u32>,
    pub(crate) popular_by_category: HashMap<(u16, u32), Vec<u32>>,
    pub(crate) max_popularity_by_catalog: Vec<f32>,
    pub(crate) max_popularity: f32,
    /// (catalog, primary category) → (price, item) sorted by price.
    pub(crate) by_price: HashMap<(u16, u32), Vec<(f32, u32)>>,
    /// (catalog, facet) → (share of the catalog's available items with the
    /// facet, those items most popular first, capped): attribute
    /// similarity ("more of what you like").
    pub(crate) facet_lists: HashMap<(u16, u32), (f32, Vec<u32>)>,
}

/// An immutable recommendation model snapshot.
#[derive(Debug)]
pub struct Model {
    pub(crate) table: Arc<ItemTable>,
    pub(crate) text: Arc<TextIndex>,
    pub(crate) cooc: Arc<CoocGraph>,
    pub(crate) popularity: Arc<Popularity>,
    pub(crate) derived: Derived,
    pub(crate) config: ModelConfig,
    pub(crate) reference_ts: i64,
    stats: ModelStats,
}

/// A learned association of an item (for inspection / the CLI).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Association {
    /// The associated item.
    pub item: ItemKey,
    /// Ranking score (shrunk, decayed cosine).
    pub score: f64,
    /// Lift.
    pub lift: f64,
    /// Supporting profiles.
    pub support: u32,
}

/// A free-text search hit.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SearchHit {
    /// Item.
    pub item: ItemKey,
    /// BM25 score.
    pub score: f64,
    /// Query terms it matched.
    pub terms: Vec<String>,
}

impl Model {
    /// Sizes, versions and timings.
    pub fn stats(&self) -> &ModelStats {
        &self.stats
    }

    /// Parameters.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The item as stored in this snapshot (`None` if deleted/unknown).
    pub fn item(&self, key: &ItemKey) -> Option<&Item> {
        let index = self.table.interner.get(key)?;
        self.table.item(index).map(Arc::as_ref)
    }

    /// Whether the item would currently be recommended at all.
    pub fn is_recommendable(&self, key: &ItemKey) -> bool {
        self.table
            .interner
            .get(key)
            .is_some_and(|index| self.table.is_available(index))
    }

    /// Learned associations of an item, best first.
    pub fn associations(&self, key: &ItemKey, limit: usize) -> Vec<Association> {
        let Some(index) = self.table.interner.get(key) else {
            return Vec::new();
        };
        self.cooc
            .neighbours(ItemIdx(index))
            .iter()
            .take(limit)
            .filter_map(|neighbour| {
                Some(Association {
                    item: self.table.key(neighbour.item.0)?.clone(),
                    score: f64::from(neighbour.score),
                    lift: f64::from(neighbour.lift),
                    support: neighbour.support,
                })
            })
            .collect()
    }

    /// Time-decayed popularity of an item at the reference time.
    pub fn popularity(&self, key: &ItemKey) -> f64 {
        self.table
            .interner
            .get(key)
            .map_or(0.0, |index| f64::from(self.popularity.get(ItemIdx(index))))
    }

    /// German-aware BM25 search over one catalog (for the advisor and
    /// the web UI). Only available items are returned.
    pub fn search(
        &self,
        catalog: &str,
        text: &str,
        count: usize,
    ) -> Result<Vec<SearchHit>, RecsError> {
        let catalog_index = self
            .table
            .catalog(catalog)
            .ok_or_else(|| RecsError::UnknownCatalog(catalog.to_string()))?;
        let query = self.text.text_query(text, Some(catalog_index));
        let mut scores: HashMap<u32, f32> = HashMap::new();
        self.text.accumulate(catalog_index, &query, |item, score| {
            *scores.entry(item).or_insert(0.0) += score;
        });
        let mut hits: Vec<(u32, f32)> = scores
            .into_iter()
            .filter(|(item, _)| self.table.is_available(*item))
            .collect();
        hits.sort_by(|left, right| {
            right
                .1
                .total_cmp(&left.1)
                .then_with(|| self.table.key(left.0).cmp(&self.table.key(right.0)))
        });
        Ok(hits
            .into_iter()
            .take(count)
            .filter_map(|(item, score)| {
                Some(SearchHit {
                    item: self.table.key(item)?.clone(),
                    score: f64::from(score),
                    terms: self.text.matching_terms(&query, item, 5),
                })
            })
            .collect())
    }

    /// Approximate heap bytes of the snapshot (including shared parts and
    /// the item data it references).
    pub fn approx_memory_bytes(&self) -> usize {
        let derived = self
            .derived
            .rules
            .iter()
            .map(|rule| rule.candidates.len() * 4 + 96)
            .sum::<usize>()
            + self
                .derived
                .popular_by_catalog
                .iter()
                .map(|list| list.len() * 4)
                .sum::<usize>()
            + self
                .derived
                .popular_by_category
                .values()
                .map(|list| list.len() * 4 + 48)
                .sum::<usize>()
            + self
                .derived
                .by_price
                .values()
                .map(|list| list.len() * 8 + 48)
                .sum::<usize>();
        self.table.approx_memory_bytes()
            + self.text.approx_memory_bytes()
            + self.cooc.approx_memory_bytes()
            + self.popularity.score.capacity() * 4
            + derived
    }

    /// Recommendations for an item or a profile (see [`Request`]).
    pub fn recommend(&self, request: &Request) -> Result<Vec<Recommendation>, RecsError> {
        crate::recommend::recommend(self, request)
    }
}

/// Collects inputs and builds [`Model`] snapshots.
#[derive(Clone, Debug)]
pub struct ModelBuilder {
    config: ModelConfig,
    catalogs: CatalogSet,
    rules: PairingRules,
    interner: Interner,
    log: InteractionLog,
    reference_time: Option<DateTime<Utc>>,
}

impl ModelBuilder {
    /// Starts from catalogs (interning all their items), no rules, no
    /// interactions, standard config.
    pub fn new(catalogs: CatalogSet) -> Self {
        let mut interner = Interner::default();
        for catalog in catalogs.catalogs() {
            for item in catalog.items() {
                interner.intern(&ItemKey::new(catalog.name(), item.id.as_str()));
            }
        }
        Self {
            config: ModelConfig::standard(),
            catalogs,
            rules: PairingRules::new(0),
            interner,
            log: InteractionLog::default(),
            reference_time: None,
        }
    }

    /// Replaces the configuration.
    pub fn with_config(mut self, config: ModelConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets pairing rules after validating them against the catalogs.
    pub fn with_rules(mut self, rules: PairingRules) -> Result<Self, RecsError> {
        rules.validate(&self.catalogs)?;
        self.rules = rules;
        Ok(self)
    }

    /// Fixes the time at which decays are evaluated (default: the latest
    /// interaction).
    pub fn with_reference_time(mut self, reference_time: DateTime<Utc>) -> Self {
        self.reference_time = Some(reference_time);
        self
    }

    /// The catalogs as the builder sees them.
    pub fn catalogs(&self) -> &CatalogSet {
        &self.catalogs
    }

    /// The rules in effect.
    pub fn rules(&self) -> &PairingRules {
        &self.rules
    }

    /// Adds one interaction. Items not (yet) in a catalog are remembered,
    /// so their associations appear once the item is upserted.
    pub fn add_interaction(&mut self, interaction: &Interaction) {
        let item = self.interner.intern(&interaction.item);
        let profile = self.log.profile_index(&interaction.profile);
        self.log.push(
            profile,
            ItemIdx(item),
            interaction.kind,
            interaction.timestamp.timestamp(),
        );
    }

    /// Adds many interactions.
    pub fn add_interactions<'a, I>(&mut self, interactions: I)
    where
        I: IntoIterator<Item = &'a Interaction>,
    {
        for interaction in interactions {
            self.add_interaction(interaction);
        }
    }

    /// Interned index of an item (for [`InteractionLog::push`]).
    pub fn item_index(&self, key: &ItemKey) -> Option<ItemIdx> {
        self.interner.get(key).map(ItemIdx)
    }

    /// Direct access to the compact log (bulk loaders, benchmarks).
    pub fn interaction_log_mut(&mut self) -> &mut InteractionLog {
        &mut self.log
    }

    /// Number of interactions collected.
    pub fn interaction_count(&self) -> usize {
        self.log.len()
    }

    fn reference_ts(&self) -> i64 {
        self.reference_time
            .map(|time| time.timestamp())
            .or_else(|| self.log.latest_timestamp())
            .unwrap_or(0)
    }

    /// Builds a complete snapshot.
    pub fn build(&self) -> Model {
        let started = Instant::now();
        let table = Arc::new(ItemTable::build(&self.catalogs, &self.interner));
        let table_millis = started.elapsed().as_millis();
        let started = Instant::now();
        let text = Arc::new(TextIndex::build(&table, self.config.text));
        let text_millis = started.elapsed().as_millis();
        let started = Instant::now();
        let (cooc, popularity) = self.build_behaviour(table.len());
        let behaviour_millis = started.elapsed().as_millis();
        let mut model = self.assemble(table, text, cooc, popularity);
        model.stats.table_millis = table_millis;
        model.stats.text_millis = text_millis;
        model.stats.behaviour_millis = behaviour_millis;
        model
    }

    fn build_behaviour(&self, item_count: usize) -> (Arc<CoocGraph>, Arc<Popularity>) {
        let reference_ts = self.reference_ts();
        let cooc = build_cooc(
            &self.log,
            item_count,
            reference_ts,
            &self.config.cooc,
            self.config.build_threads.max(1),
        );
        let popularity = Popularity::build(
            &self.log,
            item_count,
            reference_ts,
            self.config.popularity_half_life_days,
            &self.config.cooc.kind_weights,
            self.config.seasonality,
        );
        (Arc::new(cooc), Arc::new(popularity))
    }

    /// Rebuilds the catalog side (table, rules, lists; text only when
    /// needed) and reuses learned behaviour from `previous`.
    fn rebuild_catalog_side(&self, previous: &Model, text_changed: bool) -> Model {
        let started = Instant::now();
        let table = Arc::new(ItemTable::build(&self.catalogs, &self.interner));
        let table_millis = started.elapsed().as_millis();
        let started = Instant::now();
        let text = if text_changed {
            Arc::new(TextIndex::build(&table, self.config.text))
        } else {
            Arc::clone(&previous.text)
        };
        let text_millis = if text_changed {
            started.elapsed().as_millis()
        } else {
            0
        };
        let mut model = self.assemble(
            table,
            text,
            Arc::clone(&previous.cooc),
            Arc::clone(&previous.popularity),
        );
        model.stats.table_millis = table_millis;
        model.stats.text_millis = text_millis;
        model
    }

    fn assemble(
        &self,
        table: Arc<ItemTable>,
        text: Arc<TextIndex>,
        cooc: Arc<CoocGraph>,
        popularity: Arc<Popularity>,
    ) -> Model {
        let started = Instant::now();
        let derived = derive(&table, &popularity, &self.rules, &self.config);
        let derive_millis = started.elapsed().as_millis();
        let reference_ts = self.reference_ts();
        let stats = ModelStats {
            items: table.len(),
            available_items: table
                .available
                .iter()
                .filter(|available| **available)
                .count(),
            catalogs: table.catalogs.len(),
            interactions: self.log.len(),
            cooc_edges: cooc.edge_count(),
            terms: text.term_count(),
            directed_rules: derived.rules.len(),
            rules_version: self.rules.version,
            rules_hash: self.rules.content_hash(),
            reference_time: Utc
                .timestamp_opt(reference_ts, 0)
                .single()
                .unwrap_or_default(),
            table_millis: 0,
            text_millis: 0,
            behaviour_millis: 0,
            derive_millis,
        };
        Model {
            table,
            text,
            cooc,
            popularity,
            derived,
            config: self.config,
            reference_ts,
            stats,
        }
    }
}

fn popularity_order<'a>(
    table: &'a ItemTable,
    popularity: &'a Popularity,
) -> impl Fn(&u32, &u32) -> std::cmp::Ordering + 'a {
    move |left, right| {
        popularity
            .get(ItemIdx(*right))
            .total_cmp(&popularity.get(ItemIdx(*left)))
            .then_with(|| table.key(*left).cmp(&table.key(*right)))
    }
}

fn derive(
    table: &ItemTable,
    popularity: &Popularity,
    rules: &PairingRules,
    config: &ModelConfig,
) -> Derived {
    let order = popularity_order(table, popularity);
    let list_len = config.recommend.popular_list_len.max(1);
    let catalog_count = table.catalogs.len();
    let mut available: Vec<u32> = (0..table.len() as u32)
        .filter(|item| table.is_available(*item))
        .collect();
    available.sort_by(&order);

    let mut derived = Derived {
        popular_by_catalog: vec![Vec::new(); catalog_count],
        max_popularity_by_catalog: vec![0.0; catalog_count],
        ..Derived::default()
    };
    // Items of each facet, in popularity order (rule candidates, category
    // lists).
    let mut facet_items: HashMap<(u16, u32), Vec<u32>> = HashMap::new();
    for &item in &available {
        let catalog = table.catalog_of[item as usize];
        let score = popularity.get(ItemIdx(item));
        let position = usize::from(catalog);
        if derived.popular_by_catalog[position].len() < list_len {
            derived.popular_by_catalog[position].push(item);
        }
        derived.max_popularity_by_catalog[position] =
            derived.max_popularity_by_catalog[position].max(score);
        derived.max_popularity = derived.max_popularity.max(score);
        if derived.popular_global.len() < list_len {
            derived.popular_global.push(item);
        }
        for &facet in table.facets[item as usize].iter() {
            facet_items.entry((catalog, facet)).or_default().push(item);
        }
        let category = table.primary_category[item as usize];
        let price = table.price[item as usize];
        if category != NONE && price.is_finite() {
            derived
                .by_price
                .entry((catalog, category))
                .or_default()
                .push((price, item));
        }
    }
    for list in derived.by_price.values_mut() {
        list.sort_by(|left, right| left.0.total_cmp(&right.0).then(left.1.cmp(&right.1)));
    }
    let category_attribute = crate::catalog::CATEGORY_ATTRIBUTE;
    for ((catalog, facet), items) in &facet_items {
        if table.facet_names.attribute_name(*facet) == category_attribute {
            derived.popular_by_category.insert(
                (*catalog, *facet),
                items.iter().take(list_len).copied().collect(),
            );
        }
    }
    let mut available_per_catalog = vec![0usize; catalog_count];
    for &item in &available {
        available_per_catalog[usize::from(table.catalog_of[item as usize])] += 1;
    }
    // Compile rules (both directions unless one-way).
    for rule in &rules.rules {
        let rule_id: Arc<str> = Arc::from(rule.id.as_str());
        let mut directions = vec![(&rule.from, &rule.to)];
        if rule.bidirectional {
            directions.push((&rule.to, &rule.from));
        }
        for (from, to) in directions {
            let (Some(from_catalog), Some(to_catalog)) =
                (table.catalog(&from.catalog), table.catalog(&to.catalog))
            else {
                continue;
            };
            let facets_of = |side: &crate::rules::RuleSide| -> Vec<u32> {
                let mut facets: Vec<u32> = side
                    .values
                    .iter()
                    .filter_map(|value| table.facet_names.get(&side.attribute, value))
                    .collect();
                facets.sort_unstable();
                facets.dedup();
                facets
            };
            let from_facets = facets_of(from);
            let to_facets = facets_of(to);
            if from_facets.is_empty() || to_facets.is_empty() {
                continue;
            }
            let mut candidates: Vec<u32> = to_facets
                .iter()
                .filter_map(|facet| facet_items.get(&(to_catalog, *facet)))
                .flatten()
                .copied()
                .collect();
            candidates.sort_by(&order);
            candidates.dedup();
            candidates.truncate(config.recommend.max_candidates_per_rule);
            let index = derived.rules.len() as u32;
            for facet in &from_facets {
                derived
                    .rules_by_facet
                    .entry((from_catalog, *facet))
                    .or_default()
                    .push(index);
            }
            derived.rules.push(DirectedRule {
                rule_id: Arc::clone(&rule_id),
                from_facets,
                to_catalog,
                to_facets,
                weight: rule.weight as f32,
                candidates,
            });
        }
    }
    let cap = config.recommend.max_candidates_per_rule.max(1);
    for ((catalog, facet), mut items) in facet_items {
        let documents = available_per_catalog[usize::from(catalog)].max(1) as f32;
        let share = items.len() as f32 / documents;
        items.truncate(cap);
        derived.facet_lists.insert((catalog, facet), (share, items));
    }
    derived
}

/// Shares model snapshots between concurrent readers and a writer.
///
/// Readers call [`RecommenderHandle::snapshot`] (or `recommend`) and never
/// wait for a build: the read lock is held only to clone an `Arc`. Writers
/// (catalog updates, rule changes, refresh) serialise on a separate mutex,
/// build the new snapshot outside the read path and swap it in. New
/// interactions are queued without waiting for a running build and are
/// learned on the next `refresh`.
#[derive(Debug)]
pub struct RecommenderHandle {
    current: RwLock<Arc<Model>>,
    builder: Mutex<ModelBuilder>,
    pending: Mutex<Vec<Interaction>>,
}

fn recover<T>(result: Result<T, std::sync::PoisonError<T>>) -> T {
    // A panicking writer cannot leave a half-built model behind (snapshots
    // are swapped whole), so a poisoned lock is still consistent.
    result.unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl RecommenderHandle {
    /// Builds the first snapshot.
    pub fn new(builder: ModelBuilder) -> Self {
        let model = builder.build();
        Self {
            current: RwLock::new(Arc::new(model)),
            builder: Mutex::new(builder),
            pending: Mutex::new(Vec::new()),
        }
    }

    /// The current snapshot; keep it for the duration of a request.
    pub fn snapshot(&self) -> Arc<Model> {
        let guard = recover(self.current.read());
        Arc::clone(&guard)
    }

    /// Recommends against the current snapshot.
    pub fn recommend(&self, request: &Request) -> Result<Vec<Recommendation>, RecsError> {
        self.snapshot().recommend(request)
    }

    fn publish(&self, model: Model) -> Arc<Model> {
        let model = Arc::new(model);
        *recover(self.current.write()) = Arc::clone(&model);
        model
    }

    /// Inserts or replaces an item and publishes a snapshot reflecting it
    /// (learned behaviour is reused; the text index is rebuilt only when
    /// the item is new or its text changed).
    pub fn upsert_item(&self, catalog: &str, item: Item) -> Result<Arc<Model>, RecsError> {
        let mut builder = recover(self.builder.lock());
        let key = ItemKey::new(catalog, item.id.as_str());
        let previous = builder.catalogs.upsert_item(catalog, item.clone())?;
        builder.interner.intern(&key);
        let text_changed = previous.is_none_or(|previous| previous.text_differs(&item));
        let current = self.snapshot();
        let model = builder.rebuild_catalog_side(&current, text_changed);
        Ok(self.publish(model))
    }

    /// Deletes an item and publishes; `Ok(None)` when it did not exist.
    pub fn delete_item(&self, catalog: &str, id: &str) -> Result<Option<Arc<Model>>, RecsError> {
        let mut builder = recover(self.builder.lock());
        if builder.catalogs.delete_item(catalog, id)?.is_none() {
            return Ok(None);
        }
        let current = self.snapshot();
        let model = builder.rebuild_catalog_side(&current, false);
        Ok(Some(self.publish(model)))
    }

    /// Validates and installs a new rule document, then publishes.
    pub fn set_rules(&self, rules: PairingRules) -> Result<ValidationReport, RecsError> {
        let mut builder = recover(self.builder.lock());
        let report = rules.validate(&builder.catalogs)?;
        builder.rules = rules;
        let current = self.snapshot();
        let model = builder.rebuild_catalog_side(&current, false);
        self.publish(model);
        Ok(report)
    }

    /// Queues interactions for the next [`RecommenderHandle::refresh`]
    /// (never waits for a running build).
    pub fn add_interactions<I>(&self, interactions: I)
    where
        I: IntoIterator<Item = Interaction>,
    {
        recover(self.pending.lock()).extend(interactions);
    }

    /// Learns from all interactions (including queued ones) and publishes
    /// a fresh snapshot; `reference_time` moves decays forward when given.
    pub fn refresh(&self, reference_time: Option<DateTime<Utc>>) -> Arc<Model> {
        let mut builder = recover(self.builder.lock());
        let queued = std::mem::take(&mut *recover(self.pending.lock()));
        builder.add_interactions(queued.iter());
        if let Some(time) = reference_time {
            builder.reference_time = Some(time);
        }
        let model = builder.build();
        self.publish(model)
    }
}
