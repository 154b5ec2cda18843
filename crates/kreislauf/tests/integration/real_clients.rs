//! The official Segment client libraries, configured with Kreislauf's host and a write key, send
//! identify/track/page calls; every event lands exactly once on the right profile.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::support::{cli, skip_or_fail, ServerProcess};

fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

fn python_client_available() -> bool {
    Command::new("python3")
        .args(["-c", "import segment.analytics"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn node_client_available() -> bool {
    clients_dir()
        .join("node_modules/@segment/analytics-node/package.json")
        .exists()
        && Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
}

async fn admin_get(base: &str, token: &str, path: &str) -> Value {
    let r = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("admin request");
    assert!(r.status().is_success(), "GET {path}: {}", r.status());
    r.json().await.expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_python_and_node_clients_send_to_kreislauf_unchanged() {
    if !python_client_available() || !node_client_available() {
        return skip_or_fail(
            "segment_python_and_node_clients_send_to_kreislauf_unchanged",
            "segment-analytics-python (pip) or @segment/analytics-node (npm install in crates/kreislauf/tests/clients) is missing; .ci/run installs both",
        );
    }
    let dir = tempfile::tempdir().expect("tmp");
    let key = cli(
        dir.path(),
        &[
            "source",
            "create",
            "wine-club-web",
            "--brand",
            "wine-club",
            "--channel",
            "web",
        ],
    );
    let token = cli(dir.path(), &["token", "create", "interop"]);
    let server = ServerProcess::start(dir.path());
    let run = std::process::id().to_string();

    for (program, script) in [("python3", "send.py"), ("node", "send.mjs")] {
        let out = Command::new(program)
            .arg(script)
            .current_dir(clients_dir())
            .env("KREISLAUF_HOST", &server.base)
            .env("KREISLAUF_WRITE_KEY", &key)
            .env("RUN_ID", &run)
            .output()
            .expect("run client");
        assert!(
            out.status.success(),
            "{script} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // The Python user and the Node visitor share the loyalty card: one profile with both libraries' events.
    let profile = admin_get(
        &server.base,
        &token,
        &format!("/api/profiles/lookup?kind=user_id&value=py-user-{run}"),
    )
    .await;
    let id = profile["id"].as_i64().expect("profile id");
    let by_card = admin_get(
        &server.base,
        &token,
        &format!("/api/profiles/lookup?kind=loyalty_card&value=PY{run}"),
    )
    .await;
    assert_eq!(by_card["id"].as_i64(), Some(id));
    assert_eq!(profile["traits"]["first_name"]["value"], "Jürg");
    let timeline = admin_get(
        &server.base,
        &token,
        &format!("/api/profiles/{id}/timeline?limit=100"),
    )
    .await;
    let events = timeline["events"].as_array().expect("events");
    let libraries: Vec<&str> = events
        .iter()
        .filter_map(|e| e["body"]["context"]["library"]["name"].as_str())
        .collect();
    let from_python = libraries.iter().filter(|l| l.contains("python")).count();
    let from_node = libraries.iter().filter(|l| l.contains("node")).count();
    assert_eq!(
        (from_python, from_node),
        (5, 3),
        "libraries seen: {libraries:?}"
    );
    let mut message_ids: Vec<&str> = events
        .iter()
        .filter_map(|e| e["message_id"].as_str())
        .collect();
    let total = message_ids.len();
    message_ids.sort_unstable();
    message_ids.dedup();
    assert_eq!(message_ids.len(), total, "every event exactly once");

    let node_user = admin_get(
        &server.base,
        &token,
        &format!("/api/profiles/lookup?kind=user_id&value=node-user-{run}"),
    )
    .await;
    assert_ne!(node_user["id"].as_i64(), Some(id));
    let node_events = admin_get(
        &server.base,
        &token,
        &format!("/api/profiles/{}/timeline", node_user["id"]),
    )
    .await;
    assert_eq!(node_events["events"].as_array().map(Vec::len), Some(2));
    let stats = admin_get(&server.base, &token, "/api/stats").await;
    assert_eq!(stats["events"], 10, "nothing stored twice, nothing lost");
}
