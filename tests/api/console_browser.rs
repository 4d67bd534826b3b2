//! The staff console in a real headless Chromium (see [`crate::browser`]): the issue's
//! scenarios, each at laptop size and at 360×740, each failing on any console error (a CSP
//! violation is one) and saving a screenshot under `target/screenshots/`. Time for sessions is
//! the injected auth clock; browser state is polled with a bound, never slept on.

use crate::browser::{Browser, Options};
use crate::console::{add_user, console_app, overdue_incident, PASSWORD};
use crate::e2e::{provider_sim, sim_stats};
use crate::helpers::{env, TestApp};
use crier::store::port::{Components, Incidents, Notices, Subscribers};
use serde_json::json;
use std::time::Duration;

const BOUND: Duration = Duration::from_secs(30);

pub async fn sign_in(b: &Browser, app: &TestApp, user: &str) {
    b.goto(&app.url("/console/login")).await;
    b.append_text("#user", user).await;
    b.append_text("#password", PASSWORD).await;
    b.click("form.login button").await;
    b.wait_text("h1", BOUND, |t| t == "Dashboard").await;
}

/// No console errors (CSP violations, failed loads, script errors) since the last check.
pub async fn clean(b: &Browser, when: &str) {
    let errors = b.console_errors().await;
    assert!(errors.is_empty(), "console errors {when}: {errors:?}");
}

/// The console's only errors are the refusal (403) of the forged request to `path`.
async fn only_refused(b: &Browser, path: &str) {
    let errors = b.console_errors().await;
    assert!(!errors.is_empty(), "the refusal is logged");
    for e in &errors {
        assert!(e.contains(path) && e.contains("403"), "{errors:?}");
    }
}

/// Nothing on the page is wider than the viewport, and no word is broken across two lines to
/// make it so.
pub async fn fits(b: &Browser, width: u32, when: &str) {
    let w = b
        .script("return document.documentElement.scrollWidth;")
        .await
        .as_u64()
        .unwrap();
    assert!(
        w <= u64::from(width),
        "{when}: the page is {w} px wide at {width} px"
    );
    let out = b
        .script(
            "const s = getComputedStyle(document.body); \
             const edge = document.body.getBoundingClientRect().right - parseFloat(s.paddingRight); \
             return [...document.querySelectorAll('main *')] \
               .filter(e => e.getBoundingClientRect().right > edge + 0.5) \
               .map(e => e.tagName.toLowerCase() + '.' + e.className);",
        )
        .await;
    assert_eq!(
        out.as_array().map(Vec::len),
        Some(0),
        "{when}: beyond the page's margin at {width} px: {out}"
    );
    b.assert_words_whole(&format!("{when} at {width} px")).await;
}

fn sms_channel(sim: &str, extra: &str) -> String {
    format!(
        "kind = \"twilio\"\naccount_sid_env = \"CONSOLE_E2E_SID\"\nauth_token_env = \"CONSOLE_E2E_TOKEN\"\n\
         from = \"+15005550006\"\nbase_url = \"{sim}\"\nrate = \"100000/s\"\n{extra}"
    )
}

const SUBSCRIBERS: usize = 5;

async fn all_incidents(app: &TestApp) -> Vec<crier::domain::Incident> {
    app.store
        .incidents(&crier::domain::IncidentFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
}

async fn add_subscribers(app: &TestApp) {
    for i in 0..SUBSCRIBERS {
        let r = app
            .post(
                "/api/v1/subscribers",
                json!({"phone": format!("+35840100000{i}"), "locale": "fi"}),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
}

/// The incident page's progress came over the console's event stream (EventSource), not by
/// polling: the script counts the `progress` events it applied and notes the final `done`.
async fn streamed(b: &Browser) {
    assert!(b.attr("#progress", "data-refresh").await.is_none());
    let deadline = std::time::Instant::now() + BOUND;
    while b.attr("#progress", "data-sse-state").await.as_deref() != Some("done") {
        assert!(
            std::time::Instant::now() < deadline,
            "no `done` from the stream: data-sse={:?}",
            b.attr("#progress", "data-sse").await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let events: usize = b
        .attr("#progress", "data-sse")
        .await
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(events >= 1, "the progress was not updated from the stream");
}

/// Scenario 1: sign in, compose with a Finnish text containing `€`, watch the SMS preview
/// switch encoding and segments while typing, publish, and watch the progress reach 100 % on a
/// log channel and a Twilio channel at the provider emulator, which counts one message per
/// subscriber.
async fn compose_and_publish(o: Options, shot: &str) {
    let (_sim_proc, sim) = provider_sim();
    let sms = sms_channel(&sim, "");
    let log = "kind = \"log\"\naudience = \"fixed\"\n";
    let (app, _) = console_app(&[("log", log), ("sms", &sms)], |c| {
        c.env = env(&[
            ("CONSOLE_E2E_SID", "AC0123456789"),
            ("CONSOLE_E2E_TOKEN", "twilio-token"),
        ])
    })
    .await;
    add_user(&app, "anna", "publisher").await;
    add_subscribers(&app).await;

    let b = Browser::start(o).await;
    sign_in(&b, &app, "anna").await;
    clean(&b, "on the dashboard").await;
    b.goto(&app.url("/console/compose")).await;
    b.append_text("#title", "Lähtöselvitys on hidas").await;
    b.click("#impact option[value=major]").await;
    b.append_text("#msg_en", "Check-in kiosks at Helsinki Airport are slow.")
        .await;
    b.append_text(
        "#msg_fi",
        "Lähtöselvitys on hidas Helsinki-Vantaalla. Jättömaksu 0 €.",
    )
    .await;
    let fi_sms = "article.preview[data-channel=sms][data-language=Suomi]";
    let gsm = b
        .wait_text(&format!("{fi_sms} .sms"), BOUND, |t| {
            t.contains("GSM-7") && t.contains("segment")
        })
        .await;
    let segments = |t: &str| -> usize {
        t.split(", ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no segment count in {t:?}"))
    };
    let before = segments(&gsm);
    assert!(
        b.all(&format!("{fi_sms} .warn")).await.is_empty(),
        "no cost warning for GSM-7"
    );
    // A typographic dash is outside GSM-7: the preview switches to UCS-2 as it is typed.
    b.append_text("#msg_fi", " Pahoittelemme – kiitos.").await;
    let ucs = b
        .wait_text(&format!("{fi_sms} .sms"), BOUND, |t| t.contains("UCS-2"))
        .await;
    let after = segments(&ucs);
    assert!(after > before, "UCS-2 costs more: {before} → {after}");
    let warn = b.text(&format!("{fi_sms} .warn")).await;
    assert!(
        warn.contains("Cost warning") && warn.contains('–'),
        "{warn}"
    );
    // The preview is the API's: the same text the API previews for this channel.
    let api = app
        .post(
            "/api/v1/preview",
            json!({"channel": "sms", "locale": "fi", "title": "Lähtöselvitys on hidas",
                   "message": b.script("return document.getElementById('msg_fi').value;").await}),
        )
        .await;
    assert_eq!(api.status, 200, "{:?}", api.body);
    assert_eq!(api.body["encoding"], "UCS-2");
    assert_eq!(api.body["segments"].as_u64().unwrap() as usize, after);
    let parts = b.texts(&format!("{fi_sms} pre.part")).await;
    assert_eq!(parts[0], api.body["parts"][0].as_str().unwrap());
    assert!(
        parts[0].contains("Lähtöselvitys on hidas"),
        "the title as typed: {parts:?}"
    );
    clean(&b, "while composing").await;
    if o.width <= 360 {
        b.script(&format!(
            "document.querySelector('{fi_sms}').scrollIntoView(); return 0;"
        ))
        .await;
    }
    b.screenshot(&format!("{shot}-compose")).await;
    if o.width <= 360 {
        fits(&b, o.width, "compose").await;
    }

    // Publish: first the confirmation with recipients and channels.
    b.click("button[value=publish]").await;
    let summary = b
        .wait_text("#summary", BOUND, |t| t.contains("recipients"))
        .await;
    assert!(
        summary.contains(&format!("{} recipients", SUBSCRIBERS + 1))
            && summary.contains("2 channels"),
        "{summary}"
    );
    b.click("#confirm").await;
    b.wait_text(".overall .percent", Duration::from_secs(60), |t| {
        t == "100 %"
    })
    .await;
    streamed(&b).await;
    let rows = b.texts("tr.channel-progress").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    for r in &rows {
        assert!(r.contains("100 %"), "{rows:?}");
    }
    assert!(
        rows.iter()
            .any(|r| r.contains("sms") && r.contains(&format!("{SUBSCRIBERS}/{SUBSCRIBERS}"))),
        "{rows:?}"
    );
    assert!(b.text(".notice").await.contains("Published"));
    clean(&b, "on the incident page").await;
    b.screenshot(&format!("{shot}-progress")).await;
    if o.width <= 360 {
        fits(&b, o.width, "incident page").await;
    }

    // The emulator saw exactly one message per subscriber.
    let stats = sim_stats(&sim).await;
    assert_eq!(stats["accepted"]["twilio"], SUBSCRIBERS, "{stats}");
    assert_eq!(stats["unique_recipients"]["twilio"], SUBSCRIBERS, "{stats}");
    assert_eq!(stats["duplicates"]["twilio"], 0, "{stats}");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: needs chromium, chromium-driver and the examples built; run by scripts/test.sh"]
async fn e2e_browser_console_compose_preview_publish_and_progress() {
    compose_and_publish(Options::laptop(), "console-publish").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: needs chromium, chromium-driver and the examples built; run by scripts/test.sh"]
async fn e2e_browser_console_phone_compose_preview_publish_and_progress() {
    compose_and_publish(Options::console_phone(), "console-phone-publish").await;
}

/// Scenario 2: a publisher submits for approval; they get no approve button and a forged
/// approval is refused; a second publisher approves; it publishes once.
async fn approval(o: Options, shot: &str) {
    let log = "kind = \"log\"\naudience = \"fixed\"\napproval = \"required\"\n";
    let (app, _) = console_app(&[("log", log)], |_| {}).await;
    add_user(&app, "anna", "publisher").await;
    add_user(&app, "ben", "publisher").await;

    let b = Browser::start(o).await;
    sign_in(&b, &app, "anna").await;
    b.goto(&app.url("/console/compose")).await;
    b.append_text("#title", "Baggage belt stopped").await;
    b.click("#impact option[value=minor]").await;
    b.append_text("#msg_en", "Baggage from flight AY123 is delayed.")
        .await;
    let button = b.text("button[value=publish]").await;
    assert_eq!(button, "Submit for approval…");
    b.click("button[value=publish]").await;
    b.wait_text("h1", BOUND, |t| t == "Submit for approval?")
        .await;
    b.click("#confirm").await;
    b.wait_text(".notice", BOUND, |t| t.contains("Held for approval"))
        .await;
    assert!(all_incidents(&app).await.is_empty());
    // The author sees their own write waiting, with no approve button…
    assert!(b.text("li.approval .own").await.contains("You wrote this"));
    assert!(b.all("li.approval button.approve").await.is_empty());
    // … and a forged approval is refused.
    let status = b
        .script(
            "const id = document.querySelector('li.approval').id.replace('approval-', '');
             const csrf = document.querySelector('input[name=csrf]').value;
             return fetch('/console/approvals/' + id + '/approve', {method: 'POST',
               headers: {'Content-Type': 'application/x-www-form-urlencoded'},
               body: new URLSearchParams({csrf})}).then(r => r.status);",
        )
        .await;
    assert_eq!(status, 403);
    only_refused(&b, "/approve").await;
    assert!(all_incidents(&app).await.is_empty());
    b.screenshot(&format!("{shot}-held")).await;
    b.click("form.who button").await;
    b.wait_text("h1", BOUND, |t| t == "Sign in").await;

    sign_in(&b, &app, "ben").await;
    b.click("li.approval button.approve").await;
    b.wait_text(".notice", BOUND, |t| t.contains("Approved"))
        .await;
    b.wait_text(".overall .percent", Duration::from_secs(60), |t| {
        t == "100 %"
    })
    .await;
    let incidents = all_incidents(&app).await;
    assert_eq!(incidents.len(), 1, "published once");
    let r = app
        .get(&format!("/api/v1/incidents/{}/deliveries", incidents[0].id))
        .await;
    assert_eq!(r.body["channels"]["log"]["total"], 1, "{:?}", r.body);
    assert_eq!(r.body["channels"]["log"]["delivered"], 1, "{:?}", r.body);
    clean(&b, "through approval").await;
    b.screenshot(&format!("{shot}-approved")).await;
    if o.width <= 360 {
        fits(&b, o.width, "approved incident").await;
    }
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: needs chromium and chromium-driver; run by scripts/test.sh"]
async fn e2e_browser_console_approval_by_a_second_publisher() {
    approval(Options::laptop(), "console-approval").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: needs chromium and chromium-driver; run by scripts/test.sh"]
async fn e2e_browser_console_phone_approval_by_a_second_publisher() {
    approval(Options::console_phone(), "console-phone-approval").await;
}

/// Scenario 3: a viewer sees no subscriber addresses and no write buttons; a forged write is
/// refused.
async fn viewer(o: Options, shot: &str) {
    let subs = "kind = \"log\"\naudience = \"subscribers\"\n";
    let (app, _) = console_app(&[("subs", subs)], |_| {}).await;
    add_user(&app, "ville", "viewer").await;
    add_subscribers(&app).await;
    let id = app.open_incident("Baggage delays").await;

    let b = Browser::start(o).await;
    sign_in(&b, &app, "ville").await;
    assert!(b.text("main").await.contains("Subscribers: 5"));
    for path in ["/console/".to_owned(), format!("/console/incidents/{id}")] {
        b.goto(&app.url(&path)).await;
        b.wait_text("h1", BOUND, |t| !t.is_empty()).await;
        assert!(
            b.all("main form").await.is_empty(),
            "{path}: a form for a viewer"
        );
        assert!(
            b.all("main button").await.is_empty(),
            "{path}: a button for a viewer"
        );
        assert!(
            b.all("a[href='/console/compose']").await.is_empty(),
            "{path}"
        );
        let source = b.source().await;
        assert!(
            !source.contains("+35840100000"),
            "{path}: an address shown to a viewer"
        );
    }
    let status = b
        .script(
            "const csrf = document.querySelector('input[name=csrf]').value;
             return fetch('/console/incidents', {method: 'POST',
               headers: {'Content-Type': 'application/x-www-form-urlencoded'},
               body: new URLSearchParams({csrf, title: 'Forged', impact: 'major', msg_en: 'x', action: 'publish'})})
               .then(r => r.status);",
        )
        .await;
    assert_eq!(status, 403);
    only_refused(&b, "/console/incidents").await;
    assert_eq!(all_incidents(&app).await.len(), 1);
    clean(&b, "as a viewer").await;
    b.screenshot(&format!("{shot}-viewer")).await;
    if o.width <= 360 {
        fits(&b, o.width, "viewer's incident page").await;
    }
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: needs chromium and chromium-driver; run by scripts/test.sh"]
async fn e2e_browser_console_viewer_has_no_writes() {
    viewer(Options::laptop(), "console").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: needs chromium and chromium-driver; run by scripts/test.sh"]
async fn e2e_browser_console_phone_viewer_has_no_writes() {
    viewer(Options::console_phone(), "console-phone").await;
}

/// Scenario 4: a session expires; the next write is refused and the browser lands on the
/// login page; a write without the CSRF token is refused.
async fn expiry(o: Options) {
    let (app, clock) = console_app(&[], |_| {}).await;
    add_user(&app, "anna", "publisher").await;
    let b = Browser::start(o).await;
    sign_in(&b, &app, "anna").await;
    let status = b
        .script(
            "return fetch('/console/incidents', {method: 'POST',
               headers: {'Content-Type': 'application/x-www-form-urlencoded'},
               body: new URLSearchParams({title: 'No token', impact: 'major', msg_en: 'x', action: 'publish'})})
               .then(r => r.status);",
        )
        .await;
    assert_eq!(status, 403, "a write without the CSRF token");
    only_refused(&b, "/console/incidents").await;
    b.goto(&app.url("/console/compose")).await;
    b.append_text("#title", "Written too late").await;
    b.click("#impact option[value=minor]").await;
    b.append_text("#msg_en", "Words.").await;
    clock.advance(Duration::from_secs(31 * 60));
    b.click("button[value=draft]").await;
    b.wait_text("h1", BOUND, |t| t == "Sign in").await;
    assert!(b.text(".notice").await.contains("Your session has ended"));
    assert!(b.url().await.contains("/console/login?ended=1"));
    assert!(all_incidents(&app).await.is_empty());
    clean(&b, "after the session ended").await;
    b.screenshot("console-session-ended").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: needs chromium and chromium-driver; run by scripts/test.sh"]
async fn e2e_browser_console_expired_session_and_csrf() {
    expiry(Options::laptop()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: needs chromium and chromium-driver; run by scripts/test.sh"]
async fn e2e_browser_console_phone_expired_session_and_csrf() {
    expiry(Options::console_phone()).await;
}

/// Scenario 5: the dashboard shows an overdue promise and a skipped channel (naming the
/// missing variable).
async fn dashboard(o: Options, shot: &str) {
    let sms = "kind = \"twilio\"\naccount_sid_env = \"CONSOLE_E2E_UNSET_SID\"\nauth_token_env = \"CONSOLE_E2E_UNSET_TOKEN\"\nfrom = \"+15005550006\"\n";
    let log = "kind = \"log\"\naudience = \"fixed\"\n";
    let (app, _) = console_app(&[("sms", sms), ("log", log)], |_| {}).await;
    add_user(&app, "anna", "publisher").await;
    overdue_incident(&app).await;
    let b = Browser::start(o).await;
    sign_in(&b, &app, "anna").await;
    let card = b.text("li.card.overdue").await;
    assert!(
        card.contains("Late again") && card.contains("Overdue"),
        "{card}"
    );
    assert!(card.contains("overdue by"), "{card}");
    // The badge counts: the script writes minutes:seconds past the promise.
    let ticking = b
        .wait_text("li.card.overdue .countdown", BOUND, |t| {
            t.ends_with(" overdue") && t.contains(':')
        })
        .await;
    let minutes: u64 = ticking
        .trim_start_matches("— ")
        .split(':')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("{ticking}"));
    assert!(
        minutes >= 10,
        "the promise was due ten minutes before: {ticking}"
    );
    let skipped = b.text("li.ch-skipped").await;
    assert!(
        skipped.contains("sms")
            && skipped.contains("skipped")
            && skipped.contains("CONSOLE_E2E_UNSET_SID"),
        "{skipped}"
    );
    assert!(b.text("li.ch-active").await.contains("log"));
    clean(&b, "on the dashboard").await;
    b.screenshot(&format!("{shot}-dashboard")).await;
    if o.width <= 360 {
        fits(&b, o.width, "dashboard").await;
    }
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: needs chromium and chromium-driver; run by scripts/test.sh"]
async fn e2e_browser_console_dashboard_overdue_and_skipped() {
    dashboard(Options::laptop(), "console").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: needs chromium and chromium-driver; run by scripts/test.sh"]
async fn e2e_browser_console_phone_dashboard_overdue_and_skipped() {
    dashboard(Options::console_phone(), "console-phone").await;
}

/// The subscribers page and the users page, as an admin: counts, a search by a part of the
/// address, adding a subscriber (a bad number first: the API's message next to the field),
/// removing one; adding a user and seeing the initial password once (it signs in).
async fn subscribers_and_users(o: Options, shot: &str) {
    let (app, _) = console_app(&[], |_| {}).await;
    add_user(&app, "root", "admin").await;
    app.component("Check-in").await;
    app.component("Baggage").await;
    for body in [
        json!({"email": "liisa@example.fi", "locale": "fi", "components": ["Check-in"]}),
        json!({"phone": "+358401000001", "locale": "sv"}),
    ] {
        let r = app.post("/api/v1/subscribers", body).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }

    let b = Browser::start(o).await;
    sign_in(&b, &app, "root").await;
    b.click_and_load("a[href='/console/subscribers']").await;
    b.wait_text("h1", BOUND, |t| t == "Subscribers").await;
    assert!(b.text(".total").await.contains("Subscribers: 2"));

    // Search by a part of the address.
    b.append_text("#q", "LIISA").await;
    b.click_and_load("form.search button").await;
    assert_eq!(
        b.texts("li.subscriber .address").await,
        ["liisa@example.fi"]
    );
    assert!(b.text("#matched").await.contains("1 match"));

    // A number without a country code: the API's message next to the field, nothing added.
    b.goto(&app.url("/console/subscribers")).await;
    b.append_text("#phone", "0401234567").await;
    b.click_and_load("#add").await;
    let err = b.text("#err-phone").await;
    assert!(err.contains("has no country code"), "{err}");
    assert_eq!(app.store.subscriber_count().await.unwrap(), 2);
    // The browser logs the refusal's status (422), and nothing else.
    let errors = b.console_errors().await;
    assert!(
        errors
            .iter()
            .all(|e| e.contains("/console/subscribers") && e.contains("422")),
        "{errors:?}"
    );
    // Corrected, with a language and a component.
    b.type_into("#phone", "+358 40 100 0002").await;
    b.type_into("#locale", "fi").await;
    b.click("#add-subscriber input[name=components][value=Baggage]")
        .await;
    b.click_and_load("#add").await;
    b.wait_text(".notice", BOUND, |t| t.contains("Subscriber added"))
        .await;
    assert!(b.text(".total").await.contains("Subscribers: 3"));
    let added = app
        .store
        .subscribers(10)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.contact.address() == "+358401000002")
        .expect("added");
    assert_eq!(added.locale.as_str(), "fi");
    assert!(b
        .text(&format!("#sub-{} .address", added.id))
        .await
        .contains("+358401000002"));
    clean(&b, "on the subscribers page").await;
    b.screenshot(&format!("{shot}-subscribers")).await;
    if o.width <= 360 {
        fits(&b, o.width, "subscribers page").await;
    }

    // Remove the first one.
    let liisa = app
        .store
        .subscribers(10)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.contact.address() == "liisa@example.fi")
        .unwrap();
    b.click_and_load(&format!("#sub-{} button.remove", liisa.id))
        .await;
    b.wait_text(".notice", BOUND, |t| t.contains("Subscriber removed"))
        .await;
    assert!(!b.source().await.contains("liisa@example.fi"));
    assert_eq!(app.store.subscriber_count().await.unwrap(), 2);

    // Users: add one; the initial password is shown once and signs in.
    b.click_and_load("a[href='/console/users']").await;
    b.wait_text("h1", BOUND, |t| t == "Users and tokens").await;
    b.append_text("#name", "maria.k").await;
    b.append_text("#display_name", "Maria Korhonen").await;
    b.click("#role option[value=responder]").await;
    b.click_and_load("#add-user-button").await;
    let password = b.text("#secret-value").await;
    assert!(password.len() >= 12, "{password}");
    assert!(b.text("#user-maria\\.k").await.contains("responder"));
    clean(&b, "on the users page").await;
    b.screenshot(&format!("{shot}-users")).await;
    if o.width <= 360 {
        fits(&b, o.width, "users page").await;
    }
    let r = app
        .raw(
            reqwest::Method::POST,
            "/api/v1/login",
            serde_json::to_vec(&json!({"user": "maria.k", "password": password})).unwrap(),
            Some("application/json"),
            None,
        )
        .await;
    assert_eq!(r.status, 201, "the shown password signs in: {:?}", r.body);
    b.goto(&app.url("/console/users")).await;
    b.wait_text("h1", BOUND, |t| t == "Users and tokens").await;
    assert!(b.all("#secret-value").await.is_empty(), "shown once");
    assert!(!b.source().await.contains(&password), "shown once");
    clean(&b, "after reloading the users page").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: needs chromium and chromium-driver; run by scripts/test.sh"]
async fn e2e_browser_console_subscribers_and_users() {
    subscribers_and_users(Options::laptop(), "console").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: needs chromium and chromium-driver; run by scripts/test.sh"]
async fn e2e_browser_console_phone_subscribers_and_users() {
    subscribers_and_users(Options::console_phone(), "console-phone").await;
}

/// The channels page (a skipped channel with its missing variable; an admin's credential
/// check shown on the page) and adding a notice: the next fire times, or the API's message,
/// follow the crontab expression as it is typed, writing nothing until **Add notice**.
async fn channels_and_notices(o: Options, shot: &str) {
    let staff = ("staff", "kind = \"log\"\naudience = \"fixed\"\n");
    let gone = (
        "tg-gone",
        "kind = \"telegram\"\nbot_token_env = \"CONSOLE_E2E_UNSET_TOKEN\"\nchat_id = \"-100\"\n",
    );
    let (app, _) = console_app(&[staff, gone], |_| {}).await;
    add_user(&app, "root", "admin").await;
    let b = Browser::start(o).await;
    sign_in(&b, &app, "root").await;

    b.click_and_load("a[href='/console/channels']").await;
    b.wait_text("h1", BOUND, |t| t == "Channels").await;
    assert!(b
        .text(".ch-skipped")
        .await
        .contains("CONSOLE_E2E_UNSET_TOKEN"));
    b.click_and_load("#channel-1 button").await;
    b.wait_text("#channel-1 .check", BOUND, |t| t.contains("unchecked"))
        .await;
    clean(&b, "on the channels page").await;
    b.screenshot(&format!("{shot}-channels")).await;
    if o.width <= 360 {
        fits(&b, o.width, "channels page").await;
    }

    b.click_and_load("a[href='/console/notices']").await;
    b.wait_text("h1", BOUND, |t| t == "Recurring notices").await;
    // The times are the API's dry run of the whole notice: text and channel first.
    b.append_text("#msg_en", "Daily status: all normal.").await;
    b.click("input[name=channels][value=staff]").await;
    b.append_text("#cron", "0 9 * * 8").await;
    b.wait_text("#times-error", BOUND, |t| t.starts_with("cron:"))
        .await;
    b.type_into("#cron", "0 9 * * 1-5").await;
    let times = b
        .wait_text("#next-times", BOUND, |t| {
            t.lines().filter(|l| l.ends_with(" UTC)")).count() == 5
        })
        .await;
    assert!(times.contains("09:00"), "{times}");
    assert!(
        app.store.notices().await.unwrap().is_empty(),
        "nothing written yet"
    );
    clean(&b, "while typing a notice").await;
    b.screenshot(&format!("{shot}-notices")).await;
    if o.width <= 360 {
        fits(&b, o.width, "notices page").await;
    }
    b.click_and_load("#add").await;
    b.wait_text("h1", BOUND, |t| t == "Recurring notices").await;
    assert_eq!(
        app.store.notices().await.unwrap().len(),
        1,
        "{}",
        b.source().await
    );
    assert!(b.text(".notice-card").await.contains("Daily status"));
    clean(&b, "after adding a notice").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: needs chromium and chromium-driver; run by scripts/test.sh"]
async fn e2e_browser_console_channels_and_notices() {
    channels_and_notices(Options::laptop(), "console").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: needs chromium and chromium-driver; run by scripts/test.sh"]
async fn e2e_browser_console_phone_channels_and_notices() {
    channels_and_notices(Options::console_phone(), "console-phone").await;
}

// --- Issue 13: a responder submits an incident with component statuses for approval. ---

/// Scenario 2 with affected components: a responder composes an incident with two affected
/// components and their new statuses and submits it for approval (the compose page offers no
/// "Publish"); the responder has no approve button and a forged approve is refused; a publisher
/// approves it; the log channel gets it exactly once; the status page shows both components'
/// new statuses.
async fn responder_submits_with_components(o: Options, shot: &str) {
    let log = "kind = \"log\"\naudience = \"fixed\"\n";
    let (app, _) = console_app(&[("log", log)], |_| {}).await;
    add_user(&app, "rita", "responder").await;
    add_user(&app, "pekka", "publisher").await;
    for c in ["Baggage", "Check-in", "Gates"] {
        app.component(c).await;
    }

    let b = Browser::start(o).await;
    sign_in(&b, &app, "rita").await;
    b.goto(&app.url("/console/compose")).await;
    b.append_text("#title", "Check-in and baggage down").await;
    b.click("#impact option[value=major]").await;
    b.append_text(
        "#msg_en",
        "Check-in kiosks and baggage drop are down at HEL.",
    )
    .await;
    b.click("select[name='cs.Check-in'] option[value=major_outage]")
        .await;
    b.click("select[name='cs.Baggage'] option[value=partial_outage]")
        .await;
    assert!(b
        .text("#component-statuses-hint")
        .await
        .contains("A draft changes none"));
    assert_eq!(
        b.text("button[value=publish]").await,
        "Submit for approval…"
    );
    b.screenshot(&format!("{shot}-compose")).await;
    if o.width <= 360 {
        fits(&b, o.width, "compose with component statuses").await;
    }
    b.click("button[value=publish]").await;
    b.wait_text("h1", BOUND, |t| t == "Submit for approval?")
        .await;
    assert!(b
        .text(".notice")
        .await
        .contains("the author's role (responder) may not publish alone"));
    assert!(b.text("#component-changes").await.contains("once approved"));
    b.click("#confirm").await;
    b.wait_text(".notice", BOUND, |t| t.contains("Held for approval"))
        .await;
    assert!(all_incidents(&app).await.is_empty());
    async fn status(app: &TestApp, n: &str) -> String {
        app.store
            .components()
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.name.as_str() == n)
            .map(|c| c.status.as_str().to_owned())
            .unwrap()
    }
    assert_eq!(
        status(&app, "Check-in").await,
        "operational",
        "not while held"
    );
    assert!(b.all("li.approval button.approve").await.is_empty());
    let forged = b
        .script(
            "const id = document.querySelector('li.approval').id.replace('approval-', '');
             const csrf = document.querySelector('input[name=csrf]').value;
             return fetch('/console/approvals/' + id + '/approve', {method: 'POST',
               headers: {'Content-Type': 'application/x-www-form-urlencoded'},
               body: new URLSearchParams({csrf})}).then(r => r.status);",
        )
        .await;
    assert_eq!(forged, 403);
    only_refused(&b, "/approve").await;
    assert!(all_incidents(&app).await.is_empty());
    assert_eq!(status(&app, "Check-in").await, "operational");
    b.click("form.who button").await;
    b.wait_text("h1", BOUND, |t| t == "Sign in").await;

    sign_in(&b, &app, "pekka").await;
    b.click("li.approval button.approve").await;
    b.wait_text(".notice", BOUND, |t| t.contains("Approved"))
        .await;
    b.wait_text(".overall .percent", Duration::from_secs(60), |t| {
        t == "100 %"
    })
    .await;
    let incidents = all_incidents(&app).await;
    assert_eq!(incidents.len(), 1, "published once");
    let r = app
        .get(&format!("/api/v1/incidents/{}/deliveries", incidents[0].id))
        .await;
    assert_eq!(r.body["channels"]["log"]["total"], 1, "{:?}", r.body);
    assert_eq!(r.body["channels"]["log"]["delivered"], 1, "{:?}", r.body);
    let sent = std::fs::read_to_string(app.dir.path().join("data/outbox/log.jsonl")).unwrap();
    assert_eq!(
        sent.lines()
            .filter(|l| l.contains("Check-in kiosks and baggage drop"))
            .count(),
        1,
        "{sent}"
    );
    assert_eq!(status(&app, "Check-in").await, "major_outage");
    assert_eq!(status(&app, "Baggage").await, "partial_outage");
    assert_eq!(status(&app, "Gates").await, "operational");
    clean(&b, "through approval").await;

    b.goto(&app.url("/")).await;
    let page = b.text("body").await;
    assert!(page.contains("Major outage"), "{page}");
    assert!(page.contains("Partial outage"), "{page}");
    clean(&b, "status page").await;
    b.screenshot(&format!("{shot}-status-page")).await;
    if o.width <= 360 {
        fits(&b, o.width, "status page").await;
    }
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: needs chromium and chromium-driver; run by scripts/test.sh"]
async fn e2e_browser_console_responder_submits_components_for_approval() {
    responder_submits_with_components(Options::laptop(), "console-compose-components").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: needs chromium and chromium-driver; run by scripts/test.sh"]
async fn e2e_browser_console_phone_responder_submits_components_for_approval() {
    responder_submits_with_components(Options::console_phone(), "console-phone-compose-components")
        .await;
}

/// The value of a form field, read in the page.
async fn value(b: &Browser, id: &str) -> String {
    b.script(&format!("return document.getElementById('{id}').value;"))
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Incident templates (issue 13): a publisher adds one with an English and a Finnish message on
/// the templates page; a responder opens compose, applies it from "Start from template", sees
/// every field and the live preview filled, and saves the draft it makes.
async fn templates(o: Options, shot: &str) {
    let log = "kind = \"log\"\naudience = \"fixed\"\n";
    let (app, _) = console_app(&[("log", log)], |_| {}).await;
    app.component("Check-in").await;
    add_user(&app, "pia", "publisher").await;
    add_user(&app, "rob", "responder").await;

    let b = Browser::start(o).await;
    sign_in(&b, &app, "pia").await;
    b.click("a[href='/console/templates']").await;
    b.wait_text("h1", BOUND, |t| t == "Incident templates")
        .await;
    b.append_text("#name", "Check-in slow").await;
    b.append_text("#title", "Check-in delays at Helsinki Airport")
        .await;
    b.click("#impact option[value=major]").await;
    b.click("#status option[value=identified]").await;
    b.click("input[name=components][value='Check-in']").await;
    b.append_text("#msg_en", "Check-in kiosks are slow; use the mobile app.")
        .await;
    b.append_text(
        "#msg_fi",
        "Lähtöselvitys on hidas; käytä mobiilisovellusta.",
    )
    .await;
    b.click("#save-template").await;
    b.wait_text("#done", BOUND, |t| t == "Template added.")
        .await;
    let card = b.text("li.template-card").await;
    assert!(
        card.contains("Check-in slow") && card.contains("fi: Lähtöselvitys on hidas"),
        "{card}"
    );
    let stored = app.get("/api/v1/templates").await.body;
    let id = stored[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(stored[0]["created_by"], "pia");
    clean(&b, "on the templates page").await;
    b.screenshot(&format!("{shot}-list")).await;
    if o.width <= 360 {
        fits(&b, o.width, "templates page").await;
    }
    b.click("form.who button").await;
    b.wait_text("h1", BOUND, |t| t == "Sign in").await;

    sign_in(&b, &app, "rob").await;
    b.goto(&app.url("/console/compose")).await;
    b.wait_text("h1", BOUND, |t| t == "New incident").await;
    b.click(&format!("#template option[value='{id}']")).await;
    assert_eq!(
        value(&b, "title").await,
        "Check-in delays at Helsinki Airport"
    );
    assert_eq!(value(&b, "impact").await, "major");
    assert_eq!(value(&b, "status").await, "identified");
    assert_eq!(
        value(&b, "msg_fi").await,
        "Lähtöselvitys on hidas; käytä mobiilisovellusta."
    );
    assert_eq!(
        value(&b, "msg_en").await,
        "Check-in kiosks are slow; use the mobile app."
    );
    assert_eq!(value(&b, "msg_sv").await, "");
    assert_eq!(
        b.script(
            "return document.querySelector('input[name=components][value=\"Check-in\"]').checked;"
        )
        .await,
        json!(true)
    );
    // The live preview follows: each language's message as the log channel sends it.
    b.wait_text(
        "article.preview[data-channel=log][data-language=Suomi]",
        BOUND,
        |t| {
            t.contains("Lähtöselvitys on hidas")
                && t.contains("Check-in delays at Helsinki Airport")
        },
    )
    .await;
    b.wait_text(
        "article.preview[data-channel=log][data-language=English]",
        BOUND,
        |t| t.contains("use the mobile app"),
    )
    .await;
    clean(&b, "applying a template").await;
    b.screenshot(&format!("{shot}-compose")).await;
    if o.width <= 360 {
        fits(&b, o.width, "compose from a template").await;
    }

    // A responder saves it as a draft: the incident carries the template's fields.
    b.click("button[value=draft]").await;
    b.wait_text(".notice", BOUND, |t| t.contains("Saved as a draft"))
        .await;
    let incidents = all_incidents(&app).await;
    assert_eq!(incidents.len(), 1);
    let i = &incidents[0];
    assert_eq!(i.title.as_str(), "Check-in delays at Helsinki Airport");
    assert_eq!(i.impact, crier::domain::Impact::Major);
    assert_eq!(i.status, crier::domain::Status::Identified);
    assert_eq!(i.components.len(), 1);
    let detail = app.get(&format!("/api/v1/incidents/{}", i.id)).await.body;
    assert_eq!(
        detail["updates"][0]["body"],
        json!({"en": "Check-in kiosks are slow; use the mobile app.", "fi": "Lähtöselvitys on hidas; käytä mobiilisovellusta."})
    );
    assert_eq!(detail["updates"][0]["draft"], true);
    clean(&b, "after saving").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: needs chromium and chromium-driver; run by scripts/test.sh"]
async fn e2e_browser_console_templates_created_and_applied_in_compose() {
    templates(Options::laptop(), "console-templates").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: needs chromium and chromium-driver; run by scripts/test.sh"]
async fn e2e_browser_console_phone_templates_created_and_applied_in_compose() {
    templates(Options::console_phone(), "console-phone-templates").await;
}

// --- Issue 13: a maintenance window with its own reminder and its automatic transitions. ---

/// A publisher schedules a maintenance window with a 1 h reminder: the reminder field shows
/// only for a maintenance; the incident page then lists the three coming transitions with the
/// organisation's zone and UTC, and the dashboard the next one.
async fn maintenance_window(o: Options, shot: &str) {
    let log = "kind = \"log\"\naudience = \"fixed\"\n";
    let (app, _) = console_app(&[("log", log)], |c| {
        c.render.timezone = "Europe/Helsinki".parse().unwrap();
        c.schedule.maintenance_remind_before = Some(Duration::from_secs(86_400));
    })
    .await;
    add_user(&app, "pia", "publisher").await;
    let b = Browser::start(o).await;
    sign_in(&b, &app, "pia").await;
    b.goto(&app.url("/console/compose")).await;
    b.wait_text("h1", BOUND, |t| t == "New incident").await;
    let hidden = || async {
        b.script("return document.getElementById('remind').hidden;")
            .await
            .as_bool()
            .unwrap()
    };
    assert!(hidden().await, "no reminder for an incident");
    b.click("input[name=kind][value=maintenance]").await;
    assert!(!hidden().await, "a maintenance shows its reminder");
    // The config's default is chosen; the publisher picks an hour.
    assert_eq!(
        b.script("return document.querySelector('input[name=remind_before]:checked').value;")
            .await,
        "1d"
    );
    b.click("input[name=remind_before][value='1h']").await;
    b.append_text("#title", "Check-in system upgrade").await;
    b.append_text("#msg_en", "Check-in kiosks are offline during the upgrade.")
        .await;
    b.script(
        "document.getElementById('scheduled_for').value = '2031-01-15T02:00';
         document.getElementById('scheduled_until').value = '2031-01-15T04:00'; return 0;",
    )
    .await;
    clean(&b, "while composing a maintenance").await;
    if o.width <= 360 {
        fits(&b, o.width, "compose a maintenance").await;
    }
    b.click("button[value=publish]").await;
    b.wait_text("#summary", BOUND, |t| {
        t.contains("1 recipient on 1 channel")
    })
    .await;
    b.click("#confirm").await;
    b.wait_text("h1", BOUND, |t| t == "Check-in system upgrade")
        .await;
    let steps = b
        .wait_text("#schedule", BOUND, |t| t.contains("Completed"))
        .await;
    let lines: Vec<&str> = steps.lines().collect();
    assert_eq!(
        lines,
        vec![
            "Reminder at 2031-01-15 01:00 EET (23:00 UTC) — not yet",
            "In progress at 2031-01-15 02:00 EET (00:00 UTC) — upcoming",
            "Completed at 2031-01-15 04:00 EET (02:00 UTC) — upcoming",
        ],
        "{steps}"
    );
    let m = app
        .get("/api/v1/incidents?kind=maintenance")
        .await
        .body
        .to_string();
    assert!(m.contains("\"remind_before\":\"1h\""), "{m}");
    clean(&b, "on the maintenance's page").await;
    b.script("document.getElementById('h-sched').scrollIntoView(); return 0;")
        .await;
    b.screenshot(&format!("{shot}-maintenance")).await;
    if o.width <= 360 {
        fits(&b, o.width, "the maintenance's page").await;
    }
    b.goto(&app.url("/console/")).await;
    b.wait_text(".next-transition", BOUND, |t| {
        t == "Next: Reminder at 2031-01-15 01:00 EET (23:00 UTC)"
    })
    .await;
    clean(&b, "on the dashboard").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: needs chromium and chromium-driver; run by scripts/test.sh"]
async fn e2e_browser_console_maintenance_window_with_its_reminder() {
    maintenance_window(Options::laptop(), "console").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: needs chromium and chromium-driver; run by scripts/test.sh"]
async fn e2e_browser_console_phone_maintenance_window_with_its_reminder() {
    maintenance_window(Options::console_phone(), "console-phone").await;
}
