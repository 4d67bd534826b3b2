//! The staff console over plain HTTP: login and logout, the redirect to the login page, CSRF,
//! roles, the API's messages next to the field, and one audit entry per console write. The
//! real-browser scenarios are in `console_browser.rs`.

use crate::helpers::{spawn_app_with, TestApp};
use crier::api::authz::CONSOLE;
use crier::api::session::AuthClock;
use crier::domain::audit::AuditEntry;
use crier::store::audit::AuditFilter;
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

fn entries(app: &TestApp) -> Vec<AuditEntry> {
    app.store
        .audit_entries(&AuditFilter {
            limit: 1_000_000,
            ..Default::default()
        })
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

fn incidents(app: &TestApp) -> usize {
    app.store
        .incidents(&crier::store::IncidentFilter {
            limit: 1000,
            ..Default::default()
        })
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
    let before = entries(&app).len();
    let p = sign_in(&app, "anna", "wrong password here").await;
    assert_eq!(p.status, 401);
    assert!(p.cookie.is_none());
    assert!(p.body.contains("role=\"alert\""), "{}", p.body);
    assert!(p.body.contains("wrong user name or password"), "{}", p.body);
    let after = entries(&app);
    assert_eq!(after.len(), before + 1);
    assert_eq!(after.last().unwrap().action, "login.failed");

    // The right one: a session, and the dashboard names the person.
    let anna = login(&app, "anna").await;
    let dash = get(&app, Some(&anna.cookie), "/console/").await;
    assert!(dash.body.contains("anna"), "{}", dash.body);
    assert!(dash.body.contains("<h1>Dashboard</h1>"), "{}", dash.body);
    assert_eq!(entries(&app).last().unwrap().action, "session.login");

    // Logout ends the session: the cookie no longer opens the console.
    let out = post(&app, &anna, "/console/logout", &[], true).await;
    assert_eq!(out.status, 303, "{out:?}");
    assert_eq!(out.location, "/console/login?out=1");
    assert_eq!(entries(&app).last().unwrap().action, "logout");
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

    let before = entries(&app).len();
    let p = post(&app, &anna, "/console/incidents", &INCIDENT, false).await;
    assert_eq!(p.status, 403, "{p:?}");
    assert!(p.body.contains("cross-site request forgery"), "{}", p.body);
    assert!(
        p.body.contains("<h1>403 Forbidden</h1>"),
        "an HTML page: {}",
        p.body
    );
    assert_eq!(incidents(&app), 0, "nothing written");
    let e = entries(&app);
    assert_eq!(e.len(), before + 1);
    assert_eq!(e.last().unwrap().action, "csrf.refused");

    let p = post(&app, &anna, "/console/incidents", &INCIDENT, true).await;
    assert_eq!(p.status, 303, "{p:?}");
    assert!(
        p.location.starts_with("/console/incidents/") && p.location.ends_with("?done=published"),
        "{p:?}"
    );
    assert_eq!(incidents(&app), 1);
    let e = entries(&app);
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
    let before = entries(&app).len();
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
    assert_eq!(incidents(&app), 0);
    assert_eq!(
        entries(&app).len(),
        before,
        "a refused write is not audited"
    );
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

    let before = entries(&app).len();
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
    assert_eq!(incidents(&app), 1);
    assert_eq!(
        entries(&app).len(),
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
    let before = entries(&app).len();
    let p = post(&app, &anna, "/console/incidents", &INCIDENT, true).await;
    assert_eq!(p.status, 303, "{p:?}");
    assert_eq!(p.location, "/console/login?ended=1");
    assert_eq!(incidents(&app), 0);
    assert_eq!(entries(&app).len(), before);
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
    let (app, _) = console_app(&[staff], |_| {}).await;
    add_user(&app, "anna", "publisher").await;
    let anna = login(&app, "anna").await;

    let mut seen = Vec::new();
    async fn once(app: &TestApp, action: &str, p: Page, seen: &mut Vec<String>, before: usize) {
        assert!(p.status == 303, "{action}: {p:?}");
        let e = entries(app);
        assert_eq!(e.len(), before + 1, "{action}: {:?}", &e[before..]);
        assert_eq!(e.last().unwrap().action, action);
        seen.push(action.to_owned());
    }

    let b = entries(&app).len();
    let p = post(&app, &anna, "/console/incidents", &INCIDENT, true).await;
    let id = p.location["/console/incidents/".len()..]
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    once(&app, "incident.create", p, &mut seen, b).await;
    let b = entries(&app).len();
    let p = post(
        &app,
        &anna,
        &format!("/console/incidents/{id}/updates"),
        &[("msg_en", "Still slow."), ("action", "draft")],
        true,
    )
    .await;
    once(&app, "incident.update", p, &mut seen, b).await;
    let b = entries(&app).len();
    let p = post(
        &app,
        &anna,
        &format!("/console/incidents/{id}/publish"),
        &[],
        true,
    )
    .await;
    once(&app, "incident.publish", p, &mut seen, b).await;
    let b = entries(&app).len();
    let p = post(
        &app,
        &anna,
        &format!("/console/incidents/{id}/retry"),
        &[],
        true,
    )
    .await;
    once(&app, "deliveries.requeue", p, &mut seen, b).await;
    let b = entries(&app).len();
    let p = post(
        &app,
        &anna,
        &format!("/console/incidents/{id}/resolve"),
        &[("msg_en", "Fixed.")],
        true,
    )
    .await;
    once(&app, "incident.resolve", p, &mut seen, b).await;
    let b = entries(&app).len();
    let p = post(
        &app,
        &anna,
        &format!("/console/incidents/{id}/reopen"),
        &[("msg_en", "Slow again.")],
        true,
    )
    .await;
    once(&app, "incident.reopen", p, &mut seen, b).await;

    let b = entries(&app).len();
    let p = post(&app, &anna, "/console/logout", &[], true).await;
    once(&app, "logout", p, &mut seen, b).await;
    let b = entries(&app).len();
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
    let b = entries(&app).len();
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
    seen.push("approval.approve".into());
    seen.push("approval.reject".into());
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

    let b = entries(&app).len();
    let p = post(&app, &anna, "/console/incidents", &INCIDENT, true).await;
    assert_eq!(p.status, 303, "{p:?}");
    assert!(p.location.starts_with("/console/?held="), "{p:?}");
    assert_eq!(entries(&app).len(), b + 1);
    assert_eq!(incidents(&app), 0, "nothing published while held");
    let approval = p.location["/console/?held=".len()..].to_owned();
    let dash = get(&app, Some(&anna.cookie), &p.location).await;
    assert!(
        dash.body.contains("Waiting for approval (1)"),
        "{}",
        dash.body
    );

    // The author: refused, nothing written, nothing audited.
    let b = entries(&app).len();
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
    assert_eq!(incidents(&app), 0);
    assert_eq!(entries(&app).len(), b);

    let p = post(
        &app,
        &ben,
        &format!("/console/approvals/{approval}/approve"),
        &[],
        true,
    )
    .await;
    assert_eq!(p.status, 303, "{p:?}");
    let e = entries(&app);
    assert_eq!(e.len(), b + 1);
    assert_eq!(e.last().unwrap().action, "approval.approve");
    assert_eq!(incidents(&app), 1, "published once");
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
    assert_eq!(incidents(&app), 1);

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
    let b = entries(&app).len();
    let p = post(
        &app,
        &ben,
        &format!("/console/approvals/{approval}/reject"),
        &[("reason", "Do not name the supplier"), ("incident", &inc)],
        true,
    )
    .await;
    assert_eq!(p.status, 303, "{p:?}");
    assert_eq!(entries(&app).len(), b + 1);
    assert_eq!(entries(&app).last().unwrap().action, "approval.reject");
    let (_, updates) = app.store.incident(inc.parse().unwrap()).unwrap();
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
    use crier::domain::{Body, Impact, IncidentKind, Locale, Title};
    use crier::store::NewIncident;
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
    let before = entries(&app).len();
    let p = post(
        &app,
        &anna,
        "/console/components/Check-in",
        &[("status", "partial_outage")],
        true,
    )
    .await;
    assert_eq!(p.status, 303, "{p:?}");
    let e = entries(&app);
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
    assert_eq!(entries(&app).len(), before + 1);

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
    assert_eq!(incidents(&app), 0);

    let mut ok = window;
    ok[4] = ("scheduled_until", "2031-01-15T04:00");
    let p = post(&app, &anna, "/console/incidents", &ok, true).await;
    assert_eq!(p.status, 303, "{p:?}");
    let all = app
        .store
        .incidents(&crier::store::IncidentFilter {
            limit: 10,
            ..Default::default()
        })
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
    std::env::set_var("CONSOLE_FAIL_SID", "AC0123456789");
    std::env::set_var("CONSOLE_FAIL_TOKEN", "twilio-token");
    // Nothing listens on port 9 of localhost: every send fails and is retried.
    let sms = (
        "sms",
        "kind = \"twilio\"\naccount_sid_env = \"CONSOLE_FAIL_SID\"\nauth_token_env = \"CONSOLE_FAIL_TOKEN\"\nfrom = \"+15005550006\"\nbase_url = \"http://127.0.0.1:9\"\n",
    );
    let (app, _) = console_app(&[sms], |_| {}).await;
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
