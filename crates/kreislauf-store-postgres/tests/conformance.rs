//! The shared storage conformance suite against a real PostgreSQL server.
//!
//! The server is `KREISLAUF_TEST_POSTGRES_URL`, by default `postgres://postgres@127.0.0.1:5432/test`. Each test
//! gets a fresh schema; schemas left by earlier test processes are dropped when the next run starts.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kreislauf_store::Store;
use kreislauf_store_postgres::PostgresStore;
use tokio_postgres::NoTls;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const SCHEMA_PREFIX: &str = "kl_test_";
/// Schemas of other processes older than this are dropped even where liveness cannot be checked.
const STALE_AFTER: Duration = Duration::from_secs(3600);

static COUNTER: AtomicU64 = AtomicU64::new(0);
static SWEPT: AtomicBool = AtomicBool::new(false);

fn url() -> String {
    std::env::var("KREISLAUF_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// True if the schema `name` was left by a test process that has ended (or is long past).
fn is_stale(name: &str) -> bool {
    let mut parts = name
        .strip_prefix(SCHEMA_PREFIX)
        .unwrap_or_default()
        .split('_');
    let (Some(Ok(pid)), Some(_), Some(Ok(nanos))) = (
        parts.next().map(str::parse::<u32>),
        parts.next(),
        parts.next().map(str::parse::<u128>),
    ) else {
        return false;
    };
    if pid == std::process::id() {
        return false;
    }
    let old = now_nanos().saturating_sub(nanos) > STALE_AFTER.as_nanos();
    let ended = std::path::Path::new("/proc/self").exists()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists();
    old || ended
}

/// Best effort: drops test schemas of earlier runs, once per test process.
async fn sweep(client: &tokio_postgres::Client) {
    if SWEPT.swap(true, Ordering::SeqCst) {
        return;
    }
    let Ok(found) = client
        .query(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)",
            &[&SCHEMA_PREFIX],
        )
        .await
    else {
        return;
    };
    for row in found {
        let name: String = row.get(0);
        let safe = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if safe && is_stale(&name) {
            if let Err(e) = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .await
            {
                eprintln!("could not drop old test schema {name}: {e}");
            }
        }
    }
}

async fn fresh_store() -> Option<Arc<dyn Store>> {
    let url = url();
    // Only an unreachable server skips; any later failure is a bug and must fail the test.
    let (client, connection) = match tokio_postgres::connect(&url, NoTls).await {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("PostgreSQL at {url} not reachable: {e}");
            return None;
        }
    };
    let driver = tokio::spawn(connection);
    sweep(&client).await;
    drop(client);
    let _ = driver.await;
    let schema = format!(
        "{SCHEMA_PREFIX}{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        now_nanos()
    );
    let store = PostgresStore::connect_with_schema(&url, &schema)
        .await
        .expect("connect to PostgreSQL and migrate a fresh schema");
    Some(Arc::new(store))
}

kreislauf_store::store_conformance_tests!(fresh_store());

/// Two stores starting on one schema at once: the advisory lock makes one migrate and the other wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_start_migrates_once() {
    if fresh_store().await.is_none() {
        kreislauf_store::testsuite::skip("concurrent_start_migrates_once");
        return;
    }
    let url = url();
    let schema = format!(
        "{SCHEMA_PREFIX}{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        now_nanos()
    );
    let (a, b) = tokio::join!(
        PostgresStore::connect_with_schema(&url, &schema),
        PostgresStore::connect_with_schema(&url, &schema)
    );
    let (a, b) = (a.expect("first store"), b.expect("second store"));
    a.create_source(kreislauf_store::NewSource {
        name: "web".into(),
        brand: "b".into(),
        channel: "c".into(),
        identity_mapping: Default::default(),
        allowed_origins: vec![],
    })
    .await
    .expect("create source");
    assert_eq!(b.sources().await.expect("sources").len(), 1);
}

fn t(secs: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_790_000_000 + secs, 0).expect("valid time")
}

/// The backend settles repeated writes of one trait in one batch itself (one upsert cannot touch a row twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_writes_in_one_batch() {
    use kreislauf_core::{Identifier, IdentifierKind};
    use kreislauf_store::{LinkWrite, TraitWrite, WriteBatch};
    use serde_json::json;

    let Some(store) = fresh_store().await else {
        kreislauf_store::testsuite::skip("repeated_writes_in_one_batch");
        return;
    };
    let write = |value: &str, secs: i64| TraitWrite {
        profile_id: 1,
        key: "city".into(),
        value: json!(value),
        source_id: 1,
        event_time: t(secs),
        raw: None,
        status: None,
    };
    let link = |profile_id: i64| LinkWrite {
        identifier: Identifier::new(IdentifierKind::Email, "hans@example.ch").expect("valid"),
        profile_id,
        source_id: 1,
        at: t(0),
    };
    store
        .apply(WriteBatch {
            new_profiles: vec![(1, t(0)), (2, t(0))],
            links: vec![link(1), link(2)],
            traits: vec![
                write("Bern", 20),
                write("Basel", 10),
                write("Zürich", 20),
                write("Genf", 5),
            ],
            ..Default::default()
        })
        .await
        .expect("apply");
    let profile = store.profile(1).await.expect("profile").expect("root");
    assert_eq!(
        profile.traits["city"].value,
        json!("Zürich"),
        "latest time wins, a later write wins a tie"
    );
    assert_eq!(profile.identities.len(), 1, "the first link wins");
    assert_eq!(
        store
            .search_by_trait("city", &json!("Zürich"), 10)
            .await
            .expect("search"),
        vec![1]
    );
}

/// An erasure vacuums the tables it deleted from, so the dead rows do not wait for autovacuum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_vacuums() {
    use kreislauf_store::{AuditEntry, WriteBatch};

    let url = url();
    let Ok((client, connection)) = tokio_postgres::connect(&url, NoTls).await else {
        kreislauf_store::testsuite::skip("erase_vacuums");
        return;
    };
    tokio::spawn(connection);
    let schema = format!(
        "{SCHEMA_PREFIX}{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        now_nanos()
    );
    let store = PostgresStore::connect_with_schema(&url, &schema)
        .await
        .expect("store");
    store
        .apply(WriteBatch {
            new_profiles: vec![(1, t(0))],
            ..Default::default()
        })
        .await
        .expect("apply");
    store
        .erase(
            1,
            &[],
            AuditEntry {
                at: t(1),
                actor: "test".into(),
                action: "erase".into(),
                subject: "profile 1".into(),
                detail: serde_json::json!({}),
            },
        )
        .await
        .expect("erase");
    let row = client
        .query_one(
            "SELECT count(*) FROM pg_stat_user_tables
             WHERE schemaname = $1 AND last_vacuum IS NOT NULL
               AND relname IN ('events', 'identities', 'traits', 'merges', 'identity_conflicts', 'profiles')",
            &[&schema],
        )
        .await
        .expect("stats");
    assert_eq!(row.get::<_, i64>(0), 6);
}

/// One ingest writer per schema: a second lease is refused until the first is dropped; other schemas are independent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_lease_is_exclusive_per_schema() {
    if fresh_store().await.is_none() {
        kreislauf_store::testsuite::skip("writer_lease_is_exclusive_per_schema");
        return;
    }
    let url = url();
    let schema = |n: u64| {
        format!(
            "{SCHEMA_PREFIX}{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed) + n,
            now_nanos()
        )
    };
    let (one, other) = (schema(0), schema(1000));
    let first = PostgresStore::connect_with_schema(&url, &one)
        .await
        .expect("store");
    let second = PostgresStore::connect_with_schema(&url, &one)
        .await
        .expect("store");
    let elsewhere = PostgresStore::connect_with_schema(&url, &other)
        .await
        .expect("store");
    let lease = first.acquire_writer_lease().await.expect("first lease");
    assert!(
        matches!(
            first.acquire_writer_lease().await,
            Err(kreislauf_store::StoreError::Locked(_))
        ),
        "not re-entrant"
    );
    assert!(matches!(
        second.acquire_writer_lease().await,
        Err(kreislauf_store::StoreError::Locked(_))
    ));
    let _independent = elsewhere
        .acquire_writer_lease()
        .await
        .expect("another schema has its own writer");
    drop(lease);
    // Dropping the lease closes its session, which releases the lock (the server notices shortly after).
    let mut granted = false;
    for _ in 0..50 {
        if second.acquire_writer_lease().await.is_ok() {
            granted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(granted, "the lease is free again after the holder drops it");
}
