//! Benchmark: the public status page `/` and the Statuspage v2 `/api/v2/summary.json` served by
//! crier, each beside nginx serving the same bytes as a static file, with `wrk`, in one run.
//! (The page's latency during a 100,000-subscriber fan-out is measured by `bench_fanout`'s
//! throughput mode, which polls `/` beside the API.)
//!
//! ```text
//! apt-get install -y wrk nginx     # the program checks and says so when either is missing
//! cargo build --release --bin crier
//! cargo run --release --example bench_pages -- --seconds 10 --connections 64
//! ```
//!
//! Set-up: `crier serve` (release build) on a fresh data dir; `--components` components in
//! `--groups` groups, each with a few recorded status changes, and one open incident with three
//! published updates (so the page has uptime bars and a timeline, ≈ the page people read
//! during an incident). The page `/` is fetched once and written to a temporary directory as
//! `index.html`; nginx (`nginx -p TMP -c nginx.conf`, one worker per core, `access_log off`,
//! listening on a free port) serves that directory. Then `wrk -t2 -cN -dS --latency` runs
//! against crier's `/` and nginx's `/index.html`, one after the other, and the program prints
//! requests/s and latency percentiles for each, and crier's share of nginx's requests/s.
//! Target: crier ≥ 50 % of nginx's requests/s. A missed target is reported, not a failure.
//! Client, crier and nginx share the machine.

mod common;

use anyhow::{bail, Context, Result};
use clap::Parser;
use common::{target_binary, ChildGuard, CrierServe};
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};

#[derive(Parser, Debug)]
#[command(about = "wrk against crier's status page and nginx serving the same bytes")]
struct Args {
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value_t = 64)]
    connections: u32,
    #[arg(long, default_value_t = 12)]
    components: usize,
    #[arg(long, default_value_t = 3)]
    groups: usize,
    /// The crier binary (default: target/release/crier).
    #[arg(long)]
    bin: Option<std::path::PathBuf>,
}

fn require(tool: &str, package: &str) -> Result<()> {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !found {
        bail!("{tool} is not installed; install it with `apt-get install -y {package}`");
    }
    Ok(())
}

/// Requests/s and the latency percentiles wrk printed.
struct WrkResult {
    rps: f64,
    p50: String,
    p99: String,
}

fn wrk(url: &str, a: &Args) -> Result<WrkResult> {
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{}", a.connections),
            &format!("-d{}s", a.seconds),
            "--latency",
            url,
        ])
        .output()
        .context("cannot run wrk")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() || text.contains("Non-2xx") {
        bail!("wrk against {url} failed or saw errors:\n{text}");
    }
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(str::to_owned)
            .unwrap_or_default()
    };
    let rps = field("Requests/sec:")
        .parse()
        .with_context(|| format!("no Requests/sec in wrk's output:\n{text}"))?;
    Ok(WrkResult {
        rps,
        p50: field("50%"),
        p99: field("99%"),
    })
}

fn nginx(root: &Path, port: u16) -> Result<ChildGuard> {
    let conf = root.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "worker_processes auto;\ndaemon off;\npid {0}/nginx.pid;\nerror_log {0}/error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{ access_log off; sendfile on; default_type text/html;\n\
             client_body_temp_path {0}/tmp; proxy_temp_path {0}/tmp; fastcgi_temp_path {0}/tmp;\n\
             uwsgi_temp_path {0}/tmp; scgi_temp_path {0}/tmp;\n\
             server {{ listen 127.0.0.1:{1}; root {0}/site; }} }}\n",
            root.display(),
            port
        ),
    )?;
    std::fs::create_dir_all(root.join("tmp"))?;
    let child = Command::new("nginx")
        .args([
            "-p",
            &root.display().to_string(),
            "-c",
            &conf.display().to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start nginx")?;
    Ok(ChildGuard(child))
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = Args::parse();
    require("wrk", "wrk")?;
    require("nginx", "nginx")?;
    let bin = target_binary(a.bin.clone(), "release/crier")?;
    let crier = CrierServe::start(&bin, "bench-pages-")?;
    let http = reqwest::Client::new();
    for i in 0..a.components {
        let group = format!("Group {}", i % a.groups.max(1));
        for status in ["major_outage", "partial_outage", "operational"] {
            let r = http
                .put(format!("{}/api/v1/components/Component {i}", crier.url))
                .bearer_auth(&crier.token)
                .json(&json!({"status": status, "group": group}))
                .send()
                .await?;
            if !r.status().is_success() {
                bail!("setting a component failed: {}", r.text().await?);
            }
        }
    }
    let r = http
        .post(format!("{}/api/v1/incidents", crier.url))
        .bearer_auth(&crier.token)
        .json(
            &json!({"title": "Check-in kiosks are slow", "impact": "major",
                       "components": ["Component 0"],
                       "body": {"en": "Check-in kiosks are slow. Use the mobile app.",
                                "fi": "Lähtöselvitysautomaatit ovat hitaita."}}),
        )
        .send()
        .await?;
    let id = r.json::<serde_json::Value>().await?["id"]
        .as_str()
        .context("no incident id")?
        .to_owned();
    for text in ["The cause is identified.", "A fix is being deployed."] {
        http.post(format!("{}/api/v1/incidents/{id}/updates", crier.url))
            .bearer_auth(&crier.token)
            .json(&json!({"message": text}))
            .send()
            .await?;
    }
    let page = http
        .get(format!("{}/", crier.url))
        .send()
        .await?
        .bytes()
        .await?;
    let dir = tempfile::Builder::new()
        .prefix("bench-pages-nginx-")
        .tempdir()?;
    std::fs::create_dir_all(dir.path().join("site"))?;
    std::fs::write(dir.path().join("site/index.html"), &page)?;
    let summary = http
        .get(format!("{}/api/v2/summary.json", crier.url))
        .send()
        .await?
        .bytes()
        .await?;
    std::fs::write(dir.path().join("site/summary.json"), &summary)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let _nginx = nginx(dir.path(), port)?;
    let static_url = format!("http://127.0.0.1:{port}/index.html");
    for _ in 0..100 {
        if http.get(&static_url).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let served = http.get(&static_url).send().await?.bytes().await?;
    if served != page {
        bail!("nginx does not serve the same bytes");
    }
    println!(
        "page: {} bytes, {} components in {} groups, 1 incident with 3 updates; wrk -t2 -c{} -d{}s",
        page.len(),
        a.components,
        a.groups,
        a.connections,
        a.seconds
    );
    let static_summary = format!("http://127.0.0.1:{port}/summary.json");
    if http.get(&static_summary).send().await?.bytes().await? != summary {
        bail!("nginx does not serve the same summary.json bytes");
    }
    println!("summary.json: {} bytes", summary.len());
    println!("| server | requests/s | p50 | p99 |");
    println!("| --- | ---: | ---: | ---: |");
    for (what, crier_url, nginx_url) in [
        ("`/`", format!("{}/", crier.url), static_url.clone()),
        (
            "`/api/v2/summary.json`",
            format!("{}/api/v2/summary.json", crier.url),
            static_summary.clone(),
        ),
    ] {
        let c = wrk(&crier_url, &a)?;
        let n = wrk(&nginx_url, &a)?;
        println!("| crier {what} | {:.0} | {} | {} |", c.rps, c.p50, c.p99);
        println!(
            "| nginx, same bytes | {:.0} | {} | {} |",
            n.rps, n.p50, n.p99
        );
        let share = 100.0 * c.rps / n.rps;
        println!(
            "crier {what}: {share:.1} % of nginx's requests/s (target ≥ 50 %: {})",
            if share >= 50.0 { "met" } else { "NOT met" }
        );
    }
    Ok(())
}
