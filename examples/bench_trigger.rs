//! Benchmark: one `crier trigger` from the command line, process start to exit — what a
//! monitoring script pays each time it reports an alert.
//!
//! Run (the release binary must be built first; `cargo run --example` does not rebuild it):
//!
//! ```text
//! cargo build --release && cargo run --release --example bench_trigger
//! cargo run --release --example bench_trigger -- --runs 500
//! ```
//!
//! Two series against a `crier serve` child process on a fresh data dir (default config: draft
//! mode, 2 min hold-down):
//! - `change`: the same alert alternately `firing` and `resolved`, so every run changes state and
//!   waits for a durable write (open or reopen, then resolve);
//! - `repeat`: the same firing alert over and over, as a script polling every minute sends it;
//!   every run after the first is absorbed (no write).
//!
//! Every run must exit 0 and report the expected outcome (`--json`), or the benchmark stops.
//! Percentiles are nearest-rank.

mod common;

use anyhow::{bail, Context, Result};
use clap::Parser;
use common::{ms, percentile, target_binary, CrierServe};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Wall time of one `crier trigger`, process start to exit")]
struct Args {
    /// Timed runs per series.
    #[arg(long, default_value_t = 200)]
    runs: usize,
    /// The crier binary to benchmark (default: target/release/crier).
    #[arg(long)]
    bin: Option<PathBuf>,
}

fn trigger(server: &CrierServe, bin: &Path, key: &str, status: &str) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("--url")
        .arg(&server.url)
        .arg("--data")
        .arg(&server.data)
        .args([
            "--json",
            "trigger",
            "--source",
            "bench",
            "--key",
            key,
            "--status",
            status,
            "--summary",
        ])
        .arg(format!("Synthetic check {key} is {status}"))
        .current_dir(server.dir.path())
        .env_remove("CRIER_URL")
        .env_remove("CRIER_TOKEN")
        .env_remove("CRIER_DATA")
        .stdin(Stdio::null());
    cmd
}

/// Runs one trigger, timed; checks its exit code and outcome.
fn timed(mut cmd: Command, expect: &[&str]) -> Result<Duration> {
    let t0 = Instant::now();
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    let elapsed = t0.elapsed();
    if !out.status.success() {
        bail!(
            "{cmd:?} exited with {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let v: Value = serde_json::from_slice(&out.stdout).context("trigger --json printed no JSON")?;
    let outcome = v["outcomes"][0]["outcome"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if !expect.contains(&outcome.as_str()) {
        bail!("expected one of {expect:?}, got {outcome:?}: {v}");
    }
    Ok(elapsed)
}

fn report(name: &str, mut times: Vec<Duration>) -> Duration {
    let total: Duration = times.iter().sum();
    times.sort_unstable();
    let median = percentile(&times, 50.0);
    println!(
        "{:<8} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
        name,
        ms(median),
        ms(percentile(&times, 90.0)),
        ms(times[0]),
        ms(times[times.len() - 1]),
        ms(total) / times.len() as f64
    );
    median
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let bin = target_binary(args.bin, "release/crier")?;
    let server = CrierServe::start(&bin, "crier-bench-trigger-")?;

    // Warm-up (untimed): the first open of each series.
    timed(trigger(&server, &bin, "change", "firing"), &["opened"])?;
    timed(trigger(&server, &bin, "change", "resolved"), &["resolved"])?;
    timed(trigger(&server, &bin, "repeat", "firing"), &["opened"])?;

    let mut change = Vec::with_capacity(args.runs);
    for n in 0..args.runs {
        let (status, expect): (&str, &[&str]) = if n % 2 == 0 {
            ("firing", &["opened", "reopened"])
        } else {
            ("resolved", &["resolved"])
        };
        change.push(timed(trigger(&server, &bin, "change", status), expect)?);
    }
    let mut repeat = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        repeat.push(timed(
            trigger(&server, &bin, "repeat", "firing"),
            &["absorbed"],
        )?);
    }

    println!("bench_trigger: `crier trigger` wall time, spawn to exit");
    println!(
        "binary: {}; server: child process on {}; {} timed runs per series; {} CPU(s)",
        bin.display(),
        server.url,
        args.runs,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!(
        "{:<8} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "series", "median ms", "p90 ms", "min ms", "max ms", "mean ms"
    );
    report("change", change);
    report("repeat", repeat);
    println!();
    println!("every run exited 0 with the expected outcome");
    Ok(())
}
