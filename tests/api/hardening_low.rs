//! Low-severity hardening (issue 20, defect 9): chat markup injection, control characters,
//! case-insensitive bearer scheme, problem+json for every rejection, CSV header and formula
//! checks, the subscriber list cap, and `Connection: close` on early answers.

use crate::helpers::{env, spawn_app, spawn_app_with, spawn_app_with_channels, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn wait_requests(server: &MockServer, p: &str, n: usize) -> Vec<Value> {
    for _ in 0..400 {
        let bodies: Vec<Value> = server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path() == p)
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect();
        if bodies.len() >= n {
            return bodies;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{p} did not receive {n} requests");
}

const HOSTILE_TITLE: &str = "<!channel> Payments & <@U024BE7LH>";
const HOSTILE_TEXT: &str =
    "See <https://evil.example|your bank> or [login](https://evil.example) *now*";

async fn hostile_incident(app: &TestApp) {
    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": HOSTILE_TITLE, "impact": "major", "message": HOSTILE_TEXT}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
}

#[tokio::test]
async fn slack_gets_mrkdwn_with_every_value_escaped() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/T0/B0/x"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&server)
        .await;
    let url = format!("{}/services/T0/B0/x", server.uri());
    let app = spawn_app_with(
        &[(
            "ops-slack",
            "kind = \"slack\"\nwebhook_url_env = \"CRIER_TEST_LOW_SLACK\"\n",
        )],
        |c| c.env = env(&[("CRIER_TEST_LOW_SLACK", &url)]),
    )
    .await;
    hostile_incident(&app).await;
    let bodies = wait_requests(&server, "/services/T0/B0/x", 1).await;
    let text = bodies[0]["text"].as_str().unwrap();
    let first = text.lines().next().unwrap();
    assert_eq!(
        first,
        "*New incident: &lt;!channel&gt; Payments &amp; &lt;@U024BE7LH&gt;* (investigating, impact major)",
        "{text}"
    );
    assert_eq!(
        text.lines().nth(1).unwrap(),
        "See &lt;https://evil.example|your bank&gt; or [login](https://evil.example) *now*",
        "{text}"
    );
    assert!(!text.contains("**"), "{text}");
    assert_eq!(
        bodies[0],
        json!({"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]})
    );
}

#[tokio::test]
async fn teams_gets_markdown_with_every_value_escaped() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/workflows/x"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&server)
        .await;
    let url = format!("{}/workflows/x", server.uri());
    let app = spawn_app_with(
        &[(
            "ops-teams",
            "kind = \"teams\"\nwebhook_url_env = \"CRIER_TEST_LOW_TEAMS\"\n",
        )],
        |c| c.env = env(&[("CRIER_TEST_LOW_TEAMS", &url)]),
    )
    .await;
    hostile_incident(&app).await;
    let bodies = wait_requests(&server, "/workflows/x", 1).await;
    let text = bodies[0]["attachments"][0]["content"]["body"][0]["text"]
        .as_str()
        .unwrap();
    assert_eq!(
        text.lines().next().unwrap(),
        "**New incident: \\<!channel\\> Payments & \\<@U024BE7LH\\>** (investigating, impact major)",
        "{text}"
    );
    assert_eq!(
        text.lines().nth(1).unwrap(),
        "See \\<https://evil.example|your bank\\> or \\[login\\](https://evil.example) \\*now\\*",
        "{text}"
    );
    assert_eq!(
        bodies[0],
        json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.2",
                    "body": [{"type": "TextBlock", "text": text, "wrap": true}]
                }
            }]
        })
    );
}

#[tokio::test]
async fn matrix_events_mention_nobody() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"event_id": "$e1"})))
        .mount(&server)
        .await;
    let app = spawn_app_with(
        &[(
            "ops-matrix",
            &format!(
                "kind = \"matrix\"\nbase_url = \"{}\"\naccess_token_env = \"CRIER_TEST_LOW_MATRIX\"\nroom_id = \"!r:example.org\"\n",
                server.uri()
            ),
        )],
        |c| c.env = env(&[("CRIER_TEST_LOW_MATRIX", "syt_token")]),
    )
    .await;
    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": "@room outage", "impact": "major", "message": "Ping @room"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let mut reqs = Vec::new();
    for _ in 0..400 {
        reqs = server.received_requests().await.unwrap_or_default();
        if !reqs.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let body: Value = serde_json::from_slice(&reqs[0].body).unwrap();
    assert_eq!(
        body,
        json!({
            "msgtype": "m.text",
            "body": "**New incident: @room outage** (investigating, impact major)\nPing @room",
            "m.mentions": {}
        })
    );
}

#[tokio::test]
async fn control_characters_are_refused_with_their_position_and_nothing_is_written() {
    let app = spawn_app().await;
    app.component("Web").await;
    let id = app.open_incident("x").await;
    let before = app.checksum().await;
    let cases = [
        (
            "/api/v1/incidents",
            json!({"title": "Down\u{1b}[2J", "impact": "major", "message": "m"}),
            "title: contains the control character U+001B (ESC) at character 5",
        ),
        (
            "/api/v1/incidents",
            json!({"title": "t", "impact": "major", "message": "ding\u{7}"}),
            "U+0007 (BEL) at character 5",
        ),
        (
            &format!("/api/v1/incidents/{id}/updates") as &str,
            json!({"status": "identified", "message": "a\u{b}b"}),
            "U+000B (VT) at character 2",
        ),
        (
            "/api/v1/incidents",
            json!({"title": "C1 \u{9b}31m", "impact": "major", "message": "m"}),
            "U+009B (CSI) at character 4",
        ),
        (
            "/api/v1/subscribers",
            json!({"email": "a\u{7f}b@example.com"}),
            "U+007F (DEL) at character 2",
        ),
    ];
    for (p, body, want) in cases {
        let r = app.post(p, body).await;
        assert_eq!(r.status, 422, "{p}: {:?}", r.body);
        assert!(r.problem().contains(want), "{p}: {}", r.problem());
    }
    let r = app
        .put(
            "/api/v1/components/Web",
            json!({"status": "operational", "group": "Edge\u{1b}"}),
        )
        .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert!(r
        .problem()
        .contains("group: contains the control character U+001B"));
    assert_eq!(app.checksum().await, before, "a refused request wrote");
    // Line breaks and tabs stay allowed in texts; CR LF becomes LF.
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            json!({"status": "identified", "message": "Cause found.\r\n\tRollback running."}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let shown = app.get(&format!("/api/v1/incidents/{id}")).await.body;
    assert!(
        shown
            .to_string()
            .contains("Cause found.\\n\\tRollback running."),
        "{shown}"
    );
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = spawn_app().await;
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let r = app
            .client
            .get(app.url("/api/v1/incidents"))
            .header("authorization", format!("{scheme} {}", app.token))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{scheme}");
    }
    let r = app
        .client
        .get(app.url("/api/v1/incidents"))
        .header("authorization", format!("Basic {}", app.token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

async fn raw_status(app: &TestApp, req: reqwest::RequestBuilder) -> (u16, String, Value) {
    let _ = app;
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    (
        status,
        ct,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn every_rejection_is_problem_json() {
    let app = spawn_app().await;
    let big = vec![b'x'; 70 * 1024];
    // The monitoring hooks have a limit of their own (4 MiB: a notification of hundreds of alerts).
    let huge = vec![b'x'; 4 * 1024 * 1024 + 1];
    let cases: Vec<(&str, reqwest::RequestBuilder, u16)> = vec![
        (
            "too large on the Alertmanager hook",
            app.client
                .post(app.url("/api/v1/hooks/alertmanager"))
                .bearer_auth(&app.token)
                .body(huge),
            413,
        ),
        (
            "too large on the Twilio hook",
            app.client
                .post(app.url("/api/v1/hooks/twilio/sms"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(big.clone()),
            413,
        ),
        (
            "bad query string on a hook",
            app.client
                .post(app.url("/api/v1/hooks/grafana?source=a&source=b&nope=1"))
                .bearer_auth(&app.token)
                .body("{}"),
            400,
        ),
        (
            "bad query string on a list",
            app.client
                .get(app.url("/api/v1/subscribers?limit=lots"))
                .bearer_auth(&app.token),
            400,
        ),
        (
            "path that is not UTF-8",
            app.client
                .get(app.url("/api/v1/incidents/%FF%FE"))
                .bearer_auth(&app.token),
            400,
        ),
        (
            "method not allowed",
            app.client
                .patch(app.url("/api/v1/incidents"))
                .bearer_auth(&app.token),
            405,
        ),
    ];
    for (what, req, want) in cases {
        let (status, ct, body) = raw_status(&app, req).await;
        assert_eq!(status, want, "{what}: {body}");
        assert_eq!(ct, "application/problem+json", "{what}: {body}");
        assert_eq!(body["status"], want, "{what}: {body}");
        assert!(
            body["detail"].as_str().is_some_and(|d| d.len() > 10),
            "{what}: {body}"
        );
    }
}

#[tokio::test]
async fn csv_with_a_duplicate_column_or_formula_addresses_is_refused() {
    let app = spawn_app().await;
    let before = app.checksum().await;
    let r = app
        .raw(
            Method::POST,
            "/api/v1/subscribers/import",
            b"email,EMAIL\na@example.com,b@example.com\n".to_vec(),
            Some("text/csv"),
            Some(&app.token),
        )
        .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert_eq!(
        r.problem(),
        "the CSV header row names \"email\" twice (columns 1 and 2); name each column once"
    );
    assert_eq!(app.checksum().await, before);
    let r = app
        .raw(
            Method::POST,
            "/api/v1/subscribers/import",
            b"email,phone\n=1+1@example.com,\n-2@example.com,\nok+tag@example.com,\n,+358401234567\n"
                .to_vec(),
            Some("text/csv"),
            Some(&app.token),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["added"], 2, "{:?}", r.body);
    assert_eq!(r.body["rejected"], 2, "{:?}", r.body);
    let errors = r.body["errors"].to_string();
    assert!(errors.contains("starts with '='"), "{errors}");
    assert!(errors.contains("starts with '-'"), "{errors}");
    let r = app
        .post(
            "/api/v1/subscribers",
            json!({"email": "=HYPERLINK(1)@example.com"}),
        )
        .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert!(r.problem().contains("spreadsheets run as a formula"));
}

#[tokio::test]
async fn the_subscriber_list_limit_is_capped() {
    let app = spawn_app().await;
    let r = app.get("/api/v1/subscribers?limit=1001").await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert_eq!(r.body["field"], "limit");
    assert!(r.problem().contains("maximum of 1000"), "{}", r.problem());
    let r = app
        .get("/api/v1/subscribers?limit=18446744073709551615")
        .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    let r = app.get("/api/v1/subscribers?limit=1000").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// Sends a request head and the first `sent` bytes of the body it announces (the server answers
/// before the rest), then reads the answer's head.
async fn answer_head(base: &str, head: String, sent: usize) -> String {
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&vec![b'x'; sent]).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Ok(Err(_)) => break,
        }
    }
    String::from_utf8_lossy(&got).to_ascii_lowercase()
}

#[tokio::test]
async fn an_early_answer_to_a_large_post_says_connection_close() {
    let app = spawn_app().await;
    let len = 10 * 1024 * 1024;
    let head = format!(
        "POST /api/v1/subscribers/import HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: {len}\r\n\r\n"
    );
    let answer = answer_head(&app.base, head, 0).await;
    assert!(answer.starts_with("http/1.1 401"), "{answer}");
    assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    // Over the body limit with a token: 413, also closing.
    let head = format!(
        "POST /api/v1/incidents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n",
        app.token
    );
    // The server reads up to its 64 KiB limit, then answers.
    let answer = answer_head(&app.base, head, 80 * 1024).await;
    assert!(answer.starts_with("http/1.1 413"), "{answer}");
    assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
    // A request without a body keeps its connection.
    let answer = answer_head(
        &app.base,
        "GET /api/v1/incidents HTTP/1.1\r\nHost: x\r\n\r\n".into(),
        0,
    )
    .await;
    assert!(answer.starts_with("http/1.1 401"), "{answer}");
    assert!(!answer.contains("connection: close"), "{answer}");
}

#[tokio::test]
async fn alert_text_with_control_characters_is_marked_not_refused() {
    // A refusal would make Alertmanager retry the same payload forever.
    let app = spawn_app().await;
    let payload = json!({
      "version": "4", "groupKey": "{}:{alertname=\"Esc\"}", "truncatedAlerts": 0,
      "status": "firing", "receiver": "crier", "groupLabels": {"alertname": "Esc"},
      "commonLabels": {"alertname": "Esc"},
      "commonAnnotations": {"summary": "Disk \u{1b}[31mfull"},
      "externalURL": "http://alertmanager:9093",
      "alerts": [{"status": "firing", "labels": {"alertname": "Esc", "instance": "db-1"},
         "annotations": {"summary": "Disk \u{1b}[31mfull\u{7}"},
         "startsAt": "2026-11-23T08:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
         "generatorURL": "http://prometheus/graph", "fingerprint": "1a2b3c"}]
    });
    let r = app.post("/api/v1/hooks/alertmanager", payload).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let id = r.body["outcomes"][0]["incident"]
        .as_str()
        .unwrap()
        .to_owned();
    let i = app.get(&format!("/api/v1/incidents/{id}")).await.body;
    assert_eq!(i["title"], "Disk \u{fffd}[31mfull", "{i}");
    assert_eq!(
        i["updates"][0]["body"]["en"], "Disk \u{fffd}[31mfull\u{fffd}",
        "{i}"
    );
}

#[tokio::test]
async fn a_notice_subject_with_a_control_character_is_refused() {
    let app = spawn_app_with_channels(&[("log", "kind = \"log\"\n")]).await;
    let r = app
        .post(
            "/api/v1/notices",
            json!({"cron": "0 9 * * 1", "tz": "Europe/Helsinki", "subject": "Weekly\u{1b}]0;x",
                   "message": "Maintenance window", "channels": ["log"]}),
        )
        .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert!(
        r.problem()
            .starts_with("subject: contains the control character U+001B (ESC) at character 7"),
        "{}",
        r.problem()
    );
    assert_eq!(app.get("/api/v1/notices").await.body, json!([]));
}
