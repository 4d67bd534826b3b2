//! Helpers shared by the benchmark programs in `examples/`: starting a child process (the
//! release `crier`, the provider emulator) with its output in a log file and waiting for its
//! "listening on" line, killing it on drop, finding built binaries, reading CPU time from /proc,
//! and percentiles. Each benchmark uses some of them.
#![allow(dead_code)]

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// Kills the child process when dropped, also when the benchmark fails half-way.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A child process whose stdout and stderr go to a log file, and the URL it listens on.
pub struct Proc {
    pub url: String,
    pub pid: u32,
    pub log: PathBuf,
    _child: ChildGuard,
}

impl Proc {
    /// Starts `cmd` with its output in `log` and waits for its "listening on http://" line.
    pub fn start(mut cmd: Command, log: &Path, what: &str) -> Result<Self> {
        let out = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("cannot start {what}"))?;
        let pid = child.id();
        let mut guard = ChildGuard(child);
        let url = wait_for_listen_line(&mut guard.0, log, what)?;
        Ok(Proc {
            url,
            pid,
            log: log.to_owned(),
            _child: guard,
        })
    }

    /// The last lines of the process's log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(lines).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

/// Polls a log until it says where the process listens; returns `http://127.0.0.1:PORT`.
pub fn wait_for_listen_line(child: &mut Child, log: &Path, what: &str) -> Result<String> {
    const MARK: &str = "listening on ";
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(at) = text.find("listening on http://") {
            let rest = &text[at + MARK.len()..];
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '\x1b')
                .unwrap_or(rest.len());
            return Ok(rest[..end].to_owned());
        }
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited ({status}) before listening; its log:\n{text}");
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("{what} did not report a listening address within 120 s; its log:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A binary under the target dir, or an error telling the user to build it.
pub fn target_binary(arg: Option<PathBuf>, rel: &str) -> Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = match arg {
        Some(b) => b,
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"))
            .join(rel),
    };
    if !bin.is_file() {
        bail!(
            "{} does not exist; run `cargo build --release --examples` first",
            bin.display()
        );
    }
    // Absolute: the servers run in a temporary directory of their own (a relative path given
    // on the command line would name nothing there).
    let bin = std::path::absolute(&bin)
        .with_context(|| format!("cannot make {} an absolute path", bin.display()))?;
    let built = std::fs::metadata(&bin)?.modified()?;
    if let Some(newest) = newest_mtime(&root.join("src")) {
        if newest > built {
            eprintln!(
                "warning: {} is older than the sources in src/; run `cargo build --release --examples` to benchmark the current code",
                bin.display()
            );
        }
    }
    Ok(bin)
}

pub fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let t = if path.is_dir() {
            newest_mtime(&path)
        } else {
            entry.metadata().ok().and_then(|m| m.modified().ok())
        };
        newest = newest.max(t);
    }
    newest
}

/// utime + stime of a /proc `stat` line, and the command name.
pub fn parse_stat(stat: &str) -> Option<(String, Duration)> {
    // Fields after the command name (which is in parentheses and may contain spaces): utime is
    // field 14, stime field 15, in clock ticks (USER_HZ, 100 on Linux).
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((comm, Duration::from_millis(ticks * 10)))
}

/// CPU time (user + system) a process has used; `None` off Linux.
pub fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat).map(|(_, t)| t)
}

/// Nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `crier serve` from `bin` on a fresh temporary data dir, with the shipped templates and no
/// channels (only the write path is measured) unless [`ServeOptions`] gives some, no inherited
/// CRIER_* settings, and the admin token it generated.
pub struct CrierServe {
    pub url: String,
    pub pid: u32,
    pub log: PathBuf,
    pub data: PathBuf,
    pub token: String,
    // Declared before `dir` so the server is killed before its data dir is removed.
    _proc: Proc,
    pub dir: tempfile::TempDir,
}

/// What `crier serve` gets beside the defaults of [`CrierServe::start`]: channel files, a
/// config file, a store URL and extra environment (bench_pg's PostgreSQL nodes and SMS channel).
#[derive(Default, Clone)]
pub struct ServeOptions {
    /// Channel files (name without `.toml`, contents); none means no channels.
    pub channels: Vec<(String, String)>,
    /// The contents of a config file passed with `--config`.
    pub config: Option<String>,
    /// `--store` (a PostgreSQL URL without password); none means sled in the data dir.
    pub store: Option<String>,
    /// Extra environment, e.g. `CRIER_PG_PASSWORD` or the Twilio credentials.
    pub env: Vec<(String, String)>,
}

impl CrierServe {
    pub fn start(bin: &Path, prefix: &str) -> Result<Self> {
        Self::start_with(bin, prefix, &ServeOptions::default())
    }

    pub fn start_with(bin: &Path, prefix: &str, opts: &ServeOptions) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .context("cannot create a temporary directory")?;
        let data = dir.path().join("data");
        let log = dir.path().join("server.log");
        let channels = dir.path().join("channels");
        std::fs::create_dir_all(&channels)?;
        for (name, body) in &opts.channels {
            std::fs::write(channels.join(format!("{name}.toml")), body)?;
        }
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .arg("--data")
            .arg(&data)
            .args(["--bind", "127.0.0.1:0"])
            .arg("--templates")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/templates"))
            .arg("--channels")
            .arg(&channels)
            // No stray ./crier.toml and no inherited settings or admin token: the server
            // generates <data>/admin.token.
            .current_dir(dir.path())
            .env_remove("CRIER_ADMIN_TOKEN")
            .env_remove("CRIER_CONFIG")
            .env_remove("CRIER_BIND")
            .env_remove("CRIER_DATA")
            .env_remove("CRIER_STORE")
            .env_remove("CRIER_PG_PASSWORD")
            // scripts/pg.sh's URL carries the test cluster's password: not the server's business.
            .env_remove("CRIER_TEST_PG_URL")
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info");
        if let Some(config) = &opts.config {
            let file = dir.path().join("crier.toml");
            std::fs::write(&file, config)?;
            cmd.arg("--config").arg(file);
        }
        if let Some(store) = &opts.store {
            cmd.arg("--store").arg(store);
        }
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let proc = Proc::start(cmd, &log, "crier serve")?;
        let token = crier::token::read_admin_token(&data)?
            .with_context(|| format!("the server wrote no admin token in {}", data.display()))?;
        Ok(CrierServe {
            url: proc.url.clone(),
            pid: proc.pid,
            log,
            data,
            token,
            _proc: proc,
            dir,
        })
    }

    /// The server's log so far, for error messages.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The JSON body of `resp`, which `what` names in errors; an error unless the status is `want`.
pub async fn json_of(
    resp: reqwest::Response,
    what: &str,
    want: reqwest::StatusCode,
) -> Result<serde_json::Value> {
    let status = resp.status();
    let body = resp.text().await?;
    if status != want {
        bail!("{what} answered {status}: {body}");
    }
    serde_json::from_str(&body).with_context(|| format!("{what}: not JSON: {body}"))
}

/// The emulator's Twilio counters.
#[derive(Debug, Clone, Copy)]
pub struct SimStats {
    pub accepted: u64,
    pub rejected: u64,
    pub duplicates: u64,
    pub unique: u64,
}

/// Reads the provider emulator's `/stats`.
pub async fn sim_stats(http: &reqwest::Client, sim: &Proc) -> Result<SimStats> {
    let resp = http.get(format!("{}/stats", sim.url)).send().await?;
    let v = json_of(resp, "GET /stats", reqwest::StatusCode::OK).await?;
    let n = |a: &str, b: &str| {
        v.get(a)
            .and_then(|x| x.get(b))
            .and_then(serde_json::Value::as_u64)
    };
    Ok(SimStats {
        accepted: n("accepted", "twilio").context("/stats has no accepted.twilio")?,
        rejected: n("rejected", "twilio").context("/stats has no rejected.twilio")?,
        duplicates: n("duplicates", "total").context("/stats has no duplicates.total")?,
        unique: n("unique_recipients", "twilio")
            .context("/stats has no unique_recipients.twilio")?,
    })
}

/// The machine's load average (1, 5, 15 minutes), or `-`.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "-".to_owned())
}
