//! Erasure on PostgreSQL: after `erase`, no row of any table in the store's schema holds an erased value.
//! Runs against the real server (KREISLAUF_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/test);
//! skips with a notice when it is unreachable, fails instead under KREISLAUF_REQUIRE_SERVICES=1.

use std::sync::Arc;

use chrono::Utc;
use kreislauf_core::event::{normalise, BatchDefaults, Limits};
use kreislauf_core::{Identifier, IdentifierKind};
use kreislauf_engine::{Engine, EngineConfig, Metrics, SystemClock};
use kreislauf_store::{NewSource, Store};
use kreislauf_store_postgres::PostgresStore;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erased_values_are_in_no_row_of_any_table() {
    let url = std::env::var("KREISLAUF_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let Ok((client, connection)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await
    else {
        assert!(
            !std::env::var("KREISLAUF_REQUIRE_SERVICES").is_ok_and(|v| v == "1"),
            "PostgreSQL at {url} is not reachable and KREISLAUF_REQUIRE_SERVICES=1"
        );
        eprintln!("SKIPPED erased_values_are_in_no_row_of_any_table: PostgreSQL at {url} is not reachable");
        return;
    };
    tokio::spawn(connection);
    let schema = format!(
        "kl_erase_{}_{}",
        std::process::id(),
        Utc::now().timestamp_millis()
    );
    let store: Arc<dyn Store> = Arc::new(
        PostgresStore::connect_with_schema(&url, &schema)
            .await
            .expect("store"),
    );
    let engine = Engine::start(
        store.clone(),
        Arc::new(SystemClock),
        Arc::new(Metrics::new()),
        EngineConfig::default(),
    )
    .await
    .expect("engine");
    let (source, _) = engine
        .create_source(NewSource {
            name: "pos".into(),
            brand: "supermarket".into(),
            channel: "pos".into(),
            identity_mapping: Default::default(),
            allowed_origins: vec![],
        })
        .await
        .expect("source");
    let source = Arc::new(source);
    let events = [
        json!({"type":"page","anonymousId":"anon-zz-erase","messageId":"zz-m1"}),
        json!({"type":"identify","userId":"user-zz-erase","messageId":"zz-m2",
               "traits":{"email":"zz.erase@example.ch","first_name":"Zuzanna","loyalty_card":"ZZCARD99"}}),
        json!({"type":"track","event":"Order Completed","userId":"user-zz-erase","anonymousId":"anon-zz-erase","messageId":"zz-m3"}),
        json!({"type":"identify","userId":"user-zz-keep","messageId":"zz-m4","traits":{"email":"zz.keep@example.ch"}}),
    ]
    .into_iter()
    .map(|v| normalise(v, None, &BatchDefaults::default(), Utc::now(), 10, &Limits::default()).expect("valid"))
    .collect();
    engine.ingest(source, events).await.expect("ingest");
    let root = store
        .profile_by_identifier(
            &Identifier::new(IdentifierKind::UserId, "user-zz-erase").expect("id"),
        )
        .await
        .expect("lookup")
        .expect("profile");
    assert_eq!(
        store.merges(root).await.expect("merges").len(),
        1,
        "the anonymous profile was merged in"
    );
    engine.erase(root, "test").await.expect("erase");

    let tables = client
        .query("SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE'", &[&schema])
        .await
        .expect("tables");
    assert!(tables.len() >= 8, "expected the store's tables in {schema}");
    for needle in [
        "anon-zz-erase",
        "user-zz-erase",
        "zz.erase@example.ch",
        "Zuzanna",
        "ZZCARD99",
        "zz-m2",
    ] {
        for row in &tables {
            let table: String = row.get(0);
            let sql = format!("SELECT count(*) FROM \"{schema}\".\"{table}\" t WHERE t::text LIKE '%' || $1 || '%'");
            let n: i64 = client
                .query_one(&sql, &[&needle])
                .await
                .expect("scan")
                .get(0);
            assert_eq!(n, 0, "{needle} still in table {table}");
        }
    }
    let kept: i64 = client
        .query_one(
            &format!(
                "SELECT count(*) FROM \"{schema}\".identities WHERE value = 'zz.keep@example.ch'"
            ),
            &[],
        )
        .await
        .expect("kept")
        .get(0);
    assert_eq!(kept, 1, "other people's data stays");
    engine.shutdown().await;
    let _ = client
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await;
}
