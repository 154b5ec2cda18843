//! The recommendation API: one [`Request`] type, five strategies, and
//! results that explain themselves.
//!
//! Per request the engine
//! 1. resolves *anchors*: the item itself, or the profile's history
//!    weighted by kind and recency (top `max_anchors`);
//! 2. gathers candidates with component scores: pairing rules (weight ×
//!    anchor weight), co-occurrence neighbours (shrunk cosine), BM25
//!    similarity (normalised per anchor), time-decayed popularity;
//!    unavailable, excluded, recently sent and (optionally) purchased items
//!    are rejected on admission;
//! 3. scores them per strategy, each component max-normalised to [0, 1]
//!    over the candidates so blend weights mean what they say;
//! 4. re-ranks the best with MMR over facet (category/attribute) Jaccard
//!    similarity for diversity;
//! 5. fills up with popular items of the anchor's category / the target
//!    catalog on a cold start, and
//! 6. reports per item the reasons with their score contribution.
//!
//! Ties are broken by popularity, then by item key, so results are
//! deterministic. Scratch space is thread-local and sized to the model, so
//! a request allocates only its result.

use std::cell::RefCell;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::{ItemKey, CATEGORY_ATTRIBUTE};
use crate::cooc::decay;
use crate::error::RecsError;
use crate::interactions::{InteractionKind, ItemIdx};
use crate::items::NONE;
use crate::model::Model;

/// How to choose items.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Marketer pairing rules (wine → recipes).
    Pairing,
    /// Text/attribute similarity (more like this).
    Similar,
    /// Bought/used together, into another category or catalog.
    CrossSell,
    /// Same category, pricier within a band, similar attributes.
    UpSell,
    /// Weighted combination of pairing, co-occurrence, similarity and
    /// popularity.
    Blend,
}

impl Strategy {
    /// All strategies.
    pub const ALL: [Strategy; 5] = [
        Strategy::Pairing,
        Strategy::Similar,
        Strategy::CrossSell,
        Strategy::UpSell,
        Strategy::Blend,
    ];

    /// Kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pairing => "pairing",
            Self::Similar => "similar",
            Self::CrossSell => "cross-sell",
            Self::UpSell => "up-sell",
            Self::Blend => "blend",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Strategy {
    type Err = RecsError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|strategy| strategy.as_str() == text)
            .ok_or_else(|| RecsError::InvalidRequest {
                field: "strategy",
                message: format!("unknown strategy \"{text}\" (expected pairing, similar, cross-sell, up-sell or blend)"),
            })
    }
}

/// Weights of the blend strategy (normalised components).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlendWeights {
    /// Pairing rules.
    pub pairing: f32,
    /// Learned co-occurrence.
    pub cooccurrence: f32,
    /// Text/attribute similarity.
    pub similarity: f32,
    /// Time-decayed popularity.
    pub popularity: f32,
}

impl BlendWeights {
    /// Defaults for item requests (see [`crate::RecommendConfig`]).
    pub fn for_items() -> Self {
        Self {
            pairing: 0.35,
            cooccurrence: 0.35,
            similarity: 0.15,
            popularity: 0.15,
        }
    }
}

/// Defaults for profile requests, tuned on a validation world (seed 11)
/// of the [`crate::eval`] generator.
impl Default for BlendWeights {
    fn default() -> Self {
        Self {
            pairing: 0.1,
            cooccurrence: 0.4,
            similarity: 0.3,
            popularity: 0.2,
        }
    }
}

/// One entry of a profile's history, supplied by the caller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEvent {
    /// Item.
    pub item: ItemKey,
    /// What happened.
    pub kind: InteractionKind,
    /// When.
    pub timestamp: DateTime<Utc>,
}

/// Whom or what to recommend for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// For an item ("recipes for this Prosecco").
    Item(ItemKey),
    /// For a profile, given its history (may be empty: cold start).
    Profile {
        /// The profile's interactions, any order.
        history: Vec<HistoryEvent>,
    },
}

fn default_true() -> bool {
    true
}

/// A recommendation request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Item or profile.
    pub subject: Subject,
    /// Only items of this catalog (`None`: strategy default — any
    /// catalog; for similar/up-sell the anchor's catalog).
    #[serde(default)]
    pub target_catalog: Option<String>,
    /// Only items with this category.
    #[serde(default)]
    pub category: Option<String>,
    /// How many items.
    pub count: usize,
    /// How to choose.
    pub strategy: Strategy,
    /// Items never to return.
    #[serde(default)]
    pub exclude: Vec<ItemKey>,
    /// Items recently sent to the customer (not repeated).
    #[serde(default)]
    pub recently_sent: Vec<ItemKey>,
    /// Exclude items the profile purchased (default true).
    #[serde(default = "default_true")]
    pub exclude_purchased: bool,
    /// Exclude every item in the profile history.
    #[serde(default)]
    pub exclude_seen: bool,
    /// Time for recency weighting of history (default: model reference).
    #[serde(default)]
    pub now: Option<DateTime<Utc>>,
    /// Blend weights overriding the model default.
    #[serde(default)]
    pub blend: Option<BlendWeights>,
    /// MMR λ overriding the model default (1.0 = no diversification).
    #[serde(default)]
    pub diversity_lambda: Option<f32>,
}

impl Request {
    fn with_subject(subject: Subject, strategy: Strategy, count: usize) -> Self {
        Self {
            subject,
            target_catalog: None,
            category: None,
            count,
            strategy,
            exclude: Vec::new(),
            recently_sent: Vec::new(),
            exclude_purchased: true,
            exclude_seen: false,
            now: None,
            blend: None,
            diversity_lambda: None,
        }
    }

    /// Recommendations for an item.
    pub fn for_item(item: ItemKey, strategy: Strategy, count: usize) -> Self {
        Self::with_subject(Subject::Item(item), strategy, count)
    }

    /// Recommendations for a profile with the given history.
    pub fn for_profile(history: Vec<HistoryEvent>, strategy: Strategy, count: usize) -> Self {
        Self::with_subject(Subject::Profile { history }, strategy, count)
    }

    /// Restricts to a catalog.
    pub fn target(mut self, catalog: impl Into<String>) -> Self {
        self.target_catalog = Some(catalog.into());
        self
    }

    /// Restricts to a category.
    pub fn in_category(mut self, category: impl Into<String>) -> Self {
        self.category = Some(category.into());
        self
    }

    /// Adds recently sent items.
    pub fn recently_sent(mut self, items: impl IntoIterator<Item = ItemKey>) -> Self {
        self.recently_sent.extend(items);
        self
    }

    /// Adds excluded items.
    pub fn excluding(mut self, items: impl IntoIterator<Item = ItemKey>) -> Self {
        self.exclude.extend(items);
        self
    }
}

/// Scope of a popularity reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum PopularScope {
    /// Popular within a category of a catalog.
    Category {
        /// Catalog.
        catalog: String,
        /// Category.
        category: String,
    },
    /// Popular within a catalog.
    Catalog {
        /// Catalog.
        catalog: String,
    },
}

/// Why an item was chosen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReasonKind {
    /// A pairing rule matched the anchor and the item.
    PairingRule {
        /// Rule id.
        rule_id: String,
        /// The anchor item (e.g. the Prosecco).
        anchor: ItemKey,
        /// Anchor attribute that matched.
        from_attribute: String,
        /// Its value.
        from_value: String,
        /// Item attribute that matched.
        to_attribute: String,
        /// Its value.
        to_value: String,
        /// Rule weight.
        weight: f64,
    },
    /// Learned from behaviour: customers with X also took this.
    CoOccurrence {
        /// The anchor item.
        with: ItemKey,
        /// Lift.
        lift: f64,
        /// Supporting profiles.
        support: u32,
        /// Association score.
        score: f64,
    },
    /// Similar text/attributes.
    Similarity {
        /// The anchor item.
        to: ItemKey,
        /// Top matching terms.
        terms: Vec<String>,
    },
    /// Popular (fallback or blend component).
    Popular(PopularScope),
    /// Up-sell: pricier than the anchor.
    PriceStep {
        /// The anchor item.
        from: ItemKey,
        /// Item price / anchor price.
        price_ratio: f64,
    },
}

/// A reason with its contribution to the score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// What.
    #[serde(flatten)]
    pub kind: ReasonKind,
    /// Contribution to the item's score.
    pub contribution: f64,
}

impl Reason {
    /// One-line English summary (templates may render their own text
    /// from the structured fields).
    pub fn summary(&self) -> String {
        match &self.kind {
            ReasonKind::PairingRule {
                rule_id,
                anchor,
                from_attribute,
                from_value,
                to_attribute,
                to_value,
                ..
            } => format!(
                "pairing rule {rule_id}: {from_attribute} {from_value} of {anchor} goes with {to_attribute} {to_value}"
            ),
            ReasonKind::CoOccurrence { with, lift, support, .. } => {
                format!("often together with {with} (lift {lift:.2}, {support} customers)")
            }
            ReasonKind::Similarity { to, terms } => format!("similar to {to} ({})", terms.join(", ")),
            ReasonKind::Popular(PopularScope::Category { catalog, category }) => {
                format!("popular in {category} ({catalog})")
            }
            ReasonKind::Popular(PopularScope::Catalog { catalog }) => format!("popular in {catalog}"),
            ReasonKind::PriceStep { from, price_ratio } => format!("premium alternative to {from} (×{price_ratio:.2})"),
        }
    }
}

/// One recommended item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// Item key.
    pub item: ItemKey,
    /// Title (for templates).
    pub title: String,
    /// URL.
    pub url: Option<String>,
    /// Image.
    pub image: Option<String>,
    /// Price.
    pub price: Option<f64>,
    /// Score (strategy-specific scale; higher is better).
    pub score: f64,
    /// Reasons, largest contribution first.
    pub reasons: Vec<Reason>,
}

const MAX_HITS: usize = 3;
const REJECTED: u32 = u32::MAX - 1;

#[derive(Clone, Copy, Debug, Default)]
struct PairHit {
    rule: u32,
    anchor: u32,
    amount: f32,
}

#[derive(Clone, Debug, Default)]
struct Candidate {
    item: u32,
    pairing: f32,
    cooc: f32,
    similarity: f32,
    pass_similarity: f32,
    popularity: f32,
    hits: [PairHit; MAX_HITS],
    hit_count: u8,
    cooc_anchor: u32,
    cooc_best: f32,
    cooc_lift: f32,
    cooc_support: u32,
    similarity_anchor: u32,
    similarity_best: f32,
    /// Share of the anchors' weighted facets the item has, × price fit.
    attribute: f32,
    /// Part of `similarity` that came from text (rest: attributes).
    text_share: f32,
    /// Came from a taste facet list.
    seeded: bool,
    upsell_anchor: u32,
    price_ratio: f32,
    jaccard: f32,
    score: f32,
}

impl Candidate {
    fn add_hit(&mut self, hit: PairHit) {
        if usize::from(self.hit_count) < MAX_HITS {
            self.hits[usize::from(self.hit_count)] = hit;
            self.hit_count += 1;
            return;
        }
        // Keep the strongest hits.
        let weakest = (0..MAX_HITS)
            .min_by(|left, right| self.hits[*left].amount.total_cmp(&self.hits[*right].amount))
            .unwrap_or(0);
        if hit.amount > self.hits[weakest].amount {
            self.hits[weakest] = hit;
        }
    }
}

#[derive(Default)]
struct Scratch {
    /// Facets of the attribute query: (catalog, facet, share).
    taste: Vec<(u16, u32, f32)>,
    /// Strongest anchor per catalog (for attribute reasons).
    taste_anchors: Vec<(u16, u32)>,
    slot: Vec<u32>,
    candidates: Vec<Candidate>,
    rejected: Vec<u32>,
    pass_touched: Vec<u32>,
}

impl Scratch {
    fn reset(&mut self, item_count: usize) {
        for candidate in &self.candidates {
            if let Some(slot) = self.slot.get_mut(candidate.item as usize) {
                *slot = NONE;
            }
        }
        for &item in &self.rejected {
            if let Some(slot) = self.slot.get_mut(item as usize) {
                *slot = NONE;
            }
        }
        self.candidates.clear();
        self.rejected.clear();
        self.taste.clear();
        self.taste_anchors.clear();
        self.pass_touched.clear();
        if self.slot.len() != item_count {
            self.slot.clear();
            self.slot.resize(item_count, NONE);
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

#[derive(Clone, Copy, Debug)]
struct Anchor {
    item: u32,
    weight: f32,
}

/// Request-level filters applied when a candidate is first seen.
struct Admission<'a> {
    model: &'a Model,
    target: Option<u16>,
    category: Option<u32>,
    excluded: Vec<u32>,
    /// (catalog, primary category) of anchors; cross-sell must leave them.
    anchor_groups: Vec<(u16, u32)>,
    cross_sell: bool,
}

impl Admission<'_> {
    fn admits(&self, item: u32) -> bool {
        let table = &self.model.table;
        if !table.is_available(item) || self.excluded.binary_search(&item).is_ok() {
            return false;
        }
        let catalog = table.catalog_of[item as usize];
        if self.target.is_some_and(|target| target != catalog) {
            return false;
        }
        if self
            .category
            .is_some_and(|facet| !table.has_facet(item, facet))
        {
            return false;
        }
        if self.cross_sell {
            let group = (catalog, table.primary_category[item as usize]);
            if self.anchor_groups.contains(&group) {
                return false;
            }
        }
        true
    }
}

fn candidate_index(scratch: &mut Scratch, admission: &Admission<'_>, item: u32) -> Option<usize> {
    let slot = *scratch.slot.get(item as usize)?;
    if slot == REJECTED {
        return None;
    }
    if slot != NONE {
        return Some(slot as usize);
    }
    if !admission.admits(item) {
        scratch.slot[item as usize] = REJECTED;
        scratch.rejected.push(item);
        return None;
    }
    let index = scratch.candidates.len();
    scratch.slot[item as usize] = index as u32;
    scratch.candidates.push(Candidate {
        item,
        ..Candidate::default()
    });
    Some(index)
}

fn existing_candidate(scratch: &Scratch, item: u32) -> Option<usize> {
    match scratch.slot.get(item as usize) {
        Some(&slot) if slot != NONE && slot != REJECTED => Some(slot as usize),
        _ => None,
    }
}

fn resolve_anchors(model: &Model, request: &Request) -> Result<(Vec<Anchor>, Vec<u32>), RecsError> {
    let table = &model.table;
    let mut excluded = Vec::new();
    let anchors = match &request.subject {
        Subject::Item(key) => {
            let index = table
                .interner
                .get(key)
                .filter(|index| table.item(*index).is_some())
                .ok_or_else(|| RecsError::UnknownItem {
                    catalog: key.catalog.clone(),
                    id: key.id.clone(),
                })?;
            excluded.push(index);
            vec![Anchor {
                item: index,
                weight: 1.0,
            }]
        }
        Subject::Profile { history } => {
            let now = request
                .now
                .map_or(model.reference_ts, |now| now.timestamp());
            let weights = model.config.cooc.kind_weights;
            let mut scored: Vec<Anchor> = Vec::new();
            for event in history {
                let Some(index) = table.interner.get(&event.item) else {
                    continue;
                };
                if request.exclude_seen
                    || (request.exclude_purchased && event.kind == InteractionKind::Purchase)
                {
                    excluded.push(index);
                }
                let weight = weights.weight(event.kind)
                    * decay(
                        now - event.timestamp.timestamp(),
                        Some(model.config.recommend.anchor_half_life_days),
                    );
                match scored.iter_mut().find(|anchor| anchor.item == index) {
                    Some(anchor) => anchor.weight += weight,
                    None => scored.push(Anchor {
                        item: index,
                        weight,
                    }),
                }
            }
            scored.sort_by(|left, right| {
                right
                    .weight
                    .total_cmp(&left.weight)
                    .then(left.item.cmp(&right.item))
            });
            scored.truncate(model.config.recommend.max_anchors);
            let max = scored
                .first()
                .map_or(1.0, |anchor| anchor.weight.max(f32::MIN_POSITIVE));
            for anchor in &mut scored {
                anchor.weight /= max;
            }
            scored
        }
    };
    for key in request.exclude.iter().chain(&request.recently_sent) {
        if let Some(index) = table.interner.get(key) {
            excluded.push(index);
        }
    }
    excluded.sort_unstable();
    excluded.dedup();
    Ok((anchors, excluded))
}

pub(crate) fn recommend(
    model: &Model,
    request: &Request,
) -> Result<Vec<Recommendation>, RecsError> {
    let config = &model.config.recommend;
    if request.count == 0 || request.count > config.max_count {
        return Err(RecsError::InvalidRequest {
            field: "count",
            message: format!(
                "count must be between 1 and {}, got {}",
                config.max_count, request.count
            ),
        });
    }
    let table = &model.table;
    let target = match &request.target_catalog {
        Some(name) => Some(
            table
                .catalog(name)
                .ok_or_else(|| RecsError::UnknownCatalog(name.clone()))?,
        ),
        None => None,
    };
    let category =
        match &request.category {
            Some(name) => Some(table.facet_names.get(CATEGORY_ATTRIBUTE, name).ok_or_else(
                || RecsError::InvalidRequest {
                    field: "category",
                    message: format!("no item has category \"{name}\""),
                },
            )?),
            None => None,
        };
    let (anchors, excluded) = resolve_anchors(model, request)?;
    let anchor_groups = anchors
        .iter()
        .filter(|anchor| table.item(anchor.item).is_some())
        .map(|anchor| {
            (
                table.catalog_of[anchor.item as usize],
                table.primary_category[anchor.item as usize],
            )
        })
        .collect();
    let admission = Admission {
        model,
        target,
        category,
        excluded,
        anchor_groups,
        cross_sell: request.strategy == Strategy::CrossSell,
    };
    SCRATCH.with(|cell| {
        let mut scratch = cell.borrow_mut();
        scratch.reset(table.len());
        run(model, request, &anchors, &admission, &mut scratch)
    })
}

fn run(
    model: &Model,
    request: &Request,
    anchors: &[Anchor],
    admission: &Admission<'_>,
    scratch: &mut Scratch,
) -> Result<Vec<Recommendation>, RecsError> {
    let strategy = request.strategy;
    let uses_pairing = matches!(
        strategy,
        Strategy::Pairing | Strategy::CrossSell | Strategy::Blend
    );
    let uses_cooc = matches!(strategy, Strategy::CrossSell | Strategy::Blend);
    let uses_similarity = matches!(strategy, Strategy::Similar | Strategy::Blend);
    if uses_pairing {
        gather_pairing(model, anchors, admission, scratch);
    }
    if uses_cooc {
        gather_cooc(model, anchors, admission, scratch);
    }
    if uses_similarity {
        gather_similarity(model, anchors, admission, scratch, false);
        let profile = matches!(request.subject, Subject::Profile { .. });
        gather_attributes(model, anchors, admission, scratch, profile);
    }
    if strategy == Strategy::UpSell {
        gather_upsell(model, anchors, admission, scratch);
    }
    if strategy == Strategy::Blend {
        gather_popular(model, admission, scratch, 50);
    }
    let defaults = match request.subject {
        Subject::Item(_) => model.config.recommend.item_blend,
        Subject::Profile { .. } => model.config.recommend.blend,
    };
    let weights = request.blend.unwrap_or(defaults);
    score_candidates(model, admission.target, strategy, &weights, scratch);

    let lambda = request
        .diversity_lambda
        .unwrap_or(model.config.recommend.diversity_lambda)
        .clamp(0.0, 1.0);
    let mut chosen = diversify(model, scratch, request.count, lambda);
    let mut results: Vec<Recommendation> = chosen
        .iter()
        .filter_map(|&index| {
            explain(
                model,
                strategy,
                &weights,
                admission.category,
                scratch,
                &scratch.candidates[index],
            )
        })
        .collect();
    if results.len() < request.count {
        let floor = results.last().map_or(1.0, |last| last.score).min(1.0);
        fill_popular(
            model,
            anchors,
            admission,
            scratch,
            request.count,
            floor,
            &mut chosen,
            &mut results,
        );
    }
    Ok(results)
}

/// Pairing: first sums anchor weights per matching rule (a profile with
/// ten sparkling wines applies "sparkling → antipasti" once, with the
/// summed weight, remembering its strongest anchor for the reason), then
/// walks each rule's precomputed candidates once.
fn gather_pairing(
    model: &Model,
    anchors: &[Anchor],
    admission: &Admission<'_>,
    scratch: &mut Scratch,
) {
    let table = &model.table;
    let derived = &model.derived;
    // (rule, summed anchor weight, strongest anchor, its weight)
    let mut matched: Vec<(u32, f32, u32, f32)> = Vec::new();
    let mut applied: Vec<u32> = Vec::new();
    for anchor in anchors {
        let Some(facets) = table.facets.get(anchor.item as usize) else {
            continue;
        };
        let catalog = table.catalog_of[anchor.item as usize];
        applied.clear();
        for &facet in facets.iter() {
            let Some(rule_indices) = derived.rules_by_facet.get(&(catalog, facet)) else {
                continue;
            };
            for &rule_index in rule_indices {
                // A list-valued attribute may match one rule twice.
                if applied.contains(&rule_index) {
                    continue;
                }
                applied.push(rule_index);
                if admission
                    .target
                    .is_some_and(|target| target != derived.rules[rule_index as usize].to_catalog)
                {
                    continue;
                }
                match matched.iter_mut().find(|entry| entry.0 == rule_index) {
                    Some(entry) => {
                        entry.1 += anchor.weight;
                        if anchor.weight > entry.3 {
                            entry.2 = anchor.item;
                            entry.3 = anchor.weight;
                        }
                    }
                    None => matched.push((rule_index, anchor.weight, anchor.item, anchor.weight)),
                }
            }
        }
    }
    for (rule_index, anchor_weight, anchor, _) in matched {
        let rule = &derived.rules[rule_index as usize];
        let amount = rule.weight * anchor_weight;
        for &item in &rule.candidates {
            if let Some(index) = candidate_index(scratch, admission, item) {
                let candidate = &mut scratch.candidates[index];
                candidate.pairing += amount;
                candidate.add_hit(PairHit {
                    rule: rule_index,
                    anchor,
                    amount,
                });
            }
        }
    }
}

fn gather_cooc(
    model: &Model,
    anchors: &[Anchor],
    admission: &Admission<'_>,
    scratch: &mut Scratch,
) {
    for anchor in anchors {
        for neighbour in model.cooc.neighbours(ItemIdx(anchor.item)) {
            let Some(index) = candidate_index(scratch, admission, neighbour.item.0) else {
                continue;
            };
            let amount = neighbour.score * anchor.weight;
            let candidate = &mut scratch.candidates[index];
            candidate.cooc += amount;
            if amount > candidate.cooc_best {
                candidate.cooc_best = amount;
                candidate.cooc_anchor = anchor.item;
                candidate.cooc_lift = neighbour.lift;
                candidate.cooc_support = neighbour.support;
            }
        }
    }
}

/// BM25 similarity, normalised per anchor pass so every anchor's best
/// match scores 1 × anchor weight. With `existing_only`, only candidates
/// admitted before (the up-sell price band) receive scores.
fn gather_similarity(
    model: &Model,
    anchors: &[Anchor],
    admission: &Admission<'_>,
    scratch: &mut Scratch,
    existing_only: bool,
) {
    let table = &model.table;
    let limit = model.config.recommend.similarity_anchors;
    for anchor in anchors
        .iter()
        .filter(|anchor| table.item(anchor.item).is_some())
        .take(limit)
    {
        let query = model.text.item_query(anchor.item);
        if query.is_empty() {
            continue;
        }
        let catalog = admission
            .target
            .unwrap_or(table.catalog_of[anchor.item as usize]);
        scratch.pass_touched.clear();
        model.text.accumulate(catalog, &query, |item, score| {
            let index = if existing_only {
                existing_candidate(scratch, item)
            } else {
                candidate_index(scratch, admission, item)
            };
            if let Some(index) = index {
                let candidate = &mut scratch.candidates[index];
                if candidate.pass_similarity == 0.0 {
                    scratch.pass_touched.push(index as u32);
                }
                candidate.pass_similarity += score;
            }
        });
        let pass_max = scratch
            .pass_touched
            .iter()
            .map(|&index| scratch.candidates[index as usize].pass_similarity)
            .fold(0.0f32, f32::max);
        for position in 0..scratch.pass_touched.len() {
            let index = scratch.pass_touched[position] as usize;
            let candidate = &mut scratch.candidates[index];
            let amount = if pass_max > 0.0 {
                candidate.pass_similarity / pass_max * anchor.weight
            } else {
                0.0
            };
            candidate.pass_similarity = 0.0;
            candidate.similarity += amount;
            if amount > candidate.similarity_best {
                candidate.similarity_best = amount;
                candidate.similarity_anchor = anchor.item;
            }
        }
    }
}

/// Attribute similarity as a taste model. Per catalog, the anchors'
/// attribute values form a weighted distribution (this customer buys 70 %
/// sparkling, 60 % Italian, around 12 €). An item's taste match is the
/// naive-Bayes likelihood ratio of its values under that distribution
/// versus the catalog's base rates (smoothed by `taste_smoothing`), times
/// the fit of its price to the anchors' prices, and — for profiles — times
/// its popularity in the catalog (+0.05, so new items still count) raised
/// to `taste_popularity_exponent` (a match that others buy too). Candidates come from the precomputed lists of the strongest
/// facets; items gathered by other components are scored as well.
fn gather_attributes(
    model: &Model,
    anchors: &[Anchor],
    admission: &Admission<'_>,
    scratch: &mut Scratch,
    profile: bool,
) {
    let table = &model.table;
    let derived = &model.derived;
    let config = &model.config.recommend;
    // ((catalog, facet), weight), later sorted by key for binary search.
    let mut weights: Vec<((u16, u32), f32)> = Vec::new();
    // (catalog, Σ w·ln price, Σ w)
    let mut prices: Vec<(u16, f32, f32)> = Vec::new();
    for anchor in anchors
        .iter()
        .filter(|anchor| table.item(anchor.item).is_some())
    {
        let catalog = table.catalog_of[anchor.item as usize];
        if admission.target.is_some_and(|target| target != catalog) {
            continue;
        }
        if !scratch
            .taste_anchors
            .iter()
            .any(|(known, _)| *known == catalog)
        {
            scratch.taste_anchors.push((catalog, anchor.item));
        }
        for &facet in table.facets[anchor.item as usize].iter() {
            if !derived.facet_lists.contains_key(&(catalog, facet)) {
                continue;
            }
            match weights.iter_mut().find(|(key, _)| *key == (catalog, facet)) {
                Some((_, weight)) => *weight += anchor.weight,
                None => weights.push(((catalog, facet), anchor.weight)),
            }
        }
        let price = table.price[anchor.item as usize];
        if price.is_finite() && price > 0.0 {
            match prices.iter_mut().find(|(known, _, _)| *known == catalog) {
                Some(entry) => {
                    entry.1 += anchor.weight * price.ln();
                    entry.2 += anchor.weight;
                }
                None => prices.push((catalog, anchor.weight * price.ln(), anchor.weight)),
            }
        }
    }
    if weights.is_empty() {
        return;
    }
    // Total weight per (catalog, attribute): the denominator of the
    // profile's value distribution for that attribute.
    let attribute_of = |facet: u32| {
        table
            .facet_names
            .attribute_of
            .get(facet as usize)
            .copied()
            .unwrap_or(NONE)
    };
    let mut totals: Vec<((u16, u32), f32)> = Vec::with_capacity(16);
    for &((catalog, facet), weight) in &weights {
        let key = (catalog, attribute_of(facet));
        match totals.iter_mut().find(|(known, _)| *known == key) {
            Some((_, total)) => *total += weight,
            None => totals.push((key, weight)),
        }
    }
    // Strongest facets (weight relative to base rate) seed candidates.
    let mut seeds: Vec<((u16, u32), f32)> = weights
        .iter()
        .map(|&(key, weight)| {
            let share = derived
                .facet_lists
                .get(&key)
                .map_or(1.0, |(share, _)| share.max(1e-6));
            (key, weight * (1.0 / share).ln_1p())
        })
        .collect();
    seeds.sort_by(|left, right| right.1.total_cmp(&left.1).then(left.0.cmp(&right.0)));
    seeds.truncate(config.taste_facets);
    for &((catalog, facet), strength) in &seeds {
        scratch.taste.push((catalog, facet, strength));
        if let Some((_, items)) = derived.facet_lists.get(&(catalog, facet)) {
            for &item in items.iter().take(config.max_candidates_per_facet) {
                if let Some(index) = candidate_index(scratch, admission, item) {
                    scratch.candidates[index].seeded = true;
                }
            }
        }
    }
    // Observed facets with their base rate, sorted for binary search.
    let mut observed: Vec<((u16, u32), f32, f32)> = weights
        .iter()
        .map(|&(key, weight)| {
            let base = derived
                .facet_lists
                .get(&key)
                .map_or(1.0, |(share, _)| share.max(1e-6));
            (key, weight, base)
        })
        .collect();
    observed.sort_by_key(|(key, _, _)| *key);
    let smoothing = config.taste_smoothing.max(1e-3);
    let tolerance = 2.0 * config.price_tolerance.max(0.05).powi(2);
    const MAX_ATTRIBUTES: usize = 16;
    totals.truncate(MAX_ATTRIBUTES);
    // Which candidates to score: all seeded ones plus the best
    // `TASTE_RESCORE` of the others by their other signals (bounds
    // latency on big catalogs; faint matches would not make the top anyway).
    const TASTE_RESCORE: usize = 400;
    let max_cooc = max_of(scratch, |candidate| candidate.cooc).max(f32::MIN_POSITIVE);
    let max_pairing = max_of(scratch, |candidate| candidate.pairing).max(f32::MIN_POSITIVE);
    let preliminary = |candidate: &Candidate| {
        candidate.cooc / max_cooc + candidate.pairing.max(0.0) / max_pairing + candidate.similarity
    };
    let mut others: Vec<(usize, f32)> = scratch
        .candidates
        .iter()
        .enumerate()
        .filter(|(_, candidate)| !candidate.seeded)
        .map(|(index, candidate)| (index, preliminary(candidate)))
        .filter(|(_, score)| *score > 0.0)
        .collect();
    if others.len() > TASTE_RESCORE {
        others.select_nth_unstable_by(TASTE_RESCORE - 1, |left, right| {
            right.1.total_cmp(&left.1).then(left.0.cmp(&right.0))
        });
        others.truncate(TASTE_RESCORE);
    }
    let chosen = scratch
        .candidates
        .iter()
        .enumerate()
        .filter(|(_, candidate)| candidate.seeded)
        .map(|(index, _)| index)
        .chain(others.into_iter().map(|(index, _)| index));
    let mut log_scores: Vec<(usize, f32)> = Vec::new();
    for index in chosen {
        let candidate = &scratch.candidates[index];
        let catalog = table.catalog_of[candidate.item as usize];
        if !totals.iter().any(|((known, _), _)| *known == catalog) {
            continue;
        }
        // Per attribute of the taste: Σ likelihood ratios and value count.
        let mut sums = [0.0f32; MAX_ATTRIBUTES];
        let mut counts = [0u8; MAX_ATTRIBUTES];
        for &facet in table.facets[candidate.item as usize].iter() {
            let attribute = attribute_of(facet);
            let Some(slot) = totals.iter().position(|key| key.0 == (catalog, attribute)) else {
                continue;
            };
            let total = totals[slot].1;
            // An unseen value's ratio does not depend on its base rate.
            let ratio = match observed.binary_search_by(|(key, _, _)| key.cmp(&(catalog, facet))) {
                Ok(position) => {
                    let (_, weight, base) = observed[position];
                    (weight + smoothing * base) / ((total + smoothing) * base)
                }
                Err(_) => smoothing / (total + smoothing),
            };
            sums[slot] += ratio;
            counts[slot] = counts[slot].saturating_add(1);
        }
        let mut log_score = 0.0f32;
        for (slot, &((known, _), total)) in totals.iter().enumerate() {
            if known != catalog {
                continue;
            }
            let ratio = if counts[slot] == 0 {
                smoothing / (total + smoothing)
            } else {
                sums[slot] / f32::from(counts[slot])
            };
            log_score += ratio.max(1e-6).ln();
        }
        let price = table.price[candidate.item as usize];
        if let Some((_, sum, total)) = prices.iter().find(|(known, _, _)| *known == catalog) {
            if price.is_finite() && price > 0.0 && *total > 0.0 {
                let distance = price.ln() - sum / total;
                log_score -= distance * distance / tolerance;
            }
        }
        let catalog_max = derived
            .max_popularity_by_catalog
            .get(usize::from(catalog))
            .copied()
            .unwrap_or(0.0);
        let popularity = if catalog_max > 0.0 {
            model.popularity.get(ItemIdx(candidate.item)) / catalog_max
        } else {
            0.0
        };
        // Only for profiles: "more like this item" is about likeness.
        if profile {
            log_score += config.taste_popularity_exponent * (popularity + 0.05).ln();
        }
        log_scores.push((index, log_score));
    }
    // Scale to (0, 1] by the best match, so it adds to text similarity.
    let best = log_scores
        .iter()
        .map(|(_, score)| *score)
        .fold(f32::NEG_INFINITY, f32::max);
    for (index, log_score) in log_scores {
        let candidate = &mut scratch.candidates[index];
        candidate.attribute = (log_score - best).exp();
        candidate.similarity += config.attribute_weight * candidate.attribute;
    }
}

/// Up-sell candidates: same catalog and primary category as an anchor,
/// priced within the band; scored by similarity to that anchor.
fn gather_upsell(
    model: &Model,
    anchors: &[Anchor],
    admission: &Admission<'_>,
    scratch: &mut Scratch,
) {
    let table = &model.table;
    let config = &model.config.recommend;
    let limit = config.similarity_anchors;
    let priced: Vec<Anchor> = anchors
        .iter()
        .filter(|anchor| {
            table
                .price
                .get(anchor.item as usize)
                .is_some_and(|price| price.is_finite() && *price > 0.0)
        })
        .take(limit)
        .copied()
        .collect();
    for anchor in &priced {
        let item = anchor.item as usize;
        let group = (table.catalog_of[item], table.primary_category[item]);
        if group.1 == NONE || admission.target.is_some_and(|target| target != group.0) {
            continue;
        }
        let Some(by_price) = model.derived.by_price.get(&group) else {
            continue;
        };
        let price = table.price[item];
        let low = price * config.upsell_min_ratio;
        let high = price * config.upsell_max_ratio;
        let start = by_price.partition_point(|(candidate_price, _)| *candidate_price < low);
        for &(candidate_price, candidate) in by_price[start..]
            .iter()
            .take_while(|(p, _)| *p <= high)
            .take(400)
        {
            let Some(index) = candidate_index(scratch, admission, candidate) else {
                continue;
            };
            let jaccard = table.facet_jaccard(anchor.item, candidate);
            let entry = &mut scratch.candidates[index];
            if entry.price_ratio == 0.0 || jaccard > entry.jaccard {
                entry.upsell_anchor = anchor.item;
                entry.price_ratio = candidate_price / price;
                entry.jaccard = jaccard;
            }
        }
    }
    gather_similarity(model, &priced, admission, scratch, true);
}

fn gather_popular(model: &Model, admission: &Admission<'_>, scratch: &mut Scratch, count: usize) {
    let derived = &model.derived;
    let list: &[u32] = match (admission.target, admission.category) {
        (Some(target), Some(category)) => derived
            .popular_by_category
            .get(&(target, category))
            .map_or(&[], Vec::as_slice),
        (Some(target), None) => derived
            .popular_by_catalog
            .get(usize::from(target))
            .map_or(&[], Vec::as_slice),
        (None, _) => &derived.popular_global,
    };
    let mut added = 0;
    for &item in list {
        if added >= count {
            break;
        }
        if candidate_index(scratch, admission, item).is_some() {
            added += 1;
        }
    }
}

fn max_of(scratch: &Scratch, component: impl Fn(&Candidate) -> f32) -> f32 {
    scratch
        .candidates
        .iter()
        .map(component)
        .fold(0.0f32, f32::max)
}

fn normalised(value: f32, max: f32) -> f32 {
    if max > 0.0 {
        value / max
    } else {
        0.0
    }
}

fn score_candidates(
    model: &Model,
    target: Option<u16>,
    strategy: Strategy,
    weights: &BlendWeights,
    scratch: &mut Scratch,
) {
    let derived = &model.derived;
    let max_popularity = match target {
        Some(target) => derived
            .max_popularity_by_catalog
            .get(usize::from(target))
            .copied()
            .unwrap_or(0.0),
        None => derived.max_popularity,
    };
    let max_pairing = max_of(scratch, |candidate| candidate.pairing);
    let max_cooc = max_of(scratch, |candidate| candidate.cooc);
    let max_similarity = max_of(scratch, |candidate| candidate.similarity);
    let config = &model.config.recommend;
    let band = (config.upsell_max_ratio - config.upsell_min_ratio).max(f32::EPSILON);
    for candidate in &mut scratch.candidates {
        candidate.popularity = normalised(
            model.popularity.get(ItemIdx(candidate.item)),
            max_popularity,
        );
        let pairing = normalised(candidate.pairing, max_pairing);
        let cooc = normalised(candidate.cooc, max_cooc);
        let similarity = normalised(candidate.similarity, max_similarity);
        candidate.score = match strategy {
            Strategy::Pairing => pairing,
            Strategy::Similar => similarity,
            Strategy::CrossSell => 0.6 * cooc + 0.4 * pairing,
            Strategy::UpSell => {
                if candidate.price_ratio <= 0.0 {
                    0.0
                } else {
                    // Prefer a modest step up over a leap.
                    let price_factor = 1.0
                        - 0.3
                            * ((candidate.price_ratio - config.upsell_min_ratio) / band)
                                .clamp(0.0, 1.0);
                    (0.7 * similarity + 0.3 * candidate.jaccard) * price_factor
                }
            }
            Strategy::Blend => {
                weights.pairing * pairing
                    + weights.cooccurrence * cooc
                    + weights.similarity * similarity
                    + weights.popularity * candidate.popularity
            }
        };
    }
    // Keep the normalisers for explanations.
    scratch.candidates.iter_mut().for_each(|candidate| {
        let attribute = model.config.recommend.attribute_weight * candidate.attribute;
        candidate.text_share = if candidate.similarity > 0.0 {
            ((candidate.similarity - attribute) / candidate.similarity).clamp(0.0, 1.0)
        } else {
            0.0
        };
        candidate.pairing = normalised(candidate.pairing, max_pairing);
        candidate.cooc = normalised(candidate.cooc, max_cooc);
        candidate.similarity = normalised(candidate.similarity, max_similarity);
    });
}

fn ranking<'a>(
    model: &'a Model,
    candidates: &'a [Candidate],
) -> impl Fn(&usize, &usize) -> std::cmp::Ordering + 'a {
    move |left, right| {
        let (left, right) = (&candidates[*left], &candidates[*right]);
        right
            .score
            .total_cmp(&left.score)
            .then(right.popularity.total_cmp(&left.popularity))
            .then_with(|| model.table.key(left.item).cmp(&model.table.key(right.item)))
    }
}

/// MMR: greedily pick the candidate maximising λ·relevance − (1−λ)·max
/// facet similarity to what is already picked.
fn diversify(model: &Model, scratch: &Scratch, count: usize, lambda: f32) -> Vec<usize> {
    let order = ranking(model, &scratch.candidates);
    let mut pool: Vec<usize> = (0..scratch.candidates.len())
        .filter(|&index| scratch.candidates[index].score > 0.0)
        .collect();
    let pool_size = (count * 4).max(count + 20);
    if pool.len() > pool_size {
        pool.select_nth_unstable_by(pool_size - 1, &order);
        pool.truncate(pool_size);
    }
    pool.sort_by(&order);
    if lambda >= 1.0 || pool.len() <= 1 {
        pool.truncate(count);
        return pool;
    }
    let top = pool.first().map_or(1.0, |&index| {
        scratch.candidates[index].score.max(f32::MIN_POSITIVE)
    });
    let mut redundancy = vec![0.0f32; pool.len()];
    let mut taken = vec![false; pool.len()];
    let mut chosen = Vec::with_capacity(count);
    while chosen.len() < count {
        let mut best: Option<(usize, f32)> = None;
        for (position, &index) in pool.iter().enumerate() {
            if taken[position] {
                continue;
            }
            let value = lambda * scratch.candidates[index].score / top
                - (1.0 - lambda) * redundancy[position];
            // Pool is in ranking order, so strict `>` keeps ties stable.
            if best.is_none_or(|(_, best_value)| value > best_value) {
                best = Some((position, value));
            }
        }
        let Some((position, _)) = best else { break };
        taken[position] = true;
        let picked = scratch.candidates[pool[position]].item;
        chosen.push(pool[position]);
        for (other, &index) in pool.iter().enumerate() {
            if !taken[other] {
                let similarity = model
                    .table
                    .facet_jaccard(picked, scratch.candidates[index].item);
                redundancy[other] = redundancy[other].max(similarity);
            }
        }
    }
    chosen
}

fn round(value: f32) -> f64 {
    (f64::from(value) * 1e6).round() / 1e6
}

fn key_of(model: &Model, item: u32) -> ItemKey {
    model
        .table
        .key(item)
        .cloned()
        .unwrap_or_else(|| ItemKey::new("", ""))
}

fn first_shared(facets: &[u32], item_facets: &[u32]) -> Option<u32> {
    facets
        .iter()
        .copied()
        .find(|facet| item_facets.binary_search(facet).is_ok())
}

fn explain(
    model: &Model,
    strategy: Strategy,
    weights: &BlendWeights,
    category: Option<u32>,
    scratch: &Scratch,
    candidate: &Candidate,
) -> Option<Recommendation> {
    let table = &model.table;
    let item = table.item(candidate.item)?;
    let (pairing_weight, cooc_weight, similarity_weight, popularity_weight) = match strategy {
        Strategy::Pairing => (1.0, 0.0, 0.0, 0.0),
        Strategy::Similar => (0.0, 0.0, 1.0, 0.0),
        Strategy::CrossSell => (0.4, 0.6, 0.0, 0.0),
        Strategy::UpSell => (0.0, 0.0, 0.7, 0.0),
        Strategy::Blend => (
            weights.pairing,
            weights.cooccurrence,
            weights.similarity,
            weights.popularity,
        ),
    };
    let mut reasons = Vec::new();
    let facets = &table.facets[candidate.item as usize];
    if pairing_weight != 0.0 && candidate.hit_count > 0 {
        let hits = &candidate.hits[..usize::from(candidate.hit_count)];
        let total: f32 = hits.iter().map(|hit| hit.amount).sum();
        for hit in hits {
            let Some(rule) = model.derived.rules.get(hit.rule as usize) else {
                continue;
            };
            let anchor_facets = &table.facets[hit.anchor as usize];
            let from = first_shared(&rule.from_facets, anchor_facets).unwrap_or(NONE);
            let to = first_shared(&rule.to_facets, facets).unwrap_or(NONE);
            let share = if total != 0.0 {
                hit.amount / total
            } else {
                0.0
            };
            reasons.push(Reason {
                kind: ReasonKind::PairingRule {
                    rule_id: rule.rule_id.to_string(),
                    anchor: key_of(model, hit.anchor),
                    from_attribute: table.facet_names.attribute_name(from).to_string(),
                    from_value: table.facet_names.value(from).to_string(),
                    to_attribute: table.facet_names.attribute_name(to).to_string(),
                    to_value: table.facet_names.value(to).to_string(),
                    weight: f64::from(rule.weight),
                },
                contribution: round(pairing_weight * candidate.pairing * share),
            });
        }
    }
    if cooc_weight != 0.0 && candidate.cooc > 0.0 {
        reasons.push(Reason {
            kind: ReasonKind::CoOccurrence {
                with: key_of(model, candidate.cooc_anchor),
                lift: round(candidate.cooc_lift),
                support: candidate.cooc_support,
                score: round(candidate.cooc_best),
            },
            contribution: round(cooc_weight * candidate.cooc),
        });
    }
    if similarity_weight != 0.0 && candidate.similarity > 0.0 {
        let total = similarity_weight * candidate.similarity;
        if candidate.text_share > 0.0 && candidate.similarity_best > 0.0 {
            let query = model.text.item_query(candidate.similarity_anchor);
            reasons.push(Reason {
                kind: ReasonKind::Similarity {
                    to: key_of(model, candidate.similarity_anchor),
                    terms: model.text.matching_terms(&query, candidate.item, 3),
                },
                contribution: round(total * candidate.text_share),
            });
        }
        let catalog = table.catalog_of[candidate.item as usize];
        let anchor = scratch
            .taste_anchors
            .iter()
            .find(|(known, _)| *known == catalog)
            .map(|(_, anchor)| *anchor);
        if let (true, Some(anchor)) = (
            candidate.attribute > 0.0 && candidate.text_share < 1.0,
            anchor,
        ) {
            let terms = scratch
                .taste
                .iter()
                .filter(|(known, facet, _)| {
                    *known == catalog && facets.binary_search(facet).is_ok()
                })
                .take(3)
                .map(|(_, facet, _)| {
                    format!(
                        "{}: {}",
                        table.facet_names.attribute_name(*facet),
                        table.facet_names.value(*facet)
                    )
                })
                .collect();
            reasons.push(Reason {
                kind: ReasonKind::Similarity {
                    to: key_of(model, anchor),
                    terms,
                },
                contribution: round(total * (1.0 - candidate.text_share)),
            });
        }
    }
    if strategy == Strategy::UpSell {
        reasons.push(Reason {
            kind: ReasonKind::PriceStep {
                from: key_of(model, candidate.upsell_anchor),
                price_ratio: round(candidate.price_ratio),
            },
            contribution: round(0.3 * candidate.jaccard),
        });
    }
    if popularity_weight > 0.0 && candidate.popularity > 0.001 {
        let catalog = table
            .catalog_name(table.catalog_of[candidate.item as usize])
            .to_string();
        let scope = match category {
            Some(facet) => PopularScope::Category {
                catalog,
                category: table.facet_names.value(facet).to_string(),
            },
            None => PopularScope::Catalog { catalog },
        };
        reasons.push(Reason {
            kind: ReasonKind::Popular(scope),
            contribution: round(popularity_weight * candidate.popularity),
        });
    }
    reasons.sort_by(|left, right| right.contribution.total_cmp(&left.contribution));
    Some(recommendation(
        model,
        candidate.item,
        item,
        candidate.score,
        reasons,
    ))
}

fn recommendation(
    model: &Model,
    index: u32,
    item: &crate::catalog::Item,
    score: f32,
    reasons: Vec<Reason>,
) -> Recommendation {
    Recommendation {
        item: key_of(model, index),
        title: item.title.clone(),
        url: item.url.clone(),
        image: item.image.clone(),
        price: item.price,
        score: round(score),
        reasons,
    }
}

/// Cold start / top-up: popular items of the anchor's category (when it
/// is in the target catalog), of the requested category, then of the
/// target catalog (or all catalogs).
#[allow(clippy::too_many_arguments)]
fn fill_popular(
    model: &Model,
    anchors: &[Anchor],
    admission: &Admission<'_>,
    scratch: &mut Scratch,
    count: usize,
    floor: f64,
    chosen: &mut Vec<usize>,
    results: &mut Vec<Recommendation>,
) {
    let table = &model.table;
    let derived = &model.derived;
    let mut sources: Vec<(PopularScope, &[u32])> = Vec::new();
    let catalogs: Vec<u16> = match admission.target {
        Some(target) => vec![target],
        None => {
            let mut catalogs: Vec<u16> = anchors
                .iter()
                .filter(|anchor| table.item(anchor.item).is_some())
                .map(|anchor| table.catalog_of[anchor.item as usize])
                .collect();
            catalogs.dedup();
            catalogs.extend(0..table.catalogs.len() as u16);
            catalogs
        }
    };
    let mut category_keys: Vec<(u16, u32)> = Vec::new();
    if let Some(facet) = admission.category {
        category_keys.extend(catalogs.iter().map(|catalog| (*catalog, facet)));
    }
    for anchor in anchors
        .iter()
        .filter(|anchor| table.item(anchor.item).is_some())
    {
        let group = (
            table.catalog_of[anchor.item as usize],
            table.primary_category[anchor.item as usize],
        );
        if group.1 != NONE && catalogs.contains(&group.0) && !category_keys.contains(&group) {
            category_keys.push(group);
        }
    }
    for key in &category_keys {
        if let Some(list) = derived.popular_by_category.get(key) {
            let scope = PopularScope::Category {
                catalog: table.catalog_name(key.0).to_string(),
                category: table.facet_names.value(key.1).to_string(),
            };
            sources.push((scope, list));
        }
    }
    for &catalog in &catalogs {
        if let Some(list) = derived.popular_by_catalog.get(usize::from(catalog)) {
            let scope = PopularScope::Catalog {
                catalog: table.catalog_name(catalog).to_string(),
            };
            sources.push((scope, list));
        }
    }
    let floor = if floor > 0.0 { floor as f32 } else { 1.0 };
    for (scope, list) in sources {
        let max = list
            .first()
            .map_or(0.0, |&item| model.popularity.get(ItemIdx(item)))
            .max(f32::MIN_POSITIVE);
        for &item in list {
            if results.len() >= count {
                return;
            }
            let Some(index) = candidate_index(scratch, admission, item) else {
                continue;
            };
            if chosen.contains(&index) {
                continue;
            }
            let Some(data) = table.item(item) else {
                continue;
            };
            let strength = (model.popularity.get(ItemIdx(item)) / max).clamp(0.0, 1.0);
            let score = floor * 0.99 * strength;
            chosen.push(index);
            let reasons = vec![Reason {
                kind: ReasonKind::Popular(scope.clone()),
                contribution: round(score),
            }];
            results.push(recommendation(model, item, data, score, reasons));
        }
    }
}
