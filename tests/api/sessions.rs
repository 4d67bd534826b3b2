//! Browser sessions, CSRF, TOTP second factors and trusted proxies (issue 12): sessions end
//! when idle, at their absolute limit, at logout, and when their user is disabled or given a
//! new role; a cookie-authenticated write without the CSRF token or from another origin is
//! refused and writes nothing; session ids and recovery codes are stored only hashed; TOTP
//! enrolment, codes good once, recovery codes good once; `require_totp` lets an unenrolled
//! user do nothing but enrol; a spoofed X-Forwarded-For does not evade the login throttle.
//!
//! Time is the server's injected auth clock (`Config::auth.clock`), advanced by the test.

use crate::helpers::{spawn_app_with, TestApp};
use crier::api::session::{AuthClock, Cidr};
use crier::domain::audit::AuditFilter;
use crier::domain::{Role, UserName};
use crier::store::port::{Audit, Dump, Sessions};
use serde_json::{json, Value};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery staple";

async fn app_with(configure: impl FnOnce(&mut crier::config::Config)) -> (TestApp, AuthClock) {
    let clock = AuthClock::default();
    let c = clock.clone();
    let app = spawn_app_with(&[], move |cfg| {
        cfg.auth.clock = c;
        configure(cfg);
    })
    .await;
    (app, clock)
}

async fn add_user(app: &TestApp, name: &str, role: &str) {
    let r = app
        .post(
            "/api/v1/users",
            json!({"name": name, "role": role, "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
}

struct Answer {
    status: u16,
    body: Value,
    cookie: Option<String>,
    set_cookie: Vec<String>,
}

async fn answer(r: reqwest::Response) -> Answer {
    let status = r.status().as_u16();
    let set_cookie: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let cookie = set_cookie
        .iter()
        .find(|c| c.starts_with("crier_session="))
        .map(|c| c.split(';').next().unwrap()["crier_session=".len()..].to_owned())
        .filter(|v| !v.is_empty());
    let text = r.text().await.unwrap();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        cookie,
        set_cookie,
    }
}

/// Signs in to a session: (answer, cookie value).
async fn sign_in(app: &TestApp, user: &str, code: Option<&str>) -> Answer {
    let mut body = json!({"user": user, "password": PASSWORD});
    if let Some(c) = code {
        body["code"] = json!(c);
    }
    answer(
        app.client
            .post(app.url("/api/v1/session"))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// A request with the session cookie and optional extra headers.
async fn with_cookie(
    app: &TestApp,
    method: &str,
    path: &str,
    cookie: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Answer {
    let mut req = app
        .client
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            app.url(path),
        )
        .header("cookie", format!("crier_session={cookie}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    answer(req.send().await.unwrap()).await
}

async fn token_login(app: &TestApp, user: &str, code: Option<&str>) -> Answer {
    let mut body = json!({"user": user, "password": PASSWORD});
    if let Some(c) = code {
        body["code"] = json!(c);
    }
    answer(
        app.client
            .post(app.url("/api/v1/login"))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn me(app: &TestApp, cookie: impl AsRef<str>) -> Answer {
    with_cookie(app, "GET", "/api/v1/me", cookie.as_ref(), &[], None).await
}

fn code(secret: &str, clock: &AuthClock) -> String {
    let key = crier::totp::base32_decode(secret).unwrap();
    crier::totp::code_at(&key, clock.now().timestamp())
}

async fn audit_actions(app: &TestApp) -> Vec<(String, String)> {
    app.store
        .audit_entries(&AuditFilter {
            limit: 100_000,
            ..Default::default()
        })
        .await
        .unwrap()
        .0
        .into_iter()
        .map(|e| (e.action, e.summary))
        .collect()
}

#[tokio::test]
async fn a_session_ends_when_idle_and_at_its_absolute_limit() {
    let (app, clock) = app_with(|_| {}).await;
    add_user(&app, "maria", "responder").await;
    let a = sign_in(&app, "maria", None).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    assert_eq!(a.body["state"], "active");
    let cookie = a.cookie.unwrap();
    let set = &a.set_cookie[0];
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.contains("Secure"), "http public URL: {set}");
    let r = me(&app, cookie.clone()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["actor"], "maria");

    // Used every 29 minutes it stays alive; 31 idle minutes end it.
    for _ in 0..2 {
        clock.advance(Duration::from_secs(29 * 60));
        assert_eq!(me(&app, cookie.clone()).await.status, 200);
    }
    clock.advance(Duration::from_secs(31 * 60));
    let r = me(&app, cookie.clone()).await;
    assert_eq!(r.status, 401, "{:?}", r.body);

    // However busy, a session ends 12 hours after it began.
    let cookie = sign_in(&app, "maria", None).await.cookie.unwrap();
    for _ in 0..(12 * 60 / 25) {
        clock.advance(Duration::from_secs(25 * 60));
        assert_eq!(me(&app, cookie.clone()).await.status, 200);
    }
    clock.advance(Duration::from_secs(25 * 60));
    assert_eq!(me(&app, cookie.clone()).await.status, 401);
    // An unknown or malformed cookie is no session.
    assert_eq!(me(&app, "ab".repeat(32)).await.status, 401);
    assert_eq!(me(&app, "nonsense").await.status, 401);
}

#[tokio::test]
async fn an_https_public_url_makes_the_cookie_secure() {
    let (app, _) = app_with(|c| c.auth.secure_cookie = true).await;
    add_user(&app, "maria", "viewer").await;
    let a = sign_in(&app, "maria", None).await;
    assert!(a.set_cookie[0].contains("; Secure"), "{:?}", a.set_cookie);
}

#[tokio::test]
async fn logout_a_role_change_and_disabling_end_sessions() {
    let (app, _) = app_with(|_| {}).await;
    add_user(&app, "maria", "responder").await;
    let name = UserName::parse("maria").unwrap();

    // Logout: the session ends and the cookie is cleared.
    let a = sign_in(&app, "maria", None).await;
    let (cookie, csrf) = (
        a.cookie.unwrap(),
        a.body["csrf_token"].as_str().unwrap().to_owned(),
    );
    let r = with_cookie(
        &app,
        "POST",
        "/api/v1/logout",
        &cookie,
        &[("x-csrf-token", &csrf)],
        None,
    )
    .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert!(
        r.set_cookie[0].starts_with("crier_session=;") && r.set_cookie[0].contains("Max-Age=0")
    );
    assert_eq!(me(&app, cookie).await.status, 401);
    assert!(app.store.sessions_of(&name).await.unwrap().is_empty());

    // A role change ends every session of the user.
    let c1 = sign_in(&app, "maria", None).await.cookie.unwrap();
    let c2 = sign_in(&app, "maria", None).await.cookie.unwrap();
    assert_eq!(app.store.sessions_of(&name).await.unwrap().len(), 2);
    let r = app
        .raw(
            reqwest::Method::PATCH,
            "/api/v1/users/maria",
            br#"{"role":"publisher"}"#.to_vec(),
            Some("application/json"),
            Some(&app.token),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(app.store.sessions_of(&name).await.unwrap().is_empty());
    assert_eq!(me(&app, c1).await.status, 401);
    assert_eq!(me(&app, c2).await.status, 401);
    let last = audit_actions(&app).await.pop().unwrap();
    assert_eq!(last.0, "user.change");
    assert!(last.1.contains("2 session(s) ended"), "{last:?}");

    // Disabling does too.
    let c3 = sign_in(&app, "maria", None).await.cookie.unwrap();
    assert_eq!(me(&app, c3.clone()).await.status, 200);
    let r = app
        .raw(
            reqwest::Method::PATCH,
            "/api/v1/users/maria",
            br#"{"disabled":true}"#.to_vec(),
            Some("application/json"),
            Some(&app.token),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(app.store.sessions_of(&name).await.unwrap().is_empty());
    assert_eq!(me(&app, c3).await.status, 401);
    assert_eq!(sign_in(&app, "maria", None).await.status, 401, "disabled");
}

#[tokio::test]
async fn a_cookie_write_without_the_csrf_token_or_from_another_origin_is_refused() {
    let (app, _) = app_with(|_| {}).await;
    add_user(&app, "maria", "responder").await;
    let a = sign_in(&app, "maria", None).await;
    let (cookie, csrf) = (
        a.cookie.unwrap(),
        a.body["csrf_token"].as_str().unwrap().to_owned(),
    );
    let host = app.base.trim_start_matches("http://").to_owned();
    let own = format!("http://{host}");
    let put = |headers: Vec<(&'static str, String)>| {
        let cookie = cookie.clone();
        let app = &app;
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            with_cookie(
                app,
                "PUT",
                "/api/v1/components/Check-in",
                &cookie,
                &h,
                Some(json!({"status": "major_outage"})),
            )
            .await
        }
    };
    let before = app.checksum().await;
    let refused_before = audit_actions(&app)
        .await
        .iter()
        .filter(|(a, _)| a == "csrf.refused")
        .count();
    for (headers, why) in [
        (vec![], "no CSRF token"),
        (
            vec![("x-csrf-token", "0".repeat(64))],
            "not this session's token",
        ),
        (
            vec![
                ("x-csrf-token", csrf.clone()),
                ("origin", "https://evil.example".to_owned()),
            ],
            "another origin",
        ),
        (
            vec![
                ("x-csrf-token", csrf.clone()),
                ("sec-fetch-site", "cross-site".to_owned()),
            ],
            "another site",
        ),
        (
            vec![
                ("x-csrf-token", csrf.clone()),
                ("origin", "null".to_owned()),
            ],
            "another origin",
        ),
    ] {
        let r = put(headers.clone()).await;
        assert_eq!(r.status, 403, "{headers:?}: {:?}", r.body);
        assert!(
            r.body["detail"].as_str().unwrap().contains(why),
            "{headers:?}: {:?}",
            r.body
        );
        assert_eq!(
            app.checksum().await,
            before,
            "a refused write writes nothing"
        );
    }
    // Each refusal is a security event in the audit log.
    let refused: Vec<_> = audit_actions(&app)
        .await
        .into_iter()
        .filter(|(a, _)| a == "csrf.refused")
        .collect();
    assert_eq!(refused.len(), refused_before + 5);
    assert!(!refused
        .iter()
        .any(|(_, s)| s.contains(&csrf) || s.contains(&cookie)));

    // The token with this server's origin (or no Origin at all) is accepted.
    let r = put(vec![
        ("x-csrf-token", csrf.clone()),
        ("origin", own.clone()),
    ])
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = put(vec![
        ("x-csrf-token", csrf.clone()),
        ("sec-fetch-site", "same-origin".to_owned()),
    ])
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    // A bearer-token write is exempt: no CSRF token needed, whatever the Origin.
    let r = app
        .client
        .put(app.url("/api/v1/components/Check-in"))
        .bearer_auth(&app.token)
        .header("origin", "https://evil.example")
        .json(&json!({"status": "operational"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // An HTML form carries the token in its `csrf` field.
    let form = |csrf: &str| {
        app.client
            .post(app.url("/api/v1/logout"))
            .header("cookie", format!("crier_session={cookie}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", own.clone())
            .body(format!("csrf={csrf}"))
            .send()
    };
    assert_eq!(form(&"1".repeat(64)).await.unwrap().status(), 403);
    assert_eq!(form(&csrf).await.unwrap().status(), 204);

    // A sign-in form posted from another site is refused too (login CSRF).
    let r = app
        .client
        .post(app.url("/api/v1/session"))
        .header("origin", "https://evil.example")
        .json(&json!({"user": "maria", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // ... and a form from the console's own page works.
    let r = app
        .client
        .post(app.url("/api/v1/session"))
        .header("origin", own)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "user=maria&password={}",
            PASSWORD.replace(' ', "+")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn totp_enrolment_a_code_once_and_recovery_codes_once() {
    let (app, clock) = app_with(|_| {}).await;
    add_user(&app, "olli", "responder").await;
    let t = token_login(&app, "olli", None).await;
    assert_eq!(t.status, 201, "{:?}", t.body);
    let token = t.body["token"].as_str().unwrap().to_owned();
    let post = |path: &str, body: Option<Value>| {
        let mut r = app.client.post(app.url(path)).bearer_auth(&token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        async move { answer(r.send().await.unwrap()).await }
    };

    let r = post("/api/v1/me/totp", None).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    let uri = r.body["uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Status:olli?secret=")
            && uri.contains(&secret)
            && uri.contains("algorithm=SHA1&digits=6&period=30"),
        "{uri}"
    );
    // Not enabled until confirmed: signing in needs no code yet.
    assert_eq!(token_login(&app, "olli", None).await.status, 201);
    let wrong = if code(&secret, &clock) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let r = post("/api/v1/me/totp/confirm", Some(json!({"code": wrong}))).await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    let first = code(&secret, &clock);
    let r = post("/api/v1/me/totp/confirm", Some(json!({"code": first}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let recovery: Vec<String> = r.body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recovery.len(), 10);

    // Now a code is needed; the confirming code was used, so it is refused.
    let r = token_login(&app, "olli", None).await;
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (401, Some("code")),
        "{:?}",
        r.body
    );
    let r = token_login(&app, "olli", Some(&first)).await;
    assert_eq!(r.status, 401, "a reused code: {:?}", r.body);
    // The next time step's code works, once.
    clock.advance(Duration::from_secs(30));
    let next = code(&secret, &clock);
    let r = token_login(&app, "olli", Some(&next)).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(token_login(&app, "olli", Some(&next)).await.status, 401);
    // A code from two steps back is refused.
    clock.advance(Duration::from_secs(90));
    let sess = sign_in(&app, "olli", Some(&next)).await;
    assert_eq!(sess.status, 401);
    // A recovery code works once, in any case and with spaces for dashes.
    let typed = recovery[3].to_uppercase().replace('-', " ");
    let r = sign_in(&app, "olli", Some(&typed)).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["state"], "active");
    assert_eq!(sign_in(&app, "olli", Some(&recovery[3])).await.status, 401);
    assert_eq!(
        token_login(&app, "olli", Some(&recovery[4])).await.status,
        201
    );

    // Enrolling again while enabled is refused; the secret is never shown again.
    assert_eq!(post("/api/v1/me/totp", None).await.status, 409);
    let me = app
        .client
        .get(app.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        me.contains("\"totp\":true") && !me.contains(&secret),
        "{me}"
    );
    let audit = serde_json::to_string(&audit_actions(&app).await).unwrap();
    assert!(!audit.contains(&secret) && !audit.contains(&recovery[5]));
    assert!(audit.contains("second factor: recovery code"), "{audit}");

    // Disabling takes a code; then no code is needed.
    clock.advance(Duration::from_secs(30));
    let r = post("/api/v1/me/totp/disable", Some(json!({"code": "123"}))).await;
    assert_eq!(r.status, 422);
    let r = post(
        "/api/v1/me/totp/disable",
        Some(json!({"code": code(&secret, &clock)})),
    )
    .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(token_login(&app, "olli", None).await.status, 201);
}

#[tokio::test]
async fn session_ids_csrf_tokens_and_recovery_codes_are_stored_only_hashed() {
    let (app, clock) = app_with(|_| {}).await;
    add_user(&app, "sanna", "admin").await;
    let a = sign_in(&app, "sanna", None).await;
    let (cookie, csrf) = (
        a.cookie.unwrap(),
        a.body["csrf_token"].as_str().unwrap().to_owned(),
    );
    let h = [("x-csrf-token", csrf.as_str())];
    let r = with_cookie(&app, "POST", "/api/v1/me/totp", &cookie, &h, None).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    let r = with_cookie(
        &app,
        "POST",
        "/api/v1/me/totp/confirm",
        &cookie,
        &h,
        Some(json!({"code": code(&secret, &clock)})),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let mut secrets: Vec<String> = r.body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    // Without dashes too, the form that is hashed.
    secrets.extend(secrets.clone().iter().map(|c| c.replace('-', "")));
    secrets.push(cookie.clone());
    secrets.push(csrf.clone());
    // The raw bytes of the id, in case it were stored decoded.
    let raw_id = hex::decode(&cookie).unwrap();
    let dump = app.store.dump().await.unwrap();
    assert!(dump.iter().any(|(t, _, _)| t == b"sessions"));
    for (tree, k, v) in &dump {
        for hay in [k, v] {
            for s in &secrets {
                assert!(
                    !hay.windows(s.len()).any(|w| w == s.as_bytes()),
                    "a secret is stored in tree {}",
                    String::from_utf8_lossy(tree)
                );
            }
            assert!(!hay.windows(raw_id.len()).any(|w| w == raw_id.as_slice()));
        }
    }
    // The session works, and is found by the hash of its id.
    let r = with_cookie(&app, "GET", "/api/v1/session", &cookie, &[], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["csrf_token"], csrf.as_str());
    let hash = crier::credentials::token_hash(&cookie);
    assert!(app.store.session(&hash).await.unwrap().is_some());
}

#[tokio::test]
async fn require_totp_lets_an_unenrolled_user_only_enrol() {
    let (app, clock) = app_with(|c| c.auth.require_totp = vec![Role::Publisher, Role::Admin]).await;
    add_user(&app, "pekka", "publisher").await;
    add_user(&app, "rita", "responder").await;
    // A responder is not affected.
    assert_eq!(sign_in(&app, "rita", None).await.body["state"], "active");
    assert_eq!(token_login(&app, "rita", None).await.status, 201);

    // No token for the publisher until enrolled.
    let r = token_login(&app, "pekka", None).await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert!(r.body["detail"]
        .as_str()
        .unwrap()
        .contains("crier totp enrol"));
    assert!(r.body.get("token").is_none());
    // A session that may only enrol.
    let a = sign_in(&app, "pekka", None).await;
    assert_eq!(a.status, 201);
    assert_eq!(a.body["state"], "totp_enrolment_required");
    let (cookie, csrf) = (
        a.cookie.unwrap(),
        a.body["csrf_token"].as_str().unwrap().to_owned(),
    );
    let h = [("x-csrf-token", csrf.as_str())];
    let r = with_cookie(&app, "GET", "/api/v1/incidents", &cookie, &[], None).await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("second factor"));
    let r = with_cookie(
        &app,
        "POST",
        "/api/v1/tokens",
        &cookie,
        &h,
        Some(json!({"name": "sneaky"})),
    )
    .await;
    assert_eq!(
        r.status, 403,
        "no token around the requirement: {:?}",
        r.body
    );
    let r = with_cookie(&app, "POST", "/api/v1/me/totp", &cookie, &h, None).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    let r = with_cookie(
        &app,
        "POST",
        "/api/v1/me/totp/confirm",
        &cookie,
        &h,
        Some(json!({"code": code(&secret, &clock)})),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // The session is now a full one.
    let r = with_cookie(&app, "GET", "/api/v1/incidents", &cookie, &[], None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = with_cookie(&app, "GET", "/api/v1/session", &cookie, &[], None).await;
    assert_eq!(r.body["state"], "active");
    // And signing in needs the code.
    assert_eq!(token_login(&app, "pekka", None).await.status, 401);
    clock.advance(Duration::from_secs(30));
    assert_eq!(
        token_login(&app, "pekka", Some(&code(&secret, &clock)))
            .await
            .status,
        201
    );
}

/// Failed logins from one address, each claiming another address in X-Forwarded-For.
async fn spoofed_failures(app: &TestApp, n: u32) -> Vec<u16> {
    let mut out = Vec::new();
    for i in 0..n {
        let r = app
            .client
            .post(app.url("/api/v1/login"))
            .header("x-forwarded-for", format!("203.0.113.{}", i + 1))
            .json(&json!({"user": format!("nobody{i}"), "password": "wrong wrong wrong"}))
            .send()
            .await
            .unwrap();
        out.push(r.status().as_u16());
    }
    out
}

#[tokio::test]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_does_not_evade_throttling() {
    // The test client (127.0.0.1) is not a trusted proxy: its X-Forwarded-For is ignored, so
    // twenty failures under twenty made-up addresses lock its own address.
    let (app, _) =
        app_with(|c| c.auth.trusted_proxies = vec![Cidr::parse("10.0.0.0/8").unwrap()]).await;
    let statuses = spoofed_failures(&app, 21).await;
    assert!(statuses[..20].iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(statuses[20], 429, "{statuses:?}");
    let clients: Vec<Option<String>> = app
        .store
        .audit_entries(&AuditFilter {
            action: Some("login.failed".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .0
        .into_iter()
        .map(|e| e.client)
        .collect();
    assert!(
        clients.iter().all(|c| c.as_deref() == Some("127.0.0.1")),
        "{clients:?}"
    );

    // Behind a trusted proxy, each forwarded client is counted (and recorded) on its own.
    let (app, _) =
        app_with(|c| c.auth.trusted_proxies = vec![Cidr::parse("127.0.0.1").unwrap()]).await;
    let statuses = spoofed_failures(&app, 21).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    let last = app
        .store
        .audit_entries(&AuditFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .0
        .pop()
        .unwrap();
    assert_eq!(last.client.as_deref(), Some("203.0.113.21"));
}
