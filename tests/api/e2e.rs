//! End-to-end tests against real server processes: the crier binary, a real SMTP server
//! (aiosmtpd with STARTTLS and AUTH, `tests/e2e/smtp_server.py`) and the provider emulator
//! (`examples/provider_sim.rs`). They need `pip install aiosmtpd` and the examples built, so
//! they are `#[ignore]`d in a bare `cargo test`; `scripts/test.sh` installs what they need and
//! runs them with `--ignored`.

use crate::helpers::ServeProcess;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a process and returns it with the first stdout line containing `marker`.
fn start(mut cmd: Command, marker: &str) -> (Proc, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let out = child.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    let line = loop {
        match lines.next() {
            Some(Ok(l)) if l.contains(marker) => break l,
            Some(Ok(_)) => continue,
            _ => panic!("{cmd:?} exited before printing {marker:?}"),
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (Proc(child), line)
}

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        p.exists(),
        "{} is missing: build the examples (cargo build --examples)",
        p.display()
    );
    p
}

fn provider_sim() -> (Proc, String) {
    let mut cmd = Command::new(example("provider_sim"));
    cmd.args(["--bind", "127.0.0.1:0", "--seed", "7"]);
    let (p, line) = start(cmd, "provider_sim listening on ");
    let url = line.rsplit(' ').next().unwrap().to_owned();
    (p, url)
}

fn smtp_server(dir: &Path) -> (Proc, u16, PathBuf) {
    let mut cmd = Command::new("python3");
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/e2e/smtp_server.py"
    ))
    .arg(dir)
    .args(["crier-e2e", "s3cret-pass"]);
    let (p, line) = start(cmd, "smtp_server listening on ");
    // "smtp_server listening on PORT ca=PATH"
    let mut words = line.split_whitespace().skip(3);
    let port = words.next().unwrap().parse().unwrap();
    let ca = PathBuf::from(words.next().unwrap().trim_start_matches("ca="));
    (p, port, ca)
}

async fn call(
    server: &ServeProcess,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    csv: Option<String>,
) -> Value {
    let client = reqwest::Client::new();
    let mut req = client
        .request(method, format!("{}{path}", server.base()))
        .bearer_auth(server.token());
    if let Some(b) = body {
        req = req.json(&b);
    }
    if let Some(c) = csv {
        req = req.header("content-type", "text/csv").body(c);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

async fn sim_stats(sim: &str) -> Value {
    reqwest::get(format!("{sim}/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const SMTP_ENV: [(&str, &str); 4] = [
    ("E2E_SMTP_USER", "crier-e2e"),
    ("E2E_SMTP_PASS", "s3cret-pass"),
    ("E2E_TWILIO_SID", "AC0123456789"),
    ("E2E_TWILIO_TOKEN", "twilio-token"),
];

fn email_channel(port: u16, ca: &Path) -> String {
    format!(
        "kind = \"email\"\nhost = \"localhost\"\nport = {port}\ntls = \"starttls\"\n\
         username_env = \"E2E_SMTP_USER\"\npassword_env = \"E2E_SMTP_PASS\"\n\
         from = \"Finnair status <status@example.com>\"\nca_file = \"{}\"\nsend_timeout = \"10s\"\n",
        ca.display()
    )
}

fn sms_channel(sim: &str, extra: &str) -> String {
    format!(
        "kind = \"twilio\"\naccount_sid_env = \"E2E_TWILIO_SID\"\nauth_token_env = \"E2E_TWILIO_TOKEN\"\n\
         from = \"+15005550006\"\nbase_url = \"{sim}\"\nrate = \"100000/s\"\n{extra}"
    )
}

async fn wait_until<F: Fn(&Value) -> bool>(
    server: &ServeProcess,
    id: &str,
    what: &str,
    ok: F,
) -> Value {
    for _ in 0..1200 {
        let v = call(
            server,
            reqwest::Method::GET,
            &format!("/api/v1/incidents/{id}/deliveries"),
            None,
            None,
        )
        .await;
        if ok(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
#[ignore = "e2e: needs aiosmtpd and the built examples; run by scripts/test.sh"]
async fn e2e_email_over_starttls_with_auth_reaches_every_subscriber_while_sms_fails() {
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join("mail");
    let (_smtp, port, ca) = smtp_server(&mail);
    let (_sim, sim) = provider_sim();
    // The SMS provider fails every request: email must still complete.
    reqwest::Client::new()
        .post(format!("{sim}/faults"))
        .json(&json!({"error_rate": 1.0}))
        .send()
        .await
        .unwrap();
    let channels = dir.path().join("channels");
    write(&channels.join("email.toml"), &email_channel(port, &ca));
    write(
        &channels.join("sms.toml"),
        &sms_channel(&sim, "retry = [\"1h\"]\n"),
    );
    let config = dir.path().join("crier.toml");
    write(&config, "org_name = \"Finnair\"\npublic_url = \"https://status.example.com\"\ntimezone = \"Europe/Helsinki\"\n");
    let server = ServeProcess::start_env(
        &dir.path().join("data"),
        &channels,
        Some(&config),
        &SMTP_ENV,
    );

    let csv = "email,phone,locale\nanna@example.com,,fi\nbo@example.com,,sv\ncarl@example.com,,en\n,+358401234567,fi\n";
    call(
        &server,
        reqwest::Method::POST,
        "/api/v1/subscribers/import",
        None,
        Some(csv.into()),
    )
    .await;
    let v = call(
        &server,
        reqwest::Method::POST,
        "/api/v1/incidents",
        Some(json!({"title": "Check-in delays", "impact": "major",
                    "body": {"en": "We are investigating <slow> check-in.", "fi": "Selvitämme hidasta lähtöselvitystä.", "sv": "Vi undersöker."}})),
        None,
    )
    .await;
    let id = v["id"].as_str().unwrap().to_owned();
    let st = wait_until(&server, &id, "3 emails delivered", |v| {
        v["channels"]["email"]["delivered"] == 3
    })
    .await;
    assert_eq!(st["channels"]["sms"]["delivered"], 0, "{st}");
    assert!(
        st["channels"]["sms"]["retrying"].as_u64().unwrap() >= 1,
        "SMS keeps failing: {st}"
    );

    let mut rcpts: Vec<String> = Vec::new();
    let mut emls: Vec<String> = Vec::new();
    for e in std::fs::read_dir(&mail).unwrap() {
        let p = e.unwrap().path();
        match p.extension().and_then(|x| x.to_str()) {
            Some("rcpt") => rcpts.push(std::fs::read_to_string(&p).unwrap().trim().to_owned()),
            Some("eml") => emls.push(std::fs::read_to_string(&p).unwrap()),
            _ => {}
        }
    }
    rcpts.sort();
    assert_eq!(
        rcpts,
        ["anna@example.com", "bo@example.com", "carl@example.com"],
        "each subscriber exactly once"
    );
    assert_eq!(emls.len(), 3);
    for m in &emls {
        let head = &m[..m.find("\r\n\r\n").unwrap()];
        assert!(
            head.contains("From: \"Finnair status\" <status@example.com>")
                || head.contains("From: Finnair status <status@example.com>"),
            "{head}"
        );
        assert!(head.contains("Message-ID: <"), "{head}");
        assert!(head.contains("@example.com>"), "{head}");
        assert!(
            head.contains("List-Unsubscribe: <https://status.example.com/api/v1/unsubscribe/"),
            "{head}"
        );
        assert!(
            head.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
            "{head}"
        );
        assert!(head.contains("multipart/alternative"), "{head}");
        assert!(m.contains("Content-Type: text/plain"), "{m}");
        assert!(m.contains("Content-Type: text/html"), "{m}");
    }
    let anna = emls
        .iter()
        .find(|m| m.contains("To: anna@example.com"))
        .expect("anna's mail");
    assert!(
        anna.contains("Subject: =?utf-8?") || anna.contains("Uusi h"),
        "Finnish subject: {anna}"
    );
    let carl = emls
        .iter()
        .find(|m| m.contains("To: carl@example.com"))
        .unwrap();
    assert!(
        carl.contains("&lt;slow&gt;"),
        "HTML part escapes user text: {carl}"
    );
    // Times in the configured zone, named.
    assert!(carl.contains("EET") || carl.contains("EEST"), "{carl}");
}

#[tokio::test]
#[ignore = "e2e: needs the built examples; run by scripts/test.sh"]
async fn e2e_kill_9_mid_fanout_every_subscriber_receives_duplicates_bounded() {
    const N: usize = 10_000;
    const CONCURRENCY: u64 = 32;
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
    write(
        &channels.join("sms.toml"),
        &sms_channel(&sim, &format!("concurrency = {CONCURRENCY}\n")),
    );
    let data = dir.path().join("data");
    let server = ServeProcess::start_env(&data, &channels, None, &SMTP_ENV);
    let mut csv = String::from("phone\n");
    for i in 0..N {
        csv.push_str(&format!("+35840{i:07}\n"));
    }
    let r = call(
        &server,
        reqwest::Method::POST,
        "/api/v1/subscribers/import",
        None,
        Some(csv),
    )
    .await;
    assert_eq!(r["added"], N);
    let v = call(
        &server,
        reqwest::Method::POST,
        "/api/v1/incidents",
        Some(json!({"title": "Volcanic ash", "impact": "critical", "message": "Flights are grounded."})),
        None,
    )
    .await;
    let id = v["id"].as_str().unwrap().to_owned();
    let mut at_kill = 0;
    for _ in 0..6000 {
        at_kill = sim_stats(&sim).await["accepted"]["twilio"]
            .as_u64()
            .unwrap();
        if at_kill >= (N / 4) as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill9();
    assert!(
        at_kill < N as u64,
        "the fan-out finished before the kill; the test proves nothing"
    );

    let server = ServeProcess::start_env(&data, &channels, None, &SMTP_ENV);
    wait_until(&server, &id, "all deliveries final", |v| {
        v["complete"] == true && v["channels"]["sms"]["total"] == N
    })
    .await;
    let st = sim_stats(&sim).await;
    assert_eq!(
        st["unique_recipients"]["twilio"], N,
        "every subscriber received it: {st}"
    );
    let dups = st["duplicates"]["twilio"].as_u64().unwrap();
    assert!(
        dups <= CONCURRENCY,
        "{dups} duplicates, more than the {CONCURRENCY} that can be in flight: {st}"
    );
    eprintln!("kill -9 after {at_kill} of {N} accepted; after restart all {N} received, {dups} duplicate(s)");
}
