//! Engine tests against the embedded store: deduplication (also across restarts), identity resolution
//! end to end, erasure, unmerge and CSV import.

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use kreislauf_core::event::{normalise, BatchDefaults, Limits};
use kreislauf_core::{Event, Identifier, IdentifierKind, Source};
use kreislauf_engine::import::{import_csv, ImportKind};
use kreislauf_engine::{Engine, EngineConfig, Metrics, SystemClock};
use kreislauf_store::{NewSource, Store};
use kreislauf_store_sqlite::SqliteStore;
use serde_json::{json, Value};

async fn engine_at(path: &Path) -> Engine {
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&path.join("kreislauf.db")).expect("open store"));
    Engine::start(
        store,
        Arc::new(SystemClock),
        Arc::new(Metrics::new()),
        EngineConfig::default(),
    )
    .await
    .expect("engine starts")
}

async fn source(engine: &Engine, name: &str) -> Arc<Source> {
    let (src, _key) = engine
        .create_source(NewSource {
            name: name.into(),
            brand: name.into(),
            channel: "web".into(),
            identity_mapping: Default::default(),
            allowed_origins: vec![],
        })
        .await
        .expect("source");
    Arc::new(src)
}

fn events(values: &[Value]) -> Vec<Event> {
    values
        .iter()
        .map(|v| {
            normalise(
                v.clone(),
                None,
                &BatchDefaults::default(),
                Utc::now(),
                100,
                &Limits::default(),
            )
            .expect("valid fixture")
        })
        .collect()
}

fn id(kind: IdentifierKind, v: &str) -> Identifier {
    Identifier::new(kind, v).expect("identifier")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_stored_once_even_after_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let batch = events(&[
        json!({"type":"track","event":"Order Completed","userId":"u1","messageId":"m-1"}),
        json!({"type":"track","event":"Order Completed","userId":"u1","messageId":"m-2"}),
        json!({"type":"track","event":"Order Completed","userId":"u1","messageId":"m-2"}),
    ]);
    {
        let engine = engine_at(dir.path()).await;
        let pos = source(&engine, "pos").await;
        let first = engine
            .ingest(pos.clone(), batch.clone())
            .await
            .expect("ingest");
        assert_eq!((first.accepted, first.duplicates), (2, 1));
        let again = engine.ingest(pos, batch.clone()).await.expect("ingest");
        assert_eq!((again.accepted, again.duplicates), (0, 3));
        engine.shutdown().await;
    }
    let engine = engine_at(dir.path()).await;
    let pos = engine
        .source_by_name("pos")
        .expect("source survives restart");
    let after_restart = engine.ingest(pos.clone(), batch).await.expect("ingest");
    assert_eq!((after_restart.accepted, after_restart.duplicates), (0, 3));
    // The same messageId from another source is another message.
    let web = source(&engine, "web").await;
    let other = engine
        .ingest(
            web,
            events(&[json!({"type":"track","event":"X","userId":"u1","messageId":"m-1"})]),
        )
        .await
        .expect("ingest");
    assert_eq!(other.accepted, 1);
    assert_eq!(engine.store().stats().await.expect("stats").events, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brands_share_a_profile_through_the_loyalty_card() {
    let dir = tempfile::tempdir().expect("tmp");
    let engine = engine_at(dir.path()).await;
    let pos = source(&engine, "supermarket-pos").await;
    let wine = source(&engine, "wine-club-web").await;
    engine
        .ingest(pos, events(&[json!({"type":"track","event":"Order Completed","anonymousId":"till-7","properties":{"loyalty_card":"4711","products":[{"name":"Prosecco DOC"}]}})]))
        .await
        .expect("ingest");
    engine
        .ingest(wine, events(&[json!({"type":"identify","userId":"wc-42","traits":{"loyalty_card":"4711","email":"Hans.Fritsche@Example.ch","first_name":"Hans"}})]))
        .await
        .expect("ingest");
    let store = engine.store();
    let by_card = store
        .profile_by_identifier(&id(IdentifierKind::LoyaltyCard, "4711"))
        .await
        .expect("lookup");
    let by_mail = store
        .profile_by_identifier(&id(IdentifierKind::Email, "hans.fritsche@example.ch"))
        .await
        .expect("lookup");
    assert!(by_card.is_some());
    assert_eq!(by_card, by_mail);
    let root = by_card.unwrap_or_default();
    let timeline = store.timeline(root, None, 10).await.expect("timeline");
    assert_eq!(timeline.len(), 2, "one timeline across both brands");
    let profile = store.profile(root).await.expect("profile").expect("exists");
    assert_eq!(profile.traits["first_name"].value, json!("Hans"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmerge_through_the_engine_restores_both_profiles_and_is_audited() {
    let dir = tempfile::tempdir().expect("tmp");
    let engine = engine_at(dir.path()).await;
    let web = source(&engine, "web").await;
    engine
        .ingest(
            web.clone(),
            events(&[
                json!({"type":"page","anonymousId":"a1","messageId":"p1"}),
                json!({"type":"identify","userId":"u1","messageId":"i1"}),
                json!({"type":"identify","userId":"u1","anonymousId":"a1","messageId":"i2"}),
            ]),
        )
        .await
        .expect("ingest");
    let store = engine.store();
    let root = store
        .profile_by_identifier(&id(IdentifierKind::UserId, "u1"))
        .await
        .expect("lookup")
        .expect("profile");
    let merges = store.merges(root).await.expect("merges");
    assert_eq!(merges.len(), 1);
    engine
        .unmerge(merges[0].id, "shared computer", "test")
        .await
        .expect("unmerge");
    let anon = store
        .profile_by_identifier(&id(IdentifierKind::AnonymousId, "a1"))
        .await
        .expect("lookup")
        .expect("profile");
    assert_ne!(anon, root);
    let anon_events: Vec<String> = store
        .timeline(anon, None, 10)
        .await
        .expect("tl")
        .into_iter()
        .map(|e| e.message_id)
        .collect();
    assert_eq!(anon_events, vec!["p1"]);
    // Seeing both identifiers together again does not redo the reverted merge.
    engine
        .ingest(
            web,
            events(&[json!({"type":"identify","userId":"u1","anonymousId":"a1","messageId":"i3"})]),
        )
        .await
        .expect("ingest");
    assert_ne!(
        store
            .profile_by_identifier(&id(IdentifierKind::AnonymousId, "a1"))
            .await
            .expect("lookup"),
        Some(root)
    );
    assert_eq!(
        store.audit_log(10).await.expect("audit")[0].action,
        "unmerge"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erased_person_is_not_recreated_by_late_events() {
    let dir = tempfile::tempdir().expect("tmp");
    let engine = engine_at(dir.path()).await;
    let web = source(&engine, "web").await;
    engine
        .ingest(
            web.clone(),
            events(&[
                json!({"type":"identify","userId":"u-erase","traits":{"email":"weg@example.de"}}),
            ]),
        )
        .await
        .expect("ingest");
    let root = engine
        .store()
        .profile_by_identifier(&id(IdentifierKind::UserId, "u-erase"))
        .await
        .expect("lookup")
        .expect("profile");
    let report = engine.erase(root, "test").await.expect("erase");
    assert_eq!((report.events, report.identities), (1, 2));
    let late = engine
        .ingest(web.clone(), events(&[json!({"type":"track","event":"Late","anonymousId":"x","context":{"traits":{"email":"WEG@example.de"}}})]))
        .await
        .expect("ingest");
    assert_eq!((late.accepted, late.suppressed), (0, 1));
    assert_eq!(engine.store().stats().await.expect("stats").events, 0);
    engine.shutdown().await;
    // The erasure list survives a restart.
    let engine = engine_at(dir.path()).await;
    let web = engine.source_by_name("web").expect("source");
    let later = engine
        .ingest(
            web,
            events(&[json!({"type":"track","event":"Later","userId":"u-erase"})]),
        )
        .await
        .expect("ingest");
    assert_eq!(later.suppressed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_import_rejects_bad_lines_with_numbers_and_reruns_without_duplicates() {
    let dir = tempfile::tempdir().expect("tmp");
    let engine = engine_at(dir.path()).await;
    let pos = source(&engine, "pos").await;
    let csv = "user_id,email,first_name,loyalty_card,updated_at\n\
               c-1,anna@example.ch,Anna,1001,2026-01-02\n\
               ,,Nobody,,2026-01-02\n\
               c-2,ben@example.de,Ben,1002,not a date\n\
               ,carla@example.at,Carla,1003,2026-01-03\n";
    let mut rejects = Vec::new();
    let summary = import_csv(
        &engine,
        pos.clone(),
        ImportKind::Customers,
        csv.as_bytes(),
        &mut rejects,
        &mut |_| {},
    )
    .await
    .expect("import");
    assert_eq!(
        (summary.lines, summary.accepted, summary.rejected),
        (4, 2, 2)
    );
    let rejects = String::from_utf8(rejects).expect("utf8");
    assert!(rejects.contains("3,user_id,"), "{rejects}");
    assert!(rejects.contains("4,updated_at,"), "{rejects}");
    let again = import_csv(
        &engine,
        pos,
        ImportKind::Customers,
        csv.as_bytes(),
        &mut Vec::new(),
        &mut |_| {},
    )
    .await
    .expect("import");
    assert_eq!((again.accepted, again.duplicates), (0, 2));
    let carla = engine
        .store()
        .profile_by_identifier(&id(IdentifierKind::Email, "carla@example.at"))
        .await
        .expect("lookup")
        .expect("profile");
    let profile = engine
        .store()
        .profile(carla)
        .await
        .expect("profile")
        .expect("exists");
    assert_eq!(profile.traits["first_name"].value, json!("Carla"));
    assert_eq!(profile.traits["loyalty_card"].value, json!("1003"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_import_keeps_history_and_types() {
    let dir = tempfile::tempdir().expect("tmp");
    let engine = engine_at(dir.path()).await;
    let pos = source(&engine, "pos").await;
    let csv = "type,event,user_id,timestamp,properties.sku,properties.price,properties.quantity\n\
               track,Order Completed,c-1,2025-06-01T10:00:00Z,00123,12.90,2\n\
               track,,c-1,2025-06-02T10:00:00Z,1,1,1\n\
               track,Order Completed,c-1,,1,1,1\n";
    let mut rejects = Vec::new();
    let summary = import_csv(
        &engine,
        pos,
        ImportKind::Events,
        csv.as_bytes(),
        &mut rejects,
        &mut |_| {},
    )
    .await
    .expect("import");
    assert_eq!(
        (summary.accepted, summary.rejected),
        (1, 2),
        "{}",
        String::from_utf8_lossy(&rejects)
    );
    let root = engine
        .store()
        .profile_by_identifier(&id(IdentifierKind::UserId, "c-1"))
        .await
        .expect("lookup")
        .expect("profile");
    let ev = &engine.store().timeline(root, None, 1).await.expect("tl")[0];
    assert_eq!(ev.timestamp.to_rfc3339(), "2025-06-01T10:00:00+00:00");
    assert_eq!(
        ev.body["properties"],
        json!({"sku":"00123","price":12.9,"quantity":2})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_customers_are_normalised_and_keep_raw_values_and_statuses() {
    let dir = tempfile::tempdir().expect("tmp");
    let engine = engine_at(dir.path()).await;
    let (crm, _) = engine
        .create_source(NewSource {
            name: "crm-berlin".into(),
            brand: "supermarket".into(),
            channel: "crm".into(),
            identity_mapping: kreislauf_core::IdentityMapping {
                default_country: Some("DE".into()),
                ..Default::default()
            },
            allowed_origins: vec![],
        })
        .await
        .expect("source");
    let csv = "user_id,email,first_name,last_name,phone,birthday,postal_code,favourite_wine\n\
               k-1,hans.mueller@gmial.com,hans-peter,MÜLLER,030 1234567,24.12.1980,10115,Prosecco\n\
               k-2,gerda@example.de,Gerda,von Trotta,keine,31.02.1975,1011,Riesling\n";
    let summary = import_csv(
        &engine,
        Arc::new(crm),
        ImportKind::Customers,
        csv.as_bytes(),
        &mut Vec::new(),
        &mut |_| {},
    )
    .await
    .expect("import");
    assert_eq!(summary.accepted, 2);
    let profile_of = |user: &'static str| {
        let engine = engine.clone();
        async move {
            let id = engine
                .store()
                .profile_by_identifier(&id(IdentifierKind::UserId, user))
                .await
                .expect("lookup")
                .expect("profile");
            engine
                .store()
                .profile(id)
                .await
                .expect("profile")
                .expect("profile")
        }
    };
    let hans = profile_of("k-1").await;
    let t = |key: &str| hans.traits.get(key).expect(key).clone();
    assert_eq!(t("last_name").value, json!("Müller"));
    assert_eq!(
        t("last_name").raw,
        Some(json!("MÜLLER")),
        "the raw value is kept"
    );
    assert_eq!(
        t("last_name").status.as_ref().expect("status")["status"],
        "normalised"
    );
    assert_eq!(t("first_name").value, json!("Hans-Peter"));
    assert_eq!(
        t("phone").value,
        json!("+49301234567"),
        "E.164 with the source's country"
    );
    assert_eq!(t("birthday").value, json!("1980-12-24"));
    let email = t("email");
    let status = email.status.expect("status");
    assert_eq!(status["status"], "suspicious");
    assert_eq!(status["suggestion"], "hans.mueller@gmail.com");
    assert_eq!(t("favourite_wine").value, json!("Prosecco"));
    assert!(
        t("favourite_wine").status.is_none(),
        "unknown traits pass unchanged"
    );

    let gerda = profile_of("k-2").await;
    let phone = gerda.traits.get("phone").expect("phone");
    assert_eq!(
        phone.value,
        json!("keine"),
        "an invalid value is kept as received"
    );
    assert_eq!(phone.status.as_ref().expect("status")["status"], "invalid");
    assert_eq!(
        gerda.traits["last_name"].value,
        json!("von Trotta"),
        "particles stay lower case"
    );
    assert_eq!(
        gerda.traits["birthday"].status.as_ref().expect("s")["status"],
        "invalid"
    );

    // The report judges what was received, so normalised fields still count as normalised.
    let assessed = kreislauf_engine::quality::assess(
        &hans,
        kreislauf_quality::Country::DE,
        Utc::now().date_naive(),
    );
    assert_eq!(
        assessed.fields["last_name"].status,
        kreislauf_quality::FieldStatus::Normalised
    );
}
