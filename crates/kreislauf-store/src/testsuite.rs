//! The storage conformance suite. Every backend expands it with [`store_conformance_tests!`]:
//!
//! ```text
//! kreislauf_store::store_conformance_tests!(async { Some(Arc::new(open_store()) as Arc<dyn Store>) });
//! ```
//!
//! The factory may yield `None` when the backend's server is not reachable; the test then prints a
//! notice and passes, unless `KREISLAUF_REQUIRE_SERVICES=1`, in which case it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use kreislauf_core::{Identifier, IdentifierKind};
use serde_json::json;

use crate::*;

/// Expands one `#[tokio::test]` per conformance check for the backend built by `$factory`.
#[macro_export]
macro_rules! store_conformance_tests {
    ($factory:expr) => {
        $crate::store_conformance_tests!(@each $factory;
            secrets_are_stable, sources_and_write_keys, admin_tokens, apply_and_read_back, timeline_pages_newest_first,
            traits_last_write_wins_by_event_time, load_graph_follows_merge_chains, merge_and_unmerge,
            apply_is_all_or_nothing, search_by_trait_uses_unified_value, export_and_erase, dedup_entries_page_in_order,
            profiles_after_pages_roots_only, reviews_keep_their_decisions,
            identifiers_page_in_order, audiences_round_trip, report_snapshots_keep_the_latest
        );
    };
    (@each $factory:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                match $factory.await {
                    Some(store) => $crate::testsuite::$name(store).await,
                    None => $crate::testsuite::skip(stringify!($name)),
                }
            }
        )*
    };
}

/// Handles a missing backend: a notice, or a failure under `KREISLAUF_REQUIRE_SERVICES=1`.
pub fn skip(test: &str) {
    if std::env::var("KREISLAUF_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
        panic!("{test}: the storage backend is not reachable and KREISLAUF_REQUIRE_SERVICES=1");
    }
    eprintln!("SKIPPED {test}: storage backend not reachable (set KREISLAUF_REQUIRE_SERVICES=1 to fail instead)");
}

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + secs, 0).single().unwrap()
}

fn id(kind: IdentifierKind, v: &str) -> Identifier {
    Identifier::new(kind, v).unwrap()
}

async fn source(store: &Arc<dyn Store>, name: &str) -> i64 {
    store
        .create_source(NewSource {
            name: name.into(),
            brand: "wine-club".into(),
            channel: "web".into(),
            identity_mapping: Default::default(),
            allowed_origins: vec![],
        })
        .await
        .unwrap()
        .id
}

fn event(source_id: i64, profile_id: i64, message_id: &str, at: DateTime<Utc>) -> NewEvent {
    NewEvent {
        source_id,
        profile_id,
        message_id: message_id.into(),
        dedup_hash: message_id.len() as i64,
        kind: "track".into(),
        name: Some("Order Completed".into()),
        timestamp: at,
        received_at: at,
        body: json!({"type": "track", "event": "Order Completed", "messageId": message_id, "properties": {"sku": "PRO-1"}}).to_string(),
    }
}

fn link(identifier: Identifier, profile_id: i64, source_id: i64) -> LinkWrite {
    LinkWrite {
        identifier,
        profile_id,
        source_id,
        at: t(0),
    }
}

fn trait_write(
    profile_id: i64,
    key: &str,
    value: serde_json::Value,
    source_id: i64,
    at: DateTime<Utc>,
) -> TraitWrite {
    TraitWrite {
        profile_id,
        key: key.into(),
        value,
        source_id,
        event_time: at,
        raw: None,
        status: None,
    }
}

/// Two profiles: 1 (user u1, e-mail) and 2 (anonymous a2), each with one event.
async fn two_profiles(store: &Arc<dyn Store>) -> i64 {
    let s = source(store, "pos").await;
    store
        .apply(WriteBatch {
            new_profiles: vec![(1, t(0)), (2, t(0))],
            links: vec![
                link(id(IdentifierKind::UserId, "u1"), 1, s),
                link(id(IdentifierKind::Email, "hans@example.ch"), 1, s),
                link(id(IdentifierKind::AnonymousId, "a2"), 2, s),
            ],
            events: vec![event(s, 1, "m1", t(10)), event(s, 2, "m2", t(20))],
            traits: vec![trait_write(1, "first_name", json!("Hans"), s, t(10))],
            ..Default::default()
        })
        .await
        .unwrap();
    s
}

fn merge_1_2() -> MergeWrite {
    MergeWrite {
        winner: 1,
        loser: 2,
        identifier: Identifier::new(IdentifierKind::AnonymousId, "a2").unwrap(),
        reason: "test".into(),
        message_id: "m3".into(),
        at: t(30),
    }
}

pub async fn secrets_are_stable(store: Arc<dyn Store>) {
    let first = store.secret("erasure_salt", "aaa").await.unwrap();
    let second = store.secret("erasure_salt", "bbb").await.unwrap();
    assert_eq!(first, "aaa");
    assert_eq!(second, "aaa");
}

pub async fn sources_and_write_keys(store: Arc<dyn Store>) {
    let s = source(&store, "supermarket-pos").await;
    let dup = store
        .create_source(NewSource {
            name: "supermarket-pos".into(),
            brand: "x".into(),
            channel: "y".into(),
            identity_mapping: Default::default(),
            allowed_origins: vec![],
        })
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");
    let mut src = store.sources().await.unwrap().remove(0);
    src.allowed_origins = vec!["https://wine.example".into()];
    src.identity_mapping.loyalty_card = vec!["kundenkarte".into()];
    store.update_source(src.clone()).await.unwrap();
    assert_eq!(store.sources().await.unwrap(), vec![src]);

    store.add_write_key(s, "wk_1", t(0)).await.unwrap();
    assert!(matches!(
        store.add_write_key(s, "wk_1", t(0)).await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        store.add_write_key(999, "wk_2", t(0)).await,
        Err(StoreError::NotFound { .. })
    ));
    store.revoke_write_key("wk_1", t(5)).await.unwrap();
    assert!(matches!(
        store.revoke_write_key("wk_1", t(6)).await,
        Err(StoreError::NotFound { .. })
    ));
    let keys = store.write_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].revoked_at, Some(t(5)));
}

pub async fn admin_tokens(store: Arc<dyn Store>) {
    let token = store.create_token("ops", "hash-1", t(0)).await.unwrap();
    assert_eq!(
        store.token_by_hash("hash-1").await.unwrap().map(|t| t.name),
        Some("ops".into())
    );
    assert_eq!(store.token_by_hash("hash-2").await.unwrap(), None);
    store.revoke_token(token.id, t(1)).await.unwrap();
    assert_eq!(
        store
            .token_by_hash("hash-1")
            .await
            .unwrap()
            .and_then(|t| t.revoked_at),
        Some(t(1))
    );
    assert_eq!(store.tokens().await.unwrap().len(), 1);
}

pub async fn apply_and_read_back(store: Arc<dyn Store>) {
    let s = two_profiles(&store).await;
    assert_eq!(store.max_profile_id().await.unwrap(), 2);
    assert_eq!(
        store
            .profile_by_identifier(&id(IdentifierKind::Email, "hans@example.ch"))
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        store
            .profile_by_identifier(&id(IdentifierKind::Email, "x@example.ch"))
            .await
            .unwrap(),
        None
    );
    let p = store.profile(1).await.unwrap().unwrap();
    assert_eq!(p.members, vec![1]);
    assert_eq!(p.identities.len(), 2);
    assert_eq!(p.traits["first_name"].value, json!("Hans"));
    assert_eq!(p.traits["first_name"].source_id, s);
    let tl = store.timeline(1, None, 10).await.unwrap();
    assert_eq!(tl.len(), 1);
    assert_eq!(tl[0].message_id, "m1");
    assert_eq!(tl[0].body["properties"]["sku"], json!("PRO-1"));
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.events, stats.profiles, stats.identities), (2, 2, 3));
    let ids = store.message_ids(&[tl[0].seq, 9999]).await.unwrap();
    assert_eq!(ids, vec![(tl[0].seq, s, "m1".to_string())]);
}

pub async fn timeline_pages_newest_first(store: Arc<dyn Store>) {
    let s = source(&store, "web").await;
    let events: Vec<NewEvent> = (0..25)
        .map(|i| event(s, 1, &format!("m{i}"), t(100 - i)))
        .collect();
    store
        .apply(WriteBatch {
            new_profiles: vec![(1, t(0))],
            events,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.timeline(1, cursor, 10).await.unwrap();
        if page.is_empty() {
            break;
        }
        let last = page.last().unwrap();
        cursor = Some(TimelineCursor {
            timestamp_ms: to_millis(last.timestamp),
            seq: last.seq,
        });
        seen.extend(page.into_iter().map(|e| e.message_id));
    }
    let expected: Vec<String> = (0..25).map(|i| format!("m{i}")).collect();
    assert_eq!(seen, expected, "newest first, each once");
}

pub async fn traits_last_write_wins_by_event_time(store: Arc<dyn Store>) {
    let s = two_profiles(&store).await;
    // An older event arriving late must not overwrite; a newer one must.
    store
        .apply(WriteBatch {
            traits: vec![trait_write(1, "first_name", json!("Hansi"), s, t(5))],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        store.profile(1).await.unwrap().unwrap().traits["first_name"].value,
        json!("Hans")
    );
    store
        .apply(WriteBatch {
            traits: vec![trait_write(1, "first_name", json!("Hans-Peter"), s, t(50))],
            ..Default::default()
        })
        .await
        .unwrap();
    let p = store.profile(1).await.unwrap().unwrap();
    assert_eq!(p.traits["first_name"].value, json!("Hans-Peter"));
    assert_eq!(p.traits["first_name"].updated_at, t(50));
    // The same source repeating the same value keeps the time it first said so; a different value moves it.
    store
        .apply(WriteBatch {
            traits: vec![
                trait_write(1, "first_name", json!("Hans-Peter"), s, t(60)),
                trait_write(1, "city", json!("Bern"), s, t(60)),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
    let p = store.profile(1).await.unwrap().unwrap();
    assert_eq!(p.traits["first_name"].updated_at, t(50));
    assert_eq!(p.traits["city"].value, json!("Bern"));
    assert_eq!(p.traits["city"].updated_at, t(60));
}

pub async fn load_graph_follows_merge_chains(store: Arc<dyn Store>) {
    two_profiles(&store).await;
    store
        .apply(WriteBatch {
            merges: vec![merge_1_2()],
            ..Default::default()
        })
        .await
        .unwrap();
    let graph = store
        .load_graph(&[
            id(IdentifierKind::AnonymousId, "a2"),
            id(IdentifierKind::Email, "nobody@x.ch"),
        ])
        .await
        .unwrap();
    assert_eq!(
        graph.links.get(&id(IdentifierKind::AnonymousId, "a2")),
        Some(&2)
    );
    assert_eq!(graph.root(2), 1);
    assert_eq!(
        graph.uniques.get(&1),
        Some(&vec![id(IdentifierKind::UserId, "u1")])
    );
    assert_eq!(graph.links.len(), 1);
}

pub async fn merge_and_unmerge(store: Arc<dyn Store>) {
    let s = two_profiles(&store).await;
    store
        .apply(WriteBatch {
            merges: vec![merge_1_2()],
            events: vec![event(s, 1, "m3", t(30))],
            traits: vec![trait_write(2, "city", json!("Zürich"), s, t(20))],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(store.root_of(2).await.unwrap(), Some(1));
    assert_eq!(
        store.profile(2).await.unwrap(),
        None,
        "a merged profile is not a root"
    );
    let p = store.profile(1).await.unwrap().unwrap();
    assert_eq!(p.members, vec![1, 2]);
    assert_eq!(p.traits["city"].value, json!("Zürich"));
    assert_eq!(store.timeline(1, None, 10).await.unwrap().len(), 3);
    let merges = store.merges(1).await.unwrap();
    assert_eq!(merges.len(), 1);

    let reverted = store
        .unmerge(merges[0].id, "wrong person", t(40))
        .await
        .unwrap();
    assert_eq!(reverted.revert_reason.as_deref(), Some("wrong person"));
    assert_eq!(store.root_of(2).await.unwrap(), Some(2));
    let tl1: Vec<String> = store
        .timeline(1, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.message_id)
        .collect();
    let tl2: Vec<String> = store
        .timeline(2, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.message_id)
        .collect();
    assert_eq!(tl1, vec!["m3", "m1"]);
    assert_eq!(tl2, vec!["m2"]);
    assert!(!store
        .profile(1)
        .await
        .unwrap()
        .unwrap()
        .traits
        .contains_key("city"));
    assert!(matches!(
        store.unmerge(merges[0].id, "again", t(41)).await,
        Err(StoreError::Conflict { .. })
    ));
    let graph = store
        .load_graph(&[
            id(IdentifierKind::AnonymousId, "a2"),
            id(IdentifierKind::UserId, "u1"),
        ])
        .await
        .unwrap();
    assert!(
        graph.blocked.contains(&(1, 2)),
        "a reverted merge blocks re-merging"
    );
}

pub async fn apply_is_all_or_nothing(store: Arc<dyn Store>) {
    let s = two_profiles(&store).await;
    // Merging a profile that is not a root is refused, and so is everything else in the batch.
    store
        .apply(WriteBatch {
            merges: vec![merge_1_2()],
            ..Default::default()
        })
        .await
        .unwrap();
    let bad = store
        .apply(WriteBatch {
            new_profiles: vec![(3, t(0))],
            events: vec![event(s, 3, "m9", t(50))],
            merges: vec![MergeWrite {
                winner: 3,
                ..merge_1_2()
            }],
            ..Default::default()
        })
        .await;
    assert!(bad.is_err());
    assert_eq!(store.stats().await.unwrap().events, 2);
    assert_eq!(store.root_of(3).await.unwrap(), None);
}

pub async fn search_by_trait_uses_unified_value(store: Arc<dyn Store>) {
    let s = two_profiles(&store).await;
    store
        .apply(WriteBatch {
            traits: vec![
                trait_write(2, "city", json!("Bern"), s, t(10)),
                trait_write(1, "city", json!("Zürich"), s, t(10)),
            ],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .search_by_trait("city", &json!("Bern"), 10)
            .await
            .unwrap(),
        vec![2]
    );
    store
        .apply(WriteBatch {
            traits: vec![trait_write(1, "city", json!("Bern"), s, t(60))],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .search_by_trait("city", &json!("Bern"), 10)
            .await
            .unwrap(),
        vec![1, 2]
    );
    assert_eq!(
        store
            .search_by_trait("city", &json!("Bern"), 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store
        .search_by_trait("city", &json!("Basel"), 10)
        .await
        .unwrap()
        .is_empty());
}

pub async fn export_and_erase(store: Arc<dyn Store>) {
    let s = two_profiles(&store).await;
    store
        .apply(WriteBatch {
            merges: vec![merge_1_2()],
            conflicts: vec![ConflictWrite {
                identifier: id(IdentifierKind::UserId, "u-other"),
                kept_on: None,
                event_profile: 1,
                reason: "test".into(),
                at: t(30),
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    let export = store.export(1).await.unwrap().unwrap();
    assert_eq!(export.events.len(), 2);
    assert_eq!(export.merges.len(), 1);
    assert_eq!(export.conflicts.len(), 1);
    assert_eq!(export.profile.identities.len(), 3);

    let audit = AuditEntry {
        at: t(100),
        actor: "token:ops".into(),
        action: "erase".into(),
        subject: "profile 1".into(),
        detail: json!({}),
    };
    let report = store
        .erase(1, &["h1".into(), "h2".into()], audit.clone())
        .await
        .unwrap();
    assert_eq!(
        report,
        EraseReport {
            profiles: 2,
            identities: 3,
            events: 2,
            traits: 1,
            merges: 1,
            conflicts: 1
        }
    );
    assert_eq!(store.export(1).await.unwrap(), None);
    assert_eq!(store.stats().await.unwrap(), StoreStats::default());
    let mut hashes = store.erased_hashes().await.unwrap();
    hashes.sort();
    assert_eq!(hashes, vec!["h1", "h2"]);
    assert_eq!(store.audit_log(10).await.unwrap(), vec![audit]);
    assert_eq!(
        store
            .profile_by_identifier(&id(IdentifierKind::Email, "hans@example.ch"))
            .await
            .unwrap(),
        None
    );
    // Ids of erased profiles are never given out again.
    assert_eq!(store.max_profile_id().await.unwrap(), 2);
    assert!(matches!(
        store
            .erase(
                1,
                &[],
                AuditEntry {
                    at: t(101),
                    ..store_audit()
                }
            )
            .await,
        Err(StoreError::NotFound { .. })
    ));
    let _ = s;
}

fn store_audit() -> AuditEntry {
    AuditEntry {
        at: t(0),
        actor: "test".into(),
        action: "erase".into(),
        subject: "x".into(),
        detail: json!(null),
    }
}

pub async fn dedup_entries_page_in_order(store: Arc<dyn Store>) {
    let s = source(&store, "web").await;
    let events: Vec<NewEvent> = (0..7)
        .map(|i| event(s, 1, &"x".repeat(i + 1), t(i as i64)))
        .collect();
    let seqs = store
        .apply(WriteBatch {
            new_profiles: vec![(1, t(0))],
            events,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seq grows in order");
    let first = store.dedup_entries(0, 4).await.unwrap();
    let rest = store
        .dedup_entries(first.last().unwrap().0, 4)
        .await
        .unwrap();
    let all: Vec<i64> = first.iter().chain(&rest).map(|(_, h)| *h).collect();
    assert_eq!(all, (1..=7).collect::<Vec<i64>>());
    let _ = Duration::zero();
}

pub async fn identifiers_page_in_order(store: Arc<dyn Store>) {
    let s = two_profiles(&store).await;
    let mut all = Vec::new();
    let mut after: Option<Identifier> = None;
    loop {
        let page = store.identifiers_after(after.as_ref(), 1).await.unwrap();
        let Some(last) = page.last().cloned() else {
            break;
        };
        all.extend(page);
        after = Some(last);
    }
    let mut expected = vec![
        id(IdentifierKind::UserId, "u1"),
        id(IdentifierKind::Email, "hans@example.ch"),
        id(IdentifierKind::AnonymousId, "a2"),
    ];
    expected.sort_by(|a, b| (a.kind.as_str(), &a.value).cmp(&(b.kind.as_str(), &b.value)));
    assert_eq!(
        all, expected,
        "every identifier once, in (kind, value) order"
    );
    let _ = s;
}

pub async fn profiles_after_pages_roots_only(store: Arc<dyn Store>) {
    let s = two_profiles(&store).await;
    store
        .apply(WriteBatch {
            new_profiles: vec![(3, t(0)), (4, t(0))],
            events: vec![event(s, 3, "m3", t(1))],
            ..Default::default()
        })
        .await
        .unwrap();
    store
        .apply(WriteBatch {
            merges: vec![merge_1_2()],
            ..Default::default()
        })
        .await
        .unwrap();
    let first: Vec<i64> = store
        .profiles_after(0, 2)
        .await
        .unwrap()
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(
        first,
        vec![1, 3],
        "merged profile 2 is part of 1, not listed on its own"
    );
    let rest = store.profiles_after(3, 10).await.unwrap();
    assert_eq!(rest.iter().map(|p| p.id).collect::<Vec<_>>(), vec![4]);
    assert_eq!(
        store.profiles_after(0, 10).await.unwrap()[0].members,
        vec![1, 2]
    );
}

pub async fn reviews_keep_their_decisions(store: Arc<dyn Store>) {
    two_profiles(&store).await;
    let review = |a, b, p: f64| NewReview {
        profile_a: a,
        profile_b: b,
        probability: p,
        explanation: json!([{"field": "last_name"}]),
        at: t(1),
    };
    assert_eq!(store.queue_reviews(&[review(2, 1, 0.9)]).await.unwrap(), 1);
    assert_eq!(
        store.queue_reviews(&[review(1, 2, 0.95)]).await.unwrap(),
        0,
        "the same pair, in either order, is queued once"
    );
    let pending = store.reviews(Some("pending"), 10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (
            pending[0].profile_a,
            pending[0].profile_b,
            pending[0].probability
        ),
        (1, 2, 0.95)
    );
    let id = pending[0].id;
    let decided = store
        .decide_review(id, "rejected", "token:ops", t(5), None)
        .await
        .unwrap();
    assert_eq!(
        (decided.status.as_str(), decided.decided_by.as_deref()),
        ("rejected", Some("token:ops"))
    );
    assert!(matches!(
        store.decide_review(id, "accepted", "x", t(6), None).await,
        Err(StoreError::Conflict { .. })
    ));
    // A decided pair keeps its decision when detection proposes it again.
    store.queue_reviews(&[review(1, 2, 0.99)]).await.unwrap();
    let again = store.review_of_pair(2, 1).await.unwrap().unwrap();
    assert_eq!(
        (again.status.as_str(), again.probability),
        ("rejected", 0.95)
    );
    assert!(store.reviews(Some("pending"), 10).await.unwrap().is_empty());
    assert_eq!(store.reviews(None, 10).await.unwrap().len(), 1);
    assert_eq!(store.review(id).await.unwrap().map(|r| r.id), Some(id));
    assert!(matches!(
        store.decide_review(999, "rejected", "x", t(6), None).await,
        Err(StoreError::NotFound { .. })
    ));
    // Erasure removes the person's review rows too.
    store.erase(1, &[], store_audit()).await.unwrap();
    assert!(store.reviews(None, 10).await.unwrap().is_empty());
}

pub async fn audiences_round_trip(store: Arc<dyn Store>) {
    let s = two_profiles(&store).await;
    let definition = |version: i64| DefinitionRecord {
        kind: "segment".into(),
        name: "buyers".into(),
        version,
        hash: format!("h{version}"),
        body: json!({"id": "buyers", "condition": {"path": "computed.orders", "ge": version}}),
        created_at: t(version),
        created_by: "test".into(),
    };
    store.put_definition(definition(1)).await.unwrap();
    store.put_definition(definition(2)).await.unwrap();
    assert!(matches!(
        store.put_definition(definition(2)).await,
        Err(StoreError::Conflict { .. })
    ));
    let stored = store.definitions().await.unwrap();
    assert_eq!(stored, vec![definition(1), definition(2)]);

    assert_eq!(store.audience_watermark().await.unwrap(), 0);
    let record = |profile: i64, wake: Option<i64>| AudienceRecord {
        profile_id: profile,
        covers: vec![profile],
        states: json!({"orders": {"c": 1}}).to_string(),
        segments: vec!["buyers".into()],
        wake_at: wake.map(t),
    };
    store
        .write_audience(AudienceWrite {
            upserts: vec![record(1, Some(100)), record(2, Some(50))],
            deletes: vec![],
            changes: vec![
                MembershipChange {
                    segment: "buyers".into(),
                    profile_id: 1,
                    entered: true,
                    at: t(10),
                },
                MembershipChange {
                    segment: "buyers".into(),
                    profile_id: 2,
                    entered: true,
                    at: t(10),
                },
            ],
            watermark: Some(2),
        })
        .await
        .unwrap();
    assert_eq!(store.audience_watermark().await.unwrap(), 2);
    assert_eq!(
        store.audience(&[1, 2, 3]).await.unwrap(),
        vec![record(1, Some(100)), record(2, Some(50))]
    );
    assert_eq!(store.audience_due(t(60), 10).await.unwrap(), vec![2]);
    assert_eq!(store.audience_due(t(100), 10).await.unwrap(), vec![2, 1]);
    assert_eq!(store.next_audience_wake().await.unwrap(), Some(t(50)));
    assert_eq!(
        store.segment_members("buyers", 0, 10).await.unwrap(),
        vec![1, 2]
    );
    assert_eq!(
        store.segment_members("buyers", 1, 10).await.unwrap(),
        vec![2]
    );
    assert_eq!(
        store.segment_sizes().await.unwrap(),
        vec![("buyers".to_string(), 2)]
    );

    store
        .write_audience(AudienceWrite {
            upserts: vec![record(1, None)],
            deletes: vec![2],
            changes: vec![MembershipChange {
                segment: "buyers".into(),
                profile_id: 2,
                entered: false,
                at: t(20),
            }],
            watermark: None,
        })
        .await
        .unwrap();
    assert_eq!(
        store.audience(&[1, 2]).await.unwrap(),
        vec![record(1, None)]
    );
    assert_eq!(store.next_audience_wake().await.unwrap(), None);
    assert_eq!(store.audience_watermark().await.unwrap(), 2);
    assert_eq!(
        store.segment_sizes().await.unwrap(),
        vec![("buyers".to_string(), 1)]
    );

    store
        .record_segment_sizes(t(30), &[("buyers".into(), 2)])
        .await
        .unwrap();
    store
        .record_segment_sizes(t(40), &[("buyers".into(), 1)])
        .await
        .unwrap();
    assert_eq!(
        store.segment_size_history("buyers", 10).await.unwrap(),
        vec![(t(40), 1), (t(30), 2)]
    );

    let after = store.events_after(0, 10).await.unwrap();
    assert_eq!(
        after
            .iter()
            .map(|e| e.message_id.as_str())
            .collect::<Vec<_>>(),
        ["m1", "m2"]
    );
    assert_eq!(store.events_after(after[0].seq, 10).await.unwrap().len(), 1);

    // Erasure takes the person's audience state and memberships with it.
    store.erase(1, &[], store_audit()).await.unwrap();
    assert!(store.audience(&[1]).await.unwrap().is_empty());
    assert!(store
        .segment_members("buyers", 0, 10)
        .await
        .unwrap()
        .is_empty());
    let _ = s;
}

pub async fn report_snapshots_keep_the_latest(store: Arc<dyn Store>) {
    assert_eq!(store.latest_report_snapshot("quality").await.unwrap(), None);
    store
        .save_report_snapshot("quality", t(10), &json!({"average_score": 61.5}))
        .await
        .unwrap();
    store
        .save_report_snapshot("quality", t(20), &json!({"average_score": 64.0}))
        .await
        .unwrap();
    store
        .save_report_snapshot("other", t(30), &json!({}))
        .await
        .unwrap();
    assert_eq!(
        store.latest_report_snapshot("quality").await.unwrap(),
        Some((t(20), json!({"average_score": 64.0})))
    );
}
