//! The Kreislauf domain core: what an event, a source, an identity and a profile are, how
//! incoming Segment-spec messages are validated and normalised, and how identities resolve
//! into profiles. Pure: no I/O and no clock (callers pass `now`).

pub mod event;
pub mod identity;
pub mod resolve;
pub mod source;

pub use event::{Event, EventKind, FieldError, Limits};
pub use identity::{Identifier, IdentifierKind};
pub use resolve::{IdentityGraph, Plan, ProfileId};
pub use source::{IdentityMapping, Source, SourceId};
