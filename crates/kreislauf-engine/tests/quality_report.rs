//! The data-quality report over real ingested profiles: field statuses, problems with examples, and a
//! likely duplicate (same person under two customer numbers) explained field by field.

use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use kreislauf_core::event::{normalise, BatchDefaults, Limits};
use kreislauf_engine::quality::{report, ReportOptions};
use kreislauf_engine::{Engine, EngineConfig, Metrics, SystemClock};
use kreislauf_quality::Country;
use kreislauf_store::{NewSource, Store};
use kreislauf_store_sqlite::SqliteStore;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_counts_statuses_names_problems_and_finds_the_duplicate() {
    let dir = tempfile::tempdir().expect("tmp");
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
    let (crm, _) = engine
        .create_source(NewSource {
            name: "crm".into(),
            brand: "supermarket".into(),
            channel: "crm".into(),
            identity_mapping: Default::default(),
            allowed_origins: vec![],
        })
        .await
        .expect("source");
    let (shop, _) = engine
        .create_source(NewSource {
            name: "wine-shop".into(),
            brand: "wine-club".into(),
            channel: "web".into(),
            identity_mapping: Default::default(),
            allowed_origins: vec![],
        })
        .await
        .expect("source");
    let identify = |user: &str, traits: serde_json::Value| {
        normalise(
            json!({"type":"identify","userId":user,"traits":traits}),
            None,
            &BatchDefaults::default(),
            Utc::now(),
            100,
            &Limits::default(),
        )
        .expect("valid")
    };
    engine
        .ingest(Arc::new(crm), vec![
            identify("k-1", json!({"first_name":"HANS","last_name":"MÜLLER","email":"hans.mueller@gmial.com","phone":"079 123 45 67","street":"Bahnhofstr. 12","postal_code":"8001","birthday":"24.12.1980"})),
            identify("k-2", json!({"first_name":"anna","last_name":"meier","email":"anna@bluewin.ch","postal_code":"80011","birthday":"1975-03-02"})),
            identify("k-3", json!({"first_name":"Reto","last_name":"Keller","email":"reto.keller@example.ch","phone":"044 668 18 00","street":"Seestrasse 4","postal_code":"8002","birthday":"02.02.1960"})),
        ])
        .await
        .expect("ingest");
    engine
        .ingest(Arc::new(shop), vec![
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
    let json = serde_json::to_value(&r).expect("serialise");
    assert!(json["fields"]["email"]["suspicious"].is_number());
}
