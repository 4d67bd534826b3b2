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

use anyhow::{bail, Context, Result};
use clap::Parser;
use common::{cpu_time, ms, percentile, target_binary, CrierServe};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// One simulated client: its own incident, and its own keep-alive connection for the timed
/// requests (see [`Conn`]).
#[derive(Clone)]
struct Worker {
    /// `127.0.0.1:PORT` of the server.
    addr: String,
    /// `/api/v1/incidents/{id}/updates`.
    path: String,
    token: Arc<str>,
    n: usize,
}

impl Worker {
    async fn open(server: &BenchServer, token: Arc<str>, n: usize) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let resp = http
            .post(format!("{}/api/v1/incidents", server.url))
            .bearer_auth(&*token)
            .json(&json!({
                "title": format!("Benchmark incident {n}"),
                "impact": "minor",
                "message": "Opened by bench_writes.",
            }))
            .send()
            .await
            .context("cannot open an incident")?;
        let status = resp.status();
        let body = resp.text().await?;
        if status != StatusCode::CREATED {
            bail!("opening an incident answered {status}: {body}");
        }
        let v: Value = serde_json::from_str(&body)?;
        let id = v
            .get("id")
            .and_then(Value::as_str)
            .with_context(|| format!("no id in the answer: {body}"))?;
        let addr = server
            .url
            .strip_prefix("http://")
            .with_context(|| format!("unexpected server URL {}", server.url))?
            .to_owned();
        Ok(Worker {
            addr,
            path: format!("/api/v1/incidents/{id}/updates"),
            token,
            n,
        })
    }

    /// Posts updates until `deadline` over one keep-alive connection; returns the latency of
    /// each one.
    async fn post_until(self, deadline: Instant) -> Result<Vec<Duration>> {
        let mut conn = Conn::connect(&self.addr).await?;
        let mut latencies = Vec::new();
        let mut seq = 0u64;
        while Instant::now() < deadline {
            seq += 1;
            let body = json!({
                "status": "monitoring",
                "message": format!("Benchmark update {seq} from client {}.", self.n),
            })
            .to_string();
            let t0 = Instant::now();
            let (status, answer) = conn
                .post(&self.addr, &self.path, &self.token, &body)
                .await
                .with_context(|| format!("client {}: the request failed", self.n))?;
            if status != 201 {
                bail!(
                    "client {}: posting an update answered {status}: {}",
                    self.n,
                    String::from_utf8_lossy(&answer)
                );
            }
            latencies.push(t0.elapsed());
        }
        Ok(latencies)
    }
}

/// A minimal HTTP/1.1 keep-alive client for the timed requests. A general-purpose client
/// (reqwest, with its pool, its per-request allocations and its wake-ups across runtime threads)
/// cost ≈ 40 µs of CPU per request here; on two shared cores that is CPU taken from the server,
/// and at 64 clients it made the benchmark measure its own client (`cli cpu` 66 %, server 103 %).
/// Like `wrk`, this one writes a request and reads exactly one answer (status line, headers,
/// `content-length` bytes of body) on a single-threaded runtime.
struct Conn {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn connect(addr: &str) -> Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    /// Sends one JSON POST and returns the status code and the body of the answer.
    async fn post(
        &mut self,
        host: &str,
        path: &str,
        token: &str,
        body: &str,
    ) -> Result<(u16, Vec<u8>)> {
        use tokio::io::AsyncWriteExt;
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {token}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        self.stream.write_all(request.as_bytes()).await?;
        self.buf.clear();
        loop {
            if let Some((status, head_len, body_len)) = parse_head(&self.buf)? {
                while self.buf.len() < head_len + body_len {
                    self.read_more().await?;
                }
                if self.buf.len() > head_len + body_len {
                    bail!("the server sent more than one answer");
                }
                return Ok((status, self.buf.split_off(head_len)));
            }
            self.read_more().await?;
        }
    }

    async fn read_more(&mut self) -> Result<()> {
        use tokio::io::AsyncReadExt;
        if self.buf.len() > 1024 * 1024 {
            bail!("an answer of more than 1 MiB");
        }
        let n = self.stream.read_buf(&mut self.buf).await?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        Ok(())
    }
}

/// Parses an HTTP/1.1 answer's head once it is complete: (status, head length, body length).
fn parse_head(buf: &[u8]) -> Result<Option<(u16, usize, usize)>> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end]).context("the answer's head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("not an HTTP/1.1 status line: {status_line}"))?;
    let mut length = None;
    for line in lines {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.trim().parse().context("a bad content-length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            bail!("a chunked answer; this client reads content-length bodies only");
        }
    }
    let length = length.context("an answer without content-length")?;
    Ok(Some((status, end + 4, length)))
}

/// All workers post until the phase ends; returns every latency and the phase's length.
async fn phase(workers: &[Worker], length: Duration) -> Result<(Vec<Duration>, Duration)> {
    let start = Instant::now();
    let deadline = start + length;
    let tasks: Vec<_> = workers
        .iter()
        .cloned()
        .map(|w| tokio::spawn(w.post_until(deadline)))
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.context("a client task panicked")??);
    }
    Ok((all, start.elapsed()))
}

/// The server's group-commit counters from `/metrics`: (syncs, synced writes).
async fn sync_counters(http: &reqwest::Client, url: &str) -> Result<(u64, u64)> {
    let text = http
        .get(format!("{url}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let value = |name: &str| -> Result<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .with_context(|| format!("/metrics has no {name}"))
    };
    Ok((
        value("crier_store_syncs_total ")?,
        value("crier_store_synced_writes_total ")?,
    ))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_parsed_only_when_complete() {
        let answer = b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(parse_head(&answer[..30]).unwrap(), None);
        let head_len = answer.len() - 2;
        assert_eq!(parse_head(answer).unwrap(), Some((201, head_len, 2)));
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
        assert!(parse_head(chunked).is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse_head(b"SSH-2.0-x\r\n\r\n").is_err());
    }

    /// The client reads an answer that arrives in pieces, and two answers in a row on one
    /// connection; it sends the request it was given.
    #[tokio::test]
    async fn answers_in_pieces_are_read_whole_on_a_kept_alive_connection() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            for body in ["{\"n\":1}", "{\"n\":22}"] {
                let mut buf = [0u8; 4096];
                let n = sock.read(&mut buf).await.unwrap();
                seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                let answer = format!(
                    "HTTP/1.1 201 Created\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let (a, b) = answer.as_bytes().split_at(20);
                sock.write_all(a).await.unwrap();
                sock.flush().await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
                sock.write_all(b).await.unwrap();
            }
            seen
        });
        let mut conn = Conn::connect(&addr).await.unwrap();
        let first = conn.post(&addr, "/p", "tok", "{\"a\":1}").await.unwrap();
        assert_eq!(first, (201, b"{\"n\":1}".to_vec()));
        let second = conn.post(&addr, "/p", "tok", "{}").await.unwrap();
        assert_eq!(second, (201, b"{\"n\":22}".to_vec()));
        let seen = server.await.unwrap();
        assert!(seen[0].starts_with("POST /p HTTP/1.1\r\n"), "{}", seen[0]);
        assert!(seen[0].contains("authorization: Bearer tok\r\n"));
        assert!(
            seen[0].ends_with("content-length: 7\r\n\r\n{\"a\":1}"),
            "{}",
            seen[0]
        );
    }
}
