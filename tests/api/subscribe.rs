//! Self-service subscriptions through the running server: the email double opt-in (through a
//! log channel here, through the real SMTP server in the e2e test), the SMS code against a
//! wiremock Twilio, limits and identical answers, the manage page, inbound STOP/START/HELP with
//! signatures, and Twilio error 21610.

use crate::helpers::{env, spawn_app_with, TestApp};
use base64::Engine;
use crier::store::port::{Outbox, Subscribers};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use std::time::Duration;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const PUBLIC: &str = "https://status.example.com";
const SID: &str = "AC00000000000000000000000000000042";

/// A log channel that confirmations go to (and a Twilio one when `twilio` is given).
pub async fn app(
    twilio: Option<&MockServer>,
    tweak: impl FnOnce(&mut crier::config::Config),
) -> TestApp {
    let sms = twilio.map(|t| {
        format!(
            "kind = \"twilio\"\naccount_sid_env = \"SUB_TEST_TWILIO_SID\"\nauth_token_env = \"SUB_TEST_TWILIO_TOKEN\"\n\
             from = \"+15005550006\"\nbase_url = \"{}\"\nretry = [\"1h\"]\n",
            t.uri()
        )
    });
    let mut channels = vec![("mail", "kind = \"log\"\n")];
    if let Some(s) = &sms {
        channels.push(("sms", s.as_str()));
    }
    spawn_app_with(&channels, |c| {
        c.render.public_url = Some(PUBLIC.into());
        c.subscriptions.email_channel = Some("mail".into());
        c.env = env(&[
            ("SUB_TEST_TWILIO_SID", SID),
            ("SUB_TEST_TWILIO_TOKEN", "sub-test-token"),
        ]);
        tweak(c);
    })
    .await
}

/// POSTs a form as a same-origin browser would.
pub async fn post_form(app: &TestApp, path: &str, form: &str) -> (u16, String) {
    let r = app
        .client
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .body(form.to_owned())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The log channel's lines for `to`.
fn mails(app: &TestApp, to: &str) -> Vec<Value> {
    let path = app.dir.path().join("data/outbox/mail.jsonl");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["recipient"] == to)
        .collect()
}

async fn wait_mails(app: &TestApp, to: &str, n: usize) -> Vec<Value> {
    for _ in 0..400 {
        let m = mails(app, to);
        if m.len() >= n {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{to} did not get {n} message(s)");
}

/// The confirmation path (`/subscribe/confirm/<token>`) in a message's text.
pub fn confirm_path(text: &str) -> String {
    let at = text
        .find("/subscribe/confirm/")
        .expect("a confirmation link");
    text[at..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches(['>', '"'])
        .to_owned()
}

async fn subscriber(app: &TestApp, address: &str) -> Option<Value> {
    let list = app.get("/api/v1/subscribers").await.body;
    list.as_array()
        .unwrap()
        .iter()
        .find(|s| s["email"] == address || s["phone"] == address)
        .cloned()
}

#[tokio::test]
async fn an_emailed_link_confirms_once_and_unconfirmed_sign_ups_receive_nothing() {
    let app = app(None, |_| {}).await;
    app.component("api").await;
    app.component("web").await;
    // A staff-added subscriber, to count the fan-out against.
    app.post("/api/v1/subscribers", json!({"email": "staff@example.com"}))
        .await;
    let (status, page) = post_form(
        &app,
        "/subscribe",
        "address=New%40Example.com&component=api&language=fi",
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Check your inbox"), "{page}");
    let m = wait_mails(&app, "new@example.com", 1).await;
    assert_eq!(
        m[0]["locale"], "fi",
        "the confirmation is in the chosen language"
    );
    assert!(
        m[0]["subject"].as_str().unwrap().contains("Vahvista"),
        "{}",
        m[0]
    );
    let link = confirm_path(m[0]["text"].as_str().unwrap());
    let token = link.trim_start_matches("/subscribe/confirm/");
    assert!(m[0]["text"]
        .as_str()
        .unwrap()
        .contains(&format!("{PUBLIC}/subscribe/confirm/")));

    // Pending: the staff list shows it apart, and a fan-out skips it.
    let pending = app.get("/api/v1/subscribers?pending=true").await.body;
    assert_eq!(pending.as_array().unwrap().len(), 1, "{pending}");
    assert_eq!(pending[0]["email"], "new@example.com");
    let out = crate::helpers::crier(&app, &["subscribers", "list", "--pending", "--json"]).await;
    let cli = crate::helpers::json(&out);
    assert_eq!(cli.as_array().unwrap().len(), 1, "{cli}");
    assert_eq!(cli[0]["email"], "new@example.com");
    let confirmed = app.get("/api/v1/subscribers?pending=false").await.body;
    assert_eq!(confirmed.as_array().unwrap().len(), 1, "{confirmed}");
    let raw = serde_json::to_string(&app.store.subscribers(10).await.unwrap()).unwrap();
    assert!(
        !raw.contains(token.split('.').nth(1).unwrap()),
        "stored only hashed"
    );
    let id = app.open_incident("Radar outage").await;
    for _ in 0..400 {
        if !app
            .store
            .deliveries_of(id.parse().unwrap())
            .await
            .unwrap()
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    wait_mails(&app, "staff@example.com", 1).await;
    let deliveries = app.store.deliveries_of(id.parse().unwrap()).await.unwrap();
    assert_eq!(
        deliveries.len(),
        1,
        "only the confirmed subscriber: {deliveries:?}"
    );
    assert_eq!(
        mails(&app, "new@example.com").len(),
        1,
        "only the confirmation"
    );

    // The GET shows a button and changes nothing; a forged token is refused.
    let before = app.checksum().await;
    let r = app.client.get(app.url(&link)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("method=\"post\""));
    let forged = format!("{}0", &link[..link.len() - 1]);
    let forged = if forged == link {
        format!("{link}x")
    } else {
        forged
    };
    assert_eq!(post_form(&app, &forged, "").await.0, 404);
    assert_eq!(
        app.checksum().await,
        before,
        "a refused link writes nothing"
    );
    let (status, page) = post_form(&app, &link, "").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("/manage/"), "{page}");
    let s = subscriber(&app, "new@example.com").await.unwrap();
    assert_eq!(s["confirmed"], true);
    assert_eq!(s["locale"], "fi");
    assert_eq!(s["components"], json!(["api"]));
    let before = app.checksum().await;
    assert_eq!(post_form(&app, &link, "").await.0, 404, "single use");
    assert_eq!(app.checksum().await, before);
}

#[tokio::test]
async fn answers_are_identical_whatever_the_address_and_limits_hold() {
    let app = app(None, |c| {
        c.subscriptions.per_destination = crier::channels::Rate::parse("2/24h").unwrap();
        c.subscriptions.per_client = crier::channels::Rate::parse("5/4h").unwrap();
    })
    .await;
    app.post("/api/v1/subscribers", json!({"email": "known@example.com"}))
        .await;

    // A cross-site post is refused and writes nothing.
    let before = app.checksum().await;
    let r = app
        .client
        .post(app.url("/subscribe"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site")
        .body("address=x%40example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // The honeypot: the same answer, nothing written, nothing sent.
    let (s0, honeypot) =
        post_form(&app, "/subscribe", "address=bot%40example.com&website=spam").await;
    assert_eq!(app.checksum().await, before);
    // A bad address: the error is tied to its field.
    let (s, bad) = post_form(&app, "/subscribe", "address=not-an-address%40").await;
    assert_eq!(s, 422);
    assert!(bad.contains("aria-invalid=\"true\""), "{bad}");
    assert!(
        bad.contains("aria-describedby=\"address-error address-hint\""),
        "{bad}"
    );
    assert!(bad.contains("id=\"address-error\""), "{bad}");
    assert!(
        bad.contains("value=\"not-an-address@\""),
        "what was typed stays: {bad}"
    );
    assert_eq!(app.checksum().await, before);

    let (s1, unknown) = post_form(&app, "/subscribe", "address=new%40example.com").await;
    let (s2, pending) = post_form(&app, "/subscribe", "address=new%40example.com").await;
    let (s3, over) = post_form(&app, "/subscribe", "address=new%40example.com").await;
    let (s4, known) = post_form(&app, "/subscribe", "address=known%40example.com").await;
    assert_eq!([s0, s1, s2, s3, s4], [200; 5]);
    assert_eq!(
        unknown, known,
        "byte-identical for a known and an unknown address"
    );
    assert_eq!(unknown, pending);
    assert_eq!(unknown, over);
    assert_eq!(unknown, honeypot);
    // A marker sign-up, sent after the others were answered.
    post_form(&app, "/subscribe", "address=marker%40example.com").await;
    wait_mails(&app, "marker@example.com", 1).await;
    assert_eq!(
        mails(&app, "new@example.com").len(),
        2,
        "no confirmation beyond the per-destination limit"
    );
    assert!(mails(&app, "known@example.com").is_empty());
    assert!(mails(&app, "bot@example.com").is_empty());
    // Six sign-ups from this address (the limit is 5): the next is refused.
    let (s, page) = post_form(&app, "/subscribe", "address=late%40example.com").await;
    assert_eq!(s, 429, "{page}");
    assert!(page.contains("Too many sign-ups"), "{page}");
}

#[tokio::test]
async fn the_manage_page_changes_components_and_language_and_unsubscribes() {
    let app = app(None, |_| {}).await;
    app.component("api").await;
    app.component("web").await;
    app.post("/api/v1/subscribers", json!({"email": "m@example.com"}))
        .await;
    app.post("/api/v1/subscribers", json!({"email": "o@example.com"}))
        .await;
    let subs = app.store.subscribers(10).await.unwrap();
    let (m, o) = (&subs[0], &subs[1]);
    let page = app
        .client
        .get(app.url(&format!("/manage/{}", m.unsubscribe_token)))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("m@example.com") && html.contains("value=\"web\""),
        "{html}"
    );
    let (s, html) = post_form(
        &app,
        &format!("/manage/{}", m.unsubscribe_token),
        "action=save&component=web&language=sv",
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        html.contains("lang=\"sv\""),
        "answers in the new language: {html}"
    );
    let v = subscriber(&app, "m@example.com").await.unwrap();
    assert_eq!(v["locale"], "sv");
    assert_eq!(v["components"], json!(["web"]));
    let (s, _) = post_form(
        &app,
        &format!("/manage/{}", m.unsubscribe_token),
        "action=unsubscribe",
    )
    .await;
    assert_eq!(s, 200);
    assert!(subscriber(&app, "m@example.com").await.is_none());
    assert_eq!(
        app.client
            .get(app.url(&format!("/manage/{}", m.unsubscribe_token)))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // RFC 8058 one-click: a bare POST, no cookie, no login.
    let r = reqwest::Client::new()
        .post(app.url(&format!("/api/v1/unsubscribe/{}", o.unsubscribe_token)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert!(subscriber(&app, "o@example.com").await.is_none());
}

/// The bodies Twilio received for `to`.
async fn sms_to(twilio: &MockServer, to: &str) -> Vec<String> {
    let enc = to.replace('+', "%2B");
    twilio
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .map(|r| String::from_utf8(r.body).unwrap())
        .filter(|b| b.contains(&format!("To={enc}")))
        .collect()
}

async fn wait_sms(twilio: &MockServer, to: &str, n: usize) -> Vec<String> {
    for _ in 0..400 {
        let v = sms_to(twilio, to).await;
        if v.len() >= n {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{to} did not get {n} SMS");
}

fn code_in(body: &str) -> String {
    let text = body
        .split('&')
        .find_map(|kv| kv.strip_prefix("Body="))
        .unwrap();
    let digits: Vec<String> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| w.len() == 6)
        .map(str::to_owned)
        .collect();
    digits[0].clone()
}

async fn twilio_ok() -> MockServer {
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/2010-04-01/Accounts/{SID}/Messages.json")))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"sid": "SM1", "status": "queued"})),
        )
        .mount(&twilio)
        .await;
    twilio
}

#[tokio::test]
async fn an_sms_code_confirms_and_three_wrong_codes_lock_it() {
    let twilio = twilio_ok().await;
    let app = app(Some(&twilio), |_| {}).await;
    let phone = "+358401234567";
    let (s, page) = post_form(&app, "/subscribe", "address=%2B358+40+123+4567&language=sv").await;
    assert_eq!(s, 200, "{page}");
    assert!(page.contains("name=\"code\""), "{page}");
    let sent = wait_sms(&twilio, phone, 1).await;
    let code = code_in(&sent[0]);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let form = |c: &str| format!("phone=%2B358401234567&code={c}");
    let (s, page) = post_form(&app, "/subscribe/code", &form(wrong)).await;
    assert_eq!(s, 422);
    assert!(page.contains("Attempts left: 2"), "{page}");
    assert!(
        page.contains("aria-describedby=\"code-error code-hint\""),
        "{page}"
    );
    post_form(&app, "/subscribe/code", &form(wrong)).await;
    let (s, _) = post_form(&app, "/subscribe/code", &form(wrong)).await;
    assert_eq!(s, 404, "locked after three");
    let before = app.checksum().await;
    let (s, _) = post_form(&app, "/subscribe/code", &form(&code)).await;
    assert_eq!(s, 404, "even the right code, once locked");
    assert_eq!(app.checksum().await, before);
    assert_eq!(subscriber(&app, phone).await.unwrap()["confirmed"], false);

    // Signing up again sends a new code, which confirms.
    post_form(&app, "/subscribe", "address=%2B358401234567&language=sv").await;
    let sent = wait_sms(&twilio, phone, 2).await;
    let code = code_in(&sent[1]);
    let (s, page) = post_form(&app, "/subscribe/code", &form(&code)).await;
    assert_eq!(s, 200, "{page}");
    let v = subscriber(&app, phone).await.unwrap();
    assert_eq!(v["confirmed"], true);
    assert_eq!(v["locale"], "sv");
}

fn sign(url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(b"sub-test-token").unwrap();
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

async fn inbound(app: &TestApp, body: &str, signature: Option<&str>) -> (u16, String) {
    let params = [
        ("From", "+358401234567"),
        ("Body", body),
        ("MessageSid", "SM9"),
    ];
    let url = format!("{PUBLIC}/api/v1/hooks/twilio/sms/inbound");
    let sig = signature.map_or_else(|| sign(&url, &params), str::to_owned);
    let form = params
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace('+', "%2B").replace(' ', "+")))
        .collect::<Vec<_>>()
        .join("&");
    let r = app
        .client
        .post(app.url("/api/v1/hooks/twilio/sms/inbound"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", sig)
        .body(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn inbound_stop_start_and_help_are_signed_and_change_the_number() {
    let twilio = twilio_ok().await;
    let app = app(Some(&twilio), |_| {}).await;
    app.post(
        "/api/v1/subscribers",
        json!({"phone": "+358401234567", "locale": "fi"}),
    )
    .await;
    let before = app.checksum().await;
    let (s, _) = inbound(&app, "STOP", Some("Zm9yZ2Vk")).await;
    assert_eq!(s, 403);
    assert_eq!(
        app.checksum().await,
        before,
        "a forged message writes nothing"
    );
    assert_eq!(
        subscriber(&app, "+358401234567").await.unwrap()["opted_out"],
        false
    );

    let (s, twiml) = inbound(&app, " stop ", None).await;
    assert_eq!(s, 200);
    assert!(twiml.contains("<Response></Response>"), "{twiml}");
    assert_eq!(
        subscriber(&app, "+358401234567").await.unwrap()["opted_out"],
        true
    );
    // Opted out: a fan-out sends it nothing (counted once the other number has its message).
    app.post("/api/v1/subscribers", json!({"phone": "+358401234568"}))
        .await;
    let id = app.open_incident("Radar outage").await;
    wait_sms(&twilio, "+358401234568", 1).await;
    let to_sms = app
        .store
        .deliveries_of(id.parse().unwrap())
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.channel == "sms")
        .count();
    assert_eq!(to_sms, 1, "only the number that did not say STOP");
    assert!(sms_to(&twilio, "+358401234567").await.is_empty());

    let (s, _) = inbound(&app, "Start", None).await;
    assert_eq!(s, 200);
    assert_eq!(
        subscriber(&app, "+358401234567").await.unwrap()["opted_out"],
        false
    );
    let (s, twiml) = inbound(&app, "HELP", None).await;
    assert_eq!(s, 200);
    assert!(
        twiml.contains("<Message>") && twiml.contains("STOP"),
        "{twiml}"
    );
    assert!(
        twiml.contains("tilannetiedotteet"),
        "in the subscriber's language: {twiml}"
    );
    let (_, twiml) = inbound(&app, "stop please", None).await;
    assert!(twiml.contains("<Response></Response>"));
    assert_eq!(
        subscriber(&app, "+358401234567").await.unwrap()["opted_out"],
        false,
        "only the whole body is a keyword"
    );
}

#[tokio::test]
async fn a_send_refused_with_21610_marks_the_number_opted_out() {
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string_contains("To=%2B358401234567"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "code": 21610, "message": "Attempt to send to unsubscribed recipient",
            "more_info": "https://www.twilio.com/docs/errors/21610", "status": 400})))
        .mount(&twilio)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("To=%2B358401234568"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"sid": "SM2", "status": "queued"})),
        )
        .mount(&twilio)
        .await;
    let app = app(Some(&twilio), |_| {}).await;
    app.post("/api/v1/subscribers", json!({"phone": "+358401234567"}))
        .await;
    app.post("/api/v1/subscribers", json!({"phone": "+358401234568"}))
        .await;
    app.open_incident("First").await;
    wait_sms(&twilio, "+358401234568", 1).await;
    for _ in 0..400 {
        if subscriber(&app, "+358401234567").await.unwrap()["opted_out"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        subscriber(&app, "+358401234567").await.unwrap()["opted_out"],
        true
    );
    app.open_incident("Second").await;
    wait_sms(&twilio, "+358401234568", 2).await;
    assert_eq!(
        sms_to(&twilio, "+358401234567").await.len(),
        1,
        "no further sends to an opted-out number"
    );
}

#[tokio::test]
#[ignore = "e2e: needs aiosmtpd; run by scripts/test.sh"]
async fn e2e_subscribe_confirmation_email_arrives_over_smtp_and_its_link_confirms_once() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("mail");
    let (_smtp, port, ca) = crate::e2e::smtp_server(&maildir);
    let email = format!(
        "kind = \"email\"\nhost = \"localhost\"\nport = {port}\ntls = \"starttls\"\n\
         username_env = \"SUB_E2E_SMTP_USER\"\npassword_env = \"SUB_E2E_SMTP_PASS\"\n\
         from = \"Status <status@example.com>\"\nca_file = \"{}\"\nsend_timeout = \"10s\"\n",
        ca.display()
    );
    // No `email_channel` configured: the first email channel is used.
    let app = spawn_app_with(&[("email", &email)], |c| {
        c.render.public_url = Some(PUBLIC.into());
        c.env = env(&[
            ("SUB_E2E_SMTP_USER", "crier-e2e"),
            ("SUB_E2E_SMTP_PASS", "s3cret-pass"),
        ]);
    })
    .await;
    let (s, page) = post_form(
        &app,
        "/subscribe",
        "address=reader%40example.com&language=en",
    )
    .await;
    assert_eq!(s, 200, "{page}");
    let mut eml = String::new();
    for _ in 0..400 {
        let found = std::fs::read_dir(&maildir).ok().and_then(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| p.extension().is_some_and(|x| x == "eml"))
        });
        if let Some(p) = found {
            eml = std::fs::read_to_string(p).unwrap();
            if !eml.is_empty() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(eml.contains("To: reader@example.com"), "{eml}");
    assert!(eml.contains("Confirm your subscription"), "{eml}");
    // Quoted-printable soft line breaks joined.
    let text = eml.replace("=\r\n", "").replace("=3D", "=");
    let link = confirm_path(&text);
    let (s, page) = post_form(&app, &link, "").await;
    assert_eq!(s, 200, "{page}");
    assert!(page.contains("You are subscribed"), "{page}");
    let before = app.checksum().await;
    assert_eq!(
        post_form(&app, &link, "").await.0,
        404,
        "a second use is refused"
    );
    assert_eq!(app.checksum().await, before, "and changes nothing");
    let s = subscriber(&app, "reader@example.com").await.unwrap();
    assert_eq!(s["confirmed"], true);
}

#[tokio::test]
#[ignore = "e2e: needs chromium and chromium-driver; run by scripts/test.sh"]
async fn e2e_browser_subscribe_on_a_phone_without_javascript() {
    use crate::browser::{Browser, Options};
    let app = app(None, |_| {}).await;
    app.component("Check-in").await;
    app.component("Baggage").await;

    let phone = Browser::start(Options::phone_without_js()).await;
    phone.goto(&app.url("/subscribe?lang=fi")).await;
    assert_eq!(phone.text("h1").await, "Tilaa tilannetiedotteet");
    for css in [
        "form.subscribe",
        "#address",
        "#language",
        "button[type=submit]",
    ] {
        let (x, _, w, _) = phone.rect(css).await;
        assert!(
            x >= 0.0 && x + w <= 360.0,
            "{css} overflows 360 px: x={x} width={w}"
        );
    }
    phone.screenshot("subscribe-phone-fi").await;

    // A bad address: the error is shown next to the field and tied to it.
    phone.type_into("#address", "lukija@").await;
    phone.click_and_load("button[type=submit]").await;
    let error = phone.text("#address-error").await;
    assert!(error.contains("nimi@example.com"), "{error}");
    assert_eq!(
        phone.attr("#address", "aria-describedby").await.as_deref(),
        Some("address-error address-hint")
    );
    assert_eq!(
        phone.attr("#address", "aria-invalid").await.as_deref(),
        Some("true")
    );
    phone.screenshot("subscribe-phone-error-fi").await;

    // A good one, with a component and a language.
    phone.type_into("#address", "lukija@example.com").await;
    phone.click("input[value=Baggage]").await;
    phone.click("option[value=sv]").await;
    phone.click_and_load("button[type=submit]").await;
    assert_eq!(phone.text("h1").await, "Tarkista sähköpostisi");
    phone.screenshot("subscribe-phone-check-inbox-fi").await;
    let m = wait_mails(&app, "lukija@example.com", 1).await;
    assert_eq!(m[0]["locale"], "sv", "the chosen language, not the page's");

    // The link from the message, then the manage page.
    let link = confirm_path(m[0]["text"].as_str().unwrap());
    phone.goto(&app.url(&format!("{link}?lang=sv"))).await;
    phone.click_and_load("button[type=submit]").await;
    assert_eq!(phone.text("h1").await, "Du prenumererar nu");
    phone.click_and_load("main a[href^='/manage/']").await;
    assert_eq!(phone.text("h1").await, "Din prenumeration");
    assert!(phone.text("main").await.contains("lukija@example.com"));
    for css in ["form.subscribe", "form.unsubscribe", "button.danger"] {
        let (x, _, w, _) = phone.rect(css).await;
        assert!(
            x >= 0.0 && x + w <= 360.0,
            "{css} overflows 360 px: x={x} width={w}"
        );
    }
    phone.screenshot("manage-phone-sv").await;
    let manage = phone.url().await;
    let s = subscriber(&app, "lukija@example.com").await.unwrap();
    assert_eq!(s["confirmed"], true);
    assert_eq!(s["components"], json!(["Baggage"]));
    phone.close().await;

    // With JavaScript on, only to measure: no word broken across lines, in any language.
    let measure = Browser::start(Options::phone()).await;
    for path in [
        app.url("/subscribe?lang=fi"),
        app.url("/subscribe?lang=sv"),
        app.url("/subscribe?lang=en"),
        manage,
    ] {
        measure.goto(&path).await;
        measure.assert_words_whole(&path).await;
    }
    measure.close().await;

    // The same form on a desktop, JavaScript off too.
    let desk = Browser::start(Options {
        width: 1280,
        height: 900,
        javascript: false,
    })
    .await;
    desk.goto(&app.url("/subscribe?lang=en")).await;
    assert_eq!(desk.text("h1").await, "Get status updates");
    desk.screenshot("subscribe-desktop-en").await;
    desk.close().await;
}

#[tokio::test]
async fn unconfirmed_sign_ups_are_purged_and_staff_added_ones_kept() {
    // A purge period far below what the config file allows, so the purge task runs at once.
    let app = app(None, |c| {
        c.subscriptions.purge_after = Duration::from_millis(300);
    })
    .await;
    app.post("/api/v1/subscribers", json!({"email": "staff@example.com"}))
        .await;
    post_form(&app, "/subscribe", "address=pending%40example.com").await;
    for _ in 0..400 {
        if subscriber(&app, "pending@example.com").await.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        subscriber(&app, "pending@example.com").await.is_none(),
        "the unconfirmed sign-up is purged"
    );
    assert!(
        subscriber(&app, "staff@example.com").await.is_some(),
        "a staff-added subscriber is never purged"
    );
}
