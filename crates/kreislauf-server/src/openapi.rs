//! The OpenAPI 3.1 document served at `/api/openapi.json`.
//!
//! Written as data rather than derived, so that storage types stay free of HTTP annotations; the test
//! `openapi_lists_every_route` in `tests/http.rs` keeps it in step with the router.

use axum::Json;
use serde_json::{json, Map, Value};

/// Every documented operation: (method, path, summary, tag).
pub(crate) const OPERATIONS: &[(&str, &str, &str, &str)] = &[
    (
        "post",
        "/v1/track",
        "Record an action (Segment track). Also /v1/t.",
        "ingestion",
    ),
    (
        "post",
        "/v1/identify",
        "Tie a user to traits (Segment identify). Also /v1/i.",
        "ingestion",
    ),
    (
        "post",
        "/v1/page",
        "Record a page view. Also /v1/p.",
        "ingestion",
    ),
    (
        "post",
        "/v1/screen",
        "Record a screen view. Also /v1/s.",
        "ingestion",
    ),
    (
        "post",
        "/v1/group",
        "Associate a user with a group. Also /v1/g.",
        "ingestion",
    ),
    (
        "post",
        "/v1/alias",
        "Link a previous id to a user id. Also /v1/a.",
        "ingestion",
    ),
    (
        "post",
        "/v1/batch",
        "Send up to 500 KB of events at once. Also /v1/b and /v1/import.",
        "ingestion",
    ),
    ("get", "/api/sources", "List sources.", "sources"),
    (
        "post",
        "/api/sources",
        "Create a source; answers with its first write key.",
        "sources",
    ),
    ("get", "/api/sources/{id}", "One source.", "sources"),
    (
        "patch",
        "/api/sources/{id}",
        "Change a source's name, brand, channel, identity mapping or allowed origins.",
        "sources",
    ),
    (
        "post",
        "/api/sources/{id}/write-keys",
        "Add a write key to a source.",
        "sources",
    ),
    ("get", "/api/write-keys", "List write keys.", "sources"),
    (
        "delete",
        "/api/write-keys/{key}",
        "Revoke a write key.",
        "sources",
    ),
    (
        "get",
        "/api/profiles",
        "Search profiles by trait: ?trait=city&value=Zürich.",
        "profiles",
    ),
    (
        "get",
        "/api/profiles/lookup",
        "Find a profile by identifier: ?kind=email&value=hans@example.ch.",
        "profiles",
    ),
    (
        "get",
        "/api/profiles/{id}",
        "A unified profile: members, identities, traits with provenance.",
        "profiles",
    ),
    (
        "delete",
        "/api/profiles/{id}",
        "Erase a person (GDPR art. 17).",
        "privacy",
    ),
    (
        "get",
        "/api/profiles/{id}/timeline",
        "Events across all brands, newest first; page with ?before=<next_before>.",
        "profiles",
    ),
    (
        "get",
        "/api/profiles/{id}/merges",
        "Merges into or out of the profile, with reasons.",
        "profiles",
    ),
    (
        "get",
        "/api/profiles/{id}/conflicts",
        "Identity links the rules refused.",
        "profiles",
    ),
    (
        "get",
        "/api/profiles/{id}/export",
        "Everything stored about the person (GDPR art. 15/20).",
        "privacy",
    ),
    (
        "post",
        "/api/profiles/{id}/erase",
        "Erase a person (same as DELETE /api/profiles/{id}).",
        "privacy",
    ),
    (
        "post",
        "/api/merges/{id}/revert",
        "Revert a merge: body {\"reason\": \"…\"}.",
        "profiles",
    ),
    (
        "get",
        "/api/audit",
        "The audit log, newest first.",
        "privacy",
    ),
    (
        "get",
        "/api/stats",
        "Counts of events, profiles and identities.",
        "operations",
    ),
    ("get", "/api/quality/reviews", "Duplicate pairs for a person to decide (?status=pending|accepted|rejected), with evidence.", "quality"),
    ("post", "/api/quality/reviews/{id}/accept", "Confirm a pair: the profiles are merged (reversibly) and the decision kept.", "quality"),
    ("post", "/api/quality/reviews/{id}/reject", "Two different people: kept, and never proposed again.", "quality"),
    ("get", "/api/quality/gate", "Campaign gate: how many profiles may be contacted on ?channel=email|sms|post (&min_score=, &allow_suspicious=), and why the others may not.", "quality"),
    ("get", "/api/quality/report", "Data-quality report: completeness and validity per field and source, worst problems, likely duplicates (?country=CH sets the default region).", "quality"),
    ("post", "/api/quality/dedupe", "Find duplicate profiles; body {\"apply\": true} merges those at or above auto_merge_threshold (default 0.99) reversibly and lists the rest for review.", "quality"),
    ("post", "/api/audiences", "Apply a definition document (YAML or JSON body with `computed_traits` and `segments`); changed definitions get a new version and profiles are recomputed. Invalid documents answer 400 naming each bad field.", "segments"),
    ("get", "/api/segments", "Segments in force with their current member counts.", "segments"),
    ("post", "/api/segments/preview", "Estimated size and a sample of members of an unsaved segment definition (body; ?scan= profiles to evaluate, ?sample= size).", "segments"),
    ("get", "/api/segments/{id}", "A segment: definition, stored versions, member count over time.", "segments"),
    ("get", "/api/segments/{id}/members", "Members in profile-id order (?after=, ?limit=).", "segments"),
    ("get", "/api/segments/{id}/export", "Members as CSV, streamed, with the traits and computed traits named in ?traits=a,b.", "segments"),
    ("get", "/api/computed-traits", "Computed traits in force.", "segments"),
    ("get", "/api/profiles/{id}/audience", "A profile's computed-trait values, segments and next time-based re-evaluation.", "segments"),
    ("get", "/healthz", "Liveness.", "operations"),
    (
        "get",
        "/readyz",
        "Readiness: the store answers.",
        "operations",
    ),
    ("get", "/metrics", "Prometheus metrics.", "operations"),
];

fn operation(path: &str, summary: &str, tag: &str) -> Value {
    let ingestion = tag == "ingestion";
    let mut op = json!({
        "summary": summary,
        "tags": [tag],
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}},
            "400": {"description": "Invalid input; the body names the field (and, in a batch, each rejected event's index).", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "401": {"description": "Missing or invalid credentials.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
    });
    if ingestion {
        op["security"] = json!([{"writeKey": []}]);
        op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"type": "object"}}, "text/plain": {"schema": {"type": "string"}}}});
        op["responses"]["413"] = json!({"description": "Event over 32 KB or batch over 500 KB.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
        op["responses"]["429"] = json!({"description": "Overloaded; retry after the Retry-After header.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    } else if path.starts_with("/api/") {
        op["security"] = json!([{"bearer": []}]);
        op["responses"]["404"] = json!({"description": "Not found.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    } else {
        op["security"] = json!([]);
    }
    let params: Vec<Value> = path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    if !params.is_empty() {
        op["parameters"] = Value::Array(params);
    }
    op
}

/// Builds the document.
pub(crate) fn build() -> Value {
    let mut paths = Map::new();
    for (method, path, summary, tag) in OPERATIONS {
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = operation(path, summary, tag);
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Kreislauf API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Segment-compatible ingestion and the Kreislauf admin API."},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "writeKey": {"type": "http", "scheme": "basic", "description": "The source's write key as user name, empty password (or writeKey in the body)."},
                "bearer": {"type": "http", "scheme": "bearer", "description": "An admin token from `kreislauf token create`."}
            },
            "schemas": {
                "Error": {"type": "object", "required": ["success", "code", "message"], "properties": {
                    "success": {"type": "boolean", "const": false},
                    "code": {"type": "string", "description": "Stable snake_case error code."},
                    "message": {"type": "string"},
                    "field": {"type": "string", "description": "The offending field (dotted path)."},
                    "accepted": {"type": "integer", "description": "Events of the batch stored despite the errors."},
                    "errors": {"type": "array", "items": {"type": "object", "properties": {
                        "index": {"type": "integer"}, "field": {"type": "string"}, "message": {"type": "string"}}}}
                }}
            }
        }
    })
}

pub(crate) async fn document() -> Json<Value> {
    Json(build())
}
