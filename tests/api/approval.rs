//! Two-person approval: a write to a channel that requires approval waits as
//! `pending_approval` (nothing sent, staff told); another publisher approves it — published once,
//! counted at the provider (a wiremock webhook) — or rejects it with a reason (nothing sent);
//! the author cannot decide their own write; an admin breaks glass only with a reason; each
//! decision is one audit entry. The CLI flow runs the real binary.

use crate::authz::{add_token, add_user};
use crate::helpers::{bin, env, spawn_app_with, TestApp};
use crier::domain::audit::AuditEntry;
use crier::domain::audit::AuditFilter;
use crier::domain::Role;
use crier::store::port::{Approvals, Audit, Components, Outbox};
use serde_json::{json, Value};
use std::time::Duration;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET_ENV: &str = "CRIER_TEST_APPROVAL_SECRET";

/// A team: the app, its wiremock "provider" behind the `public` webhook channel (which
/// requires approval), a `staff` log channel told of approvals, and two publishers' tokens.
struct Team {
    app: TestApp,
    provider: MockServer,
    maria: String,
    jussi: String,
}

async fn team() -> Team {
    team_with(|_| {}).await
}

async fn team_with(configure: impl FnOnce(&mut crier::config::Config)) -> Team {
    // Not from wiremock's pool: a pooled server can be handed on while an earlier test's crier
    // still sends to it, and its requests would be counted here.
    let provider = MockServer::builder().start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&provider)
        .await;
    let public = format!(
        "kind = \"webhook\"\nurl = \"{}/hook\"\nsecret_env = \"{SECRET_ENV}\"\nrate = \"100/s\"\napproval = \"required\"\n",
        provider.uri()
    );
    let staff = "kind = \"log\"\naudience = \"fixed\"\n";
    let app = spawn_app_with(&[("public", &public), ("staff", staff)], |c| {
        c.approval.notify = vec!["staff".into()];
        c.env = env(&[(SECRET_ENV, "approval-test-secret")]);
        configure(c);
    })
    .await;
    let maria = add_user(&app, "maria", Role::Publisher).await;
    let jussi = add_user(&app, "jussi", Role::Publisher).await;
    let (maria, _) = add_token(&app, &maria, Role::Publisher, None).await;
    let (jussi, _) = add_token(&app, &jussi, Role::Publisher, None).await;
    Team {
        app,
        provider,
        maria,
        jussi,
    }
}

async fn call(
    app: &TestApp,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app
        .client
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            app.url(path),
        )
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn audit(app: &TestApp, action: &str) -> Vec<AuditEntry> {
    app.store
        .audit_entries(&AuditFilter {
            action: Some(action.into()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .0
}

/// Lines the `staff` log channel sent, polled until there are `n` (bounded, no fixed sleep).
async fn staff_notes(app: &TestApp, n: usize) -> Vec<String> {
    let path = app.dir.path().join("data/outbox/staff.jsonl");
    for _ in 0..400 {
        let lines: Vec<String> = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        if lines.len() >= n {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the staff channel did not get {n} notes");
}

/// Requests the provider received, polled until there are `n` (bounded).
async fn provider_requests(provider: &MockServer, n: usize) -> Vec<wiremock::Request> {
    for _ in 0..400 {
        let reqs = provider.received_requests().await.unwrap();
        if reqs.len() >= n {
            return reqs;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the provider did not receive {n} requests");
}

/// Deliveries the public channel has for an incident, polled until every one is final.
async fn delivered_to_public(app: &TestApp, id: &str) -> u64 {
    for _ in 0..400 {
        let r = app.get(&format!("/api/v1/incidents/{id}/deliveries")).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        if r.body["complete"] == true {
            return r.body["channels"]["public"]["delivered"]
                .as_u64()
                .unwrap_or(0);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("deliveries of {id} did not complete");
}

const OPEN: fn() -> Value = || {
    json!({"title": "Check-in down at HEL", "impact": "major",
           "message": "Check-in is down; staff check passengers in by hand."})
};

#[tokio::test]
async fn the_author_cannot_approve_and_another_publisher_publishes_it_exactly_once() {
    let Team {
        app,
        provider,
        maria,
        jussi,
    } = team().await;

    // Held: 202, nothing exists, nothing is queued, staff are told.
    let (s, held) = call(&app, &maria, "POST", "/api/v1/incidents", Some(OPEN())).await;
    assert_eq!(s, 202, "{held}");
    assert_eq!(held["state"], "pending_approval");
    assert_eq!(held["author"], "maria");
    assert!(
        held["reasons"][0].as_str().unwrap().contains("public"),
        "{held}"
    );
    let approval = held["id"].as_str().unwrap().to_owned();
    let incident = held["incident_id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get(&format!("/api/v1/incidents/{incident}"))
            .await
            .status,
        404
    );
    assert_eq!(app.get("/api/v1/incidents").await.body, json!([]));
    let status = app.get("/api/v1/status").await;
    assert!(
        !status.body.to_string().contains("Check-in down"),
        "{:?}",
        status.body
    );
    assert!(app
        .store
        .broadcasts_of_all()
        .await
        .unwrap()
        .iter()
        .all(|b| b.channel != "public"));
    let notes = staff_notes(&app, 1).await;
    assert!(
        notes[0].contains("maria wants to open the incident")
            && notes[0].contains("needs a second person's approval")
            && notes[0].contains(&approval),
        "{notes:?}"
    );
    let (s, list) = call(&app, &jussi, "GET", "/api/v1/approvals", None).await;
    assert_eq!(s, 200);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["id"], approval.as_str());

    // The author may not decide.
    let approve = format!("/api/v1/approvals/{approval}/approve");
    let (s, e) = call(&app, &maria, "POST", &approve, None).await;
    assert_eq!(s, 403, "{e}");
    assert!(
        e["detail"].as_str().unwrap().contains("you wrote this")
            && e["detail"]
                .as_str()
                .unwrap()
                .contains("another publisher or admin"),
        "{e}"
    );
    assert_eq!(
        app.get(&format!("/api/v1/incidents/{incident}"))
            .await
            .status,
        404
    );

    // Another publisher approves: published as if sent directly.
    let (s, ok) = call(&app, &jussi, "POST", &approve, None).await;
    assert_eq!(s, 200, "{ok}");
    assert_eq!(ok["approval"]["state"], "approved");
    assert_eq!(ok["approval"]["decided_by"], "jussi");
    assert_eq!(ok["published"]["id"], incident.as_str());
    assert_eq!(ok["published"]["updates"][0]["author"], "maria");
    // Approving again, by anyone, is a conflict and changes nothing.
    let id: ulid::Ulid = approval.parse().unwrap();
    let before = app.store.approval(id).await.unwrap();
    for token in [&jussi, &app.token, &maria] {
        let (s, e) = call(&app, token, "POST", &approve, None).await;
        assert_eq!(s, 409, "{e}");
        assert!(
            e["detail"]
                .as_str()
                .unwrap()
                .contains("already approved by jussi"),
            "{e}"
        );
    }
    assert_eq!(app.store.approval(id).await.unwrap(), before);
    let shown = app.get(&format!("/api/v1/incidents/{incident}")).await;
    assert_eq!(shown.body["updates"].as_array().unwrap().len(), 1);

    // One fan-out: one broadcast, one delivery, one request at the provider.
    assert_eq!(delivered_to_public(&app, &incident).await, 1);
    let public: Vec<_> = app
        .store
        .broadcasts_of_all()
        .await
        .unwrap()
        .into_iter()
        .filter(|b| b.channel == "public")
        .collect();
    assert_eq!(public.len(), 1, "{public:?}");
    let reqs = provider_requests(&provider, 1).await;
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let doc: Value = serde_json::from_slice(&reqs[0].body).unwrap();
    assert!(doc.to_string().contains("Check-in is down"), "{doc}");
    let (_, pending) = call(&app, &jussi, "GET", "/api/v1/approvals", None).await;
    assert_eq!(pending, json!([]));

    let approvals = audit(&app, "approval.approve").await;
    assert_eq!(approvals.len(), 1, "{approvals:?}");
    assert_eq!(approvals[0].actor, "jussi");
    assert!(approvals[0].summary.contains("maria"), "{:?}", approvals[0]);
    assert!(app.store.verify_audit().await.is_ok());
}

#[tokio::test]
async fn a_rejected_update_sends_nothing_and_staff_see_the_reason() {
    let Team {
        app,
        provider,
        maria,
        jussi,
    } = team().await;
    // An incident already public (an admin broke glass to open it).
    let mut open = OPEN();
    open["break_glass"] = json!(true);
    open["reason"] = json!("the duty manager is on a plane");
    let r = app.post("/api/v1/incidents", open).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let incident = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(delivered_to_public(&app, &incident).await, 1);

    let (s, held) = call(
        &app,
        &maria,
        "POST",
        &format!("/api/v1/incidents/{incident}/resolve"),
        Some(json!({"message": "Fixed; the supplier's fault."})),
    )
    .await;
    assert_eq!(s, 202, "{held}");
    assert_eq!(held["action"], "resolve");
    let approval = held["id"].as_str().unwrap().to_owned();
    // The staff channel got the opening (it is one of the channels) and the request.
    staff_notes(&app, 2).await;

    let reject = format!("/api/v1/approvals/{approval}/reject");
    // A reason is required, and the author cannot reject either.
    let (s, _) = call(&app, &jussi, "POST", &reject, Some(json!({"reason": "  "}))).await;
    assert_eq!(s, 422);
    let (s, _) = call(
        &app,
        &maria,
        "POST",
        &reject,
        Some(json!({"reason": "oops"})),
    )
    .await;
    assert_eq!(s, 403);
    let why = "Do not blame the supplier in public.";
    let (s, a) = call(&app, &jussi, "POST", &reject, Some(json!({"reason": why}))).await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["state"], "rejected");
    assert_eq!(a["reason"], why);
    assert_eq!(a["decided_by"], "jussi");
    // Decided: approving or rejecting again is a conflict.
    let (s, _) = call(
        &app,
        &app.token,
        "POST",
        &format!("/api/v1/approvals/{approval}/approve"),
        None,
    )
    .await;
    assert_eq!(s, 409);
    let (s, _) = call(&app, &jussi, "POST", &reject, Some(json!({"reason": why}))).await;
    assert_eq!(s, 409);

    // Nothing of it reached the incident, the public status or the provider.
    let shown = app.get(&format!("/api/v1/incidents/{incident}")).await;
    assert_eq!(shown.body["status"], "investigating");
    assert_eq!(shown.body["updates"].as_array().unwrap().len(), 1);
    let status = app.get("/api/v1/status").await;
    assert!(
        !status.body.to_string().contains("supplier"),
        "{:?}",
        status.body
    );
    let public = app
        .store
        .broadcasts_of_all()
        .await
        .unwrap()
        .into_iter()
        .filter(|b| b.channel == "public")
        .count();
    assert_eq!(public, 1, "only the break-glass opening");
    assert_eq!(provider.received_requests().await.unwrap().len(), 1);

    // Staff see the reason, in the list and on the staff channel.
    let (_, rejected) = call(
        &app,
        &jussi,
        "GET",
        "/api/v1/approvals?state=rejected",
        None,
    )
    .await;
    assert_eq!(rejected[0]["reason"], why, "{rejected}");
    let notes = staff_notes(&app, 3).await;
    assert!(
        notes[2].contains("jussi rejected maria's request to resolve") && notes[2].contains(why),
        "{notes:?}"
    );

    let rejections = audit(&app, "approval.reject").await;
    assert_eq!(rejections.len(), 1, "{rejections:?}");
    assert!(rejections[0].summary.contains(why), "{:?}", rejections[0]);
    let glass = audit(&app, "break_glass").await;
    assert_eq!(glass.len(), 1, "{glass:?}");
    assert!(
        glass[0].summary.contains("the duty manager is on a plane")
            && glass[0].summary.contains("approval bypassed"),
        "{:?}",
        glass[0]
    );
}

#[tokio::test]
async fn breaking_glass_needs_an_admin_and_a_reason_and_is_audited_once() {
    let Team { app, maria, .. } = team().await;
    let before = app.checksum().await;
    let store = &app.store;
    let entries = move || async move {
        store
            .audit_entries(&AuditFilter {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
            .0
            .len()
    };
    let audited = entries().await;
    let with = |glass: Value| {
        let mut b = OPEN();
        for (k, v) in glass.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    // No reason, a blank one, a reason without break_glass: 422, nothing written.
    for body in [
        with(json!({"break_glass": true})),
        with(json!({"break_glass": true, "reason": "   "})),
        with(json!({"reason": "because"})),
    ] {
        let r = app.post("/api/v1/incidents", body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {:?}", r.body);
        assert!(r.problem().contains("reason"), "{:?}", r.body);
    }
    let r = app
        .post(
            "/api/v1/incidents/01ARZ3NDEKTSV4RRFFQ69G5FAV/publish?break_glass=true",
            json!({}),
        )
        .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    // A publisher may not break glass.
    let (s, e) = call(
        &app,
        &maria,
        "POST",
        "/api/v1/incidents",
        Some(with(json!({"break_glass": true, "reason": "hurry"}))),
    )
    .await;
    assert_eq!(s, 403, "{e}");
    assert!(
        e["detail"].as_str().unwrap().contains("only an admin"),
        "{e}"
    );
    assert_eq!(app.checksum().await, before);
    assert_eq!(entries().await, audited);
    assert!(app.store.approvals(None, 100).await.unwrap().is_empty());

    // An admin with a reason publishes at once; one audit entry says so.
    let r = app
        .post(
            "/api/v1/incidents",
            with(json!({"break_glass": true, "reason": "approver unreachable"})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(entries().await, audited + 1);
    let glass = audit(&app, "break_glass").await;
    assert_eq!(glass.len(), 1);
    assert_eq!(glass[0].actor, "admin");
    assert!(
        glass[0].summary.contains("approver unreachable"),
        "{:?}",
        glass[0]
    );
}

#[tokio::test]
async fn audience_size_and_everything_public_hold_updates_and_staff_only_does_not() {
    // approval_above: 2 subscribers + 1 fixed channel = 3 recipients.
    let channels = [
        ("subs", "kind = \"log\"\naudience = \"subscribers\"\n"),
        ("staff", "kind = \"log\"\naudience = \"fixed\"\n"),
    ];
    for (above, held) in [(2, true), (3, false)] {
        let app = spawn_app_with(&channels, |c| {
            c.approval.above = Some(above);
            c.approval.notify = vec!["staff".into()];
        })
        .await;
        for e in ["a@example.com", "b@example.com"] {
            assert_eq!(
                app.post("/api/v1/subscribers", json!({"email": e}))
                    .await
                    .status,
                201
            );
        }
        let r = app.post("/api/v1/incidents", OPEN()).await;
        assert_eq!(
            r.status,
            if held { 202 } else { 201 },
            "above {above}: {:?}",
            r.body
        );
        if held {
            assert!(
                r.body["reasons"][0]
                    .as_str()
                    .unwrap()
                    .contains("approval_above = 2"),
                "{:?}",
                r.body
            );
        }
    }
    // approval = "public": held when a public channel is reached, not for staff channels alone.
    for (files, held) in [(&channels[..], true), (&channels[1..], false)] {
        let app = spawn_app_with(files, |c| {
            c.approval.public = true;
            c.approval.notify = vec!["staff".into()];
        })
        .await;
        let r = app.post("/api/v1/incidents", OPEN()).await;
        assert_eq!(r.status, if held { 202 } else { 201 }, "{:?}", r.body);
    }
}

#[tokio::test]
async fn bad_approval_settings_stop_start_up_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let channels = dir.path().join("channels");
    std::fs::create_dir_all(&channels).unwrap();
    std::fs::write(
        channels.join("public.toml"),
        "kind = \"log\"\naudience = \"fixed\"\napproval = \"maybe\"\n",
    )
    .unwrap();
    let config = crier::config::Config {
        channels_dir: channels.clone(),
        data_dir: dir.path().join("data"),
        bind: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    let e = format!(
        "{:#}",
        crier::server::Server::build(&config).await.err().unwrap()
    );
    assert!(
        e.contains("approval = \"maybe\"") && e.contains("required"),
        "{e}"
    );

    std::fs::write(
        channels.join("public.toml"),
        "kind = \"log\"\naudience = \"fixed\"\n",
    )
    .unwrap();
    let mut config = config;
    config.approval.notify = vec!["ops".into()];
    let e = format!(
        "{:#}",
        crier::server::Server::build(&config).await.err().unwrap()
    );
    assert!(
        e.contains("approval_notify") && e.contains("\"ops\""),
        "{e}"
    );
}

fn cli(app: &TestApp, token: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(bin())
        .args(["--url", &app.base, "--token", token])
        .args(args)
        .env_remove("CRIER_URL")
        .env_remove("CRIER_TOKEN")
        .output()
        .unwrap()
}

fn out(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_approves_and_rejects_with_the_real_binary() {
    let Team {
        app,
        provider,
        maria,
        jussi,
    } = team().await;
    let app = std::sync::Arc::new(app);
    let run = |token: String, args: Vec<&'static str>| {
        let app = app.clone();
        tokio::task::spawn_blocking(move || cli(&app, &token, &args))
    };
    let open = vec![
        "incident",
        "open",
        "--title",
        "Check-in down",
        "--impact",
        "major",
        "--message",
        "Checking in by hand.",
    ];
    let o = run(maria.clone(), open.clone()).await.unwrap();
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("Held for approval"), "{}", out(&o));

    let o = run(jussi.clone(), vec!["--json", "approvals", "list"])
        .await
        .unwrap();
    assert!(o.status.success(), "{}", out(&o));
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let id = list[0]["id"].as_str().unwrap().to_owned();
    let o = run(jussi.clone(), vec!["approvals", "list"]).await.unwrap();
    assert!(
        out(&o).contains(&id) && out(&o).contains("Checking in by hand."),
        "{}",
        out(&o)
    );

    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let id_s = leak(id.clone());
    let o = run(maria.clone(), vec!["approvals", "approve", id_s])
        .await
        .unwrap();
    assert!(!o.status.success());
    assert!(out(&o).contains("you wrote this"), "{}", out(&o));
    let o = run(jussi.clone(), vec!["approvals", "approve", id_s])
        .await
        .unwrap();
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("Approved"), "{}", out(&o));
    let o = run(jussi.clone(), vec!["approvals", "approve", id_s])
        .await
        .unwrap();
    assert!(!o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("already approved"), "{}", out(&o));
    provider_requests(&provider, 1).await;

    let o = run(maria.clone(), open.clone()).await.unwrap();
    assert!(out(&o).contains("Held for approval"), "{}", out(&o));
    let (_, list) = call(&app, &jussi, "GET", "/api/v1/approvals", None).await;
    let id2 = leak(list[0]["id"].as_str().unwrap().to_owned());
    let o = run(
        jussi.clone(),
        vec!["approvals", "reject", id2, "--reason", "Wrong airport"],
    )
    .await
    .unwrap();
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("Rejected"), "{}", out(&o));
    let o = run(
        jussi.clone(),
        vec!["approvals", "list", "--state", "rejected"],
    )
    .await
    .unwrap();
    assert!(out(&o).contains("Wrong airport"), "{}", out(&o));

    // Break glass: refused by clap without a reason; an admin with one publishes at once.
    let mut glass = open.clone();
    glass.push("--break-glass");
    let o = run(app.token.clone(), glass.clone()).await.unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    glass.extend(["--reason", "approver unreachable"]);
    let o = run(app.token.clone(), glass).await.unwrap();
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("Opened"), "{}", out(&o));
    assert_eq!(audit(&app, "approval.approve").await.len(), 1);
    assert_eq!(audit(&app, "approval.reject").await.len(), 1);
    assert_eq!(audit(&app, "break_glass").await.len(), 1);
    assert_eq!(provider_requests(&provider, 2).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_approvals_publish_once() {
    let Team {
        app, maria, jussi, ..
    } = team().await;
    // An update (an open has a second guard: its incident id is fixed when it is held).
    let mut open = OPEN();
    open["break_glass"] = json!(true);
    open["reason"] = json!("set-up");
    let r = app.post("/api/v1/incidents", open).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let incident = r.body["id"].as_str().unwrap().to_owned();
    let (s, held) = call(
        &app,
        &maria,
        "POST",
        &format!("/api/v1/incidents/{incident}/updates"),
        Some(json!({"status": "identified", "message": "A failed switch."})),
    )
    .await;
    assert_eq!(s, 202, "{held}");
    let approve = format!("/api/v1/approvals/{}/approve", held["id"].as_str().unwrap());
    let tokens = [
        jussi.clone(),
        app.token.clone(),
        jussi.clone(),
        app.token.clone(),
    ];
    let answers = futures_util::future::join_all(
        tokens.iter().map(|t| call(&app, t, "POST", &approve, None)),
    )
    .await;
    let mut codes: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    codes.sort();
    assert_eq!(codes, [200, 409, 409, 409], "{answers:?}");
    let shown = app.get(&format!("/api/v1/incidents/{incident}")).await;
    assert_eq!(shown.body["updates"].as_array().unwrap().len(), 2);
    let public = app
        .store
        .broadcasts_of_all()
        .await
        .unwrap()
        .into_iter()
        .filter(|b| b.channel == "public")
        .count();
    assert_eq!(public, 2, "the opening and the approved update, once");
    assert_eq!(audit(&app, "approval.approve").await.len(), 1);
}

#[tokio::test]
async fn publishing_drafts_waits_too_and_a_draft_itself_does_not() {
    let Team {
        app,
        provider,
        maria,
        jussi,
    } = team().await;
    let mut draft = OPEN();
    draft["draft"] = json!(true);
    let (s, v) = call(&app, &maria, "POST", "/api/v1/incidents", Some(draft)).await;
    assert_eq!(
        s, 201,
        "a draft sends nothing, so it needs no approval: {v}"
    );
    let incident = v["id"].as_str().unwrap().to_owned();
    let publish = format!("/api/v1/incidents/{incident}/publish");
    let (s, held) = call(&app, &maria, "POST", &publish, None).await;
    assert_eq!(s, 202, "{held}");
    assert_eq!(held["action"], "publish");
    assert_eq!(
        held["message"],
        "Check-in is down; staff check passengers in by hand."
    );
    let shown = app.get(&format!("/api/v1/incidents/{incident}")).await;
    assert_eq!(shown.body["draft"], true);
    assert!(app
        .store
        .broadcasts_of_all()
        .await
        .unwrap()
        .iter()
        .all(|b| b.channel != "public"));
    let approve = format!("/api/v1/approvals/{}/approve", held["id"].as_str().unwrap());
    let (s, ok) = call(&app, &jussi, "POST", &approve, None).await;
    assert_eq!(s, 200, "{ok}");
    assert_eq!(ok["published"]["draft"], false);
    assert_eq!(delivered_to_public(&app, &incident).await, 1);
    let reqs = provider_requests(&provider, 1).await;
    assert_eq!(
        reqs.len(),
        1,
        "{:?}",
        reqs.iter()
            .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            .collect::<Vec<_>>()
    );
    let (s, _) = call(&app, &jussi, "POST", &approve, None).await;
    assert_eq!(s, 409);
}

/// `component_statuses` of a held opening and a held update: checked before they are held (an
/// unknown component is refused and nothing is held), left alone while they wait, and set when
/// another publisher approves, in the approval's write (its one audit entry names the change).
#[tokio::test]
async fn held_writes_set_their_component_statuses_only_when_approved() {
    let Team {
        app, maria, jussi, ..
    } = team().await;
    app.component("Check-in").await;
    async fn status_of(app: &TestApp) -> String {
        app.store
            .components()
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.name.as_str() == "Check-in")
            .map(|c| c.status.as_str().to_owned())
            .unwrap()
    }
    let open = |statuses: Value| {
        let mut o = OPEN();
        o["component_statuses"] = statuses;
        o
    };
    let (s, e) = call(
        &app,
        &maria,
        "POST",
        "/api/v1/incidents",
        Some(open(
            json!([{"component": "Gates", "status": "major_outage"}]),
        )),
    )
    .await;
    assert_eq!(s, 422, "{e}");
    assert!(
        e["detail"]
            .as_str()
            .unwrap()
            .contains("component \"Gates\""),
        "{e}"
    );
    let (_, list) = call(&app, &jussi, "GET", "/api/v1/approvals", None).await;
    assert_eq!(list, json!([]), "nothing held");

    let (s, held) = call(
        &app,
        &maria,
        "POST",
        "/api/v1/incidents",
        Some(open(
            json!([{"component": "Check-in", "status": "major_outage"}]),
        )),
    )
    .await;
    assert_eq!(s, 202, "{held}");
    assert_eq!(status_of(&app).await, "operational", "not while it waits");
    let approve = format!("/api/v1/approvals/{}/approve", held["id"].as_str().unwrap());
    let (s, done) = call(&app, &jussi, "POST", &approve, None).await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(status_of(&app).await, "major_outage");
    let approved = audit(&app, "approval.approve").await;
    assert_eq!(approved.len(), 1, "{approved:?}");
    assert!(
        approved[0]
            .summary
            .contains("components: Check-in: operational → major_outage"),
        "{approved:?}"
    );

    // A held update: the same.
    let id = held["incident_id"].as_str().unwrap();
    let (s, held) = call(
        &app,
        &maria,
        "POST",
        &format!("/api/v1/incidents/{id}/updates"),
        Some(json!({"message": "Partly back.",
                    "component_statuses": [{"component": "Check-in", "status": "partial_outage"}]})),
    )
    .await;
    assert_eq!(s, 202, "{held}");
    assert_eq!(status_of(&app).await, "major_outage", "not while it waits");
    let approve = format!("/api/v1/approvals/{}/approve", held["id"].as_str().unwrap());
    let (s, done) = call(&app, &jussi, "POST", &approve, None).await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(status_of(&app).await, "partial_outage");
}

/// Issue 13, scenario 2 over the API: a responder's publishing write (opening or update) is
/// held for approval whatever the configuration, with the reason naming the role; the author
/// cannot approve it (neither as a responder nor if they were a publisher); a publisher
/// approves and it is published exactly once, authored by the responder. A draft is not held.
#[tokio::test]
async fn a_responder_submits_for_approval_and_a_publisher_publishes_it_once() {
    // No channel requires approval here: the responder's role alone holds the write.
    let app = crate::helpers::spawn_app_with(
        &[("log", "kind = \"log\"\naudience = \"fixed\"\n")],
        |_| {},
    )
    .await;
    let rita = add_user(&app, "rita", Role::Responder).await;
    let (rita, _) = add_token(&app, &rita, Role::Responder, None).await;
    let pekka = add_user(&app, "pekka", Role::Publisher).await;
    let (pekka, _) = add_token(&app, &pekka, Role::Publisher, None).await;

    let (s, held) = call(&app, &rita, "POST", "/api/v1/incidents", Some(OPEN())).await;
    assert_eq!(s, 202, "{held}");
    assert_eq!(held["state"], "pending_approval");
    assert_eq!(held["author"], "rita");
    assert_eq!(
        held["reasons"][0],
        "the author's role (responder) may not publish alone (a responder saves drafts or submits them for a publisher's approval)"
    );
    assert_eq!(app.get("/api/v1/incidents").await.body, json!([]));
    let approve = format!("/api/v1/approvals/{}/approve", held["id"].as_str().unwrap());
    let (s, e) = call(&app, &rita, "POST", &approve, None).await;
    assert_eq!(s, 403, "the author (a responder) cannot approve: {e}");
    assert_eq!(app.get("/api/v1/incidents").await.body, json!([]));

    let (s, done) = call(&app, &pekka, "POST", &approve, None).await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(done["approval"]["state"], "approved");
    let id = held["incident_id"].as_str().unwrap();
    let (s, shown) = call(
        &app,
        &pekka,
        "GET",
        &format!("/api/v1/incidents/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{shown}");
    assert_eq!(shown["updates"][0]["author"], "rita");
    assert_eq!(shown["draft"], false);
    let (s, again) = call(&app, &pekka, "POST", &approve, None).await;
    assert_eq!(s, 409, "published once: {again}");
    let listed = app.get("/api/v1/incidents").await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    // One broadcast per channel for the opening: sent once.
    let log = app
        .store
        .broadcasts_of_all()
        .await
        .unwrap()
        .into_iter()
        .filter(|b| b.channel == "log" && b.incident_id.to_string() == id)
        .count();
    assert_eq!(log, 1);

    // An update by the responder waits too; a draft does not.
    let (s, held) = call(
        &app,
        &rita,
        "POST",
        &format!("/api/v1/incidents/{id}/updates"),
        Some(json!({"message": "Kiosks restarted."})),
    )
    .await;
    assert_eq!(s, 202, "{held}");
    let (s, draft) = call(
        &app,
        &rita,
        "POST",
        &format!("/api/v1/incidents/{id}/updates"),
        Some(json!({"message": "Draft.", "draft": true})),
    )
    .await;
    assert_eq!(s, 201, "{draft}");
    // A publisher's write, with no rule asking for approval, is not held.
    let (s, own) = call(&app, &pekka, "POST", "/api/v1/incidents", Some(OPEN())).await;
    assert_eq!(s, 201, "a publisher with no rule asking is not held: {own}");
}
