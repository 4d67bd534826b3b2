//! Benchmark: durable, acknowledged writes per second with 1, 16 and 64 concurrent clients.
//!
//! Run (the release binary must be built first; `cargo run --example` does not rebuild it):
//!
//! ```text
//! cargo build --release && cargo run --release --example bench_writes
//! cargo run --release --example bench_writes -- --seconds 10 --warmup 2 --clients 1,4,16,64
//! # a slower disk (every fdatasync/fsync of the server waits 1 ms first):
//! gcc -shared -fPIC -O2 -o /tmp/slow_sync.so scripts/bench/slow_sync.c -ldl
//! LD_PRELOAD=/tmp/slow_sync.so SLOW_SYNC_US=1000 target/release/examples/bench_writes
//! ```
//!
//! What it measures: `POST /api/v1/incidents/{id}/updates` answered `201 Created`. The server
//! answers only after sled has flushed the write (through the group-commit flusher), so every
//! counted write is acknowledged as durable (docs/BENCHMARKS.md notes what sled's flush does at
//! the system-call level). For each concurrency level C:
//!
//! 1. a fresh server is started as a child process, `target/release/crier serve --data DIR --bind
//!    127.0.0.1:0`, on a fresh temporary data dir (so sled's size and the previous level's
//!    background work do not skew the next level). The server runs in its own process rather than
//!    in this one so that it has its own tokio runtime and the client's tasks cannot delay it
//!    except through the (shared) CPU; the port is read from its start-up log line;
//! 2. C clients open one incident each; each then posts over its own keep-alive connection with
//!    a minimal HTTP/1.1 client ([`Conn`]), all C on one thread of this process, as `wrk -t1
//!    -cC` would (reqwest cost ≈ 40 µs of CPU per request, taken from the server on the two
//!    shared cores);
//! 3. untimed warm-up: every client posts updates in a loop for `--warmup` seconds;
//! 4. timed window: every client posts updates in a loop for `--seconds` seconds (default 5). A
//!    request is counted when it is answered 201; any other answer aborts the benchmark.
//!    writes/s = answered writes / time from the start of the window until the last in-flight
//!    request was answered. Latencies are per request, send to full body; percentiles are
//!    nearest-rank.
//!
//! Client and server share the machine: the `srv cpu` and `cli cpu` columns give the CPU time the
//! server and this program used during the window, as a percentage of one core (Linux /proc).
//! The target is a ratio of at least 10x between 64 clients and 1 client: group commit lets
//! concurrent writers share one fsync. Child servers are killed when this program exits, also on
//! error paths (a guard with `Drop`).

mod common;
#[path = "common/writes.rs"]
mod writes;

use anyhow::{bail, Result};
use clap::Parser;
use common::{cpu_time, ms, percentile, target_binary, CrierServe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use writes::{phase, sync_counters, Worker};

#[derive(Parser, Debug)]
#[command(about = "Durable acknowledged writes per second at several client concurrencies")]
struct Args {
    /// Length of the timed window per concurrency level, in seconds.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Length of the untimed warm-up per concurrency level, in seconds.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Concurrency levels, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 16, 64])]
    clients: Vec<usize>,
    /// The crier binary to benchmark (default: target/release/crier).
    #[arg(long)]
    bin: Option<PathBuf>,
}

/// The server under test.
type BenchServer = CrierServe;

struct Level {
    /// Acknowledged writes per group commit (flush + fdatasync) during the window.
    writes_per_sync: f64,
    clients: usize,
    writes: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
    server_cpu: Option<f64>,
    client_cpu: Option<f64>,
}

impl Level {
    fn per_second(&self) -> f64 {
        self.writes as f64 / self.elapsed.as_secs_f64()
    }
}

fn run_level(
    rt: &tokio::runtime::Runtime,
    bin: &Path,
    clients: usize,
    warmup: Duration,
    window: Duration,
) -> Result<Level> {
    let server = BenchServer::start(bin, "crier-bench-writes-")?;
    let result = rt.block_on(async {
        let token: Arc<str> = Arc::from(server.token.as_str());
        let mut workers = Vec::with_capacity(clients);
        for n in 0..clients {
            workers.push(Worker::open(&server, token.clone(), n).await?);
        }
        if !warmup.is_zero() {
            phase(&workers, warmup).await?;
        }
        let pid = server.pid.to_string();
        let metrics_http = reqwest::Client::new();
        let (syncs0, synced0) = sync_counters(&metrics_http, &server.url).await?;
        let (srv0, cli0) = (cpu_time(&pid), cpu_time("self"));
        let (mut latencies, elapsed) = phase(&workers, window).await?;
        let (srv1, cli1) = (cpu_time(&pid), cpu_time("self"));
        let (syncs1, synced1) = sync_counters(&metrics_http, &server.url).await?;
        let writes_per_sync = (synced1 - synced0) as f64 / (syncs1 - syncs0).max(1) as f64;
        let share = |a: Option<Duration>, b: Option<Duration>| {
            Some(100.0 * b?.saturating_sub(a?).as_secs_f64() / elapsed.as_secs_f64())
        };
        latencies.sort_unstable();
        anyhow::Ok(Level {
            writes_per_sync,
            clients,
            writes: latencies.len(),
            elapsed,
            p50: percentile(&latencies, 50.0),
            p99: percentile(&latencies, 99.0),
            max: latencies.last().copied().unwrap_or_default(),
            server_cpu: share(srv0, srv1),
            client_cpu: share(cli0, cli1),
        })
    });
    result.map_err(|e| {
        let log = server.log_text();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        e.context(format!(
            "at {clients} client(s); last lines of the server log:\n{}",
            tail.join("\n")
        ))
    })
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !(args.seconds > 0.0 && args.warmup >= 0.0) {
        bail!("--seconds must be positive and --warmup not negative");
    }
    if args.clients.is_empty() || args.clients.contains(&0) {
        bail!("--clients needs one or more positive numbers, e.g. 1,16,64");
    }
    let bin = target_binary(args.bin, "release/crier")?;
    let window = Duration::from_secs_f64(args.seconds);
    let warmup = Duration::from_secs_f64(args.warmup);
    // One thread for every client, as `wrk -t1` would: the server gets the other core.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    println!(
        "bench_writes: durable acknowledged writes (POST /api/v1/incidents/{{id}}/updates -> 201)"
    );
    println!(
        "server: {} serve (child process, fresh data dir per level); window {:.1} s, warm-up {:.1} s; {} CPU(s)",
        bin.display(),
        args.seconds,
        args.warmup,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    // The server inherits the environment: say so when a shim changes what a sync costs
    // (scripts/bench/slow_sync.c), so that a table is never mistaken for the plain disk's.
    if let Some(preload) = std::env::var_os("LD_PRELOAD") {
        println!(
            "note: LD_PRELOAD={} (inherited by the server); SLOW_SYNC_US={}",
            preload.to_string_lossy(),
            std::env::var("SLOW_SYNC_US").unwrap_or_else(|_| "unset".into())
        );
    }
    println!();
    println!(
        "{:>7} {:>8} {:>7} {:>9} {:>7} {:>7} {:>7} {:>7} {:>7} {:>10}",
        "clients",
        "writes",
        "secs",
        "writes/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "srv cpu",
        "cli cpu",
        "writes/sync"
    );
    let pct = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}%"));
    let mut levels = Vec::new();
    for &c in &args.clients {
        let l = run_level(&rt, &bin, c, warmup, window)?;
        println!(
            "{:>7} {:>8} {:>7.2} {:>9.1} {:>7.2} {:>7.2} {:>7.2} {:>7} {:>7} {:>10.1}",
            l.clients,
            l.writes,
            l.elapsed.as_secs_f64(),
            l.per_second(),
            ms(l.p50),
            ms(l.p99),
            ms(l.max),
            pct(l.server_cpu),
            pct(l.client_cpu),
            l.writes_per_sync,
        );
        levels.push(l);
    }
    let at = |c: usize| levels.iter().find(|l| l.clients == c);
    if let (Some(one), Some(many)) = (at(1), at(64)) {
        let ratio = many.per_second() / one.per_second();
        println!();
        println!(
            "ratio 64 clients / 1 client: {ratio:.1}x (target >= 10x: {}){}",
            if ratio >= 10.0 { "met" } else { "NOT met" },
            if std::env::var_os("LD_PRELOAD").is_some() {
                " -- under LD_PRELOAD, not the plain disk"
            } else {
                ""
            }
        );
    }
    Ok(())
}
