//! The segment registry: versioned definitions (a changed definition is a new version, an
//! unchanged one a no-op via its content hash), the dependency index (which segments read which
//! computed traits, traits, identities, consents and segments), a dependency-first evaluation
//! order, and membership evaluation with entered/exited diffs.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use kreislauf_expr::error::{child, index};
use kreislauf_expr::{
    compile_at, Compiled, Facts, IdentityKind, NameSet, References, Scope, ValidationErrors,
};

use crate::segment::SegmentDefinition;
use crate::traits::ApplyOutcome;

/// One stored version of a segment.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentVersion {
    pub version: u32,
    pub hash: u64,
    pub definition: SegmentDefinition,
}

#[derive(Debug, Clone)]
struct Entry {
    versions: Vec<SegmentVersion>,
    compiled: Compiled,
}

/// Registry errors other than validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("segment \"{0}\" does not exist")]
    UnknownSegment(String),
    #[error("segment \"{id}\" is referenced by {}", .dependents.join(", "))]
    InUse { id: String, dependents: Vec<String> },
}

/// What changed for a profile, to select the segments to re-evaluate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub traits: BTreeSet<String>,
    pub computed: BTreeSet<String>,
    pub identities: BTreeSet<IdentityKind>,
    /// Any consent changed.
    pub consent: bool,
    /// Any profile attribute changed.
    pub profile: bool,
    /// A time-based pass: re-evaluate the time-dependent segments.
    pub time: bool,
}

impl Changes {
    pub fn computed<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> Self {
        Self {
            computed: names.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    pub fn traits<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> Self {
        Self {
            traits: names.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    pub fn time() -> Self {
        Self {
            time: true,
            ..Self::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A segment a profile entered or exited, with the version that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentChange {
    pub id: String,
    pub version: u32,
}

/// The result of a membership evaluation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipUpdate {
    /// The profile's segments after this evaluation (ids of registered segments only).
    pub members: BTreeSet<String>,
    /// Record "Segment Entered" for these (dependency order).
    pub entered: Vec<SegmentChange>,
    /// Record "Segment Exited" for these (dependency order).
    pub exited: Vec<SegmentChange>,
}

#[derive(Debug, Clone, Default)]
struct DependencyIndex {
    computed: BTreeMap<String, BTreeSet<String>>,
    traits: BTreeMap<String, BTreeSet<String>>,
    identities: BTreeMap<IdentityKind, BTreeSet<String>>,
    consent: BTreeSet<String>,
    profile: BTreeSet<String>,
    /// Segment → segments that reference it.
    dependents: BTreeMap<String, BTreeSet<String>>,
    time_dependent: BTreeSet<String>,
    /// Position in the evaluation order.
    position: HashMap<String, usize>,
}

/// The segments in force.
#[derive(Debug, Clone, Default)]
pub struct SegmentRegistry {
    entries: BTreeMap<String, Entry>,
    /// Dependency-first order: every segment after the segments it references.
    order: Vec<String>,
    index: DependencyIndex,
}

impl SegmentRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one definition (errors located relative to the segment: `condition.all[2].gt`).
    pub fn apply(
        &mut self,
        def: SegmentDefinition,
        computed: &dyn NameSet,
    ) -> Result<ApplyOutcome, ValidationErrors> {
        let mut outcomes = self.apply_all_at(vec![def], computed, |_| String::new())?;
        outcomes.pop().ok_or_else(ValidationErrors::default)
    }

    /// Applies several definitions atomically (all or none), e.g. from one document; errors are
    /// located as `segments[i]...`. References may point at segments in the same batch.
    pub fn apply_all(
        &mut self,
        defs: Vec<SegmentDefinition>,
        computed: &dyn NameSet,
    ) -> Result<Vec<ApplyOutcome>, ValidationErrors> {
        self.apply_all_at(defs, computed, |i| index("segments", i))
    }

    fn apply_all_at(
        &mut self,
        defs: Vec<SegmentDefinition>,
        computed: &dyn NameSet,
        at: impl Fn(usize) -> String,
    ) -> Result<Vec<ApplyOutcome>, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let mut batch_position: BTreeMap<String, usize> = BTreeMap::new();
        for (i, def) in defs.iter().enumerate() {
            if let Some(first) = batch_position.insert(def.id.clone(), i) {
                errors.push(
                    child(&at(i), "id"),
                    format!(
                        "duplicate segment id \"{}\" (also at index {first})",
                        def.id
                    ),
                );
            }
        }
        let known: BTreeSet<String> = self
            .entries
            .keys()
            .cloned()
            .chain(batch_position.keys().cloned())
            .collect();
        let mut compiled = Vec::with_capacity(defs.len());
        for (i, def) in defs.iter().enumerate() {
            let scope = Scope::segment(computed, &known);
            match compile_at(&def.condition, &scope, &child(&at(i), "condition")) {
                Ok(c) => compiled.push(c),
                Err(e) => errors.extend(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }

        // The reference graph as it would be after this batch.
        let mut graph: BTreeMap<&str, BTreeSet<&str>> = self
            .entries
            .iter()
            .map(|(id, e)| {
                (
                    id.as_str(),
                    e.compiled
                        .references()
                        .segments
                        .iter()
                        .map(String::as_str)
                        .collect(),
                )
            })
            .collect();
        for (def, c) in defs.iter().zip(&compiled) {
            graph.insert(
                def.id.as_str(),
                c.references().segments.iter().map(String::as_str).collect(),
            );
        }
        if let Some(cycle) = find_cycle(&graph) {
            let culprit = cycle
                .iter()
                .find_map(|id| batch_position.get(*id))
                .copied()
                .unwrap_or(0);
            errors.push(
                child(&at(culprit), "condition"),
                format!("segment reference cycle: {}", cycle.join(" -> ")),
            );
            return Err(errors);
        }

        let outcomes = defs
            .into_iter()
            .zip(compiled)
            .map(|(definition, compiled)| {
                let hash = definition.content_hash();
                let id = definition.id.clone();
                match self.entries.get_mut(&id) {
                    Some(entry) => {
                        let current = entry.versions.last().map_or(0, |v| v.version);
                        if entry.versions.last().is_some_and(|v| v.hash == hash) {
                            return ApplyOutcome::Unchanged { version: current };
                        }
                        let version = current + 1;
                        entry.versions.push(SegmentVersion {
                            version,
                            hash,
                            definition,
                        });
                        entry.compiled = compiled;
                        ApplyOutcome::Updated { version }
                    }
                    None => {
                        self.entries.insert(
                            id,
                            Entry {
                                versions: vec![SegmentVersion {
                                    version: 1,
                                    hash,
                                    definition,
                                }],
                                compiled,
                            },
                        );
                        ApplyOutcome::Created { version: 1 }
                    }
                }
            })
            .collect();
        self.rebuild();
        Ok(outcomes)
    }

    /// Removes a segment that no other segment references.
    pub fn remove(&mut self, id: &str) -> Result<(), RegistryError> {
        if !self.entries.contains_key(id) {
            return Err(RegistryError::UnknownSegment(id.to_owned()));
        }
        let dependents: Vec<String> = self.dependents_of_segment(id).map(str::to_owned).collect();
        if !dependents.is_empty() {
            return Err(RegistryError::InUse {
                id: id.to_owned(),
                dependents,
            });
        }
        self.entries.remove(id);
        self.rebuild();
        Ok(())
    }

    fn rebuild(&mut self) {
        let mut index = DependencyIndex::default();
        for (id, entry) in &self.entries {
            let refs = entry.compiled.references();
            let add = |map: &mut BTreeMap<String, BTreeSet<String>>, key: &String| {
                map.entry(key.clone()).or_default().insert(id.clone());
            };
            refs.computed
                .iter()
                .for_each(|c| add(&mut index.computed, c));
            refs.traits.iter().for_each(|t| add(&mut index.traits, t));
            refs.segments
                .iter()
                .for_each(|s| add(&mut index.dependents, s));
            for kind in &refs.identities {
                index
                    .identities
                    .entry(*kind)
                    .or_default()
                    .insert(id.clone());
            }
            if !refs.consents.is_empty() {
                index.consent.insert(id.clone());
            }
            if !refs.profile.is_empty() {
                index.profile.insert(id.clone());
            }
            if refs.time_dependent {
                index.time_dependent.insert(id.clone());
            }
        }
        self.order = topological_order(&self.entries);
        index.position = self
            .order
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i))
            .collect();
        self.index = index;
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Segment ids in evaluation order (every segment after those it references).
    pub fn evaluation_order(&self) -> &[String] {
        &self.order
    }

    /// The current version.
    pub fn current(&self, id: &str) -> Option<&SegmentVersion> {
        self.entries.get(id)?.versions.last()
    }

    /// All versions, oldest first.
    pub fn versions(&self, id: &str) -> &[SegmentVersion] {
        self.entries.get(id).map_or(&[], |e| e.versions.as_slice())
    }

    pub fn compiled(&self, id: &str) -> Option<&Compiled> {
        self.entries.get(id).map(|e| &e.compiled)
    }

    pub fn references(&self, id: &str) -> Option<&References> {
        self.compiled(id).map(Compiled::references)
    }

    /// Segments that read this computed trait directly.
    pub fn dependents_of_computed(&self, name: &str) -> impl Iterator<Item = &str> {
        self.index
            .computed
            .get(name)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// Segments that read this profile trait directly.
    pub fn dependents_of_trait(&self, name: &str) -> impl Iterator<Item = &str> {
        self.index
            .traits
            .get(name)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// Segments that reference this segment directly (`in_segment`).
    pub fn dependents_of_segment(&self, id: &str) -> impl Iterator<Item = &str> {
        self.index
            .dependents
            .get(id)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// Segments whose result can change through time alone.
    pub fn time_dependent(&self) -> impl Iterator<Item = &str> {
        self.index.time_dependent.iter().map(String::as_str)
    }

    /// The segments directly affected by `changes`.
    fn directly_affected(&self, changes: &Changes) -> BTreeSet<&str> {
        fn take<'a>(out: &mut BTreeSet<&'a str>, set: Option<&'a BTreeSet<String>>) {
            if let Some(set) = set {
                out.extend(set.iter().map(String::as_str));
            }
        }
        let ix = &self.index;
        let mut out: BTreeSet<&str> = BTreeSet::new();
        changes
            .computed
            .iter()
            .for_each(|c| take(&mut out, ix.computed.get(c)));
        changes
            .traits
            .iter()
            .for_each(|t| take(&mut out, ix.traits.get(t)));
        changes
            .identities
            .iter()
            .for_each(|k| take(&mut out, ix.identities.get(k)));
        if changes.consent {
            take(&mut out, Some(&ix.consent));
        }
        if changes.profile {
            take(&mut out, Some(&ix.profile));
        }
        if changes.time {
            take(&mut out, Some(&ix.time_dependent));
        }
        out
    }

    /// Every segment that `changes` could affect, including those referencing affected segments
    /// (transitively), in evaluation order.
    pub fn affected(&self, changes: &Changes) -> Vec<&str> {
        let mut set = self.directly_affected(changes);
        let mut stack: Vec<&str> = set.iter().copied().collect();
        while let Some(id) = stack.pop() {
            for dep in self.dependents_of_segment(id) {
                if set.insert(dep) {
                    stack.push(dep);
                }
            }
        }
        self.in_order(set)
    }

    fn in_order<'s>(&'s self, set: BTreeSet<&'s str>) -> Vec<&'s str> {
        let mut ids: Vec<&str> = set.into_iter().collect();
        ids.sort_by_key(|id| self.index.position.get(*id).copied().unwrap_or(usize::MAX));
        ids
    }

    /// Evaluates every segment for one profile.
    pub fn evaluate<F: Facts + ?Sized>(
        &self,
        facts: &F,
        now: DateTime<Utc>,
        previous: &BTreeSet<String>,
    ) -> MembershipUpdate {
        let all: Vec<&str> = self.order.iter().map(String::as_str).collect();
        self.evaluate_only(facts, now, previous, &all)
    }

    /// Evaluates only the segments `changes` affects (the per-event fast path); segments
    /// referencing a segment whose membership flipped are evaluated too.
    pub fn evaluate_changes<F: Facts + ?Sized>(
        &self,
        facts: &F,
        now: DateTime<Utc>,
        previous: &BTreeSet<String>,
        changes: &Changes,
    ) -> MembershipUpdate {
        let direct = self.in_order(self.directly_affected(changes));
        self.evaluate_only(facts, now, previous, &direct)
    }

    /// Evaluates the given segments (any order; evaluated in dependency order) and, when one
    /// flips, the segments referencing it. All other memberships are kept from `previous`;
    /// ids in `previous` that are no longer registered are dropped without an exit.
    pub fn evaluate_only<F: Facts + ?Sized>(
        &self,
        facts: &F,
        now: DateTime<Utc>,
        previous: &BTreeSet<String>,
        ids: &[&str],
    ) -> MembershipUpdate {
        let mut members: BTreeSet<String> = previous
            .iter()
            .filter(|id| self.entries.contains_key(*id))
            .cloned()
            .collect();
        let mut pending: BTreeMap<usize, &str> = ids
            .iter()
            .filter_map(|id| {
                let (key, _) = self.entries.get_key_value(*id)?;
                Some((self.index.position.get(*id).copied()?, key.as_str()))
            })
            .collect();
        let mut update = MembershipUpdate::default();
        while let Some((_, id)) = pending.pop_first() {
            let Some(entry) = self.entries.get(id) else {
                continue;
            };
            let is_member = {
                let overlay = Overlay {
                    base: facts,
                    members: &members,
                };
                entry.compiled.evaluate(&overlay, now)
            };
            let was_member = members.contains(id);
            if is_member == was_member {
                continue;
            }
            let change = SegmentChange {
                id: id.to_owned(),
                version: entry.versions.last().map_or(0, |v| v.version),
            };
            if is_member {
                members.insert(id.to_owned());
                update.entered.push(change);
            } else {
                members.remove(id);
                update.exited.push(change);
            }
            for dep in self.dependents_of_segment(id) {
                if let Some(pos) = self.index.position.get(dep) {
                    pending.insert(*pos, dep);
                }
            }
        }
        update.members = members;
        update
    }

    /// The earliest instant after `now` at which a segment of this profile could flip through
    /// time alone (relative dates, birthdays). Combine with the computed traits' next change
    /// (see `schedule::next_reevaluation_at`).
    pub fn next_time_change<F: Facts + ?Sized>(
        &self,
        facts: &F,
        members: &BTreeSet<String>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let overlay = Overlay {
            base: facts,
            members,
        };
        self.index
            .time_dependent
            .iter()
            .filter_map(|id| {
                self.entries
                    .get(id)?
                    .compiled
                    .next_time_change(&overlay, now)
            })
            .min()
    }
}

impl NameSet for SegmentRegistry {
    fn contains_name(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }
    fn names(&self) -> Vec<&str> {
        self.entries.keys().map(String::as_str).collect()
    }
}

/// Facts whose segment memberships come from the pass in progress.
struct Overlay<'a, F: ?Sized> {
    base: &'a F,
    members: &'a BTreeSet<String>,
}

impl<F: Facts + ?Sized> Facts for Overlay<'_, F> {
    fn trait_value(&self, name: &str) -> Option<&Value> {
        self.base.trait_value(name)
    }
    fn computed(&self, name: &str) -> Option<Value> {
        self.base.computed(name)
    }
    fn identities(&self, kind: IdentityKind) -> &[String] {
        self.base.identities(kind)
    }
    fn consent(&self, brand: &str, channel: &str, purpose: &str) -> Option<bool> {
        self.base.consent(brand, channel, purpose)
    }
    fn in_segment(&self, id: &str) -> bool {
        self.members.contains(id)
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

/// A reference cycle as `[a, b, a]`, if any.
fn find_cycle<'g>(graph: &BTreeMap<&'g str, BTreeSet<&'g str>>) -> Option<Vec<&'g str>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit<'g>(
        node: &'g str,
        graph: &BTreeMap<&'g str, BTreeSet<&'g str>>,
        marks: &mut HashMap<&'g str, Mark>,
        stack: &mut Vec<&'g str>,
    ) -> Option<Vec<&'g str>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Visiting) => {
                let start = stack.iter().position(|n| *n == node).unwrap_or(0);
                let mut cycle = stack[start..].to_vec();
                cycle.push(node);
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node, Mark::Visiting);
        stack.push(node);
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, marks, stack) {
                return Some(c);
            }
        }
        stack.pop();
        marks.insert(node, Mark::Done);
        None
    }
    let mut marks = HashMap::new();
    for node in graph.keys() {
        let mut stack = Vec::new();
        if let Some(c) = visit(node, graph, &mut marks, &mut stack) {
            return Some(c);
        }
    }
    None
}

/// Kahn's algorithm, alphabetical among the ready ones (deterministic). The registry never
/// holds a cycle; should one slip in, the remaining segments are appended alphabetically.
fn topological_order(entries: &BTreeMap<String, Entry>) -> Vec<String> {
    let mut missing_deps: BTreeMap<&str, usize> = BTreeMap::new();
    let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (id, e) in entries {
        let deps: Vec<&str> = e
            .compiled
            .references()
            .segments
            .iter()
            .map(String::as_str)
            .filter(|d| entries.contains_key(*d))
            .collect();
        missing_deps.insert(id, deps.len());
        for d in deps {
            dependents.entry(d).or_default().push(id);
        }
    }
    let mut ready: BTreeSet<&str> = missing_deps
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(id, _)| *id)
        .collect();
    let mut order = Vec::with_capacity(entries.len());
    while let Some(id) = ready.pop_first() {
        order.push(id.to_owned());
        for dep in dependents.get(id).into_iter().flatten() {
            if let Some(n) = missing_deps.get_mut(dep) {
                *n -= 1;
                if *n == 0 {
                    ready.insert(dep);
                }
            }
        }
    }
    if order.len() < entries.len() {
        let placed: BTreeSet<String> = order.iter().cloned().collect();
        order.extend(entries.keys().filter(|id| !placed.contains(*id)).cloned());
    }
    order
}
