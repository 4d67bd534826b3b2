//! Backups with the real binary: `crier backup FILE` while `crier serve` runs under concurrent
//! writes, `crier restore FILE --data DIR` into a new directory, and a server started on it
//! serving the same incidents, subscribers and delivery states (nothing delivered is sent
//! again); restore refusing a non-empty target or a damaged file without writing anything; and
//! scheduled backups written and pruned to `keep`.

use crate::helpers::{bin, ServeProcess};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SUBS_CHANNEL: &str =
    "kind = \"log\"\nrender = \"sms\"\naudience = \"subscribers\"\nrate = \"1000/s\"\n";

fn channels_dir(root: &Path) -> PathBuf {
    let dir = root.join("channels");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("subs.toml"), SUBS_CHANNEL).unwrap();
    dir
}

/// Runs the binary with `args` (no server URL or token from the environment).
async fn crier(args: &[&str]) -> Output {
    tokio::process::Command::new(bin())
        .args(args)
        .env_remove("CRIER_URL")
        .env_remove("CRIER_TOKEN")
        .env_remove("CRIER_DATA")
        .output()
        .await
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

struct Api {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl Api {
    fn of(s: &ServeProcess) -> Api {
        Api {
            base: s.base(),
            token: s.token(),
            client: reqwest::Client::new(),
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.send(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.send(reqwest::Method::POST, path, Some(body)).await;
        assert!(
            status == 200 || status == 201,
            "POST {path}: {status} {answer}"
        );
        answer
    }

    /// Polls the delivery status until every delivery is final (bounded, no fixed sleep).
    async fn wait_complete(&self, id: &str, total: u64) -> Value {
        for _ in 0..1200 {
            let s = self
                .get(&format!("/api/v1/incidents/{id}/deliveries"))
                .await;
            let sum: u64 = s["channels"]
                .as_object()
                .map(|m| m.values().map(|c| c["total"].as_u64().unwrap_or(0)).sum())
                .unwrap_or(0);
            if s["complete"] == true && sum == total {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the deliveries of {id} did not complete");
    }

    async fn incident_ids(&self) -> BTreeSet<String> {
        self.get("/api/v1/incidents?limit=10000")
            .await
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn subscribers(&self) -> BTreeMap<String, Value> {
        self.get("/api/v1/subscribers?limit=1000")
            .await
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["id"].as_str().unwrap().to_owned(), s.clone()))
            .collect()
    }
}

fn outbox_keys(data: &Path) -> Vec<String> {
    std::fs::read_to_string(data.join("outbox/subs.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["idempotency_key"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_while_serving_under_writes_restores_the_same_data() {
    if crate::helpers::sled_only("crier backup / restore write and read sled's backup file format; PostgreSQL refuses [backup] (use pg_dump)") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let channels = channels_dir(root.path());
    let data = root.path().join("data");
    let server = ServeProcess::start_with(&data, &channels);
    let live = Api::of(&server);
    for i in 0..10 {
        live.post(
            "/api/v1/subscribers",
            json!({"email": format!("s{i}@example.com")}),
        )
        .await;
    }
    let first = live
        .post(
            "/api/v1/incidents",
            json!({"title": "Before the backup", "impact": "major", "message": "Investigating"}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let delivered = live.wait_complete(&first, 10).await;
    let sent_before = outbox_keys(&data);
    assert_eq!(sent_before.len(), 10);

    // Writers: draft incidents (they notify nobody) each with a second update, and
    // subscribers; every acknowledged id is recorded.
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let acked_subs: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..4 {
        let (stop, acked, acked_subs) = (stop.clone(), acked.clone(), acked_subs.clone());
        let api = Api::of(&server);
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let id = api
                    .post(
                        "/api/v1/incidents",
                        json!({"title": format!("writer {w} #{n}"), "impact": "minor", "message": "m", "draft": true}),
                    )
                    .await["id"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                api.post(
                    &format!("/api/v1/incidents/{id}/updates"),
                    json!({"status": "identified", "message": "found it", "draft": true}),
                )
                .await;
                acked.lock().unwrap().insert(id);
                let s = api
                    .post(
                        "/api/v1/subscribers",
                        json!({"email": format!("w{w}-{n}@example.com")}),
                    )
                    .await;
                acked_subs
                    .lock()
                    .unwrap()
                    .insert(s["id"].as_str().unwrap().to_owned());
                n += 1;
            }
        }));
    }
    // Let the writers get going, then back up while they write.
    while acked.lock().unwrap().len() < 20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before: BTreeSet<String> = acked.lock().unwrap().clone();
    let subs_before: BTreeSet<String> = acked_subs.lock().unwrap().clone();
    let file = root.path().join("under-load.crb");
    let token = live.token.clone();
    let out = crier(&[
        "--url",
        &live.base,
        "--token",
        &token,
        "backup",
        file.to_str().unwrap(),
    ])
    .await;
    assert!(out.status.success(), "backup failed: {}", stderr(&out));
    let during = acked.lock().unwrap().len();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let all: BTreeSet<String> = acked.lock().unwrap().clone();
    let mut all_incidents = all.clone();
    all_incidents.insert(first.clone());
    eprintln!(
        "{} draft incidents acknowledged before the backup, {during} when it returned, {} in all",
        before.len(),
        all.len()
    );

    // The server's store is locked: an offline backup of it is refused with what to do.
    let refused = crier(&[
        "--data",
        data.to_str().unwrap(),
        "backup",
        "--offline",
        root.path().join("x.crb").to_str().unwrap(),
    ])
    .await;
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("without --offline"),
        "{}",
        stderr(&refused)
    );
    assert!(!root.path().join("x.crb").exists());

    let restored_data = root.path().join("restored");
    let out = crier(&[
        "--data",
        restored_data.to_str().unwrap(),
        "restore",
        file.to_str().unwrap(),
    ])
    .await;
    assert!(out.status.success(), "restore failed: {}", stderr(&out));
    let restored_server = ServeProcess::start_with(&restored_data, &channels);
    let restored = Api::of(&restored_server);

    // A consistent cut: everything acknowledged before the backup began, nothing the live
    // server never had, and each incident's timeline a prefix of the live one (an update
    // appended after the cut is missing as a whole, never half).
    let ids = restored.incident_ids().await;
    assert!(ids.contains(&first));
    assert!(
        before.is_subset(&ids),
        "acknowledged writes are missing from the backup"
    );
    assert!(
        ids.is_subset(&all_incidents),
        "the backup holds incidents the server never had"
    );
    for id in &ids {
        let mine = restored.get(&format!("/api/v1/incidents/{id}")).await;
        let theirs = live.get(&format!("/api/v1/incidents/{id}")).await;
        let (mu, tu) = (
            mine["updates"].as_array().unwrap(),
            theirs["updates"].as_array().unwrap(),
        );
        assert_eq!(
            mu.len() as u64,
            mine["update_count"].as_u64().unwrap(),
            "{mine}"
        );
        assert_eq!(&tu[..mu.len()], &mu[..], "incident {id}");
        if mu.len() == tu.len() {
            assert_eq!(mine, theirs);
        }
    }
    let subs = restored.subscribers().await;
    let live_subs = live.subscribers().await;
    for id in subs_before.iter() {
        assert!(
            subs.contains_key(id),
            "an acknowledged subscriber is missing"
        );
    }
    for (id, s) in &subs {
        assert_eq!(Some(s), live_subs.get(id), "subscriber {id}");
    }

    // Delivery state came along: the first incident's deliveries are delivered, and the
    // restored server sends none of them again. A new update reaches every subscriber the
    // restored store holds, once.
    let restored_status = restored
        .get(&format!("/api/v1/incidents/{first}/deliveries"))
        .await;
    assert_eq!(restored_status["channels"], delivered["channels"]);
    assert_eq!(restored_status["complete"], true);
    restored
        .post(
            &format!("/api/v1/incidents/{first}/updates"),
            json!({"status": "identified", "message": "After the restore"}),
        )
        .await;
    restored.wait_complete(&first, 10 + subs.len() as u64).await;
    let sent_after = outbox_keys(&restored_data);
    assert_eq!(sent_after.len(), subs.len(), "one message per subscriber");
    for k in &sent_after {
        assert!(
            !sent_before.contains(k),
            "a delivery that was delivered before the backup was sent again"
        );
    }
    drop(restored_server);

    // Quiescent: a backup now restores to exactly what the server serves.
    let file2 = root.path().join("quiet.crb");
    let out = crier(&[
        "--url",
        &live.base,
        "--token",
        &token,
        "--json",
        "backup",
        file2.to_str().unwrap(),
    ])
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["sha256"].as_str().unwrap().len(), 64);
    let restored2 = root.path().join("restored2");
    let out = crier(&[
        "--data",
        restored2.to_str().unwrap(),
        "restore",
        file2.to_str().unwrap(),
    ])
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let second = ServeProcess::start_with(&restored2, &channels);
    let copy = Api::of(&second);
    assert_eq!(
        copy.get("/api/v1/incidents?limit=10000").await,
        live.get("/api/v1/incidents?limit=10000").await
    );
    assert_eq!(copy.subscribers().await, live_subs);
    assert_eq!(copy.incident_ids().await, all_incidents);
}

#[tokio::test]
async fn restore_refuses_a_non_empty_target_or_a_damaged_file_and_writes_nothing() {
    if crate::helpers::sled_only("crier restore writes a sled store into the data directory") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let channels = channels_dir(root.path());
    let data = root.path().join("data");
    let server = ServeProcess::start_with(&data, &channels);
    let api = Api::of(&server);
    let id = api
        .post(
            "/api/v1/incidents",
            json!({"title": "Kept", "impact": "minor", "message": "m"}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(server.terminate().success());
    // Offline, with no server running.
    let file = root.path().join("b.crb");
    let out = crier(&[
        "--data",
        data.to_str().unwrap(),
        "backup",
        "--offline",
        file.to_str().unwrap(),
    ])
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    // FILE is not overwritten without --force.
    let again = crier(&[
        "--data",
        data.to_str().unwrap(),
        "backup",
        "--offline",
        file.to_str().unwrap(),
    ])
    .await;
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));

    let listing = |dir: &Path| -> BTreeMap<String, Vec<u8>> { walk(dir) };
    let target = root.path().join("busy");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("notes.txt"), b"mine").unwrap();
    let before = listing(&target);
    let out = crier(&[
        "--data",
        target.to_str().unwrap(),
        "restore",
        file.to_str().unwrap(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not empty") && stderr(&out).contains("--force"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        listing(&target),
        before,
        "a refused restore wrote something"
    );

    // A damaged or truncated file is refused before anything is created.
    let bytes = std::fs::read(&file).unwrap();
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x20;
    let damaged = root.path().join("damaged.crb");
    std::fs::write(&damaged, &flipped).unwrap();
    let truncated = root.path().join("truncated.crb");
    std::fs::write(&truncated, &bytes[..bytes.len() - 100]).unwrap();
    for bad in [&damaged, &truncated] {
        let fresh = root.path().join("fresh");
        let out = crier(&[
            "--data",
            fresh.to_str().unwrap(),
            "restore",
            bad.to_str().unwrap(),
        ])
        .await;
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("not a usable crier backup"),
            "{}",
            stderr(&out)
        );
        assert!(
            !fresh.exists(),
            "a refused restore created {}",
            fresh.display()
        );
        // Over a non-empty target with --force, too: still nothing written.
        let out = crier(&[
            "--data",
            target.to_str().unwrap(),
            "restore",
            "--force",
            bad.to_str().unwrap(),
        ])
        .await;
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert_eq!(listing(&target), before);
    }

    // --force restores, keeping the directory's other files; a second one keeps the replaced
    // store aside.
    for _ in 0..2 {
        let out = crier(&[
            "--data",
            target.to_str().unwrap(),
            "restore",
            "--force",
            file.to_str().unwrap(),
        ])
        .await;
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(std::fs::read(target.join("notes.txt")).unwrap(), b"mine");
    let aside: Vec<String> = std::fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("db.replaced-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    let server = ServeProcess::start_with(&target, &channels);
    let api = Api::of(&server);
    assert_eq!(
        api.get(&format!("/api/v1/incidents/{id}")).await["title"],
        "Kept"
    );
}

/// Every file under `dir` with its contents.
fn walk(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            for (k, v) in walk(&p) {
                out.insert(format!("{}/{k}", e.file_name().to_string_lossy()), v);
            }
        } else {
            out.insert(
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            );
        }
    }
    out
}

#[tokio::test]
async fn scheduled_backups_are_written_and_pruned_to_keep() {
    if crate::helpers::sled_only("scheduled [backup] is sled's; refused with PostgreSQL") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let channels = channels_dir(root.path());
    let data = root.path().join("data");
    let backups = root.path().join("backups");
    let config = root.path().join("crier.toml");
    std::fs::write(
        &config,
        format!(
            "[backup]\nevery = \"1s\"\nkeep = 2\ndir = \"{}\"\n",
            backups.display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(&backups).unwrap();
    std::fs::write(backups.join("README"), b"not a backup").unwrap();
    let server = ServeProcess::start_env(&data, &channels, Some(&config), &[]);
    let api = Api::of(&server);
    api.post(
        "/api/v1/incidents",
        json!({"title": "Backed up", "impact": "minor", "message": "m"}),
    )
    .await;
    let names = || -> BTreeSet<String> {
        std::fs::read_dir(&backups)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("crier-backup-") && n.ends_with(".crb"))
            .collect()
    };
    // Poll (bounded, generously) until four different backups have been seen: with keep = 2,
    // at least two were pruned by then.
    let mut seen = BTreeSet::new();
    for _ in 0..1200 {
        seen.extend(names());
        if seen.len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        seen.len() >= 4,
        "only {} scheduled backups appeared",
        seen.len()
    );
    // A graceful stop lets a backup in progress finish (and prune).
    assert!(server.terminate().success());
    let left = names();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(
        backups.join("README").exists(),
        "pruning touched a file that is not a backup"
    );
    let leftovers: Vec<String> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // The newest restores and holds the incident.
    let newest = backups.join(left.iter().next_back().unwrap());
    let restored = root.path().join("restored");
    let out = crier(&[
        "--data",
        restored.to_str().unwrap(),
        "restore",
        newest.to_str().unwrap(),
    ])
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let server = ServeProcess::start_with(&restored, &channels);
    let titles: Vec<Value> = Api::of(&server)
        .get("/api/v1/incidents")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].clone())
        .collect();
    assert_eq!(titles, vec![json!("Backed up")]);
}
