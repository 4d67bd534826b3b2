//! Benchmark: SMS fan-out of one incident to many subscribers, through crier's Twilio adapter and
//! the provider emulator (`examples/provider_sim.rs`): throughput, peak memory, and latency.
//!
//! Run (both release binaries must be built first; `cargo run --example` rebuilds neither
//! `target/release/crier` nor `target/release/examples/provider_sim`):
//!
//! ```text
//! cargo build --release --examples
//! cargo run --release --example bench_fanout -- --mode throughput --subscribers 100000
//! cargo run --release --example bench_fanout -- --mode rss --subscribers 1000000
//! cargo run --release --example bench_fanout -- --mode latency --runs 50
//! ```
//!
//! Set-up, every mode: a fresh temporary dir holds crier's data dir, a channels dir with one file,
//! `sms.toml` (`kind = "twilio"`, `base_url` = the emulator, `rate = "100000/s"`, `concurrency =
//! 256`), and both programs' logs. `provider_sim --bind 127.0.0.1:0 --twilio-auth-token secret`
//! and `crier serve --data DIR --bind 127.0.0.1:0 --channels CHDIR --templates templates/` (with
//! `TWILIO_ACCOUNT_SID` / `TWILIO_AUTH_TOKEN` set) run as child processes; their ports are read
//! from their "listening on" lines. Subscribers are imported with `POST
//! /api/v1/subscribers/import` in CSV batches (`--batch`, default 200,000 rows in rss mode and
//! 50,000 otherwise); phone numbers are `+3584` followed by 8 digits.
//!
//! What each mode measures:
//!
//! - `throughput` (default 100,000 subscribers): the time from the `201 Created` answer to `POST
//!   /api/v1/incidents` until the emulator has accepted one SMS per subscriber (its `GET /stats`,
//!   polled every 100 ms); deliveries/s = subscribers / that time. Then `wrk -t2 -c64 -d5s`
//!   posts Twilio-shaped form requests (a Lua script, a distinct `To` per request) to a second,
//!   fresh emulator, with crier stopped: the emulator's raw capacity, printed beside it (if
//!   `wrk` is missing, the program says how to install it: `apt-get install -y wrk`). Then a
//!   bare reqwest client in this process (built like crier's, 2 runtime workers, the same
//!   concurrency) posts `--ceiling-requests` of the same requests to a third emulator: what
//!   any reqwest-based sender can reach here with nothing else to do.
//!   Target: at least 10,000 deliveries/s.
//! - `rss` (default 1,000,000 subscribers in 200,000-row requests): the same fan-out, run as users
//!   run crier: one server process imports the subscribers and then fans out to them, without a
//!   restart. Reported: crier's VmHWM (the kernel's high-water mark) and VmRSS just after the last
//!   import request was answered, VmRSS sampled every 500 ms (peak per phase: import, fan-out),
//!   and VmHWM when the last SMS has been accepted, which covers the whole run.
//!   `--restart-after-import` restarts crier on the same data dir between import and incident
//!   instead, so that VmHWM covers expanding and sending only. Target: VmHWM under 256 MiB.
//! - `latency` (1 subscriber, `--runs` timed runs after `--warmup` untimed ones): per run, the
//!   time from sending `POST /api/v1/incidents` until the emulator's accepted count goes up
//!   (`/stats` polled every 1 ms). Every incident has a distinct message, so the emulator never
//!   sees the same (recipient, body) twice. Target: median under 50 ms. Percentiles are
//!   nearest-rank.
//!
//! Every run is checked: the emulator must have accepted exactly one SMS per subscriber and per
//! incident, with 0 duplicates and 0 rejections, and crier's `GET
//! /api/v1/incidents/{id}/deliveries` must report all of them delivered and none dead or rejected.
//! A failed check, or a fan-out not done within `--timeout` seconds (default 600), exits non-zero.
//! A missed target is reported but is not a failure. Client, crier and emulator share the
//! machine; the CPU columns give each process's CPU time during the timed part, as a percentage of
//! one core (Linux /proc). The child processes are killed when this program exits, also on error
//! paths (a guard with `Drop`).

mod common;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use common::{
    cpu_time, json_of, load_average, ms, parse_stat, percentile, sim_stats, target_binary, Proc,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

const ACCOUNT_SID: &str = "AC0123";
const AUTH_TOKEN: &str = "secret";
const FROM: &str = "+15005550006";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Deliveries per second to N subscribers, and the emulator's raw capacity with wrk.
    Throughput,
    /// crier's peak resident memory while fanning out to N subscribers.
    Rss,
    /// Time from opening an incident to the emulator accepting the SMS, 1 subscriber.
    Latency,
}

#[derive(Parser, Debug)]
#[command(
    about = "SMS fan-out through the Twilio adapter to provider_sim: throughput, RSS, latency"
)]
struct Args {
    #[arg(long, value_enum, default_value_t = Mode::Throughput)]
    mode: Mode,
    /// Subscribers to import (default: 100000 for throughput, 1000000 for rss, 1 for latency).
    #[arg(long)]
    subscribers: Option<usize>,
    /// Timed runs (latency mode).
    #[arg(long, default_value_t = 50)]
    runs: usize,
    /// Untimed runs before the timed ones (latency mode).
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Rows per import request (default: 200000 in rss mode, 50000 otherwise).
    #[arg(long)]
    batch: Option<usize>,
    /// Seconds a fan-out may take before the run fails.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// The channel's `rate`.
    #[arg(long, default_value = "100000/s")]
    rate: String,
    /// The channel's `concurrency`.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// rss mode: restart crier on the same data dir between import and fan-out, so that its
    /// VmHWM covers the fan-out only (by default one process does both, as users run it).
    #[arg(long)]
    restart_after_import: bool,
    /// Do not poll the public status page `/` during the fan-out (builds without a status page,
    /// or to measure the fan-out without that reader).
    #[arg(long)]
    no_page_probe: bool,
    /// Also measure the console's live preview during the fan-out: five more channels
    /// (mastodon, bluesky, slack, discord, email; pointed at a closed port, so their one post
    /// each is retried in the background and no email subscriber exists), a responder signed in
    /// through `/console/login`, and `POST /console/preview?fragment` for all six channels every
    /// 50 ms, its Finnish text one keystroke longer each time (issue 13: p99 < 100 ms).
    #[arg(long)]
    preview_probe: bool,
    /// Extra environment for crier, KEY=VALUE (repeatable), e.g. MALLOC_ARENA_MAX=2.
    #[arg(long, value_name = "KEY=VALUE")]
    crier_env: Vec<String>,
    /// Requests of the bare-reqwest-client ceiling run against the emulator (throughput mode);
    /// 0 skips it.
    #[arg(long, default_value_t = 50_000)]
    ceiling_requests: usize,
    /// Length of the wrk run against the emulator (throughput mode); 0 skips it.
    #[arg(long, default_value_t = 5)]
    wrk_seconds: u64,
    /// The crier binary (default: target/release/crier).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// The emulator binary (default: target/release/examples/provider_sim).
    #[arg(long)]
    sim_bin: Option<PathBuf>,
}

// ---------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------

fn start_sim(bin: &Path, dir: &Path, name: &str) -> Result<Proc> {
    let mut cmd = Command::new(bin);
    cmd.args(["--bind", "127.0.0.1:0", "--twilio-auth-token", AUTH_TOKEN])
        .current_dir(dir);
    Proc::start(cmd, &dir.join(format!("{name}.log")), "provider_sim")
}

/// crier with one Twilio channel pointed at the emulator, on a fresh data dir under `dir`.
struct Crier {
    proc: Proc,
    token: String,
}

fn start_crier(bin: &Path, dir: &Path, sim_url: &str, args: &Args) -> Result<Crier> {
    let data = dir.join("data");
    let channels = dir.join("channels");
    std::fs::create_dir_all(&channels)?;
    let sms = format!(
        "kind = \"twilio\"\n\
         account_sid_env = \"TWILIO_ACCOUNT_SID\"\n\
         auth_token_env = \"TWILIO_AUTH_TOKEN\"\n\
         from = \"{FROM}\"\n\
         base_url = \"{sim_url}\"\n\
         rate = \"{}\"\n\
         concurrency = {}\n\
         sms_max_segments = 3\n",
        args.rate, args.concurrency
    );
    std::fs::write(channels.join("sms.toml"), sms)?;
    if args.preview_probe {
        for (name, body) in PREVIEW_CHANNELS {
            std::fs::write(channels.join(format!("{name}.toml")), body)?;
        }
    }
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let mut cmd = Command::new(bin);
    cmd.arg("serve")
        .arg("--data")
        .arg(&data)
        .args(["--bind", "127.0.0.1:0"])
        .arg("--channels")
        .arg(&channels)
        .arg("--templates")
        .arg(&templates)
        // No stray ./crier.toml, and no inherited settings or admin token: the server generates
        // <data>/admin.token.
        .current_dir(dir)
        .env_remove("CRIER_ADMIN_TOKEN")
        .env_remove("CRIER_CONFIG")
        .env_remove("CRIER_BIND")
        .env_remove("CRIER_DATA")
        .env_remove("CRIER_CHANNELS")
        .env_remove("CRIER_TEMPLATES")
        .env("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
        .env("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
        .env("BENCH_SECRET", "not-a-real-secret")
        .env("BENCH_HOOK", "http://127.0.0.1:9/hook")
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info");
    for kv in &args.crier_env {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--crier-env {kv}: expected KEY=VALUE"))?;
        cmd.env(k, v);
    }
    let proc = Proc::start(cmd, &dir.join("crier.log"), "crier serve")?;
    let log = std::fs::read_to_string(&proc.log).unwrap_or_default();
    if log.contains("skipped") {
        bail!("crier skipped a channel; its log:\n{log}");
    }
    let token = crier::token::read_admin_token(&data)?
        .with_context(|| format!("crier wrote no admin token in {}", data.display()))?;
    Ok(Crier { proc, token })
}

/// The five channels beside SMS that `--preview-probe` previews (a closed port as their server).
const PREVIEW_CHANNELS: [(&str, &str); 5] = [
    (
        "mastodon",
        "kind = \"mastodon\"\nbase_url = \"http://127.0.0.1:9\"\ntoken_env = \"BENCH_SECRET\"\n",
    ),
    (
        "bluesky",
        "kind = \"bluesky\"\nidentifier = \"status.example.com\"\napp_password_env = \"BENCH_SECRET\"\nbase_url = \"http://127.0.0.1:9\"\n",
    ),
    ("slack", "kind = \"slack\"\nwebhook_url_env = \"BENCH_HOOK\"\n"),
    ("discord", "kind = \"discord\"\nwebhook_url_env = \"BENCH_HOOK\"\n"),
    (
        "email",
        "kind = \"email\"\nhost = \"127.0.0.1\"\nport = 9\ntls = \"plain\"\nfrom = \"Status <status@example.com>\"\n",
    ),
];

/// A program on PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

// ---------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------

/// CPU time per thread name (threads of the same name summed).
fn thread_cpu(pid: u32) -> BTreeMap<String, Duration> {
    let mut map = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return map;
    };
    for entry in dir.flatten() {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        if let Some((comm, t)) = parse_stat(&stat) {
            *map.entry(comm).or_insert(Duration::ZERO) += t;
        }
    }
    map
}

/// A `kB` field of /proc/PID/status (VmRSS, VmHWM), in KiB.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Samples a process's VmRSS every 500 ms on its own thread until dropped.
struct RssSampler {
    samples: Arc<Mutex<Vec<(Instant, u64)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (samples.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                if let Some(kib) = status_kib(pid, "VmRSS") {
                    s.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push((Instant::now(), kib));
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        RssSampler {
            samples,
            stop,
            thread: Some(thread),
        }
    }

    /// The highest sample taken in `[from, to)`, in KiB.
    fn peak(&self, from: Instant, to: Instant) -> Option<u64> {
        self.samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(t, _)| *t >= from && *t < to)
            .map(|(_, k)| *k)
            .max()
    }

    fn count(&self) -> usize {
        self.samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Total size of the files under a directory, in bytes.
fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                dir_size(&p)
            } else {
                e.metadata().map_or(0, |m| m.len())
            }
        })
        .sum()
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

/// Subscriber number `i` as E.164: `+3584` and 8 digits (up to 100 million numbers).
fn phone(i: usize) -> String {
    format!("+3584{i:08}")
}

/// Imports subscribers `0..n` in batches; returns the time it took.
async fn import(http: &reqwest::Client, crier: &Crier, n: usize, batch: usize) -> Result<Duration> {
    let t0 = Instant::now();
    let mut done = 0;
    let mut last_print = Instant::now();
    while done < n {
        let k = batch.min(n - done);
        let mut body = String::with_capacity(6 + k * 14);
        body.push_str("phone\n");
        for i in done..done + k {
            body.push_str(&phone(i));
            body.push('\n');
        }
        let resp = http
            .post(format!("{}/api/v1/subscribers/import", crier.proc.url))
            .bearer_auth(&crier.token)
            .header(reqwest::header::CONTENT_TYPE, "text/csv")
            .body(body)
            .send()
            .await
            .context("importing subscribers failed")?;
        let v = json_of(resp, "POST /api/v1/subscribers/import", StatusCode::OK).await?;
        let added = v.get("added").and_then(Value::as_u64);
        if added != Some(k as u64) {
            bail!("importing {k} subscribers added {added:?}: {v}");
        }
        done += k;
        if n > batch && (last_print.elapsed() >= Duration::from_secs(5) || done == n) {
            last_print = Instant::now();
            let secs = t0.elapsed().as_secs_f64();
            eprintln!(
                "  imported {done}/{n} subscribers in {secs:.1} s ({:.0}/s)",
                done as f64 / secs
            );
        }
    }
    Ok(t0.elapsed())
}

/// Opens an incident; returns its id.
async fn open_incident(http: &reqwest::Client, crier: &Crier, message: &str) -> Result<String> {
    let resp = http
        .post(format!("{}/api/v1/incidents", crier.proc.url))
        .bearer_auth(&crier.token)
        .json(&json!({
            "title": "Check-in delays at Helsinki Airport",
            "impact": "major",
            "message": message,
        }))
        .send()
        .await
        .context("opening an incident failed")?;
    let v = json_of(resp, "POST /api/v1/incidents", StatusCode::CREATED).await?;
    v.get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("no id in the answer: {v}"))
}

/// `GET /api/v1/incidents/{id}/deliveries` (scans all deliveries of the incident).
async fn delivery_status(http: &reqwest::Client, crier: &Crier, id: &str) -> Result<Value> {
    let resp = http
        .get(format!(
            "{}/api/v1/incidents/{id}/deliveries",
            crier.proc.url
        ))
        .bearer_auth(&crier.token)
        .send()
        .await?;
    json_of(
        resp,
        "GET /api/v1/incidents/{id}/deliveries",
        StatusCode::OK,
    )
    .await
}

/// Waits until crier reports the incident's SMS deliveries complete; checks they all succeeded.
async fn check_deliveries(
    http: &reqwest::Client,
    crier: &Crier,
    id: &str,
    want: u64,
) -> Result<Value> {
    let started = Instant::now();
    loop {
        let v = delivery_status(http, crier, id).await?;
        let sms = v.pointer("/channels/sms").cloned().unwrap_or(Value::Null);
        let n = |k: &str| sms.get(k).and_then(Value::as_u64).unwrap_or(0);
        let complete = v.get("complete").and_then(Value::as_bool) == Some(true);
        if complete || n("delivered") >= want {
            if n("delivered") != want || n("dead") + n("rejected") > 0 || n("total") != want {
                bail!("incident {id}: expected {want} delivered SMS, crier reports {sms}");
            }
            return Ok(sms);
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("incident {id}: deliveries not complete 120 s after the emulator accepted them all: {sms}");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// crier's mean send time through the sms channel, from /metrics.
async fn mean_send_ms(http: &reqwest::Client, crier: &Crier) -> Result<Option<f64>> {
    let text = http
        .get(format!("{}/metrics", crier.proc.url))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let value = |name: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
    };
    Ok(
        match (
            value("crier_send_seconds_sum{channel=\"sms\"}"),
            value("crier_send_seconds_count{channel=\"sms\"}"),
        ) {
            (Some(sum), Some(count)) if count > 0.0 => Some(1000.0 * sum / count),
            _ => None,
        },
    )
}

// ---------------------------------------------------------------------------
// Fan-out (throughput and rss modes)
// ---------------------------------------------------------------------------

struct FanOut {
    /// Latencies of the API probe during the fan-out, sorted (see [`ApiProbe`]).
    api: Vec<Duration>,
    /// Latencies of the public status page `/` during the fan-out, sorted (the same probe,
    /// no token).
    page: Vec<Duration>,
    preview: Vec<Duration>,
    subscribers: usize,
    import: Duration,
    to_201: Duration,
    first: Option<Duration>,
    elapsed: Duration,
    crier_cpu: Option<f64>,
    sim_cpu: Option<f64>,
    client_cpu: Option<f64>,
    threads: Vec<(String, f64)>,
    mean_send_ms: Option<f64>,
    rss_import_kib: Option<u64>,
    import_hwm_kib: Option<u64>,
    import_rss_kib: Option<u64>,
    restarted: bool,
    rss_start_kib: Option<u64>,
    rss_fanout_kib: Option<u64>,
    hwm_kib: Option<u64>,
    rss_end_kib: Option<u64>,
    hwm_after_scan_kib: Option<u64>,
    samples: usize,
    data_bytes: u64,
    duplicates: u64,
}

impl FanOut {
    fn per_second(&self) -> f64 {
        self.subscribers as f64 / self.elapsed.as_secs_f64()
    }
}

fn share(a: Option<Duration>, b: Option<Duration>, over: Duration) -> Option<f64> {
    Some(100.0 * b?.saturating_sub(a?).as_secs_f64() / over.as_secs_f64())
}

async fn fan_out(args: &Args, bins: &Bins, n: usize) -> Result<FanOut> {
    let dir = tempfile::Builder::new()
        .prefix("crier-bench-fanout-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let sim = start_sim(&bins.sim, dir.path(), "provider_sim")?;
    let mut crier = start_crier(&bins.crier, dir.path(), &sim.url, args)?;
    let with_logs = |e: anyhow::Error, crier: &Crier| {
        e.context(format!(
            "last lines of crier's log:\n{}\nprovider_sim's log:\n{}",
            crier.proc.log_tail(20),
            sim.log_tail(5)
        ))
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()?;
    let mut imported = import_phase(args, n, &http, &crier)
        .await
        .map_err(|e| with_logs(e, &crier))?;
    imported.restarted = args.mode == Mode::Rss && args.restart_after_import;
    if imported.restarted {
        eprintln!(
            "restarting crier on the same data dir, so that its VmHWM covers only the fan-out"
        );
        drop(crier);
        let t = Instant::now();
        crier = start_crier(&bins.crier, dir.path(), &sim.url, args)?;
        eprintln!(
            "  crier listening again after {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    let result = fan_out_with(args, n, &sim, &crier, dir.path(), &http, imported).await;
    result.map_err(|e| with_logs(e, &crier))
}

struct Imported {
    time: Duration,
    /// Whether crier was restarted after the import.
    restarted: bool,
    peak_kib: Option<u64>,
    hwm_kib: Option<u64>,
    /// VmRSS just after the last import request was answered.
    rss_kib: Option<u64>,
}

async fn import_phase(
    args: &Args,
    n: usize,
    http: &reqwest::Client,
    crier: &Crier,
) -> Result<Imported> {
    let sampler = RssSampler::start(crier.proc.pid);
    let t0 = Instant::now();
    let batch = batch_of(args);
    eprintln!("importing {n} subscribers in batches of {batch}");
    let time = import(http, crier, n, batch).await?;
    let hwm_kib = status_kib(crier.proc.pid, "VmHWM");
    let rss_kib = status_kib(crier.proc.pid, "VmRSS");
    let peak_kib = sampler.peak(t0, Instant::now() + Duration::from_secs(1));
    eprintln!(
        "  after the import: VmHWM {} MiB, VmRSS {} MiB",
        opt_mib(hwm_kib),
        opt_mib(rss_kib)
    );
    Ok(Imported {
        time,
        restarted: false,
        peak_kib,
        hwm_kib,
        rss_kib,
    })
}

async fn fan_out_with(
    args: &Args,
    n: usize,
    sim: &Proc,
    crier: &Crier,
    dir: &Path,
    http: &reqwest::Client,
    imported: Imported,
) -> Result<FanOut> {
    let http = http.clone();
    let pid = crier.proc.pid;
    let sampler = RssSampler::start(pid);
    let rss_start_kib = status_kib(pid, "VmRSS");
    let s0 = sim_stats(&http, sim).await?;
    if s0.accepted != 0 {
        bail!(
            "the emulator accepted {} SMS before the incident was opened",
            s0.accepted
        );
    }

    let (crier_pid, sim_pid) = (pid.to_string(), sim.pid.to_string());
    let threads0 = thread_cpu(pid);
    let (c0, s0cpu, me0) = (cpu_time(&crier_pid), cpu_time(&sim_pid), cpu_time("self"));
    let preview_session = if args.preview_probe {
        Some(console_session(crier).await?)
    } else {
        None
    };
    let t_send = Instant::now();
    let id = open_incident(
        &http,
        crier,
        "We are investigating slow check-in. Updates follow every 30 minutes.",
    )
    .await?;
    let t_201 = Instant::now();
    eprintln!("incident {id} opened; waiting for {n} SMS at the emulator");
    let probe = ApiProbe::start(http.clone(), crier, &id);
    let page_probe = (!args.no_page_probe).then(|| ApiProbe::page(http.clone(), crier));
    let preview_probe =
        preview_session.map(|session| ApiProbe::preview(http.clone(), crier, session));
    let timeout = Duration::from_secs(args.timeout);
    let mut first = None;
    let mut last_print = Instant::now();
    let mut last = s0;
    loop {
        let s = sim_stats(&http, sim).await?;
        if first.is_none() && s.accepted > 0 {
            first = Some(t_201.elapsed());
        }
        if s.accepted >= n as u64 {
            break;
        }
        if s.rejected > 0 || s.duplicates > 0 {
            bail!(
                "the emulator rejected {} and saw {} duplicate SMS",
                s.rejected,
                s.duplicates
            );
        }
        if t_201.elapsed() > timeout {
            let status = delivery_status(&http, crier, &id)
                .await
                .unwrap_or_else(|e| json!(format!("{e:#}")));
            bail!(
                "only {} of {n} SMS accepted {} s after the incident was opened; crier's delivery status: {status}",
                s.accepted,
                args.timeout
            );
        }
        if last_print.elapsed() >= Duration::from_secs(5) {
            let dt = last_print.elapsed().as_secs_f64();
            last_print = Instant::now();
            eprintln!(
                "  {:>6.1} s: {} / {n} accepted ({:.0}/s now), crier RSS {:.1} MiB",
                t_201.elapsed().as_secs_f64(),
                s.accepted,
                (s.accepted - last.accepted) as f64 / dt,
                status_kib(pid, "VmRSS").map_or(0.0, mib),
            );
            last = s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let t_done = Instant::now();
    let api = probe.finish().await?;
    let page = match page_probe {
        Some(p) => p.finish().await?,
        None => Vec::new(),
    };
    let preview = match preview_probe {
        Some(p) => p.finish().await?,
        None => Vec::new(),
    };
    let elapsed = t_done - t_201;
    let (c1, s1cpu, me1) = (cpu_time(&crier_pid), cpu_time(&sim_pid), cpu_time("self"));
    let threads1 = thread_cpu(pid);
    let hwm_kib = status_kib(pid, "VmHWM");
    let rss_end_kib = status_kib(pid, "VmRSS");
    let rss_fanout_kib = sampler.peak(t_send, t_done + Duration::from_secs(1));
    let samples = sampler.count();
    drop(sampler);

    // Let stragglers (duplicates, if any) arrive, then check the counts exactly.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let s = sim_stats(&http, sim).await?;
    if s.accepted != n as u64 || s.unique != n as u64 || s.duplicates != 0 || s.rejected != 0 {
        bail!(
            "the emulator accepted {} SMS to {} recipients ({} duplicates, {} rejected); expected exactly {n}, no duplicates",
            s.accepted,
            s.unique,
            s.duplicates,
            s.rejected
        );
    }
    eprintln!("all {n} SMS accepted; checking crier's delivery records");
    check_deliveries(&http, crier, &id, n as u64).await?;
    let hwm_after_scan_kib = status_kib(pid, "VmHWM");
    let mean_send_ms = mean_send_ms(&http, crier).await?;
    let mut threads: Vec<(String, f64)> = threads1
        .iter()
        .map(|(name, t)| {
            let before = threads0.get(name).copied().unwrap_or(Duration::ZERO);
            (
                name.clone(),
                100.0 * t.saturating_sub(before).as_secs_f64() / elapsed.as_secs_f64(),
            )
        })
        .filter(|(_, pct)| *pct >= 0.5)
        .collect();
    threads.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(FanOut {
        subscribers: n,
        import: imported.time,
        to_201: t_201 - t_send,
        first,
        elapsed,
        crier_cpu: share(c0, c1, elapsed),
        sim_cpu: share(s0cpu, s1cpu, elapsed),
        client_cpu: share(me0, me1, elapsed),
        threads,
        mean_send_ms,
        rss_import_kib: imported.peak_kib,
        import_hwm_kib: imported.hwm_kib,
        import_rss_kib: imported.rss_kib,
        restarted: imported.restarted,
        rss_start_kib,
        rss_fanout_kib,
        hwm_kib,
        rss_end_kib,
        hwm_after_scan_kib,
        samples,
        data_bytes: dir_size(&dir.join("data")),
        duplicates: s.duplicates,
        api,
        page,
        preview,
    })
}

/// A responder signed in through the console's login form: the session cookie and the CSRF
/// token of its forms.
async fn console_session(crier: &Crier) -> Result<(String, String)> {
    const PASSWORD: &str = "correct horse battery staple";
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;
    let url = &crier.proc.url;
    let r = http
        .post(format!("{url}/api/v1/users"))
        .bearer_auth(&crier.token)
        .json(&json!({"name": "duty", "role": "responder", "password": PASSWORD}))
        .send()
        .await?;
    json_of(r, "POST /api/v1/users", StatusCode::CREATED).await?;
    let r = http
        .post(format!("{url}/console/login"))
        .form(&[
            ("user", "duty"),
            ("password", PASSWORD),
            ("next", "/console/"),
        ])
        .send()
        .await?;
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("crier_session="))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
        .with_context(|| format!("console login answered {} without a session", r.status()))?;
    let dash = http
        .get(format!("{url}/console/"))
        .header("cookie", format!("crier_session={cookie}"))
        .send()
        .await?
        .text()
        .await?;
    let marker = "name=\"csrf\" value=\"";
    let at = dash
        .find(marker)
        .context("the console dashboard has no CSRF field")?
        + marker.len();
    let csrf = dash[at..]
        .split('"')
        .next()
        .context("the CSRF field is not closed")?
        .to_owned();
    Ok((cookie, csrf))
}

/// How the API answers while the fan-out runs: one `GET /api/v1/incidents/{id}` (token check,
/// incident and timeline read from the store) every [`ApiProbe::EVERY`], one at a time, each
/// latency send to full body. The expander and the channel worker share the runtime with the
/// API, so a batch that holds a worker shows here. A second probe does the same for the public
/// status page `/` (no token; the page a crowd reloads during the incident).
struct ApiProbe {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<Vec<Duration>>>,
}

impl ApiProbe {
    const EVERY: Duration = Duration::from_millis(50);

    fn start(http: reqwest::Client, crier: &Crier, id: &str) -> Self {
        let url = format!("{}/api/v1/incidents/{id}", crier.proc.url);
        Self::polling(http, url, Some(crier.token.clone()))
    }

    /// The public status page, as a reader's browser asks for it.
    fn page(http: reqwest::Client, crier: &Crier) -> Self {
        Self::polling(http, format!("{}/", crier.proc.url), None)
    }

    /// The console's live preview as `console.js` asks for it while someone types: the six
    /// channels, a Finnish text (UCS-2 once the `€`-free text gains a `ő`) one character longer
    /// each time.
    fn preview(http: reqwest::Client, crier: &Crier, (cookie, csrf): (String, String)) -> Self {
        let url = format!("{}/console/preview?fragment", crier.proc.url);
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            const TEXT: &str = "Lähtöselvitys on hidas Helsinki-Vantaalla. Selvitämme syytä ja \
                kerromme lisää puolen tunnin välein. Tarkista lentosi tila sovelluksesta ennen \
                kuin lähdet kentälle. Pahoittelemme viivettä, ő.";
            let mut latencies = Vec::new();
            let mut typed = 1;
            while !*stopped.borrow() {
                let text: String = TEXT.chars().take(typed).collect();
                typed = typed % TEXT.chars().count() + 1;
                let mut form: Vec<(&str, &str)> = vec![
                    ("csrf", &csrf),
                    ("title", "Lähtöselvitys on hidas"),
                    ("impact", "major"),
                    ("next_update", "30m"),
                    ("preview_set", "1"),
                    ("msg_fi", &text),
                ];
                for (name, _) in PREVIEW_CHANNELS {
                    form.push(("preview", name));
                }
                form.push(("preview", "sms"));
                let t0 = Instant::now();
                let resp = http
                    .post(&url)
                    .header("cookie", format!("crier_session={cookie}"))
                    .form(&form)
                    .send()
                    .await?;
                let status = resp.status();
                let body = resp.text().await?;
                if status != StatusCode::OK {
                    bail!("POST {url} answered {status}: {body}");
                }
                latencies.push(t0.elapsed());
                let shown = ["sms", "mastodon", "bluesky", "slack", "discord", "email"]
                    .iter()
                    .filter(|c| body.contains(&format!("data-channel=\"{c}\"")))
                    .count();
                if shown != 6 || body.contains("class=\"error\"") {
                    bail!("the preview showed {shown} of 6 channels: {body}");
                }
                tokio::select! {
                    _ = tokio::time::sleep(Self::EVERY) => {}
                    _ = stopped.changed() => {}
                }
            }
            Ok(latencies)
        });
        ApiProbe { stop, task }
    }

    fn polling(http: reqwest::Client, url: String, token: Option<String>) -> Self {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !*stopped.borrow() {
                let t0 = Instant::now();
                let mut req = http.get(&url);
                if let Some(t) = &token {
                    req = req.bearer_auth(t);
                }
                let resp = req.send().await?;
                let status = resp.status();
                let body = resp.bytes().await?;
                if status != StatusCode::OK || body.is_empty() {
                    bail!("GET {url} answered {status} with {} bytes", body.len());
                }
                latencies.push(t0.elapsed());
                tokio::select! {
                    _ = tokio::time::sleep(Self::EVERY) => {}
                    _ = stopped.changed() => {}
                }
            }
            Ok(latencies)
        });
        ApiProbe { stop, task }
    }

    /// Stops the probe; returns its latencies, sorted.
    async fn finish(self) -> Result<Vec<Duration>> {
        let _ = self.stop.send(true);
        let mut latencies = self.task.await.context("the API probe panicked")??;
        latencies.sort_unstable();
        Ok(latencies)
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}%"))
}

fn opt_mib(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_owned(), |k| format!("{:.1}", mib(k)))
}

fn print_fan_out(f: &FanOut) {
    println!(
        "{:>11} {:>9} {:>9} {:>8} {:>9} {:>9} {:>12} {:>8} {:>8} {:>8} {:>8}",
        "subscribers",
        "import s",
        "201 ms",
        "first ms",
        "fan-out s",
        "send ms",
        "deliveries/s",
        "crier",
        "sim",
        "client",
        "dups"
    );
    println!(
        "{:>11} {:>9.1} {:>9.2} {:>8} {:>9.2} {:>9} {:>12.0} {:>8} {:>8} {:>8} {:>8}",
        f.subscribers,
        f.import.as_secs_f64(),
        ms(f.to_201),
        f.first
            .map_or_else(|| "-".to_owned(), |d| format!("{:.0}", ms(d))),
        f.elapsed.as_secs_f64(),
        f.mean_send_ms
            .map_or_else(|| "-".to_owned(), |v| format!("{v:.2}")),
        f.per_second(),
        pct(f.crier_cpu),
        pct(f.sim_cpu),
        pct(f.client_cpu),
        f.duplicates
    );
    let threads: Vec<String> = f
        .threads
        .iter()
        .map(|(n, p)| format!("{n} {p:.0}%"))
        .collect();
    println!(
        "crier CPU by thread during the fan-out: {}",
        threads.join(", ")
    );
    if let Some(max) = f.api.last() {
        println!(
            "API during the fan-out (GET /api/v1/incidents/{{id}} every {} ms, {} requests): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            ApiProbe::EVERY.as_millis(),
            f.api.len(),
            ms(percentile(&f.api, 50.0)),
            ms(percentile(&f.api, 99.0)),
            ms(*max)
        );
    }
    if let Some(max) = f.page.last() {
        println!(
            "status page during the fan-out (GET / every {} ms, {} requests): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (target p99 < 100 ms: {})",
            ApiProbe::EVERY.as_millis(),
            f.page.len(),
            ms(percentile(&f.page, 50.0)),
            ms(percentile(&f.page, 99.0)),
            ms(*max),
            if percentile(&f.page, 99.0) < Duration::from_millis(100) { "met" } else { "NOT met" }
        );
    }
}

fn print_preview(f: &FanOut) {
    if let Some(max) = f.preview.last() {
        println!(
            "console preview during the fan-out (POST /console/preview, 6 channels, every {} ms, {} requests): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (target p99 < 100 ms: {})",
            ApiProbe::EVERY.as_millis(),
            f.preview.len(),
            ms(percentile(&f.preview, 50.0)),
            ms(percentile(&f.preview, 99.0)),
            ms(*max),
            if percentile(&f.preview, 99.0) < Duration::from_millis(100) { "met" } else { "NOT met" }
        );
    }
}

fn print_rss(f: &FanOut) {
    println!();
    println!(
        "{:>11} {:>9} {:>10} {:>10} {:>9} {:>10} {:>10} {:>9} {:>8} {:>8}",
        "subscribers",
        "import pk",
        "import HWM",
        "import RSS",
        "start RSS",
        "fan-out pk",
        "VmHWM",
        "end RSS",
        "samples",
        "data"
    );
    println!(
        "{:>11} {:>9} {:>10} {:>10} {:>9} {:>10} {:>10} {:>9} {:>8} {:>8.0}",
        f.subscribers,
        opt_mib(f.rss_import_kib),
        opt_mib(f.import_hwm_kib),
        opt_mib(f.import_rss_kib),
        opt_mib(f.rss_start_kib),
        opt_mib(f.rss_fanout_kib),
        opt_mib(f.hwm_kib),
        opt_mib(f.rss_end_kib),
        f.samples,
        f.data_bytes as f64 / (1024.0 * 1024.0)
    );
    println!(
        "(MiB. pk: VmRSS sampled every 500 ms; import HWM / RSS: VmHWM / VmRSS just after the last import request was answered. {}. start RSS: just before the incident; VmHWM read when the last SMS was accepted, {:.1} MiB after the final GET /deliveries scan; data: the data dir's size)",
        if f.restarted {
            "crier was restarted on the same data dir between import and fan-out, so VmHWM covers the fan-out only"
        } else {
            "the same crier process imported and fanned out, so VmHWM covers both"
        },
        f.hwm_after_scan_kib.map_or(0.0, mib)
    );
}

// ---------------------------------------------------------------------------
// wrk against the emulator
// ---------------------------------------------------------------------------

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

struct WrkResult {
    per_second: f64,
    requests: u64,
    non_2xx: u64,
    accepted: u64,
}

/// wrk -t2 -c64 against a fresh emulator; `None` when wrk is not installed.
async fn wrk_capacity(bins: &Bins, seconds: u64) -> Result<Option<WrkResult>> {
    let Some(wrk) = on_path("wrk") else {
        println!("wrk is not installed; install it with `apt-get install -y wrk` to measure the emulator's raw capacity");
        return Ok(None);
    };
    let dir = tempfile::Builder::new()
        .prefix("crier-bench-fanout-wrk-")
        .tempdir()?;
    let sim = start_sim(&bins.sim, dir.path(), "provider_sim")?;
    let auth = base64(format!("{ACCOUNT_SID}:{AUTH_TOKEN}").as_bytes());
    // One Lua state per wrk thread: `tid` (set in setup) and the counter make every To distinct,
    // so the emulator takes its non-duplicate path, as with crier's fan-out.
    let script = format!(
        r#"wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic {auth}"
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
counter = 0
function request()
  counter = counter + 1
  local body = string.format("To=%%2B3585%02d%07d&From=%%2B15005550006&Body=We+are+investigating+slow+check-in.+Updates+follow+every+30+minutes.", tid or 0, counter)
  return wrk.format(nil, nil, nil, body)
end
"#
    );
    let lua = dir.path().join("twilio.lua");
    std::fs::write(&lua, script)?;
    let url = format!(
        "{}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
        sim.url
    );
    let out = Command::new(&wrk)
        .args(["-t2", "-c64", &format!("-d{seconds}s"), "-s"])
        .arg(&lua)
        .arg(&url)
        .output()
        .context("cannot run wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed ({}): {text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let find = |prefix: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    let per_second = find("Requests/sec:")
        .with_context(|| format!("no Requests/sec in wrk's output:\n{text}"))?;
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let non_2xx = find("Non-2xx or 3xx responses:").map_or(0, |v| v as u64);
    let http = reqwest::Client::new();
    let accepted = sim_stats(&http, &sim).await?.accepted;
    Ok(Some(WrkResult {
        per_second,
        requests,
        non_2xx,
        accepted,
    }))
}

// ---------------------------------------------------------------------------
// The HTTP client's own ceiling
// ---------------------------------------------------------------------------

struct Ceiling {
    requests: usize,
    elapsed: Duration,
    /// CPU time of this benchmark process (the client) during the run.
    client_cpu: Option<Duration>,
    /// CPU time of the emulator during the run.
    sim_cpu: Option<Duration>,
    accepted: u64,
}

impl Ceiling {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

/// A bare reqwest client, built as crier builds a channel's client (30 s timeout, no redirects,
/// an idle pool as large as the concurrency), posting the same Twilio requests as crier's
/// adapter (Basic auth; form To, From, Body) to a fresh emulator with `concurrency` in flight,
/// on a two-worker tokio runtime like `crier serve`'s. No store, no rendering, no bookkeeping:
/// the most that any sender built on reqwest (a fixed dependency) reaches on this machine.
fn client_ceiling(bins: &Bins, requests: usize, concurrency: usize) -> Result<Ceiling> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = tempfile::Builder::new()
        .prefix("crier-bench-fanout-ceiling-")
        .tempdir()?;
    let sim = start_sim(&bins.sim, dir.path(), "provider_sim")?;
    let url = format!(
        "{}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
        sim.url
    );
    let me = std::process::id().to_string();
    let sim_pid = sim.pid.to_string();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(concurrency)
            .build()?;
        let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let mut tasks = tokio::task::JoinSet::new();
        let (cpu0, sim0) = (cpu_time(&me), cpu_time(&sim_pid));
        let started = Instant::now();
        for i in 0..requests {
            let permit = sem.clone().acquire_owned().await?;
            let (client, url) = (client.clone(), url.clone());
            tasks.spawn(async move {
                let form = [
                    ("To", format!("+3586{i:08}")),
                    ("From", "+15005550006".to_owned()),
                    (
                        "Body",
                        "We are investigating slow check-in. Updates follow every 30 minutes."
                            .to_owned(),
                    ),
                ];
                let resp = client
                    .post(url)
                    .basic_auth(ACCOUNT_SID, Some(AUTH_TOKEN))
                    .form(&form)
                    .send()
                    .await?;
                let status = resp.status();
                resp.bytes().await?;
                drop(permit);
                if !status.is_success() {
                    bail!("the emulator answered {status}");
                }
                Ok(())
            });
            while let Some(done) = tasks.try_join_next() {
                done??;
            }
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
        let elapsed = started.elapsed();
        let client_cpu = cpu_time(&me).zip(cpu0).map(|(b, a)| b.saturating_sub(a));
        let sim_cpu = cpu_time(&sim_pid)
            .zip(sim0)
            .map(|(b, a)| b.saturating_sub(a));
        let accepted = sim_stats(&client, &sim).await?.accepted;
        Ok(Ceiling {
            requests,
            elapsed,
            client_cpu,
            sim_cpu,
            accepted,
        })
    })
}

// ---------------------------------------------------------------------------
// Latency
// ---------------------------------------------------------------------------

struct Latency {
    /// Send of POST /incidents to the emulator's count going up.
    e2e: Vec<Duration>,
    /// Send of POST /incidents to its 201.
    api: Vec<Duration>,
}

async fn latency(args: &Args, bins: &Bins, n: usize) -> Result<Latency> {
    let dir = tempfile::Builder::new()
        .prefix("crier-bench-fanout-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let sim = start_sim(&bins.sim, dir.path(), "provider_sim")?;
    let crier = start_crier(&bins.crier, dir.path(), &sim.url, args)?;
    let result = latency_with(args, n, &sim, &crier).await;
    result.map_err(|e| {
        e.context(format!(
            "last lines of crier's log:\n{}",
            crier.proc.log_tail(20)
        ))
    })
}

async fn latency_with(args: &Args, n: usize, sim: &Proc, crier: &Crier) -> Result<Latency> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    // A separate client (and connection) for polling, so a poll in flight never delays the POST.
    let poll = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    import(&http, crier, n, batch_of(args)).await?;
    let mut out = Latency {
        e2e: Vec::new(),
        api: Vec::new(),
    };
    let total = args.warmup + args.runs;
    let mut ids = Vec::new();
    for run in 0..total {
        let before = sim_stats(&poll, sim).await?.accepted;
        let t0 = Instant::now();
        let id = open_incident(
            &http,
            crier,
            &format!("Latency probe {run}: we are investigating."),
        )
        .await?;
        let api = t0.elapsed();
        loop {
            let s = sim_stats(&poll, sim).await?;
            if s.accepted >= before + n as u64 {
                break;
            }
            if t0.elapsed() > Duration::from_secs(30) {
                bail!(
                    "run {run}: the emulator accepted {} of {n} SMS within 30 s",
                    s.accepted - before
                );
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let e2e = t0.elapsed();
        if run >= args.warmup {
            out.e2e.push(e2e);
            out.api.push(api);
        }
        ids.push(id);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = sim_stats(&http, sim).await?;
    let want = (total * n) as u64;
    if s.accepted != want || s.duplicates != 0 || s.rejected != 0 {
        bail!(
            "the emulator accepted {} SMS ({} duplicates, {} rejected); expected exactly {want}",
            s.accepted,
            s.duplicates,
            s.rejected
        );
    }
    for id in &ids {
        check_deliveries(&http, crier, id, n as u64).await?;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------

/// Rows per import request.
fn batch_of(args: &Args) -> usize {
    args.batch.unwrap_or(if args.mode == Mode::Rss {
        200_000
    } else {
        50_000
    })
}

struct Bins {
    crier: PathBuf,
    sim: PathBuf,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let n = args.subscribers.unwrap_or(match args.mode {
        Mode::Throughput => 100_000,
        Mode::Rss => 1_000_000,
        Mode::Latency => 1,
    });
    if n == 0 || n > 100_000_000 {
        bail!("--subscribers must be between 1 and 100000000");
    }
    if batch_of(&args) == 0 || (args.mode == Mode::Latency && args.runs == 0) {
        bail!("--batch and --runs must be positive");
    }
    let bins = Bins {
        crier: target_binary(args.bin.clone(), "release/crier")?,
        sim: target_binary(args.sim_bin.clone(), "release/examples/provider_sim")?,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    println!(
        "bench_fanout --mode {:?}: twilio channel (rate {}, concurrency {}) -> provider_sim",
        args.mode, args.rate, args.concurrency
    );
    println!(
        "crier: {}; {} CPU(s); load average before: {}",
        bins.crier.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    println!();
    match args.mode {
        Mode::Throughput | Mode::Rss => {
            let f = rt.block_on(fan_out(&args, &bins, n))?;
            print_fan_out(&f);
            print_preview(&f);
            print_rss(&f);
            println!("load average after: {}", load_average());
            if args.mode == Mode::Throughput {
                let wrk = if args.wrk_seconds > 0 {
                    rt.block_on(wrk_capacity(&bins, args.wrk_seconds))?
                } else {
                    None
                };
                println!();
                if let Some(w) = &wrk {
                    println!(
                        "provider_sim raw capacity, wrk -t2 -c64 -d{}s (crier stopped): {:.0} requests/s ({} requests, {} non-2xx, {} accepted)",
                        args.wrk_seconds, w.per_second, w.requests, w.non_2xx, w.accepted
                    );
                    println!(
                        "crier's fan-out reached {:.0}% of it",
                        100.0 * f.per_second() / w.per_second
                    );
                }
                if args.ceiling_requests > 0 {
                    let c = client_ceiling(&bins, args.ceiling_requests, args.concurrency)?;
                    if c.accepted != c.requests as u64 {
                        bail!(
                            "client ceiling: the emulator accepted {} of {} requests",
                            c.accepted,
                            c.requests
                        );
                    }
                    println!(
                        "bare reqwest client -> provider_sim ({} requests, {} in flight, 2 runtime workers, crier stopped): {:.0} requests/s in {:.2} s; client CPU {}, emulator CPU {}",
                        c.requests,
                        args.concurrency,
                        c.per_second(),
                        c.elapsed.as_secs_f64(),
                        pct(share(Some(Duration::ZERO), c.client_cpu, c.elapsed)),
                        pct(share(Some(Duration::ZERO), c.sim_cpu, c.elapsed)),
                    );
                    println!(
                        "crier's fan-out reached {:.0}% of the bare client's rate",
                        100.0 * f.per_second() / c.per_second()
                    );
                }
                let rate = f.per_second();
                println!(
                    "target: >= 10000 deliveries/s: {} ({rate:.0}/s)",
                    if rate >= 10_000.0 { "met" } else { "NOT met" }
                );
            } else {
                let hwm = f.hwm_kib.map_or(f64::INFINITY, mib);
                println!(
                    "target: peak RSS (VmHWM) < 256 MiB: {} ({hwm:.1} MiB)",
                    if hwm < 256.0 { "met" } else { "NOT met" }
                );
            }
        }
        Mode::Latency => {
            let mut l = rt.block_on(latency(&args, &bins, n))?;
            l.e2e.sort_unstable();
            l.api.sort_unstable();
            println!(
                "open incident -> SMS accepted by the emulator ({} subscriber(s), {} runs after {} warm-up)",
                n, args.runs, args.warmup
            );
            println!(
                "{:>12} {:>9} {:>9} {:>9} {:>9} {:>9}",
                "", "median ms", "p90 ms", "min ms", "max ms", "mean ms"
            );
            for (name, v) in [("end to end", &l.e2e), ("API 201", &l.api)] {
                let mean = v.iter().map(|d| ms(*d)).sum::<f64>() / v.len() as f64;
                println!(
                    "{:>12} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                    name,
                    ms(percentile(v, 50.0)),
                    ms(percentile(v, 90.0)),
                    ms(percentile(v, 0.0)),
                    ms(percentile(v, 100.0)),
                    mean
                );
            }
            let median = ms(percentile(&l.e2e, 50.0));
            println!(
                "all SMS accepted once, no duplicates; load average after: {}",
                load_average()
            );
            println!(
                "target: median < 50 ms: {} ({median:.2} ms)",
                if median < 50.0 { "met" } else { "NOT met" }
            );
        }
    }
    Ok(())
}
