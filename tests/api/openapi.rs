//! The OpenAPI document at `/api/v1/openapi.json` against the routes the server answers: the
//! same set of (method, path), the documented security enforced, errors documented as
//! problem+json, every `$ref` resolvable. scripts/schemathesis.sh then tests the API against it.

use crate::helpers::{spawn_app, TestApp};
use serde_json::Value;
use std::collections::BTreeSet;

/// Every (method, path) crier serves. A route added to the router must be added here, and this
/// test then fails until the document lists it too (and the other way round).
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/status"),
    ("GET", "/api/v1/openapi.json"),
    ("POST", "/api/v1/incidents"),
    ("GET", "/api/v1/incidents"),
    ("GET", "/api/v1/incidents/{id}"),
    ("POST", "/api/v1/incidents/{id}/updates"),
    ("POST", "/api/v1/incidents/{id}/resolve"),
    ("POST", "/api/v1/incidents/{id}/reopen"),
    ("POST", "/api/v1/incidents/{id}/publish"),
    ("GET", "/api/v1/incidents/{id}/deliveries"),
    ("GET", "/api/v1/incidents/{id}/deliveries/stream"),
    ("POST", "/api/v1/incidents/{id}/deliveries/retry"),
    ("POST", "/api/v1/triggers"),
    ("POST", "/api/v1/hooks/alertmanager"),
    ("POST", "/api/v1/hooks/grafana"),
    ("POST", "/api/v1/hooks/twilio/{channel}"),
    ("POST", "/api/v1/hooks/twilio/{channel}/inbound"),
    ("POST", "/api/v1/notices"),
    ("GET", "/api/v1/notices"),
    ("GET", "/api/v1/notices/{id}"),
    ("DELETE", "/api/v1/notices/{id}"),
    ("POST", "/api/v1/templates"),
    ("GET", "/api/v1/templates"),
    ("GET", "/api/v1/templates/{key}"),
    ("PATCH", "/api/v1/templates/{key}"),
    ("DELETE", "/api/v1/templates/{key}"),
    ("POST", "/api/v1/preview"),
    ("GET", "/api/v1/components"),
    ("PUT", "/api/v1/components/{name}"),
    ("POST", "/api/v1/subscribers"),
    ("GET", "/api/v1/subscribers"),
    ("DELETE", "/api/v1/subscribers/{key}"),
    ("PATCH", "/api/v1/subscribers/{key}"),
    ("POST", "/api/v1/subscribers/import"),
    ("POST", "/api/v1/unsubscribe/{token}"),
    ("POST", "/api/v1/backup"),
    ("POST", "/api/v1/login"),
    ("POST", "/api/v1/logout"),
    ("POST", "/api/v1/session"),
    ("GET", "/api/v1/session"),
    ("POST", "/api/v1/me/totp"),
    ("POST", "/api/v1/me/totp/confirm"),
    ("POST", "/api/v1/me/totp/disable"),
    ("DELETE", "/api/v1/users/{name}/totp"),
    ("GET", "/api/v1/me"),
    ("POST", "/api/v1/me/password"),
    ("GET", "/api/v1/tokens"),
    ("POST", "/api/v1/tokens"),
    ("DELETE", "/api/v1/tokens/{id}"),
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("PATCH", "/api/v1/users/{name}"),
    ("DELETE", "/api/v1/users/{name}"),
    ("POST", "/api/v1/users/{name}/password"),
    ("GET", "/api/v1/audit"),
    ("GET", "/api/v1/audit/verify"),
    ("GET", "/api/v1/approvals"),
    ("POST", "/api/v1/approvals/{id}/approve"),
    ("POST", "/api/v1/approvals/{id}/reject"),
];

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

async fn document(app: &TestApp) -> Value {
    let r = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the document is readable without a token");
    assert_eq!(r.headers()["content-type"], "application/json");
    r.json().await.unwrap()
}

/// The documented (method, path) pairs.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            ops.insert((method.to_uppercase(), path.clone()));
        }
    }
    ops
}

/// A concrete URL for a templated path: each `{param}` becomes `x`.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => in_param = true,
            '}' => {
                in_param = false;
                out.push('x');
            }
            _ if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

/// Sends `method path` (no body), with or without the admin token: (status, problem detail).
async fn probe(app: &TestApp, method: &str, path: &str, token: bool) -> (u16, String) {
    let mut req = app.client.request(
        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
        app.url(&concrete(path)),
    );
    if token {
        req = req.bearer_auth(&app.token);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let detail = r
        .json::<Value>()
        .await
        .ok()
        .and_then(|v| v["detail"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, detail)
}

fn is_fallback(status: u16, detail: &str) -> bool {
    status == 404 && detail.starts_with("no such endpoint")
}

#[tokio::test]
async fn the_document_lists_exactly_the_routes_the_server_answers() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");

    let listed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let documented = operations(&doc);
    let undocumented: Vec<_> = listed.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&listed).collect();
    assert!(
        undocumented.is_empty(),
        "served but missing from /api/v1/openapi.json: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "documented but not in this test's list of served routes: {unserved:?}"
    );

    // The server answers each listed route itself (not the not-found fallback, not 405), and on
    // a documented path every other method is 405: no method is served undocumented.
    let paths: BTreeSet<&str> = ROUTES.iter().map(|(_, p)| *p).collect();
    for path in paths {
        for method in METHODS {
            let (status, detail) = probe(&app, method, path, true).await;
            if listed.contains(&(method.to_owned(), path.to_owned())) {
                assert!(
                    !is_fallback(status, &detail) && status != 405,
                    "{method} {path} is documented but not served: {status} {detail}"
                );
            } else {
                assert_eq!(
                    status, 405,
                    "{method} {path} answers {status} ({detail}) but is not documented"
                );
            }
        }
    }
    // A path that is not documented is not served either.
    let (status, detail) = probe(&app, "GET", "/api/v1/nothing-here", true).await;
    assert!(is_fallback(status, &detail), "{status} {detail}");
}

#[tokio::test]
async fn the_documented_security_is_what_the_server_enforces() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let mut secured = 0;
    for (method, path) in operations(&doc) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        let needs_token = op["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
        let (status, detail) = probe(&app, &method, &path, false).await;
        if needs_token {
            secured += 1;
            assert_eq!(
                status, 401,
                "{method} {path} declares bearer security: {detail}"
            );
            assert!(
                op["responses"]["401"].is_object(),
                "{method} {path} does not document its 401"
            );
        } else {
            assert_ne!(status, 401, "{method} {path} is documented as public");
        }
    }
    assert!(secured >= 20, "only {secured} operations declare security");
}

#[tokio::test]
async fn errors_are_documented_as_problem_json_and_every_reference_resolves() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let mut ids = BTreeSet::new();
    for (method, path) in operations(&doc) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        let id = op["operationId"].as_str().unwrap_or_default().to_owned();
        assert!(!id.is_empty(), "{method} {path} has no operationId");
        assert!(ids.insert(id.clone()), "operationId {id} is used twice");
        for (status, response) in op["responses"].as_object().unwrap() {
            if status.starts_with('4') || status.starts_with('5') {
                let content = response["content"]
                    .as_object()
                    .unwrap_or_else(|| panic!("{method} {path} {status} documents no content"));
                let keys: Vec<_> = content.keys().collect();
                assert_eq!(
                    keys,
                    ["application/problem+json"],
                    "{method} {path} {status}"
                );
                assert_eq!(
                    content["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{method} {path} {status}"
                );
            }
        }
    }
    // Every `$ref` points at a schema the document defines.
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 50, "{} references", refs.len());
    for r in refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected reference {r}"));
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{r} is not defined"
        );
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("$ref", Value::String(s)) => out.push(s.clone()),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}
