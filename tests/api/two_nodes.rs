//! Two crier nodes on one PostgreSQL database, as real processes (issue 16's acceptance tests):
//! a node killed with `kill -9` mid-fan-out, the database restarted mid-fan-out, and the same
//! incident updated through both nodes at once. They need the cluster of scripts/pg.sh and the
//! built provider emulator, so they are `#[ignore]`d in a bare `cargo test`; scripts/test.sh
//! runs them under pg.sh — the restart test in a pg.sh invocation of its own, since restarting
//! the cluster breaks every other test using it at that moment.
//!
//! Each node's claims on deliveries are leased for [`LEASE`] (`[postgres] lease`), so a dead
//! node's claims return to the other node within seconds instead of the default five minutes.

use crate::e2e::{provider_sim, sim_stats};
use crate::helpers::{PgDatabase, ServeProcess};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The claim lease both nodes run with: short, so a dead node's claims return within the test,
/// yet well above a send and its record on a loaded machine (at 5 s, with two debug nodes,
/// PostgreSQL and the emulator on two busy cores, live nodes' sends outlasted their leases and
/// were taken over: dozens of duplicates beyond the killed node's in-flight ones).
const LEASE: &str = "20s";
/// The admin token both nodes answer (one database, one team).
const ADMIN: &str = "two-nodes-admin-token-0123456789";
const TWILIO_ENV: [(&str, &str); 2] = [
    ("E2E_TWILIO_SID", "AC0123456789"),
    ("E2E_TWILIO_TOKEN", "twilio-token"),
];

fn sms_channel(sim: &str, concurrency: u64) -> String {
    format!(
        "kind = \"twilio\"\naccount_sid_env = \"E2E_TWILIO_SID\"\nauth_token_env = \"E2E_TWILIO_TOKEN\"\n\
         from = \"+15005550006\"\nbase_url = \"{sim}\"\nrate = \"100000/s\"\nconcurrency = {concurrency}\n"
    )
}

/// A node on `db` with the SMS channel, its data directory `dir/name`.
fn node(dir: &Path, name: &str, db: &PgDatabase) -> ServeProcess {
    ServeProcess::start_pg(
        &dir.join(name),
        &dir.join("channels"),
        db,
        LEASE,
        "",
        ADMIN,
        &TWILIO_ENV,
    )
}

/// An authenticated request; returns the status and the JSON body.
async fn request(
    node: &ServeProcess,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    csv: Option<String>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", node.base()))
        .bearer_auth(ADMIN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    if let Some(c) = csv {
        req = req.header("content-type", "text/csv").body(c);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A request that must succeed.
async fn call(
    node: &ServeProcess,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let (status, v) = request(node, method, path, body, None).await;
    assert!((200..300).contains(&status), "{path}: {status} {v}");
    v
}

/// Imports `n` phone subscribers through `node`.
async fn import_phones(node: &ServeProcess, n: usize) {
    let mut csv = String::from("phone\n");
    for i in 0..n {
        csv.push_str(&format!("+35840{i:07}\n"));
    }
    let (status, v) = request(
        node,
        reqwest::Method::POST,
        "/api/v1/subscribers/import",
        None,
        Some(csv),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["added"], n, "{v}");
}

/// Opens an incident through `node` (broadcast to every subscriber) and returns its id.
async fn open_incident(node: &ServeProcess, title: &str) -> String {
    let v = call(
        node,
        reqwest::Method::POST,
        "/api/v1/incidents",
        Some(json!({"title": title, "impact": "critical", "message": "Flights are grounded."})),
    )
    .await;
    v["id"].as_str().unwrap().to_owned()
}

/// Waits (a generous bound, polling) until the incident's SMS deliveries are all final and
/// number `total`; returns the status document.
async fn wait_complete(node: &ServeProcess, id: &str, total: usize) -> Value {
    let mut last = Value::Null;
    for _ in 0..2400 {
        let (status, v) = request(
            node,
            reqwest::Method::GET,
            &format!("/api/v1/incidents/{id}/deliveries"),
            None,
            None,
        )
        .await;
        if status == 200 && v["complete"] == true && v["channels"]["sms"]["total"] == total {
            return v;
        }
        last = v;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the fan-out did not finish within 4 minutes: {last}");
}

/// The emulator's count of SMS accepted so far.
async fn accepted(sim: &str) -> u64 {
    sim_stats(sim).await["accepted"]["twilio"].as_u64().unwrap()
}

/// Waits until the emulator has accepted at least `n` SMS; returns the count.
async fn wait_accepted(sim: &str, n: u64) -> u64 {
    for _ in 0..6000 {
        let got = accepted(sim).await;
        if got >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the emulator never accepted {n} SMS");
}

/// Waits until claims of two different nodes have been seen on the database's deliveries (the
/// lease owner is a per-process id): both nodes are sending.
async fn wait_both_nodes_claim(db: &PgDatabase) -> usize {
    let pool = db.pool();
    let client = pool.client().await.unwrap();
    let mut owners = BTreeSet::new();
    for _ in 0..1500 {
        for r in client
            .query(
                "SELECT DISTINCT lease_owner FROM crier_deliveries WHERE lease_owner IS NOT NULL",
                &[],
            )
            .await
            .unwrap()
        {
            owners.insert(r.get::<_, String>(0));
        }
        if owners.len() >= 2 {
            return owners.len();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("only {owners:?} ever claimed deliveries: the second node is not sending");
}

/// How many deliveries took how many attempts (claims), for a failure message.
async fn attempts(db: &PgDatabase) -> Vec<(i32, i64)> {
    let pool = db.pool();
    let client = pool.client().await.unwrap();
    client
        .query(
            "SELECT attempts, count(*) FROM crier_deliveries GROUP BY attempts ORDER BY attempts",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Fails the test if the emulator saw more than `max` duplicates or missed a subscriber; the
/// message shows the deliveries' attempt counts from `db` (a duplicate is a delivery claimed
/// again after its lease ran out).
async fn check_every_subscriber_once(sim: &str, db: &PgDatabase, n: usize, max: u64) -> u64 {
    let st = sim_stats(sim).await;
    let claims = attempts(db).await;
    assert_eq!(
        st["unique_recipients"]["twilio"], n,
        "every subscriber received it: {st}; deliveries by attempts: {claims:?}"
    );
    let dups = st["duplicates"]["twilio"].as_u64().unwrap();
    assert!(
        dups <= max,
        "{dups} duplicates, more than the {max} that can be in flight: {st}; deliveries by \
         attempts: {claims:?}"
    );
    assert_eq!(
        st["accepted"]["twilio"].as_u64().unwrap(),
        n as u64 + dups,
        "each SMS accepted is a subscriber's first or a counted duplicate: {st}"
    );
    dups
}

/// Two nodes fan one incident out to 10,000 SMS subscribers; one is killed with `kill -9`
/// mid-way. The other finishes alone: every subscriber gets the message, and the duplicates are
/// at most what the killed node had in flight (its channel concurrency), once its claims'
/// leases run out.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "e2e: needs PostgreSQL (scripts/pg.sh) and the built examples; run by scripts/test.sh"]
async fn e2e_two_nodes_kill_9_mid_fanout_the_other_finishes_duplicates_bounded() {
    const N: usize = 10_000;
    const CONCURRENCY: u64 = 32;
    let db = PgDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let (_sim, sim) = provider_sim();
    // A little latency so the kill lands mid-fan-out.
    reqwest::Client::new()
        .post(format!("{sim}/faults"))
        .json(&json!({"latency_ms": 2}))
        .send()
        .await
        .unwrap();
    let channels = dir.path().join("channels");
    std::fs::create_dir_all(&channels).unwrap();
    std::fs::write(channels.join("sms.toml"), sms_channel(&sim, CONCURRENCY)).unwrap();

    let t0 = std::time::Instant::now();
    let a = node(dir.path(), "a", &db);
    import_phones(&a, N).await;
    let id = open_incident(&a, "Volcanic ash").await;
    let t_open = t0.elapsed();
    eprintln!("started node A, imported {N}, opened the incident: {t_open:?}");
    let b = node(dir.path(), "b", &db);
    let owners = wait_both_nodes_claim(&db).await;
    let at_kill = wait_accepted(&sim, (N / 4) as u64).await;
    a.kill9();
    let t_kill = t0.elapsed();
    eprintln!("both nodes claiming, A killed after {at_kill} accepted: {t_kill:?}");
    assert!(
        at_kill < N as u64,
        "the fan-out finished before the kill; the test proves nothing"
    );

    wait_complete(&b, &id, N).await;
    let t_done = t0.elapsed();
    eprintln!("complete: {t_done:?}");
    let dups = check_every_subscriber_once(&sim, &db, N, CONCURRENCY).await;
    // Everything is recorded as sent, each delivery once.
    let pool = db.pool();
    let client = pool.client().await.unwrap();
    let sent: i64 = client
        .query_one(
            "SELECT count(*) FROM crier_deliveries WHERE state = 'sent'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(sent, N as i64);
    eprintln!(
        "two nodes ({owners} claiming), node A killed after {at_kill} of {N} accepted; node B \
         finished: all {N} received, {dups} duplicate(s); started + imported + opened in \
         {t_open:?}, killed at {t_kill:?}, complete at {t_done:?}"
    );
}

/// Runs `pg_ctl restart -m fast` on the cluster of scripts/pg.sh (as the OS user it runs as).
fn restart_cluster() {
    let var = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| {
            panic!("{k} is unset: run this test under scripts/pg.sh, in an invocation of its own")
        })
    };
    let (pg_ctl, data, log, user) = (
        var("CRIER_TEST_PG_CTL"),
        var("CRIER_TEST_PG_DATA"),
        var("CRIER_TEST_PG_LOG"),
        var("CRIER_TEST_PG_OS_USER"),
    );
    let me = Command::new("id").arg("-un").output().unwrap();
    let mut cmd = if String::from_utf8_lossy(&me.stdout).trim() == user {
        Command::new(&pg_ctl)
    } else {
        let mut c = Command::new("runuser");
        c.args(["-u", &user, "--", &pg_ctl]);
        c
    };
    let st = cmd
        .args([
            "-D", &data, "-l", &log, "-w", "-t", "60", "-m", "fast", "restart",
        ])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "pg_ctl restart failed: {st}");
}

/// The database restarted (`pg_ctl restart -m fast`) while two nodes fan an incident out to
/// 10,000 SMS subscribers: the fan-out finishes, every subscriber gets the message once (the
/// outcomes the restart interrupted are written when the database is back; the crash bound,
/// what both nodes had in flight, is checked first), and a write acknowledged just before the restart
/// is there after it, through either node.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "e2e: restarts the cluster of scripts/pg.sh, so it runs in a pg.sh invocation of its own (scripts/test.sh)"]
async fn e2e_two_nodes_database_restart_mid_fanout_loses_nothing() {
    const N: usize = 10_000;
    const CONCURRENCY: u64 = 32;
    let db = PgDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let (_sim, sim) = provider_sim();
    reqwest::Client::new()
        .post(format!("{sim}/faults"))
        .json(&json!({"latency_ms": 2}))
        .send()
        .await
        .unwrap();
    let channels = dir.path().join("channels");
    std::fs::create_dir_all(&channels).unwrap();
    std::fs::write(channels.join("sms.toml"), sms_channel(&sim, CONCURRENCY)).unwrap();

    let a = node(dir.path(), "a", &db);
    import_phones(&a, N).await;
    let id = open_incident(&a, "Volcanic ash").await;
    let b = node(dir.path(), "b", &db);
    wait_both_nodes_claim(&db).await;
    wait_accepted(&sim, (N / 4) as u64).await;
    // A write acknowledged just before the restart.
    let (status, v) = request(
        &b,
        reqwest::Method::PUT,
        "/api/v1/components/restart-witness",
        Some(json!({"status": "degraded_performance"})),
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let at_restart = accepted(&sim).await;
    let t0 = std::time::Instant::now();
    restart_cluster();
    eprintln!("pg_ctl restart -m fast took {:?}", t0.elapsed());
    assert!(
        at_restart < N as u64,
        "the fan-out finished before the restart; the test proves nothing"
    );

    wait_complete(&a, &id, N).await;
    eprintln!("complete {:?} after the restart", t0.elapsed());
    let dups = check_every_subscriber_once(&sim, &db, N, 2 * CONCURRENCY).await;
    // Within the crash bound is what the issue asks; no node crashed here, and an outcome the
    // restarting database could not take is written again once it is back (the dispatcher
    // retries it while the claim's lease holds), so nothing is sent twice at all. (Before that
    // retry: 31 - 46 duplicates, every send in flight at the restart sent again after its
    // lease ran out.)
    assert_eq!(
        dups, 0,
        "a send whose outcome the restart interrupted was sent again: its record was not retried"
    );
    for n in [&a, &b] {
        let v = call(n, reqwest::Method::GET, "/api/v1/components", None).await;
        let witness = v
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "restart-witness");
        assert_eq!(
            witness.map(|c| c["status"].clone()),
            Some(json!("degraded_performance")),
            "{v}"
        );
    }
    eprintln!(
        "database restarted after {at_restart} of {N} accepted; both nodes finished: all {N} \
         received, {dups} duplicate(s)"
    );
}

/// The same incident updated through both nodes at once (25 updates each, all in parallel):
/// every update is acknowledged and appears once, in one complete timeline (positions 1..=51,
/// no gap, no repeat) that both nodes show in the same order; and every message reaches every
/// subscriber exactly once (no delivery sent twice).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "e2e: needs PostgreSQL (scripts/pg.sh) and the built examples; run by scripts/test.sh"]
async fn e2e_two_nodes_concurrent_updates_keep_one_complete_ordered_timeline() {
    const PER_NODE: usize = 25;
    const SUBSCRIBERS: usize = 3;
    let db = PgDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let (_sim, sim) = provider_sim();
    let channels = dir.path().join("channels");
    std::fs::create_dir_all(&channels).unwrap();
    std::fs::write(channels.join("sms.toml"), sms_channel(&sim, 8)).unwrap();
    let a = node(dir.path(), "a", &db);
    let b = node(dir.path(), "b", &db);
    import_phones(&a, SUBSCRIBERS).await;
    let id = open_incident(&a, "Baggage system down").await;

    let mut posts = tokio::task::JoinSet::new();
    for (name, n) in [("a", &a), ("b", &b)] {
        for i in 0..PER_NODE {
            let (base, path) = (n.base(), format!("/api/v1/incidents/{id}/updates"));
            let message = format!("update {name}-{i}");
            posts.spawn(async move {
                let r = reqwest::Client::new()
                    .post(format!("{base}{path}"))
                    .bearer_auth(ADMIN)
                    .json(&json!({"message": message}))
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let v: Value = r.json().await.unwrap_or(Value::Null);
                assert_eq!(status, 201, "{message}: {v}");
                (message, v["update"]["id"].as_str().unwrap().to_owned())
            });
        }
    }
    let mut posted: HashMap<String, String> = HashMap::new();
    while let Some(r) = posts.join_next().await {
        let (message, update) = r.unwrap();
        posted.insert(update, message);
    }
    assert_eq!(
        posted.len(),
        2 * PER_NODE,
        "each update got an id of its own"
    );
    let total = 2 * PER_NODE + 1;

    // The timeline as stored: positions 1..=51, each update once.
    let pool = db.pool();
    let client = pool.client().await.unwrap();
    let rows = client
        .query(
            "SELECT seq, id FROM crier_updates WHERE incident_id = $1 ORDER BY seq",
            &[&id],
        )
        .await
        .unwrap();
    let seqs: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        seqs,
        (1..=total as i32).collect::<Vec<_>>(),
        "no gap, no repeat"
    );
    let stored: Vec<String> = rows.iter().map(|r| r.get(1)).collect();
    for u in posted.keys() {
        assert_eq!(
            stored.iter().filter(|s| *s == u).count(),
            1,
            "update {u} ({}) is in the timeline once",
            posted[u]
        );
    }
    // Both nodes show that timeline, in that order, with the texts as posted.
    for n in [&a, &b] {
        let v = call(
            n,
            reqwest::Method::GET,
            &format!("/api/v1/incidents/{id}"),
            None,
        )
        .await;
        let updates = v["updates"].as_array().unwrap();
        let ids: Vec<String> = updates
            .iter()
            .map(|u| u["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids, stored, "node {} shows the stored order", n.base());
        for u in updates {
            if let Some(m) = posted.get(u["id"].as_str().unwrap()) {
                assert!(u.to_string().contains(m.as_str()), "{u} carries {m:?}");
            }
        }
    }

    // Every message to every subscriber, none twice.
    wait_complete(&b, &id, total * SUBSCRIBERS).await;
    let st = sim_stats(&sim).await;
    assert_eq!(st["unique_recipients"]["twilio"], SUBSCRIBERS, "{st}");
    assert_eq!(
        st["duplicates"]["twilio"], 0,
        "no delivery sent twice: {st}"
    );
    assert_eq!(
        st["accepted"]["twilio"].as_u64().unwrap(),
        (total * SUBSCRIBERS) as u64,
        "{st}"
    );
}

/// Whether `node` says (on `/metrics`) that it is the elected leader; `None` if it does not
/// answer.
async fn leads(node: &ServeProcess) -> Option<bool> {
    let r = reqwest::Client::new()
        .get(format!("{}/metrics", node.base()))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    let text = r.text().await.ok()?;
    let line = text.lines().find(|l| l.starts_with("crier_leader "))?;
    Some(line.trim_end().ends_with(" 1"))
}

/// Two nodes; the elected leader (the one that runs the scheduler) is killed with `kill -9`
/// five seconds before a notice is due. The other node takes the lead within the claim lease
/// and the notice fires exactly once: each subscriber gets its SMS once, and there is one
/// firing in the database. (crier's schedules are crontab minutes and these are real
/// processes on the wall clock, so the notice is put on the first minute at least 25 s away.)
#[tokio::test(flavor = "multi_thread")]
#[ignore = "e2e: needs PostgreSQL (scripts/pg.sh) and the built examples; run by scripts/test.sh"]
async fn e2e_two_nodes_leader_killed_before_a_notice_is_due_the_other_fires_it_once() {
    use chrono::{Timelike, Utc};
    const SUBSCRIBERS: usize = 3;
    let db = PgDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let (_sim, sim) = provider_sim();
    let channels = dir.path().join("channels");
    std::fs::create_dir_all(&channels).unwrap();
    std::fs::write(channels.join("sms.toml"), sms_channel(&sim, 4)).unwrap();
    let a = node(dir.path(), "a", &db);
    let b = node(dir.path(), "b", &db);
    import_phones(&a, SUBSCRIBERS).await;

    // Exactly one of them leads.
    for _ in 0..200 {
        if leads(&a).await == Some(true) || leads(&b).await == Some(true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let roles = (leads(&a).await, leads(&b).await);
    assert!(
        matches!(roles, (Some(true), Some(false)) | (Some(false), Some(true))),
        "exactly one leader: {roles:?}"
    );
    let (leader, follower) = if roles.0 == Some(true) {
        (a, b)
    } else {
        (b, a)
    };

    // The notice, made through the follower, due on the first whole minute >= 25 s away.
    let now = Utc::now();
    let mut due =
        now.with_second(0).unwrap().with_nanosecond(0).unwrap() + chrono::Duration::minutes(1);
    if due - now < chrono::Duration::seconds(25) {
        due += chrono::Duration::minutes(1);
    }
    let cron = format!("{} {} * * *", due.minute(), due.hour());
    let notice = call(
        &follower,
        reqwest::Method::POST,
        "/api/v1/notices",
        Some(json!({"cron": cron, "tz": "UTC", "message": "Daily check-in window.", "channels": ["sms"]})),
    )
    .await;
    let notice_id = notice["id"].as_str().unwrap().to_owned();
    eprintln!("notice {notice_id} due at {due} ({cron}); now {now}");

    // The leader dies five seconds before the instant.
    let kill_at = due - chrono::Duration::seconds(5);
    let wait = (kill_at - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait).await;
    assert_eq!(
        accepted(&sim).await,
        0,
        "nothing was sent before the notice was due"
    );
    leader.kill9();
    let killed = Utc::now();
    assert!(
        killed < due,
        "the kill came after the instant ({killed} >= {due})"
    );

    // The other node leads within the lease (20 s), counted from the kill.
    let mut took_over = None;
    for _ in 0..200 {
        if leads(&follower).await == Some(true) {
            took_over = Some(Utc::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took_over = took_over.expect("the surviving node never took the lead");
    assert!(
        took_over - killed <= chrono::Duration::seconds(20),
        "the lead passed after {:?}, beyond the 20 s lease",
        took_over - killed
    );

    // One SMS per subscriber, then a few more of the new leader's ticks: no second firing.
    wait_accepted(&sim, SUBSCRIBERS as u64).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let st = sim_stats(&sim).await;
    assert_eq!(st["accepted"]["twilio"], SUBSCRIBERS, "{st}");
    assert_eq!(st["duplicates"]["twilio"], 0, "{st}");
    let pool = db.pool();
    let client = pool.client().await.unwrap();
    let firings: i64 = client
        .query_one(
            "SELECT count(*) FROM crier_broadcasts WHERE incident_id = $1",
            &[&notice_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        firings, 1,
        "one firing of the notice (one channel: one broadcast row)"
    );
    eprintln!(
        "leader killed at {killed} (due {due}); the other node led at {took_over} (+{:?}); \
         {SUBSCRIBERS} SMS, one each",
        took_over - killed
    );
}
