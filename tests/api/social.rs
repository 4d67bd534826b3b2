//! Social channels through the running app: an incident's updates go out to a (mocked) Mastodon
//! instance as one thread — a long update in parts within the instance's own length limit, each
//! part replying to the previous one, the next update replying to the last part — and to a
//! (mocked) Telegram chat as replies.

use crate::helpers::{env, spawn_app_with, TestApp};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Answers every post with a new id: `prefix` + 1, 2, 3…
struct Ids {
    next: AtomicU64,
    body: fn(u64) -> Value,
}

impl Respond for Ids {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        ResponseTemplate::new(200).set_body_json((self.body)(n))
    }
}

async fn wait_delivered(app: &TestApp, id: &str, n: u64) -> Value {
    for _ in 0..400 {
        let r = app.get(&format!("/api/v1/incidents/{id}/deliveries")).await;
        let delivered: u64 = r.body["channels"]
            .as_object()
            .map(|m| {
                m.values()
                    .map(|c| c["delivered"].as_u64().unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0);
        if delivered >= n {
            return r.body;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("deliveries of {id} were not delivered");
}

fn bodies(reqs: &[Request], p: &str) -> Vec<Value> {
    reqs.iter()
        .filter(|r| r.url.path() == p)
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

#[tokio::test]
async fn updates_thread_on_mastodon_and_telegram() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/instance"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "configuration": {"statuses": {"max_characters": 200, "characters_reserved_per_url": 23}}
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/statuses"))
        .and(header("authorization", "Bearer masto-token"))
        .respond_with(Ids {
            next: AtomicU64::new(0),
            body: |n| json!({"id": format!("11000{n}")}),
        })
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/bot42:tg-token/sendMessage"))
        .respond_with(Ids {
            next: AtomicU64::new(0),
            body: |n| json!({"ok": true, "result": {"message_id": n}}),
        })
        .mount(&server)
        .await;
    let base = server.uri();
    let masto = format!(
        "kind = \"mastodon\"\nbase_url = \"{base}\"\ntoken_env = \"CRIER_TEST_SOCIAL_MASTO\"\nrate = \"100/s\"\n"
    );
    let tg = format!(
        "kind = \"telegram\"\nbase_url = \"{base}\"\nbot_token_env = \"CRIER_TEST_SOCIAL_TG\"\nchat_id = \"-100777\"\nrate = \"100/s\"\n"
    );
    let app = spawn_app_with(&[("masto", &masto), ("tg", &tg)], |c| {
        c.env = env(&[
            ("CRIER_TEST_SOCIAL_MASTO", "masto-token"),
            ("CRIER_TEST_SOCIAL_TG", "42:tg-token"),
        ])
    })
    .await;

    let long = "Check-in is down at every airport we fly from; staff check passengers in by hand. "
        .repeat(4);
    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": "Check-in down", "impact": "major", "message": long}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    wait_delivered(&app, &id, 2).await;
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            json!({"status": "identified", "message": "A network fault."}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    wait_delivered(&app, &id, 4).await;

    let reqs = server.received_requests().await.unwrap();
    let statuses = bodies(&reqs, "/api/v1/statuses");
    let n = statuses.len();
    assert!(
        n >= 3,
        "the long update is split at the instance's 200: {statuses:?}"
    );
    for s in &statuses {
        assert!(s["status"].as_str().unwrap().chars().count() <= 200, "{s}");
        assert_eq!(s["visibility"], "public");
        assert_eq!(s["language"], "en");
    }
    assert!(statuses[0].get("in_reply_to_id").is_none());
    for (i, s) in statuses.iter().enumerate().skip(1) {
        assert_eq!(
            s["in_reply_to_id"],
            format!("11000{i}"),
            "post {} replies to post {i}",
            i + 1
        );
    }
    assert!(statuses[n - 1]["status"]
        .as_str()
        .unwrap()
        .contains("A network fault."));

    let messages = bodies(&reqs, "/bot42:tg-token/sendMessage");
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[0]["chat_id"], -100777);
    assert!(messages[0].get("reply_to_message_id").is_none());
    assert_eq!(messages[1]["reply_to_message_id"], 1);
    assert!(messages[1]["text"]
        .as_str()
        .unwrap()
        .contains("A network fault."));
}
