//! The console's live delivery progress (server-sent events with the session cookie), editing
//! a subscriber's language and components, and CSV imports larger than a console form.

use crate::console::{add_user, console_app, login, Staff};
use crate::helpers::{env, TestApp};
use crier::store::port::{Audit, Subscribers};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// A Twilio stand-in that holds every request until [`Gate::open`], then refuses it as an
/// invalid `To` (error 21211): each subscriber's delivery ends rejected with its number in the
/// failures list.
struct Gate {
    url: String,
    open: Arc<tokio::sync::Semaphore>,
}

impl Gate {
    async fn start() -> Gate {
        let open = Arc::new(tokio::sync::Semaphore::new(0));
        let o = open.clone();
        let app = axum::Router::new().fallback(move || {
            let o = o.clone();
            async move {
                // A permit is given back when dropped: once opened, the gate stays open.
                let _p = o.acquire().await;
                (
                    axum::http::StatusCode::BAD_REQUEST,
                    [("content-type", "application/json")],
                    r#"{"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400}"#,
                )
            }
        });
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        Gate { url, open }
    }

    fn open(&self) {
        self.open.add_permits(1);
    }
}

/// A server-sent event stream read event by event.
struct Events {
    resp: reqwest::Response,
    buf: String,
}

impl Events {
    /// The next event (`event`, `data`), comments skipped; `None` once the server ended it.
    async fn next(&mut self) -> Option<(String, String)> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut event = "message".to_owned();
                let mut data: Vec<&str> = Vec::new();
                for line in block.lines() {
                    if let Some(e) = line.strip_prefix("event:") {
                        event = e.trim().to_owned();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push(d.strip_prefix(' ').unwrap_or(d));
                    }
                }
                if data.is_empty() && event == "message" {
                    continue; // a comment (the heartbeat)
                }
                return Some((event, data.join("\n")));
            }
            let chunk = self.resp.chunk().await.unwrap()?;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn stream_as(app: &TestApp, cookie: Option<&str>, id: &str) -> reqwest::Response {
    let mut req = client().get(app.url(&format!("/console/incidents/{id}/stream")));
    if let Some(c) = cookie {
        req = req.header("cookie", format!("crier_session={c}"));
    }
    req.send().await.unwrap()
}

async fn events(app: &TestApp, who: &Staff, id: &str) -> Events {
    let resp = stream_as(app, Some(&who.cookie), id).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    Events {
        resp,
        buf: String::new(),
    }
}

const SUBSCRIBERS: usize = 8;

/// A publisher watches a real fan-out (a log channel and a Twilio channel held at the gate)
/// over the console's stream: a progress event while it is sending, more as it moves, the last
/// one complete with the numbers of the refused sends, then `done` and the end of the stream.
/// A viewer reads the same stream without any address; without a session it is refused.
#[tokio::test]
async fn console_progress_stream_follows_a_fan_out_until_final_and_hides_addresses_below_publisher()
{
    let gate = Gate::start().await;
    let sms = format!(
        "kind = \"twilio\"\naccount_sid_env = \"LIVE_SID\"\nauth_token_env = \"LIVE_TOKEN\"\n\
         from = \"+15005550006\"\nbase_url = \"{}\"\nrate = \"100000/s\"\n",
        gate.url
    );
    let log = "kind = \"log\"\naudience = \"subscribers\"\n";
    let (app, _) = console_app(&[("log", log), ("sms", &sms)], |c| {
        c.env = env(&[("LIVE_SID", "AC0123456789"), ("LIVE_TOKEN", "twilio-token")])
    })
    .await;
    add_user(&app, "anna", "publisher").await;
    add_user(&app, "vic", "viewer").await;
    for i in 0..SUBSCRIBERS {
        let r = app
            .post(
                "/api/v1/subscribers",
                json!({"phone": format!("+35840200000{i}")}),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
    let id = app.open_incident("Baggage belts stopped").await;

    // No session: the login page, never the stream.
    let anon = stream_as(&app, None, &id).await;
    assert_eq!(anon.status(), 303);
    assert!(anon.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/console/login"));
    assert!(!anon
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().contains("event-stream")));

    let anna = login(&app, "anna").await;
    let mut s = events(&app, &anna, &id).await;
    let (event, first) = s.next().await.expect("a first event");
    assert_eq!(event, "progress", "{first}");
    assert!(first.contains("data-complete=\"false\""), "{first}");
    assert!(first.contains("still sending"), "{first}");
    assert!(first.contains("data-channel=\"sms\""), "{first}");
    assert!(!first.contains("<html"), "a fragment, not a page: {first}");

    // Without JavaScript the page itself shows the progress and a link to reload it.
    let page = crate::console::get(
        &app,
        Some(&anna.cookie),
        &format!("/console/incidents/{id}"),
    )
    .await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains(&format!("data-stream=\"/console/incidents/{id}/stream\"")),
        "{}",
        page.body
    );
    assert!(page.body.contains("data-channel=\"sms\""), "{}", page.body);
    assert!(
        page.body.contains(&format!(
            "<a href=\"/console/incidents/{id}\">Reload</a> to see the latest progress"
        )),
        "{}",
        page.body
    );

    gate.open();
    let mut progress = vec![first];
    let mut done = None;
    while let Some((event, data)) = s.next().await {
        match event.as_str() {
            "progress" => {
                assert!(done.is_none(), "progress after done: {data}");
                progress.push(data);
            }
            "done" => done = Some(data),
            other => panic!("unexpected event {other}: {data}"),
        }
    }
    assert!(done.is_some(), "the stream ends with done: {progress:?}");
    assert!(progress.len() >= 2, "{progress:?}");
    let last = progress.last().unwrap();
    assert!(last.contains("data-complete=\"true\""), "{last}");
    assert!(
        last.contains("<strong class=\"percent\">100 %</strong>"),
        "{last}"
    );
    assert!(last.contains("every delivery is done"), "{last}");
    assert!(
        !last.contains(">Reload</a>"),
        "nothing more to reload for: {last}"
    );
    // A publisher sees the numbers the provider refused.
    assert!(last.contains("+358402000000"), "{last}");
    assert!(last.contains("21211"), "{last}");
    // Only changes are sent: no two progress events alike in a row.
    for w in progress.windows(2) {
        assert_ne!(w[0], w[1], "an unchanged fragment was sent again");
    }

    // A viewer reads it too (the incident is final: one event, then done), with no address.
    let vic = login(&app, "vic").await;
    let mut s = events(&app, &vic, &id).await;
    let mut seen = Vec::new();
    while let Some(e) = s.next().await {
        seen.push(e);
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].0, "progress");
    assert_eq!(seen[1].0, "done");
    let v = &seen[0].1;
    assert!(v.contains("data-complete=\"true\""), "{v}");
    assert!(v.contains("21211"), "the reasons are shown: {v}");
    assert!(!v.contains("+35840"), "a viewer sees an address: {v}");
    assert!(
        v.contains("addresses are shown to publishers and admins"),
        "{v}"
    );

    // An unknown incident: refused before any stream.
    let r = stream_as(&app, Some(&anna.cookie), "01ARZ3NDEKTSV4RRFFQ69G5FAV").await;
    assert_eq!(r.status(), 404);
}

/// A stream that would run until every delivery is final ends when the server shuts down,
/// without a `done` (the browser's EventSource then reconnects to the restarted server).
#[tokio::test]
async fn console_progress_stream_ends_at_shutdown() {
    let slow = "kind = \"log\"\nrender = \"x\"\naudience = \"fixed\"\nrate = \"1/h\"\n";
    let (app, _) = console_app(&[("slow", slow)], |_| {}).await;
    add_user(&app, "anna", "publisher").await;
    let id = app.open_incident("Slow").await;
    // The first send takes the hour's only token; the second waits for the next one.
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            json!({"status": "identified", "message": "Found it."}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let anna = login(&app, "anna").await;
    let mut s = events(&app, &anna, &id).await;
    let (event, first) = s.next().await.unwrap();
    assert_eq!(event, "progress");
    assert!(first.contains("data-complete=\"false\""), "{first}");
    let rest = tokio::spawn(async move {
        let mut rest = Vec::new();
        while let Some(e) = s.next().await {
            rest.push(e);
        }
        rest
    });
    // A hang-guard only: without the shutdown signal the stream would hold the server.
    let (stopped, _dir) = tokio::time::timeout(Duration::from_secs(120), app.shut_down())
        .await
        .expect("the server did not shut down");
    stopped.unwrap();
    let rest = rest.await.unwrap();
    assert!(rest.iter().all(|(e, _)| e != "done"), "{rest:?}");
}

async fn audit(app: &TestApp) -> Vec<crier::domain::audit::AuditEntry> {
    app.store
        .audit_entries(&crier::domain::audit::AuditFilter {
            limit: 1_000_000,
            ..Default::default()
        })
        .await
        .unwrap()
        .0
}

async fn patch(app: &TestApp, key: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let r = app
        .client
        .patch(app.url(&format!("/api/v1/subscribers/{key}")))
        .bearer_auth(&app.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// Two components and a subscriber to edit (Finnish, Check-in only); returns its id.
async fn one_subscriber(app: &TestApp) -> String {
    app.component("Check-in").await;
    app.component("Baggage").await;
    let r = app
        .post(
            "/api/v1/subscribers",
            json!({"email": "liisa@example.fi", "locale": "fi", "components": ["Check-in"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

/// `PATCH /api/v1/subscribers/{key}`: bad input is refused with the field named and writes
/// nothing (not even an audit entry); a change is audited with what it was and what it became,
/// naming the subscriber by id, never by address.
#[tokio::test]
async fn api_subscriber_change_is_validated_and_audited_before_to_after() {
    let app = crate::helpers::spawn_app().await;
    let id = one_subscriber(&app).await;
    let sum = app.checksum().await;
    let before = audit(&app).await.len();
    for (body, want) in [
        (json!({}), "nothing to change"),
        (json!({"locale": "xx-not a tag"}), "locale"),
        (json!({"components": ["Nowhere"]}), "Nowhere"),
        (
            json!({"locale": "sv", "components": ["Check-in", "Nowhere"]}),
            "Nowhere",
        ),
        (json!({"language": "sv"}), "language"),
        (json!({"components": "Check-in"}), "components"),
    ] {
        let (status, v) = patch(&app, &id, body.clone()).await;
        assert!(status == 422 || status == 400, "{body}: {status} {v}");
        let detail = v["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(want), "{body}: {detail}");
    }
    let (status, _) = patch(&app, "01ARZ3NDEKTSV4RRFFQ69G5FAV", json!({"locale": "sv"})).await;
    assert_eq!(status, 404);
    assert_eq!(app.checksum().await, sum, "a refused change writes nothing");
    assert_eq!(audit(&app).await.len(), before, "nor an audit entry");

    let (status, v) = patch(
        &app,
        &id,
        json!({"locale": "sv", "components": ["Baggage", "Check-in"]}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["locale"], "sv");
    assert_eq!(v["components"], json!(["Baggage", "Check-in"]));
    let e = audit(&app).await;
    assert_eq!(e.len(), before + 1);
    let last = e.last().unwrap();
    assert_eq!(last.action, "subscriber.change");
    assert_eq!(last.target, format!("subscriber {id}"));
    assert_eq!(
        last.summary,
        "language fi → sv; components Check-in → Baggage, Check-in"
    );
    assert!(!last.summary.contains("liisa"), "{}", last.summary);

    // By address, one field: the other is kept; [] is every component.
    let (status, v) = patch(&app, "liisa@example.fi", json!({"components": []})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["locale"], "sv");
    assert_eq!(
        audit(&app).await.last().unwrap().summary,
        "components Baggage, Check-in → every component"
    );
}

/// The console's edit form per subscriber (a publisher): it shows the current language and
/// components, a change goes through the API's handler (one audit entry, before → after), bad
/// input shows the API's message next to the field and writes nothing, and a viewer's forged
/// edit is refused and writes nothing.
#[tokio::test]
async fn console_subscriber_edit_changes_language_and_components_through_the_api() {
    let (app, _) = console_app(&[], |_| {}).await;
    add_user(&app, "anna", "publisher").await;
    add_user(&app, "vic", "viewer").await;
    let id = one_subscriber(&app).await;
    let anna = login(&app, "anna").await;
    let page = crate::console::get(&app, Some(&anna.cookie), "/console/subscribers").await;
    let body = crate::console::unescape(&page.body);
    let form = &body[body
        .find(&format!("action=\"/console/subscribers/{id}\""))
        .unwrap_or_else(|| panic!("no edit form: {body}"))..];
    let form = &form[..form.find("</form>").unwrap()];
    assert!(
        form.contains(&format!("id=\"locale-{id}\" name=\"locale\""))
            && form.contains("value=\"fi\""),
        "{form}"
    );
    assert!(
        form.contains("value=\"Check-in\" checked") && form.contains("value=\"Baggage\">"),
        "{form}"
    );

    // Bad input: the API's message next to the language field; nothing written.
    let sum = app.checksum().await;
    let before = audit(&app).await.len();
    let p = crate::console::post(
        &app,
        &anna,
        &format!("/console/subscribers/{id}"),
        &[("locale", "xx-not a tag"), ("components", "Baggage")],
        true,
    )
    .await;
    assert_eq!(p.status, 422, "{p:?}");
    let body = crate::console::unescape(&p.body);
    let (status, api) = patch(&app, &id, json!({"locale": "xx-not a tag"})).await;
    assert_eq!(status, 422);
    let message = api["detail"].as_str().unwrap();
    assert!(
        body.contains(&format!(
            "<p class=\"field-error\" role=\"alert\" id=\"err-locale-{id}\">{message}</p>"
        )),
        "{body}"
    );
    assert!(body.contains("aria-invalid=\"true\""), "{body}");
    assert_eq!(app.checksum().await, sum, "nothing written");
    assert_eq!(audit(&app).await.len(), before);

    // A change: back to the list with a notice; one audit entry, before → after.
    let p = crate::console::post(
        &app,
        &anna,
        &format!("/console/subscribers/{id}"),
        &[
            ("locale", "sv"),
            ("components", "Baggage"),
            ("components", "Check-in"),
        ],
        true,
    )
    .await;
    assert_eq!(p.status, 303, "{p:?}");
    assert_eq!(p.location, "/console/subscribers?done=changed");
    let s = app.store.subscribers(10).await.unwrap().remove(0);
    assert_eq!(s.locale.as_str(), "sv");
    assert_eq!(
        s.components.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        ["Baggage", "Check-in"]
    );
    let e = audit(&app).await;
    assert_eq!(e.len(), before + 1);
    assert_eq!(e.last().unwrap().action, "subscriber.change");
    assert_eq!(e.last().unwrap().actor, "anna");
    assert_eq!(
        e.last().unwrap().summary,
        "language fi → sv; components Check-in → Baggage, Check-in"
    );
    let page = crate::console::get(&app, Some(&anna.cookie), &p.location).await;
    assert!(page.body.contains("Subscriber changed"), "{}", page.body);
    // Nothing ticked: every component.
    let p = crate::console::post(
        &app,
        &anna,
        &format!("/console/subscribers/{id}"),
        &[("locale", "sv")],
        true,
    )
    .await;
    assert_eq!(p.status, 303, "{p:?}");
    assert!(app.store.subscribers(10).await.unwrap()[0]
        .components
        .is_empty());

    // A viewer has no edit form, and a forged edit is refused: nothing written or audited.
    let vic = login(&app, "vic").await;
    let page = crate::console::get(&app, Some(&vic.cookie), "/console/subscribers").await;
    assert!(!page.body.contains(&format!("/console/subscribers/{id}")));
    let sum = app.checksum().await;
    let before = audit(&app).await.len();
    let p = crate::console::post(
        &app,
        &vic,
        &format!("/console/subscribers/{id}"),
        &[("locale", "en"), ("components", "Check-in")],
        true,
    )
    .await;
    assert_eq!(p.status, 403, "{p:?}");
    assert!(
        p.body.contains("this needs the publisher role"),
        "{}",
        p.body
    );
    assert_eq!(app.checksum().await, sum);
    assert_eq!(audit(&app).await.len(), before);
}

/// In a real browser, a publisher opens a subscriber's edit form, types a bad language (the
/// API's message next to the field, nothing written), corrects it, ticks a component and
/// saves: the list shows the new language and components.
async fn edit_subscriber(o: crate::browser::Options, shot: &str) {
    use crate::console_browser::{clean, fits, sign_in};
    let (app, _) = console_app(&[], |_| {}).await;
    add_user(&app, "anna", "publisher").await;
    let id = one_subscriber(&app).await;
    let b = crate::browser::Browser::start(o).await;
    sign_in(&b, &app, "anna").await;
    b.goto(&app.url("/console/subscribers")).await;
    b.click(&format!("#sub-{id} details.edit summary")).await;
    b.type_into(&format!("#locale-{id}"), "xx-not a tag").await;
    b.click_and_load(&format!("#edit-{id} button.save")).await;
    let err = b.text(&format!("#err-locale-{id}")).await;
    assert!(err.contains("is not a language tag"), "{err}");
    assert_eq!(
        app.store.subscribers(10).await.unwrap()[0].locale.as_str(),
        "fi",
        "nothing written"
    );
    let errors = b.console_errors().await;
    assert!(
        errors
            .iter()
            .all(|e| e.contains(&format!("/console/subscribers/{id}")) && e.contains("422")),
        "{errors:?}"
    );
    // The form is open again, as typed; corrected, with Baggage ticked too.
    b.type_into(&format!("#locale-{id}"), "sv").await;
    b.click(&format!("#edit-{id} input[name=components][value=Baggage]"))
        .await;
    if o.width <= 360 {
        fits(&b, o.width, "the edit form").await;
    }
    b.screenshot(&format!("{shot}-edit")).await;
    b.click_and_load(&format!("#edit-{id} button.save")).await;
    b.wait_text(".notice", BOUND, |t| t.contains("Subscriber changed"))
        .await;
    let s = app.store.subscribers(10).await.unwrap().remove(0);
    assert_eq!(s.locale.as_str(), "sv");
    let mut names: Vec<&str> = s.components.iter().map(|c| c.as_str()).collect();
    names.sort();
    assert_eq!(names, ["Baggage", "Check-in"]);
    let row = b.text(&format!("#sub-{id}")).await;
    assert!(
        row.contains("sv") && row.contains("Baggage") && row.contains("Check-in"),
        "{row}"
    );
    clean(&b, "after the change").await;
    if o.width <= 360 {
        fits(&b, o.width, "the subscribers page").await;
    }
    b.screenshot(&format!("{shot}-edited")).await;
    b.close().await;
}

const BOUND: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: needs chromium and chromium-driver; run by scripts/test.sh"]
async fn e2e_browser_console_subscriber_edit() {
    edit_subscriber(crate::browser::Options::laptop(), "console-subscriber").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: needs chromium and chromium-driver; run by scripts/test.sh"]
async fn e2e_browser_console_phone_subscriber_edit() {
    edit_subscriber(
        crate::browser::Options::console_phone(),
        "console-phone-subscriber",
    )
    .await;
}

/// A CSV of `rows` subscribers (about 50 bytes a row), with a bad address at the given lines.
fn big_csv(rows: usize, bad: &[usize]) -> String {
    let mut csv = String::from("email,locale,components\n");
    for i in 0..rows {
        // Line numbers count the header as line 1.
        if bad.contains(&(i + 2)) {
            csv.push_str(&format!("not-an-address-{i:05},fi,Check-in\n"));
        } else {
            csv.push_str(&format!(
                "subscriber-{i:05}@airport-operations.example.fi,fi,Check-in\n"
            ));
        }
    }
    csv
}

/// The console's CSV import takes files far above the 64 KiB of a console form, up to the
/// API's import limit: 20,000 rows (about 1 MB) through the form with the session cookie and
/// the CSRF token, good rows imported and each bad row listed with its line number.
#[tokio::test]
async fn console_csv_import_of_a_megabyte() {
    let (app, _) = console_app(&[], |_| {}).await;
    add_user(&app, "anna", "publisher").await;
    app.component("Check-in").await;
    let anna = login(&app, "anna").await;
    let csv = big_csv(20_000, &[2, 10_001, 20_001]);
    assert!(csv.len() > 1_000_000, "{}", csv.len());
    let before = audit(&app).await.len();
    let p = crate::console::post(
        &app,
        &anna,
        "/console/subscribers/import",
        &[("csv", &csv)],
        true,
    )
    .await;
    assert_eq!(p.status, 200, "{}", &p.body[..p.body.len().min(2000)]);
    let body = crate::console::unescape(&p.body);
    assert!(
        body.contains("<strong>19997</strong> added, 0 already subscribed or repeated, 3 rejected"),
        "{}",
        &body[..body.len().min(5000)]
    );
    for line in [2, 10_001, 20_001] {
        assert!(
            body.contains(&format!("<li class=\"field-error\">line {line}: ")),
            "line {line}"
        );
    }
    assert_eq!(app.store.subscriber_count().await.unwrap(), 19_997);
    let e = audit(&app).await;
    assert_eq!(e.len(), before + 1);
    assert_eq!(e.last().unwrap().action, "subscriber.import");
}

/// A file over the import limit is refused with a message saying so and what to do; nothing
/// is written (no subscriber, no audit entry). Just over the limit, the message is next to the
/// CSV field; a body too large to read at all gets the same message.
#[tokio::test]
async fn console_csv_import_over_the_limit_is_refused_and_writes_nothing() {
    let (app, _) = console_app(&[], |c| c.import_max_bytes = 200_000).await;
    add_user(&app, "anna", "publisher").await;
    app.component("Check-in").await;
    let anna = login(&app, "anna").await;
    let sum = app.checksum().await;
    let before = audit(&app).await.len();
    let csv = big_csv(5_000, &[]);
    assert!(csv.len() > 200_000 && csv.len() < 300_000, "{}", csv.len());
    let p = crate::console::post(
        &app,
        &anna,
        "/console/subscribers/import",
        &[("csv", &csv)],
        true,
    )
    .await;
    assert_eq!(p.status, 413, "{}", &p.body[..p.body.len().min(2000)]);
    let body = crate::console::unescape(&p.body);
    let want = format!(
        "the CSV file is {} bytes, over the import limit of 200000 bytes (import_max_bytes)",
        csv.len()
    );
    assert!(
        body.contains(&format!("id=\"err-csv\">{want}")),
        "{}",
        &body[body.len().saturating_sub(4000)..]
    );
    assert!(body.contains("split it into smaller files"), "what to do");
    // Far over: too large to read as a form; the same words, on an error page.
    let huge = big_csv(60_000, &[]);
    let p = crate::console::post(
        &app,
        &anna,
        "/console/subscribers/import",
        &[("csv", &huge)],
        true,
    )
    .await;
    assert_eq!(p.status, 413, "{}", &p.body[..p.body.len().min(2000)]);
    let body = crate::console::unescape(&p.body);
    assert!(
        body.contains("over the import limit of 200000 bytes (import_max_bytes)")
            && body.contains("split it into smaller files"),
        "{body}"
    );
    assert_eq!(app.store.subscriber_count().await.unwrap(), 0);
    assert_eq!(app.checksum().await, sum, "nothing written");
    assert_eq!(audit(&app).await.len(), before, "not even an audit entry");
    // Every other console form keeps the 64 KiB cap.
    let long = "x".repeat(70 * 1024);
    let p = crate::console::post(
        &app,
        &anna,
        "/console/subscribers",
        &[("email", &long)],
        true,
    )
    .await;
    assert_eq!(p.status, 413, "{}", &p.body[..p.body.len().min(2000)]);
}

/// In a real browser, the incident page follows a fan-out held at the gate: the first event
/// shows it still sending, and once the gate opens the page reaches 100 % by itself (no reload,
/// no polling: the events counted by the script), and the stream's `done` closes it.
async fn live_progress(o: crate::browser::Options, shot: &str) {
    use crate::console_browser::{clean, fits, sign_in};
    let gate = Gate::start().await;
    let sms = format!(
        "kind = \"twilio\"\naccount_sid_env = \"LIVE_SID\"\nauth_token_env = \"LIVE_TOKEN\"\n\
         from = \"+15005550006\"\nbase_url = \"{}\"\nrate = \"100000/s\"\n",
        gate.url
    );
    let log = "kind = \"log\"\naudience = \"subscribers\"\n";
    let (app, _) = console_app(&[("log", log), ("sms", &sms)], |c| {
        c.env = env(&[("LIVE_SID", "AC0123456789"), ("LIVE_TOKEN", "twilio-token")])
    })
    .await;
    add_user(&app, "anna", "publisher").await;
    for i in 0..SUBSCRIBERS {
        let r = app
            .post(
                "/api/v1/subscribers",
                json!({"phone": format!("+35840200000{i}")}),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
    let id = app.open_incident("Baggage belts stopped").await;
    let b = crate::browser::Browser::start(o).await;
    sign_in(&b, &app, "anna").await;
    b.goto(&app.url(&format!("/console/incidents/{id}"))).await;
    let deadline = std::time::Instant::now() + BOUND;
    while b.attr("#progress", "data-sse").await.is_none() {
        assert!(std::time::Instant::now() < deadline, "no progress event");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sending = b.text(".overall").await;
    assert!(sending.contains("still sending"), "{sending}");
    let reload = b.all(".progress ~ .reload, p.reload").await;
    assert!(
        !reload.is_empty(),
        "the no-JS reload link is in the fragment"
    );
    assert!(
        b.texts("p.reload").await.iter().all(|t| t.is_empty()),
        "hidden with JavaScript"
    );
    clean(&b, "while sending").await;
    b.screenshot(&format!("{shot}-sending")).await;
    if o.width <= 360 {
        fits(&b, o.width, "the incident page while sending").await;
    }

    gate.open();
    b.wait_text(".overall .percent", Duration::from_secs(60), |t| {
        t == "100 %"
    })
    .await;
    while b.attr("#progress", "data-sse-state").await.as_deref() != Some("done") {
        assert!(std::time::Instant::now() < deadline + BOUND, "no done");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let events: usize = b
        .attr("#progress", "data-sse")
        .await
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        events >= 2,
        "the page moved on from the stream: {events} events"
    );
    let failures = b.texts("ul.failures li").await;
    assert_eq!(failures.len(), SUBSCRIBERS, "{failures:?}");
    assert!(failures[0].contains("21211"), "{failures:?}");
    clean(&b, "when final").await;
    b.screenshot(&format!("{shot}-final")).await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: needs chromium and chromium-driver; run by scripts/test.sh"]
async fn e2e_browser_console_live_progress_over_sse() {
    live_progress(crate::browser::Options::laptop(), "console-live-progress").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: needs chromium and chromium-driver; run by scripts/test.sh"]
async fn e2e_browser_console_phone_live_progress_over_sse() {
    live_progress(
        crate::browser::Options::console_phone(),
        "console-phone-live-progress",
    )
    .await;
}
