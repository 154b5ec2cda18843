//! A database written before the event log keeps its events: migration 0003 moves them into the log.

use kreislauf_store::Store;
use kreislauf_store_sqlite::{events_dir, SqliteStore};

#[tokio::test]
async fn events_of_an_old_database_move_into_the_event_log() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("kreislauf.db");
    {
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.execute_batch(include_str!("../migrations/0001_init.sql"))
            .expect("0001");
        conn.execute_batch(include_str!("../migrations/0002_reviews.sql"))
            .expect("0002");
        conn.execute_batch(
            "PRAGMA user_version = 2;
             INSERT INTO sources (id, name, brand, channel, identity_mapping, created_at)
                 VALUES (1, 'pos', 'market', 'pos', '{}', 0);
             INSERT INTO profiles (id, merged_into, created_at) VALUES (7, NULL, 0);
             INSERT INTO events (seq, source_id, profile_id, message_id, dedup_hash, kind, name, timestamp, received_at, body)
                 VALUES (3, 1, 7, 'old-1', 11, 'track', 'Order Completed', 1000, 1000, '{\"n\":1}'),
                        (9, 1, 7, 'old-2', 12, 'track', 'Order Completed', 2000, 2000, '{\"n\":2}');",
        )
        .expect("old rows");
    }
    let store = SqliteStore::open(&path).expect("migrate");
    let timeline = store.timeline(7, None, 10).await.expect("timeline");
    let ids: Vec<&str> = timeline.iter().map(|e| e.message_id.as_str()).collect();
    assert_eq!(ids, ["old-2", "old-1"]);
    assert_eq!(timeline[0].body["n"], 2);
    assert_eq!(store.stats().await.expect("stats").events, 2);
    let dedup = store.dedup_entries(0, 10).await.expect("dedup");
    assert_eq!(dedup.iter().map(|d| d.1).collect::<Vec<_>>(), [11, 12]);
    assert!(events_dir(&path).is_dir());
    drop(store);

    // Reopening neither copies twice nor loses anything.
    let store = SqliteStore::open(&path).expect("reopen");
    assert_eq!(store.stats().await.expect("stats").events, 2);
    let conn = rusqlite::Connection::open(&path).expect("open");
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'events'",
            [],
            |r| r.get(0),
        )
        .expect("query");
    assert_eq!(tables, 0, "the events table is gone");
}
