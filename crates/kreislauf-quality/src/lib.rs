//! Data quality for customer profiles: validation and normalisation of the fields a retailer in
//! Switzerland, Germany, Austria or Liechtenstein collects (e-mail, phone, name, address, birth
//! date), plus the matching keys that duplicate detection builds on.
//!
//! Every checker takes the raw text and returns a [`FieldOutcome`]: the raw value (always kept),
//! the normalised value, a [`FieldStatus`] with a short lowercase reason when something is wrong,
//! an optional suggestion (e.g. the e-mail with a corrected domain) and field-specific details.
//! [`score::score`] turns a set of outcomes into a 0–100 profile quality score.
//!
//! *Boundary*: pure. No I/O and no clock: callers pass `today` where age matters, and the default
//! phone region of the source.
//!
//! German data is first-class: umlauts and `ß` survive normalisation (Switzerland writes `ss`,
//! so street names follow the country), matching keys fold `ä → ae`, `ß → ss`, and
//! [`name::koelner_phonetik`] gives the Kölner Phonetik code.
//!
//! ```
//! use kreislauf_quality::{email, FieldStatus};
//!
//! let outcome = email::validate("Hans.Muster@GMIAL.com");
//! assert_eq!(outcome.value.as_deref(), Some("Hans.Muster@gmial.com"));
//! assert!(matches!(outcome.status, FieldStatus::Suspicious { .. }));
//! assert_eq!(outcome.suggestion.as_deref(), Some("Hans.Muster@gmail.com"));
//! ```

pub mod address;
pub mod birth_date;
pub mod country;
pub mod email;
pub mod name;
mod outcome;
pub mod phone;
pub mod score;
mod text;

pub use country::Country;
pub use name::Salutation;
pub use outcome::{FieldOutcome, FieldStatus};
pub use score::Field;
