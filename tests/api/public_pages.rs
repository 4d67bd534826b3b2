//! The public pages of issue 14 on the running server: the banner's wording for each mix of
//! component statuses, groups, 90-day uptime bars from a scripted status history, active
//! incidents with their whole published timeline, maintenance, `/history` by month, the
//! `/incidents/{id}` permalink, what never appears (drafts, unpublished updates, authors),
//! languages, 304 on ETag and If-Modified-Since, the moved or disabled page, the static copy;
//! and a browser at phone width with JavaScript off.

use crate::browser::{Browser, Options};
use crate::helpers::{spawn_app, spawn_app_with, TestApp};
use chrono::{DateTime, Utc};
use crier::domain::{ComponentName, ComponentStatus};
use crier::store::port::Components;
use serde_json::json;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

async fn get(app: &TestApp, path: &str, accept: &str) -> (u16, String) {
    let r = app
        .client
        .get(app.url(path))
        .header("accept-language", accept)
        .send()
        .await
        .unwrap();
    // minijinja escapes '/' in attributes as &#x2f; (valid HTML); read it back as '/'.
    let status = r.status().as_u16();
    let body = r.text().await.unwrap().replace("&#x2f;", "/");
    (status, body)
}

async fn set(app: &TestApp, name: &str, status: &str, group: Option<&str>) {
    let mut body = json!({ "status": status });
    if let Some(g) = group {
        body["group"] = json!(g);
    }
    let r = app.put(&format!("/api/v1/components/{name}"), body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

fn banner(page: &str) -> &str {
    let start = page.find("<h1 class=\"banner").unwrap();
    let start = start + page[start..].find('>').unwrap() + 1;
    let end = start + page[start..].find("</h1>").unwrap();
    &page[start..end]
}

#[tokio::test]
async fn the_banner_speaks_statuspages_words_for_each_mix_of_component_statuses() {
    let app = spawn_app().await;
    for (mix, want) in [
        (["operational", "operational"], "All Systems Operational"),
        (
            ["under_maintenance", "operational"],
            "Service Under Maintenance",
        ),
        (
            ["degraded_performance", "under_maintenance"],
            "Partially Degraded Service",
        ),
        (["partial_outage", "operational"], "Minor Service Outage"),
        (
            ["partial_outage", "partial_outage"],
            "Partial System Outage",
        ),
        (["major_outage", "operational"], "Partial System Outage"),
        (["major_outage", "major_outage"], "Major System Outage"),
    ] {
        set(&app, "A", mix[0], None).await;
        set(&app, "B", mix[1], None).await;
        let (_, page) = get(&app, "/", "en").await;
        assert_eq!(banner(&page), want, "{mix:?}");
    }
    // An open incident naming no component turns the banner by its impact (Statuspage's
    // indicator): minor → Minor Service Outage.
    set(&app, "A", "operational", None).await;
    set(&app, "B", "operational", None).await;
    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": "Slow e-mail", "impact": "minor", "message": "Investigating."}),
        )
        .await;
    assert_eq!(r.status, 201);
    let (_, page) = get(&app, "/", "en").await;
    assert_eq!(banner(&page), "Minor Service Outage");
    let (_, fi) = get(&app, "/", "fi").await;
    assert_eq!(banner(&fi), "Vähäinen palvelukatko");
}

/// A server in UTC whose clock starts on 2026-11-20 at noon, with a status history scripted
/// through the store (the same `set_component` the API calls, at chosen instants).
#[tokio::test]
async fn uptime_bars_follow_the_recorded_history_with_statuspages_arithmetic() {
    let app = spawn_app_with(&[], |c| {
        c.clock_start = Some(at("2026-11-20T12:00:00Z"));
    })
    .await;
    let api = ComponentName::parse("API").unwrap();
    for (when, status) in [
        ("2026-11-01T00:00:00Z", ComponentStatus::Operational),
        ("2026-11-10T06:00:00Z", ComponentStatus::MajorOutage),
        // 2 h 24 min major, then 4 h partial, then degraded and maintenance (count as up).
        ("2026-11-10T08:24:00Z", ComponentStatus::PartialOutage),
        ("2026-11-10T12:24:00Z", ComponentStatus::DegradedPerformance),
        ("2026-11-10T14:00:00Z", ComponentStatus::UnderMaintenance),
        ("2026-11-10T16:00:00Z", ComponentStatus::Operational),
    ] {
        app.store
            .set_component(api.clone(), status, Some("Core".into()), at(when))
            .await
            .unwrap();
    }
    set(&app, "Website", "operational", Some("Web")).await;
    let (status, page) = get(&app, "/", "en").await;
    assert_eq!(status, 200);
    // Groups in order, each with its heading.
    let core = page.find("<h3 class=\"group\">Core</h3>").expect(&page);
    let web = page.find("<h3 class=\"group\">Web</h3>").expect(&page);
    assert!(core < web);
    // (2.4 h + 0.3 × 4 h) / 24 h down = 85 % up, with the minutes in words.
    assert!(
        page.contains(
            "title=\"10 Nov: 85 % uptime, major outage 144 min, partial outage 240 min\""
        ),
        "{page}"
    );
    assert!(page.contains("<span class=\"vh\">10 Nov: 85 % uptime, major outage 144 min, partial outage 240 min</span>"));
    assert!(page.contains("11 Nov: 100 % uptime"), "{page}");
    // Before the first record: no data. 90 bars per component.
    assert!(page.contains("31 Oct: no data"), "{page}");
    let api_row = &page[core..web];
    assert_eq!(api_row.matches("<li class=\"u-").count(), 90);
    assert!(
        api_row.contains("class=\"u-mid\""),
        "2.4 h + 1.2 h is orange"
    );
    // 90-day figure: 12,960 weighted seconds down over 19.5 days observed = 99.23 %.
    assert!(api_row.contains("99.23 % uptime"), "{api_row}");
    // In Finnish: Finnish dates and a decimal comma.
    let (_, fi) = get(&app, "/", "fi").await;
    assert!(fi.contains("10.11.: käytettävyys 85 %"), "{fi}");
    assert!(fi.contains("käytettävyys 99,23 %"), "{fi}");
}

/// A published incident with a later draft update, a draft incident, a published maintenance.
async fn timeline_app() -> (TestApp, String, String) {
    let app = spawn_app().await;
    set(&app, "Check-in", "partial_outage", None).await;
    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": "Check-in is slow", "impact": "major", "components": ["Check-in"],
                   "body": {"en": "First words.", "fi": "Ensimmäiset sanat."}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            json!({"status": "identified", "body": {"en": "Second words, English only."}}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            json!({"status": "monitoring", "message": "Unpublished draft words", "draft": true}),
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
    let draft = r.body["id"].as_str().unwrap().to_owned();
    (app, id, draft)
}

#[tokio::test]
async fn active_incidents_show_their_whole_published_timeline_newest_first_and_nothing_else() {
    let (app, id, draft) = timeline_app().await;
    let (_, page) = get(&app, "/", "en").await;
    let second = page.find("Second words, English only.").expect(&page);
    let first = page.find("First words.").expect(&page);
    assert!(second < first, "newest first");
    assert!(page.contains(&format!("href=\"/incidents/{id}?lang=en\"")));
    assert!(page.contains("href=\"/subscribe?lang=en\""));
    for feed in ["/history.atom", "/history.rss", "/api/v2/summary.json"] {
        assert!(page.contains(&format!("href=\"{feed}\"")), "{feed}");
    }
    for (path, status) in [("/", 200), (&format!("/incidents/{id}") as &str, 200)] {
        let (s, body) = get(&app, path, "en").await;
        assert_eq!(s, status);
        for secret in [
            "Secret draft title",
            "Draft words nobody may see",
            "Unpublished draft words",
            // The author (the admin token's user) never appears.
            "admin",
        ] {
            assert!(!body.contains(secret), "{path} shows {secret:?}: {body}");
        }
    }
    // The draft incident has no page; the 404 is in the reader's language.
    let (s, body) = get(&app, &format!("/incidents/{draft}"), "fi").await;
    assert_eq!(s, 404);
    assert!(body.contains("Sivua ei löydy"), "{body}");
    assert!(!body.contains("Secret draft title"));
    // Publishing the draft update shows it (drafts keep `draft`, gain `published_at`).
    let r = app
        .post(&format!("/api/v1/incidents/{id}/publish"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let (_, page) = get(&app, "/", "en").await;
    assert!(page.contains("Unpublished draft words"), "{page}");
}

#[tokio::test]
async fn the_permalink_shows_the_incident_in_the_readers_language_with_fallback() {
    let (app, id, _) = timeline_app().await;
    let (s, fi) = get(&app, &format!("/incidents/{id}"), "fi").await;
    assert_eq!(s, 200);
    assert!(fi.contains("<html lang=\"fi\">"));
    assert!(
        fi.contains("<p class=\"text\" lang=\"fi\">Ensimmäiset sanat.</p>"),
        "{fi}"
    );
    // The update without Finnish falls back to English, and says so to screen readers.
    assert!(
        fi.contains("<p class=\"text\" lang=\"en\">Second words, English only.</p>"),
        "{fi}"
    );
    assert!(fi.contains("syy tunnistettu"), "status in Finnish: {fi}");
    for bad in [
        "/incidents/01J000000000000000000000XX",
        "/incidents/not-an-id",
    ] {
        let (s, body) = get(&app, bad, "sv").await;
        assert_eq!(s, 404, "{bad}");
        assert!(body.contains("Sidan hittades inte"), "{body}");
    }
}

#[tokio::test]
async fn maintenance_shows_active_and_upcoming() {
    let app = spawn_app_with(&[], |c| {
        c.clock_start = Some(at("2026-11-20T12:00:00Z"));
    })
    .await;
    for (title, from, until) in [
        (
            "Database upgrade",
            "2026-11-25T01:00:00Z",
            "2026-11-25T03:00:00Z",
        ),
        (
            "Network work",
            "2026-11-20T11:00:00Z",
            "2026-11-20T15:00:00Z",
        ),
    ] {
        let r = app
            .post(
                "/api/v1/incidents",
                json!({"title": title, "kind": "maintenance", "impact": "none",
                       "message": "Planned work.", "scheduled_for": from, "scheduled_until": until}),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
    // The scheduler starts the window that has begun (bounded wait).
    let mut page = String::new();
    for _ in 0..100 {
        page = get(&app, "/", "en").await.1;
        if page.contains("Maintenance in progress") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let active = page.find("Maintenance in progress").expect(&page);
    let upcoming = page.find("Scheduled maintenance").expect(&page);
    let network = page.find("Network work").unwrap();
    let db = page.find("Database upgrade").unwrap();
    assert!(
        active < network && network < upcoming && upcoming < db,
        "{page}"
    );
}

#[tokio::test]
async fn history_is_paginated_by_month() {
    let app = spawn_app_with(&[], |c| {
        c.clock_start = Some(at("2026-11-20T12:00:00Z"));
        c.render.timezone = "Europe/Helsinki".parse().unwrap();
    })
    .await;
    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": "November trouble", "impact": "minor", "message": "Investigating."}),
        )
        .await;
    assert_eq!(r.status, 201);
    let (s, nov) = get(&app, "/history", "en").await;
    assert_eq!(s, 200);
    assert!(nov.contains("Incident history: November 2026"), "{nov}");
    assert!(nov.contains("November trouble"));
    assert!(
        nov.contains("href=\"/history?month=2026-10&amp;lang=en\""),
        "{nov}"
    );
    assert!(!nov.contains("month=2026-12"), "no link into the future");
    assert!(nov.contains("Times are shown in Europe/Helsinki"));
    let (s, oct) = get(&app, "/history?month=2026-10", "sv").await;
    assert_eq!(s, 200);
    assert!(oct.contains("oktober 2026"), "{oct}");
    assert!(!oct.contains("November trouble"));
    assert!(oct.contains("Inga störningar rapporterades"));
    let (s, bad) = get(&app, "/history?month=2026-13", "en").await;
    assert_eq!(s, 400);
    assert!(bad.contains("YYYY-MM"), "{bad}");
}

#[tokio::test]
async fn pages_answer_if_modified_since_with_304_and_carry_last_modified() {
    // No component: one set this second has "no data" for today and "100 %" a second later,
    // so its page would change between the requests below (a run under load saw it).
    let app = spawn_app().await;
    let r = app.client.get(app.url("/history")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let lm = r.headers()["last-modified"].to_str().unwrap().to_owned();
    assert!(lm.ends_with(" GMT"), "{lm}");
    let again = app
        .client
        .get(app.url("/history"))
        .header("if-modified-since", &lm)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let older = app
        .client
        .get(app.url("/history"))
        .header("if-modified-since", "Mon, 01 Jan 2001 00:00:00 GMT")
        .send()
        .await
        .unwrap();
    assert_eq!(older.status(), 200);
    // A matching ETag with a stale date is still 304; If-None-Match wins (RFC 9110 13.2.2).
    let r = app.client.get(app.url("/")).send().await.unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let both = app
        .client
        .get(app.url("/"))
        .header("if-none-match", "\"other\"")
        .header("if-modified-since", &lm)
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), 200, "a non-matching ETag decides");
    let tag = app
        .client
        .get(app.url("/"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(tag.status(), 304);
}

#[tokio::test]
async fn the_status_page_can_be_moved_or_turned_off() {
    let moved = spawn_app_with(&[], |c| c.render.page.path = "/status".into()).await;
    assert_eq!(get(&moved, "/status", "en").await.0, 200);
    assert_eq!(get(&moved, "/", "en").await.0, 404);
    let off = spawn_app_with(&[], |c| c.render.page.enabled = false).await;
    for p in ["/", "/history", "/incidents/01J000000000000000000000XX"] {
        assert_eq!(get(&off, p, "en").await.0, 404, "{p}");
    }
    // The API is unaffected.
    assert_eq!(off.get("/api/v1/status").await.status, 200);
}

#[tokio::test]
async fn the_static_copy_equals_what_the_server_serves_after_an_update() {
    let export = tempfile::tempdir().unwrap();
    let dir = export.path().to_owned();
    let app = spawn_app_with(&[], move |c| c.render.page.static_export_dir = Some(dir)).await;
    set(&app, "Check-in", "operational", None).await;
    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": "Kiosks down", "impact": "critical", "components": ["Check-in"],
                   "message": "Kiosks are down."}),
        )
        .await;
    assert_eq!(r.status, 201);
    let id = r.body["id"].as_str().unwrap().to_owned();
    // The exporter runs once a second; wait (bounded) for the page with the incident.
    let served = |path: String| {
        let app = &app;
        async move {
            app.client
                .get(app.url(&path))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let incident_file = export.path().join(format!("incidents/{id}/index.html"));
    let documents = [
        "/api/v2/summary.json",
        "/history.atom",
        "/history.rss",
        "/cap.atom",
    ];
    let mut last = String::new();
    for _ in 0..100 {
        last = std::fs::read_to_string(export.path().join("index.html")).unwrap_or_default();
        // One export writes its files one after another: wait for the last of them too.
        let mut documents_written = true;
        for path in documents {
            let file = std::fs::read_to_string(export.path().join(&path[1..])).unwrap_or_default();
            documents_written &= file == served(path.into()).await;
        }
        if last.contains("Kiosks are down.")
            && incident_file.exists()
            && last == served("/".into()).await
            && documents_written
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(last, served("/".into()).await);
    let file = std::fs::read_to_string(&incident_file).unwrap();
    assert_eq!(file, served(format!("/incidents/{id}")).await);
    let history = std::fs::read_to_string(export.path().join("history/index.html")).unwrap();
    assert_eq!(history, served("/history".into()).await);
    let css = std::fs::read(export.path().join("assets/crier.css")).unwrap();
    assert!(!css.is_empty());
    // The machine-readable documents are in the copy too, byte for byte as served.
    for path in documents {
        let file = std::fs::read_to_string(export.path().join(&path[1..]))
            .unwrap_or_else(|e| panic!("{path} is not in the static copy: {e}"));
        assert_eq!(file, served(path.into()).await, "{path}");
    }
    let cap = std::fs::read_dir(export.path().join("cap"))
        .unwrap()
        .count();
    assert_eq!(cap, 1, "one CAP alert per published update");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: needs chromium and chromium-driver; run by scripts/test.sh"]
async fn e2e_browser_public_pages_read_on_a_phone_without_javascript() {
    let app = spawn_app_with(&[], |c| {
        c.clock_start = Some(at("2026-11-20T12:00:00Z"));
        c.render.timezone = "Europe/Helsinki".parse().unwrap();
        c.render.org_name = "Finnair".into();
    })
    .await;
    let api = ComponentName::parse("Check-in").unwrap();
    for (when, status) in [
        ("2026-09-01T00:00:00Z", ComponentStatus::Operational),
        ("2026-10-10T06:00:00Z", ComponentStatus::MajorOutage),
        ("2026-10-10T09:00:00Z", ComponentStatus::Operational),
        ("2026-11-03T06:00:00Z", ComponentStatus::PartialOutage),
        ("2026-11-03T07:00:00Z", ComponentStatus::Operational),
        ("2026-11-20T10:00:00Z", ComponentStatus::PartialOutage),
    ] {
        app.store
            .set_component(api.clone(), status, Some("Airport".into()), at(when))
            .await
            .unwrap();
    }
    set(&app, "Baggage", "operational", Some("Airport")).await;
    set(&app, "Mobile app", "operational", None).await;
    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": "Check-in kiosks are slow at Helsinki Airport", "impact": "major",
                   "components": ["Check-in"],
                   "body": {"en": "Check-in kiosks at Helsinki Airport are slow. Please use the mobile app to check in.",
                            "fi": "Lähtöselvitysautomaatit ovat hitaita Helsinki-Vantaalla. Käytä mobiilisovellusta."},
                   "next_update": "30m"}),
        )
        .await;
    assert_eq!(r.status, 201);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            json!({"status": "identified", "body": {"en": "A network switch at the terminal has failed; it is being replaced.",
                   "fi": "Terminaalin verkkokytkin on vikaantunut; se vaihdetaan."}}),
        )
        .await;
    assert_eq!(r.status, 201);

    let phone = Browser::start(Options::phone_without_js()).await;
    let docs = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
    std::fs::create_dir_all(&docs).unwrap();
    for (path, name, selectors) in [
        (
            "/",
            "public-status",
            &[
                "header.site",
                "h1",
                "article.incident",
                "li.component",
                "ol.bars",
                "footer.site",
            ][..],
        ),
        (
            "/history",
            "public-history",
            &[
                "header.site",
                "h1",
                "article.incident",
                "nav.pager",
                "footer.site",
            ][..],
        ),
        (
            &format!("/incidents/{id}?lang=fi") as &str,
            "public-incident-fi",
            &["header.site", "h1", "ol.timeline", "footer.site"][..],
        ),
    ] {
        phone.goto(&app.url(path)).await;
        for css in selectors {
            let (x, _, w, _) = phone.rect(css).await;
            assert!(
                x >= 0.0 && x + w <= 360.0,
                "{path}: {css} overflows 360 px: x={x} width={w}"
            );
        }
        let shot = phone.screenshot(name).await;
        assert!(std::fs::metadata(&shot).unwrap().len() > 1000);
        std::fs::copy(&shot, docs.join(format!("{name}.png"))).unwrap();
        let errors = phone.console_errors().await;
        assert!(errors.is_empty(), "{path}: console errors: {errors:?}");
    }
    // The uptime bars, scrolled into view.
    phone.goto(&app.url("/#components-h")).await;
    let shot = phone.screenshot("public-status-uptime").await;
    std::fs::copy(&shot, docs.join("public-status-uptime.png")).unwrap();
    // Status in words: the bars have text equivalents.
    phone.goto(&app.url("/")).await;
    let bars = phone.all("ol.bars li span.vh").await;
    assert!(bars.len() >= 90, "{}", bars.len());
    phone.close().await;

    // With JavaScript on, only to measure: nothing wider than the viewport on any page.
    let b = Browser::start(Options::phone()).await;
    for path in ["/", "/history", &format!("/incidents/{id}")] {
        b.goto(&app.url(path)).await;
        let wide = b
            .script(
                "let n = 0; for (const e of document.querySelectorAll('body *')) { \
                 const r = e.getBoundingClientRect(); \
                 if (r.width > 0 && (r.right > window.innerWidth + 0.5 || r.left < -0.5) && !e.classList.contains('vh') && !e.closest('.vh') && !e.classList.contains('skip')) n++; } \
                 return { wide: n, scroll: document.documentElement.scrollWidth, view: window.innerWidth };",
            )
            .await;
        assert_eq!(wide["wide"], 0, "{path}: {wide}");
        assert!(wide["scroll"].as_f64().unwrap() <= 360.0, "{path}: {wide}");
        b.assert_words_whole(path).await;
    }
    b.close().await;
}

#[tokio::test]
async fn export_static_writes_the_pages_once_and_refuses_a_store_in_use() {
    if crate::helpers::sled_only("export-static reads the sled store in --data offline") {
        return;
    }
    use crate::helpers::{bin, ServeProcess};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = dir.path().join("site");
    let server = ServeProcess::start(&data);
    let client = reqwest::Client::new();
    let r = client
        .put(format!("{}/api/v1/components/Check-in", server.base()))
        .bearer_auth(server.token())
        .json(&json!({"status": "major_outage"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // While the server runs, the store is in use: a clear error, nothing written.
    let busy = std::process::Command::new(bin())
        .args([
            "export-static",
            out.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(busy.status.code(), Some(4));
    let err = String::from_utf8_lossy(&busy.stderr);
    assert!(err.contains("static_export_dir"), "{err}");
    assert!(!out.exists());
    assert!(server.terminate().success());
    let ok = std::process::Command::new(bin())
        .args([
            "export-static",
            out.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let page = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(page.contains("Major System Outage"), "{page}");
    assert!(out.join("history/index.html").exists());
    assert!(out.join("assets/crier.css").exists());
}
