//! Benchmark: one `crier incident update` from the command line, process start to exit.
//!
//! Run (the release binary must be built first; `cargo run --example` does not rebuild it):
//!
//! ```text
//! cargo build --release && cargo run --release --example bench_cli
//! cargo run --release --example bench_cli -- --runs 500
//! ```
//!
//! What it measures: the wall time from spawning
//! `target/release/crier --url URL --data DIR incident update ID --status monitoring --message ...`
//! to its exit, run `--runs` times (default 200) one after the other. That covers process start,
//! argument parsing, reading `<data>/admin.token`, the runtime and HTTP client set-up, a fresh TCP
//! connection, the server's durable write (the answer waits for the flush to disk) and printing
//! the result. The server is a child process, `target/release/crier serve --data DIR --bind
//! 127.0.0.1:0`, on a fresh temporary data dir; the incident is opened with the CLI beforehand and
//! `--warmup` untimed updates (default 5) warm the page cache. Every run must exit 0, or the
//! benchmark stops with the command's stderr; at the end the incident's `update_count` is checked
//! against the number of updates posted. Percentiles are nearest-rank.
//!
//! Target: median under 15 ms. The child server is killed when this program exits, also on error
//! paths (a guard with `Drop`).

mod common;

use anyhow::{bail, Context, Result};
use clap::Parser;
use common::{ms, percentile, target_binary, CrierServe};
use serde_json::Value;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Wall time of one `crier incident update`, process start to exit")]
struct Args {
    /// Timed runs of `crier incident update`.
    #[arg(long, default_value_t = 200)]
    runs: usize,
    /// Untimed runs before the timed ones.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// The crier binary to benchmark (default: target/release/crier).
    #[arg(long)]
    bin: Option<PathBuf>,
}

/// A `crier serve` child process on a fresh temporary data dir.
struct BenchServer(CrierServe);

impl BenchServer {
    fn start(bin: &Path) -> Result<Self> {
        Ok(BenchServer(CrierServe::start(bin, "crier-bench-cli-")?))
    }

    /// A CLI command against this server: `crier --url URL --data DIR ARGS...`, with no
    /// inherited CRIER_* settings.
    fn cli<I, S>(&self, bin: &Path, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(bin);
        cmd.arg("--url")
            .arg(&self.0.url)
            .arg("--data")
            .arg(&self.0.data)
            .args(args)
            .current_dir(self.0.dir.path())
            .env_remove("CRIER_URL")
            .env_remove("CRIER_TOKEN")
            .env_remove("CRIER_DATA")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs a CLI command to completion and fails loudly unless it exits 0.
    fn check(&self, what: &str, mut cmd: Command) -> Result<Output> {
        let out = cmd
            .output()
            .with_context(|| format!("{what}: cannot run {cmd:?}"))?;
        if !out.status.success() {
            let log = std::fs::read_to_string(&self.0.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(10).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "{what}: {cmd:?} exited with {}\nstdout: {}\nstderr: {}\nlast lines of the server log:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim(),
                tail.join("\n")
            );
        }
        Ok(out)
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let bin = target_binary(args.bin, "release/crier")?;
    let server = BenchServer::start(&bin)?;

    let open = server.check(
        "opening the incident",
        server.cli(
            &bin,
            [
                "--json",
                "incident",
                "open",
                "--title",
                "Benchmark incident",
                "--impact",
                "minor",
                "--message",
                "Opened by bench_cli.",
            ],
        ),
    )?;
    let opened: Value = serde_json::from_slice(&open.stdout)
        .context("`crier --json incident open` did not print JSON")?;
    let id = opened
        .get("id")
        .and_then(Value::as_str)
        .context("`crier --json incident open` printed no id")?
        .to_owned();

    let update = |n: usize| {
        let message = format!("Benchmark update {n}: still monitoring.");
        server.cli(
            &bin,
            [
                "incident",
                "update",
                id.as_str(),
                "--status",
                "monitoring",
                "--message",
                message.as_str(),
            ],
        )
    };
    for n in 0..args.warmup {
        server.check(&format!("warm-up run {}", n + 1), update(n))?;
    }
    let mut times = Vec::with_capacity(args.runs);
    for n in 0..args.runs {
        let mut cmd = update(args.warmup + n);
        let t0 = Instant::now();
        let out = cmd
            .output()
            .with_context(|| format!("run {}: cannot run {cmd:?}", n + 1))?;
        let elapsed = t0.elapsed();
        if !out.status.success() {
            bail!(
                "run {}: {cmd:?} exited with {}\nstderr: {}",
                n + 1,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        times.push(elapsed);
    }

    let shown = server.check(
        "showing the incident",
        server.cli(&bin, ["--json", "incident", "show", id.as_str()]),
    )?;
    let shown: Value = serde_json::from_slice(&shown.stdout)
        .context("`crier --json incident show` did not print JSON")?;
    let expected = 1 + args.warmup + args.runs;
    let count = shown.get("update_count").and_then(Value::as_u64);
    if count != Some(expected as u64) {
        bail!("the incident has update_count {count:?}; expected {expected} (1 opening + {} warm-up + {} timed updates)", args.warmup, args.runs);
    }

    let total: Duration = times.iter().sum();
    times.sort_unstable();
    let median = percentile(&times, 50.0);
    println!("bench_cli: `crier incident update` wall time, spawn to exit");
    println!(
        "binary: {}; server: child process on {}; {} timed runs after {} warm-up; {} CPU(s)",
        bin.display(),
        server.0.url,
        args.runs,
        args.warmup,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!(
        "{:>9} {:>9} {:>9} {:>9} {:>9}",
        "median ms", "p90 ms", "min ms", "max ms", "mean ms"
    );
    println!(
        "{:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
        ms(median),
        ms(percentile(&times, 90.0)),
        ms(times[0]),
        ms(times[times.len() - 1]),
        ms(total) / times.len() as f64
    );
    println!();
    println!(
        "all {} runs exited 0; incident update_count = {expected} as expected",
        args.runs
    );
    println!(
        "target: median < 15 ms: {}",
        if median < Duration::from_millis(15) {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}
