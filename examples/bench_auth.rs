//! Benchmark: what authentication and the audit log cost a durable write, and how long a login
//! (argon2id) takes, in one run (issue 12).
//!
//! Run (the release binary must be built first; `cargo run --example` does not rebuild it):
//!
//! ```text
//! cargo build --release && cargo run --release --example bench_auth
//! # with the request path before issue 12 (no authorisation table, no audit log) as the
//! # baseline, built from commit 9238eaa in another directory:
//! git archive 9238eaa | tar -x -C /tmp/crier-base && (cd /tmp/crier-base && cargo build --release --bin crier)
//! cargo run --release --example bench_auth -- --baseline-bin /tmp/crier-base/target/release/crier --rounds 3
//! # and the build just before the audit log (main's first parent of the h-team merge), which
//! # separates the cost of the audit log from that of the other commits since 9238eaa:
//! git archive 971ed5a | tar -x -C /tmp/crier-pre12 && (cd /tmp/crier-pre12 && cargo build --release --bin crier)
//! cargo run --release --example bench_auth -- --baseline-bin /tmp/crier-base/target/release/crier \
//!     --prior-bin /tmp/crier-pre12/target/release/crier --rounds 3
//! ```
//!
//! Each round measures, each on a fresh server (child process, fresh data dir) and with the
//! write load of bench_writes (`--clients` keep-alive clients, each posting updates to its own
//! incident; `POST /api/v1/incidents/{id}/updates` answered 201, durable):
//!
//! - `admin token`: the bootstrap admin token (compared in constant time, no store lookup);
//! - `personal token`: a publisher's personal token, looked up by its SHA-256 in the store with
//!   its owner on every request (the token lookup cost);
//! - `baseline` (with `--baseline-bin`): the same load against a build from before issue 12, so
//!   `admin token / baseline` is the cost of the authorisation middleware plus the audit entry
//!   per write, measured in the same run. crier has no switch to turn the audit log off, on
//!   purpose; the baseline build is how its cost is isolated.
//! - `prior` (with `--prior-bin`): the same against the build just before the audit log
//!   (commit 971ed5a): `admin token / prior` is the cost of the authorisation middleware and
//!   the audit entry alone, `prior / baseline` that of the other commits since the baseline.
//!
//! Besides writes/s, each mode reports the server's CPU time per acknowledged write (user +
//! system, from /proc, over the timed window): on a machine shared with other work, writes/s
//! moves with the load, CPU time per write much less.
//!
//! The servers of one round run one after the other, and rounds alternate them, so that load
//! from outside (other processes on the machine) spreads over all of them; the table gives every
//! round and the median per mode. Then `--logins` sequential `POST /api/v1/login` calls with the
//! right password give the login time (argon2id with OWASP parameters dominates it); median and
//! p90, nearest-rank.

mod common;
#[path = "common/writes.rs"]
mod writes;

use anyhow::{bail, Context, Result};
use clap::Parser;
use common::{cpu_time, ms, percentile, target_binary, CrierServe};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use writes::{phase, Worker};

#[derive(Parser, Debug)]
#[command(
    about = "Writes/s with the admin token, a personal token and a pre-audit baseline; login time"
)]
struct Args {
    /// Length of each timed window, in seconds.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Length of the untimed warm-up before each window, in seconds.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Rounds of every mode.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Sequential logins timed.
    #[arg(long, default_value_t = 20)]
    logins: usize,
    /// The crier binary to benchmark (default: target/release/crier).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// A crier binary from before issue 12 (commit 9238eaa) to measure the same load against.
    #[arg(long)]
    baseline_bin: Option<PathBuf>,
    /// A crier binary from just before the audit log (commit 971ed5a), measured the same way.
    #[arg(long)]
    prior_bin: Option<PathBuf>,
}

/// How the clients authenticate, and against which build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Admin,
    Personal,
    Baseline,
    Prior,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Admin => "admin token",
            Mode::Personal => "personal token",
            Mode::Baseline => "baseline (pre-audit build)",
            Mode::Prior => "prior (build before the log)",
        }
    }
}

/// The modes of one round, rotated by the round's number so that no mode always runs first.
fn round_order(modes: &[Mode], round: usize) -> Vec<Mode> {
    let mut order = modes.to_vec();
    if !order.is_empty() {
        let n = round % order.len();
        order.rotate_left(n);
    }
    order
}

/// The median of some figures (the mean of the middle two for an even count).
fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

/// "93.1 % (target >= 90 %: met)".
fn ratio_line(part: f64, whole: f64, target: f64) -> String {
    if whole <= 0.0 {
        return "-".into();
    }
    let pct = 100.0 * part / whole;
    let verdict = if pct >= target { "met" } else { "NOT met" };
    format!("{pct:.1} % (target >= {target:.0} %: {verdict})")
}

/// JSON POST with reqwest (setup and logins, not the timed writes); the answer must be `want`.
async fn post_json(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: Value,
    want: u16,
) -> Result<Value> {
    let mut req = http.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.with_context(|| format!("POST {url}"))?;
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    if status != want {
        bail!("POST {url} answered {status}, not {want}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("POST {url}: not JSON: {text}"))
}

const USER: &str = "bench";
const PASSWORD: &str = "correct horse battery staple 42";

/// Adds the publisher `bench` with a known password (as the admin).
async fn add_user(http: &reqwest::Client, server: &CrierServe) -> Result<()> {
    post_json(
        http,
        &format!("{}/api/v1/users", server.url),
        Some(&server.token),
        json!({"name": USER, "role": "publisher", "password": PASSWORD}),
        201,
    )
    .await?;
    Ok(())
}

/// Signs in as `bench`; returns the new personal token and how long the call took.
async fn login(http: &reqwest::Client, server: &CrierServe) -> Result<(String, Duration)> {
    let t0 = Instant::now();
    let v = post_json(
        http,
        &format!("{}/api/v1/login", server.url),
        None,
        json!({"user": USER, "password": PASSWORD}),
        201,
    )
    .await?;
    let took = t0.elapsed();
    let token = v
        .get("token")
        .and_then(Value::as_str)
        .with_context(|| format!("no token in the login answer: {v}"))?;
    Ok((token.to_owned(), took))
}

/// What one mode measured on a fresh server.
#[derive(Debug, Clone, Copy)]
struct Figure {
    per_s: f64,
    /// The server's CPU time (user + system) per acknowledged write in the window, in µs;
    /// NaN where /proc cannot say.
    cpu_us: f64,
}

/// Writes/s of one mode on a fresh server, and its CPU time per write.
fn run_writes(
    rt: &tokio::runtime::Runtime,
    bin: &Path,
    mode: Mode,
    clients: usize,
    warmup: Duration,
    window: Duration,
) -> Result<Figure> {
    let server = CrierServe::start(bin, "crier-bench-auth-")?;
    let result = rt.block_on(async {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let token: Arc<str> = match mode {
            Mode::Admin | Mode::Baseline | Mode::Prior => Arc::from(server.token.as_str()),
            Mode::Personal => {
                add_user(&http, &server).await?;
                Arc::from(login(&http, &server).await?.0.as_str())
            }
        };
        let mut workers = Vec::with_capacity(clients);
        for n in 0..clients {
            workers.push(Worker::open(&server, token.clone(), n).await?);
        }
        if !warmup.is_zero() {
            phase(&workers, warmup).await?;
        }
        let pid = server.pid.to_string();
        let cpu_before = cpu_time(&pid);
        let (latencies, elapsed) = phase(&workers, window).await?;
        let cpu_us = match (cpu_before, cpu_time(&pid)) {
            (Some(a), Some(b)) if !latencies.is_empty() => {
                (b.saturating_sub(a)).as_secs_f64() * 1e6 / latencies.len() as f64
            }
            _ => f64::NAN,
        };
        anyhow::Ok(Figure {
            per_s: latencies.len() as f64 / elapsed.as_secs_f64(),
            cpu_us,
        })
    });
    result.map_err(|e| {
        let log = server.log_text();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        e.context(format!(
            "{}; last lines of the server log:\n{}",
            mode.label(),
            tail.join("\n")
        ))
    })
}

/// Login times of `n` sequential logins on a fresh server, sorted.
fn run_logins(rt: &tokio::runtime::Runtime, bin: &Path, n: usize) -> Result<Vec<Duration>> {
    let server = CrierServe::start(bin, "crier-bench-auth-login-")?;
    rt.block_on(async {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        add_user(&http, &server).await?;
        // One untimed login warms the connection and the allocator.
        login(&http, &server).await?;
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            times.push(login(&http, &server).await?.1);
        }
        times.sort_unstable();
        Ok(times)
    })
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !(args.seconds > 0.0 && args.warmup >= 0.0) {
        bail!("--seconds must be positive and --warmup not negative");
    }
    if args.clients == 0 || args.rounds == 0 || args.logins == 0 {
        bail!("--clients, --rounds and --logins must be positive");
    }
    let bin = target_binary(args.bin, "release/crier")?;
    let baseline = match args.baseline_bin {
        Some(b) if !b.is_file() => bail!(
            "--baseline-bin {}: no such file; build it as the module docs say",
            b.display()
        ),
        // Absolute: the servers run in a temporary directory of their own.
        b => b.map(std::path::absolute).transpose()?,
    };
    let prior = match args.prior_bin {
        Some(b) if !b.is_file() => bail!(
            "--prior-bin {}: no such file; build it as the module docs say",
            b.display()
        ),
        // Absolute: the servers run in a temporary directory of their own.
        b => b.map(std::path::absolute).transpose()?,
    };
    let window = Duration::from_secs_f64(args.seconds);
    let warmup = Duration::from_secs_f64(args.warmup);
    // One thread for every client, as bench_writes: the server gets the other core.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    println!(
        "bench_auth: {} clients, POST /api/v1/incidents/{{id}}/updates -> 201 (durable); window {:.1} s, warm-up {:.1} s; {} round(s)",
        args.clients, args.seconds, args.warmup, args.rounds
    );
    println!("server: {}", bin.display());
    if let Some(b) = &baseline {
        println!("baseline: {}", b.display());
    }
    if let Some(b) = &prior {
        println!("prior: {}", b.display());
    }
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average at start: {}", load.trim());
    }
    println!();

    let mut modes = vec![Mode::Admin, Mode::Personal];
    if baseline.is_some() {
        modes.push(Mode::Baseline);
    }
    if prior.is_some() {
        modes.push(Mode::Prior);
    }
    let mut figures: Vec<(Mode, Vec<Figure>)> = modes.iter().map(|m| (*m, Vec::new())).collect();
    for round in 0..args.rounds {
        for mode in round_order(&modes, round) {
            let b = match (mode, &baseline, &prior) {
                (Mode::Baseline, Some(b), _) | (Mode::Prior, _, Some(b)) => b.as_path(),
                _ => bin.as_path(),
            };
            let f = run_writes(&rt, b, mode, args.clients, warmup, window)?;
            println!(
                "round {:>2}  {:<28} {:>9.1} writes/s  {:>6.1} µs server CPU/write",
                round + 1,
                mode.label(),
                f.per_s,
                f.cpu_us
            );
            if let Some((_, v)) = figures.iter_mut().find(|(m, _)| *m == mode) {
                v.push(f);
            }
        }
    }
    println!();
    let pick = |mode: Mode, of: fn(&Figure) -> f64| -> Vec<f64> {
        figures
            .iter()
            .find(|(m, _)| *m == mode)
            .map(|(_, v)| v.iter().map(of).collect())
            .unwrap_or_default()
    };
    let med = |mode: Mode| median(&pick(mode, |f| f.per_s)).unwrap_or(0.0);
    let cpu = |mode: Mode| median(&pick(mode, |f| f.cpu_us)).unwrap_or(f64::NAN);
    for (mode, v) in &figures {
        let lo = v.iter().map(|f| f.per_s).fold(f64::INFINITY, f64::min);
        let hi = v.iter().map(|f| f.per_s).fold(0.0, f64::max);
        println!(
            "{:<28} median {:>9.1} writes/s (range {lo:.1} - {hi:.1}); server CPU {:.1} µs/write",
            mode.label(),
            med(*mode),
            cpu(*mode)
        );
    }
    println!();
    println!(
        "personal / admin token (token lookup):   {}",
        ratio_line(med(Mode::Personal), med(Mode::Admin), 90.0)
    );
    if baseline.is_some() {
        println!(
            "admin token / baseline (authz + audit):  {}",
            ratio_line(med(Mode::Admin), med(Mode::Baseline), 90.0)
        );
        println!(
            "personal token / baseline (all of it):   {}",
            ratio_line(med(Mode::Personal), med(Mode::Baseline), 90.0)
        );
    }
    if prior.is_some() {
        println!(
            "admin token / prior (authz + audit):     {}",
            ratio_line(med(Mode::Admin), med(Mode::Prior), 90.0)
        );
        if baseline.is_some() {
            println!(
                "prior / baseline (other commits):        {}",
                ratio_line(med(Mode::Prior), med(Mode::Baseline), 90.0)
            );
        }
    }

    let times = run_logins(&rt, &bin, args.logins)?;
    println!();
    println!(
        "login (POST /api/v1/login, argon2id), {} sequential: median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        times.len(),
        ms(percentile(&times, 50.0)),
        ms(percentile(&times, 90.0)),
        ms(times.last().copied().unwrap_or_default())
    );
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average at the end: {}", load.trim());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_even_and_empty_lists() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
    }

    #[test]
    fn ratios_say_whether_the_target_is_met() {
        assert_eq!(
            ratio_line(95.0, 100.0, 90.0),
            "95.0 % (target >= 90 %: met)"
        );
        assert_eq!(
            ratio_line(50.0, 100.0, 90.0),
            "50.0 % (target >= 90 %: NOT met)"
        );
        assert_eq!(ratio_line(1.0, 0.0, 90.0), "-");
    }

    #[test]
    fn rounds_rotate_the_order_of_modes() {
        let modes = [Mode::Admin, Mode::Personal, Mode::Baseline];
        assert_eq!(round_order(&modes, 0), modes);
        assert_eq!(
            round_order(&modes, 1),
            [Mode::Personal, Mode::Baseline, Mode::Admin]
        );
        assert_eq!(round_order(&modes, 3), modes);
        assert!(round_order(&[], 2).is_empty());
    }
}
