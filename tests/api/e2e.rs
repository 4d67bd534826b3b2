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
use tokio::task::block_in_place;

pub struct Proc(Child);

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

pub fn provider_sim() -> (Proc, String) {
    let mut cmd = Command::new(example("provider_sim"));
    cmd.args(["--bind", "127.0.0.1:0", "--seed", "7"]);
    let (p, line) = start(cmd, "provider_sim listening on ");
    let url = line.rsplit(' ').next().unwrap().to_owned();
    (p, url)
}

pub(crate) fn smtp_server(dir: &Path) -> (Proc, u16, PathBuf) {
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

pub async fn sim_stats(sim: &str) -> Value {
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

/// How a fault-matrix row interrupts crier mid-fan-out, if at all.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Stop {
    /// crier runs through the fault.
    None,
    /// SIGTERM (graceful: in-flight sends finish and are recorded), then a restart.
    Sigterm,
    /// SIGKILL (a crash), then a restart.
    Kill9,
}

/// One row of the fault matrix: what the emulator does, how crier is interrupted, which fault
/// counter of the emulator must have fired (so the row cannot pass without its fault), and how
/// many duplicates the row allows.
struct FaultRow {
    name: &'static str,
    faults: Value,
    stop: Stop,
    counter: &'static str,
    max_duplicates: u64,
}

const MATRIX_SUBSCRIBERS: usize = 300;
/// The channel's concurrency: the sends in flight at once, so the most a crash can expose to a
/// resend.
const MATRIX_CONCURRENCY: u64 = 8;

fn fault_matrix() -> Vec<FaultRow> {
    let c = MATRIX_CONCURRENCY;
    vec![
        FaultRow {
            name: "provider 5xx",
            faults: json!({"error_rate": 0.3}),
            stop: Stop::None,
            counter: "error",
            max_duplicates: 0,
        },
        FaultRow {
            name: "429 with Retry-After",
            faults: json!({"burst_429": {"every": 40, "length": 15, "retry_after": "1"}}),
            stop: Stop::None,
            counter: "throttle",
            max_duplicates: 0,
        },
        FaultRow {
            name: "hangs (send_timeout)",
            faults: json!({"hang_rate": 0.05}),
            stop: Stop::None,
            counter: "hang",
            max_duplicates: 0,
        },
        FaultRow {
            name: "connection resets",
            faults: json!({"reset_rate": 0.2}),
            stop: Stop::None,
            counter: "reset",
            max_duplicates: 0,
        },
        FaultRow {
            name: "SIGTERM mid-fan-out, restart",
            faults: json!({"latency_ms": 30, "error_rate": 0.1}),
            stop: Stop::Sigterm,
            counter: "error",
            // A graceful stop records every in-flight send before it exits.
            max_duplicates: 0,
        },
        FaultRow {
            name: "kill -9 mid-fan-out, restart",
            faults: json!({"latency_ms": 30, "error_rate": 0.1}),
            stop: Stop::Kill9,
            counter: "error",
            max_duplicates: c,
        },
    ]
}

/// Polls the delivery status until `ok` holds, for up to `secs` seconds.
async fn wait_status<F: Fn(&Value) -> bool>(
    server: &ServeProcess,
    id: &str,
    secs: u64,
    what: &str,
    ok: F,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..secs * 10 {
        last = call(
            server,
            reqwest::Method::GET,
            &format!("/api/v1/incidents/{id}/deliveries"),
            None,
            None,
        )
        .await;
        if ok(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out after {secs} s waiting for {what}; last status: {last}");
}

/// Runs one row: 300 SMS subscribers, one incident, the row's fault from the start, the row's
/// interruption once a third has been accepted; then asserts nothing was lost, duplicates stay
/// within the row's bound, and crier's delivery status agrees with what the emulator counted.
async fn fault_row(row: &FaultRow) -> String {
    let n = MATRIX_SUBSCRIBERS as u64;
    let dir = tempfile::tempdir().unwrap();
    let (_sim, sim) = block_in_place(provider_sim);
    let r = reqwest::Client::new()
        .post(format!("{sim}/faults"))
        .json(&row.faults)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}: /faults refused", row.name);
    let channels = dir.path().join("channels");
    // A short retry schedule (Retry-After still wins when later), enough attempts that a 30 %
    // fault rate cannot exhaust it, and a send timeout that gives up on a hang quickly.
    let retry = std::iter::repeat_n("\"300ms\"", 3)
        .chain(std::iter::repeat_n("\"1s\"", 14))
        .collect::<Vec<_>>()
        .join(", ");
    write(
        &channels.join("sms.toml"),
        &sms_channel(
            &sim,
            &format!(
                "concurrency = {MATRIX_CONCURRENCY}\nsend_timeout = \"1s\"\nretry = [{retry}]\n"
            ),
        ),
    );
    let data = dir.path().join("data");
    let start = || ServeProcess::start_env(&data, &channels, None, &SMTP_ENV);
    let mut server = block_in_place(start);
    let mut csv = String::from("phone\n");
    for i in 0..MATRIX_SUBSCRIBERS {
        csv.push_str(&format!("+35850{i:07}\n"));
    }
    let r = call(
        &server,
        reqwest::Method::POST,
        "/api/v1/subscribers/import",
        None,
        Some(csv),
    )
    .await;
    assert_eq!(r["added"], n, "{}", row.name);
    let v = call(
        &server,
        reqwest::Method::POST,
        "/api/v1/incidents",
        Some(json!({"title": "Baggage system down", "impact": "major",
                    "message": "Checked baggage is delayed at HEL."})),
        None,
    )
    .await;
    let id = v["id"].as_str().unwrap().to_owned();

    let mut note = String::new();
    if row.stop != Stop::None {
        let mut at_stop = 0;
        for _ in 0..6000 {
            at_stop = sim_stats(&sim).await["accepted"]["twilio"]
                .as_u64()
                .unwrap();
            if at_stop >= n / 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        match row.stop {
            Stop::Sigterm => {
                let status = block_in_place(|| server.terminate());
                assert!(status.success(), "{}: SIGTERM exit {status}", row.name);
            }
            Stop::Kill9 => block_in_place(|| server.kill9()),
            Stop::None => unreachable!(),
        }
        assert!(
            at_stop < n,
            "{}: the fan-out finished before the stop; the row proves nothing",
            row.name
        );
        note = format!(", stopped after {at_stop} accepted");
        server = block_in_place(start);
    }
    let st = wait_status(&server, &id, 170, "every delivery final", |v| {
        v["complete"] == true && v["channels"]["sms"]["total"] == n && {
            let c = &v["channels"]["sms"];
            c["pending"] == 0 && c["in_flight"] == 0
        }
    })
    .await;
    let sms = &st["channels"]["sms"];
    let stats = sim_stats(&sim).await;
    let ctx = format!("{}: crier {st}\nemulator {stats}", row.name);
    // Nothing lost: every subscriber delivered, by crier's account and by the emulator's.
    assert_eq!(sms["delivered"], n, "{ctx}");
    assert_eq!(sms["dead"], 0, "{ctx}");
    assert_eq!(sms["rejected"], 0, "{ctx}");
    assert_eq!(stats["unique_recipients"]["twilio"], n, "{ctx}");
    // Duplicates within the row's bound, and the emulator's counts add up.
    let dups = stats["duplicates"]["twilio"].as_u64().unwrap();
    assert!(
        dups <= row.max_duplicates,
        "{dups} duplicates, more than {}: {ctx}",
        row.max_duplicates
    );
    assert_eq!(
        stats["accepted"]["twilio"].as_u64(),
        Some(n + dups),
        "{ctx}"
    );
    // The row's fault really happened (so the row cannot pass without it).
    let fired = stats["faults"][row.counter].as_u64().unwrap();
    assert!(fired > 0, "no {} fault fired: {ctx}", row.counter);
    format!(
        "{}: {n} delivered, {dups} duplicate(s), {fired} {} fault(s){note}",
        row.name, row.counter
    )
}

/// The fault matrix: each row its own emulator and crier, all rows at once (they mostly wait on
/// retry delays). A failing row is named in the panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "e2e: needs the built examples; run by scripts/test.sh"]
async fn e2e_fault_matrix_loses_nothing_and_status_matches_the_provider() {
    let rows = fault_matrix();
    let mut tasks = Vec::new();
    for row in rows {
        tasks.push((row.name, tokio::spawn(async move { fault_row(&row).await })));
    }
    let mut failed = Vec::new();
    for (name, t) in tasks {
        match t.await {
            Ok(line) => eprintln!("fault matrix: {line}"),
            Err(e) => {
                let msg = e
                    .try_into_panic()
                    .ok()
                    .and_then(|p| {
                        p.downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    })
                    .unwrap_or_default();
                failed.push(format!("{name}: {msg}"));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "fault matrix rows failed:\n{}",
        failed.join("\n\n")
    );
}
