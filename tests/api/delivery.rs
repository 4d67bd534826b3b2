//! Fan-out through the dispatcher with credential-free `log` channels: who receives what, exactly
//! once, in which language; drafts send nothing until published; status via API and CLI.

use crate::helpers::{bin, spawn_app_with_channels, TestApp};
use serde_json::{json, Value};
use std::time::Duration;

const CHANNELS: &[(&str, &str)] = &[
    (
        "subs",
        "kind = \"log\"\nrender = \"sms\"\naudience = \"subscribers\"\n",
    ),
    (
        "public",
        "kind = \"log\"\nrender = \"x\"\naudience = \"fixed\"\n",
    ),
];

/// Polls the status until every delivery is final (no fixed sleeps; bounded).
async fn wait_complete(app: &TestApp, id: &str) -> Value {
    for _ in 0..400 {
        let r = app.get(&format!("/api/v1/incidents/{id}/deliveries")).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let total: u64 = r.body["channels"]
            .as_object()
            .map(|m| m.values().map(|c| c["total"].as_u64().unwrap_or(0)).sum())
            .unwrap_or(0);
        if r.body["complete"] == true && total > 0 {
            return r.body;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("deliveries of {id} did not complete");
}

fn lines(app: &TestApp, channel: &str) -> Vec<Value> {
    let path = app
        .dir
        .path()
        .join("data/outbox")
        .join(format!("{channel}.jsonl"));
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn each_matching_subscriber_gets_each_update_once_in_their_language() {
    let app = spawn_app_with_channels(CHANNELS).await;
    app.component("Check-in").await;
    app.component("Baggage").await;
    for body in [
        json!({"phone": "+358401111111", "locale": "fi"}),
        json!({"email": "sv@example.com", "locale": "sv", "components": ["Check-in"]}),
        json!({"email": "bags@example.com", "components": ["Baggage"]}),
    ] {
        assert_eq!(app.post("/api/v1/subscribers", body).await.status, 201);
    }
    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": "Check-in delays", "impact": "major", "components": ["Check-in"],
                   "body": {"en": "We are investigating.", "fi": "Selvitämme.", "sv": "Vi undersöker."}}),
        )
        .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let status = wait_complete(&app, &id).await;
    assert_eq!(status["channels"]["subs"]["delivered"], 2, "{status}");
    assert_eq!(status["channels"]["public"]["delivered"], 1, "{status}");

    let subs = lines(&app, "subs");
    let mut recipients: Vec<&str> = subs
        .iter()
        .map(|l| l["recipient"].as_str().unwrap())
        .collect();
    recipients.sort();
    assert_eq!(
        recipients,
        ["+358401111111", "sv@example.com"],
        "the Baggage-only subscriber is not told"
    );
    let fi = subs
        .iter()
        .find(|l| l["recipient"] == "+358401111111")
        .unwrap();
    assert_eq!(fi["locale"], "fi");
    assert!(
        fi["text"]
            .as_str()
            .unwrap()
            .contains("Uusi häiriö - Check-in delays. Selvitämme."),
        "{fi}"
    );
    let sv = subs
        .iter()
        .find(|l| l["recipient"] == "sv@example.com")
        .unwrap();
    assert!(
        sv["text"].as_str().unwrap().contains("Vi undersöker."),
        "{sv}"
    );
    assert_eq!(lines(&app, "public").len(), 1);

    // A second update goes out once more to the same people, under new idempotency keys.
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            json!({"status": "identified", "message": "Found it."}),
        )
        .await;
    assert_eq!(r.status, 201);
    for _ in 0..400 {
        if lines(&app, "subs").len() == 4 && lines(&app, "public").len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    wait_complete(&app, &id).await;
    let subs = lines(&app, "subs");
    assert_eq!(subs.len(), 4);
    let mut keys: Vec<&str> = subs
        .iter()
        .map(|l| l["idempotency_key"].as_str().unwrap())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 4, "no duplicates");

    // The CLI shows the same counts.
    let o = tokio::process::Command::new(bin())
        .args(["--url", &app.base, "--token", &app.token, "deliveries", &id])
        .output()
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("subs") && out.contains("delivered 4"), "{out}");
    let o = tokio::process::Command::new(bin())
        .args([
            "--url",
            &app.base,
            "--token",
            &app.token,
            "--json",
            "deliveries",
            &id,
            "--follow",
        ])
        .output()
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["complete"], true);
    assert_eq!(v["channels"]["public"]["delivered"], 2);
}

#[tokio::test]
async fn drafts_send_nothing_until_published() {
    let app = spawn_app_with_channels(CHANNELS).await;
    let r = app
        .post(
            "/api/v1/incidents",
            json!({"title": "Strike", "impact": "critical", "message": "Draft", "draft": true}),
        )
        .await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    let r = app.get(&format!("/api/v1/incidents/{id}/deliveries")).await;
    assert_eq!(
        r.body["channels"],
        json!({}),
        "a draft creates no broadcast"
    );
    assert!(lines(&app, "public").is_empty());
    let r = app
        .post(&format!("/api/v1/incidents/{id}/publish"), json!({}))
        .await;
    assert_eq!(r.status, 200);
    wait_complete(&app, &id).await;
    let public = lines(&app, "public");
    assert_eq!(public.len(), 1);
    assert!(public[0]["text"].as_str().unwrap().contains("Strike"));
}

#[tokio::test]
async fn metrics_count_outcomes() {
    let app = spawn_app_with_channels(CHANNELS).await;
    let id = app.open_incident("Metrics").await;
    wait_complete(&app, &id).await;
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("crier_deliveries_total{channel=\"public\",outcome=\"delivered\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("crier_send_seconds_count{channel=\"public\"} 1"),
        "{text}"
    );
    assert!(text.contains("crier_queue_depth 0"), "{text}");
}

/// On PostgreSQL `/metrics` adds the pool's and the leases' figures and whether the node leads;
/// on sled (no pool, no leases, no election) those lines are absent. After a finished fan-out this node holds no claim, refused no outcome
/// and let no lease run out.
#[tokio::test]
async fn metrics_show_pool_and_lease_figures_on_postgres_only() {
    let app = spawn_app_with_channels(CHANNELS).await;
    let id = app.open_incident("Pool").await;
    wait_complete(&app, &id).await;
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let pg_lines = [
        "crier_pg_pool_max_size ",
        "crier_pg_pool_size ",
        "crier_pg_pool_available ",
        "crier_pg_pool_waiting ",
        "crier_claims_held 0\n",
        "crier_lease_lost_outcomes_total 0\n",
        "crier_lease_expired_before_send_total 0\n",
        // Alone on its database, the node is the elected leader.
        "crier_leader 1\n",
    ];
    for line in pg_lines {
        assert_eq!(
            text.contains(line),
            crate::helpers::on_postgres(),
            "{line:?} (on PostgreSQL: {}):\n{text}",
            crate::helpers::on_postgres()
        );
    }
    if crate::helpers::on_postgres() {
        let size = text
            .lines()
            .find_map(|l| l.strip_prefix("crier_pg_pool_size "))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap();
        assert!(size >= 1, "the app has used the pool:\n{text}");
    }
}

/// The CLI reads the server's delivery status through the API's own `Status` type: every
/// count the table shows is the server's, and a field the server renamed is an error naming
/// the path (exit 4), not a silent 0 in the table.
#[tokio::test]
async fn the_cli_reads_the_delivery_status_as_the_servers_own_type() {
    use crier::api::deliveries::Status;
    use crier::cli::client::answer_as;
    let app = spawn_app_with_channels(CHANNELS).await;
    let id = app.open_incident("Typed").await;
    let v = wait_complete(&app, &id).await;
    let path = format!("/api/v1/incidents/{id}/deliveries");
    let st: Status = answer_as(&path, &v).unwrap();
    assert!(st.complete);
    assert_eq!(st.incident.to_string(), id);
    assert_eq!(st.channels.len(), v["channels"].as_object().unwrap().len());
    for (name, c) in &st.channels {
        let want = &v["channels"][name];
        assert_eq!(c.total as u64, want["total"].as_u64().unwrap(), "{name}");
        assert_eq!(
            c.delivered as u64,
            want["delivered"].as_u64().unwrap(),
            "{name}"
        );
    }
    assert_eq!(st.channels["public"].delivered, 1, "{v}");
    // A server that renamed `delivered`: the CLI refuses the answer instead of printing 0.
    let mut renamed = v.clone();
    let public = renamed["channels"]["public"].as_object_mut().unwrap();
    let n = public.remove("delivered").unwrap();
    public.insert("delivered_count".into(), n);
    let e = answer_as::<Status>(&path, &renamed).unwrap_err();
    assert_eq!(e.exit_code(), 4);
    assert!(e.to_string().contains(&path), "{e}");
    assert!(e.to_string().contains("delivered"), "{e}");
}

/// Shutdown is bounded: a delivery stream that would run until every delivery is final ends
/// when the server shuts down, and a send waiting for its channel's rate (here an hour) does
/// not hold the shutdown up; it is due again at the next start.
#[tokio::test]
async fn shutdown_ends_the_delivery_stream_and_the_rate_wait() {
    let app = spawn_app_with_channels(&[(
        "slow",
        "kind = \"log\"\nrender = \"x\"\naudience = \"fixed\"\nrate = \"1/h\"\n",
    )])
    .await;
    let id = app.open_incident("Slow").await;
    // The first send takes the hour's only token; the second waits for the next one.
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            json!({"status": "identified", "message": "Found it."}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let mut resp = app
        .client
        .get(app.url(&format!("/api/v1/incidents/{id}/deliveries/stream")))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let first = resp.chunk().await.unwrap().unwrap();
    let first = String::from_utf8_lossy(&first).into_owned();
    assert!(first.contains("\"complete\":false"), "{first}");
    let stream = tokio::spawn(async move {
        let mut rest = String::new();
        while let Some(c) = resp.chunk().await.unwrap() {
            rest.push_str(&String::from_utf8_lossy(&c));
        }
        rest
    });
    // A hang-guard only: without the fix the server waits for the stream and the hour.
    let (stopped, _dir) = tokio::time::timeout(Duration::from_secs(120), app.shut_down())
        .await
        .expect("the server did not shut down");
    stopped.unwrap();
    let rest = stream.await.unwrap();
    assert!(!rest.contains("\"complete\":true"), "{rest}");
}

#[tokio::test]
async fn sse_stream_reports_progress_until_complete() {
    let app = spawn_app_with_channels(CHANNELS).await;
    let id = app.open_incident("Streamed").await;
    let resp = app
        .client
        .get(app.url(&format!("/api/v1/incidents/{id}/deliveries/stream")))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    // The stream ends by itself with the first complete status.
    let body = resp.text().await.unwrap();
    let events: Vec<Value> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(body.contains("event: status"), "{body}");
    let last = events.last().expect("at least one status event");
    assert_eq!(last["complete"], true, "{body}");
    assert_eq!(last["channels"]["public"]["delivered"], 1, "{body}");
    let r = app
        .client
        .get(app.url("/api/v1/incidents/01ARZ3NDEKTSV4RRFFQ69G5FAV/deliveries/stream"))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
