//! Benchmark: email fan-out through crier's real email channel and real templates, against what
//! SMTP itself allows on this machine.
//!
//! Run (the release server binary must be built first; `cargo run --example` does not rebuild
//! `target/release/crier`):
//!
//! ```text
//! sudo DEBIAN_FRONTEND=noninteractive apt-get install -y postfix   # smtp-sink, smtp-source
//! python3 -m pip install 'aiosmtpd>=1.4,<2'                         # STARTTLS part (optional)
//! cargo build --release --bins --examples
//! target/release/examples/bench_email                   # 10,000 messages, 20 sessions
//! target/release/examples/bench_email --messages 20000 --sessions 20 --tls-messages 3000
//! ```
//!
//! Plain SMTP, one run, one Postfix `smtp-sink` on loopback (`-c`: its running counters, which this
//! program reads from its output; every figure is counted at the sink), three senders in turn, each
//! sending `--messages` messages over `--sessions` connections:
//!
//! 1. **smtp-source** `-d -s SESSIONS -m N -F FILE`: Postfix's own C load generator, connections
//!    kept open (`-d`), one transaction at a time per session (it does not pipeline). FILE is the
//!    email crier sends (the shipped incident_opened email templates: multipart text + HTML,
//!    List-Unsubscribe, …), so every sender moves the same bytes. The ceiling.
//! 2. **bare lettre**: this process (2 tokio workers, like crier) with one lettre
//!    `AsyncSmtpTransport` whose pool holds `SESSIONS` connections and `SESSIONS` tasks sending;
//!    each message is built per recipient with lettre's builder (crier's `build_message`), with its
//!    own To, Message-ID and unsubscribe link. Nothing else: what any lettre-based sender gets.
//! 3. **crier**: `crier serve` (release) with one `email` channel (`tls = "plain"`,
//!    `rate = "1000000/s"`, `concurrency = SESSIONS`), `public_url` set (so every message has its
//!    reader's RFC 8058 unsubscribe headers), N email subscribers imported by CSV; then one incident
//!    is opened. Timed from the `201` to the sink counting N; crier must report N delivered and the
//!    sink must count exactly N (no duplicates). Reported: deliveries/s and crier's CPU time per
//!    message (user + system from /proc/PID/stat over the fan-out).
//!
//! Then STARTTLS, reported separately (smtp-sink does not offer it): `scripts/bench/smtp_tls_sink.py`
//! (aiosmtpd, STARTTLS required, as the e2e test uses; Python, so it is the bottleneck) with the bare
//! lettre client and crier (`tls = "starttls"`, the sink's CA as `ca_file`), `--tls-messages` each.
//! Skipped with a note when aiosmtpd is missing, or with `--tls-messages 0`.
//!
//! Target (issue 17): crier ≥ 50 % of smtp-source; if the bare lettre client itself cannot reach
//! half of smtp-source, crier ≥ 70 % of the bare lettre client. A missed target is reported, not a
//! failure; a failed check (a count that does not match) exits non-zero.

mod common;

use anyhow::{bail, Context, Result};
use clap::Parser;
use common::{cpu_time, json_of, load_average, target_binary, ChildGuard, Proc};
use crier::adapters::email::{build_message, EmailConfig, TlsMode};
use crier::adapters::{OutMessage, Recipient};
use crier::domain::Locale;
use crier::render::{Context as RenderContext, Event, TemplateKind, Templates};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FROM: &str = "Status <status@example.com>";
const DOMAIN: &str = "example.com";
const PUBLIC_URL: &str = "https://status.example.com";
const TEXT: &str = "We are investigating slow check-in.\n\nPlease allow extra time.";

#[derive(Parser, Debug)]
#[command(about = "Email fan-out: smtp-source vs a bare lettre client vs crier, into smtp-sink")]
struct Args {
    /// Messages per sender (plain SMTP).
    #[arg(long, default_value_t = 10_000)]
    messages: usize,
    /// SMTP sessions (connections) per sender: smtp-source -s, the lettre pool, crier's concurrency.
    #[arg(long, default_value_t = 20)]
    sessions: usize,
    /// Messages per sender in the STARTTLS part (0 skips it).
    #[arg(long, default_value_t = 2_000)]
    tls_messages: usize,
    /// Rounds of the plain part (each: smtp-source, lettre, crier), to see the noise.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Seconds one sender may take before the run fails.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// The crier binary (default: target/release/crier).
    #[arg(long)]
    bin: Option<PathBuf>,
}

// ---------------------------------------------------------------------------
// Tools and sinks
// ---------------------------------------------------------------------------

/// A Postfix test tool: /usr/sbin (Debian), /usr/lib/postfix, or PATH.
fn postfix_tool(name: &str) -> Result<PathBuf> {
    let mut dirs = vec![
        PathBuf::from("/usr/sbin"),
        PathBuf::from("/usr/lib/postfix"),
    ];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "{name} not found. It comes with Postfix and needs no running mail system: \
                 `sudo DEBIAN_FRONTEND=noninteractive apt-get install -y postfix` (Debian, Ubuntu)"
            )
        })
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn wait_for_port(port: u16, what: &str) -> Result<()> {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(20) {
            bail!("{what} does not accept connections on port {port}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The last `tail` bytes of a file.
fn file_tail(path: &Path, tail: u64) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(tail)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// The last number after `key` in `text`.
fn last_number(text: &str, key: &str) -> Option<u64> {
    let at = text.rfind(key)?;
    let digits: String = text[at + key.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// A sink that counts accepted messages.
struct Sink {
    port: u16,
    host: &'static str,
    out: PathBuf,
    /// The key before the count in the sink's output.
    key: &'static str,
    /// The sink's CA certificate, when it offers STARTTLS.
    ca: Option<PathBuf>,
    pid: u32,
    _child: ChildGuard,
}

impl Sink {
    /// Postfix's smtp-sink with running counters (`-c`) on stdout.
    fn smtp_sink(dir: &Path) -> Result<Sink> {
        let bin = postfix_tool("smtp-sink")?;
        let port = free_port()?;
        let out = dir.join("smtp-sink.out");
        let mut cmd = Command::new(bin);
        cmd.arg("-c");
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            cmd.args(["-u", "nobody"]); // smtp-sink refuses to run as root without it
        }
        cmd.arg(format!("127.0.0.1:{port}"))
            .arg("1024")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out)?)
            .stderr(std::fs::File::create(dir.join("smtp-sink.err"))?);
        let child = ChildGuard(cmd.spawn().context("cannot start smtp-sink")?);
        let pid = child.0.id();
        wait_for_port(port, "smtp-sink")?;
        Ok(Sink {
            port,
            host: "127.0.0.1",
            out,
            key: "mesg=",
            ca: None,
            pid,
            _child: child,
        })
    }

    /// aiosmtpd with STARTTLS required (`scripts/bench/smtp_tls_sink.py`); `None` when aiosmtpd
    /// is not installed.
    fn tls_sink(dir: &Path) -> Result<Option<Sink>> {
        let have = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !have {
            return Ok(None);
        }
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/bench/smtp_tls_sink.py"
        );
        let out = dir.join("tls-sink.out");
        let child = Command::new("python3")
            .arg(script)
            .arg(dir.join("tls-sink"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out)?)
            .stderr(std::fs::File::create(dir.join("tls-sink.err"))?)
            .spawn()
            .context("cannot start scripts/bench/smtp_tls_sink.py")?;
        let child = ChildGuard(child);
        let pid = child.0.id();
        let started = Instant::now();
        let (port, ca) = loop {
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            if let Some(line) = text.lines().find(|l| l.contains("listening on ")) {
                let port = last_number(line, "listening on ").context("no port")?;
                let ca = line.split("ca=").nth(1).context("no ca")?.trim().to_owned();
                break (u16::try_from(port)?, PathBuf::from(ca));
            }
            if started.elapsed() > Duration::from_secs(30) {
                let err = std::fs::read_to_string(dir.join("tls-sink.err")).unwrap_or_default();
                bail!("smtp_tls_sink.py did not start: {err}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ok(Some(Sink {
            port,
            host: "localhost",
            out,
            key: "count ",
            ca: Some(ca),
            pid,
            _child: child,
        }))
    }

    fn count(&self) -> u64 {
        last_number(&file_tail(&self.out, 256), self.key).unwrap_or(0)
    }

    /// Waits until the sink has counted `want` messages; the time it took from `t0`.
    async fn wait_for(
        &self,
        want: u64,
        t0: Instant,
        timeout: Duration,
        what: &str,
    ) -> Result<Duration> {
        loop {
            let n = self.count();
            if n >= want {
                return Ok(t0.elapsed());
            }
            if t0.elapsed() > timeout {
                bail!("{what}: the sink counted {n} of {want} messages in {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// After a sender is done: waits a moment and checks nothing more arrived (no duplicates).
    async fn settle(&self, want: u64, what: &str) -> Result<()> {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let n = self.count();
        if n != want {
            bail!("{what}: the sink counted {n} messages, expected exactly {want}");
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// The message every sender sends
// ---------------------------------------------------------------------------

/// The shipped incident_opened email in English, as crier renders it.
struct Sample {
    subject: String,
    text: String,
    html: String,
}

fn sample() -> Result<Sample> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let templates = Templates::load(&dir, &[])?;
    let en = Locale::english();
    let ctx = RenderContext::sample(Event::IncidentOpened, &en)?;
    let r = templates.render(None, Event::IncidentOpened, TemplateKind::Email, &en, &ctx)?;
    Ok(Sample {
        subject: r.subject.context("the email template has no subject")?,
        text: r.text,
        html: r.html.context("the email template has no html")?,
    })
}

fn email_config(host: &str, tls: TlsMode) -> EmailConfig {
    EmailConfig::new(host, tls, FROM, DOMAIN)
}

fn out_message(s: &Sample, i: usize) -> OutMessage {
    OutMessage {
        idempotency_key: format!("bench-{i:08}"),
        recipient: Recipient::Email(format!("reader{i}@example.net")),
        locale: "en".into(),
        subject: Some(s.subject.clone()),
        text: s.text.clone(),
        html: Some(s.html.clone()),
        unsubscribe_url: Some(format!("{PUBLIC_URL}/api/v1/unsubscribe/token{i:08}")),
        document: None,
        thread: None,
    }
}

/// The message as smtp-source's `-F` wants it: header and body, LF line ends (it adds CRLF).
fn source_file(s: &Sample, dir: &Path) -> Result<(PathBuf, usize)> {
    let m = build_message(
        &email_config("127.0.0.1", TlsMode::Plain),
        &out_message(s, 0),
    )?;
    let raw = m.formatted();
    let path = dir.join("message.eml");
    std::fs::write(&path, String::from_utf8(raw.clone())?.replace("\r\n", "\n"))?;
    Ok((path, raw.len()))
}

// ---------------------------------------------------------------------------
// Senders
// ---------------------------------------------------------------------------

struct Figure {
    elapsed: Duration,
    n: usize,
    /// The sender's CPU time per message.
    cpu_per_msg: Option<Duration>,
}

impl Figure {
    fn rate(&self) -> f64 {
        self.n as f64 / self.elapsed.as_secs_f64()
    }
}

async fn smtp_source(sink: &Sink, args: &Args, file: &Path) -> Result<Figure> {
    let bin = postfix_tool("smtp-source")?;
    let base = sink.count();
    let n = args.messages;
    let t0 = Instant::now();
    let out = tokio::process::Command::new(bin)
        .arg("-d")
        .args(["-s", &args.sessions.to_string()])
        .args(["-m", &n.to_string()])
        .arg("-F")
        .arg(file)
        .args(["-f", "status@example.com", "-t", "reader@example.net"])
        .arg(format!("{}:{}", sink.host, sink.port))
        .output()
        .await
        .context("cannot run smtp-source")?;
    if !out.status.success() {
        bail!(
            "smtp-source failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let timeout = Duration::from_secs(args.timeout);
    let elapsed = sink
        .wait_for(base + n as u64, t0, timeout, "smtp-source")
        .await?;
    sink.settle(base + n as u64, "smtp-source").await?;
    Ok(Figure {
        elapsed,
        n,
        cpu_per_msg: None,
    })
}

/// `n` messages over a lettre pool of `sessions` connections, `sessions` tasks sending.
async fn bare_lettre(
    sink: &Sink,
    sessions: usize,
    n: usize,
    timeout: u64,
    s: &Sample,
) -> Result<Figure> {
    let tls = match &sink.ca {
        None => Tls::None,
        Some(ca) => {
            let pem = std::fs::read(ca)?;
            Tls::Required(
                TlsParameters::builder(sink.host.to_owned())
                    .add_root_certificate(Certificate::from_pem(&pem)?)
                    .build()?,
            )
        }
    };
    let mode = if sink.ca.is_some() {
        TlsMode::Starttls
    } else {
        TlsMode::Plain
    };
    let config = Arc::new(email_config(sink.host, mode));
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(sink.host)
        .port(sink.port)
        .tls(tls)
        .timeout(Some(Duration::from_secs(30)))
        .hello_name(ClientId::Domain(DOMAIN.into()))
        .pool_config(PoolConfig::new().max_size(u32::try_from(sessions)?))
        .build();
    let sample = Arc::new(Sample {
        subject: s.subject.clone(),
        text: s.text.clone(),
        html: s.html.clone(),
    });
    let base = sink.count();
    let next = Arc::new(AtomicUsize::new(0));
    let cpu0 = cpu_time("self");
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..sessions {
        let (transport, next, config, sample) = (
            transport.clone(),
            next.clone(),
            config.clone(),
            sample.clone(),
        );
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), anyhow::Error>(());
                }
                let m = build_message(&config, &out_message(&sample, i))?;
                transport.send(m).await?;
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let elapsed = sink
        .wait_for(
            base + n as u64,
            t0,
            Duration::from_secs(timeout),
            "bare lettre",
        )
        .await?;
    let cpu = cpu_time("self").zip(cpu0).map(|(a, b)| a.saturating_sub(b));
    sink.settle(base + n as u64, "bare lettre").await?;
    Ok(Figure {
        elapsed,
        n,
        cpu_per_msg: cpu.map(|c| c / u32::try_from(n).unwrap_or(u32::MAX)),
    })
}

/// crier with one email channel to `sink`, on a fresh data dir under `dir`.
fn start_crier(bin: &Path, dir: &Path, sink: &Sink, sessions: usize) -> Result<(Proc, String)> {
    let data = dir.join("data");
    let channels = dir.join("channels");
    std::fs::create_dir_all(&channels)?;
    let mut ch = format!(
        "kind = \"email\"\nhost = \"{}\"\nport = {}\ntls = \"{}\"\nfrom = \"{FROM}\"\n\
         rate = \"1000000/s\"\nconcurrency = {sessions}\nsend_timeout = \"30s\"\n",
        sink.host,
        sink.port,
        if sink.ca.is_some() {
            "starttls"
        } else {
            "plain"
        },
    );
    if let Some(ca) = &sink.ca {
        ch.push_str(&format!("ca_file = \"{}\"\n", ca.display()));
    }
    std::fs::write(channels.join("email.toml"), ch)?;
    std::fs::write(
        dir.join("crier.toml"),
        format!("public_url = \"{PUBLIC_URL}\"\n"),
    )?;
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
        .current_dir(dir)
        .env_remove("CRIER_ADMIN_TOKEN")
        .env_remove("CRIER_CONFIG")
        .env_remove("CRIER_BIND")
        .env_remove("CRIER_DATA")
        .env_remove("CRIER_CHANNELS")
        .env_remove("CRIER_TEMPLATES")
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info");
    let proc = Proc::start(cmd, &dir.join("crier.log"), "crier serve")?;
    let log = std::fs::read_to_string(&proc.log).unwrap_or_default();
    if log.contains("skipped") || log.contains("misconfigured") {
        bail!("crier did not start the email channel; its log:\n{log}");
    }
    let token = crier::token::read_admin_token(&data)?
        .with_context(|| format!("crier wrote no admin token in {}", data.display()))?;
    Ok((proc, token))
}

async fn crier_fanout(
    bin: &Path,
    sink: &Sink,
    sessions: usize,
    n: usize,
    timeout: u64,
) -> Result<Figure> {
    let dir = tempfile::Builder::new()
        .prefix("crier-bench-email-")
        .tempdir()?;
    let (crier, token) = start_crier(bin, dir.path(), sink, sessions)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()?;
    let mut csv = String::from("email\n");
    for i in 0..n {
        csv.push_str(&format!("reader{i}@example.net\n"));
    }
    let resp = http
        .post(format!("{}/api/v1/subscribers/import", crier.url))
        .bearer_auth(&token)
        .header(reqwest::header::CONTENT_TYPE, "text/csv")
        .body(csv)
        .send()
        .await?;
    let v = json_of(resp, "POST /api/v1/subscribers/import", StatusCode::OK).await?;
    if v.get("added").and_then(Value::as_u64) != Some(n as u64) {
        bail!("importing {n} subscribers: {v}");
    }
    let pid = crier.pid.to_string();
    let base = sink.count();
    let cpu0 = cpu_time(&pid);
    let resp = http
        .post(format!("{}/api/v1/incidents", crier.url))
        .bearer_auth(&token)
        .json(&json!({
            "title": "Check-in delays at Helsinki Airport",
            "impact": "major",
            "message": TEXT,
        }))
        .send()
        .await?;
    let t0 = Instant::now();
    let v = json_of(resp, "POST /api/v1/incidents", StatusCode::CREATED).await?;
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .context("no incident id")?
        .to_owned();
    let elapsed = sink
        .wait_for(base + n as u64, t0, Duration::from_secs(timeout), "crier")
        .await
        .map_err(|e| e.context(crier.log_tail(20)))?;
    let cpu = cpu_time(&pid).zip(cpu0).map(|(a, b)| a.saturating_sub(b));
    // crier must report every one delivered, and the sink must not see any twice.
    let started = Instant::now();
    loop {
        let resp = http
            .get(format!("{}/api/v1/incidents/{id}/deliveries", crier.url))
            .bearer_auth(&token)
            .send()
            .await?;
        let v = json_of(resp, "GET deliveries", StatusCode::OK).await?;
        let email = v.pointer("/channels/email").cloned().unwrap_or(Value::Null);
        let k = |key: &str| email.get(key).and_then(Value::as_u64).unwrap_or(0);
        if k("delivered") == n as u64 {
            if k("total") != n as u64 || k("dead") + k("rejected") > 0 {
                bail!("crier reports {email}, expected {n} delivered");
            }
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("crier reports {email} 60 s after the sink counted {n}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sink.settle(base + n as u64, "crier").await?;
    Ok(Figure {
        elapsed,
        n,
        cpu_per_msg: cpu.map(|c| c / u32::try_from(n).unwrap_or(u32::MAX)),
    })
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

fn cpu_note(f: &Figure, whose: &str) -> String {
    f.cpu_per_msg
        .map(|c| format!(", {whose} CPU {:.0} µs/message", c.as_secs_f64() * 1e6))
        .unwrap_or_default()
}

async fn run(args: Args) -> Result<()> {
    let bin = target_binary(args.bin.clone(), "release/crier")?;
    let dir = tempfile::Builder::new()
        .prefix("crier-bench-email-sinks-")
        .tempdir()?;
    let s = sample()?;
    let (file, size) = source_file(&s, dir.path())?;
    let sink = Sink::smtp_sink(dir.path())?;
    println!(
        "plain SMTP into smtp-sink, {} sessions, {} messages of {size} bytes each (load {})",
        args.sessions,
        args.messages,
        load_average()
    );
    let mut ok = true;
    for round in 1..=args.rounds {
        let src = smtp_source(&sink, &args, &file).await?;
        let lettre = bare_lettre(&sink, args.sessions, args.messages, args.timeout, &s).await?;
        let crier = crier_fanout(&bin, &sink, args.sessions, args.messages, args.timeout).await?;
        let pct = |a: &Figure, b: &Figure| 100.0 * a.rate() / b.rate();
        println!("round {round}:");
        println!(
            "  smtp-source -d -s {}: {:>7.0} messages/s",
            args.sessions,
            src.rate()
        );
        println!(
            "  bare lettre, pool {}: {:>7.0} messages/s ({:.0} % of smtp-source{})",
            args.sessions,
            lettre.rate(),
            pct(&lettre, &src),
            cpu_note(&lettre, "client")
        );
        println!(
            "  crier email channel:  {:>7.0} messages/s ({:.0} % of smtp-source, {:.0} % of bare lettre{})",
            crier.rate(),
            pct(&crier, &src),
            pct(&crier, &lettre),
            cpu_note(&crier, "crier")
        );
        let met = pct(&crier, &src) >= 50.0
            || (pct(&lettre, &src) < 50.0 && pct(&crier, &lettre) >= 70.0);
        ok &= met;
    }
    println!(
        "target (≥ 50 % of smtp-source, or ≥ 70 % of bare lettre when lettre is under 50 %): {}",
        if ok { "met" } else { "NOT met" }
    );
    drop(sink);

    if args.tls_messages > 0 {
        match Sink::tls_sink(dir.path())? {
            None => println!(
                "STARTTLS: skipped, aiosmtpd is missing (python3 -m pip install 'aiosmtpd>=1.4,<2')"
            ),
            Some(tls) => {
                let n = args.tls_messages;
                let sink_cpu0 = cpu_time(&tls.pid.to_string());
                let lettre = bare_lettre(&tls, args.sessions, n, args.timeout, &s).await?;
                let crier = crier_fanout(&bin, &tls, args.sessions, n, args.timeout).await?;
                let sink_cpu = cpu_time(&tls.pid.to_string())
                    .zip(sink_cpu0)
                    .map(|(a, b)| a.saturating_sub(b));
                println!(
                    "STARTTLS into aiosmtpd (Python; the bottleneck here), {} sessions, {n} messages:",
                    args.sessions
                );
                println!(
                    "  bare lettre, pool {}: {:>7.0} messages/s{}",
                    args.sessions,
                    lettre.rate(),
                    cpu_note(&lettre, "client")
                );
                println!(
                    "  crier email channel:  {:>7.0} messages/s ({:.0} % of bare lettre{})",
                    crier.rate(),
                    100.0 * crier.rate() / lettre.rate(),
                    cpu_note(&crier, "crier")
                );
                if let Some(c) = sink_cpu {
                    let total = (lettre.elapsed + crier.elapsed).as_secs_f64();
                    println!(
                        "  aiosmtpd used {:.0} % of one core over both",
                        100.0 * c.as_secs_f64() / total
                    );
                }
            }
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}
