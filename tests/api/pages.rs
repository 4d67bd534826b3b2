//! The public pages as a reader gets them: over HTTP (words, language, headers, 304) and in a
//! real headless Chromium at phone width with JavaScript off (see [`crate::browser`]).

use crate::browser::{Browser, Options};
use crate::helpers::spawn_app;
use serde_json::json;

async fn page(app: &crate::helpers::TestApp, path: &str, accept: &str) -> reqwest::Response {
    page_if(app, path, accept, "").await
}

/// The page, sent `If-None-Match: etag` (none when empty).
async fn page_if(
    app: &crate::helpers::TestApp,
    path: &str,
    accept: &str,
    etag: &str,
) -> reqwest::Response {
    let mut req = app
        .client
        .get(app.url(path))
        .header("accept-language", accept);
    if !etag.is_empty() {
        req = req.header("if-none-match", etag);
    }
    req.send().await.unwrap()
}

/// A published incident in two languages and a draft one; the page shows the published words
/// in the reader's language and nothing of the draft.
async fn incident_app() -> crate::helpers::TestApp {
    use crier::domain::{ComponentName, ComponentStatus};
    use crier::store::port::Components;
    let app = spawn_app().await;
    // Set ten minutes ago: a component set this second has "no data" for today and an uptime a
    // second later, so the page would change under a test comparing two answers.
    let then = chrono::Utc::now() - chrono::Duration::minutes(10);
    for (name, status) in [
        ("Check-in", ComponentStatus::PartialOutage),
        ("Baggage", ComponentStatus::Operational),
    ] {
        let name = ComponentName::parse(name).unwrap();
        app.store
            .set_component(name, status, None, then)
            .await
            .unwrap();
    }
    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": "Check-in is slow", "impact": "major", "components": ["Check-in"],
                   "body": {"en": "Check-in kiosks are slow at Helsinki Airport.",
                            "fi": "Lähtöselvitysautomaatit ovat hitaita Helsinki-Vantaalla."},
                   "next_update": "30m"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": "Secret draft title", "impact": "critical",
                   "message": "Draft words nobody may see", "draft": true}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    app
}

#[tokio::test]
async fn the_status_page_shows_published_words_in_the_readers_language_and_never_drafts() {
    let app = incident_app().await;
    let fi = page(&app, "/", "fi-FI,fi;q=0.9,en;q=0.5").await;
    assert_eq!(fi.status(), 200);
    let fi = fi.text().await.unwrap();
    assert!(fi.contains("<html lang=\"fi\">"), "{fi}");
    assert!(
        fi.contains("Osittainen järjestelmäkatko"),
        "banner in Finnish: {fi}"
    );
    assert!(fi.contains("Lähtöselvitysautomaatit ovat hitaita"), "{fi}");
    assert!(
        fi.contains("Seuraava tiedote viimeistään"),
        "the promise: {fi}"
    );

    // ?lang= wins over the header; Swedish text falls back to English (the update has none).
    let sv = page(&app, "/?lang=sv", "fi").await.text().await.unwrap();
    assert!(sv.contains("<html lang=\"sv\">"), "{sv}");
    assert!(sv.contains("Delvis systemavbrott"), "{sv}");
    assert!(
        sv.contains("Check-in kiosks are slow at Helsinki Airport."),
        "{sv}"
    );

    for body in [&fi, &sv] {
        assert!(
            !body.contains("Secret draft title"),
            "a draft leaked: {body}"
        );
        assert!(
            !body.contains("Draft words nobody may see"),
            "a draft leaked: {body}"
        );
    }
}

#[tokio::test]
async fn a_draft_update_shows_once_it_is_published() {
    let app = spawn_app().await;
    let id = app.open_incident("Baggage delays").await;
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            json!({"message": "Words checked by the duty manager", "draft": true}),
        )
        .await;
    assert!(r.status < 300, "{:?}", r.body);
    let before = page(&app, "/", "en").await.text().await.unwrap();
    assert!(
        !before.contains("Words checked by the duty manager"),
        "{before}"
    );
    assert!(before.contains("Investigating"), "{before}");
    let r = app
        .post(&format!("/api/v1/incidents/{id}/publish"), json!({}))
        .await;
    assert!(r.status < 300, "{:?}", r.body);
    let after = page(&app, "/", "en").await.text().await.unwrap();
    assert!(
        after.contains("Words checked by the duty manager"),
        "{after}"
    );
}

#[tokio::test]
async fn pages_carry_a_strict_policy_and_answer_a_matching_etag_with_304() {
    let app = incident_app().await;
    let r = page(&app, "/", "en").await;
    let h = r.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["vary"], "Accept-Language");
    let etag = h["etag"].to_str().unwrap().to_owned();
    let body = r.text().await.unwrap();
    assert!(
        !body.contains("<script>") && !body.contains(" style="),
        "no inline script or style"
    );

    let again = page_if(&app, "/", "en", &etag).await;
    assert_eq!(again.status(), 304);
    assert!(again.text().await.unwrap().is_empty());

    // Another language is another page: the English tag does not match it.
    let fi = page_if(&app, "/", "fi", &etag).await;
    assert_eq!(fi.status(), 200);

    // A change to what the page shows changes the tag.
    let r = app
        .put(
            "/api/v1/components/Baggage",
            json!({"status": "major_outage"}),
        )
        .await;
    assert_eq!(r.status, 200);
    let changed = page_if(&app, "/", "en", &etag).await;
    assert_eq!(changed.status(), 200);
    assert!(changed.text().await.unwrap().contains("Major outage"));

    let css = app
        .client
        .get(app.url("/assets/crier.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    let missing = app
        .client
        .get(app.url("/assets/nope.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: needs chromium and chromium-driver; run by scripts/test.sh"]
async fn e2e_browser_status_page_reads_on_a_phone_without_javascript() {
    let app = incident_app().await;

    let phone = Browser::start(Options::phone_without_js()).await;
    phone.goto(&app.url("/?lang=fi")).await;
    assert_eq!(phone.title().await, "Status — Tilanne");
    assert_eq!(phone.text("h1").await, "Osittainen järjestelmäkatko");
    let incidents = phone.texts("article.incident").await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert!(
        incidents[0].contains("Lähtöselvitysautomaatit ovat hitaita"),
        "{incidents:?}"
    );
    // Status in words, not only colour.
    let components = phone.texts("li.component").await;
    assert!(
        components
            .iter()
            .any(|c| c.contains("Check-in") && c.contains("Osittainen katko")),
        "{components:?}"
    );
    // Nothing is wider than the phone.
    for css in [
        "header.site",
        "h1",
        "article.incident",
        "li.component",
        "footer.site",
    ] {
        let (x, _, w, _) = phone.rect(css).await;
        assert!(
            x >= 0.0 && x + w <= 360.0,
            "{css} overflows 360 px: x={x} width={w}"
        );
    }
    let shot = phone.screenshot("status-phone-fi").await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 1000);
    let errors = phone.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    phone.close().await;

    // With JavaScript on (to measure): no horizontal scrolling at 360 px, one h1, landmarks,
    // a language on the document, and no CSP violation or failed load.
    let b = Browser::start(Options::phone()).await;
    b.goto(&app.url("/")).await;
    let facts = b
        .script(
            "return { scroll: document.documentElement.scrollWidth, view: window.innerWidth, \
             h1: document.querySelectorAll('h1').length, main: document.querySelectorAll('main').length, \
             lang: document.documentElement.lang, nav: document.querySelectorAll('nav[aria-label]').length, \
             css: getComputedStyle(document.body).maxWidth };",
        )
        .await;
    assert_eq!(facts["view"], 360, "{facts}");
    assert!(
        facts["scroll"].as_f64().unwrap() <= 360.0,
        "horizontal scrolling: {facts}"
    );
    assert_eq!(facts["h1"], 1, "{facts}");
    assert_eq!(facts["main"], 1, "{facts}");
    assert_eq!(facts["nav"], 1, "{facts}");
    assert_eq!(facts["lang"], "en", "{facts}");
    assert_ne!(facts["css"], "none", "the stylesheet was applied: {facts}");
    b.assert_words_whole("/ at 360 px").await;
    let errors = b.console_errors().await;
    assert!(errors.is_empty(), "{errors:?}");
    b.screenshot("status-phone-en").await;
    b.close().await;
}
