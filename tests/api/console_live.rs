//! The console's live delivery progress (server-sent events with the session cookie), editing
//! a subscriber's language and components, and CSV imports larger than a console form.

use crate::console::{add_user, console_app, login, Staff};
use crate::helpers::{env, TestApp};
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
