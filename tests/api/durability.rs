//! The real binary under crash and restart: every acknowledged write survives `kill -9`, and data
//! and the admin token persist across restarts.

use crate::helpers::ServeProcess;
use crier::store::port::Incidents;
use serde_json::json;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::start(dir.path());
    let (base, token) = (server.base(), server.token());
    let client = reqwest::Client::new();
    let acked = Arc::new(AtomicUsize::new(0));
    let half = Arc::new(tokio::sync::Notify::new());
    let mut tasks = Vec::new();
    for i in 0..500 {
        let (client, base, token, acked, half) = (
            client.clone(),
            base.clone(),
            token.clone(),
            acked.clone(),
            half.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(format!("{base}/api/v1/incidents"))
                .bearer_auth(&token)
                .json(&json!({"title": format!("write {i}"), "impact": "minor", "message": "m"}))
                .send()
                .await
                .ok()?;
            if r.status() != 201 {
                return None;
            }
            let v: serde_json::Value = r.json().await.ok()?;
            if acked.fetch_add(1, Ordering::SeqCst) + 1 == 250 {
                half.notify_one();
            }
            v["id"].as_str().map(str::to_owned)
        }));
    }
    // Crash the server while the other half of the writes is still in flight.
    half.notified().await;
    server.kill9();
    let mut ids = HashSet::new();
    for t in tasks {
        if let Some(id) = t.await.unwrap() {
            ids.insert(id);
        }
    }
    assert!(
        ids.len() >= 250,
        "only {} writes were acknowledged",
        ids.len()
    );

    let server = ServeProcess::start(dir.path());
    let listed: Vec<serde_json::Value> = client
        .get(format!("{}/api/v1/incidents?limit=10000", server.base()))
        .bearer_auth(server.token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let found: HashSet<String> = listed
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    let lost: Vec<&String> = ids.difference(&found).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost after kill -9: {lost:?}",
        lost.len()
    );
    eprintln!(
        "acknowledged {} of 500 before the kill; all found after restart ({} stored)",
        ids.len(),
        found.len()
    );
}

#[tokio::test]
async fn data_and_admin_token_persist_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::start(dir.path());
    let token = server.token();
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{}/api/v1/incidents", server.base()))
        .bearer_auth(&token)
        .json(&json!({"title": "persist me", "impact": "minor", "message": "m"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let status = server.terminate();
    assert!(status.success(), "graceful shutdown exited with {status}");

    let server = ServeProcess::start(dir.path());
    assert_eq!(server.token(), token, "the admin token changed on restart");
    let r = client
        .get(format!("{}/api/v1/incidents/{id}", server.base()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the old token must still work");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["title"], "persist me");
}

/// A graceful shutdown closes the store for every clone of it: when `Server::run` returns,
/// sled's lock is free and the same directory opens again at once, with what was written, even
/// while another handle to the old store (here the test's own) is still alive.
#[tokio::test]
async fn after_a_graceful_shutdown_the_data_directory_opens_again_at_once() {
    if crate::helpers::sled_only("re-opens sled's data directory") {
        return;
    }
    let app = crate::helpers::spawn_app().await;
    let id = app.open_incident("Written before the shutdown").await;
    let held = app.store.clone();
    let (stopped, dir) = app.shut_down().await;
    stopped.unwrap();
    let reopened = crier::store::Store::open(&dir.path().join("data").join("db")).unwrap();
    let incidents = reopened
        .incidents(&crier::domain::IncidentFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].id.to_string(), id);
    // The old handle was closed with the server: it answers instead of writing.
    assert!(held
        .incidents(&crier::domain::IncidentFilter::default())
        .await
        .is_err());
}
