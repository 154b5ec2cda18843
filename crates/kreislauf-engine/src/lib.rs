//! Kreislauf's engines, above the store traits and below the adapters (HTTP server, CLI).
//!
//! * [`audience`]: computed traits and segments kept current per event and as time passes.
//! * [`ingest`]: the ingestion pipeline — the single writer that deduplicates by `messageId`, resolves
//!   identities and commits batches durably (group commit).
//! * [`import`]: streaming CSV import of customers and historical events through the same pipeline.
//! * [`quality`]: field assessment of profiles and the data-quality report with likely duplicates.
//! * [`metrics`]: Prometheus metrics shared with the server.
//! * [`clock`]: the injectable clock.

pub mod audience;
pub mod clock;
pub mod dedup;
pub mod import;
pub mod ingest;
mod known;
pub mod metrics;
pub mod quality;

pub use clock::{Clock, ManualClock, SystemClock};
pub use ingest::{Engine, EngineConfig, EngineError, IngestOutcome};
pub use metrics::Metrics;
