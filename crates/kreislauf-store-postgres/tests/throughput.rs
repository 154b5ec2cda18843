//! Ingest throughput of `apply` against a real server. Ignored by default; run with
//! `cargo test --release -p kreislauf-store-postgres --test throughput -- --ignored --nocapture`.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use chrono::{TimeZone, Utc};
use kreislauf_core::{Identifier, IdentifierKind};
use kreislauf_store::{LinkWrite, NewEvent, NewSource, Store, TraitWrite, WriteBatch};
use kreislauf_store_postgres::PostgresStore;
use serde_json::json;

const BATCHES: i64 = 100;
const BATCH: i64 = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; needs a PostgreSQL server"]
async fn apply_throughput() {
    let url = std::env::var("KREISLAUF_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let schema = format!("kl_bench_{}_{nanos}", std::process::id());
    let store = PostgresStore::connect_with_schema(&url, &schema)
        .await
        .expect("connect");
    let s = store
        .create_source(NewSource {
            name: "web".into(),
            brand: "b".into(),
            channel: "web".into(),
            identity_mapping: Default::default(),
            allowed_origins: vec![],
        })
        .await
        .expect("source")
        .id;
    let at = |ms: i64| {
        Utc.timestamp_millis_opt(1_790_000_000_000 + ms)
            .single()
            .expect("valid time")
    };
    // A new profile per 10 events, with one link and two traits each: a plausible ingest mix.
    let batches: Vec<WriteBatch> = (0..BATCHES)
        .map(|b| {
            let mut batch = WriteBatch::default();
            for i in 0..BATCH {
                let n = b * BATCH + i;
                let profile = n / 10 + 1;
                if n % 10 == 0 {
                    batch.new_profiles.push((profile, at(n)));
                    batch.links.push(LinkWrite {
                        identifier: Identifier::new(IdentifierKind::AnonymousId, &format!("anon-{profile}"))
                            .expect("valid identifier"),
                        profile_id: profile,
                        source_id: s,
                        at: at(n),
                    });
                }
                let message_id = format!("msg-{n:012}");
                batch.events.push(NewEvent {
                    source_id: s,
                    profile_id: profile,
                    dedup_hash: n,
                    kind: "track".into(),
                    name: Some("Product Viewed".into()),
                    timestamp: at(n),
                    received_at: at(n),
                    body: json!({"type": "track", "event": "Product Viewed", "messageId": message_id,
                        "anonymousId": format!("anon-{profile}"), "timestamp": at(n),
                        "properties": {"sku": "PRO-1", "price": 12.5, "currency": "CHF", "category": "wine"},
                        "context": {"page": {"url": "https://wine.example/products/pro-1"}, "userAgent": "Mozilla/5.0"}})
                    .to_string(),
                    message_id,
                });
                if i % 5 == 0 {
                    batch.traits.push(TraitWrite {
                        profile_id: profile,
                        key: "last_sku".into(),
                        value: json!(format!("PRO-{n}")),
                        source_id: s,
                        event_time: at(n),
                    });
                }
            }
            batch
        })
        .collect();
    let started = Instant::now();
    let mut events = 0usize;
    for batch in batches {
        events += store.apply(batch).await.expect("apply").len();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "applied {events} events in {secs:.2}s: {:.0} events/s (batches of {BATCH})",
        events as f64 / secs
    );
    // The benchmark data is of no further use.
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect for cleanup");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .expect("drop benchmark schema");
}
