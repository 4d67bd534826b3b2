//! What only the PostgreSQL store has (run with `CRIER_TEST_STORE=postgres`, which
//! scripts/test.sh sets for the suite's second run; on the sled run these say so and stop).

use crate::helpers::{on_postgres, pg_store_for_tests};
use crier::config::Config;
use crier::server::Server;

fn config(dir: &std::path::Path, store: crier::pg::settings::StoreSetting) -> Config {
    Config {
        channels_dir: dir.join("channels"),
        data_dir: dir.join("data"),
        bind: "127.0.0.1:0".parse().unwrap(),
        admin_token_env: "CRIER_TEST_UNSET_TOKEN_VAR".into(),
        templates_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/templates").into(),
        env: crate::helpers::env(&[]),
        store,
        ..Config::default()
    }
}

const ADMIN: &str = "two-nodes-admin-token-0123456789";

/// A node of a two-node deployment: its own data directory and a `log` channel (staff), the
/// shared database, one admin token (from the environment, as an operator would give both), and
/// a rehearsal clock starting at `start`.
fn node(
    dir: &std::path::Path,
    store: crier::pg::settings::StoreSetting,
    start: chrono::DateTime<chrono::Utc>,
) -> Config {
    std::fs::create_dir_all(dir.join("channels")).unwrap();
    std::fs::write(
        dir.join("channels/log.toml"),
        "kind = \"log\"\naudience = \"fixed\"\n",
    )
    .unwrap();
    Config {
        admin_token_env: "T_ADMIN".into(),
        env: crate::helpers::env(&[("T_ADMIN", ADMIN)]),
        clock_start: Some(start),
        ..config(dir, store)
    }
}

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    for _ in 0..600 {
        if ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{what}: not within 30 s");
}

/// Two nodes serve one database: both answer, exactly one leads (runs the scheduler). The
/// leader stops seconds before a notice is due; the other node takes over and the notice fires
/// exactly once, at its instant, from the new leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_serve_one_database_and_a_notice_due_after_the_leader_stops_fires_once() {
    use crier::store::port::Outbox;
    if !on_postgres() {
        eprintln!("PostgreSQL only: run with CRIER_TEST_STORE=postgres (scripts/test.sh does)");
        return;
    }
    let store = pg_store_for_tests().await.unwrap();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // The notice is due at 09:00:00; the nodes' clocks start 8 s before.
    let due: chrono::DateTime<chrono::Utc> = "2026-12-07T09:00:00Z".parse().unwrap();
    let start = due - chrono::Duration::seconds(8);
    let (a, _) = Server::build(&node(d1.path(), store.clone(), start))
        .await
        .unwrap();
    let (b, _) = Server::build(&node(d2.path(), store.clone(), start))
        .await
        .unwrap();
    let (lead_a, lead_b) = (a.leadership(), b.leadership());
    let (base_a, base_b) = (
        format!("http://{}", a.local_addr().unwrap()),
        format!("http://{}", b.local_addr().unwrap()),
    );
    let shared = b.store();
    let (stop_a, rx_a) = tokio::sync::oneshot::channel::<()>();
    let (stop_b, rx_b) = tokio::sync::oneshot::channel::<()>();
    let run_a = tokio::spawn(a.run(async {
        let _ = rx_a.await;
    }));
    let run_b = tokio::spawn(b.run(async {
        let _ = rx_b.await;
    }));
    wait_for("one node leads", || {
        lead_a.is_leader() || lead_b.is_leader()
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        lead_a.is_leader() ^ lead_b.is_leader(),
        "exactly one leader: a={} b={}",
        lead_a.is_leader(),
        lead_b.is_leader()
    );
    let (leader, follower, stop_leader, run_leader, stop_follower, run_follower, lead_follower) =
        if lead_a.is_leader() {
            (base_a, base_b, stop_a, run_a, stop_b, run_b, lead_b)
        } else {
            (base_b, base_a, stop_b, run_b, stop_a, run_a, lead_a)
        };

    // Both nodes serve: an incident opened through one is read through the other.
    let http = reqwest::Client::new();
    let opened: serde_json::Value = http
        .post(format!("{leader}/api/v1/incidents"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"title": "Check-in slow", "message": "Looking into it.", "impact": "minor"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = opened["id"].as_str().unwrap_or_else(|| panic!("{opened}"));
    let seen = http
        .get(format!("{follower}/api/v1/incidents/{id}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(seen.status(), 200);

    // The notice, made through the follower; then the leader stops before it is due.
    let made = http
        .post(format!("{follower}/api/v1/notices"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"cron": "0 9 * * *", "tz": "UTC", "message": "Daily check-in window.", "channels": ["log"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    let notice: serde_json::Value = made.json().await.unwrap();
    let notice = ulid::Ulid::from_string(notice["id"].as_str().unwrap()).unwrap();
    stop_leader.send(()).unwrap();
    run_leader.await.unwrap().unwrap();
    assert!(
        shared.broadcasts_of(notice).await.unwrap().is_empty(),
        "nothing fired before it was due"
    );
    wait_for("the other node leads", || lead_follower.is_leader()).await;

    // After the instant (the rehearsal clocks run at wall speed), exactly one firing.
    let mut firings = Vec::new();
    for _ in 0..300 {
        firings = shared.broadcasts_of(notice).await.unwrap();
        if !firings.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(firings.len(), 1, "{firings:?}");
    // A few more ticks of the new leader change nothing.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(shared.broadcasts_of(notice).await.unwrap().len(), 1);
    assert!(firings[0].created_at >= due, "{firings:?}");
    // And the surviving node sends it, once.
    let mut sent = Vec::new();
    for _ in 0..300 {
        sent = shared.deliveries_of(notice).await.unwrap();
        if sent.len() == 1 && sent[0].state.is_final() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].state.is_final(), "{sent:?}");

    stop_follower.send(()).unwrap();
    run_follower.await.unwrap().unwrap();
}
