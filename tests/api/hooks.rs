//! Twilio through the whole pipeline against a wiremock Twilio: the documented request, the
//! receipt, and the status callback (signature checked) recording undelivered.

use crate::helpers::{env, spawn_app_with};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use std::time::Duration;
use wiremock::matchers::{header_exists, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CALLBACK: &str = "https://crier.example.com/api/v1/hooks/twilio/sms";

fn sign(token: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(CALLBACK.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn form(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace('+', "%2B")))
        .collect::<Vec<_>>()
        .join("&")
}

#[tokio::test]
async fn twilio_send_and_signed_status_callback() {
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(
            "/2010-04-01/Accounts/AC00000000000000000000000000000001/Messages.json",
        ))
        .and(header_exists("authorization"))
        .respond_with(ResponseTemplate::new(201).set_body_json(
            json!({"sid": "SM0123456789abcdef0123456789abcdef", "status": "queued"}),
        ))
        .expect(1)
        .mount(&twilio)
        .await;
    let channel = format!(
        "kind = \"twilio\"\naccount_sid_env = \"HOOKS_TEST_TWILIO_SID\"\nauth_token_env = \"HOOKS_TEST_TWILIO_TOKEN\"\n\
         from = \"+15005550006\"\nstatus_callback = \"{CALLBACK}\"\nbase_url = \"{}\"\n",
        twilio.uri()
    );
    let app = spawn_app_with(&[("sms", &channel)], |c| {
        c.env = env(&[
            (
                "HOOKS_TEST_TWILIO_SID",
                "AC00000000000000000000000000000001",
            ),
            ("HOOKS_TEST_TWILIO_TOKEN", "hooks-test-token"),
        ])
    })
    .await;
    app.post("/api/v1/subscribers", json!({"phone": "+358401234567"}))
        .await;
    let id = app.open_incident("Radar outage").await;
    let mut status = Value::Null;
    for _ in 0..400 {
        status = app
            .get(&format!("/api/v1/incidents/{id}/deliveries"))
            .await
            .body;
        if status["channels"]["sms"]["delivered"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(status["channels"]["sms"]["delivered"], 1, "{status}");

    // The request Twilio received, field by field.
    let reqs = twilio.received_requests().await.unwrap();
    let body = String::from_utf8(reqs[0].body.clone()).unwrap();
    let fields: Vec<(String, String)> = body
        .split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (
                k.to_owned(),
                v.replace("%2B", "+").replace('+', " ").replace("%20", " "),
            )
        })
        .collect();
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(
        get("To").as_deref().map(|s| s.replace(' ', "+")),
        Some("+358401234567".into()),
        "{body}"
    );
    assert_eq!(
        get("StatusCallback")
            .as_deref()
            .map(|s| s.replace("%3A", ":").replace("%2F", "/")),
        Some(CALLBACK.into()),
        "{body}"
    );
    assert!(get("Body").unwrap().contains("Radar outage"), "{body}");
    let auth = reqs[0]
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap();
    let expected = base64::engine::general_purpose::STANDARD
        .encode("AC00000000000000000000000000000001:hooks-test-token");
    assert_eq!(auth, format!("Basic {expected}"));

    // A forged callback is refused and writes nothing.
    let params = [
        ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
        ("MessageStatus", "undelivered"),
        ("ErrorCode", "30003"),
        ("To", "+358401234567"),
    ];
    let before = app.checksum().await;
    let r = app
        .client
        .post(app.url("/api/v1/hooks/twilio/sms"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", sign("wrong-token", &params))
        .body(form(&params))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(app.checksum().await, before);

    let r = app
        .client
        .post(app.url("/api/v1/hooks/twilio/sms"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", sign("hooks-test-token", &params))
        .body(form(&params))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let status = app
        .get(&format!("/api/v1/incidents/{id}/deliveries"))
        .await
        .body;
    assert_eq!(status["channels"]["sms"]["undelivered"], 1, "{status}");
    let failure = &status["failures"][0];
    assert_eq!(
        failure["reason"], "provider reported undelivered (error 30003)",
        "{status}"
    );

    // Callbacks arrive out of order: a late `sent` (or another final status) does not replace
    // the final one recorded, and a status Twilio does not document is refused, writing nothing.
    let callback = |status: &'static str| {
        let params = [
            ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
            ("MessageStatus", status),
        ];
        app.client
            .post(app.url("/api/v1/hooks/twilio/sms"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", sign("hooks-test-token", &params))
            .body(form(&params))
            .send()
    };
    for late in ["sent", "queued", "delivered"] {
        assert_eq!(callback(late).await.unwrap().status(), 204, "{late}");
    }
    let status = app
        .get(&format!("/api/v1/incidents/{id}/deliveries"))
        .await
        .body;
    assert_eq!(status["channels"]["sms"]["undelivered"], 1, "{status}");
    assert_eq!(status["channels"]["sms"]["confirmed"], 0, "{status}");
    let before = app.checksum().await;
    let r = callback("pwned").await.unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let problem: Value = r.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("\"pwned\" is not a Twilio message status"),
        "{problem}"
    );
    assert_eq!(
        app.checksum().await,
        before,
        "an unknown status was written"
    );
}
