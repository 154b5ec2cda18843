//! HTTP tests against a real server on loopback, on the embedded store.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use kreislauf_engine::{Engine, EngineConfig, Metrics, SystemClock};
use kreislauf_server::AppState;
use kreislauf_store::{NewSource, Store};
use kreislauf_store_sqlite::SqliteStore;
use reqwest::StatusCode;
use serde_json::{json, Value};

struct Server {
    base: String,
    key: String,
    token: String,
    engine: Engine,
    db: PathBuf,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

async fn server_with(config: EngineConfig, origins: Vec<String>) -> Server {
    server_full(config, origins, false).await
}

async fn server_full(config: EngineConfig, origins: Vec<String>, with_audiences: bool) -> Server {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("kreislauf.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).expect("store"));
    let engine = Engine::start(
        store,
        Arc::new(SystemClock),
        Arc::new(Metrics::new()),
        config,
    )
    .await
    .expect("engine");
    let (_, key) = engine
        .create_source(NewSource {
            name: "wine-club-web".into(),
            brand: "wine-club".into(),
            channel: "web".into(),
            identity_mapping: Default::default(),
            allowed_origins: origins,
        })
        .await
        .expect("source");
    let (_, token) = engine.create_token("test").await.expect("token");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let state = if with_audiences {
        let audiences = kreislauf_engine::audience::Audiences::start(engine.clone())
            .await
            .expect("audiences");
        AppState::with_audiences(engine.clone(), audiences)
    } else {
        AppState::new(engine.clone())
    };
    tokio::spawn(kreislauf_server::serve(
        listener,
        state,
        std::future::pending(),
    ));
    Server {
        base,
        key: key.key,
        token,
        engine,
        db,
        _dir: dir,
        http: reqwest::Client::new(),
    }
}

async fn server() -> Server {
    server_with(EngineConfig::default(), vec![]).await
}

impl Server {
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .basic_auth(&self.key, Some(""))
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn events(&self) -> u64 {
        self.engine.store().stats().await.expect("stats").events
    }
}

fn track(id: &str) -> Value {
    json!({"type":"track","event":"Order Completed","userId":"u1","messageId":id,"properties":{"sku":"PRO-1"}})
}

#[tokio::test]
async fn batch_answers_success_and_a_retried_batch_stores_nothing_twice() {
    let s = server().await;
    let batch = json!({"batch":[track("m1"), track("m2")], "sentAt":"2026-11-25T10:00:00Z"});
    let (status, body) = s.post("/v1/batch", batch.clone()).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    assert_eq!(s.post("/v1/batch", batch).await.0, StatusCode::OK);
    assert_eq!(s.events().await, 2);
}

#[tokio::test]
async fn browser_short_paths_take_text_plain_and_the_write_key_in_the_body() {
    let s = server().await;
    let body =
        json!({"type":"track","event":"Product Viewed","anonymousId":"anon-9","writeKey": s.key})
            .to_string();
    for path in ["/v1/t", "/v1/track"] {
        let r = s
            .http
            .post(format!("{}{path}", s.base))
            .header("content-type", "text/plain")
            .body(body.clone())
            .send()
            .await
            .expect("req");
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    let batch =
        json!({"batch":[{"type":"page","anonymousId":"anon-9","name":"Home"}],"writeKey": s.key})
            .to_string();
    let r = s
        .http
        .post(format!("{}/v1/b", s.base))
        .header("content-type", "text/plain")
        .body(batch)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), StatusCode::OK);
    // The same single event twice (no messageId): the generated id is content-derived, so it is stored once.
    assert_eq!(s.events().await, 2);
    let stored = s.engine.store().timeline(1, None, 10).await.expect("tl");
    assert!(
        stored.iter().all(|e| e.body.get("writeKey").is_none()),
        "the write key is not stored"
    );
}

#[tokio::test]
async fn gzip_bodies_are_accepted_and_broken_gzip_is_a_400() {
    let s = server().await;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(json!({"batch":[track("g1")]}).to_string().as_bytes())
        .expect("gzip");
    let compressed = gz.finish().expect("gzip");
    let send = |body: Vec<u8>| {
        s.http
            .post(format!("{}/v1/batch", s.base))
            .basic_auth(&s.key, Some(""))
            .header("content-encoding", "gzip")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert_eq!(
        send(compressed).await.expect("req").status(),
        StatusCode::OK
    );
    let broken = send(b"not gzip at all".to_vec()).await.expect("req");
    assert_eq!(broken.status(), StatusCode::BAD_REQUEST);
    assert_eq!(s.events().await, 1);
}

#[tokio::test]
async fn missing_or_unknown_write_key_is_a_401_with_code_and_message() {
    let s = server().await;
    let r = s
        .http
        .post(format!("{}/v1/batch", s.base))
        .json(&json!({"batch":[track("x")]}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["code"], "unauthorized");
    assert!(body["message"]
        .as_str()
        .is_some_and(|m| m.contains("write key")));
    let r = s
        .http
        .post(format!("{}/v1/batch", s.base))
        .basic_auth("wk_nope", Some(""))
        .json(&json!({"batch":[track("x")]}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(s.events().await, 0);
}

#[tokio::test]
async fn bad_events_are_named_by_index_and_field_and_good_ones_are_kept() {
    let s = server().await;
    let (status, body) = s
        .post("/v1/batch", json!({"batch":[track("ok1"), {"type":"track","userId":"u1"}, track("ok2"), {"type":"identify","traits":{}}]}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_events");
    assert_eq!(body["accepted"], 2);
    assert_eq!(body["errors"][0]["index"], 1);
    assert_eq!(body["errors"][0]["field"], "event");
    assert_eq!(body["errors"][1]["index"], 3);
    assert_eq!(body["errors"][1]["field"], "userId");
    assert_eq!(s.events().await, 2);

    let r = s
        .http
        .post(format!("{}/v1/batch", s.base))
        .basic_auth(&s.key, Some(""))
        .body("{\"batch\": [")
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (status, body) = s.post("/v1/batch", json!({"batch": "nope"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = s.post("/v1/track", json!({"userId":"u1"})).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("event"))
    );
    assert_eq!(s.events().await, 2);
}

#[tokio::test]
async fn size_limits_follow_segment() {
    let s = server().await;
    let big = "x".repeat(33 * 1024);
    let (status, body) = s.post("/v1/batch", json!({"batch":[track("a"), {"type":"track","event":"Big","userId":"u","properties":{"blob": big}}]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["index"], 1);
    let (status, body) = s
        .post(
            "/v1/track",
            json!({"event":"Big","userId":"u","properties":{"blob": big}}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
    let many: Vec<Value> = (0..40).map(|i| json!({"type":"track","event":"E","userId":"u","messageId":format!("big{i}"),"properties":{"blob":"y".repeat(15_000)}})).collect();
    let (status, _) = s.post("/v1/batch", json!({"batch": many})).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(s.events().await, 1);
}

#[tokio::test]
async fn batch_context_merges_into_each_event_and_clock_skew_is_corrected() {
    let s = server().await;
    let batch = json!({
        "batch":[{"type":"track","event":"E","userId":"u","messageId":"c1","originalTimestamp":"2020-01-01T00:00:00Z","context":{"page":{"path":"/x"}}}],
        "context":{"library":{"name":"analytics-python"},"page":{"path":"/ignored"}},
        "sentAt":"2020-01-01T00:00:10Z"
    });
    assert_eq!(s.post("/v1/batch", batch).await.0, StatusCode::OK);
    let e = &s.engine.store().timeline(1, None, 1).await.expect("tl")[0];
    assert_eq!(e.body["context"]["library"]["name"], "analytics-python");
    assert_eq!(e.body["context"]["page"]["path"], "/x");
    let skew = (e.received_at - e.timestamp).num_seconds();
    assert!(
        (9..=11).contains(&skew),
        "timestamp = receivedAt − (sentAt − originalTimestamp), got {skew}s"
    );
}

#[tokio::test]
async fn cors_preflight_only_for_configured_origins() {
    let s = server_with(
        EngineConfig::default(),
        vec!["https://weinclub.example.ch".into()],
    )
    .await;
    let preflight = |origin: &'static str| {
        s.http
            .request(reqwest::Method::OPTIONS, format!("{}/v1/b", s.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let ok = preflight("https://weinclub.example.ch").await.expect("req");
    assert_eq!(
        ok.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("https://weinclub.example.ch")
    );
    assert!(ok
        .headers()
        .get("access-control-allow-headers")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|h| h.contains("authorization")));
    let other = preflight("https://evil.example").await.expect("req");
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn overload_answers_429_with_retry_after() {
    let s = server_with(
        EngineConfig {
            max_queued_events: 10,
            ..EngineConfig::default()
        },
        vec![],
    )
    .await;
    let batch: Vec<Value> = (0..20).map(|i| track(&format!("o{i}"))).collect();
    let r = s
        .http
        .post(format!("{}/v1/batch", s.base))
        .basic_auth(&s.key, Some(""))
        .json(&json!({"batch": batch}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert_eq!(s.events().await, 0);
}

#[tokio::test]
async fn every_documented_admin_route_exists_and_requires_a_token() {
    let s = server().await;
    let doc: Value = s
        .http
        .get(format!("{}/api/openapi.json", s.base))
        .send()
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 20);
    for (path, ops) in paths {
        let concrete = path.replace("{id}", "1").replace("{key}", "wk_x");
        for method in ops.as_object().expect("ops").keys() {
            let method: reqwest::Method = method.to_uppercase().parse().expect("method");
            if path.starts_with("/api/") {
                let anonymous = s
                    .http
                    .request(method.clone(), format!("{}{concrete}", s.base))
                    .send()
                    .await
                    .expect("req");
                assert_eq!(
                    anonymous.status(),
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} without a token"
                );
                let bad = s
                    .http
                    .request(method.clone(), format!("{}{concrete}", s.base))
                    .bearer_auth("kl_wrong")
                    .send()
                    .await
                    .expect("req");
                assert_eq!(
                    bad.status(),
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} with a wrong token"
                );
            }
            // With credentials the route is there (whatever it answers, it is not an unknown route).
            let authed = s
                .http
                .request(method.clone(), format!("{}{concrete}", s.base))
                .bearer_auth(&s.token)
                .basic_auth(&s.key, Some(""))
                .send()
                .await
                .expect("req");
            assert_ne!(
                authed.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but not routed"
            );
            if !path.contains('{') {
                assert_ne!(
                    authed.status(),
                    StatusCode::NOT_FOUND,
                    "{method} {path} is documented but not routed"
                );
            }
        }
    }
}

#[tokio::test]
async fn admin_api_profiles_timeline_search_merges_and_sources() {
    let s = server().await;
    let batch = json!({"batch":[
        {"type":"page","anonymousId":"a1","messageId":"p1","timestamp":"2026-11-20T10:00:00Z"},
        {"type":"identify","userId":"u1","messageId":"i1","timestamp":"2026-11-21T10:00:00Z","traits":{"email":"Hans@Example.ch","city":"Zürich"}},
        {"type":"identify","userId":"u1","anonymousId":"a1","messageId":"i2","timestamp":"2026-11-22T10:00:00Z"},
        {"type":"track","event":"Order Completed","userId":"u1","messageId":"t1","timestamp":"2026-11-23T10:00:00Z"}
    ]});
    assert_eq!(s.post("/v1/batch", batch).await.0, StatusCode::OK);
    let (status, profile) = s
        .admin(
            reqwest::Method::GET,
            "/api/profiles/lookup?kind=email&value=HANS@example.ch",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_eq!(profile["traits"]["city"]["value"], "Zürich");
    let score = profile["quality_score"].as_u64().expect("quality score");
    assert!(score > 0 && score <= 100, "{profile}");
    let id = profile["id"].as_i64().expect("id");
    let (_, page1) = s
        .admin(
            reqwest::Method::GET,
            &format!("/api/profiles/{id}/timeline?limit=3"),
            None,
        )
        .await;
    let ids: Vec<&str> = page1["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["message_id"].as_str())
        .collect();
    assert_eq!(ids, ["t1", "i2", "i1"]);
    let cursor = page1["next_before"].as_str().expect("cursor");
    let (_, page2) = s
        .admin(
            reqwest::Method::GET,
            &format!("/api/profiles/{id}/timeline?limit=3&before={cursor}"),
            None,
        )
        .await;
    assert_eq!(page2["events"][0]["message_id"], "p1");
    assert_eq!(
        s.admin(
            reqwest::Method::GET,
            &format!("/api/profiles/{id}/timeline?before=garbage"),
            None
        )
        .await
        .1["field"],
        "before"
    );
    let (_, found) = s
        .admin(
            reqwest::Method::GET,
            "/api/profiles?trait=city&value=Z%C3%BCrich",
            None,
        )
        .await;
    assert_eq!(found["profiles"][0]["id"], id);
    let (status, body) = s
        .admin(
            reqwest::Method::GET,
            "/api/profiles/lookup?kind=nickname&value=x",
            None,
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("kind"))
    );
    assert_eq!(
        s.admin(reqwest::Method::GET, "/api/profiles/999", None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    let (_, merges) = s
        .admin(
            reqwest::Method::GET,
            &format!("/api/profiles/{id}/merges"),
            None,
        )
        .await;
    let merge_id = merges[0]["id"].as_i64().expect("merge");
    assert!(merges[0]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("anonymous_id=a1")));
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            &format!("/api/merges/{merge_id}/revert"),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("reason"))
    );
    let (status, _) = s
        .admin(
            reqwest::Method::POST,
            &format!("/api/merges/{merge_id}/revert"),
            Some(json!({"reason":"shared tablet"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, anon) = s
        .admin(
            reqwest::Method::GET,
            "/api/profiles/lookup?kind=anonymous_id&value=a1",
            None,
        )
        .await;
    assert_ne!(anon["id"], id);

    let (status, created) = s
        .admin(
            reqwest::Method::POST,
            "/api/sources",
            Some(json!({"name":"recipes-web","brand":"recipe-site","channel":"web"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let new_key = created["write_key"].as_str().expect("key").to_owned();
    let (status, body) = s
        .admin(
            reqwest::Method::POST,
            "/api/sources",
            Some(json!({"name":"x","brand":"y","chanel":"z"})),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("chanel"))
    );
    let r = s
        .http
        .post(format!("{}/v1/track", s.base))
        .basic_auth(&new_key, Some(""))
        .json(&json!({"event":"Recipe Viewed","anonymousId":"r1"}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        s.admin(
            reqwest::Method::DELETE,
            &format!("/api/write-keys/{new_key}"),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let r = s
        .http
        .post(format!("{}/v1/track", s.base))
        .basic_auth(&new_key, Some(""))
        .json(&json!({"event":"Recipe Viewed","anonymousId":"r1"}))
        .send()
        .await
        .expect("req");
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "a revoked key no longer works"
    );
}

#[tokio::test]
async fn export_then_erase_leaves_no_trace_in_the_database_file() {
    let s = server().await;
    let secret_mail = "geheim.person@example.de";
    let batch = json!({"batch":[
        {"type":"identify","userId":"erase-me-7","anonymousId":"anon-erase","traits":{"email":secret_mail,"first_name":"Gerda","phone":"+49 30 9876543"}},
        {"type":"track","event":"Order Completed","userId":"erase-me-7","properties":{"note":"Lieferung an Gerda"}},
        {"type":"identify","userId":"keep-me","traits":{"email":"bleibt@example.de"}}
    ]});
    assert_eq!(s.post("/v1/batch", batch).await.0, StatusCode::OK);
    let (_, profile) = s
        .admin(
            reqwest::Method::GET,
            "/api/profiles/lookup?kind=user_id&value=erase-me-7",
            None,
        )
        .await;
    let id = profile["id"].as_i64().expect("id");
    let (status, export) = s
        .admin(
            reqwest::Method::GET,
            &format!("/api/profiles/{id}/export"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(export["events"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        export["profile"]["identities"].as_array().map(Vec::len),
        Some(4)
    );

    let (status, erased) = s
        .admin(
            reqwest::Method::DELETE,
            &format!("/api/profiles/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{erased}");
    assert_eq!(erased["removed"]["events"], 2);
    assert_eq!(
        s.admin(
            reqwest::Method::GET,
            "/api/profiles/lookup?kind=user_id&value=erase-me-7",
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    // A late event with an erased identifier does not bring the person back.
    assert_eq!(
        s.post(
            "/v1/track",
            json!({"event":"Late","anonymousId":"new","context":{"traits":{"email":secret_mail}}})
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        s.admin(
            reqwest::Method::GET,
            "/api/profiles/lookup?kind=anonymous_id&value=new",
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    let (_, audit) = s.admin(reqwest::Method::GET, "/api/audit", None).await;
    let actions: Vec<&str> = audit
        .as_array()
        .expect("audit")
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert_eq!(actions, ["erase", "export"]);

    // No row, index page, free page or WAL frame of the database still holds the erased values.
    let mut bytes = Vec::new();
    for suffix in ["", "-wal"] {
        let path = PathBuf::from(format!("{}{suffix}", s.db.display()));
        if path.exists() {
            bytes.extend(std::fs::read(&path).expect("read db"));
        }
    }
    // Nor does any segment or index file of the event log.
    let log_dir = kreislauf_store_sqlite::events_dir(&s.db);
    let mut log_files = 0;
    for file in std::fs::read_dir(&log_dir).expect("event log dir") {
        bytes.extend(std::fs::read(file.expect("entry").path()).expect("read segment"));
        log_files += 1;
    }
    assert!(log_files > 0, "the event log was checked");
    for needle in [
        secret_mail,
        "erase-me-7",
        "anon-erase",
        "Gerda",
        "+49309876543",
    ] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle} still in the database or event log"
        );
    }
    assert!(
        bytes.windows(17).any(|w| w == b"bleibt@example.de"),
        "other people's data stays"
    );
}

#[tokio::test]
async fn metrics_health_and_readiness() {
    let s = server().await;
    s.post(
        "/v1/batch",
        json!({"batch":[track("m1"), {"type":"track","userId":"u"}]}),
    )
    .await;
    let text = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .expect("req")
        .text()
        .await
        .expect("text");
    assert!(
        text.contains(r#"kreislauf_events_accepted_total{source="wine-club-web"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"kreislauf_events_rejected_total{reason="invalid_event",source="wine-club-web"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains("kreislauf_http_request_duration_seconds_bucket"));
    assert_eq!(
        s.http
            .get(format!("{}/healthz", s.base))
            .send()
            .await
            .expect("req")
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        s.http
            .get(format!("{}/readyz", s.base))
            .send()
            .await
            .expect("req")
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn segments_are_defined_previewed_kept_current_and_exported() {
    let s = server_full(EngineConfig::default(), vec![], true).await;
    let send = |path: &str, body: &str| {
        s.http
            .post(format!("{}{path}", s.base))
            .bearer_auth(&s.token)
            .body(body.to_owned())
            .send()
    };
    let bad = send(
        "/api/audiences",
        "segments:\n  - id: x\n    condition: { path: trait.city, gt: fünfhundert }\n",
    )
    .await
    .expect("request");
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: Value = bad.json().await.expect("json");
    assert_eq!(body["code"], "invalid_definition");
    assert_eq!(body["field"], "segments[0].condition.gt", "{body}");

    let doc = r#"
computed_traits:
  - { name: wine_orders, aggregate: count, events: [Order Completed], where: { path: event.properties.category, eq: wine }, window: lifetime }
segments:
  - { id: wine-buyers, name: Wine buyers, condition: { path: computed.wine_orders, ge: 1 } }
"#;
    let applied = send("/api/audiences", doc).await.expect("request");
    assert_eq!(applied.status(), StatusCode::OK);
    for (user, category) in [("anna", "wine"), ("ben", "cheese"), ("cleo", "wine")] {
        let (status, _) = s
            .post(
                "/v1/identify",
                json!({"userId": user, "traits": {"first_name": user, "city": "Bern"}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = s
            .post(
                "/v1/track",
                json!({"userId": user, "event": "Order Completed", "properties": {"category": category}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    // Membership follows within moments of the events.
    let mut listed = Value::Null;
    for _ in 0..100 {
        listed = s.admin(reqwest::Method::GET, "/api/segments", None).await.1;
        if listed[0]["members"] == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(listed[0]["id"], "wine-buyers");
    assert_eq!(listed[0]["members"], 2, "{listed}");

    let preview = send(
        "/api/segments/preview",
        "id: everyone-in-bern\ncondition: { path: trait.city, eq: bern, ignore_case: true }\n",
    )
    .await
    .expect("request");
    let preview: Value = preview.json().await.expect("json");
    assert_eq!(preview["estimated_size"], 3, "{preview}");

    let csv = s
        .http
        .get(format!(
            "{}/api/segments/wine-buyers/export?traits=first_name,wine_orders",
            s.base
        ))
        .bearer_auth(&s.token)
        .send()
        .await
        .expect("request");
    assert_eq!(csv.status(), StatusCode::OK);
    let text = csv.text().await.expect("text");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "profile_id,first_name,wine_orders");
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[1].ends_with(",Anna,1"),
        "names are normalised at ingestion: {text}"
    );
    assert!(lines[2].ends_with(",Cleo,1"), "{text}");

    let missing = s
        .admin(reqwest::Method::GET, "/api/segments/nope/members", None)
        .await;
    assert_eq!(missing.0, StatusCode::NOT_FOUND);
}
