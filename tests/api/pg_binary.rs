//! The real binary moving from sled to PostgreSQL (issue 16's "migration, then serving the
//! same"): a sled server builds a store with every kind of data and deliveries still pending
//! (the SMS provider answers 500), it stops, `crier store migrate` copies it, and `crier serve
//! --store postgres://…` shows the same incidents, timelines, components, subscribers and
//! notices, sends every pending delivery once and goes on with the incident's Mastodon thread.
//! A migration copies unfinished deliveries only (docs/POSTGRES.md), so the delivery counts of
//! what sled had already sent are not compared. It needs the built examples (the provider
//! emulator) and PostgreSQL (scripts/pg.sh), so it is an `e2e_` test that scripts/test.sh runs
//! beside a throwaway cluster.

use crate::e2e::{provider_sim, sim_stats};
use crate::helpers::{bin, PgDatabase, ServeProcess};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const CHANNEL_ENV: [(&str, &str); 3] = [
    ("E2E_TWILIO_SID", "AC0123456789"),
    ("E2E_TWILIO_TOKEN", "twilio-token"),
    ("E2E_MASTODON_TOKEN", "masto-token"),
];

/// An SMS channel on the emulator, retrying every 2 s for long enough that no delivery is given
/// up while the provider is down.
fn sms_channel(sim: &str) -> String {
    format!(
        "kind = \"twilio\"\naccount_sid_env = \"E2E_TWILIO_SID\"\nauth_token_env = \"E2E_TWILIO_TOKEN\"\n\
         from = \"+15005550006\"\nbase_url = \"{sim}\"\nrate = \"100000/s\"\n\
         retry = [{}]\n",
        vec!["\"2s\""; 60].join(", ")
    )
}

/// An authenticated call to a server; asserts success and returns the JSON (or the text).
async fn call(server: &ServeProcess, method: reqwest::Method, path: &str, body: Body) -> Value {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", server.base()))
        .bearer_auth(server.token());
    req = match body {
        Body::None => req,
        Body::Json(v) => req.json(&v),
        Body::Csv(c) => req.header("content-type", "text/csv").body(c),
    };
    let r = req.send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

enum Body {
    None,
    Json(Value),
    Csv(String),
}

async fn get(server: &ServeProcess, path: &str) -> Value {
    call(server, reqwest::Method::GET, path, Body::None).await
}

/// What a server shows of the store, for comparing two servers: the incident list, each
/// incident with its timeline (drafts included), components, subscribers and notices, with
/// the fields that depend on the moment asked (not on the data) taken out.
async fn snapshot(server: &ServeProcess, ids: &[String]) -> Value {
    let mut incidents = serde_json::Map::new();
    for id in ids {
        incidents.insert(
            id.clone(),
            get(server, &format!("/api/v1/incidents/{id}")).await,
        );
    }
    let mut v = json!({
        "list": get(server, "/api/v1/incidents?limit=1000").await,
        "incidents": incidents,
        "components": get(server, "/api/v1/components").await,
        "subscribers": get(server, "/api/v1/subscribers").await,
        "notices": get(server, "/api/v1/notices").await,
    });
    strip(&mut v);
    v
}

/// A notice's next fire times are computed from the clock at the time of the request.
fn strip(v: &mut Value) {
    for n in v["notices"].as_array_mut().unwrap() {
        assert!(n["next"].is_array(), "{n}");
        n.as_object_mut().unwrap().remove("next");
    }
}

/// Answers every Mastodon status with a new id, 1, 2, 3…
struct StatusIds(AtomicU64);

impl Respond for StatusIds {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        ResponseTemplate::new(200).set_body_json(json!({"id": n.to_string()}))
    }
}

/// A Mastodon instance (wiremock) that takes 500-character statuses.
async fn mastodon() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/instance"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "configuration": {"statuses": {"max_characters": 500, "characters_reserved_per_url": 23}}
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/statuses"))
        .respond_with(StatusIds(AtomicU64::new(0)))
        .mount(&server)
        .await;
    server
}

/// The statuses posted, in order.
async fn statuses(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/api/v1/statuses")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

/// `crier store migrate --from DATA --to URL --json`, the password in the environment.
fn migrate(data: &Path, db: &PgDatabase) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(["--json", "store", "migrate", "--from"])
        .arg(data)
        .args(["--to", &db.url])
        .env("CRIER_PG_PASSWORD", &db.password);
    if let Some(ca) = &db.ca {
        cmd.arg("--ca").arg(ca);
    }
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Per aggregate: (rows, copied, sha256) from a `--json` migration report.
fn report(o: &Output) -> Vec<(String, u64, u64, String)> {
    assert!(o.status.success(), "{}", text(o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)));
    v["aggregates"]
        .as_array()
        .unwrap_or_else(|| panic!("no aggregates: {v}"))
        .iter()
        .map(|l| {
            (
                l["aggregate"].as_str().unwrap().to_owned(),
                l["rows"].as_u64().unwrap(),
                l["copied"].as_u64().unwrap(),
                l["sha256"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn deliveries(server: &ServeProcess, id: &str) -> Value {
    get(server, &format!("/api/v1/incidents/{id}/deliveries")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: needs the built examples and PostgreSQL (scripts/pg.sh); run by scripts/test.sh"]
async fn e2e_a_migrated_sled_store_serves_the_same_from_postgres_and_sends_what_was_pending() {
    let Ok(_) = std::env::var("CRIER_TEST_PG_URL") else {
        panic!("needs PostgreSQL: run beside scripts/pg.sh (scripts/test.sh does)");
    };
    let dir = tempfile::tempdir().unwrap();
    let (_sim, sim) = provider_sim();
    let faults = |f: Value| {
        let sim = sim.clone();
        async move {
            let r = reqwest::Client::new()
                .post(format!("{sim}/faults"))
                .json(&f)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success());
        }
    };
    // The provider is down: every SMS stays pending, retrying.
    faults(json!({"error_rate": 1.0})).await;
    let channels = dir.path().join("channels");
    std::fs::create_dir_all(&channels).unwrap();
    std::fs::write(channels.join("sms.toml"), sms_channel(&sim)).unwrap();
    let masto = mastodon().await;
    std::fs::write(
        channels.join("masto.toml"),
        format!(
            "kind = \"mastodon\"\nbase_url = \"{}\"\ntoken_env = \"E2E_MASTODON_TOKEN\"\nrate = \"100/s\"\n",
            masto.uri()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let sled = ServeProcess::start_on(&data, &channels, None, &CHANNEL_ENV, None);

    // The store: components, subscribers by email and SMS, a published incident with an
    // update (a Mastodon thread of two statuses), a draft incident, a notice.
    for (name, status) in [
        ("Check-in", "degraded_performance"),
        ("Boarding", "operational"),
    ] {
        call(
            &sled,
            reqwest::Method::PUT,
            &format!("/api/v1/components/{name}"),
            Body::Json(json!({"status": status})),
        )
        .await;
    }
    let csv = "email,phone,locale\nanna@example.com,,fi\nbo@example.com,,sv\n\
               ,+358401234501,fi\n,+358401234502,sv\n,+358401234503,en\n";
    let r = call(
        &sled,
        reqwest::Method::POST,
        "/api/v1/subscribers/import",
        Body::Csv(csv.into()),
    )
    .await;
    assert_eq!(r["added"], 5, "{r}");
    let open = call(
        &sled,
        reqwest::Method::POST,
        "/api/v1/incidents",
        Body::Json(json!({"title": "Check-in delays", "impact": "major",
                          "message": "We are investigating slow check-in."})),
    )
    .await;
    let live = open["id"].as_str().unwrap().to_owned();
    // The first status is posted before the update, so that the update's can reply to it.
    for _ in 0..600 {
        if statuses(&masto).await.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    call(
        &sled,
        reqwest::Method::POST,
        &format!("/api/v1/incidents/{live}/updates"),
        Body::Json(json!({"message": "A fix is being deployed.", "status": "identified"})),
    )
    .await;
    let draft = call(
        &sled,
        reqwest::Method::POST,
        "/api/v1/incidents",
        Body::Json(json!({"title": "Baggage belt stopped", "impact": "minor",
                          "message": "Draft, not yet sent", "draft": true})),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    call(
        &sled,
        reqwest::Method::POST,
        "/api/v1/notices",
        Body::Json(json!({"cron": "0 9 * * 1", "tz": "Europe/Helsinki",
                          "subject": "Weekly", "message": "Maintenance window on Monday",
                          "channels": ["sms"]})),
    )
    .await;

    // Two broadcasts to three phones: six SMS, none accepted while the provider is down; the
    // thread on Mastodon is posted.
    let mut st = Value::Null;
    for _ in 0..600 {
        st = deliveries(&sled, &live).await;
        let failed_once = sim_stats(&sim).await["faults"]["error"].as_u64().unwrap();
        if st["channels"]["sms"]["total"] == 6
            && failed_once >= 6
            && st["channels"]["masto"]["delivered"] == 2
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(st["channels"]["masto"]["delivered"], 2, "{st}");
    assert_eq!(st["channels"]["sms"]["total"], 6, "{st}");
    assert_eq!(st["channels"]["sms"]["delivered"], 0, "{st}");
    assert_ne!(st["complete"], true, "{st}");
    let ids = vec![live.clone(), draft.clone()];
    let before = snapshot(&sled, &ids).await;
    assert!(sled.terminate().success());
    let stats = sim_stats(&sim).await;
    assert_eq!(
        stats["accepted"]["total"], 0,
        "nothing was sent from sled: {stats}"
    );

    // Migrate, twice: the second run finds every row there and equal, and writes nothing.
    let db = PgDatabase::create().await;
    let first = report(&migrate(&data, &db));
    let copied: u64 = first.iter().map(|l| l.2).sum();
    assert!(copied > 0, "{first:?}");
    for l in &first {
        assert_eq!(l.1, l.2, "a first run copies every row: {l:?}");
    }
    let again = report(&migrate(&data, &db));
    let unchanged: Vec<_> = first.iter().map(|l| (&l.0, l.1, 0, &l.3)).collect();
    let rerun: Vec<_> = again.iter().map(|l| (&l.0, l.1, l.2, &l.3)).collect();
    assert_eq!(
        rerun, unchanged,
        "a re-run copies nothing and sees the same data"
    );

    // Serve from PostgreSQL with the provider back: the same data, and the pending SMS go out.
    faults(json!({})).await;
    let pg_data = dir.path().join("data-pg");
    let pg = ServeProcess::start_on(&pg_data, &channels, None, &CHANNEL_ENV, Some(db.clone()));
    let after = snapshot(&pg, &ids).await;
    assert_eq!(
        after, before,
        "the PostgreSQL server shows what the sled server showed"
    );
    let subscribers = after["subscribers"].as_array().unwrap().len();
    assert_eq!(subscribers, 5);
    let page = reqwest::get(format!("{}/", pg.base()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Check-in delays"), "{page}");
    assert!(page.contains("A fix is being deployed."), "{page}");
    assert!(page.contains("Boarding"), "{page}");
    assert!(
        !page.contains("Baggage belt stopped"),
        "a draft is not public: {page}"
    );

    let mut st = Value::Null;
    for _ in 0..1200 {
        st = deliveries(&pg, &live).await;
        if st["complete"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(st["channels"]["sms"]["delivered"], 6, "{st}");
    let stats = sim_stats(&sim).await;
    assert_eq!(
        stats["accepted"]["twilio"], 6,
        "each pending SMS once: {stats}"
    );
    assert_eq!(stats["unique_recipients"]["twilio"], 3, "{stats}");
    assert_eq!(stats["duplicates"]["twilio"], 0, "{stats}");
    assert_eq!(
        deliveries(&pg, &draft).await["channels"],
        json!({}),
        "the draft sent nothing"
    );

    // The thread goes on where sled left it: the next update replies to the last status.
    call(
        &pg,
        reqwest::Method::POST,
        &format!("/api/v1/incidents/{live}/updates"),
        Body::Json(json!({"message": "Check-in is back to normal.", "status": "monitoring"})),
    )
    .await;
    let mut posted = Vec::new();
    for _ in 0..600 {
        posted = statuses(&masto).await;
        if posted.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(posted.len(), 3, "{posted:?}");
    assert_eq!(posted[1]["in_reply_to_id"], "1", "{posted:?}");
    assert_eq!(posted[2]["in_reply_to_id"], "2", "{posted:?}");
    assert!(posted[2]["status"]
        .as_str()
        .unwrap()
        .contains("back to normal"));

    // Its own update reaches the three phones too.
    for _ in 0..1200 {
        let st = deliveries(&pg, &live).await;
        if st["complete"] == true && st["channels"]["sms"]["delivered"] == 9 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Once the PostgreSQL server has written (deliveries sent), a migration of the old sled
    // store is refused and writes nothing.
    assert!(pg.terminate().success());
    let late = migrate(&data, &db);
    assert_eq!(late.status.code(), Some(3), "{}", text(&late));
    assert!(
        text(&late).contains("nothing was written"),
        "{}",
        text(&late)
    );
    let pg = ServeProcess::start_on(&pg_data, &channels, None, &CHANNEL_ENV, Some(db));
    // What the PostgreSQL server sent is there after a restart: the six migrated SMS and the
    // three of its own update, and its status. (The two statuses sled had posted are not
    // counted here: a migration copies unfinished deliveries only, docs/POSTGRES.md.)
    let st = deliveries(&pg, &live).await;
    assert_eq!(st["channels"]["sms"]["delivered"], 9, "{st}");
    assert_eq!(st["channels"]["sms"]["total"], 9, "{st}");
    assert!(
        st["channels"]["masto"]["delivered"].as_u64() >= Some(1),
        "{st}"
    );
}

/// In the PostgreSQL run (`CRIER_TEST_STORE=postgres`) the real binary started by the helpers
/// serves from the database of its data directory: what it writes is in that database, no sled
/// store is made, and another data directory gets another (empty) database.
#[tokio::test]
async fn in_the_postgres_run_the_real_binary_serves_from_its_data_directorys_database() {
    if !crate::helpers::on_postgres() {
        eprintln!("PostgreSQL only: run with CRIER_TEST_STORE=postgres (scripts/test.sh does)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServeProcess::start(&data);
    let id = call(
        &server,
        reqwest::Method::POST,
        "/api/v1/incidents",
        Body::Json(json!({"title": "served from PostgreSQL", "impact": "minor", "message": "m"})),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!data.join("db").exists(), "the binary made a sled store");

    let db = crate::helpers::bin_database_for(&data).unwrap();
    let pg = crier::pg::Pg::new(&crier::pg::ConnectOptions {
        url: &db.url,
        password: Some(&db.password),
        ca_file: db.ca.as_deref(),
        pool_size: 1,
    })
    .unwrap();
    let rows = pg
        .client()
        .await
        .unwrap()
        .query("SELECT id FROM crier_incidents", &[])
        .await
        .unwrap();
    let ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        ids,
        [id],
        "the incident is in the data directory's database"
    );
    pg.close();

    let other = ServeProcess::start(&dir.path().join("other"));
    assert_eq!(get(&other, "/api/v1/incidents").await, json!([]));
}
