//! What a condition can look at: the caller implements [`Facts`] over its own profile and event
//! representation. Every method has a default ("nothing known"), so an implementation provides
//! only what it has; a journey's event filter, for example, only implements `event_field`.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use chrono_tz::Tz;
use serde_json::{Map, Value};

use crate::path::IdentityKind;

/// The facts about one profile (and possibly its current event) that conditions are evaluated on.
pub trait Facts {
    /// A profile trait by top-level name (nested keys are walked by the evaluator).
    fn trait_value(&self, _name: &str) -> Option<&Value> {
        None
    }

    /// A computed trait's current value.
    fn computed(&self, _name: &str) -> Option<Value> {
        None
    }

    /// The profile's identifiers of one kind.
    fn identities(&self, _kind: IdentityKind) -> &[String] {
        &[]
    }

    /// `Some(true)` granted, `Some(false)` refused or withdrawn, `None` never asked.
    fn consent(&self, _brand: &str, _channel: &str, _purpose: &str) -> Option<bool> {
        None
    }

    /// Membership in another segment.
    fn in_segment(&self, _id: &str) -> bool {
        false
    }

    /// A top-level field of the current event: `name`, `type`, `source`, `brand`, `timestamp`
    /// (RFC 3339 string), `message_id`, `properties`, `context` or `traits` (objects; nested
    /// keys are walked by the evaluator).
    fn event_field(&self, _field: &str) -> Option<Cow<'_, Value>> {
        None
    }

    /// A profile attribute: `id`, `created_at`, `updated_at`, `last_seen_at`.
    fn profile_attribute(&self, _name: &str) -> Option<Cow<'_, Value>> {
        None
    }

    /// The customer's time zone, used for dates, birthdays and "today"; `None` means UTC.
    fn timezone(&self) -> Option<Tz> {
        None
    }
}

impl<T: Facts + ?Sized> Facts for &T {
    fn trait_value(&self, name: &str) -> Option<&Value> {
        (**self).trait_value(name)
    }
    fn computed(&self, name: &str) -> Option<Value> {
        (**self).computed(name)
    }
    fn identities(&self, kind: IdentityKind) -> &[String] {
        (**self).identities(kind)
    }
    fn consent(&self, brand: &str, channel: &str, purpose: &str) -> Option<bool> {
        (**self).consent(brand, channel, purpose)
    }
    fn in_segment(&self, id: &str) -> bool {
        (**self).in_segment(id)
    }
    fn event_field(&self, field: &str) -> Option<Cow<'_, Value>> {
        (**self).event_field(field)
    }
    fn profile_attribute(&self, name: &str) -> Option<Cow<'_, Value>> {
        (**self).profile_attribute(name)
    }
    fn timezone(&self) -> Option<Tz> {
        (**self).timezone()
    }
}

/// Facts held in plain maps: for tests, previews and small callers.
#[derive(Debug, Clone, Default)]
pub struct StaticFacts {
    pub traits: Map<String, Value>,
    pub computed: BTreeMap<String, Value>,
    pub identities: BTreeMap<IdentityKind, Vec<String>>,
    /// Keyed by `(brand, channel, purpose)`.
    pub consents: BTreeMap<(String, String, String), bool>,
    pub segments: BTreeSet<String>,
    /// The current event's top-level fields (`name`, `properties`, ...).
    pub event: Map<String, Value>,
    pub profile: Map<String, Value>,
    pub timezone: Option<Tz>,
}

impl StaticFacts {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_trait(mut self, name: &str, value: Value) -> Self {
        self.traits.insert(name.to_owned(), value);
        self
    }

    pub fn with_computed(mut self, name: &str, value: Value) -> Self {
        self.computed.insert(name.to_owned(), value);
        self
    }

    pub fn with_identity(mut self, kind: IdentityKind, value: &str) -> Self {
        self.identities
            .entry(kind)
            .or_default()
            .push(value.to_owned());
        self
    }

    pub fn with_consent(
        mut self,
        brand: &str,
        channel: &str,
        purpose: &str,
        granted: bool,
    ) -> Self {
        self.consents.insert(
            (brand.to_owned(), channel.to_owned(), purpose.to_owned()),
            granted,
        );
        self
    }

    pub fn with_segment(mut self, id: &str) -> Self {
        self.segments.insert(id.to_owned());
        self
    }

    pub fn with_event_field(mut self, field: &str, value: Value) -> Self {
        self.event.insert(field.to_owned(), value);
        self
    }

    pub fn with_profile_attribute(mut self, name: &str, value: Value) -> Self {
        self.profile.insert(name.to_owned(), value);
        self
    }

    pub fn with_timezone(mut self, tz: Tz) -> Self {
        self.timezone = Some(tz);
        self
    }
}

impl Facts for StaticFacts {
    fn trait_value(&self, name: &str) -> Option<&Value> {
        self.traits.get(name)
    }
    fn computed(&self, name: &str) -> Option<Value> {
        self.computed.get(name).cloned()
    }
    fn identities(&self, kind: IdentityKind) -> &[String] {
        self.identities.get(&kind).map_or(&[], Vec::as_slice)
    }
    fn consent(&self, brand: &str, channel: &str, purpose: &str) -> Option<bool> {
        self.consents
            .get(&(brand.to_owned(), channel.to_owned(), purpose.to_owned()))
            .copied()
    }
    fn in_segment(&self, id: &str) -> bool {
        self.segments.contains(id)
    }
    fn event_field(&self, field: &str) -> Option<Cow<'_, Value>> {
        self.event.get(field).map(Cow::Borrowed)
    }
    fn profile_attribute(&self, name: &str) -> Option<Cow<'_, Value>> {
        self.profile.get(name).map(Cow::Borrowed)
    }
    fn timezone(&self) -> Option<Tz> {
        self.timezone
    }
}
