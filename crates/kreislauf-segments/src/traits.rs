//! The registry of computed traits: versions of definitions, the event-name index that makes
//! non-matching events nearly free, and the per-profile collection of states.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use kreislauf_expr::error::{child, index};
use kreislauf_expr::{Facts, IdentityKind, NameSet, ValidationErrors};

use crate::computed::{ComputedTrait, ComputedTraitDef};
use crate::event::TraitEvent;
use crate::state::TraitState;

/// Result of applying a definition to a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    Created {
        version: u32,
    },
    /// The content changed: a new version. Dependent states/memberships must be recomputed.
    Updated {
        version: u32,
    },
    /// Same content hash as the current version: nothing happened.
    Unchanged {
        version: u32,
    },
}

impl ApplyOutcome {
    pub fn version(self) -> u32 {
        match self {
            ApplyOutcome::Created { version }
            | ApplyOutcome::Updated { version }
            | ApplyOutcome::Unchanged { version } => version,
        }
    }

    pub fn is_change(self) -> bool {
        !matches!(self, ApplyOutcome::Unchanged { .. })
    }
}

/// One trait's state together with the hash of the definition it was built under.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct VersionedState {
    #[serde(rename = "h")]
    pub definition_hash: u64,
    #[serde(flatten)]
    pub state: TraitState,
}

/// All computed-trait states of one profile, by trait name. The engine persists this.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProfileTraitStates {
    pub by_name: BTreeMap<String, VersionedState>,
}

impl ProfileTraitStates {
    pub fn get(&self, name: &str) -> Option<&VersionedState> {
        self.by_name.get(name)
    }

    /// Merges another profile's states into these (profile merge). States built under different
    /// definitions cannot be merged exactly: those are dropped and reported for recompute.
    pub fn merge(&mut self, other: &ProfileTraitStates) -> Vec<String> {
        let mut needs_recompute = Vec::new();
        for (name, theirs) in &other.by_name {
            match self.by_name.get_mut(name) {
                None => {
                    self.by_name.insert(name.clone(), theirs.clone());
                }
                Some(ours) if ours.definition_hash == theirs.definition_hash => {
                    ours.state.merge(&theirs.state)
                }
                Some(_) => {
                    self.by_name.remove(name);
                    needs_recompute.push(name.clone());
                }
            }
        }
        needs_recompute
    }
}

/// What one event did to a profile's computed traits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventOutcome {
    /// Traits whose value at `now` changed: re-evaluate the segments depending on them.
    pub changed: Vec<String>,
    /// Whether any state was modified (persist the states).
    pub state_changed: bool,
    /// Traits whose stored state was built under another definition version and was left
    /// alone: recompute them from the profile's events.
    pub stale: Vec<String>,
}

#[derive(Debug, Clone)]
struct Registered {
    compiled: ComputedTrait,
    version: u32,
}

/// The computed traits in force, with versions and the event index.
#[derive(Debug, Clone, Default)]
pub struct ComputedTraitRegistry {
    traits: BTreeMap<String, Registered>,
    /// Event name → trait names; an event with no entry costs one hash lookup.
    by_event: HashMap<String, Vec<String>>,
}

impl ComputedTraitRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one definition: validate, then create, bump the version, or do nothing when the
    /// content hash is unchanged.
    pub fn apply(&mut self, def: ComputedTraitDef) -> Result<ApplyOutcome, ValidationErrors> {
        let mut outcomes = self.apply_all_at(vec![def], |_| String::new())?;
        outcomes.pop().ok_or_else(ValidationErrors::default)
    }

    /// Applies several definitions atomically (all or none); errors are located as
    /// `computed_traits[i]...`.
    pub fn apply_all(
        &mut self,
        defs: Vec<ComputedTraitDef>,
    ) -> Result<Vec<ApplyOutcome>, ValidationErrors> {
        self.apply_all_at(defs, |i| index("computed_traits", i))
    }

    fn apply_all_at(
        &mut self,
        defs: Vec<ComputedTraitDef>,
        at: impl Fn(usize) -> String,
    ) -> Result<Vec<ApplyOutcome>, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let mut compiled = Vec::with_capacity(defs.len());
        let mut seen = BTreeMap::new();
        for (i, def) in defs.iter().enumerate() {
            if let Some(first) = seen.insert(def.name.clone(), i) {
                errors.push(
                    child(&at(i), "name"),
                    format!(
                        "duplicate computed trait \"{}\" (also at index {first})",
                        def.name
                    ),
                );
            }
            match def.compile_at(&at(i)) {
                Ok(c) => compiled.push(c),
                Err(e) => errors.extend(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let outcomes = compiled
            .into_iter()
            .map(|c| {
                let name = c.name().to_owned();
                match self.traits.get_mut(&name) {
                    Some(existing) if existing.compiled.hash() == c.hash() => {
                        ApplyOutcome::Unchanged {
                            version: existing.version,
                        }
                    }
                    Some(existing) => {
                        existing.version += 1;
                        existing.compiled = c;
                        ApplyOutcome::Updated {
                            version: existing.version,
                        }
                    }
                    None => {
                        self.traits.insert(
                            name,
                            Registered {
                                compiled: c,
                                version: 1,
                            },
                        );
                        ApplyOutcome::Created { version: 1 }
                    }
                }
            })
            .collect();
        self.reindex();
        Ok(outcomes)
    }

    /// Removes a trait; `false` if unknown. (Check `SegmentRegistry::dependents_of_computed` first.)
    pub fn remove(&mut self, name: &str) -> bool {
        let removed = self.traits.remove(name).is_some();
        self.reindex();
        removed
    }

    fn reindex(&mut self) {
        self.by_event.clear();
        for (name, r) in &self.traits {
            for event in &r.compiled.definition().events {
                let names = self.by_event.entry(event.clone()).or_default();
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&ComputedTrait> {
        self.traits.get(name).map(|r| &r.compiled)
    }

    pub fn version(&self, name: &str) -> Option<u32> {
        self.traits.get(name).map(|r| r.version)
    }

    pub fn len(&self) -> usize {
        self.traits.len()
    }

    pub fn is_empty(&self) -> bool {
        self.traits.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &ComputedTrait> {
        self.traits.values().map(|r| &r.compiled)
    }

    /// The traits this event matches (name, source, brand and `where`). An event name no trait
    /// listens to costs one hash lookup.
    pub fn matching<'s>(
        &'s self,
        event: &'s TraitEvent<'_>,
    ) -> impl Iterator<Item = &'s ComputedTrait> + 's {
        self.by_event
            .get(event.name)
            .into_iter()
            .flatten()
            .filter_map(|name| self.get(name))
            .filter(move |t| t.matches(event))
    }

    /// Applies one event to a profile's states.
    pub fn apply_event(
        &self,
        states: &mut ProfileTraitStates,
        event: &TraitEvent<'_>,
        now: DateTime<Utc>,
    ) -> EventOutcome {
        let mut outcome = EventOutcome::default();
        let Some(names) = self.by_event.get(event.name) else {
            return outcome;
        };
        for name in names {
            let Some(t) = self.get(name) else { continue };
            let entry = states
                .by_name
                .entry(name.clone())
                .or_insert_with(|| VersionedState {
                    definition_hash: t.hash(),
                    state: TraitState::default(),
                });
            if entry.definition_hash != t.hash() {
                if t.matches(event) {
                    outcome.stale.push(name.clone());
                }
                continue;
            }
            let applied = t.apply(&mut entry.state, event, now);
            if entry.state.is_empty() && !applied.state_changed {
                // Do not keep empty states for events that did not count.
                states.by_name.remove(name);
            }
            outcome.state_changed |= applied.state_changed;
            if applied.value_changed {
                outcome.changed.push(name.clone());
            }
        }
        outcome
    }

    /// A trait's value for a profile at `now` (the empty value when the profile has no state).
    pub fn value(
        &self,
        name: &str,
        states: &ProfileTraitStates,
        now: DateTime<Utc>,
    ) -> Option<Value> {
        let t = self.get(name)?;
        match states.get(name) {
            Some(s) => t.value(&s.state, now),
            None => t.value(&TraitState::default(), now),
        }
    }

    /// The earliest instant after `now` at which any of the profile's trait values changes
    /// through time alone.
    pub fn next_change_at(
        &self,
        states: &ProfileTraitStates,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        states
            .by_name
            .iter()
            .filter_map(|(name, s)| self.get(name)?.next_change_at(&s.state, now))
            .min()
    }

    /// Recomputes one trait's state from a profile's events.
    pub fn recompute<'e, I>(
        &self,
        name: &str,
        events: I,
        now: DateTime<Utc>,
    ) -> Option<VersionedState>
    where
        I: IntoIterator<Item = TraitEvent<'e>>,
    {
        let t = self.get(name)?;
        Some(VersionedState {
            definition_hash: t.hash(),
            state: t.recompute(events, now),
        })
    }

    /// Names of the profile's states built under another definition than the current one.
    pub fn stale(&self, states: &ProfileTraitStates) -> Vec<String> {
        states
            .by_name
            .iter()
            .filter(|(name, s)| {
                self.get(name)
                    .is_some_and(|t| t.hash() != s.definition_hash)
            })
            .map(|(name, _)| name.clone())
            .collect()
    }
}

impl NameSet for ComputedTraitRegistry {
    fn contains_name(&self, name: &str) -> bool {
        self.traits.contains_key(name)
    }
    fn names(&self) -> Vec<&str> {
        self.traits.keys().map(String::as_str).collect()
    }
}

/// Facts whose computed traits come from a registry and a profile's states; everything else is
/// delegated to `base` (the engine's profile facts).
pub struct WithComputed<'a, F: ?Sized> {
    pub base: &'a F,
    pub registry: &'a ComputedTraitRegistry,
    pub states: &'a ProfileTraitStates,
    pub now: DateTime<Utc>,
}

impl<F: Facts + ?Sized> Facts for WithComputed<'_, F> {
    fn trait_value(&self, name: &str) -> Option<&Value> {
        self.base.trait_value(name)
    }
    fn computed(&self, name: &str) -> Option<Value> {
        self.registry.value(name, self.states, self.now)
    }
    fn identities(&self, kind: IdentityKind) -> &[String] {
        self.base.identities(kind)
    }
    fn consent(&self, brand: &str, channel: &str, purpose: &str) -> Option<bool> {
        self.base.consent(brand, channel, purpose)
    }
    fn in_segment(&self, id: &str) -> bool {
        self.base.in_segment(id)
    }
    fn event_field(&self, field: &str) -> Option<Cow<'_, Value>> {
        self.base.event_field(field)
    }
    fn profile_attribute(&self, name: &str) -> Option<Cow<'_, Value>> {
        self.base.profile_attribute(name)
    }
    fn timezone(&self) -> Option<Tz> {
        self.base.timezone()
    }
}
