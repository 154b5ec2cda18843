//! # kreislauf-expr — the one condition language of Kreislauf
//!
//! Segments, journey branch conditions, journey entry filters and event property filters all
//! use this language. It is pure: no I/O and no clock — `now` is always a parameter.
//!
//! Life cycle: **parse** ([`Expr::from_value`], JSON or YAML, or serde) → **compile** against a
//! [`Scope`] ([`compile`]: validates names and namespaces, folds strings, types literals) →
//! **evaluate** ([`Compiled::evaluate`]) against the caller's [`Facts`] at `now`, and ask
//! [`Compiled::next_time_change`] when the result could next flip through time alone.
//!
//! ## Operands
//!
//! Operands are namespaced paths (see [`path`]): `trait.city`, `trait.address.zip`,
//! `computed.wine_purchases_30d`, `identity.loyalty_card`, `consent.wine_club.email.marketing`,
//! `event.properties.category`, `event.name`, `profile.created_at`.
//!
//! ## The format (YAML; JSON has the same structure)
//!
//! ```yaml
//! # Loyalty-card holders in Zürich with a lifetime value over CHF 500
//! all:
//!   - exists: identity.loyalty_card
//!   - { path: trait.city, eq: Zürich, ignore_case: true }   # also "ZURICH", "Zuerich"
//!   - { path: computed.lifetime_value_chf, gt: 500 }
//! ```
//!
//! ```yaml
//! # Opened a wine-club mail but never bought wine; no purchase for 60 days; birthday today
//! all:
//!   - { path: computed.wine_club_mail_opens, ge: 1 }
//!   - not: { path: computed.wine_purchases_lifetime, ge: 1 }
//!   - { path: computed.last_purchase_at, more_than_ago: 60d }
//!   - { path: trait.birthday, anniversary: today }          # in the customer's time zone
//!   - { path: trait.birthday, lt: 24.12.1980 }             # de-CH dates or 1980-12-24
//!   - any:
//!       - { path: trait.email, matches: "*@bluewin.ch" }
//!       - in_segment: wine-lovers
//! ```
//!
//! Operators: `eq ne lt le gt ge between contains starts_with ends_with matches in not_in any_of
//! all_of within_last more_than_ago within_next anniversary`, plus `exists`, `missing`, `all`,
//! `any`, `not`, `in_segment`, and the constants `true`/`false`. Details in [`ast::Test`].
//!
//! ## Missing data
//!
//! Two-valued logic, no "unknown": every operator except `missing` is false on a missing operand
//! (absent, `null`, `""`, `[]`) — `ne`/`not_in` mean "present and not equal". `not` is plain
//! negation, so `not not e ≡ e` and De Morgan's laws hold. See [`eval`] for the full rules.
//!
//! ## Example
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use kreislauf_expr::{compile, Expr, Scope, StaticFacts};
//! use serde_json::json;
//!
//! let expr = Expr::from_yaml_str("{ path: computed.last_purchase_at, more_than_ago: 60d }")?;
//! let compiled = compile(&expr, &Scope::unchecked())?;
//! let facts = StaticFacts::new().with_computed("last_purchase_at", json!("2024-01-01T10:00:00Z"));
//! let now = Utc.with_ymd_and_hms(2024, 2, 1, 0, 0, 0).unwrap();
//! assert!(!compiled.evaluate(&facts, now));
//! // 60 days after the purchase the profile qualifies; the engine schedules a pass then.
//! let flip = compiled.next_time_change(&facts, now).unwrap();
//! assert_eq!(flip, Utc.with_ymd_and_hms(2024, 3, 1, 10, 0, 0).unwrap());
//! assert!(compiled.evaluate(&facts, flip));
//! # Ok::<(), kreislauf_expr::ValidationErrors>(())
//! ```

pub mod ast;
pub mod calendar;
pub mod compile;
pub mod error;
pub mod eval;
pub mod facts;
pub mod fold;
pub mod glob;
pub mod literal;
pub mod path;
pub mod suggest;

pub use ast::{Expr, Predicate, References, Test, OPERATORS};
pub use compile::{compile, compile_at, Compiled, NameSet, Scope};
pub use error::{ValidationError, ValidationErrors};
pub use eval::next_time_change;
pub use facts::{Facts, StaticFacts};
pub use literal::{Anniversary, Literal, Span};
pub use path::{IdentityKind, Namespace, Path};
