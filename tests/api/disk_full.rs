//! The real binary on a real full disk (a small tmpfs; mounting needs root, so these run in
//! `scripts/test.sh` as `--ignored e2e_` tests): a write that fails for lack of space is never
//! served, `/healthz` reports the broken store, and crier recovers by itself once space is freed.
//! Also: a read-only data directory is reported as read-only.

use crate::helpers::{bin, ServeProcess};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A tmpfs mounted on a temporary directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(options: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "crier-test"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(
            st.success(),
            "mount -t tmpfs failed: this test needs root (scripts/test.sh runs it as root in CI)"
        );
        Tmpfs { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Writes a file until the filesystem is full.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0x55u8; 64 * 1024];
    loop {
        if f.write_all(&chunk).and_then(|()| f.sync_data()).is_err() {
            break;
        }
    }
    // Top off the last partial pages too.
    while f.write_all(&[0x55]).is_ok() && f.sync_data().is_ok() {}
}

async fn update(client: &reqwest::Client, s: &ServeProcess, id: &str, text: &str) -> u16 {
    client
        .post(format!("{}/api/v1/incidents/{id}/updates", s.base()))
        .bearer_auth(s.token())
        .json(&json!({"message": text, "status": "identified"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn get(client: &reqwest::Client, s: &ServeProcess, path: &str) -> (u16, Value) {
    let r = client
        .get(format!("{}{path}", s.base()))
        .bearer_auth(s.token())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
#[ignore = "mounts a tmpfs (root); run by scripts/test.sh"]
async fn e2e_disk_full_hides_the_failed_write_and_recovers_when_space_returns() {
    if crate::helpers::sled_only("fills the file system under sled's data directory") {
        return;
    }
    let fs = Tmpfs::mount("size=24m");
    let data = fs.path().join("data");
    let server = ServeProcess::start(&data);
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{}/api/v1/incidents", server.base()))
        .bearer_auth(server.token())
        .json(&json!({"title": "disk full", "impact": "minor", "message": "opened"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let filler = fs.path().join("filler");
    fill(&filler);
    // Updates fail once sled needs a new page; the first failure breaks the store.
    let mut failed = None;
    for i in 0..2000 {
        let st = update(
            &client,
            &server,
            &id,
            &format!("update {i} {}", "x".repeat(2000)),
        )
        .await;
        if st != 201 {
            failed = Some((i, st));
            break;
        }
    }
    let (i, st) = failed.expect("no write failed on a full disk");
    assert!(st >= 500, "a failed write answered {st}");
    let (hs, hv) = get(&client, &server, "/healthz").await;
    assert_eq!(hs, 503, "healthz while broken: {hv}");
    assert!(
        hv["detail"].as_str().unwrap().contains("cannot write"),
        "{hv}"
    );
    // Never served: reads are refused while broken...
    let (rs, _) = get(&client, &server, &format!("/api/v1/incidents/{id}")).await;
    assert_eq!(rs, 503);

    // ...and once space returns, the store re-opens without the failed write.
    std::fs::remove_file(&filler).unwrap();
    let mut healthy = false;
    for _ in 0..600 {
        if get(&client, &server, "/healthz").await.0 == 200 {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healthy, "the store did not recover after space was freed");
    let (rs, v) = get(&client, &server, &format!("/api/v1/incidents/{id}")).await;
    assert_eq!(rs, 200, "{v}");
    let texts: Vec<String> = v["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.to_string())
        .collect();
    assert!(
        !texts.iter().any(|t| t.contains(&format!("update {i} "))),
        "the write answered {st} is visible"
    );
    assert_eq!(update(&client, &server, &id, "after recovery").await, 201);
}

#[test]
#[ignore = "mounts a tmpfs (root); run by scripts/test.sh"]
fn e2e_a_read_only_data_directory_is_reported_as_read_only() {
    let fs = Tmpfs::mount("size=4m");
    std::fs::create_dir(fs.path().join("data")).unwrap();
    let st = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(fs.path())
        .status()
        .unwrap();
    assert!(st.success());
    let out = Command::new(bin())
        .args(["serve", "--bind", "127.0.0.1:0", "--data"])
        .arg(fs.path().join("data"))
        .arg("--channels")
        .arg(fs.path().join("none"))
        .arg("--templates")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/templates"))
        .env_remove("CRIER_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("read-only"), "{err}");
    assert!(!err.contains("another crier"), "{err}");
}
