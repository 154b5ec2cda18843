//! # kreislauf-segments — computed traits and segments
//!
//! Pure library (no I/O, no clock: `now` is always a parameter) answering "which customers are
//! in this group right now, and who just entered or left it?".
//!
//! * **Computed traits** ([`ComputedTraitDef`] → [`ComputedTrait`]): aggregates over a
//!   profile's events — `count sum min max first last distinct_count exists most_frequent` —
//!   filtered by event names, sources, brands and a `where` condition over `event.*`, over a
//!   sliding window of days or the lifetime. Per-profile state ([`TraitState`]) is compact,
//!   serde-serialisable, updated incrementally ([`ComputedTrait::apply`], late events welcome),
//!   mergeable ([`TraitState::merge`], exact below the documented caps) and recomputable
//!   ([`ComputedTrait::recompute`]). [`ComputedTrait::next_change_at`] says exactly when
//!   ageing-out changes a value.
//! * **Segments** ([`SegmentDefinition`]): a condition in the `kreislauf-expr` language over
//!   traits, computed traits, identities, consent and other segments.
//! * **Registries**: [`ComputedTraitRegistry`] (event-name index: a non-matching event costs a
//!   hash lookup) and [`SegmentRegistry`] (versions by content hash, dependency index,
//!   dependency-first order, cycle detection, membership diffs).
//! * **Passes and scheduling** ([`schedule`]): per-event and time-based passes, and the next
//!   instant a time-based pass is needed.
//!
//! ## Definition document (YAML; JSON has the same structure)
//!
//! ```yaml
//! computed_traits:
//!   - name: sparkling_purchases_30d
//!     aggregate: count
//!     events: [Order Completed]
//!     sources: [supermarket]
//!     where: { path: event.properties.category, eq: sparkling_wine }
//!     window: 30d
//!   - name: lifetime_value_chf
//!     aggregate: sum
//!     of: event.properties.revenue
//!     events: [Order Completed]
//!     window: lifetime
//!   - name: last_purchase_at
//!     aggregate: last
//!     of: event.timestamp
//!     events: [Order Completed]
//!     window: lifetime
//!   - name: favourite_category
//!     aggregate: most_frequent
//!     of: event.properties.category
//!     events: [Order Completed]
//!     window: 365d
//! segments:
//!   - id: sparkling-wine-club
//!     name: Sparkling-wine buyers (30 days) with wine-club e-mail consent
//!     condition:
//!       all:
//!         - { path: computed.sparkling_purchases_30d, ge: 1 }
//!         - { path: consent.wine_club.email.marketing, eq: true }
//!   - id: zurich-loyal-500
//!     name: Loyalty-card holders in Zürich with a lifetime value over CHF 500
//!     condition:
//!       all:
//!         - exists: identity.loyalty_card
//!         - { path: trait.city, eq: Zürich, ignore_case: true }
//!         - { path: computed.lifetime_value_chf, gt: 500 }
//!   - id: lapsed-60d
//!     name: No purchase for 60 days
//!     condition: { path: computed.last_purchase_at, more_than_ago: 60d }
//! ```
//!
//! ## Example
//!
//! ```
//! use std::collections::BTreeSet;
//! use chrono::{TimeZone, Utc};
//! use kreislauf_expr::StaticFacts;
//! use kreislauf_segments::{schedule, ComputedTraitRegistry, Definitions, ProfileTraitStates,
//!     SegmentRegistry, TraitEvent};
//!
//! let doc = Definitions::from_yaml_str(r#"
//! computed_traits:
//!   - { name: orders_30d, aggregate: count, events: [Order Completed], window: 30d }
//! segments:
//!   - { id: recent-buyers, condition: { path: computed.orders_30d, ge: 1 } }
//! "#)?;
//! let mut traits = ComputedTraitRegistry::new();
//! traits.apply_all(doc.computed_traits)?;
//! let mut segments = SegmentRegistry::new();
//! segments.apply_all(doc.segments, &traits)?;
//!
//! let now = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
//! let event = TraitEvent::new("Order Completed", "webshop", "kreislauf", now);
//! let mut states = ProfileTraitStates::default();
//! let facts = StaticFacts::new();
//! let pass = schedule::on_event(&segments, &traits, &mut states, &BTreeSet::new(), &facts, &event, now);
//! let update = pass.membership.unwrap_or_default();
//! assert_eq!(update.entered[0].id, "recent-buyers");
//! let wake = schedule::next_reevaluation_at(&segments, &traits, &states, &update.members, &facts, now);
//! assert_eq!(wake, Some(Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap()));
//! # Ok::<(), kreislauf_expr::ValidationErrors>(())
//! ```

pub mod bench;
pub mod computed;
pub mod event;
pub mod hash;
mod reader;
pub mod registry;
pub mod schedule;
pub mod segment;
pub mod state;
pub mod traits;

pub use computed::{Aggregate, Applied, ComputedTrait, ComputedTraitDef, Window};
pub use event::TraitEvent;
pub use registry::{
    Changes, MembershipUpdate, RegistryError, SegmentChange, SegmentRegistry, SegmentVersion,
};
pub use segment::{Definitions, SegmentDefinition};
pub use state::{TraitState, DISTINCT_CAP, FREQUENT_CAP};
pub use traits::{
    ApplyOutcome, ComputedTraitRegistry, EventOutcome, ProfileTraitStates, VersionedState,
    WithComputed,
};
