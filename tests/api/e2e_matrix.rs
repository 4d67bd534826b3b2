//! End-to-end against a real Matrix homeserver: Synapse on loopback with SQLite, started by
//! `tests/e2e/synapse_server.py` (which registers the user `crier` with the shared secret).
//! crier posts an incident's three updates to a room, and the room, read back through the
//! client API, holds exactly three messages, the later two replies to the one before. Then the
//! same with crier `kill -9`ed after Synapse stored an update but before crier heard back: on
//! restart crier sends it again with the same transaction id, which Synapse answers with the
//! stored event instead of posting twice. Needs `pip install matrix-synapse` (scripts/test.sh
//! installs it), so it is `#[ignore]`d in a bare `cargo test`.

use crate::helpers::ServeProcess;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts Synapse; returns it with its URL and the access token of `@crier:localhost`.
fn synapse(dir: &Path) -> (Proc, String, String) {
    let mut child = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/e2e/synapse_server.py"
        ))
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cannot start tests/e2e/synapse_server.py");
    let out = child.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    let line = loop {
        match lines.next() {
            Some(Ok(l)) if l.starts_with("synapse listening on ") => break l,
            Some(Ok(_)) => continue,
            _ => panic!("synapse_server.py exited before Synapse was ready"),
        }
    };
    std::thread::spawn(move || for _ in lines {});
    // "synapse listening on URL user=… token=…"
    let mut words = line.split_whitespace().skip(3);
    let url = words.next().unwrap().to_owned();
    let token = line.rsplit("token=").next().unwrap().to_owned();
    (Proc(child), url, token)
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn create_room(url: &str, token: &str) -> String {
    let v: Value = reqwest::Client::new()
        .post(format!("{url}/_matrix/client/v3/createRoom"))
        .bearer_auth(token)
        .json(&json!({"name": "crier status", "preset": "private_chat"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["room_id"].as_str().expect("room_id").to_owned()
}

/// crier's messages in the room, oldest first.
async fn room_messages(url: &str, token: &str, room: &str) -> Vec<Value> {
    let v: Value = reqwest::Client::new()
        .get(format!(
            "{url}/_matrix/client/v3/rooms/{}/messages?dir=b&limit=100",
            enc(room)
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut msgs: Vec<Value> = v["chunk"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "m.room.message" && e["sender"] == "@crier:localhost")
        .cloned()
        .collect();
    msgs.reverse();
    msgs
}

/// Exactly three messages carrying the three texts, each later one a reply to the one before.
fn assert_one_thread(msgs: &[Value], texts: [&str; 3]) {
    assert_eq!(msgs.len(), 3, "{msgs:#?}");
    for (m, t) in msgs.iter().zip(texts) {
        assert_eq!(m["content"]["msgtype"], "m.text");
        assert!(
            m["content"]["body"].as_str().unwrap().contains(t),
            "{t}: {m}"
        );
    }
    assert!(msgs[0]["content"].get("m.relates_to").is_none());
    for i in 1..3 {
        assert_eq!(
            msgs[i]["content"]["m.relates_to"]["m.in_reply_to"]["event_id"],
            msgs[i - 1]["event_id"],
            "message {} replies to message {i}",
            i + 1
        );
    }
}

fn write_channel(dir: &Path, base: &str, room: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("matrix.toml"),
        format!(
            "kind = \"matrix\"\nbase_url = \"{base}\"\naccess_token_env = \"CRIER_E2E_MATRIX_TOKEN\"\n\
             room_id = \"{room}\"\nrate = \"50/s\"\nretry = [\"1s\", \"1s\", \"2s\"]\nsend_timeout = \"60s\"\n"
        ),
    )
    .unwrap();
}

async fn api(server: &ServeProcess, path: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", server.base()))
        .bearer_auth(server.token())
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

/// Waits until `n` deliveries of the incident are delivered (bounded; no timed assertion).
async fn delivered(server: &ServeProcess, id: &str, n: u64) {
    for _ in 0..600 {
        let v: Value = reqwest::Client::new()
            .get(format!(
                "{}/api/v1/incidents/{id}/deliveries",
                server.base()
            ))
            .bearer_auth(server.token())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null);
        if v["channels"]["matrix"]["delivered"].as_u64() >= Some(n) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{n} deliveries of {id} were not delivered");
}

/// A loopback HTTP proxy in front of Synapse. While `hold` is on, it forwards a send to Synapse
/// and then never answers (reporting it on `held`): the message is stored, crier never hears.
struct Proxy {
    base: String,
    hold: Arc<AtomicBool>,
    held: mpsc::UnboundedReceiver<String>,
    /// Request paths forwarded, in order.
    seen: Arc<Mutex<Vec<String>>>,
}

async fn proxy(upstream: String) -> Proxy {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hold = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (tx, held) = mpsc::unbounded_channel();
    let (h, s) = (hold.clone(), seen.clone());
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let (http, upstream, hold, seen, tx) = (
                http.clone(),
                upstream.clone(),
                h.clone(),
                s.clone(),
                tx.clone(),
            );
            tokio::spawn(async move {
                let mut conn = tokio::io::BufReader::new(sock);
                loop {
                    let mut head = Vec::new();
                    loop {
                        let mut line = String::new();
                        if conn.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        head.push(line.trim_end().to_owned());
                    }
                    let mut parts = head[0].split_whitespace();
                    let (m, p) = (
                        parts.next().unwrap().to_owned(),
                        parts.next().unwrap().to_owned(),
                    );
                    let header = |name: &str| {
                        head.iter().skip(1).find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                        })
                    };
                    let len: usize = header("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0u8; len];
                    conn.read_exact(&mut body).await.unwrap();
                    seen.lock().unwrap().push(format!("{m} {p}"));
                    let mut req = http
                        .request(m.parse().unwrap(), format!("{upstream}{p}"))
                        .body(body);
                    for name in ["authorization", "content-type"] {
                        if let Some(v) = header(name) {
                            req = req.header(name, v);
                        }
                    }
                    let resp = req.send().await.unwrap();
                    let status = resp.status().as_u16();
                    let bytes = resp.bytes().await.unwrap();
                    if hold.load(Ordering::SeqCst) && p.contains("/send/") {
                        let _ = tx.send(p.clone());
                        std::future::pending::<()>().await;
                    }
                    let head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        bytes.len()
                    );
                    let sock = conn.get_mut();
                    if sock.write_all(head.as_bytes()).await.is_err()
                        || sock.write_all(&bytes).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    Proxy {
        base,
        hold,
        held,
        seen,
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Synapse (pip install matrix-synapse); run by scripts/test.sh"]
async fn e2e_matrix_three_updates_thread_in_a_real_room_even_across_kill_9() {
    let work = tempfile::tempdir().unwrap();
    let (_synapse, url, token) = synapse(&work.path().join("synapse"));
    let env = [("CRIER_E2E_MATRIX_TOKEN", token.as_str())];
    let texts = [
        "Payments are failing",
        "Found a faulty load balancer",
        "Payments work again",
    ];

    // 1. Straight through: three updates, one thread.
    let room = create_room(&url, &token).await;
    let channels = work.path().join("channels-a");
    write_channel(&channels, &url, &room);
    let data = work.path().join("data-a");
    let server = ServeProcess::start_env(&data, &channels, None, &env);
    let v = api(
        &server,
        "/api/v1/incidents",
        json!({"title": "Payments down", "impact": "major", "message": texts[0]}),
    )
    .await;
    let id = v["id"].as_str().unwrap().to_owned();
    delivered(&server, &id, 1).await;
    api(
        &server,
        &format!("/api/v1/incidents/{id}/updates"),
        json!({"status": "identified", "message": texts[1]}),
    )
    .await;
    delivered(&server, &id, 2).await;
    api(
        &server,
        &format!("/api/v1/incidents/{id}/resolve"),
        json!({"message": texts[2]}),
    )
    .await;
    delivered(&server, &id, 3).await;
    assert_one_thread(&room_messages(&url, &token, &room).await, texts);
    server.kill9();

    // `crier channels check` against the real homeserver: a good token in the room passes, a
    // wrong one fails, neither is printed.
    for (secret, code, needle) in [
        (token.as_str(), 0, "member of"),
        ("syt_not_a_token", 1, "M_UNKNOWN_TOKEN"),
    ] {
        let o = Command::new(crate::helpers::bin())
            .args(["channels", "check", "matrix", "--channels"])
            .arg(&channels)
            .env("CRIER_E2E_MATRIX_TOKEN", secret)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(code), "{out}");
        assert!(out.contains(needle) && !out.contains(secret), "{out}");
    }

    // 2. Killed between Synapse storing update 2 and crier hearing back.
    let room = create_room(&url, &token).await;
    let mut px = proxy(url.clone()).await;
    let channels = work.path().join("channels-b");
    write_channel(&channels, &px.base, &room);
    let data = work.path().join("data-b");
    let server = ServeProcess::start_env(&data, &channels, None, &env);
    let v = api(
        &server,
        "/api/v1/incidents",
        json!({"title": "Payments down", "impact": "major", "message": texts[0]}),
    )
    .await;
    let id = v["id"].as_str().unwrap().to_owned();
    delivered(&server, &id, 1).await;
    px.hold.store(true, Ordering::SeqCst);
    api(
        &server,
        &format!("/api/v1/incidents/{id}/updates"),
        json!({"status": "identified", "message": texts[1]}),
    )
    .await;
    let held = tokio::time::timeout(Duration::from_secs(60), px.held.recv())
        .await
        .expect("crier did not send update 2")
        .unwrap();
    // Synapse has it; crier has not heard back.
    assert_eq!(room_messages(&url, &token, &room).await.len(), 2);
    server.kill9();
    px.hold.store(false, Ordering::SeqCst);

    let server = ServeProcess::start_env(&data, &channels, None, &env);
    delivered(&server, &id, 2).await;
    api(
        &server,
        &format!("/api/v1/incidents/{id}/resolve"),
        json!({"message": texts[2]}),
    )
    .await;
    delivered(&server, &id, 3).await;
    let sends: Vec<String> = px
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.starts_with("PUT "))
        .cloned()
        .collect();
    assert_eq!(
        sends.iter().filter(|s| s.ends_with(&held)).count(),
        2,
        "update 2 was sent again after the restart, with the same txnId: {sends:#?}"
    );
    assert_eq!(sends.len(), 4, "{sends:#?}");
    assert_one_thread(&room_messages(&url, &token, &room).await, texts);
    drop(server);
}
