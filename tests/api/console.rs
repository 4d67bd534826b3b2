//! The staff console over plain HTTP: login and logout, the redirect to the login page, CSRF,
//! roles, the API's messages next to the field, and one audit entry per console write. The
//! real-browser scenarios are in `console_browser.rs`.

use crate::helpers::{env, spawn_app_with, TestApp};
use crier::api::authz::CONSOLE;
use crier::api::session::AuthClock;
use crier::domain::audit::AuditEntry;
use crier::domain::audit::AuditFilter;
use crier::store::port::{Audit, Incidents, Notices, SecondFactors, Subscribers, Tokens, Users};
use serde_json::json;
use std::time::Duration;

pub const PASSWORD: &str = "correct horse battery staple";

pub async fn console_app(
    channels: &[(&str, &str)],
    configure: impl FnOnce(&mut crier::config::Config),
) -> (TestApp, AuthClock) {
    let clock = AuthClock::default();
    let c = clock.clone();
    let app = spawn_app_with(channels, move |cfg| {
        cfg.auth.clock = c;
        configure(cfg);
    })
    .await;
    (app, clock)
}

pub async fn add_user(app: &TestApp, name: &str, role: &str) {
    let r = app
        .post(
            "/api/v1/users",
            json!({"name": name, "role": role, "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
}

async fn entries(app: &TestApp) -> Vec<AuditEntry> {
    app.store
        .audit_entries(&AuditFilter {
            limit: 1_000_000,
            ..Default::default()
        })
        .await
        .unwrap()
        .0
}

/// A browser-like client that does not follow redirects.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// An answer: status, `Location`, the session cookie set (if any) and the body.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: String,
    pub cookie: Option<String>,
    pub body: String,
}

async fn page_of(r: reqwest::Response) -> Page {
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("crier_session="))
        .map(|c| c.split(';').next().unwrap()["crier_session=".len()..].to_owned());
    Page {
        status,
        location,
        cookie,
        body: r.text().await.unwrap(),
    }
}

/// A signed-in person: the cookie and the CSRF token of their forms.
pub struct Staff {
    pub cookie: String,
    pub csrf: String,
}

pub fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no csrf field in {html}"));
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

async fn sign_in(app: &TestApp, user: &str, password: &str) -> Page {
    page_of(
        client()
            .post(app.url("/console/login"))
            .form(&[
                ("user", user),
                ("password", password),
                ("next", "/console/"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await
}

pub async fn login(app: &TestApp, user: &str) -> Staff {
    let p = sign_in(app, user, PASSWORD).await;
    assert_eq!(p.status, 303, "{p:?}");
    let cookie = p.cookie.expect("a session cookie");
    let dash = get(app, Some(&cookie), "/console/").await;
    assert_eq!(dash.status, 200, "{dash:?}");
    Staff {
        csrf: csrf_of(&dash.body),
        cookie,
    }
}

pub async fn get(app: &TestApp, cookie: Option<&str>, path: &str) -> Page {
    let mut req = client().get(app.url(path));
    if let Some(c) = cookie {
        req = req.header("cookie", format!("crier_session={c}"));
    }
    page_of(req.send().await.unwrap()).await
}

/// A form post as the browser sends it; `csrf` is added unless `with_csrf` is false.
pub async fn post(
    app: &TestApp,
    who: &Staff,
    path: &str,
    fields: &[(&str, &str)],
    with_csrf: bool,
) -> Page {
    let mut all: Vec<(&str, &str)> = fields.to_vec();
    if with_csrf {
        all.push(("csrf", &who.csrf));
    }
    page_of(
        client()
            .post(app.url(path))
            .header("cookie", format!("crier_session={}", who.cookie))
            .form(&all)
            .send()
            .await
            .unwrap(),
    )
    .await
}

const INCIDENT: [(&str, &str); 4] = [
    ("title", "Check-in is slow"),
    ("impact", "major"),
    ("msg_en", "Check-in kiosks are slow."),
    ("action", "publish"),
];

async fn incidents(app: &TestApp) -> usize {
    app.store
        .incidents(&crier::domain::IncidentFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn console_login_wrong_password_logout_and_the_redirect_to_login() {
    let (app, _) = console_app(&[], |_| {}).await;
    add_user(&app, "anna", "publisher").await;

    // No session: every console page sends the browser to the login page.
    let p = get(&app, None, "/console/").await;
    assert_eq!(p.status, 303);
    assert_eq!(p.location, "/console/login?ended=1&next=/console/");
    let form = get(&app, None, "/console/login").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("<h1>Sign in</h1>"), "{}", form.body);
    assert!(
        form.body.contains("name=\"code\""),
        "the code field is there"
    );

    // A wrong password: the API's one answer, on the form, and a failed-login entry.
    let before = entries(&app).await.len();
    let p = sign_in(&app, "anna", "wrong password here").await;
    assert_eq!(p.status, 401);
    assert!(p.cookie.is_none());
    assert!(p.body.contains("role=\"alert\""), "{}", p.body);
    assert!(p.body.contains("wrong user name or password"), "{}", p.body);
    let after = entries(&app).await;
    assert_eq!(after.len(), before + 1);
    assert_eq!(after.last().unwrap().action, "login.failed");

    // The right one: a session, and the dashboard names the person.
    let anna = login(&app, "anna").await;
    let dash = get(&app, Some(&anna.cookie), "/console/").await;
    assert!(dash.body.contains("anna"), "{}", dash.body);
    assert!(dash.body.contains("<h1>Dashboard</h1>"), "{}", dash.body);
    assert_eq!(entries(&app).await.last().unwrap().action, "session.login");

    // Logout ends the session: the cookie no longer opens the console.
    let out = post(&app, &anna, "/console/logout", &[], true).await;
    assert_eq!(out.status, 303, "{out:?}");
    assert_eq!(out.location, "/console/login?out=1");
    assert_eq!(entries(&app).await.last().unwrap().action, "logout");
    let p = get(&app, Some(&anna.cookie), "/console/").await;
    assert_eq!(p.status, 303);
    assert!(p.location.starts_with("/console/login"), "{p:?}");
}

#[tokio::test]
async fn console_login_is_throttled_as_the_api() {
    let (app, _) = console_app(&[], |_| {}).await;
    add_user(&app, "anna", "publisher").await;
    let mut last = None;
    for _ in 0..12 {
        let p = sign_in(&app, "anna", "wrong password here").await;
        if p.status == 429 {
            last = Some(p);
            break;
        }
        assert_eq!(p.status, 401);
    }
    let p = last.expect("throttled after repeated failures");
    assert!(p.body.contains("role=\"alert\""), "{}", p.body);
    // Even the right password is refused while locked.
    assert_eq!(sign_in(&app, "anna", PASSWORD).await.status, 429);
}

#[tokio::test]
async fn console_write_without_csrf_is_refused_and_with_it_makes_one_audit_entry() {
    let (app, _) = console_app(&[], |_| {}).await;
    add_user(&app, "anna", "publisher").await;
    let anna = login(&app, "anna").await;

    let before = entries(&app).await.len();
    let p = post(&app, &anna, "/console/incidents", &INCIDENT, false).await;
    assert_eq!(p.status, 403, "{p:?}");
    assert!(p.body.contains("cross-site request forgery"), "{}", p.body);
    assert!(
        p.body.contains("<h1>403 Forbidden</h1>"),
        "an HTML page: {}",
        p.body
    );
    assert_eq!(incidents(&app).await, 0, "nothing written");
    let e = entries(&app).await;
    assert_eq!(e.len(), before + 1);
    assert_eq!(e.last().unwrap().action, "csrf.refused");

    let p = post(&app, &anna, "/console/incidents", &INCIDENT, true).await;
    assert_eq!(p.status, 303, "{p:?}");
    assert!(
        p.location.starts_with("/console/incidents/") && p.location.ends_with("?done=published"),
        "{p:?}"
    );
    assert_eq!(incidents(&app).await, 1);
    let e = entries(&app).await;
    assert_eq!(e.len(), before + 2, "exactly one entry for the write");
    let last = e.last().unwrap();
    assert_eq!(last.action, "incident.create");
    assert_eq!(last.actor, "anna");

    // The incident page shows it with its author.
    let page = get(&app, Some(&anna.cookie), &p.location).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Check-in is slow"), "{}", page.body);
    assert!(
        page.body.contains("class=\"author\">anna<"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn console_bad_input_shows_the_api_message_next_to_the_field_and_writes_nothing() {
    let (app, _) = console_app(&[], |_| {}).await;
    add_user(&app, "anna", "publisher").await;
    let anna = login(&app, "anna").await;
    let before = entries(&app).await.len();
    let p = post(
        &app,
        &anna,
        "/console/incidents",
        &[
            ("title", "No impact given"),
            ("msg_en", "Words."),
            ("action", "publish"),
        ],
        true,
    )
    .await;
    assert_eq!(p.status, 422, "{p:?}");
    // The API's own words, next to the impact field, and the typed text kept.
    assert!(p.body.contains("id=\"err-impact\""), "{}", p.body);
    assert!(
        p.body
            .contains("impact: missing; say how bad it is with none, minor, major or critical"),
        "{}",
        p.body
    );
    assert!(p.body.contains("No impact given"), "{}", p.body);
    assert_eq!(incidents(&app).await, 0);
    assert_eq!(
        entries(&app).await.len(),
        before,
        "a refused write is not audited"
    );
}

/// The text between `start` and the next `<` after it.
fn text_after<'a>(html: &'a str, start: &str) -> &'a str {
    let at = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {html}"))
        + start.len();
    let rest = &html[at..];
    &rest[..rest.find('<').unwrap()]
}

/// A six-digit code the authenticator would not show for `secret` around now.
fn wrong_code(key: &[u8], clock: &AuthClock) -> String {
    let now = clock.now().timestamp();
    let near: Vec<String> = (-3..=3)
        .map(|k| crier::totp::code_at(key, now + k * 30))
        .collect();
    (1..)
        .map(|h| crier::totp::code_at(key, now + h * 3600))
        .find(|c| !near.contains(c))
        .unwrap()
}

async fn totp_of(app: &TestApp, user: &str) -> Option<crier::domain::TotpRecord> {
    app.store
        .totp(&crier::domain::UserName::parse(user).unwrap())
        .await
        .unwrap()
}

/// `/console/account`: a signed-in user enrols a TOTP second factor through the API's own
/// handlers — the secret and its otpauth URI shown once, a wrong code refused next to the field
/// (nothing enabled, nothing audited), the right one enables it and shows the recovery codes
/// once; one audit entry per write; CSRF-less posts refused.
#[tokio::test]
async fn console_account_enrols_a_totp_second_factor() {
    let (app, clock) = console_app(&[], |_| {}).await;
    add_user(&app, "anna", "responder").await;
    let anna = login(&app, "anna").await;

    let p = get(&app, Some(&anna.cookie), "/console/account").await;
    assert_eq!(p.status, 200, "{p:?}");
    assert!(p.body.contains("Set up a second factor"), "{}", p.body);
    assert!(
        p.body.contains("href=\"/console/account\""),
        "linked: {}",
        p.body
    );

    let before = entries(&app).await.len();
    let p = post(&app, &anna, "/console/account/totp", &[], false).await;
    assert_eq!(p.status, 403, "{p:?}");
    assert!(totp_of(&app, "anna").await.is_none(), "nothing written");
    assert_eq!(entries(&app).await.last().unwrap().action, "csrf.refused");
    let before = before + 1;

    let p = post(&app, &anna, "/console/account/totp", &[], true).await;
    assert_eq!(p.status, 200, "{p:?}");
    let secret = text_after(&p.body, "id=\"totp-secret\">").to_owned();
    let uri = unescape(text_after(&p.body, "id=\"totp-uri\">"));
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    assert!(
        !p.body.contains("https://"),
        "no outside QR service: {}",
        p.body
    );
    let e = entries(&app).await;
    assert_eq!(e.len(), before + 1, "{:?}", &e[before..]);
    assert_eq!(e.last().unwrap().action, "totp.begin");
    assert_eq!(e.last().unwrap().actor, "anna");
    assert!(!totp_of(&app, "anna").await.unwrap().enabled);

    // A wrong code: the API's message next to the code field, nothing enabled or audited.
    let key = crier::totp::base32_decode(&secret).unwrap();
    let wrong = wrong_code(&key, &clock);
    let p = post(
        &app,
        &anna,
        "/console/account/totp/confirm",
        &[("code", &wrong)],
        true,
    )
    .await;
    assert_eq!(p.status, 422, "{p:?}");
    assert!(p.body.contains("id=\"err-code\""), "{}", p.body);
    assert!(
        p.body.contains("that is not the code the app shows"),
        "{}",
        p.body
    );
    assert!(!totp_of(&app, "anna").await.unwrap().enabled);
    assert_eq!(
        entries(&app).await.len(),
        before + 1,
        "a refused code is not audited"
    );

    // The right code: enabled, ten recovery codes shown once, one audit entry.
    let code = crier::totp::code_at(&key, clock.now().timestamp());
    let p = post(
        &app,
        &anna,
        "/console/account/totp/confirm",
        &[("code", &code)],
        true,
    )
    .await;
    assert_eq!(p.status, 200, "{p:?}");
    assert_eq!(
        p.body.matches("<li><code>").count(),
        10,
        "recovery codes: {}",
        p.body
    );
    assert!(totp_of(&app, "anna").await.unwrap().enabled);
    let e = entries(&app).await;
    assert_eq!(e.len(), before + 2, "{:?}", &e[before..]);
    assert_eq!(e.last().unwrap().action, "totp.enable");
    let p = get(&app, Some(&anna.cookie), "/console/account").await;
    assert!(p.body.contains("id=\"totp-state\">Enabled"), "{}", p.body);
    assert!(!p.body.contains("<li><code>"), "shown once: {}", p.body);

    // From now on the console's sign-in asks for the code.
    let p = sign_in(&app, "anna", PASSWORD).await;
    assert_ne!(p.status, 303, "{p:?}");
    assert!(p.cookie.is_none(), "{p:?}");
}

/// A user whose role requires a second factor and who has none signs in to the account page
/// (an enrol-only session: other pages refused), enrols there, and the session becomes full.
#[tokio::test]
async fn console_required_second_factor_is_enrolled_in_the_browser() {
    let (app, clock) = console_app(&[], |c| {
        c.auth.require_totp = vec![crier::domain::Role::Publisher]
    })
    .await;
    add_user(&app, "anna", "publisher").await;
    let p = sign_in(&app, "anna", PASSWORD).await;
    assert_eq!(p.status, 303, "{p:?}");
    assert_eq!(p.location, "/console/account");
    let cookie = p.cookie.expect("an enrol-only session");
    let page = get(&app, Some(&cookie), "/console/account").await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(
        page.body.contains("Your role needs a second factor"),
        "{}",
        page.body
    );
    let anna = Staff {
        csrf: csrf_of(&page.body),
        cookie,
    };
    let dash = get(&app, Some(&anna.cookie), "/console/").await;
    assert_eq!(dash.status, 403, "enrol-only: {dash:?}");
    let p = post(&app, &anna, "/console/incidents", &INCIDENT, true).await;
    assert_eq!(p.status, 403, "{p:?}");
    assert_eq!(incidents(&app).await, 0);

    let p = post(&app, &anna, "/console/account/totp", &[], true).await;
    assert_eq!(p.status, 200, "{p:?}");
    let key = crier::totp::base32_decode(text_after(&p.body, "id=\"totp-secret\">")).unwrap();
    let code = crier::totp::code_at(&key, clock.now().timestamp());
    let p = post(
        &app,
        &anna,
        "/console/account/totp/confirm",
        &[("code", &code)],
        true,
    )
    .await;
    assert_eq!(p.status, 200, "{p:?}");
    assert!(p.body.contains("recovery codes"), "{}", p.body);
    let dash = get(&app, Some(&anna.cookie), "/console/").await;
    assert_eq!(dash.status, 200, "a full session now: {dash:?}");
}

#[tokio::test]
async fn console_viewer_sees_no_write_buttons_and_a_forged_write_is_refused() {
    let log = ("log", "kind = \"log\"\naudience = \"fixed\"\n");
    let (app, _) = console_app(&[log], |_| {}).await;
    add_user(&app, "ville", "viewer").await;
    let id = app.open_incident("Baggage delays").await;
    app.component("Check-in").await;
    let ville = login(&app, "ville").await;

    let r = app
        .post(
            "/api/v1/notices",
            json!({"cron": "0 9 * * *", "tz": "UTC", "message": "Daily.", "channels": ["log"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    for path in [
        "/console/".to_owned(),
        format!("/console/incidents/{id}"),
        "/console/notices".to_owned(),
        "/console/components".to_owned(),
        "/console/audit".to_owned(),
    ] {
        let p = get(&app, Some(&ville.cookie), &path).await;
        assert_eq!(p.status, 200, "{path}");
        for write in [
            "method=\"post\" action=\"/console/incidents",
            "/remove\"",
            "<select",
            "/console/compose",
            "/publish\"",
            "/resolve\"",
            "/approve\"",
            "/retry\"",
            "/console/incidents\"",
        ] {
            assert!(
                !p.body.contains(write),
                "{path} offers a viewer {write}: {}",
                p.body
            );
        }
    }
    assert_eq!(
        get(&app, Some(&ville.cookie), "/console/compose")
            .await
            .status,
        403
    );

    let before = entries(&app).await.len();
    let p = post(&app, &ville, "/console/incidents", &INCIDENT, true).await;
    assert_eq!(p.status, 403, "{p:?}");
    assert!(
        p.body.contains("this needs the responder role"),
        "{}",
        p.body
    );
    let p = post(
        &app,
        &ville,
        &format!("/console/incidents/{id}/resolve"),
        &[("msg_en", "Fixed.")],
        true,
    )
    .await;
    assert_eq!(p.status, 403, "{p:?}");
    assert_eq!(incidents(&app).await, 1);
    assert_eq!(
        entries(&app).await.len(),
        before,
        "refused writes are not audited"
    );
}

#[tokio::test]
async fn console_expired_session_write_is_refused_and_redirected_to_login() {
    let (app, clock) = console_app(&[], |_| {}).await;
    add_user(&app, "anna", "publisher").await;
    let anna = login(&app, "anna").await;
    clock.advance(Duration::from_secs(31 * 60));
    let before = entries(&app).await.len();
    let p = post(&app, &anna, "/console/incidents", &INCIDENT, true).await;
    assert_eq!(p.status, 303, "{p:?}");
    assert_eq!(p.location, "/console/login?ended=1");
    assert_eq!(incidents(&app).await, 0);
    assert_eq!(entries(&app).await.len(), before);
    let again = get(&app, None, &p.location).await;
    assert!(
        again.body.contains("Your session has ended"),
        "{}",
        again.body
    );
}

/// Every console write route (a row of `authz::CONSOLE` with an audit action) answers a
/// successful write with exactly one audit entry of that action.
#[tokio::test]
async fn every_console_write_makes_exactly_one_audit_entry() {
    let staff = ("staff", "kind = \"log\"\naudience = \"fixed\"\n");
    let (app, clock) = console_app(&[staff], |_| {}).await;
    add_user(&app, "anna", "publisher").await;
    let anna = login(&app, "anna").await;

    let mut seen = Vec::new();
    async fn once(app: &TestApp, action: &str, p: Page, seen: &mut Vec<String>, before: usize) {
        assert!(p.status == 303, "{action}: {p:?}");
        let e = entries(app).await;
        assert_eq!(e.len(), before + 1, "{action}: {:?}", &e[before..]);
        assert_eq!(e.last().unwrap().action, action);
        seen.push(action.to_owned());
    }

    let b = entries(&app).await.len();
    let p = post(&app, &anna, "/console/incidents", &INCIDENT, true).await;
    let id = p.location["/console/incidents/".len()..]
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    once(&app, "incident.create", p, &mut seen, b).await;
    let b = entries(&app).await.len();
    let p = post(
        &app,
        &anna,
        &format!("/console/incidents/{id}/updates"),
        &[("msg_en", "Still slow."), ("action", "draft")],
        true,
    )
    .await;
    once(&app, "incident.update", p, &mut seen, b).await;
    let b = entries(&app).await.len();
    let p = post(
        &app,
        &anna,
        &format!("/console/incidents/{id}/publish"),
        &[],
        true,
    )
    .await;
    once(&app, "incident.publish", p, &mut seen, b).await;
    let b = entries(&app).await.len();
    let p = post(
        &app,
        &anna,
        &format!("/console/incidents/{id}/retry"),
        &[],
        true,
    )
    .await;
    once(&app, "deliveries.requeue", p, &mut seen, b).await;
    let b = entries(&app).await.len();
    let p = post(
        &app,
        &anna,
        &format!("/console/incidents/{id}/resolve"),
        &[("msg_en", "Fixed.")],
        true,
    )
    .await;
    once(&app, "incident.resolve", p, &mut seen, b).await;
    let b = entries(&app).await.len();
    let p = post(
        &app,
        &anna,
        &format!("/console/incidents/{id}/reopen"),
        &[("msg_en", "Slow again.")],
        true,
    )
    .await;
    once(&app, "incident.reopen", p, &mut seen, b).await;

    let b = entries(&app).await.len();
    let p = post(&app, &anna, "/console/logout", &[], true).await;
    once(&app, "logout", p, &mut seen, b).await;
    let b = entries(&app).await.len();
    let p = sign_in(&app, "anna", PASSWORD).await;
    once(&app, "session.login", p, &mut seen, b).await;

    // Components are covered in console_audit_log_filters…, approvals in console_approval
    // (they need the approval configuration).
    seen.push("component.set".into());
    let anna = login(&app, "anna").await;
    let r = app
        .post(
            "/api/v1/notices",
            json!({"cron": "0 9 * * 1-5", "tz": "Europe/Helsinki", "message": "Daily status.", "channels": ["staff"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let notice = r.body["id"].as_str().unwrap().to_owned();
    let list = get(&app, Some(&anna.cookie), "/console/notices").await;
    assert!(list.body.contains("Daily status."), "{}", list.body);
    assert!(
        list.body.contains("<code>0 9 * * 1-5</code>"),
        "{}",
        list.body
    );
    assert!(
        list.body.contains(" UTC)</li>"),
        "fire times in UTC too: {}",
        list.body
    );
    let b = entries(&app).await.len();
    let p = post(
        &app,
        &anna,
        &format!("/console/notices/{notice}/remove"),
        &[],
        true,
    )
    .await;
    once(&app, "notice.remove", p, &mut seen, b).await;
    let list = get(&app, Some(&anna.cookie), "/console/notices").await;
    assert!(list.body.contains("No recurring notices"), "{}", list.body);
    // Added through the console's form (the API's create).
    let b = entries(&app).await.len();
    let p = post(
        &app,
        &anna,
        "/console/notices",
        &[
            ("cron", "30 8 * * *"),
            ("tz", "Europe/Helsinki"),
            ("msg_en", "Morning status."),
            ("channels", "staff"),
        ],
        true,
    )
    .await;
    once(&app, "notice.create", p, &mut seen, b).await;
    let list = get(&app, Some(&anna.cookie), "/console/notices").await;
    assert!(list.body.contains("Morning status."), "{}", list.body);

    // Subscribers (a publisher).
    let b = entries(&app).await.len();
    let p = post(
        &app,
        &anna,
        "/console/subscribers",
        &[("email", "one@example.com")],
        true,
    )
    .await;
    once(&app, "subscriber.add", p, &mut seen, b).await;
    let b = entries(&app).await.len();
    let p = post(
        &app,
        &anna,
        "/console/subscribers/import",
        &[("csv", "email\ntwo@example.com\n")],
        true,
    )
    .await;
    shown_once(&app, "subscriber.import", p, &mut seen, b).await;
    let sub = app.store.subscribers(1).await.unwrap()[0].id.to_string();
    let b = entries(&app).await.len();
    let p = post(
        &app,
        &anna,
        &format!("/console/subscribers/{sub}"),
        &[("locale", "fi")],
        true,
    )
    .await;
    once(&app, "subscriber.change", p, &mut seen, b).await;
    let b = entries(&app).await.len();
    let p = post(
        &app,
        &anna,
        &format!("/console/subscribers/{sub}/remove"),
        &[],
        true,
    )
    .await;
    once(&app, "subscriber.remove", p, &mut seen, b).await;

    // Users and tokens (an admin). Writes that show a secret once answer the page itself.
    async fn shown_once(app: &TestApp, action: &str, p: Page, seen: &mut Vec<String>, b: usize) {
        assert!(p.status == 200, "{action}: {p:?}");
        let e = entries(app).await;
        assert_eq!(e.len(), b + 1, "{action}: {:?}", &e[b..]);
        assert_eq!(e.last().unwrap().action, action);
        seen.push(action.to_owned());
    }
    add_user(&app, "root", "admin").await;
    let root = login(&app, "root").await;
    let b = entries(&app).await.len();
    let p = post(
        &app,
        &root,
        "/console/users",
        &[("name", "ben"), ("role", "viewer")],
        true,
    )
    .await;
    shown_once(&app, "user.create", p, &mut seen, b).await;
    let b = entries(&app).await.len();
    let p = post(
        &app,
        &root,
        "/console/users/ben",
        &[("role", "responder")],
        true,
    )
    .await;
    once(&app, "user.change", p, &mut seen, b).await;
    let b = entries(&app).await.len();
    let p = post(&app, &root, "/console/users/ben/password", &[], true).await;
    shown_once(&app, "user.reset_password", p, &mut seen, b).await;
    let b = entries(&app).await.len();
    let p = post(&app, &root, "/console/users/ben/remove", &[], true).await;
    once(&app, "user.remove", p, &mut seen, b).await;
    let b = entries(&app).await.len();
    let p = post(
        &app,
        &root,
        "/console/tokens",
        &[("token_name", "ci")],
        true,
    )
    .await;
    shown_once(&app, "token.create", p, &mut seen, b).await;
    let token = app
        .store
        .tokens(None)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.name == "ci")
        .unwrap()
        .id;
    let b = entries(&app).await.len();
    let p = post(
        &app,
        &root,
        &format!("/console/tokens/{token}/revoke"),
        &[],
        true,
    )
    .await;
    once(&app, "token.revoke", p, &mut seen, b).await;

    // One's own second factor (the secret and the recovery codes shown once).
    let b = entries(&app).await.len();
    let p = post(&app, &anna, "/console/account/totp", &[], true).await;
    let key = crier::totp::base32_decode(text_after(&p.body, "id=\"totp-secret\">")).unwrap();
    shown_once(&app, "totp.begin", p, &mut seen, b).await;
    let b = entries(&app).await.len();
    let code = crier::totp::code_at(&key, clock.now().timestamp());
    let p = post(
        &app,
        &anna,
        "/console/account/totp/confirm",
        &[("code", &code)],
        true,
    )
    .await;
    shown_once(&app, "totp.enable", p, &mut seen, b).await;

    seen.push("approval.approve".into());
    seen.push("approval.reject".into());
    // Incident templates: one entry each in templates::console_templates_are_kept_by_publishers….
    for action in ["template.create", "template.update", "template.remove"] {
        seen.push(action.into());
    }
    for r in CONSOLE.iter().filter(|r| r.audit.is_some()) {
        assert!(
            seen.iter().any(|s| Some(s.as_str()) == r.audit),
            "no fixture for {} {} ({:?})",
            r.method,
            r.path,
            r.audit
        );
    }
}

/// Two-person approval through the console: held, the author cannot approve their own (no
/// button; a forged approval refused), another publisher approves and it publishes once; a
/// rejection sends nothing. One audit entry each.
#[tokio::test]
async fn console_approval_the_author_cannot_approve_and_another_publisher_publishes_once() {
    let subs = (
        "subs",
        "kind = \"log\"\naudience = \"subscribers\"\napproval = \"required\"\n",
    );
    let (app, _) = console_app(&[subs], |_| {}).await;
    add_user(&app, "anna", "publisher").await;
    add_user(&app, "ben", "publisher").await;
    let anna = login(&app, "anna").await;
    let ben = login(&app, "ben").await;

    let b = entries(&app).await.len();
    let p = post(&app, &anna, "/console/incidents", &INCIDENT, true).await;
    assert_eq!(p.status, 303, "{p:?}");
    assert!(p.location.starts_with("/console/?held="), "{p:?}");
    assert_eq!(entries(&app).await.len(), b + 1);
    assert_eq!(incidents(&app).await, 0, "nothing published while held");
    let approval = p.location["/console/?held=".len()..].to_owned();
    let dash = get(&app, Some(&anna.cookie), &p.location).await;
    assert!(
        dash.body.contains("Waiting for approval (1)"),
        "{}",
        dash.body
    );

    // The author: refused, nothing written, nothing audited.
    let b = entries(&app).await.len();
    let p = post(
        &app,
        &anna,
        &format!("/console/approvals/{approval}/approve"),
        &[],
        true,
    )
    .await;
    assert_eq!(p.status, 403, "{p:?}");
    assert!(p.body.contains("you wrote this"), "{}", p.body);
    assert_eq!(incidents(&app).await, 0);
    assert_eq!(entries(&app).await.len(), b);

    let p = post(
        &app,
        &ben,
        &format!("/console/approvals/{approval}/approve"),
        &[],
        true,
    )
    .await;
    assert_eq!(p.status, 303, "{p:?}");
    let e = entries(&app).await;
    assert_eq!(e.len(), b + 1);
    assert_eq!(e.last().unwrap().action, "approval.approve");
    assert_eq!(incidents(&app).await, 1, "published once");
    // A second approval is refused.
    let again = post(
        &app,
        &ben,
        &format!("/console/approvals/{approval}/approve"),
        &[],
        true,
    )
    .await;
    assert_eq!(again.status, 409, "{again:?}");
    assert_eq!(incidents(&app).await, 1);

    // A held update, rejected by ben with a reason: nothing sent.
    let inc = p.location["/console/incidents/".len()..]
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let held = post(
        &app,
        &anna,
        &format!("/console/incidents/{inc}/updates"),
        &[("msg_en", "Naming the supplier."), ("action", "publish")],
        true,
    )
    .await;
    let approval = held.location["/console/?held=".len()..].to_owned();
    let page = get(
        &app,
        Some(&anna.cookie),
        &format!("/console/incidents/{inc}"),
    )
    .await;
    assert!(page.body.contains("You wrote this"), "{}", page.body);
    assert!(
        !page
            .body
            .contains(&format!("/console/approvals/{approval}/approve")),
        "no approve button for the author"
    );
    let page = get(
        &app,
        Some(&ben.cookie),
        &format!("/console/incidents/{inc}"),
    )
    .await;
    assert!(
        page.body
            .contains(&format!("/console/approvals/{approval}/approve")),
        "{}",
        page.body
    );
    let b = entries(&app).await.len();
    let p = post(
        &app,
        &ben,
        &format!("/console/approvals/{approval}/reject"),
        &[("reason", "Do not name the supplier"), ("incident", &inc)],
        true,
    )
    .await;
    assert_eq!(p.status, 303, "{p:?}");
    assert_eq!(entries(&app).await.len(), b + 1);
    assert_eq!(
        entries(&app).await.last().unwrap().action,
        "approval.reject"
    );
    let (_, updates) = app.store.incident(inc.parse().unwrap()).await.unwrap();
    assert_eq!(updates.len(), 1, "the rejected update was never written");
}

#[tokio::test]
async fn console_dashboard_shows_an_overdue_promise_and_a_skipped_channel() {
    let sms = (
        "sms",
        "kind = \"twilio\"\naccount_sid_env = \"CONSOLE_TEST_UNSET_SID\"\nauth_token_env = \"CONSOLE_TEST_UNSET_TOKEN\"\nfrom = \"+15005550006\"\n",
    );
    let (app, _) = console_app(&[sms], |_| {}).await;
    add_user(&app, "ville", "viewer").await;
    overdue_incident(&app).await;
    let ville = login(&app, "ville").await;
    let p = get(&app, Some(&ville.cookie), "/console/").await;
    assert!(p.body.contains("Late again"), "{}", p.body);
    assert!(p.body.contains("overdue-badge\">Overdue<"), "{}", p.body);
    assert!(p.body.contains("overdue by"), "{}", p.body);
    assert!(p.body.contains("ch-skipped"), "{}", p.body);
    assert!(
        p.body.contains("CONSOLE_TEST_UNSET_SID"),
        "the missing variable is named: {}",
        p.body
    );
    // The fragment the page polls says the same.
    let live = get(&app, Some(&ville.cookie), "/console/live").await;
    assert_eq!(live.status, 200);
    assert!(live.body.contains("overdue-badge"), "{}", live.body);
    assert!(!live.body.contains("<html"), "a fragment: {}", live.body);
}

/// An open incident whose promised update was due ten minutes ago (written straight to the
/// store: the API refuses a promise in the past).
pub async fn overdue_incident(app: &TestApp) -> String {
    use chrono::Duration as Span;
    use crier::domain::NewIncident;
    use crier::domain::{Body, Impact, IncidentKind, Locale, Title};
    let now = chrono::Utc::now();
    let (i, _) = app
        .store
        .create_incident(
            NewIncident {
                titles: Default::default(),
                title: Title::parse("Late again").unwrap(),
                kind: IncidentKind::Incident,
                status: None,
                impact: Impact::Major,
                components: vec![],
                body: Body::single(Locale::english(), "Trains are late.").unwrap(),
                author: "anna".into(),
                next_update_due: Some(now - Span::minutes(10)),
                draft: false,
                broadcast: vec![],
                scheduled_for: None,
                scheduled_until: None,
                holding_statement: false,
                remind_before: None,
            },
            now - Span::minutes(40),
        )
        .await
        .unwrap();
    i.id.to_string()
}

#[tokio::test]
async fn console_pages_are_sent_with_the_strict_csp_and_no_store() {
    let (app, _) = console_app(&[], |_| {}).await;
    let r = client()
        .get(app.url("/console/login"))
        .send()
        .await
        .unwrap();
    let h = r.headers();
    assert_eq!(
        h["content-security-policy"],
        crier::web::headers::CONTENT_SECURITY_POLICY
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["cache-control"], "no-store");
    let js = client()
        .get(app.url("/assets/console.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
}

#[tokio::test]
async fn console_audit_log_filters_with_the_apis_messages_and_components_are_set_once() {
    let (app, _) = console_app(&[], |_| {}).await;
    add_user(&app, "anna", "responder").await;
    add_user(&app, "ville", "viewer").await;
    app.component("Check-in").await;
    let anna = login(&app, "anna").await;

    // Setting a component: the API's rule, one audit entry.
    let before = entries(&app).await.len();
    let p = post(
        &app,
        &anna,
        "/console/components/Check-in",
        &[("status", "partial_outage")],
        true,
    )
    .await;
    assert_eq!(p.status, 303, "{p:?}");
    let e = entries(&app).await;
    assert_eq!(e.len(), before + 1);
    assert_eq!(e.last().unwrap().action, "component.set");
    let page = get(&app, Some(&anna.cookie), "/console/components").await;
    assert!(page.body.contains("partial outage"), "{}", page.body);
    // A bad status: the API's message next to the component, nothing written.
    let p = post(
        &app,
        &anna,
        "/console/components/Check-in",
        &[("status", "sideways")],
        true,
    )
    .await;
    assert_eq!(p.status, 422, "{p:?}");
    assert!(p.body.contains("class=\"field-error\""), "{}", p.body);
    assert!(p.body.contains("sideways"), "{}", p.body);
    assert_eq!(entries(&app).await.len(), before + 1);

    // A viewer reads the log (filtered) but may not set components.
    let ville = login(&app, "ville").await;
    let log = get(
        &app,
        Some(&ville.cookie),
        "/console/audit?action=component.set&actor=",
    )
    .await;
    assert_eq!(log.status, 200);
    assert!(
        log.body.contains("<code>component.set</code>"),
        "{}",
        log.body
    );
    assert!(
        !log.body.contains("<code>session.login</code>"),
        "filtered: {}",
        log.body
    );
    let bad = get(
        &app,
        Some(&ville.cookie),
        "/console/audit?since=yesterday-ish",
    )
    .await;
    assert_eq!(bad.status, 422);
    assert!(
        bad.body.contains("since: give an RFC 3339 time"),
        "{}",
        bad.body
    );
    assert!(!get(&app, Some(&ville.cookie), "/console/components")
        .await
        .body
        .contains("<select"));
    let p = post(
        &app,
        &ville,
        "/console/components/Check-in",
        &[("status", "operational")],
        true,
    )
    .await;
    assert_eq!(p.status, 403);
}

#[tokio::test]
async fn console_schedules_a_maintenance_window_in_the_organisations_zone() {
    let (app, _) = console_app(&[], |c| {
        c.render.timezone = "Europe/Helsinki".parse().unwrap();
    })
    .await;
    add_user(&app, "anna", "publisher").await;
    let anna = login(&app, "anna").await;
    let window = [
        ("kind", "maintenance"),
        ("title", "Check-in system upgrade"),
        ("msg_en", "Check-in kiosks are offline during the upgrade."),
        ("scheduled_for", "2031-01-15T02:00"),
        ("scheduled_until", "2031-01-15T01:00"),
        ("action", "publish"),
    ];
    // The end before the start: the API's message next to the end, nothing written.
    let p = post(&app, &anna, "/console/incidents", &window, true).await;
    assert_eq!(p.status, 422, "{p:?}");
    assert!(p.body.contains("id=\"err-scheduled_until\""), "{}", p.body);
    assert!(
        p.body
            .contains("scheduled_until: must be after scheduled_for"),
        "{}",
        p.body
    );
    assert_eq!(incidents(&app).await, 0);

    let mut ok = window;
    ok[4] = ("scheduled_until", "2031-01-15T04:00");
    let p = post(&app, &anna, "/console/incidents", &ok, true).await;
    assert_eq!(p.status, 303, "{p:?}");
    let all = app
        .store
        .incidents(&crier::domain::IncidentFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    // 02:00 in Helsinki in January is 00:00 UTC.
    assert_eq!(
        all[0].scheduled_for.unwrap().to_rfc3339(),
        "2031-01-15T00:00:00+00:00"
    );
    let dash = get(&app, Some(&anna.cookie), "/console/").await;
    assert!(dash.body.contains("Maintenance (1)"), "{}", dash.body);
    assert!(dash.body.contains("2031-01-15 02:00 EET"), "{}", dash.body);
}

#[tokio::test]
async fn console_dashboard_names_a_failing_channel_and_its_last_error() {
    // Nothing listens on port 9 of localhost: every send fails and is retried.
    let sms = (
        "sms",
        "kind = \"twilio\"\naccount_sid_env = \"CONSOLE_FAIL_SID\"\nauth_token_env = \"CONSOLE_FAIL_TOKEN\"\nfrom = \"+15005550006\"\nbase_url = \"http://127.0.0.1:9\"\n",
    );
    let (app, _) = console_app(&[sms], |c| {
        c.env = env(&[
            ("CONSOLE_FAIL_SID", "AC0123456789"),
            ("CONSOLE_FAIL_TOKEN", "twilio-token"),
        ])
    })
    .await;
    add_user(&app, "ville", "viewer").await;
    let r = app
        .post("/api/v1/subscribers", json!({"phone": "+358401000009"}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    app.open_incident("Payments are down").await;
    let ville = login(&app, "ville").await;
    let mut last = String::new();
    for _ in 0..300 {
        last = get(&app, Some(&ville.cookie), "/console/live").await.body;
        if last.contains("ch-failing") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(last.contains("ch-failing"), "{last}");
    assert!(last.contains("last error at"), "{last}");
    assert!(
        !last.contains("+358401000009"),
        "no address on the dashboard: {last}"
    );
}

/// Page text as the browser shows it: the template's HTML escapes undone.
pub fn unescape(html: &str) -> String {
    html.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&#x2f;", "/")
        .replace("&#x2F;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

async fn subscriber_addresses(app: &TestApp) -> Vec<String> {
    app.store
        .subscribers(usize::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.contact.address().to_owned())
        .collect()
}

/// Three subscribers: two for Check-in (en, fi), one for everything (sv).
async fn three_subscribers(app: &TestApp) -> Vec<String> {
    app.component("Check-in").await;
    app.component("Baggage").await;
    let mut ids = Vec::new();
    for body in [
        json!({"email": "liisa@example.fi", "locale": "fi", "components": ["Check-in"]}),
        json!({"email": "tom@example.com", "components": ["Check-in", "Baggage"]}),
        json!({"phone": "+358401000001", "locale": "sv"}),
    ] {
        let r = app.post("/api/v1/subscribers", body).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    ids
}

/// The subscribers page: a viewer and a responder (the API shows addresses to publishers and
/// above only) see the counts per component and language and never an address, and have no
/// write forms; their forged writes are refused 403 and write nothing, audit nothing.
#[tokio::test]
async fn console_subscribers_viewer_sees_counts_only_and_forged_writes_are_refused() {
    let (app, _) = console_app(&[], |_| {}).await;
    add_user(&app, "ville", "viewer").await;
    add_user(&app, "rita", "responder").await;
    let ids = three_subscribers(&app).await;
    for who in ["ville", "rita"] {
        let staff = login(&app, who).await;
        for path in [
            "/console/subscribers",
            "/console/subscribers?q=example",
            "/console/subscribers?q=%2B358",
        ] {
            let p = get(&app, Some(&staff.cookie), path).await;
            assert_eq!(p.status, 200, "{who} {path}: {p:?}");
            let body = unescape(&p.body);
            assert!(body.contains("Subscribers: <strong>3</strong>"), "{body}");
            // Counts per component (Check-in 2, Baggage 1, every component 1) and language.
            assert!(
                body.contains("<td>Check-in</td><td class=\"count\">2</td>"),
                "{body}"
            );
            assert!(
                body.contains("<td>Baggage</td><td class=\"count\">1</td>"),
                "{body}"
            );
            assert!(body.contains("(no filter)</span></td><td class=\"count\">1</td>"));
            for l in ["en", "fi", "sv"] {
                assert!(
                    body.contains(&format!(
                        "<td lang=\"{l}\">{l}</td><td class=\"count\">1</td>"
                    )),
                    "{body}"
                );
            }
            for addr in ["liisa@", "tom@", "+35840100"] {
                assert!(!body.contains(addr), "{who} sees {addr} at {path}: {body}");
            }
            for id in &ids {
                assert!(!body.contains(id.as_str()), "{who} sees a subscriber id");
            }
            assert!(
                !body.contains("method=\"post\" action=\"/console/subscribers"),
                "{who} has a write form: {body}"
            );
        }
        // The nav links the page for every role.
        let dash = get(&app, Some(&staff.cookie), "/console/").await;
        assert!(dash.body.contains("href=\"/console/subscribers\""));

        let before = entries(&app).await.len();
        for (path, fields) in [
            (
                "/console/subscribers".to_owned(),
                vec![("email", "forged@example.com")],
            ),
            (format!("/console/subscribers/{}/remove", ids[0]), vec![]),
            (
                "/console/subscribers/import".to_owned(),
                vec![("csv", "email\nforged2@example.com\n")],
            ),
        ] {
            let p = post(&app, &staff, &path, &fields, true).await;
            assert_eq!(p.status, 403, "{who} {path}: {p:?}");
            assert!(
                p.body.contains("this needs the publisher role"),
                "{}",
                p.body
            );
        }
        assert_eq!(subscriber_addresses(&app).await.len(), 3, "nothing written");
        assert_eq!(
            entries(&app).await.len(),
            before,
            "refused writes are not audited"
        );
    }
}

/// A publisher searches by a part of the address, adds one (bad input: the API's message next
/// to the field, nothing written) and removes one; one audit entry per write, naming the
/// subscriber by id, never by address.
#[tokio::test]
async fn console_subscribers_search_add_and_remove_through_the_api() {
    let (app, _) = console_app(&[], |_| {}).await;
    add_user(&app, "anna", "publisher").await;
    let ids = three_subscribers(&app).await;
    let anna = login(&app, "anna").await;

    let all = get(&app, Some(&anna.cookie), "/console/subscribers").await;
    assert_eq!(all.status, 200);
    for addr in ["liisa@example.fi", "tom@example.com", "+358401000001"] {
        assert!(all.body.contains(addr), "{}", all.body);
    }
    let found = get(&app, Some(&anna.cookie), "/console/subscribers?q=EXAMPLE.f").await;
    assert!(found.body.contains("liisa@example.fi"), "{}", found.body);
    assert!(!found.body.contains("tom@example.com"), "{}", found.body);
    assert!(!found.body.contains("+358401000001"), "{}", found.body);
    assert!(found.body.contains("1 match for"), "{}", found.body);
    let phone = get(
        &app,
        Some(&anna.cookie),
        "/console/subscribers?q=%2B3584010",
    )
    .await;
    assert!(phone.body.contains("+358401000001"), "{}", phone.body);
    assert!(!phone.body.contains("liisa@"), "{}", phone.body);

    // Bad input: the API's own message next to the field; nothing written or audited.
    let before = entries(&app).await.len();
    let p = post(
        &app,
        &anna,
        "/console/subscribers",
        &[("phone", "0401234567"), ("locale", "fi")],
        true,
    )
    .await;
    assert_eq!(p.status, 422, "{p:?}");
    let body = unescape(&p.body);
    assert!(body.contains("id=\"err-phone\""), "{body}");
    assert!(
        body.contains(
            "\"0401234567\" has no country code; write it in E.164 form such as +358401234567"
        ),
        "{body}"
    );
    assert!(
        body.contains("value=\"0401234567\""),
        "typed text kept: {body}"
    );
    let p = post(
        &app,
        &anna,
        "/console/subscribers",
        &[("email", "new@example.org"), ("locale", "klingon")],
        true,
    )
    .await;
    assert_eq!(p.status, 422, "{p:?}");
    assert!(p.body.contains("id=\"err-locale\""), "{}", p.body);
    assert!(unescape(&p.body).contains("\"klingon\" is not a language tag"));
    let p = post(
        &app,
        &anna,
        "/console/subscribers",
        &[("email", "tom@example.com")],
        true,
    )
    .await;
    assert_eq!(p.status, 409, "{p:?}");
    assert!(p.body.contains("already subscribed"), "{}", p.body);
    assert_eq!(subscriber_addresses(&app).await.len(), 3);
    assert_eq!(entries(&app).await.len(), before);

    // Add: confirmed, with its language and component; one entry.
    let p = post(
        &app,
        &anna,
        "/console/subscribers",
        &[
            ("email", "New@Example.org"),
            ("locale", "sv"),
            ("components", "Baggage"),
        ],
        true,
    )
    .await;
    assert_eq!(p.status, 303, "{p:?}");
    assert_eq!(p.location, "/console/subscribers?done=added");
    let added = app
        .store
        .subscribers(usize::MAX)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.contact.address() == "new@example.org")
        .expect("added");
    assert_eq!(added.locale.as_str(), "sv");
    assert_eq!(added.components.len(), 1);
    assert!(added.confirmed);
    let e = entries(&app).await;
    assert_eq!(e.len(), before + 1);
    assert_eq!(e.last().unwrap().action, "subscriber.add");
    assert_eq!(e.last().unwrap().target, format!("subscriber {}", added.id));

    // Remove by id: gone, one entry, no address in the log.
    let b = entries(&app).await.len();
    let p = post(
        &app,
        &anna,
        &format!("/console/subscribers/{}/remove", ids[1]),
        &[],
        true,
    )
    .await;
    assert_eq!(p.status, 303, "{p:?}");
    assert!(!subscriber_addresses(&app)
        .await
        .contains(&"tom@example.com".to_owned()));
    let e = entries(&app).await;
    assert_eq!(e.len(), b + 1);
    assert_eq!(e.last().unwrap().action, "subscriber.remove");
    for entry in &e {
        assert!(
            !entry.target.contains('@') && !entry.summary.contains('@'),
            "an address in the audit log: {entry:?}"
        );
    }
    let page = get(&app, Some(&anna.cookie), &p.location).await;
    assert!(page.body.contains("Subscriber removed."), "{}", page.body);
    assert!(!page.body.contains("tom@example.com"));
}

/// The CSV import: the API's format and rules. A bad row is listed with its line and the API's
/// message and the good rows are imported (as the API does); the report is the API's; an
/// unusable header row refuses the file, writes nothing and audits nothing.
#[tokio::test]
async fn console_subscribers_csv_import_lists_bad_rows_and_imports_the_good() {
    let (app, _) = console_app(&[], |_| {}).await;
    add_user(&app, "anna", "publisher").await;
    app.component("Check-in").await;
    let anna = login(&app, "anna").await;
    let csv = "email,phone,locale,components\n\
               a@example.com,,fi,Check-in\n\
               not-an-address,,,\n\
               ,+358401000002,sv,\n\
               b@example.com,,en,Nowhere\n\
               a@example.com,,,\n";
    let before = entries(&app).await.len();
    let p = post(
        &app,
        &anna,
        "/console/subscribers/import",
        &[("csv", csv)],
        true,
    )
    .await;
    assert_eq!(p.status, 200, "{p:?}");
    let body = unescape(&p.body);
    assert!(
        body.contains("<strong>2</strong> added, 1 already subscribed or repeated, 2 rejected"),
        "{body}"
    );
    let mut have = subscriber_addresses(&app).await;
    have.sort();
    assert_eq!(have, ["+358401000002", "a@example.com"]);
    let e = entries(&app).await;
    assert_eq!(e.len(), before + 1, "one entry for the import");
    assert_eq!(e.last().unwrap().action, "subscriber.import");
    // The same file through the API: the same row errors, word for word.
    let r = app
        .raw(
            reqwest::Method::POST,
            "/api/v1/subscribers/import",
            csv.as_bytes().to_vec(),
            Some("text/csv"),
            Some(&app.token),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let errors = r.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0]["line"], 3);
    assert_eq!(errors[1]["line"], 5);
    for err in errors {
        let line = format!("line {}: {}", err["line"], err["message"].as_str().unwrap());
        assert!(body.contains(&line), "{line} not on the page: {body}");
    }
    // The rejected file stays in the field to be corrected.
    assert!(body.contains("not-an-address"), "{body}");

    // An unusable header: the API's message next to the CSV field; nothing written.
    let b = entries(&app).await.len();
    let p = post(
        &app,
        &anna,
        "/console/subscribers/import",
        &[("csv", "mail,locale\nc@example.com,fi\n")],
        true,
    )
    .await;
    assert_eq!(p.status, 422, "{p:?}");
    let body = unescape(&p.body);
    assert!(body.contains("id=\"err-csv\""), "{body}");
    assert!(
        body.contains("unknown CSV column \"mail\"; the header row may name email, phone, locale and components"),
        "{body}"
    );
    assert_eq!(subscriber_addresses(&app).await.len(), 2);
    assert_eq!(entries(&app).await.len(), b);
}

/// Users and tokens: admins only (a publisher gets 403 for the page and every write, and
/// nothing changes); an admin adds a user and sees the initial password once (it signs in),
/// changes a role, disables, resets a password, removes; makes a token shown once (it works)
/// and revokes it. Bad input shows the API's message next to the field. One entry per write.
#[tokio::test]
async fn console_users_and_tokens_are_admin_only_and_secrets_are_shown_once() {
    let (app, _) = console_app(&[], |_| {}).await;
    add_user(&app, "root", "admin").await;
    add_user(&app, "anna", "publisher").await;
    let anna = login(&app, "anna").await;
    let p = get(&app, Some(&anna.cookie), "/console/users").await;
    assert_eq!(p.status, 403, "{p:?}");
    assert!(p.body.contains("this needs the admin role"), "{}", p.body);
    let dash = get(&app, Some(&anna.cookie), "/console/").await;
    assert!(
        !dash.body.contains("href=\"/console/users\""),
        "no link for a publisher"
    );
    let before = entries(&app).await.len();
    for (path, fields) in [
        (
            "/console/users",
            vec![("name", "mallory"), ("role", "admin")],
        ),
        ("/console/users/anna", vec![("role", "admin")]),
        ("/console/users/root/remove", vec![]),
        ("/console/users/root/password", vec![]),
        ("/console/tokens", vec![("token_name", "sneaky")]),
    ] {
        let p = post(&app, &anna, path, &fields, true).await;
        assert_eq!(p.status, 403, "{path}: {p:?}");
    }
    assert_eq!(entries(&app).await.len(), before);
    let users = app.store.users().await.unwrap();
    assert_eq!(users.len(), 2);
    assert!(users.iter().all(|u| u.name.as_str() != "mallory"));

    let root = login(&app, "root").await;
    let page = get(&app, Some(&root.cookie), "/console/users").await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(
        page.body.contains("href=\"/console/users\""),
        "the nav links it"
    );
    assert!(page.body.contains("id=\"user-anna\""), "{}", page.body);
    assert!(page.body.contains("second factor: none"), "{}", page.body);
    assert!(page.body.contains("last sign-in: "), "{}", page.body);

    // Bad input: the API's message next to the name; nothing written.
    let b = entries(&app).await.len();
    let p = post(
        &app,
        &root,
        "/console/users",
        &[("name", "Bad Name"), ("role", "viewer")],
        true,
    )
    .await;
    assert_eq!(p.status, 422, "{p:?}");
    let body = unescape(&p.body);
    assert!(body.contains("id=\"err-name\""), "{body}");
    assert!(body.contains("a user name is 2-32 characters"), "{body}");
    assert_eq!(app.store.users().await.unwrap().len(), 2);
    assert_eq!(entries(&app).await.len(), b);

    // Add: the initial password, shown once; it signs in.
    let p = post(
        &app,
        &root,
        "/console/users",
        &[
            ("name", "maria.k"),
            ("role", "responder"),
            ("display_name", "Maria K"),
        ],
        true,
    )
    .await;
    assert_eq!(p.status, 200, "{p:?}");
    let e = entries(&app).await;
    assert_eq!(e.len(), b + 1);
    assert_eq!(e.last().unwrap().action, "user.create");
    let password = secret_of(&p.body);
    assert!(password.len() >= 12, "{password}");
    let r = app
        .raw(
            reqwest::Method::POST,
            "/api/v1/login",
            serde_json::to_vec(&json!({"user": "maria.k", "password": password})).unwrap(),
            Some("application/json"),
            None,
        )
        .await;
    assert_eq!(
        r.status, 201,
        "the shown password is the user's: {:?}",
        r.body
    );
    let again = get(&app, Some(&root.cookie), "/console/users").await;
    assert!(again.body.contains("id=\"user-maria.k\""));
    assert!(!again.body.contains(&password), "shown once");
    assert!(!again.body.contains("id=\"secret-value\""));

    // Role, disable: the API's change; one entry each.
    for (fields, action) in [
        (vec![("role", "publisher")], "user.change"),
        (vec![("disabled", "true")], "user.change"),
    ] {
        let b = entries(&app).await.len();
        let p = post(&app, &root, "/console/users/maria.k", &fields, true).await;
        assert_eq!(p.status, 303, "{p:?}");
        assert_eq!(entries(&app).await.len(), b + 1);
        assert_eq!(entries(&app).await.last().unwrap().action, action);
    }
    let maria = app
        .store
        .user(&crier::domain::UserName::parse("maria.k").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(maria.role.as_str(), "publisher");
    assert!(maria.disabled);
    let p = post(
        &app,
        &root,
        "/console/users/maria.k",
        &[("role", "chief")],
        true,
    )
    .await;
    assert_eq!(p.status, 422, "{p:?}");
    assert!(
        unescape(&p.body)
            .contains("\"chief\" is not a role; use viewer, responder, publisher or admin"),
        "{}",
        p.body
    );

    // A new password, shown once.
    let b = entries(&app).await.len();
    let p = post(&app, &root, "/console/users/maria.k/password", &[], true).await;
    assert_eq!(p.status, 200, "{p:?}");
    let new = secret_of(&p.body);
    assert_ne!(new, password);
    assert_eq!(entries(&app).await.len(), b + 1);
    assert_eq!(
        entries(&app).await.last().unwrap().action,
        "user.reset_password"
    );

    // A token for oneself: shown once, works, and is revoked.
    let b = entries(&app).await.len();
    let p = post(
        &app,
        &root,
        "/console/tokens",
        &[
            ("token_name", "monitoring"),
            ("token_role", "viewer"),
            ("expires", "30d"),
        ],
        true,
    )
    .await;
    assert_eq!(p.status, 200, "{p:?}");
    let token = secret_of(&p.body);
    assert!(token.starts_with("crier_"), "{token}");
    assert_eq!(entries(&app).await.len(), b + 1);
    assert_eq!(entries(&app).await.last().unwrap().action, "token.create");
    let me = app
        .raw(
            reqwest::Method::GET,
            "/api/v1/me",
            vec![],
            None,
            Some(&token),
        )
        .await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    assert_eq!(me.body["role"], "viewer");
    let list = get(&app, Some(&root.cookie), "/console/users").await;
    assert!(!list.body.contains(&token), "shown once");
    let id = me.body["token"].as_str().unwrap().to_owned();
    assert!(
        list.body.contains(&format!("id=\"token-{id}\"")),
        "{}",
        list.body
    );
    let p = post(
        &app,
        &root,
        "/console/tokens",
        &[("token_name", ""), ("expires", "forever")],
        true,
    )
    .await;
    assert_eq!(p.status, 422, "{p:?}");
    assert!(p.body.contains("id=\"err-token_name\""), "{}", p.body);
    let b = entries(&app).await.len();
    let p = post(
        &app,
        &root,
        &format!("/console/tokens/{id}/revoke"),
        &[],
        true,
    )
    .await;
    assert_eq!(p.status, 303, "{p:?}");
    assert_eq!(entries(&app).await.len(), b + 1);
    assert_eq!(entries(&app).await.last().unwrap().action, "token.revoke");
    let me = app
        .raw(
            reqwest::Method::GET,
            "/api/v1/me",
            vec![],
            None,
            Some(&token),
        )
        .await;
    assert_eq!(me.status, 401, "revoked");

    // Remove.
    let b = entries(&app).await.len();
    let p = post(&app, &root, "/console/users/maria.k/remove", &[], true).await;
    assert_eq!(p.status, 303, "{p:?}");
    assert_eq!(entries(&app).await.len(), b + 1);
    assert_eq!(entries(&app).await.last().unwrap().action, "user.remove");
    assert_eq!(app.store.users().await.unwrap().len(), 2);
}

/// The secret a page shows once (`#secret-value`).
pub fn secret_of(html: &str) -> String {
    let at = html
        .find("id=\"secret-value\">")
        .unwrap_or_else(|| panic!("no secret shown: {html}"));
    let rest = &html[at + "id=\"secret-value\">".len()..];
    unescape(&rest[..rest.find('<').unwrap()])
}

/// The channels page: every role sees each channel's kind, audience, rate and state (a skipped
/// one with its missing variable); an admin's **Check credentials** runs `crier channels
/// check`'s check against the platform (a good token: ok; a refused one: the platform's
/// error), secrets never shown; a viewer has no button and a forged check is refused.
#[tokio::test]
async fn console_channels_page_lists_channels_and_checks_credentials_for_admins() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    const GOOD: &str = "console-good-4411";
    const BAD: &str = "console-bad-5522";
    let tg = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/bot{GOOD}/getMe")))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"ok": true, "result": {"id": 1, "is_bot": true, "username": "crier_bot"}}),
        ))
        .mount(&tg)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/bot{BAD}/getMe")))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(
                json!({"ok": false, "error_code": 401, "description": "Unauthorized"}),
            ),
        )
        .mount(&tg)
        .await;
    let good = format!(
        "kind = \"telegram\"\nbase_url = \"{}\"\nbot_token_env = \"CONSOLE_CHK_GOOD\"\nchat_id = \"-100\"\nrate = \"5/10s\"\n",
        tg.uri()
    );
    let bad = format!(
        "kind = \"telegram\"\nbase_url = \"{}\"\nbot_token_env = \"CONSOLE_CHK_BAD\"\nchat_id = \"-100\"\n",
        tg.uri()
    );
    let gone =
        "kind = \"telegram\"\nbot_token_env = \"CONSOLE_CHK_UNSET_TOKEN\"\nchat_id = \"-100\"\n";
    let (app, _) = console_app(
        &[("tg-good", &good), ("tg-bad", &bad), ("tg-gone", gone)],
        |c| c.env = env(&[("CONSOLE_CHK_GOOD", GOOD), ("CONSOLE_CHK_BAD", BAD)]),
    )
    .await;
    add_user(&app, "ville", "viewer").await;
    add_user(&app, "root", "admin").await;

    // A viewer sees every channel, the skipped one with its missing variable, and no button.
    let ville = login(&app, "ville").await;
    let p = get(&app, Some(&ville.cookie), "/console/channels").await;
    assert_eq!(p.status, 200, "{p:?}");
    assert!(p.body.contains("<h1>Channels</h1>"), "{}", p.body);
    assert!(
        p.body.contains("href=\"/console/channels\""),
        "in the nav: {}",
        p.body
    );
    assert!(
        unescape(&p.body).contains("<strong>tg-good</strong> (telegram, fixed, rate 5/10s)"),
        "{}",
        p.body
    );
    assert!(p.body.contains("<strong>tg-bad</strong>"), "{}", p.body);
    assert!(p.body.contains("ch-skipped"), "{}", p.body);
    assert!(
        p.body.contains("CONSOLE_CHK_UNSET_TOKEN"),
        "the missing variable is named: {}",
        p.body
    );
    assert!(!p.body.contains("Check credentials"), "{}", p.body);
    let before = entries(&app).await.len();
    let forged = post(&app, &ville, "/console/channels/tg-good/check", &[], true).await;
    assert_eq!(forged.status, 403, "{forged:?}");
    assert!(
        !forged.body.contains("crier_bot"),
        "not checked: {}",
        forged.body
    );
    assert_eq!(
        entries(&app).await.len(),
        before,
        "a refused read-only post adds no entry"
    );
    assert_eq!(
        tg.received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.url.path().ends_with("/getMe"))
            .count(),
        0
    );

    // An admin checks: ok with what the platform said; a refusal with its error.
    let root = login(&app, "root").await;
    let p = get(&app, Some(&root.cookie), "/console/channels").await;
    assert!(
        unescape(&p.body).contains("action=\"/console/channels/tg-good/check\""),
        "{}",
        p.body
    );
    let ok = post(&app, &root, "/console/channels/tg-good/check", &[], true).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(
        unescape(&ok.body).contains("Check: <strong>ok</strong> — bot @crier_bot"),
        "{}",
        ok.body
    );
    let failed = post(&app, &root, "/console/channels/tg-bad/check", &[], true).await;
    assert_eq!(failed.status, 200, "{failed:?}");
    assert!(
        failed.body.contains("Check: <strong>failed</strong>"),
        "{}",
        failed.body
    );
    assert!(failed.body.contains("401"), "{}", failed.body);
    for page in [&p.body, &ok.body, &failed.body] {
        assert!(
            !page.contains(GOOD) && !page.contains(BAD),
            "no secret: {page}"
        );
    }
    // Nothing was posted to the platform: only getMe was asked.
    for r in tg.received_requests().await.unwrap() {
        assert_eq!(r.method.as_str(), "GET", "{} {}", r.method, r.url);
    }
    // A check without the CSRF token is refused too.
    let p = post(&app, &root, "/console/channels/tg-good/check", &[], false).await;
    assert_eq!(p.status, 403, "{p:?}");
    let p = post(&app, &root, "/console/channels/nope/check", &[], true).await;
    assert_eq!(p.status, 404, "{p:?}");
}

/// Adding a notice in the console: **Show next times** lists the next five fire times (the
/// API's own, in the zone and in UTC) and writes nothing; a bad crontab field or zone shows the
/// API's message next to its field and writes nothing; adding writes one notice and one audit
/// entry; a viewer has no form and a forged add is refused.
#[tokio::test]
async fn console_notices_add_shows_next_fire_times_and_the_apis_errors() {
    let staff = ("staff", "kind = \"log\"\naudience = \"fixed\"\n");
    let (app, _) = console_app(&[staff], |_| {}).await;
    add_user(&app, "anna", "publisher").await;
    add_user(&app, "ville", "viewer").await;
    let anna = login(&app, "anna").await;
    async fn notices(app: &TestApp) -> usize {
        app.store.notices().await.unwrap().len()
    }
    let form = |cron: &'static str, tz: &'static str| {
        vec![
            ("cron", cron),
            ("tz", tz),
            ("subject", "Daily"),
            ("msg_en", "Daily status: all normal."),
            ("msg_fi", "Päivittäinen tila: kaikki kunnossa."),
            ("channels", "staff"),
        ]
    };

    let page = get(&app, Some(&anna.cookie), "/console/notices").await;
    assert!(page.body.contains("id=\"add-notice\""), "{}", page.body);
    assert!(page.body.contains("Show next times"), "{}", page.body);

    // A valid expression: five times, in the zone and in UTC; nothing written.
    let before = entries(&app).await.len();
    let p = post(
        &app,
        &anna,
        "/console/notices/preview",
        &form("0 9 * * 1-5", "Europe/Helsinki"),
        true,
    )
    .await;
    assert_eq!(p.status, 200, "{p:?}");
    let body = unescape(&p.body);
    let at = body
        .find("id=\"next-times\"")
        .unwrap_or_else(|| panic!("{body}"));
    let block = &body[at..body[at..].find("</div>").unwrap() + at];
    let times: Vec<&str> = block
        .split("<li>")
        .skip(1)
        .map(|li| &li[..li.find("</li>").unwrap()])
        .collect();
    assert_eq!(times.len(), 5, "{block}");
    for t in &times {
        assert!(t.contains(" 09:00 EE") && t.ends_with(" UTC)"), "{t}");
    }
    assert!(block.contains("Europe/Helsinki and UTC"), "{block}");
    assert!(
        body.contains("value=\"0 9 * * 1-5\""),
        "what was typed is kept: {body}"
    );
    assert_eq!(notices(&app).await, 0, "a preview writes nothing");
    assert_eq!(entries(&app).await.len(), before, "and is not audited");

    // A bad field: the API's message (the same words as POST /api/v1/notices), next to it.
    let api = app
        .post(
            "/api/v1/notices",
            json!({"cron": "0 9 * * 8", "tz": "Europe/Helsinki", "message": "x", "channels": ["staff"]}),
        )
        .await;
    assert_eq!(api.status, 422, "{:?}", api.body);
    let detail = api.body["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("day of week") || detail.contains("8"),
        "{detail}"
    );
    for path in ["/console/notices/preview", "/console/notices"] {
        let before = entries(&app).await.len();
        let p = post(
            &app,
            &anna,
            path,
            &form("0 9 * * 8", "Europe/Helsinki"),
            true,
        )
        .await;
        assert_eq!(p.status, 422, "{path}: {p:?}");
        let body = unescape(&p.body);
        assert!(
            body.contains(&format!("id=\"err-cron\">{detail}</p>")),
            "{path}: {detail} next to the cron field: {body}"
        );
        assert!(!body.contains("id=\"next-times\""), "{body}");
        assert_eq!(notices(&app).await, 0, "{path}: nothing written");
        assert_eq!(entries(&app).await.len(), before, "{path}: nothing audited");
    }
    let p = post(
        &app,
        &anna,
        "/console/notices/preview",
        &form("0 9 * * *", "Mars/Olympus"),
        true,
    )
    .await;
    assert_eq!(p.status, 422, "{p:?}");
    assert!(
        unescape(&p.body).contains("id=\"err-tz\">tz: \"Mars/Olympus\" is not an IANA time zone"),
        "{}",
        p.body
    );

    // The fragment console.js fetches as the expression is typed: the times, or the message.
    let frag = post(
        &app,
        &anna,
        "/console/notices/preview?fragment",
        &form("0 9 * * 1-5", "Europe/Helsinki"),
        true,
    )
    .await;
    assert_eq!(frag.status, 200, "{frag:?}");
    assert!(!frag.body.contains("<html"), "a fragment: {}", frag.body);
    let frag_body = unescape(&frag.body);
    for t in &times {
        assert!(
            frag_body.contains(&format!("<li>{t}</li>")),
            "{t} in {frag_body}"
        );
    }
    let frag = post(
        &app,
        &anna,
        "/console/notices/preview?fragment",
        &form("0 9 * * 8", "Europe/Helsinki"),
        true,
    )
    .await;
    assert!(
        unescape(&frag.body).contains(&format!("id=\"times-error\">{detail}</p>")),
        "{}",
        frag.body
    );
    assert_eq!(notices(&app).await, 0, "fragments write nothing");

    // Adding: one notice, one audit entry, and the list shows the times the preview showed.
    let before = entries(&app).await.len();
    let p = post(
        &app,
        &anna,
        "/console/notices",
        &form("0 9 * * 1-5", "Europe/Helsinki"),
        true,
    )
    .await;
    assert_eq!(p.status, 303, "{p:?}");
    assert_eq!(p.location, "/console/notices");
    assert_eq!(notices(&app).await, 1);
    let e = entries(&app).await;
    assert_eq!(e.len(), before + 1, "{:?}", &e[before..]);
    assert_eq!(e.last().unwrap().action, "notice.create");
    let n = &app.store.notices().await.unwrap()[0];
    assert_eq!(n.cron.to_string(), "0 9 * * 1-5");
    assert_eq!(n.channels, vec!["staff".to_owned()]);
    assert_eq!(n.body.texts().len(), 2, "English and Finnish");
    let list = unescape(&get(&app, Some(&anna.cookie), "/console/notices").await.body);
    for t in &times {
        assert!(list.contains(&format!("<li>{t}</li>")), "{t} in {list}");
    }

    // A viewer: no form, and a forged add or preview is refused and writes nothing.
    let ville = login(&app, "ville").await;
    let page = get(&app, Some(&ville.cookie), "/console/notices").await;
    assert!(!page.body.contains("id=\"add-notice\""), "{}", page.body);
    for path in ["/console/notices", "/console/notices/preview"] {
        let p = post(
            &app,
            &ville,
            path,
            &form("0 9 * * *", "Europe/Helsinki"),
            true,
        )
        .await;
        assert_eq!(p.status, 403, "{path}: {p:?}");
    }
    assert_eq!(notices(&app).await, 1);
}
