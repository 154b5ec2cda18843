//! Identity resolution: which profile an event belongs to, and which profiles merge.
//!
//! The rules (documented in the README):
//! 1. An event's identifiers are taken strongest first (user id, loyalty card, e-mail, phone, anonymous id).
//! 2. The profile of the strongest known identifier is the event's profile; an unknown identifier joins it.
//! 3. Another known identifier on another profile merges that profile into the event's profile, unless
//!    the merge would give one profile two different user ids, or a merge between the two was reverted
//!    before. Then nothing merges, the identifier stays where it was and a conflict is recorded.
//! 4. If the strongest identifier is a new user id and the profile of a weaker identifier already has
//!    another user id (a shared device), the event gets a new profile of its own.
//!
//! The planner is pure: it reads an [`IdentityGraph`] loaded by the caller, updates it in place as it goes
//! (so later events in a batch see earlier decisions) and writes its decisions into a [`Plan`].

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::event::{Event, EventKind};
use crate::identity::{Identifier, IdentifierKind};
use crate::source::IdentityMapping;

/// Database id of a profile.
pub type ProfileId = i64;

/// The part of the identity graph a batch touches.
#[derive(Debug, Clone, Default)]
pub struct IdentityGraph {
    /// Identifier → the profile it was linked to (follow `merged_into` for the root).
    pub links: HashMap<Identifier, ProfileId>,
    /// Profile → the profile it was merged into.
    pub merged_into: HashMap<ProfileId, ProfileId>,
    /// Root profile → unique-kind identifiers held anywhere in its cluster.
    pub uniques: HashMap<ProfileId, Vec<Identifier>>,
    /// Ordered pairs (low, high) of profiles whose merge was reverted: never merge them again.
    pub blocked: HashSet<(ProfileId, ProfileId)>,
    /// The id the next new profile gets.
    pub next_profile_id: ProfileId,
}

/// A new link from an identifier to a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewLink {
    pub identifier: Identifier,
    pub profile: ProfileId,
    /// Index of the event in the batch that brought it.
    pub event: usize,
}

/// A decision to merge `loser` into `winner`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeDecision {
    pub winner: ProfileId,
    pub loser: ProfileId,
    /// The identifier that tied them together.
    pub identifier: Identifier,
    pub reason: String,
    pub event: usize,
}

/// A link or merge that the rules refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub identifier: Identifier,
    /// Where the identifier stays (or `None` if it was never linked).
    pub kept_on: Option<ProfileId>,
    /// The profile the event went to.
    pub event_profile: ProfileId,
    pub reason: String,
    pub event: usize,
}

/// Everything the planner decided for a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub new_profiles: Vec<ProfileId>,
    pub links: Vec<NewLink>,
    pub merges: Vec<MergeDecision>,
    pub conflicts: Vec<Conflict>,
    /// The profile of each event, by batch index.
    pub assignments: Vec<ProfileId>,
}

/// Identifiers to load from the store before planning `event`: its own, and for an alias both
/// readings of `previousId` (a former user id or an anonymous id).
pub fn lookup_keys(event: &Event, mapping: &IdentityMapping) -> Vec<Identifier> {
    let mut ids = event.identifiers(mapping);
    if event.kind == EventKind::Alias {
        if let Some(prev) = event.previous_id.as_deref() {
            ids.extend(Identifier::new(IdentifierKind::UserId, prev));
            ids.extend(Identifier::new(IdentifierKind::AnonymousId, prev));
        }
    }
    ids
}

impl IdentityGraph {
    /// The root of `profile`'s merge chain.
    pub fn root(&self, mut profile: ProfileId) -> ProfileId {
        // Chains are short; the bound guards against a corrupt cycle.
        for _ in 0..64 {
            match self.merged_into.get(&profile) {
                Some(&next) if next != profile => profile = next,
                _ => break,
            }
        }
        profile
    }

    /// Adds what `loaded` knows and `self` does not; `self` wins where both know (it is never older).
    pub fn absorb(&mut self, loaded: IdentityGraph) {
        for (k, v) in loaded.links {
            self.links.entry(k).or_insert(v);
        }
        for (k, v) in loaded.merged_into {
            self.merged_into.entry(k).or_insert(v);
        }
        for (k, v) in loaded.uniques {
            self.uniques.entry(k).or_insert(v);
        }
        self.blocked.extend(loaded.blocked);
    }

    fn root_of(&self, id: &Identifier) -> Option<ProfileId> {
        self.links.get(id).map(|&p| self.root(p))
    }

    fn uniques_of(&self, root: ProfileId) -> &[Identifier] {
        self.uniques.get(&root).map(Vec::as_slice).unwrap_or(&[])
    }

    fn is_blocked(&self, a: ProfileId, b: ProfileId) -> bool {
        self.blocked.contains(&(a.min(b), a.max(b)))
    }

    /// `Some(reason)` if the identifiers `a` and `b` cannot live on one profile: for a unique kind, `b` holds
    /// values and none of them is `a`'s. (A profile can hold two user ids after duplicate detection merged
    /// two accounts of one person; either id still belongs to it.)
    fn unique_clash(a: &[Identifier], b: &[Identifier]) -> Option<String> {
        a.iter().find_map(|x| {
            let same_kind: Vec<&Identifier> = b.iter().filter(|y| y.kind == x.kind).collect();
            let clash = !same_kind.is_empty() && !same_kind.iter().any(|y| y.value == x.value);
            clash.then(|| {
                format!(
                    "would give one profile two values of {}: {:?} and {:?}",
                    x.kind, x.value, same_kind[0].value
                )
            })
        })
    }
    /// Plans one event; `index` is its position in the batch.
    pub fn assign(
        &mut self,
        index: usize,
        event: &Event,
        mapping: &IdentityMapping,
        plan: &mut Plan,
    ) -> ProfileId {
        let mut ids = event.identifiers(mapping);
        if event.kind == EventKind::Alias {
            if let Some(prev) = event.previous_id.as_deref() {
                let as_user = Identifier::new(IdentifierKind::UserId, prev);
                let as_anon = Identifier::new(IdentifierKind::AnonymousId, prev);
                let known_user = as_user
                    .as_ref()
                    .is_some_and(|id| self.links.contains_key(id));
                ids.extend(if known_user { as_user } else { as_anon });
            }
            ids.sort();
            ids.dedup();
        }
        let profile = self.assign_identifiers(index, &event.message_id, &ids, plan);
        plan.assignments.push(profile);
        profile
    }

    fn assign_identifiers(
        &mut self,
        index: usize,
        message_id: &str,
        ids: &[Identifier],
        plan: &mut Plan,
    ) -> ProfileId {
        // Unique identifiers the event itself claims (its user id).
        let claimed: Vec<Identifier> = ids.iter().filter(|i| i.kind.is_unique()).cloned().collect();
        let mut target: Option<ProfileId> = None;
        let mut unlinked: Vec<&Identifier> = Vec::new();

        for id in ids {
            let Some(root) = self.root_of(id) else {
                unlinked.push(id);
                continue;
            };
            match target {
                None => {
                    // The first known identifier decides, unless the event claims a user id the profile contradicts.
                    if let Some(reason) = Self::unique_clash(&claimed, self.uniques_of(root)) {
                        let fresh = self.new_profile(plan);
                        target = Some(fresh);
                        plan.conflicts.push(Conflict {
                            identifier: id.clone(),
                            kept_on: Some(root),
                            event_profile: fresh,
                            reason: format!("{id} stays on profile {root}: linking it {reason} (message {message_id})"),
                            event: index,
                        });
                    } else {
                        target = Some(root);
                    }
                }
                Some(t) if t == root => {}
                Some(t) => {
                    let clash = Self::unique_clash(self.uniques_of(t), self.uniques_of(root));
                    let refusal = match clash {
                        Some(reason) => Some(reason),
                        None if self.is_blocked(t, root) => {
                            Some("a merge of these profiles was reverted before".to_owned())
                        }
                        None => None,
                    };
                    match refusal {
                        Some(reason) => plan.conflicts.push(Conflict {
                            identifier: id.clone(),
                            kept_on: Some(root),
                            event_profile: t,
                            reason: format!("profile {root} not merged into {t}: {reason} (message {message_id})"),
                            event: index,
                        }),
                        None => self.merge(t, root, id, index, message_id, plan),
                    }
                }
            }
        }

        let target = match target {
            Some(t) => t,
            None => self.new_profile(plan),
        };
        for id in unlinked {
            if id.kind.is_unique() {
                if let Some(reason) =
                    Self::unique_clash(std::slice::from_ref(id), self.uniques_of(target))
                {
                    plan.conflicts.push(Conflict {
                        identifier: id.clone(),
                        kept_on: None,
                        event_profile: target,
                        reason: format!("{id} not linked to profile {target}: linking it {reason} (message {message_id})"),
                        event: index,
                    });
                    continue;
                }
                self.uniques.entry(target).or_default().push(id.clone());
            }
            self.links.insert(id.clone(), target);
            plan.links.push(NewLink {
                identifier: id.clone(),
                profile: target,
                event: index,
            });
        }
        target
    }

    fn new_profile(&mut self, plan: &mut Plan) -> ProfileId {
        let id = self.next_profile_id;
        self.next_profile_id += 1;
        plan.new_profiles.push(id);
        id
    }

    fn merge(
        &mut self,
        winner: ProfileId,
        loser: ProfileId,
        via: &Identifier,
        index: usize,
        message_id: &str,
        plan: &mut Plan,
    ) {
        self.merged_into.insert(loser, winner);
        let moved = self.uniques.remove(&loser).unwrap_or_default();
        let kept = self.uniques.entry(winner).or_default();
        for id in moved {
            if !kept.contains(&id) {
                kept.push(id);
            }
        }
        plan.merges.push(MergeDecision {
            winner,
            loser,
            identifier: via.clone(),
            reason: format!("{via} of profile {loser} appeared together with profile {winner}'s identifiers on message {message_id}"),
            event: index,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{normalise, BatchDefaults, Limits};
    use chrono::Utc;
    use serde_json::{json, Value};

    fn ev(v: Value) -> Event {
        match normalise(
            v,
            None,
            &BatchDefaults::default(),
            Utc::now(),
            10,
            &Limits::default(),
        ) {
            Ok(e) => e,
            Err(e) => panic!("bad fixture: {e}"),
        }
    }

    fn run(graph: &mut IdentityGraph, events: &[Value]) -> Plan {
        let mut plan = Plan::default();
        for (i, v) in events.iter().enumerate() {
            graph.assign(i, &ev(v.clone()), &IdentityMapping::default(), &mut plan);
        }
        plan
    }

    fn graph() -> IdentityGraph {
        IdentityGraph {
            next_profile_id: 1,
            ..Default::default()
        }
    }

    #[test]
    fn shared_identifier_across_brands_lands_on_one_profile() {
        let mut g = graph();
        let plan = run(
            &mut g,
            &[
                json!({"type":"track","event":"Order Completed","anonymousId":"pos-1","properties":{"loyalty_card":"C-1"}}),
                json!({"type":"identify","userId":"wine-7","traits":{"loyalty_card":"C1","email":"h@x.ch"}}),
            ],
        );
        assert_eq!(plan.assignments, vec![1, 1]);
        assert_eq!(plan.new_profiles, vec![1]);
        assert!(plan.merges.is_empty());
    }

    #[test]
    fn identify_merges_anonymous_profile_and_records_reason() {
        let mut g = graph();
        let plan = run(
            &mut g,
            &[
                json!({"type":"page","anonymousId":"a1"}),
                json!({"type":"identify","userId":"u1","traits":{"email":"h@x.ch"}}),
                json!({"type":"identify","userId":"u1","anonymousId":"a1"}),
            ],
        );
        assert_eq!(plan.assignments, vec![1, 2, 2]);
        assert_eq!(plan.merges.len(), 1);
        assert_eq!((plan.merges[0].winner, plan.merges[0].loser), (2, 1));
        assert!(plan.merges[0].reason.contains("anonymous_id=a1"));
        assert_eq!(g.root(1), 2);
    }

    #[test]
    fn two_user_ids_on_one_device_do_not_merge() {
        let mut g = graph();
        let plan = run(
            &mut g,
            &[
                json!({"type":"identify","userId":"u1","anonymousId":"shared-tablet"}),
                json!({"type":"identify","userId":"u2","anonymousId":"shared-tablet"}),
                json!({"type":"track","event":"X","anonymousId":"shared-tablet"}),
            ],
        );
        assert_eq!(plan.assignments, vec![1, 2, 1]);
        assert!(plan.merges.is_empty());
        assert_eq!(plan.conflicts.len(), 1);
        assert_eq!(plan.conflicts[0].kept_on, Some(1));
    }

    #[test]
    fn email_shared_by_two_user_ids_is_a_conflict_not_a_merge() {
        let mut g = graph();
        let plan = run(
            &mut g,
            &[
                json!({"type":"identify","userId":"u1","traits":{"email":"family@x.ch"}}),
                json!({"type":"identify","userId":"u2","traits":{"phone":"+41791234567"}}),
                json!({"type":"identify","userId":"u2","traits":{"email":"family@x.ch"}}),
            ],
        );
        assert_eq!(plan.assignments, vec![1, 2, 2]);
        assert!(plan.merges.is_empty());
        assert_eq!(plan.conflicts.len(), 1);
    }

    #[test]
    fn alias_links_previous_anonymous_id() {
        let mut g = graph();
        let plan = run(
            &mut g,
            &[
                json!({"type":"track","event":"Viewed","anonymousId":"a9"}),
                json!({"type":"identify","userId":"u9"}),
                json!({"type":"alias","previousId":"a9","userId":"u9"}),
            ],
        );
        assert_eq!(plan.merges.len(), 1);
        assert_eq!(g.root(1), g.root(2));
    }

    #[test]
    fn a_profile_with_two_merged_accounts_keeps_both_user_ids() {
        let mut g = graph();
        run(
            &mut g,
            &[
                json!({"type":"identify","userId":"u1"}),
                json!({"type":"identify","userId":"u2"}),
            ],
        );
        // Duplicate detection merged the two accounts of one person.
        g.merged_into.insert(2, 1);
        let moved = g.uniques.remove(&2).unwrap_or_default();
        g.uniques.entry(1).or_default().extend(moved);
        let plan = run(
            &mut g,
            &[
                json!({"type":"track","event":"X","userId":"u1"}),
                json!({"type":"track","event":"Y","userId":"u2"}),
            ],
        );
        assert_eq!(plan.assignments, vec![1, 1]);
        assert!(plan.new_profiles.is_empty() && plan.conflicts.is_empty());
    }

    #[test]
    fn reverted_merge_is_not_redone() {
        let mut g = graph();
        run(
            &mut g,
            &[
                json!({"type":"page","anonymousId":"a1"}),
                json!({"type":"identify","userId":"u1"}),
            ],
        );
        g.blocked.insert((1, 2));
        let plan = run(
            &mut g,
            &[json!({"type":"identify","userId":"u1","anonymousId":"a1"})],
        );
        assert!(plan.merges.is_empty());
        assert_eq!(plan.assignments, vec![2]);
        assert_eq!(plan.conflicts.len(), 1);
    }

    #[test]
    fn chained_merges_resolve_to_one_root() {
        let mut g = graph();
        let plan = run(
            &mut g,
            &[
                json!({"type":"page","anonymousId":"a"}),
                json!({"type":"page","anonymousId":"b","context":{"traits":{"email":"x@y.de"}}}),
                json!({"type":"page","anonymousId":"c","context":{"traits":{"phone":"+49301234567"}}}),
                json!({"type":"identify","userId":"u","anonymousId":"a","traits":{"email":"x@y.de","phone":"+49 30 1234567"}}),
            ],
        );
        assert_eq!(plan.merges.len(), 2);
        let roots: HashSet<ProfileId> = (1..=3).map(|p| g.root(p)).collect();
        assert_eq!(roots.len(), 1);
    }
}
