//! The route × role table (src/api/authz.rs) against the running server: every documented
//! operation, called with every role, no credential, an expired token, a revoked token and a
//! disabled user's token, answers as the table says. A documented operation without a row (or a
//! row without an operation) fails.

use crate::helpers::{spawn_app, TestApp};
use chrono::Utc;
use crier::api::authz::{rule_for, Access, TABLE};
use crier::domain::{ApiToken, Role, User, UserName};
use crier::store::port::{Tokens, Users};
use serde_json::Value;
use std::collections::BTreeSet;
use ulid::Ulid;

/// The documented (method, path) pairs.
pub fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            ops.insert((method.to_uppercase(), path.clone()));
        }
    }
    ops
}

pub async fn document(app: &TestApp) -> Value {
    app.client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A templated path made concrete: each `{param}` becomes `x`.
pub fn concrete(path: &str) -> String {
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

/// Adds a user directly in the store (no password anyone knows).
pub async fn add_user(app: &TestApp, name: &str, role: Role) -> UserName {
    let user = User {
        name: UserName::parse(name).unwrap(),
        display_name: name.into(),
        role,
        email: None,
        phone: None,
        disabled: false,
        created_at: Utc::now(),
    };
    app.store
        .add_user(user.clone(), "$no-password")
        .await
        .unwrap();
    user.name
}

/// Makes a token directly in the store; returns its secret and id.
pub async fn add_token(
    app: &TestApp,
    owner: &UserName,
    role: Role,
    expires_at: Option<chrono::DateTime<Utc>>,
) -> (String, Ulid) {
    let (secret, hash) = crier::credentials::new_token().unwrap();
    let token = ApiToken {
        id: Ulid::new(),
        name: "test".into(),
        owner: owner.clone(),
        role,
        created_at: Utc::now(),
        expires_at,
        last_used_at: None,
        revoked_at: None,
    };
    app.store.add_token(&token, &hash).await.unwrap();
    (secret, token.id)
}

async fn call(app: &TestApp, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut req = app.client.request(
        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
        app.url(&concrete(path)),
    );
    if let Some(t) = token {
        req = req.bearer_auth(t);
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

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cred {
    None,
    Role(Role),
    Bootstrap,
    Expired,
    Revoked,
    Disabled,
}

#[tokio::test]
async fn every_operation_answers_every_credential_as_the_table_says() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let ops = operations(&doc);

    // The table and the document name the same operations.
    let missing: Vec<_> = ops
        .iter()
        .filter(|(m, p)| rule_for(m, p).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "operations without a row in authz::TABLE: {missing:?}"
    );
    let stale: Vec<_> = TABLE
        .iter()
        .filter(|r| !ops.contains(&(r.method.to_owned(), r.path.to_owned())))
        .map(|r| (r.method, r.path))
        .collect();
    assert!(
        stale.is_empty(),
        "rows for operations the server does not serve: {stale:?}"
    );

    let mut owners = Vec::new();
    for role in Role::ALL {
        owners.push((role, add_user(&app, &format!("u-{role}"), role).await));
    }
    let admin_user = owners[3].1.clone();
    let gone = add_user(&app, "u-disabled", Role::Admin).await;

    let mut checked = 0;
    for (method, path) in &ops {
        let rule = rule_for(method, path).unwrap();
        let (baseline, _) = call(&app, method, path, None).await;
        let creds = [
            Cred::None,
            Cred::Role(Role::Viewer),
            Cred::Role(Role::Responder),
            Cred::Role(Role::Publisher),
            Cred::Role(Role::Admin),
            Cred::Bootstrap,
            Cred::Expired,
            Cred::Revoked,
            Cred::Disabled,
        ];
        for cred in creds {
            // A fresh token for every call: logout and revoke use theirs up.
            let token = match cred {
                Cred::None => None,
                Cred::Bootstrap => Some(app.token.clone()),
                Cred::Role(r) => {
                    let owner = &owners.iter().find(|(o, _)| *o == r).unwrap().1;
                    Some(add_token(&app, owner, r, None).await.0)
                }
                Cred::Expired => Some(
                    add_token(
                        &app,
                        &admin_user,
                        Role::Admin,
                        Some(Utc::now() - chrono::Duration::seconds(1)),
                    )
                    .await
                    .0,
                ),
                Cred::Revoked => {
                    let (t, id) = add_token(&app, &admin_user, Role::Admin, None).await;
                    app.store.revoke_token(id, Utc::now()).await.unwrap();
                    Some(t)
                }
                Cred::Disabled => {
                    let (t, _) = add_token(&app, &gone, Role::Admin, None).await;
                    app.store
                        .change_user(&gone, |u| {
                            let mut u = u.clone();
                            u.disabled = true;
                            Ok(u)
                        })
                        .await
                        .unwrap();
                    Some(t)
                }
            };
            let (status, detail) = call(&app, method, path, token.as_deref()).await;
            let what = format!("{method} {path} with {cred:?}: {status} {detail}");
            match (rule.access, cred) {
                (Access::Public, _) => {
                    assert!(status != 401 && status != 403, "public: {what}")
                }
                // A hook checks its own credential: monitoring hooks take the bootstrap token
                // or a publisher's; anything else is answered as no credential is.
                (Access::Hook, Cred::Bootstrap | Cred::Role(Role::Publisher | Role::Admin))
                    if path.contains("twilio") =>
                {
                    assert_eq!(status, baseline, "hook: {what}")
                }
                (Access::Hook, Cred::Bootstrap | Cred::Role(Role::Publisher | Role::Admin)) => {
                    assert!(status != 401 && status != 403, "hook: {what}")
                }
                (Access::Hook, _) => assert_eq!(status, baseline, "hook: {what}"),
                (Access::Min(_), Cred::None | Cred::Expired | Cred::Revoked | Cred::Disabled) => {
                    assert_eq!(status, 401, "{what}")
                }
                (Access::Min(_), Cred::Bootstrap) => {
                    assert!(status != 401 && status != 403, "{what}")
                }
                (Access::Min(needs), Cred::Role(r)) if r < needs => {
                    assert_eq!(status, 403, "{what}");
                    assert!(detail.contains(needs.as_str()), "{what}");
                }
                (Access::Min(_), Cred::Role(_)) => {
                    assert!(status != 401 && status != 403, "{what}")
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 9 * 45, "only {checked} calls");
}

#[tokio::test]
async fn viewers_see_counts_but_never_subscriber_addresses() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/api/v1/subscribers",
            serde_json::json!({"email": "ops@example.com"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let viewer = add_user(&app, "vera", Role::Viewer).await;
    let (token, _) = add_token(&app, &viewer, Role::Viewer, None).await;
    let get = |path: &str| app.client.get(app.url(path)).bearer_auth(&token).send();
    assert_eq!(get("/api/v1/subscribers").await.unwrap().status(), 403);
    // The audit log, which viewers read, names the subscriber by id.
    let text = get("/api/v1/audit").await.unwrap().text().await.unwrap();
    assert!(text.contains(&id), "{text}");
    assert!(!text.contains("ops@example.com"), "{text}");
    // Removing by address records the id, not the address.
    let r = app.delete("/api/v1/subscribers/ops@example.com").await;
    assert_eq!(r.status, 200);
    let text = get("/api/v1/audit").await.unwrap().text().await.unwrap();
    assert!(!text.contains("ops@example.com"), "{text}");
}

#[tokio::test]
async fn a_responder_drafts_and_a_publisher_publishes() {
    let app = spawn_app().await;
    let resp = add_user(&app, "rita", Role::Responder).await;
    let (rt, _) = add_token(&app, &resp, Role::Responder, None).await;
    let publ = add_user(&app, "pekka", Role::Publisher).await;
    let (pt, _) = add_token(&app, &publ, Role::Publisher, None).await;
    let post = |token: &str, path: &str, body: Value| {
        app.client
            .post(app.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let open = serde_json::json!({"title": "Slow check-in", "impact": "minor", "message": "Investigating"});
    // Issue 13 (scenario 2) changed this contract: a responder's publishing write was refused
    // with 403; it is now held for a publisher's approval (202, nothing published; see
    // tests/api/approval.rs). What stays refused with 403, writing nothing, is a write by a
    // token below responder (here the responder's own viewer-scoped token).
    let (vt, _) = add_token(&app, &resp, Role::Viewer, None).await;
    let before = app.checksum().await;
    let r = post(&vt, "/api/v1/incidents", open.clone()).await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        app.checksum().await,
        before,
        "a refused publish writes nothing"
    );
    let r = post(&rt, "/api/v1/incidents", open.clone()).await.unwrap();
    assert_eq!(r.status(), 202);
    let held = r.text().await.unwrap();
    assert!(held.contains("draft"), "{held}");
    assert!(held.contains("pending_approval"), "{held}");
    let listed = app.get("/api/v1/incidents").await;
    assert_eq!(listed.body, serde_json::json!([]), "nothing published");

    let mut draft = open.clone();
    draft["draft"] = Value::Bool(true);
    let r = post(&rt, "/api/v1/incidents", draft).await.unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    let id = v["id"].as_str().unwrap();
    assert_eq!(v["updates"][0]["author"], "rita");

    let r = post(&rt, &format!("/api/v1/incidents/{id}/publish"), Value::Null)
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = post(
        &pt,
        &format!("/api/v1/incidents/{id}/publish"),
        serde_json::json!({}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    // The author is shown to staff, never on the public status.
    let public = app
        .client
        .get(app.url("/api/v1/status"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(public.contains("Slow check-in"), "{public}");
    assert!(
        !public.contains("rita") && !public.contains("author"),
        "{public}"
    );
}

#[tokio::test]
async fn a_demoted_users_tokens_are_capped_at_the_new_role() {
    let app = spawn_app().await;
    let name = add_user(&app, "maria", Role::Admin).await;
    let (t, _) = add_token(&app, &name, Role::Admin, None).await;
    let users = || {
        app.client
            .get(app.url("/api/v1/users"))
            .bearer_auth(&t)
            .send()
    };
    assert_eq!(users().await.unwrap().status(), 200);
    let r = app
        .raw(
            reqwest::Method::PATCH,
            "/api/v1/users/maria",
            br#"{"role":"viewer"}"#.to_vec(),
            Some("application/json"),
            Some(&app.token),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(users().await.unwrap().status(), 403);
}
