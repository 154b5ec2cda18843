//! The per-profile passes the engine runs, and when to run the next time-based one.
//!
//! * [`on_event`]: an event arrived → update computed-trait states → re-evaluate only the
//!   segments reading a changed trait (and, if one flips, those referencing it).
//! * [`on_time`]: a scheduled instant was reached → prune states → re-evaluate time-dependent
//!   segments and those reading windowed traits.
//! * [`next_reevaluation_at`]: the earliest instant at which a membership could change through
//!   time alone (a windowed trait ageing, a relative date or birthday turning); schedule a pass
//!   then instead of polling.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use kreislauf_expr::Facts;

use crate::computed::Window;
use crate::event::TraitEvent;
use crate::registry::{Changes, MembershipUpdate, SegmentRegistry};
use crate::traits::{ComputedTraitRegistry, EventOutcome, ProfileTraitStates, WithComputed};

/// What one event did to a profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventPass {
    pub traits: EventOutcome,
    /// `None` when no computed value changed, so no segment was evaluated and the memberships
    /// stand (the fast path: nothing is allocated).
    pub membership: Option<MembershipUpdate>,
}

/// Applies an event to a profile's computed traits and re-evaluates the affected segments.
/// `facts` are the profile's other facts; computed values are taken from `states`.
pub fn on_event<F: Facts + ?Sized>(
    segments: &SegmentRegistry,
    traits: &ComputedTraitRegistry,
    states: &mut ProfileTraitStates,
    members: &BTreeSet<String>,
    facts: &F,
    event: &TraitEvent<'_>,
    now: DateTime<Utc>,
) -> EventPass {
    let outcome = traits.apply_event(states, event, now);
    if outcome.changed.is_empty() {
        return EventPass {
            traits: outcome,
            membership: None,
        };
    }
    let changes = Changes::computed(outcome.changed.iter().cloned());
    let with = WithComputed {
        base: facts,
        registry: traits,
        states,
        now,
    };
    let membership = segments.evaluate_changes(&with, now, members, &changes);
    EventPass {
        traits: outcome,
        membership: Some(membership),
    }
}

/// A time-based pass: prunes windowed states and re-evaluates the segments that time can move.
pub fn on_time<F: Facts + ?Sized>(
    segments: &SegmentRegistry,
    traits: &ComputedTraitRegistry,
    states: &mut ProfileTraitStates,
    members: &BTreeSet<String>,
    facts: &F,
    now: DateTime<Utc>,
) -> MembershipUpdate {
    let mut changes = Changes::time();
    for (name, s) in states.by_name.iter_mut() {
        if let Some(t) = traits.get(name) {
            if t.definition().window != Window::Lifetime {
                t.prune(&mut s.state, now);
                changes.computed.insert(name.clone());
            }
        }
    }
    let with = WithComputed {
        base: facts,
        registry: traits,
        states,
        now,
    };
    segments.evaluate_changes(&with, now, members, &changes)
}

/// The earliest instant after `now` at which this profile's memberships could change through
/// time alone: the minimum of the segments' own time changes and the next change of every
/// computed trait some segment reads.
pub fn next_reevaluation_at<F: Facts + ?Sized>(
    segments: &SegmentRegistry,
    traits: &ComputedTraitRegistry,
    states: &ProfileTraitStates,
    members: &BTreeSet<String>,
    facts: &F,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let with = WithComputed {
        base: facts,
        registry: traits,
        states,
        now,
    };
    let from_segments = segments.next_time_change(&with, members, now);
    let from_traits = states
        .by_name
        .iter()
        .filter(|(name, _)| segments.dependents_of_computed(name).next().is_some())
        .filter_map(|(name, s)| traits.get(name)?.next_change_at(&s.state, now))
        .min();
    match (from_segments, from_traits) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
