//! The data-quality report over real ingested profiles: field statuses, problems with examples, and a
//! likely duplicate (same person under two customer numbers) explained field by field.

use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use kreislauf_core::event::{normalise, BatchDefaults, Limits};
use kreislauf_engine::quality::{accept_review, dedupe, reject_review, report, ReportOptions};
use kreislauf_engine::{Engine, EngineConfig, Metrics, SystemClock};
use kreislauf_quality::Country;
use kreislauf_store::{NewSource, Store};
use kreislauf_store_sqlite::SqliteStore;
use serde_json::json;

/// A fresh embedded store with a running engine.
async fn start(dir: &tempfile::TempDir) -> (Arc<dyn Store>, Engine) {
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("k.db")).expect("store"));
    let engine = Engine::start(
        store.clone(),
        Arc::new(SystemClock),
        Arc::new(Metrics::new()),
        EngineConfig::default(),
    )
    .await
    .expect("engine");
    (store, engine)
}

async fn source(
    engine: &Engine,
    name: &str,
    brand: &str,
    channel: &str,
) -> Arc<kreislauf_core::Source> {
    let new = NewSource {
        name: name.into(),
        brand: brand.into(),
        channel: channel.into(),
        identity_mapping: Default::default(),
        allowed_origins: vec![],
    };
    Arc::new(engine.create_source(new).await.expect("source").0)
}

fn event(v: serde_json::Value) -> kreislauf_core::Event {
    normalise(
        v,
        None,
        &BatchDefaults::default(),
        Utc::now(),
        100,
        &Limits::default(),
    )
    .expect("valid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_counts_statuses_names_problems_and_finds_the_duplicate() {
    let dir = tempfile::tempdir().expect("tmp");
    let (store, engine) = start(&dir).await;
    let crm = source(&engine, "crm", "supermarket", "crm").await;
    let shop = source(&engine, "wine-shop", "wine-club", "web").await;
    let identify = |user: &str, traits: serde_json::Value| {
        event(json!({"type":"identify","userId":user,"traits":traits}))
    };
    engine
        .ingest(crm, vec![
            identify("k-1", json!({"first_name":"HANS","last_name":"MÜLLER","email":"hans.mueller@gmial.com","phone":"079 123 45 67","street":"Bahnhofstr. 12","postal_code":"8001","birthday":"24.12.1980"})),
            identify("k-2", json!({"first_name":"anna","last_name":"meier","email":"anna@bluewin.ch","postal_code":"80011","birthday":"1975-03-02"})),
            identify("k-3", json!({"first_name":"Reto","last_name":"Keller","email":"reto.keller@example.ch","phone":"044 668 18 00","street":"Seestrasse 4","postal_code":"8002","birthday":"02.02.1960","unsubscribed":true})),
        ])
        .await
        .expect("ingest");
    engine
        .ingest(shop, vec![
            // The same Hans Müller under the wine shop's own customer number, spelled differently.
            identify("w-9", json!({"first_name":"Hans","last_name":"Mueller","email":"hans.mueller@gmail.com","phone":"+41791234567","street":"Bahnhofstrasse 12","postal_code":"8001","birthday":"1980-12-24"})),
            identify("w-10", json!({"first_name":"Test","last_name":"Test","email":"x@mailinator.com"})),
        ])
        .await
        .expect("ingest");

    let today = NaiveDate::from_ymd_opt(2026, 11, 25).expect("date");
    let r = report(store.as_ref(), &ReportOptions::new(Country::CH, today))
        .await
        .expect("report");
    assert_eq!(r.profiles, 5);
    let email = &r.fields["email"];
    assert_eq!(email.missing, 0);
    assert!(
        email.suspicious >= 2,
        "typo domain and disposable address: {email:?}"
    );
    assert_eq!(
        r.fields["postal_code"].invalid, 1,
        "80011 is no Swiss postcode"
    );
    assert_eq!(
        r.fields["last_name"].normalised, 2,
        "MÜLLER and meier are re-cased"
    );
    assert!(r.sources["wine-shop"]["email"].suspicious >= 1);
    let typo = r
        .problems
        .iter()
        .find(|p| p.field == "email" && p.reason.contains("typo"))
        .expect("typo problem");
    assert_eq!(
        typo.examples[0].suggestion.as_deref(),
        Some("hans.mueller@gmail.com")
    );
    assert!(r
        .problems
        .iter()
        .any(|p| p.field == "postal_code" && p.status == "invalid"));

    let dup = r.duplicates.examples.first().expect("a likely duplicate");
    let mut pair = [dup.profiles.0, dup.profiles.1];
    pair.sort_unstable();
    let hans_crm = store
        .profile_by_identifier(
            &kreislauf_core::Identifier::new(kreislauf_core::IdentifierKind::UserId, "k-1")
                .expect("id"),
        )
        .await
        .expect("lookup")
        .expect("profile");
    let hans_shop = store
        .profile_by_identifier(
            &kreislauf_core::Identifier::new(kreislauf_core::IdentifierKind::UserId, "w-9")
                .expect("id"),
        )
        .await
        .expect("lookup")
        .expect("profile");
    assert_eq!(pair, [hans_crm.min(hans_shop), hans_crm.max(hans_shop)]);
    assert!(dup.probability >= 0.8, "{dup:?}");
    let birth = dup
        .explanation
        .iter()
        .find(|c| c.field == "birth_date")
        .expect("birth date evidence");
    assert_eq!(
        birth.level.as_deref(),
        Some("exact"),
        "24.12.1980 and 1980-12-24 are the same date once normalised"
    );
    assert!(birth.log2_bayes_factor > 0.0);
    assert_eq!(
        r.duplicates.likely + r.duplicates.to_review,
        1,
        "Reto, Anna and the test record have no twin"
    );
    // The campaign gate counts who may be e-mailed and why the others may not.
    let gate = kreislauf_engine::quality::CampaignGate {
        channel: kreislauf_engine::quality::Channel::Email,
        min_score: 0,
        allow_suspicious: false,
    };
    let counts = kreislauf_engine::quality::gate_counts(store.as_ref(), &gate, Country::CH, today)
        .await
        .expect("gate");
    assert_eq!(
        (counts.profiles, counts.allowed, counts.blocked),
        (5, 2, 3),
        "{counts:?}"
    );
    assert_eq!(
        counts.by_reason.get("suspicious_contact"),
        Some(&2),
        "typo domain and disposable address: {counts:?}"
    );
    assert_eq!(
        counts.by_reason.get("suppressed"),
        Some(&1),
        "Reto unsubscribed: {counts:?}"
    );
    let json = serde_json::to_value(&r).expect("serialise");
    assert!(json["fields"]["email"]["suspicious"].is_number());
    assert!(
        r.trend.is_none(),
        "the first report has nothing to compare with"
    );

    // Anna fixes her postcode; a new customer arrives without an e-mail address. The next report says so.
    let crm = engine.source_by_name("crm").expect("crm");
    engine
        .ingest(
            crm,
            vec![
                identify("k-2", json!({"postal_code":"8001"})),
                identify("k-4", json!({"first_name":"Lea","last_name":"Frei"})),
            ],
        )
        .await
        .expect("ingest");
    let next = report(store.as_ref(), &ReportOptions::new(Country::CH, today))
        .await
        .expect("report");
    let trend = next.trend.expect("trend since the first report");
    assert_eq!(
        trend.since.timestamp_millis(),
        r.generated_at.timestamp_millis()
    );
    assert_eq!(trend.profiles, 1);
    assert!(trend.fields["postal_code"].validity > 0.0, "{trend:?}");
    assert!(trend.fields["email"].completeness < 0.0, "{trend:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedupe_merges_reversibly_and_remembers_a_revert() {
    let dir = tempfile::tempdir().expect("tmp");
    let (store, engine) = start(&dir).await;
    let club = source(&engine, "wine-club", "wine-club", "web").await;
    engine
        .ingest(club.clone(), vec![
            event(json!({"type":"identify","userId":"acc-1","traits":{"first_name":"Sophie","last_name":"Brunner","email":"sophie.brunner@bluewin.ch","street":"Seestrasse 4","postal_code":"8002","birthday":"03.07.1985"}})),
            // Her second account, opened with another address.
            event(json!({"type":"identify","userId":"acc-2","traits":{"first_name":"Sophie","last_name":"BRUNNER","email":"sophie85@gmail.com","street":"Seestr. 4","postal_code":"8002","birthday":"1985-07-03"}})),
            event(json!({"type":"identify","userId":"acc-3","traits":{"first_name":"Peter","last_name":"Brunner","email":"p.brunner@bluewin.ch","street":"Seestrasse 4","postal_code":"8002","birthday":"1957-01-12"}})),
        ])
        .await
        .expect("ingest");
    let id = |v: &str| {
        kreislauf_core::Identifier::new(kreislauf_core::IdentifierKind::UserId, v).expect("id")
    };
    let today = NaiveDate::from_ymd_opt(2026, 11, 25).expect("date");
    let mut options = ReportOptions::new(Country::CH, today);
    options.auto_merge_threshold = 0.8;

    let dry = dedupe(&engine, &options, false, "test")
        .await
        .expect("dry run");
    assert_eq!(
        (dry.likely, dry.merged.len()),
        (1, 0),
        "a dry run merges nothing"
    );
    let done = dedupe(&engine, &options, true, "test")
        .await
        .expect("dedupe");
    assert_eq!(done.merged.len(), 1, "{done:?}");
    let (one, two, peter) = (
        store
            .profile_by_identifier(&id("acc-1"))
            .await
            .expect("lookup"),
        store
            .profile_by_identifier(&id("acc-2"))
            .await
            .expect("lookup"),
        store
            .profile_by_identifier(&id("acc-3"))
            .await
            .expect("lookup"),
    );
    assert_eq!(one, two, "her two accounts are one profile now");
    assert_ne!(one, peter, "her father at the same address stays separate");
    let merge = store
        .merge(done.merged[0])
        .await
        .expect("merge")
        .expect("recorded");
    assert!(
        merge.reason.contains("birth_date exact"),
        "{}",
        merge.reason
    );

    // Later events from either account land on the merged profile.
    engine
        .ingest(
            club.clone(),
            vec![
                event(json!({"type":"track","event":"A","userId":"acc-1"})),
                event(json!({"type":"track","event":"B","userId":"acc-2"})),
            ],
        )
        .await
        .expect("ingest");
    let root = one.expect("profile");
    assert_eq!(
        store
            .timeline(root, None, 10)
            .await
            .expect("timeline")
            .len(),
        4
    );
    assert_eq!(store.stats().await.expect("stats").profiles, 2);

    // A person reverts the merge; the next run does not redo it.
    engine
        .unmerge(merge.id, "two different people after all", "test")
        .await
        .expect("unmerge");
    let again = dedupe(&engine, &options, true, "test")
        .await
        .expect("dedupe");
    assert!(again.merged.is_empty(), "{again:?}");
    assert_eq!(again.skipped, 1);
    assert_ne!(
        store
            .profile_by_identifier(&id("acc-1"))
            .await
            .expect("lookup"),
        store
            .profile_by_identifier(&id("acc-2"))
            .await
            .expect("lookup")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_queue_keeps_decisions_and_feeds_them_back() {
    let dir = tempfile::tempdir().expect("tmp");
    let (store, engine) = start(&dir).await;
    let club = source(&engine, "wine-club", "wine-club", "web").await;
    let person = |user: &str, first: &str, email: &str, birthday: &str, street: &str| {
        event(
            json!({"type":"identify","userId":user,"traits":{"first_name":first,"last_name":"Gerber","email":email,"street":street,"postal_code":"3011","birthday":birthday}}),
        )
    };
    engine
        .ingest(
            club,
            vec![
                person("g-1", "Urs", "urs@bluewin.ch", "12.04.1970", "Kramgasse 10"),
                person(
                    "g-2",
                    "Urs",
                    "urs.gerber@gmail.com",
                    "1970-04-12",
                    "Kramgasse 10",
                ),
                person(
                    "g-3",
                    "Beat",
                    "beat@bluewin.ch",
                    "01.09.1965",
                    "Marktgasse 3",
                ),
                person(
                    "g-4",
                    "Beat",
                    "b.gerber@gmx.ch",
                    "1965-09-01",
                    "Marktgasse 3",
                ),
            ],
        )
        .await
        .expect("ingest");
    let today = NaiveDate::from_ymd_opt(2026, 11, 25).expect("date");
    let mut options = ReportOptions::new(Country::CH, today);
    options.auto_merge_threshold = 1.01; // Everything goes to a person.
    options.review_threshold = 0.5;
    let first = dedupe(&engine, &options, true, "test")
        .await
        .expect("dedupe");
    assert_eq!((first.queued, first.merged.len()), (2, 0), "{first:?}");
    let pending = store.reviews(Some("pending"), 10).await.expect("reviews");
    assert_eq!(pending.len(), 2);
    assert!(
        pending[0]
            .explanation
            .as_array()
            .is_some_and(|e| !e.is_empty()),
        "the evidence is kept with the pair"
    );

    let urs = |u: &str| {
        kreislauf_core::Identifier::new(kreislauf_core::IdentifierKind::UserId, u).expect("id")
    };
    let (urs_a, urs_b) = (
        store
            .profile_by_identifier(&urs("g-1"))
            .await
            .expect("lookup"),
        store
            .profile_by_identifier(&urs("g-2"))
            .await
            .expect("lookup"),
    );
    let urs_review = pending
        .iter()
        .find(|r| Some(r.profile_a) == urs_a.min(urs_b))
        .expect("Urs's pair");
    let beat_review = pending
        .iter()
        .find(|r| r.id != urs_review.id)
        .expect("Beat's pair");

    let accepted = accept_review(&engine, urs_review.id, "token:cx")
        .await
        .expect("accept");
    assert_eq!(accepted.status, "accepted");
    assert!(accepted.merge_id.is_some());
    assert_eq!(
        store
            .profile_by_identifier(&urs("g-1"))
            .await
            .expect("lookup"),
        store
            .profile_by_identifier(&urs("g-2"))
            .await
            .expect("lookup")
    );
    assert!(
        accept_review(&engine, urs_review.id, "token:cx")
            .await
            .is_err(),
        "decided once"
    );

    reject_review(&engine, beat_review.id, "token:cx")
        .await
        .expect("reject");
    let again = dedupe(&engine, &options, true, "test")
        .await
        .expect("dedupe");
    assert_eq!(
        (again.queued, again.rejected_before, again.merged.len()),
        (0, 1, 0),
        "{again:?}"
    );
    assert_ne!(
        store
            .profile_by_identifier(&urs("g-3"))
            .await
            .expect("lookup"),
        store
            .profile_by_identifier(&urs("g-4"))
            .await
            .expect("lookup")
    );
}
