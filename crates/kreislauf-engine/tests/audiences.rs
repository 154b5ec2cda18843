//! Segments and computed traits end to end on the embedded store: per-event membership, window expiry
//! with an injected clock, entry and exit events on the timeline, merges and unmerges, restarts.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use kreislauf_core::event::{normalise, BatchDefaults, Limits};
use kreislauf_core::{Event, Identifier, IdentifierKind, Source};
use kreislauf_engine::audience::{Audiences, SEGMENT_ENTERED, SEGMENT_EXITED};
use kreislauf_engine::{Engine, EngineConfig, ManualClock, Metrics};
use kreislauf_store::{NewSource, Store};
use kreislauf_store_sqlite::SqliteStore;
use serde_json::{json, Value};

const DEFINITIONS: &str = r#"
computed_traits:
  - name: sparkling_purchases_30d
    aggregate: count
    events: [Order Completed]
    sources: [supermarket]
    where: { path: event.properties.category, eq: sparkling_wine }
    window: 30d
  - name: orders
    aggregate: count
    events: [Order Completed]
    window: lifetime
segments:
  - id: sparkling-wine-club
    name: Sparkling-wine buyers (30 days) with wine-club e-mail consent
    condition:
      all:
        - { path: computed.sparkling_purchases_30d, ge: 1 }
        - { path: consent.wine_club.email.marketing, eq: true }
  - id: repeat-buyers
    name: Two or more orders
    condition: { path: computed.orders, ge: 2 }
"#;

fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 10, 0, 0)
        .single()
        .expect("time")
}

struct Setup {
    engine: Engine,
    audiences: Audiences,
    market: Arc<Source>,
}

async fn setup(dir: &Path, clock: Arc<ManualClock>) -> Setup {
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.join("kreislauf.db")).expect("open store"));
    let engine = Engine::start(
        store,
        clock,
        Arc::new(Metrics::new()),
        EngineConfig::default(),
    )
    .await
    .expect("engine");
    let market = match engine.source_by_name("supermarket") {
        Some(s) => s,
        None => {
            let (s, _) = engine
                .create_source(NewSource {
                    name: "supermarket".into(),
                    brand: "supermarket".into(),
                    channel: "pos".into(),
                    identity_mapping: Default::default(),
                    allowed_origins: vec![],
                })
                .await
                .expect("source");
            Arc::new(s)
        }
    };
    let audiences = Audiences::start(engine.clone()).await.expect("audiences");
    Setup {
        engine,
        audiences,
        market,
    }
}

impl Setup {
    /// Members of a segment once everything committed so far is processed.
    async fn members_now(&self, segment: &str) -> Vec<i64> {
        self.audiences.catch_up().await.expect("catch up");
        self.audiences
            .members(segment, 0, 100)
            .await
            .expect("members")
    }
}

fn events(at: DateTime<Utc>, values: &[Value]) -> Vec<Event> {
    values
        .iter()
        .map(|v| {
            let mut v = v.clone();
            v["timestamp"] = json!(at);
            normalise(
                v,
                None,
                &BatchDefaults::default(),
                at,
                100,
                &Limits::default(),
            )
            .expect("valid fixture")
        })
        .collect()
}

fn purchase(user: &str, id: &str, category: &str) -> Value {
    json!({"type":"track","event":"Order Completed","userId":user,"messageId":id,
           "properties":{"category":category,"revenue":12.9}})
}

async fn root(engine: &Engine, user: &str) -> i64 {
    engine
        .store()
        .profile_by_identifier(&Identifier::new(IdentifierKind::UserId, user).expect("id"))
        .await
        .expect("lookup")
        .expect("profile")
}

async fn timeline_names(engine: &Engine, profile: i64) -> Vec<String> {
    engine
        .store()
        .timeline(profile, None, 100)
        .await
        .expect("timeline")
        .into_iter()
        .filter_map(|e| e.name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_follows_events_and_the_window_expires_with_time() {
    let dir = tempfile::tempdir().expect("tmp");
    let clock = Arc::new(ManualClock::new(start_time()));
    let s = setup(dir.path(), clock.clone()).await;
    let report = s.audiences.apply(DEFINITIONS, "test").await.expect("apply");
    assert_eq!(report.definitions.len(), 4);
    assert!(report
        .definitions
        .iter()
        .all(|d| d.outcome == "created" && d.version == 1));
    let again = s
        .audiences
        .apply(DEFINITIONS, "test")
        .await
        .expect("re-apply");
    assert!(again.definitions.iter().all(|d| d.outcome == "unchanged"));

    let now = clock.now_for_test();
    s.engine
        .ingest(
            s.market.clone(),
            events(now, &[
                json!({"type":"identify","userId":"hans","messageId":"i-1","traits":{
                    "first_name":"Hans","consent":{"wine_club":{"email":{"marketing":true}}}}}),
                purchase("hans", "o-1", "sparkling_wine"),
                json!({"type":"identify","userId":"greta","messageId":"i-2","traits":{"first_name":"Greta"}}),
                purchase("greta", "o-2", "sparkling_wine"),
            ]),
        )
        .await
        .expect("ingest");
    s.audiences.catch_up().await.expect("catch up");
    let hans = root(&s.engine, "hans").await;
    let greta = root(&s.engine, "greta").await;
    let members = s
        .audiences
        .members("sparkling-wine-club", 0, 10)
        .await
        .expect("members");
    assert_eq!(members, vec![hans], "greta has no consent");
    let profile = s.audiences.profile(hans).await.expect("profile");
    assert_eq!(profile["computed"]["sparkling_purchases_30d"], 1);
    s.audiences.catch_up().await.expect("catch up");
    assert!(timeline_names(&s.engine, hans)
        .await
        .contains(&SEGMENT_ENTERED.to_string()));

    // 29 days later the purchase still counts; a day after the window it does not, without any new event.
    clock.advance(Duration::days(29));
    s.audiences.catch_up().await.expect("catch up");
    assert_eq!(
        s.audiences
            .members("sparkling-wine-club", 0, 10)
            .await
            .expect("members"),
        vec![hans]
    );
    clock.advance(Duration::days(2));
    s.audiences.catch_up().await.expect("catch up");
    assert!(s
        .audiences
        .members("sparkling-wine-club", 0, 10)
        .await
        .expect("members")
        .is_empty());
    s.audiences.catch_up().await.expect("catch up");
    let names = timeline_names(&s.engine, hans).await;
    assert_eq!(
        names.iter().filter(|n| *n == SEGMENT_EXITED).count(),
        1,
        "{names:?}"
    );
    assert_eq!(names.iter().filter(|n| *n == SEGMENT_ENTERED).count(), 1);
    let exited = s
        .engine
        .store()
        .timeline(hans, None, 1)
        .await
        .expect("timeline");
    assert_eq!(
        exited[0].body["properties"]["segment_id"],
        "sparkling-wine-club"
    );
    let _ = greta;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merges_and_unmerges_recompute_membership_and_restarts_carry_on() {
    let dir = tempfile::tempdir().expect("tmp");
    let clock = Arc::new(ManualClock::new(start_time()));
    let (anna, anon) = {
        let s = setup(dir.path(), clock.clone()).await;
        s.audiences.apply(DEFINITIONS, "test").await.expect("apply");
        let now = clock.now_for_test();
        s.engine
            .ingest(
                s.market.clone(),
                events(now, &[
                    purchase("anna", "o-1", "red_wine"),
                    json!({"type":"track","event":"Order Completed","anonymousId":"kiosk-7","messageId":"o-2",
                           "properties":{"category":"cheese"}}),
                ]),
            )
            .await
            .expect("ingest");
        assert!(s.members_now("repeat-buyers").await.is_empty());
        let anna = root(&s.engine, "anna").await;
        let anon = s
            .engine
            .store()
            .profile_by_identifier(
                &Identifier::new(IdentifierKind::AnonymousId, "kiosk-7").expect("id"),
            )
            .await
            .expect("lookup")
            .expect("profile");

        // One person after all: the merged profile has two orders.
        let merge = s
            .engine
            .merge_profiles(anna, anon, "same person", "test", false)
            .await
            .expect("merge")
            .expect("merged");
        assert_eq!(s.members_now("repeat-buyers").await, vec![merge.winner]);

        // Unmerged again: neither has two orders.
        s.engine
            .unmerge(merge.id, "not the same", "test")
            .await
            .expect("unmerge");
        assert!(s.members_now("repeat-buyers").await.is_empty());
        s.audiences.stop();
        s.engine.shutdown().await;
        (anna, anon)
    };

    // After a restart the processor carries on from its watermark.
    let s = setup(dir.path(), clock.clone()).await;
    let now = clock.now_for_test();
    s.engine
        .ingest(
            s.market.clone(),
            events(now, &[purchase("anna", "o-3", "red_wine")]),
        )
        .await
        .expect("ingest");
    s.audiences.catch_up().await.expect("catch up");
    assert_eq!(
        s.audiences
            .members("repeat-buyers", 0, 10)
            .await
            .expect("m"),
        vec![anna]
    );
    let profile = s.audiences.profile(anna).await.expect("profile");
    assert_eq!(profile["computed"]["orders"], 2, "no event counted twice");
    let other = s.audiences.profile(anon).await.expect("profile");
    assert_eq!(other["computed"]["orders"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_definitions_name_the_field_and_preview_estimates() {
    let dir = tempfile::tempdir().expect("tmp");
    let clock = Arc::new(ManualClock::new(start_time()));
    let s = setup(dir.path(), clock.clone()).await;
    let bad = s
        .audiences
        .apply(
            "segments:\n  - id: x\n    condition: { path: computed.nope, ge: 1 }\n",
            "test",
        )
        .await
        .expect_err("unknown computed trait");
    assert_eq!(
        bad.to_string(),
        "segments[0].condition.path: unknown computed trait \"nope\""
    );
    s.audiences.apply(DEFINITIONS, "test").await.expect("apply");
    let now = clock.now_for_test();
    s.engine
        .ingest(
            s.market.clone(),
            events(
                now,
                &[
                    purchase("a", "o-1", "x"),
                    purchase("a", "o-2", "x"),
                    purchase("b", "o-3", "x"),
                ],
            ),
        )
        .await
        .expect("ingest");
    s.audiences.catch_up().await.expect("catch up");
    let preview = s
        .audiences
        .preview(
            "id: big\ncondition: { path: computed.orders, ge: 1 }\n",
            1000,
            5,
        )
        .await
        .expect("preview");
    assert_eq!(
        (preview.matched, preview.estimated_size, preview.exact),
        (2, 2, true)
    );
    assert_eq!(preview.sample.len(), 2);
}

trait NowForTest {
    fn now_for_test(&self) -> DateTime<Utc>;
}

impl NowForTest for ManualClock {
    fn now_for_test(&self) -> DateTime<Utc> {
        use kreislauf_engine::Clock;
        self.now()
    }
}
