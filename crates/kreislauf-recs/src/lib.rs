//! # kreislauf-recs — catalogs and recommendations
//!
//! "The wine club's message is only as good as the two recipes it suggests
//! for the Prosecco just bought." This crate holds the catalogs (products,
//! recipes, articles — per brand) and the engine that pairs them: product →
//! content pairing, cross-selling and up-selling, with reasons.
//!
//! ## Design
//!
//! * **Catalogs** ([`catalog`], [`import`]): items keyed by (catalog, id),
//!   free attributes, streaming CSV / JSON (Lines or array) parsers that
//!   report bad records with line and field and keep the good ones.
//! * **Pairing rules** ([`rules`]): marketer-editable YAML/JSON documents
//!   with weights between attribute values of two catalogs, validated with
//!   path-named errors and did-you-mean, content-hashed and diffable.
//! * **Text** ([`analysis`], BM25F index): NFC, case and umlaut folding,
//!   Snowball stemming (German/English), hyphen and compound splitting
//!   against the index vocabulary ("Spargelrisotto" ↔ "Risotto").
//! * **Behaviour** ([`cooc`]): windowed per-profile co-occurrence with
//!   time decay, minimum support, lift and shrunk cosine, top-N sparse
//!   neighbour lists over `u32` ids; time-decayed popularity.
//! * **Model** ([`model`]): an immutable snapshot built by
//!   [`ModelBuilder`]; [`RecommenderHandle`] swaps snapshots
//!   (`RwLock<Arc<Model>>` clone-out) so readers never wait for a build;
//!   catalog updates republish quickly, reusing learned behaviour.
//! * **One API** ([`recommend`]): [`Model::recommend`] /
//!   [`RecommenderHandle::recommend`] with a [`Request`] for an item or a
//!   profile history, strategies pairing / similar / cross-sell / up-sell /
//!   blend, exclusions, MMR diversity, cold-start fallback, and
//!   [`Reason`]s with score contributions. Deterministic tie-breaks.
//! * **Evaluation** ([`eval`]): seeded synthetic wine/deli/recipe world
//!   with hidden pairing truth, time split, precision/recall/NDCG@k and
//!   coverage per strategy vs. most-popular and an external ALS baseline
//!   (`scripts/als_baseline.py`, same split via CSV, same metrics).
//! * **Benchmark** ([`bench`]): 100k items / 10M interactions build and
//!   request latency percentiles, memory.
//!
//! ## Entry points for the server, CLI and templates
//!
//! * build: [`ModelBuilder::new`]`(catalogs)` → `.with_rules(rules)?` →
//!   `add_interactions(..)` → [`RecommenderHandle::new`]`(builder)`;
//! * serve: [`RecommenderHandle::recommend`]`(&Request)` (or keep an
//!   `Arc<Model>` from [`RecommenderHandle::snapshot`] for a batch);
//! * update: [`RecommenderHandle::upsert_item`], `delete_item`,
//!   `set_rules`, `add_interactions` + `refresh`;
//! * import: [`CsvItemReader`] / [`JsonItemReader`] into
//!   [`Catalog::import`]; rules: [`PairingRules::from_yaml_str`],
//!   [`PairingRules::validate`], `content_hash`, `diff`;
//! * `kreislauf recs eval`: [`eval::run_evaluation`]`(&EvalConfig)`
//!   (set `als_script` to `crates/kreislauf-recs/scripts/als_baseline.py`
//!   to add the implicit-ALS row; needs `pip install implicit`);
//! * `kreislauf bench recs`: [`bench::run`]`(BenchConfig::full(seed))`, or
//!   `BenchConfig::small` for a smoke run.
//!
//! The crate examples do the same from the command line:
//! `cargo run --release -p kreislauf-recs --example eval -- --script
//! crates/kreislauf-recs/scripts/als_baseline.py` and `cargo run --release
//! -p kreislauf-recs --example bench [-- --small]`.
//!
//! ## Example
//!
//! ```
//! use kreislauf_recs::{Catalog, CatalogMeta, CatalogSet, Item, ItemKey, ModelBuilder,
//!     PairingRules, Request, Strategy};
//!
//! let mut wines = Catalog::new(CatalogMeta::new("wines", "weinclub", "product"));
//! wines.upsert(Item::new("prosecco", "Prosecco DOC").with_attribute("type", "sparkling"));
//! let mut recipes = Catalog::new(CatalogMeta::new("recipes", "weinclub", "recipe"));
//! recipes.upsert(Item::new("bruschetta", "Bruschetta mit Tomaten").with_attribute("course", "antipasti"));
//! recipes.upsert(Item::new("braten", "Rinderschmorbraten").with_attribute("course", "hauptgericht"));
//! let mut catalogs = CatalogSet::new();
//! catalogs.insert(wines);
//! catalogs.insert(recipes);
//! let rules = PairingRules::from_yaml_str(r#"
//! version: 1
//! rules:
//!   - id: sparkling-antipasti
//!     from: { catalog: wines, attribute: type, values: [sparkling] }
//!     to: { catalog: recipes, attribute: course, values: [antipasti] }
//!     weight: 0.9
//! "#).unwrap();
//! let model = ModelBuilder::new(catalogs).with_rules(rules).unwrap().build();
//! let request = Request::for_item(ItemKey::new("wines", "prosecco"), Strategy::Pairing, 1)
//!     .target("recipes");
//! let recs = model.recommend(&request).unwrap();
//! assert_eq!(recs[0].item.id, "bruschetta");
//! assert!(recs[0].reasons[0].summary().contains("sparkling-antipasti"));
//! ```

pub mod analysis;
pub mod bench;
pub mod catalog;
pub mod cooc;
pub mod error;
pub mod eval;
pub mod import;
pub mod interactions;
mod items;
pub mod model;
pub mod recommend;
pub mod rules;
mod text_index;

pub use analysis::{Analyzer, Language, Vocabulary};
pub use catalog::{AttributeValue, Catalog, CatalogMeta, CatalogSet, ImportSummary, Item, ItemKey};
pub use cooc::{CoocConfig, Neighbour, Seasonality};
pub use error::{ImportError, RecsError, RuleProblem, RulesError};
pub use import::{CsvItemReader, JsonItemReader};
pub use interactions::{Interaction, InteractionKind, InteractionLog, ItemIdx, KindWeights};
pub use model::{
    Association, Model, ModelBuilder, ModelConfig, ModelStats, RecommendConfig, RecommenderHandle,
    SearchHit,
};
pub use recommend::{
    BlendWeights, HistoryEvent, PopularScope, Reason, ReasonKind, Recommendation, Request,
    Strategy, Subject,
};
pub use rules::{PairingRule, PairingRules, RuleSide, RulesDiff, ValidationReport};
pub use text_index::TextConfig;
