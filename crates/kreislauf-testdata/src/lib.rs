//! Deterministic test data for de-duplication (record linkage) and data quality: customer
//! records of people in Switzerland, Germany, Austria and Liechtenstein, with the errors
//! real CRM and loyalty exports have, and with ground truth.
//!
//! # Use
//!
//! ```
//! use kreislauf_testdata::{true_pairs, write_csv, Generator, GeneratorConfig, Stats};
//!
//! let config = GeneratorConfig { seed: 7, people: 200, ..GeneratorConfig::default() };
//! let records = Generator::new(config)?.generate();
//!
//! let truth = true_pairs(&records);        // what a perfect linker would link
//! let stats = Stats::of(&records);         // counts, for reports
//! assert_eq!(stats.true_pairs as usize, truth.len());
//!
//! let mut csv = Vec::new();
//! write_csv(&records, &mut csv)?;           // for tools outside Rust
//! # Ok::<(), kreislauf_testdata::Error>(())
//! ```
//!
//! Unit and property tests of matching code take a few hundred records with
//! [`ErrorRates::all`] or [`ErrorRates::none`] to isolate one effect. The data-quality and
//! linkage benchmarks (`BENCHMARKS.md`) use the default error rates with a fixed seed and
//! 10⁴–10⁶ persons, and score a linker's pairs against [`true_pairs`] (precision, recall,
//! F1), counting separately how many [`household_pairs`] it wrongly linked.
//!
//! # What is generated
//!
//! *Persons* live in *households*. A household shares surname (mostly), street address,
//! sometimes a family e-mail address (`familie.mueller@bluewin.ch`) and a landline; its
//! members are still different persons. Names, cities, postal codes, area codes, streets,
//! e-mail providers and mobile ranges come from embedded tables with realistic frequency
//! skew (Müller, Meier, Gruber are common, the tail is long) and regional flavour (Urs and
//! Reto in Zürich, Jean and Léa in Lausanne, Sepp in Graz).
//!
//! Each person gets one *first record* from a [`Source`] system, exported the way that
//! system does (dates as `24.12.1980` or `1980-12-24`, country as `CH` or `Schweiz`, fields
//! it rarely asks for left empty). About `duplicate_rate` further records per person follow,
//! from any source, each with [`Corruption`]s applied at the configured [`ErrorRates`]:
//! umlaut and ß spellings, case, QWERTZ typos, nicknames, swapped names, an old address,
//! another phone style or e-mail, missing values, and more. Records are then shuffled.
//!
//! # Ground truth
//!
//! * `person_id` identifies the real person: two records *match* if and only if their
//!   `person_id`s are equal. [`true_pairs`] lists those pairs.
//! * `household_id` identifies the household. Two records with the same `household_id` and
//!   different `person_id`s are *hard non-matches*: similar by design, never to be merged.
//! * `duplicate_of` points to the person's first record; `corruptions` says what was done
//!   to a duplicate, for analysing which errors a linker misses.
//!
//! None of these may be used by the code under test. Values look real but are not: any
//! resemblance of a generated person to a real one is chance.
//!
//! # Determinism
//!
//! The same [`GeneratorConfig`] (including its seed) gives byte-identical output on every
//! platform: randomness is ChaCha8 with version-stable derivations and no floating-point
//! library functions. Persons, records and the shuffle use separate streams, so changing
//! error rates or the source mix does not change who the persons are.

mod config;
mod corrupt;
mod format;
mod generate;
mod output;
mod record;
mod reference;
mod rng;

pub use config::{
    CountryMix, ErrorRates, GeneratorConfig, SourceMix, MAX_DUPLICATE_RATE, MAX_PEOPLE,
};
pub use generate::Generator;
pub use output::{
    household_pairs, true_pairs, write_csv, Stats, CSV_COLUMNS, GROUND_TRUTH_COLUMNS,
};
pub use record::{
    Corruption, Country, DateFormat, Field, Missing, PhoneStyle, PostalVariant, Record, Source,
    TypoKind, UmlautStyle,
};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config value is out of range.
    #[error("invalid config: {field} is {value}, expected {expected}")]
    InvalidConfig {
        field: &'static str,
        value: String,
        expected: &'static str,
    },
    /// Writing CSV failed.
    #[error("cannot write csv: {0}")]
    Csv(#[from] csv::Error),
    /// Writing failed.
    #[error("cannot write: {0}")]
    Io(#[from] std::io::Error),
}
