//! Monitoring intake over HTTP and from the real `crier trigger`: Alertmanager (payload version
//! 4) and Grafana payloads as their documentation shows them, duplicates from HA pairs, partial
//! and full resolution, and authentication (bearer token or HMAC) that writes nothing when it
//! fails.

use crate::helpers::{bin, spawn_app_with, TestApp};
use crier::domain::alert::Mode;
use crier::store::port::Outbox;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

const SECRET: &str = "an-intake-secret-of-some-length";

/// Alertmanager's webhook payload (version 4), two alerts in one group.
fn alertmanager(status_a: &str, status_b: &str) -> Value {
    json!({
      "version": "4",
      "groupKey": "{}:{alertname=\"HighLatency\"}",
      "truncatedAlerts": 0,
      "status": if status_a == "firing" || status_b == "firing" { "firing" } else { "resolved" },
      "receiver": "crier",
      "groupLabels": {"alertname": "HighLatency"},
      "commonLabels": {"alertname": "HighLatency", "severity": "critical"},
      "commonAnnotations": {"summary": "Checkout is slow"},
      "externalURL": "http://alertmanager:9093",
      "alerts": [
        {"status": status_a, "labels": {"alertname": "HighLatency", "instance": "web-1"},
         "annotations": {"summary": "Checkout responses are slow"},
         "startsAt": "2026-11-23T08:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
         "generatorURL": "http://prometheus/graph", "fingerprint": "1a2b3c"},
        {"status": status_b, "labels": {"alertname": "HighLatency", "instance": "web-2"},
         "annotations": {"summary": "Checkout responses are slow on web-2"},
         "startsAt": "2026-11-23T08:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
         "generatorURL": "http://prometheus/graph", "fingerprint": "4d5e6f"}
      ]
    })
}

/// The Grafana webhook payload from Grafana's documentation (abridged `message`).
fn grafana(status: &str) -> Value {
    json!({
      "receiver": "My Super Webhook", "status": status, "orgId": 1,
      "alerts": [{
        "status": status,
        "labels": {"alertname": "High memory usage", "team": "blue", "zone": "us-1"},
        "annotations": {"description": "The system has high memory usage",
                        "runbook_url": "https://myrunbook.com/runbook/1234",
                        "summary": "This alert was triggered for zone us-1"},
        "startsAt": "2021-10-12T09:51:03.157076+02:00", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "https://play.grafana.org/alerting/1afz29v7z/edit",
        "fingerprint": "c6eadffa33fcdf37",
        "silenceURL": "https://play.grafana.org/alerting/silence/new",
        "dashboardURL": "", "panelURL": "", "values": {"B": 44.23943737541908, "C": 1}
      }],
      "groupLabels": {}, "commonLabels": {"team": "blue"}, "commonAnnotations": {},
      "externalURL": "https://play.grafana.org/", "version": "1", "groupKey": "{}:{}",
      "truncatedAlerts": 0, "title": "[FIRING:1]  (blue)", "state": "alerting",
      "message": "**Firing**"
    })
}

async fn app(hold_down_secs: u64) -> TestApp {
    app_with(
        hold_down_secs,
        &[("log", "kind = \"log\"\naudience = \"fixed\"\n")],
    )
    .await
}

/// Without channels nothing is sent in the background, so store checksums stay still.
async fn quiet_app() -> TestApp {
    app_with(0, &[]).await
}

async fn app_with(hold_down_secs: u64, channels: &[(&str, &str)]) -> TestApp {
    spawn_app_with(channels, |c| {
        c.intake.hold_down = std::time::Duration::from_secs(hold_down_secs);
        // The public interval has tests of its own (below); here every change goes out at once.
        c.intake.public_interval = std::time::Duration::ZERO;
        c.intake.default.mode = Mode::Publish;
        c.intake.hmac_secret = Some(SECRET.as_bytes().to_vec());
    })
    .await
}

async fn hook(app: &TestApp, path: &str, body: &Value) -> (u16, Value) {
    let r = app
        .raw(
            reqwest::Method::POST,
            path,
            serde_json::to_vec(body).unwrap(),
            Some("application/json"),
            Some(&app.token),
        )
        .await;
    (r.status, r.body)
}

fn outcomes(v: &Value) -> Vec<String> {
    v["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["outcome"].as_str().unwrap().to_owned())
        .collect()
}

async fn incident(app: &TestApp, id: &str) -> Value {
    let r = app.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

#[tokio::test]
async fn alertmanager_opens_absorbs_duplicates_and_resolves_when_every_alert_has() {
    let app = quiet_app().await;
    let (s, v) = hook(
        &app,
        "/api/v1/hooks/alertmanager",
        &alertmanager("firing", "firing"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        outcomes(&v),
        ["opened", "noted"],
        "two alerts, one incident, one public update"
    );
    let id = v["outcomes"][0]["incident"].as_str().unwrap().to_owned();
    assert_eq!(v["outcomes"][1]["incident"], id.as_str());
    let i = incident(&app, &id).await;
    assert_eq!(i["title"], "Checkout is slow");
    assert_eq!(i["status"], "investigating");
    assert_eq!(
        i["draft"], false,
        "mode publish, no hold-down: public at once"
    );
    assert_eq!(i["updates"].as_array().unwrap().len(), 1);
    assert_eq!(
        i["updates"][0]["body"]["en"],
        "Checkout responses are slow\n\nMonitoring: 1 more alert fired."
    );

    // The HA pair's copy of the same notification is absorbed.
    let before = app.checksum().await;
    let (s, v) = hook(
        &app,
        "/api/v1/hooks/alertmanager",
        &alertmanager("firing", "firing"),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(outcomes(&v), ["absorbed", "absorbed"]);
    assert_eq!(app.checksum().await, before, "a duplicate writes nothing");

    // One alert resolves: the incident stays open.
    let (_, v) = hook(
        &app,
        "/api/v1/hooks/alertmanager",
        &alertmanager("resolved", "firing"),
    )
    .await;
    assert_eq!(outcomes(&v), ["partly_resolved", "absorbed"]);
    assert_eq!(v["outcomes"][0]["still_firing"], 1);
    assert_eq!(incident(&app, &id).await["status"], "investigating");

    // Both resolved: so is the incident; a repeat is absorbed.
    let (_, v) = hook(
        &app,
        "/api/v1/hooks/alertmanager",
        &alertmanager("resolved", "resolved"),
    )
    .await;
    assert_eq!(outcomes(&v), ["absorbed", "resolved"]);
    let i = incident(&app, &id).await;
    assert_eq!(i["status"], "resolved");
    let (_, v) = hook(
        &app,
        "/api/v1/hooks/alertmanager",
        &alertmanager("resolved", "resolved"),
    )
    .await;
    assert_eq!(outcomes(&v), ["absorbed", "absorbed"]);
    // Exactly one incident was ever opened.
    let list = app.get("/api/v1/incidents").await.body;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn grafana_payloads_from_its_documentation_open_and_resolve() {
    let app = app(0).await;
    let (s, v) = hook(
        &app,
        "/api/v1/hooks/grafana?source=grafana-prod",
        &grafana("firing"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(outcomes(&v), ["opened"]);
    let id = v["outcomes"][0]["incident"].as_str().unwrap().to_owned();
    let i = incident(&app, &id).await;
    assert_eq!(
        i["updates"][0]["body"]["en"],
        "This alert was triggered for zone us-1"
    );
    let (_, v) = hook(
        &app,
        "/api/v1/hooks/grafana?source=grafana-prod",
        &grafana("firing"),
    )
    .await;
    assert_eq!(outcomes(&v), ["absorbed"]);
    let (_, v) = hook(
        &app,
        "/api/v1/hooks/grafana?source=grafana-prod",
        &grafana("resolved"),
    )
    .await;
    assert_eq!(outcomes(&v), ["resolved"]);
    assert_eq!(incident(&app, &id).await["status"], "resolved");
}

#[tokio::test]
async fn a_flapping_alert_inside_the_hold_down_notifies_nobody() {
    let app = app(300).await;
    let (_, v) = hook(&app, "/api/v1/hooks/grafana", &grafana("firing")).await;
    assert_eq!(outcomes(&v), ["opened"]);
    assert!(v["outcomes"][0]["held_until"].is_string());
    let id = v["outcomes"][0]["incident"].as_str().unwrap().to_owned();
    // The record opens at once and is listed …
    let list = app.get("/api/v1/incidents").await.body;
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["draft"], true);
    // … but fires and resolves within the window: nothing is announced.
    for status in ["resolved", "firing", "resolved"] {
        let (s, _) = hook(&app, "/api/v1/hooks/grafana", &grafana(status)).await;
        assert_eq!(s, 200);
    }
    let ulid = ulid::Ulid::from_string(&id).unwrap();
    assert!(app.store.broadcasts_of(ulid).await.unwrap().is_empty());
    assert!(app.store.deliveries_of(ulid).await.unwrap().is_empty());
    let public = app.get("/api/v1/status").await.body;
    assert!(
        !public.to_string().contains(&id),
        "not on the public status either"
    );
}

fn sign_crier(body: &[u8], ts: i64) -> String {
    crier::adapters::webhook::sign(SECRET.as_bytes(), ts, body)
}

#[tokio::test]
async fn hooks_need_a_token_or_a_valid_signature_and_write_nothing_otherwise() {
    let app = app(0).await;
    let body = serde_json::to_vec(&alertmanager("firing", "firing")).unwrap();
    let before = app.checksum().await;
    let post = |headers: Vec<(&'static str, String)>| {
        let mut req = app
            .client
            .post(app.url("/api/v1/hooks/alertmanager"))
            .header("content-type", "application/json")
            .body(body.clone());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    let now = chrono::Utc::now().timestamp();
    for (why, headers) in [
        ("no credentials", vec![]),
        (
            "wrong token",
            vec![("authorization", "Bearer not-the-token-at-all".to_owned())],
        ),
        (
            "bad signature",
            vec![
                ("x-crier-timestamp", now.to_string()),
                ("x-crier-signature", "v1=00ff".to_owned()),
            ],
        ),
        (
            "stale signature",
            vec![
                ("x-crier-timestamp", (now - 3600).to_string()),
                ("x-crier-signature", sign_crier(&body, now - 3600)),
            ],
        ),
        (
            "bad grafana signature",
            vec![("x-grafana-alerting-signature", "deadbeef".to_owned())],
        ),
    ] {
        let r = post(headers).await.unwrap();
        assert_eq!(r.status(), 401, "{why}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert_eq!(ct, "application/problem+json", "{why}");
    }
    assert_eq!(app.checksum().await, before, "rejected hooks wrote nothing");

    // Bad payloads are refused with a reason, and write nothing.
    let mut v3 = alertmanager("firing", "firing");
    v3["version"] = json!("3");
    let (s, v) = hook(&app, "/api/v1/hooks/alertmanager", &v3).await;
    assert_eq!(s, 422, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("version 4"));
    assert_eq!(app.checksum().await, before);

    // A good crier signature is accepted.
    let r = post(vec![
        ("x-crier-timestamp", now.to_string()),
        ("x-crier-signature", sign_crier(&body, now)),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    // And Grafana's own timestamped signature (hex HMAC-SHA256 of "timestamp:body").
    let gbody = serde_json::to_vec(&grafana("firing")).unwrap();
    let r = app
        .client
        .post(app.url("/api/v1/hooks/grafana"))
        .header(
            "x-grafana-alerting-signature",
            sign_grafana(&gbody, Some(now)),
        )
        .header("x-grafana-alerting-timestamp", now.to_string())
        .body(gbody)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Grafana's contact-point HMAC: hex HMAC-SHA256 over "timestamp:body", or the body alone.
fn sign_grafana(body: &[u8], ts: Option<i64>) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    if let Some(ts) = ts {
        mac.update(format!("{ts}:").as_bytes());
    }
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

async fn post_signed(
    app: &TestApp,
    path: &str,
    body: &[u8],
    headers: &[(&str, String)],
) -> (u16, String, Value) {
    let mut req = app
        .client
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let v = r.json().await.unwrap_or(Value::Null);
    (status, ct, v)
}

#[tokio::test]
async fn a_signed_hook_is_accepted_once_and_a_replay_is_refused_without_a_write() {
    let app = quiet_app().await;
    let now = chrono::Utc::now().timestamp();
    let body = serde_json::to_vec(&alertmanager("firing", "firing")).unwrap();
    let crier = [
        ("x-crier-timestamp", now.to_string()),
        ("x-crier-signature", sign_crier(&body, now)),
    ];
    let (s, _, v) = post_signed(&app, "/api/v1/hooks/alertmanager", &body, &crier).await;
    assert_eq!(s, 200, "{v}");
    let before = app.checksum().await;
    let (s, ct, v) = post_signed(&app, "/api/v1/hooks/alertmanager", &body, &crier).await;
    assert_eq!(s, 409, "a replay inside the window: {v}");
    assert_eq!(ct, "application/problem+json");
    assert!(v["detail"].as_str().unwrap().contains("replay"), "{v}");
    assert_eq!(app.checksum().await, before, "a replay writes nothing");

    // Grafana's timestamped signature, the same way.
    let gbody = serde_json::to_vec(&grafana("firing")).unwrap();
    let grafana_headers = [
        (
            "x-grafana-alerting-signature",
            sign_grafana(&gbody, Some(now)),
        ),
        ("x-grafana-alerting-timestamp", now.to_string()),
    ];
    let (s, _, v) = post_signed(&app, "/api/v1/hooks/grafana", &gbody, &grafana_headers).await;
    assert_eq!(s, 200, "{v}");
    let before = app.checksum().await;
    let (s, ct, _) = post_signed(&app, "/api/v1/hooks/grafana", &gbody, &grafana_headers).await;
    assert_eq!((s, ct.as_str()), (409, "application/problem+json"));
    // A stale timestamp, a signature over the body alone sent with a timestamp, and a body-only
    // signature (replayable forever, not allowed by this configuration): 401, nothing written.
    for (why, headers) in [
        (
            "stale",
            vec![
                (
                    "x-grafana-alerting-signature",
                    sign_grafana(&gbody, Some(now - 3600)),
                ),
                ("x-grafana-alerting-timestamp", (now - 3600).to_string()),
            ],
        ),
        (
            "timestamp not signed",
            vec![
                ("x-grafana-alerting-signature", sign_grafana(&gbody, None)),
                ("x-grafana-alerting-timestamp", now.to_string()),
            ],
        ),
        (
            "body only",
            vec![("x-grafana-alert-signature", sign_grafana(&gbody, None))],
        ),
    ] {
        let (s, ct, v) = post_signed(&app, "/api/v1/hooks/grafana", &gbody, &headers).await;
        assert_eq!(
            (s, ct.as_str()),
            (401, "application/problem+json"),
            "{why}: {v}"
        );
        if why == "body only" {
            assert!(
                v["detail"]
                    .as_str()
                    .unwrap()
                    .contains("grafana_body_signature"),
                "{v}"
            );
        }
    }
    // A valid signature on a payload that is refused writes nothing, not even the signature:
    // the sender may fix it and send it again.
    let mut v3 = alertmanager("firing", "firing");
    v3["version"] = json!("3");
    let bad = serde_json::to_vec(&v3).unwrap();
    let signed_bad = [
        ("x-crier-timestamp", now.to_string()),
        ("x-crier-signature", sign_crier(&bad, now)),
    ];
    let (s, ct, _) = post_signed(&app, "/api/v1/hooks/alertmanager", &bad, &signed_bad).await;
    assert_eq!((s, ct.as_str()), (422, "application/problem+json"));
    let (s, _, _) = post_signed(&app, "/api/v1/hooks/alertmanager", &bad, &signed_bad).await;
    assert_eq!(
        s, 422,
        "still 422, not 409: the refused request spent nothing"
    );
    assert_eq!(app.checksum().await, before);
}

#[tokio::test]
async fn a_body_only_grafana_signature_needs_explicit_consent_and_is_still_accepted_once() {
    let app = spawn_app_with(&[], |c| {
        c.intake.hold_down = std::time::Duration::ZERO;
        c.intake.hmac_secret = Some(SECRET.as_bytes().to_vec());
        c.intake.grafana_body_signature = true;
    })
    .await;
    let gbody = serde_json::to_vec(&grafana("firing")).unwrap();
    let headers = [("x-grafana-alert-signature", sign_grafana(&gbody, None))];
    let (s, _, v) = post_signed(&app, "/api/v1/hooks/grafana", &gbody, &headers).await;
    assert_eq!(s, 200, "{v}");
    let before = app.checksum().await;
    let (s, _, _) = post_signed(&app, "/api/v1/hooks/grafana", &gbody, &headers).await;
    assert_eq!(s, 409, "refused again inside the window");
    assert_eq!(app.checksum().await, before);
}

/// An Alertmanager notification of `n` alerts of one group; `changed` gives alert 0 another
/// summary (a live value).
fn storm(n: usize, status: &str, changed: bool) -> Value {
    let alerts: Vec<Value> = (0..n)
        .map(|i| {
            let summary = if i == 0 && changed {
                "p99 3.1 s".to_owned()
            } else {
                "p99 2.3 s".to_owned()
            };
            // As Alertmanager sends them: ~0.4 KiB each, 400 of them well over 64 KiB.
            json!({"status": status,
                   "labels": {"alertname": "NodeDown", "instance": format!("node-{i}.example.net:9100"),
                              "job": "node", "severity": "critical"},
                   "annotations": {"summary": summary,
                                   "description": format!("node-{i} has not answered for 5 minutes")},
                   "startsAt": "2026-11-23T08:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                   "generatorURL": "http://prometheus:9090/graph?g0.expr=up%3D%3D0&g0.tab=1",
                   "fingerprint": format!("f{i:04}")})
        })
        .collect();
    json!({"version": "4", "groupKey": "{}:{alertname=\"NodeDown\"}", "status": status,
           "receiver": "crier", "commonAnnotations": {"summary": "Nodes are down"},
           "alerts": alerts})
}

#[tokio::test]
async fn a_400_alert_notification_is_one_public_update_and_the_detail_goes_to_staff() {
    let app = spawn_app_with(
        &[
            ("public", "kind = \"log\"\naudience = \"fixed\"\n"),
            (
                "subscribers",
                "kind = \"log\"\naudience = \"subscribers\"\n",
            ),
            ("staff", "kind = \"log\"\naudience = \"fixed\"\n"),
        ],
        |c| {
            c.intake.hold_down = std::time::Duration::ZERO;
            c.intake.public_interval = std::time::Duration::ZERO;
            c.intake.default.mode = Mode::Publish;
            c.intake.staff_channels = vec!["staff".into()];
        },
    )
    .await;
    let body = storm(400, "firing", false);
    assert!(serde_json::to_vec(&body).unwrap().len() > 128 * 1024);
    let (s, v) = hook(&app, "/api/v1/hooks/alertmanager", &body).await;
    assert_eq!(s, 200, "{v}");
    let o = outcomes(&v);
    assert_eq!(o[0], "opened");
    assert!(o[1..].iter().all(|o| o == "noted"), "{o:?}");
    let id = v["outcomes"][0]["incident"].as_str().unwrap().to_owned();
    let ulid = ulid::Ulid::from_string(&id).unwrap();
    // (channel, is a timeline update) of every broadcast.
    let broadcasts = || {
        let store = app.store.clone();
        async move {
            store
                .broadcasts_of(ulid)
                .await
                .unwrap()
                .into_iter()
                .map(|b| {
                    (
                        b.channel,
                        b.seq < crier::domain::standalone::STANDALONE_BASE,
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let count = |b: &[(String, bool)], ch: &str, public: bool| {
        b.iter().filter(|(c, p)| c == ch && *p == public).count()
    };
    let b = broadcasts().await;
    assert_eq!(count(&b, "public", true), 1, "one public update: {b:?}");
    assert_eq!(count(&b, "subscribers", true), 1, "one to the subscribers");
    assert_eq!(count(&b, "staff", false), 1, "one detail message for staff");
    assert_eq!(
        count(&b, "public", false) + count(&b, "subscribers", false),
        0
    );
    let i = incident(&app, &id).await;
    assert_eq!(i["title"], "Nodes are down");
    assert_eq!(i["updates"].as_array().unwrap().len(), 1);
    assert!(i["updates"][0]["body"]["en"]
        .as_str()
        .unwrap()
        .ends_with("Monitoring: 399 more alerts fired."));

    // One alert re-sent with a changed summary (a live value): detail for staff, nothing public.
    let (_, v) = hook(
        &app,
        "/api/v1/hooks/alertmanager",
        &storm(400, "firing", true),
    )
    .await;
    let o = outcomes(&v);
    assert_eq!(o[0], "noted");
    assert!(o[1..].iter().all(|o| o == "absorbed"), "{o:?}");
    let b = broadcasts().await;
    assert_eq!(count(&b, "public", true), 1, "no public update: {b:?}");
    assert_eq!(count(&b, "subscribers", true), 1);
    assert_eq!(count(&b, "staff", false), 2);
    assert_eq!(
        incident(&app, &id).await["updates"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let status = app.get("/api/v1/status").await.body.to_string();
    assert!(!status.contains("p99 3.1 s"), "staff detail is not public");

    // Every key resolved: the one resolving public update.
    let (_, v) = hook(
        &app,
        "/api/v1/hooks/alertmanager",
        &storm(400, "resolved", false),
    )
    .await;
    let o = outcomes(&v);
    assert_eq!(o.last().map(String::as_str), Some("resolved"), "{o:?}");
    assert_eq!(o.iter().filter(|o| *o == "resolved").count(), 1);
    let b = broadcasts().await;
    assert_eq!(count(&b, "public", true), 2, "opened and resolved: {b:?}");
    assert_eq!(count(&b, "subscribers", true), 2);
    let i = incident(&app, &id).await;
    assert_eq!(i["status"], "resolved");
    assert!(i["updates"][1]["body"]["en"]
        .as_str()
        .unwrap()
        .ends_with("Monitoring: 399 resolved."));
}

#[tokio::test]
async fn a_multi_line_summary_becomes_a_title_and_a_text() {
    let app = quiet_app().await;
    // The summary annotation of the whole group (the title) and of the alert, on several lines.
    let text = "Checkout is slow\n\np99 is 2.3 s on web-1.\nSee the runbook.";
    let mut am = alertmanager("firing", "firing");
    am["commonAnnotations"]["summary"] = json!(text);
    am["alerts"][0]["annotations"]["summary"] = json!(text);
    let (s, v) = hook(&app, "/api/v1/hooks/alertmanager", &am).await;
    assert_eq!(s, 200, "{v}");
    let id = v["outcomes"][0]["incident"].as_str().unwrap().to_owned();
    let i = incident(&app, &id).await;
    assert_eq!(i["title"], "Checkout is slow");
    assert!(i["updates"][0]["body"]["en"]
        .as_str()
        .unwrap()
        .starts_with("p99 is 2.3 s on web-1.\nSee the runbook."));
    // crier's own trigger document, too.
    let r = app
        .post(
            "/api/v1/triggers",
            json!({"source": "nagios", "key": "db", "status": "firing",
                    "summary": "\n  Database is down  \r\nPrimary unreachable since 08:00"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let id = r.body["outcomes"][0]["incident"]
        .as_str()
        .unwrap()
        .to_owned();
    let i = incident(&app, &id).await;
    assert_eq!(i["title"], "Database is down");
    assert_eq!(
        i["updates"][0]["body"]["en"],
        "Primary unreachable since 08:00"
    );
}

async fn trigger_cli(app: &TestApp, url: &str, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(bin())
        .args(["--url", url, "--token", &app.token])
        .arg("trigger")
        .args(args)
        .env_remove("CRIER_URL")
        .env_remove("CRIER_TOKEN")
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn crier_trigger_opens_absorbs_and_resolves_with_clear_exit_codes() {
    let app = quiet_app().await;
    let base = app.base.clone();
    let fire = [
        "--source",
        "nagios",
        "--key",
        "db-latency",
        "--status",
        "firing",
        "--summary",
        "Database latency is high",
        "--impact",
        "major",
        "--label",
        "team=db",
    ];
    let o = trigger_cli(&app, &base, &fire).await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(out.starts_with("opened incident "), "{out}");
    let o = trigger_cli(&app, &base, &fire).await;
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("absorbed"));

    let mut args = fire.to_vec();
    args.push("--json");
    args[5] = "resolved";
    let o = tokio::process::Command::new(bin())
        .args(["--url", &base, "--token", &app.token, "--json", "trigger"])
        .args(&fire[..4])
        .args([
            "--status",
            "resolved",
            "--summary",
            "Latency is back to normal",
        ])
        .output()
        .await
        .unwrap();
    assert!(o.status.success());
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["outcomes"][0]["outcome"], "resolved");

    // Bad input: exit 3 with the server's reason, nothing written.
    let before = app.checksum().await;
    let o = trigger_cli(
        &app,
        &base,
        &[
            "--source",
            "nagios",
            "--key",
            "k",
            "--status",
            "burning",
            "--summary",
            "x",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("firing or resolved"));
    let o = trigger_cli(
        &app,
        &base,
        &[
            "--source",
            "n",
            "--key",
            "k",
            "--status",
            "firing",
            "--summary",
            "x",
            "--label",
            "nolabel",
        ],
    )
    .await;
    assert_eq!(
        o.status.code(),
        Some(2),
        "a malformed label is a usage error"
    );
    let o = trigger_cli(
        &app,
        &base,
        &[
            "--source",
            "n",
            "--key",
            "new",
            "--status",
            "firing",
            "--summary",
            "x",
            "--component",
            "Nope",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(3), "an unknown component is refused");
    assert!(String::from_utf8_lossy(&o.stderr).contains("Nope"));
    assert_eq!(app.checksum().await, before);

    // Server down: exit 4 after the retries, each reported.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        drop(l);
        format!("http://{a}")
    };
    let o = trigger_cli(&app, &dead, &[&fire[..], &["--retry", "2"]].concat()).await;
    assert_eq!(o.status.code(), Some(4));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(err.matches("retry ").count(), 2, "{err}");
}

#[tokio::test]
async fn notices_are_added_listed_with_fire_times_and_removed_from_the_cli() {
    let app = app(0).await;
    let run = |args: Vec<&str>| {
        let base = app.base.clone();
        let token = app.token.clone();
        let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        async move {
            tokio::process::Command::new(bin())
                .args(["--url", &base, "--token", &token])
                .args(&args)
                .output()
                .await
                .unwrap()
        }
    };
    let o = run(vec![
        "--json",
        "notice",
        "add",
        "--cron",
        "0 9 * * Mon-Fri",
        "--tz",
        "Europe/Helsinki",
        "--event",
        "notice",
        "--message",
        "Weekly maintenance tonight",
        "--channel",
        "log",
    ])
    .await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = v["id"].as_str().unwrap().to_owned();
    let next = v["next"].as_array().unwrap();
    assert_eq!(next.len(), 5);
    for f in next {
        let local = chrono::DateTime::parse_from_rfc3339(f["local"].as_str().unwrap()).unwrap();
        assert_eq!(local.format("%H:%M").to_string(), "09:00");
        assert!(!matches!(
            local.format("%a").to_string().as_str(),
            "Sat" | "Sun"
        ));
        let utc: chrono::DateTime<chrono::Utc> = f["utc"].as_str().unwrap().parse().unwrap();
        assert_eq!(utc, local.to_utc());
    }
    let o = run(vec!["notice", "list"]).await;
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        out.contains(&id) && out.contains("0 9 * * Mon-Fri"),
        "{out}"
    );
    assert_eq!(out.matches("09:00:00+02:00").count(), 5, "{out}");

    // Errors point at what to fix, and write nothing.
    let before = app.checksum().await;
    for (args, needle) in [
        (
            vec![
                "notice",
                "add",
                "--cron",
                "0 9 * *",
                "--tz",
                "UTC",
                "--message",
                "m",
                "--channel",
                "log",
            ],
            "5 fields",
        ),
        (
            vec![
                "notice",
                "add",
                "--cron",
                "0 25 * * *",
                "--tz",
                "UTC",
                "--message",
                "m",
                "--channel",
                "log",
            ],
            "hour",
        ),
        (
            vec![
                "notice",
                "add",
                "--cron",
                "0 9 * * *",
                "--tz",
                "Mars/Olympus",
                "--message",
                "m",
                "--channel",
                "log",
            ],
            "IANA",
        ),
        (
            vec![
                "notice",
                "add",
                "--cron",
                "0 9 * * *",
                "--tz",
                "UTC",
                "--message",
                "m",
                "--channel",
                "nope",
            ],
            "not an active channel",
        ),
        (
            vec![
                "notice",
                "add",
                "--cron",
                "0 9 * * *",
                "--tz",
                "UTC",
                "--message",
                "m",
                "--channel",
                "log",
                "--event",
                "incident_opened",
            ],
            "notice",
        ),
    ] {
        let o = run(args).await;
        assert_eq!(o.status.code(), Some(3), "{needle}");
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(err.contains(needle), "{needle}: {err}");
    }
    assert_eq!(app.checksum().await, before);

    let o = run(vec!["notice", "remove", &id]).await;
    assert!(o.status.success());
    let o = run(vec!["--json", "notice", "list"]).await;
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn promises_at_a_time_of_day_and_maintenance_windows_are_validated() {
    let app = quiet_app().await;
    let id = app.open_incident("Payments slow").await;
    // --next-update-at from the real CLI: the next 14:00 in the server's zone (UTC here).
    let o = tokio::process::Command::new(bin())
        .args([
            "--url", &app.base, "--token", &app.token, "--json", "incident", "update", &id,
        ])
        .args([
            "--status",
            "identified",
            "--message",
            "Found it",
            "--next-update-at",
            "14:00",
        ])
        .output()
        .await
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let due: chrono::DateTime<chrono::Utc> = v["incident"]["next_update_due"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(due.format("%H:%M:%S").to_string(), "14:00:00");
    let now = chrono::Utc::now();
    assert!(due > now && due - now <= chrono::Duration::hours(24));

    let before = app.checksum().await;
    for (body, needle) in [
        (
            json!({"next_update": "30m", "next_update_at": "14:00"}),
            "not both",
        ),
        (json!({"next_update_at": "2pm"}), "HH:MM"),
    ] {
        let mut b = body.clone();
        b["status"] = json!("monitoring");
        b["message"] = json!("x");
        let r = app
            .post(&format!("/api/v1/incidents/{id}/updates"), b)
            .await;
        assert_eq!(r.status, 422, "{needle}");
        assert!(r.problem().contains(needle), "{}", r.problem());
    }
    let maint = |extra: Value| {
        let mut b = json!({"title": "DB upgrade", "kind": "maintenance", "message": "Planned"});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for (body, needle) in [
        (
            maint(json!({"scheduled_for": "2030-01-01T22:00:00Z"})),
            "go together",
        ),
        (
            maint(
                json!({"scheduled_for": "2030-01-01T22:00:00Z", "scheduled_until": "2030-01-01T21:00:00Z"}),
            ),
            "after scheduled_for",
        ),
        (
            maint(json!({"scheduled_for": "tomorrow", "scheduled_until": "2030-01-01T21:00:00Z"})),
            "RFC 3339",
        ),
        (
            json!({"title": "x", "impact": "minor", "message": "m",
                   "scheduled_for": "2030-01-01T22:00:00Z", "scheduled_until": "2030-01-01T23:00:00Z"}),
            "only a maintenance",
        ),
    ] {
        let r = app.post("/api/v1/incidents", body).await;
        assert_eq!(r.status, 422, "{needle}");
        assert!(r.problem().contains(needle), "{}", r.problem());
    }
    assert_eq!(
        app.checksum().await,
        before,
        "rejected requests wrote nothing"
    );
    let r = app
        .post(
            "/api/v1/incidents",
            maint(json!({"scheduled_for": "2030-01-01T22:00:00+02:00", "scheduled_until": "2030-01-02T01:00:00+02:00"})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["status"], "scheduled");
    assert_eq!(r.body["scheduled_for"], "2030-01-01T20:00:00Z");
}

#[tokio::test]
async fn a_staff_channel_that_reaches_subscribers_is_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let channels_dir = dir.path().join("channels");
    std::fs::create_dir_all(&channels_dir).unwrap();
    std::fs::write(
        channels_dir.join("everyone.toml"),
        "kind = \"log\"\naudience = \"subscribers\"\n",
    )
    .unwrap();
    let mut config = crier::config::Config {
        channels_dir,
        data_dir: dir.path().join("data"),
        bind: "127.0.0.1:0".parse().unwrap(),
        admin_token_env: "CRIER_TEST_UNSET_TOKEN_VAR".into(),
        templates_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/templates").into(),
        ..crier::config::Config::default()
    };
    config.intake.staff_channels = vec!["everyone".into()];
    let e = match crier::server::Server::build(&config).await {
        Ok(_) => panic!("a subscriber channel as a staff channel must be refused"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        e.contains("intake.staff_channels") && e.contains("everyone"),
        "{e}"
    );
    config.intake.staff_channels = vec!["nowhere".into()];
    let e = match crier::server::Server::build(&config).await {
        Ok(_) => panic!("an unknown staff channel must be refused"),
        Err(e) => format!("{e:#}"),
    };
    assert!(e.contains("nowhere"), "{e}");
}

/// A signature's timestamp is checked against the server's one clock (here starting on a
/// given day, as in a rehearsal), not the machine's wall clock.
#[tokio::test]
async fn signed_hooks_are_dated_by_the_servers_clock() {
    let start: chrono::DateTime<chrono::Utc> = "2031-01-15T09:00:00Z".parse().unwrap();
    let app = spawn_app_with(&[], |c| {
        c.clock_start = Some(start);
        c.intake.default.mode = Mode::Publish;
        c.intake.hmac_secret = Some(SECRET.as_bytes().to_vec());
    })
    .await;
    let body = serde_json::to_vec(&alertmanager("firing", "firing")).unwrap();
    let post = |ts: i64| {
        app.client
            .post(app.url("/api/v1/hooks/alertmanager"))
            .header("content-type", "application/json")
            .header("x-crier-timestamp", ts.to_string())
            .header("x-crier-signature", sign_crier(&body, ts))
            .body(body.clone())
            .send()
    };
    let wall = chrono::Utc::now().timestamp();
    assert_eq!(
        post(wall).await.unwrap().status(),
        401,
        "years from the server's now"
    );
    assert_eq!(post(start.timestamp()).await.unwrap().status(), 200);
}
