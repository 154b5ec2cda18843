//! Kill -9 mid-stream: every acknowledged messageId is stored exactly once after a restart.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kreislauf_store::Store;
use serde_json::json;

use crate::support::{cli, ServerProcess};

async fn send(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    ids: &[String],
) -> Result<u16, reqwest::Error> {
    let batch: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| json!({"type":"track","event":"Order Completed","userId":format!("crash-user-{}", i % 37),"messageId":id,
            "properties":{"revenue": 9.5, "sku": "PRO-DOC-BIO-075"},"context":{"traits":{"email":format!("crash{}@example.ch", i % 37)}}}))
        .collect();
    let r = client
        .post(format!("{base}/v1/batch"))
        .basic_auth(key, Some(""))
        .json(&json!({"batch": batch}))
        .timeout(Duration::from_secs(10))
        .send()
        .await?;
    Ok(r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_sigkill_exactly_once() {
    let dir = tempfile::tempdir().expect("tmp");
    let key = cli(
        dir.path(),
        &[
            "source",
            "create",
            "pos",
            "--brand",
            "supermarket",
            "--channel",
            "pos",
        ],
    );
    let server = ServerProcess::start(dir.path());
    let base = server.base.clone();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let attempted: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let client = reqwest::Client::new();

    let mut clients = Vec::new();
    for c in 0..4 {
        let (client, base, key, acked, attempted) = (
            client.clone(),
            base.clone(),
            key.clone(),
            acked.clone(),
            attempted.clone(),
        );
        clients.push(tokio::spawn(async move {
            for b in 0.. {
                let ids: Vec<String> = (0..50).map(|i| format!("c{c}-b{b}-e{i}")).collect();
                attempted.lock().expect("lock").push(ids.clone());
                match send(&client, &base, &key, &ids).await {
                    Ok(200) => acked.lock().expect("lock").extend(ids),
                    Ok(status) => panic!("unexpected status {status}"),
                    Err(_) => break, // the server died under us
                }
            }
        }));
    }
    // Let a few hundred batches through, then pull the plug.
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        if acked.lock().expect("lock").len() >= 10_000 {
            break;
        }
    }
    server.kill_9();
    for c in clients {
        c.await.expect("client task");
    }
    let acked: Vec<String> = acked.lock().expect("lock").clone();
    assert!(
        acked.len() >= 1_000,
        "the clients got only {} acknowledgements before the kill",
        acked.len()
    );

    // Restart; clients retry every batch whose fate they did not learn, and some they did.
    let server = ServerProcess::start(dir.path());
    let attempted = attempted.lock().expect("lock").clone();
    let acked_set: HashSet<&String> = acked.iter().collect();
    for ids in attempted
        .iter()
        .filter(|ids| !acked_set.contains(&ids[0]))
        .chain(attempted.iter().take(5))
    {
        assert_eq!(
            send(&client, &server.base, &key, ids).await.expect("retry"),
            200
        );
    }
    assert!(server.terminate().success(), "graceful shutdown");

    // Read back through the store itself: events live in the event log beside the database.
    let store = kreislauf_store_sqlite::SqliteStore::open(&dir.path().join("kreislauf.db"))
        .expect("open store");
    let seqs: Vec<i64> = store
        .dedup_entries(0, usize::MAX)
        .await
        .expect("entries")
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    let mut counts: HashMap<String, i64> = HashMap::new();
    for (_, _, message_id) in store.message_ids(&seqs).await.expect("message ids") {
        *counts.entry(message_id).or_default() += 1;
    }
    for id in &acked {
        assert_eq!(
            counts.get(id),
            Some(&1),
            "acknowledged {id} must be stored exactly once"
        );
    }
    assert!(
        counts.values().all(|&n| n == 1),
        "no message is stored twice"
    );
    let attempted_total: usize = attempted.iter().map(Vec::len).sum();
    assert_eq!(
        counts.len(),
        attempted_total,
        "every retried batch is stored after the restart"
    );
}
