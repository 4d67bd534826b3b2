//! Benchmark (issue 16): the same two loads on sled, on PostgreSQL with one node, and on
//! PostgreSQL with two nodes serving one database, in one run, with the ratios between them.
//!
//! Run beside a throwaway PostgreSQL cluster made by scripts/pg.sh (the release binaries must be
//! built first; `cargo run --example` rebuilds neither `target/release/crier` nor
//! `target/release/examples/provider_sim`):
//!
//! ```text
//! cargo build --release --bin crier --example provider_sim --example bench_pg
//! bash scripts/pg.sh target/release/examples/bench_pg
//! bash scripts/pg.sh cargo run --release --example bench_pg -- --subscribers 100000 --clients 64 --seconds 10
//! # smoke run (a few seconds per configuration; the figures mean little):
//! bash scripts/pg.sh target/release/examples/bench_pg --subscribers 2000 --seconds 3 --warmup 1
//! # only some configurations or one load:
//! bash scripts/pg.sh target/release/examples/bench_pg --configs sled,pg1 --no-writes
//! ```
//!
//! The configurations (`--configs`, default all three):
//!
//! - `sled`: `crier serve` on a fresh data dir, the embedded store (as bench_fanout and
//!   bench_writes run it);
//! - `pg1`: one `crier serve --store postgres://USER@127.0.0.1:PORT/DB?sslmode=require` on a fresh
//!   database;
//! - `pg2`: two such nodes on one fresh database, started one after the other.
//!
//! PostgreSQL: scripts/pg.sh sets `CRIER_TEST_PG_URL` (`postgres://USER:PASSWORD@HOST:PORT/DB`,
//! a role that may create databases) and `CRIER_TEST_PG_CA` (the CA of the server's
//! certificate). crier refuses a password in its store URL, so each node gets the URL without it,
//! the password in `CRIER_PG_PASSWORD`, and a config file with `[postgres] ca_file = CA` (TLS
//! verified; the pool at crier's default of 16 connections per node, `--pool-size`). Each
//! PostgreSQL configuration gets a fresh database per load (`CREATE DATABASE` over a connection
//! as that role), dropped afterwards. The program prints the server's `fsync`,
//! `synchronous_commit` and `wal_sync_method` as crier's role sees them in that database: with
//! `synchronous_commit = on` and `fsync = on` a commit returns only once its WAL is on disk, so
//! every write counted below is durable on both backends (sled: flush + fdatasync before the
//! answer). The run stops if either setting is off unless `--allow-unsafe-pg`.
//!
//! The loads, in this order (fan-out on every configuration, then writes on every configuration,
//! so that each load's figures are taken close together):
//!
//! - **fan-out** (`--subscribers`, default 100,000): as bench_fanout's throughput mode. Every
//!   node has one Twilio channel `sms` (`rate = "100000/s"`, `concurrency = 256`, `--rate`,
//!   `--concurrency`) pointed at one `provider_sim`; the subscribers are imported through the
//!   first node (`POST /api/v1/subscribers/import`, CSV in `--batch` rows); the incident is opened
//!   through the first node. Timed from the `201 Created` answer to `POST /api/v1/incidents` until
//!   the emulator has accepted one SMS per subscriber (`GET /stats` every 100 ms): deliveries/s =
//!   subscribers / that time. With two nodes both dispatchers claim from the same outbox; the
//!   split between them is read from each node's `crier_send_seconds_count{channel="sms"}`.
//!   Checked: the emulator accepted exactly one SMS per subscriber, no duplicates, no
//!   rejections, and every node's `GET /api/v1/incidents/{id}/deliveries` reports all delivered,
//!   none dead or rejected.
//! - **writes** (`--clients`, default 64): as bench_writes at one concurrency level. Each client
//!   opens its own incident and posts `POST /api/v1/incidents/{id}/updates` over its own
//!   keep-alive connection (examples/common/writes.rs), all on one thread of this process; with
//!   two nodes client i talks to node i mod 2 (32 and 32). Untimed warm-up (`--warmup` s), then
//!   the timed window (`--seconds` s): writes/s = writes answered `201` / the window until the
//!   last in-flight answer; latencies nearest-rank.
//!
//! CPU columns: each process's CPU time during the timed part as a percentage of one core
//! (Linux /proc): crier (all nodes), the emulator, PostgreSQL (the postmaster and its children,
//! found from a backend's parent; 0 for sled) and this program. Everything shares the machine.
//! Targets: two PostgreSQL nodes reach at least 50 % of sled's fan-out rate (issue 16). A missed
//! target is reported, not a failure; a failed check exits non-zero. Child processes are killed
//! when this program exits, also on error paths (a guard with `Drop`).

mod common;
#[path = "common/writes.rs"]
mod writes;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use common::{
    cpu_time, json_of, load_average, ms, percentile, sim_stats, target_binary, CrierServe, Proc,
    ServeOptions,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use writes::{phase, Worker};

const ACCOUNT_SID: &str = "AC0123";
const AUTH_TOKEN: &str = "secret";
const FROM: &str = "+15005550006";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Setup {
    /// The embedded sled store.
    Sled,
    /// One node on a PostgreSQL database.
    Pg1,
    /// Two nodes on one PostgreSQL database.
    Pg2,
}

impl Setup {
    fn name(self) -> &'static str {
        match self {
            Setup::Sled => "sled",
            Setup::Pg1 => "pg1",
            Setup::Pg2 => "pg2",
        }
    }

    fn nodes(self) -> usize {
        match self {
            Setup::Sled | Setup::Pg1 => 1,
            Setup::Pg2 => 2,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Setup::Sled => "sled, one node",
            Setup::Pg1 => "PostgreSQL, one node",
            Setup::Pg2 => "PostgreSQL, two nodes",
        }
    }
}

#[derive(Parser, Debug)]
#[command(about = "Fan-out and durable writes on sled, PostgreSQL with one node, and with two")]
struct Args {
    /// Configurations to run, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Setup::Sled, Setup::Pg1, Setup::Pg2])]
    configs: Vec<Setup>,
    /// Subscribers of the fan-out.
    #[arg(long, default_value_t = 100_000)]
    subscribers: usize,
    /// Rows per import request.
    #[arg(long, default_value_t = 50_000)]
    batch: usize,
    /// Seconds a fan-out may take before the run fails.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    /// The SMS channel's `rate`.
    #[arg(long, default_value = "100000/s")]
    rate: String,
    /// The SMS channel's `concurrency` (per node).
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Concurrent write clients (split over the nodes).
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Length of the timed write window, in seconds.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Length of the untimed write warm-up, in seconds.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Skip the fan-out.
    #[arg(long)]
    no_fanout: bool,
    /// Skip the writes.
    #[arg(long)]
    no_writes: bool,
    /// `[postgres] pool_size` of each node (crier's default is 16).
    #[arg(long, default_value_t = 16)]
    pool_size: usize,
    /// Run even if the server's fsync or synchronous_commit is off (the figures are then not
    /// durable writes and say so).
    #[arg(long)]
    allow_unsafe_pg: bool,
    /// The crier binary (default: target/release/crier).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// The emulator binary (default: target/release/examples/provider_sim).
    #[arg(long)]
    sim_bin: Option<PathBuf>,
}

// ---------------------------------------------------------------------------
// PostgreSQL: the cluster scripts/pg.sh made, fresh databases on it, its settings and CPU
// ---------------------------------------------------------------------------

/// The cluster from `CRIER_TEST_PG_URL` / `CRIER_TEST_PG_CA`. Its password is kept apart from
/// every URL built here, and never printed.
struct Cluster {
    user: String,
    hostport: String,
    admin_db: String,
    password: String,
    ca: PathBuf,
}

impl Cluster {
    fn from_env() -> Result<Self> {
        let url = std::env::var("CRIER_TEST_PG_URL").context(
            "CRIER_TEST_PG_URL is not set: run this program under scripts/pg.sh \
             (bash scripts/pg.sh target/release/examples/bench_pg ...), or pass --configs sled",
        )?;
        let ca = std::env::var_os("CRIER_TEST_PG_CA")
            .map(PathBuf::from)
            .context("CRIER_TEST_PG_CA is not set (scripts/pg.sh sets it beside the URL)")?;
        Self::parse(&url, ca)
    }

    /// `postgres://USER:PASSWORD@HOST:PORT/DB`; no error shows the URL (it holds the password).
    fn parse(url: &str, ca: PathBuf) -> Result<Self> {
        let config = tokio_postgres::Config::from_str(url).map_err(|_| {
            anyhow::anyhow!("CRIER_TEST_PG_URL is not a postgres://USER:PASSWORD@HOST:PORT/DB URL")
        })?;
        let user = config
            .get_user()
            .context("CRIER_TEST_PG_URL names no user")?
            .to_owned();
        let password = config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .context("CRIER_TEST_PG_URL carries no password")?;
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => bail!("CRIER_TEST_PG_URL names no TCP host"),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let admin_db = config
            .get_dbname()
            .context("CRIER_TEST_PG_URL names no database")?
            .to_owned();
        Ok(Cluster {
            user,
            hostport: format!("{host}:{port}"),
            admin_db,
            password,
            ca,
        })
    }

    /// The URL of database `db`, without password, TLS required (verified against the CA).
    fn url(&self, db: &str) -> String {
        format!(
            "postgres://{}@{}/{db}?sslmode=require",
            self.user, self.hostport
        )
    }

    fn handle(&self, db: &str) -> Result<crier::pg::Pg> {
        crier::pg::Pg::new(&crier::pg::ConnectOptions {
            url: &self.url(db),
            password: Some(&self.password),
            ca_file: Some(&self.ca),
            pool_size: 1,
        })
        .context("cannot build a PostgreSQL handle")
    }

    /// Creates a fresh, empty database; returns its name.
    async fn create_db(&self, label: &str) -> Result<String> {
        let name = format!(
            "crier_bench_{label}_{}",
            ulid::Ulid::new().to_string().to_lowercase()
        );
        let admin = self.handle(&self.admin_db)?;
        let client = admin
            .client()
            .await
            .context("cannot connect to the PostgreSQL cluster")?;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .with_context(|| format!("CREATE DATABASE {name}"))?;
        Ok(name)
    }

    /// Drops a database made by [`Cluster::create_db`] (its nodes stopped first); a failure is
    /// only reported: the cluster is thrown away by scripts/pg.sh anyway.
    async fn drop_db(&self, name: &str) {
        // The stopped nodes' backends may still be ending; `WITH (FORCE)` may not end them for
        // this role, so try again for a few seconds.
        let mut tries = 0;
        let result = loop {
            let result = async {
                let admin = self.handle(&self.admin_db)?;
                let client = admin.client().await?;
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await?;
                anyhow::Ok(())
            }
            .await;
            tries += 1;
            if result.is_ok() || tries == 20 {
                break result;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        if let Err(e) = result {
            eprintln!("note: could not drop database {name}: {e:#}");
        }
    }

    /// The durability settings as crier's role sees them in database `db`, and the PID of the
    /// postmaster (the parent of this connection's backend), for CPU accounting.
    async fn settings(&self, db: &str) -> Result<PgSettings> {
        let pg = self.handle(db)?;
        let client = pg.client().await?;
        let show = |name: &'static str| {
            let client = &client;
            async move {
                let row = client.query_one(&format!("SHOW {name}"), &[]).await?;
                anyhow::Ok(row.try_get::<_, String>(0)?)
            }
        };
        let backend: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await?
            .try_get(0)?;
        Ok(PgSettings {
            version: show("server_version").await?,
            fsync: show("fsync").await?,
            synchronous_commit: show("synchronous_commit").await?,
            wal_sync_method: show("wal_sync_method").await?,
            postmaster: u32::try_from(backend).ok().and_then(parent_pid),
        })
    }
}

struct PgSettings {
    version: String,
    fsync: String,
    synchronous_commit: String,
    wal_sync_method: String,
    postmaster: Option<u32>,
}

impl PgSettings {
    fn durable(&self) -> bool {
        self.fsync == "on" && self.synchronous_commit == "on"
    }
}

/// A process's parent (field 4 of /proc/PID/stat).
fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time of a process and its direct children (the postmaster and its backends and
/// background workers). A backend that exits during the window takes its CPU time with it; crier
/// keeps its pooled connections, so those are few.
fn tree_cpu(root: u32) -> Option<Duration> {
    let mut total = cpu_time(&root.to_string())?;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if parent_pid(pid) == Some(root) {
            total += cpu_time(&pid.to_string()).unwrap_or_default();
        }
    }
    Some(total)
}

// ---------------------------------------------------------------------------
// Nodes
// ---------------------------------------------------------------------------

/// The nodes of one configuration, and the database they share (PostgreSQL), dropped after
/// them.
struct Deployment {
    setup: Setup,
    /// Declared first: the nodes are stopped before the database is dropped.
    nodes: Vec<CrierServe>,
    db: Option<String>,
}

impl Deployment {
    async fn start(
        setup: Setup,
        args: &Args,
        bin: &Path,
        cluster: Option<&Cluster>,
        channels: Vec<(String, String)>,
        label: &str,
    ) -> Result<Self> {
        let mut opts = ServeOptions {
            channels,
            env: vec![
                ("TWILIO_ACCOUNT_SID".into(), ACCOUNT_SID.into()),
                ("TWILIO_AUTH_TOKEN".into(), AUTH_TOKEN.into()),
            ],
            ..ServeOptions::default()
        };
        let db = match setup {
            Setup::Sled => None,
            Setup::Pg1 | Setup::Pg2 => {
                let cluster = cluster.context("PostgreSQL configurations need the cluster")?;
                let db = cluster.create_db(label).await?;
                opts.store = Some(cluster.url(&db));
                opts.config = Some(format!(
                    "[postgres]\nca_file = \"{}\"\npool_size = {}\n",
                    cluster.ca.display(),
                    args.pool_size
                ));
                opts.env
                    .push(("CRIER_PG_PASSWORD".into(), cluster.password.clone()));
                Some(db)
            }
        };
        let mut deployment = Deployment {
            setup,
            nodes: Vec::new(),
            db,
        };
        for i in 0..setup.nodes() {
            let prefix = format!("crier-bench-pg-{}-{label}-n{i}-", setup.name());
            match CrierServe::start_with(bin, &prefix, &opts) {
                Ok(node) => deployment.nodes.push(node),
                Err(e) => {
                    deployment.stop(cluster).await;
                    return Err(e.context(format!(
                        "{}: node {} of {} did not start",
                        setup.describe(),
                        i + 1,
                        setup.nodes()
                    )));
                }
            }
        }
        Ok(deployment)
    }

    fn first(&self) -> Result<&CrierServe> {
        self.nodes.first().context("a deployment without nodes")
    }

    /// The last lines of every node's log, for error messages.
    fn logs(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let text = n.log_text();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("node {} log:\n{}", i + 1, tail.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn crier_cpu(&self) -> Option<Duration> {
        self.nodes
            .iter()
            .map(|n| cpu_time(&n.pid.to_string()))
            .sum()
    }

    /// Stops the nodes, then drops the database.
    async fn stop(mut self, cluster: Option<&Cluster>) {
        self.nodes.clear();
        if let (Some(db), Some(cluster)) = (self.db.take(), cluster) {
            cluster.drop_db(&db).await;
        }
    }
}

fn start_sim(bin: &Path, dir: &Path) -> Result<Proc> {
    let mut cmd = Command::new(bin);
    cmd.args(["--bind", "127.0.0.1:0", "--twilio-auth-token", AUTH_TOKEN])
        .current_dir(dir);
    Proc::start(cmd, &dir.join("provider_sim.log"), "provider_sim")
}

fn sms_channel(sim_url: &str, args: &Args) -> (String, String) {
    (
        "sms".to_owned(),
        format!(
            "kind = \"twilio\"\n\
             account_sid_env = \"TWILIO_ACCOUNT_SID\"\n\
             auth_token_env = \"TWILIO_AUTH_TOKEN\"\n\
             from = \"{FROM}\"\n\
             base_url = \"{sim_url}\"\n\
             rate = \"{}\"\n\
             concurrency = {}\n\
             sms_max_segments = 3\n",
            args.rate, args.concurrency
        ),
    )
}

// ---------------------------------------------------------------------------
// HTTP (as bench_fanout)
// ---------------------------------------------------------------------------

/// Imports subscribers `0..n` (`+3584` and 8 digits) in batches through `node`.
async fn import(http: &reqwest::Client, node: &CrierServe, n: usize, batch: usize) -> Result<()> {
    let t0 = Instant::now();
    let mut done = 0;
    while done < n {
        let k = batch.min(n - done);
        let mut body = String::with_capacity(6 + k * 14);
        body.push_str("phone\n");
        for i in done..done + k {
            body.push_str(&format!("+3584{i:08}\n"));
        }
        let resp = http
            .post(format!("{}/api/v1/subscribers/import", node.url))
            .bearer_auth(&node.token)
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
    }
    eprintln!(
        "  imported {n} subscribers in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn open_incident(http: &reqwest::Client, node: &CrierServe) -> Result<String> {
    let resp = http
        .post(format!("{}/api/v1/incidents", node.url))
        .bearer_auth(&node.token)
        .json(&json!({
            "title": "Check-in delays at Helsinki Airport",
            "impact": "major",
            "message": "We are investigating slow check-in. Updates follow every 30 minutes.",
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

/// Waits until `node` reports the incident's SMS deliveries complete; checks they all
/// succeeded.
async fn check_deliveries(
    http: &reqwest::Client,
    node: &CrierServe,
    id: &str,
    want: u64,
) -> Result<()> {
    let started = Instant::now();
    loop {
        let resp = http
            .get(format!("{}/api/v1/incidents/{id}/deliveries", node.url))
            .bearer_auth(&node.token)
            .send()
            .await?;
        let v = json_of(
            resp,
            "GET /api/v1/incidents/{id}/deliveries",
            StatusCode::OK,
        )
        .await?;
        let sms = v.pointer("/channels/sms").cloned().unwrap_or(Value::Null);
        let n = |k: &str| sms.get(k).and_then(Value::as_u64).unwrap_or(0);
        let complete = v.get("complete").and_then(Value::as_bool) == Some(true);
        if complete || n("delivered") >= want {
            if n("delivered") != want || n("dead") + n("rejected") > 0 || n("total") != want {
                bail!("incident {id}: expected {want} delivered SMS, the node reports {sms}");
            }
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("incident {id}: deliveries not complete 120 s after the emulator accepted them all: {sms}");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// A node's SMS sends so far, from its /metrics (`crier_send_seconds_count{channel="sms"}`).
async fn sms_sends(http: &reqwest::Client, node: &CrierServe) -> Result<u64> {
    let text = http
        .get(format!("{}/metrics", node.url))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(text
        .lines()
        .find_map(|l| {
            l.strip_prefix("crier_send_seconds_count{channel=\"sms\"}")?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0, |v| v as u64))
}

// ---------------------------------------------------------------------------
// The loads
// ---------------------------------------------------------------------------

/// CPU of the processes around a timed part, as a percentage of one core.
#[derive(Default, Clone, Copy)]
struct Cpu {
    crier: Option<f64>,
    sim: Option<f64>,
    pg: Option<f64>,
    client: Option<f64>,
}

#[derive(Clone, Copy)]
struct Snapshot {
    crier: Option<Duration>,
    sim: Option<Duration>,
    pg: Option<Duration>,
    client: Option<Duration>,
}

impl Snapshot {
    fn take(d: &Deployment, sim: Option<&Proc>, postmaster: Option<u32>) -> Self {
        Snapshot {
            crier: d.crier_cpu(),
            sim: sim.and_then(|s| cpu_time(&s.pid.to_string())),
            pg: match d.setup {
                Setup::Sled => Some(Duration::ZERO),
                Setup::Pg1 | Setup::Pg2 => postmaster.and_then(tree_cpu),
            },
            client: cpu_time("self"),
        }
    }

    fn share_until(self, end: Snapshot, over: Duration) -> Cpu {
        let share = |a: Option<Duration>, b: Option<Duration>| {
            Some(100.0 * b?.saturating_sub(a?).as_secs_f64() / over.as_secs_f64())
        };
        Cpu {
            crier: share(self.crier, end.crier),
            sim: share(self.sim, end.sim),
            pg: share(self.pg, end.pg),
            client: share(self.client, end.client),
        }
    }
}

struct FanOut {
    setup: Setup,
    subscribers: usize,
    elapsed: Duration,
    first: Option<Duration>,
    /// SMS sent by each node.
    per_node: Vec<u64>,
    cpu: Cpu,
}

impl FanOut {
    fn per_second(&self) -> f64 {
        self.subscribers as f64 / self.elapsed.as_secs_f64()
    }
}

async fn fan_out(
    setup: Setup,
    args: &Args,
    bins: &Bins,
    cluster: Option<&Cluster>,
    postmaster: Option<u32>,
) -> Result<FanOut> {
    let dir = tempfile::Builder::new()
        .prefix("crier-bench-pg-sim-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let sim = start_sim(&bins.sim, dir.path())?;
    let channel = sms_channel(&sim.url, args);
    let d = Deployment::start(setup, args, &bins.crier, cluster, vec![channel], "fanout").await?;
    let result = fan_out_on(&d, args, &sim, postmaster).await;
    let result = result.map_err(|e| {
        e.context(format!(
            "{}: fan-out failed\n{}\nprovider_sim's log:\n{}",
            setup.describe(),
            d.logs(),
            sim.log_tail(5)
        ))
    });
    d.stop(cluster).await;
    result
}

async fn fan_out_on(
    d: &Deployment,
    args: &Args,
    sim: &Proc,
    postmaster: Option<u32>,
) -> Result<FanOut> {
    let n = args.subscribers;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()?;
    let first_node = d.first()?;
    import(&http, first_node, n, args.batch).await?;
    let s0 = sim_stats(&http, sim).await?;
    if s0.accepted != 0 {
        bail!(
            "the emulator accepted {} SMS before the incident was opened",
            s0.accepted
        );
    }
    let mut sent0 = Vec::new();
    for node in &d.nodes {
        sent0.push(sms_sends(&http, node).await?);
    }
    let cpu0 = Snapshot::take(d, Some(sim), postmaster);
    let id = open_incident(&http, first_node).await?;
    let t_201 = Instant::now();
    eprintln!("  incident {id} opened; waiting for {n} SMS at the emulator");
    let timeout = Duration::from_secs(args.timeout);
    let mut first = None;
    let mut last_print = Instant::now();
    let mut last = s0.accepted;
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
            bail!(
                "only {} of {n} SMS accepted {} s after the incident was opened",
                s.accepted,
                args.timeout
            );
        }
        if last_print.elapsed() >= Duration::from_secs(5) {
            let dt = last_print.elapsed().as_secs_f64();
            last_print = Instant::now();
            eprintln!(
                "  {:>6.1} s: {} / {n} accepted ({:.0}/s now)",
                t_201.elapsed().as_secs_f64(),
                s.accepted,
                (s.accepted - last) as f64 / dt
            );
            last = s.accepted;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = t_201.elapsed();
    let cpu = cpu0.share_until(Snapshot::take(d, Some(sim), postmaster), elapsed);

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
    let mut per_node = Vec::new();
    for (node, before) in d.nodes.iter().zip(sent0) {
        check_deliveries(&http, node, &id, n as u64).await?;
        per_node.push(sms_sends(&http, node).await?.saturating_sub(before));
    }
    if per_node.iter().sum::<u64>() != n as u64 {
        bail!("the nodes report {per_node:?} SMS sent; expected {n} in all");
    }
    Ok(FanOut {
        setup: d.setup,
        subscribers: n,
        elapsed,
        first,
        per_node,
        cpu,
    })
}

struct Writes {
    setup: Setup,
    writes: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
    cpu: Cpu,
}

impl Writes {
    fn per_second(&self) -> f64 {
        self.writes as f64 / self.elapsed.as_secs_f64()
    }
}

async fn writes(
    setup: Setup,
    args: &Args,
    bins: &Bins,
    cluster: Option<&Cluster>,
    postmaster: Option<u32>,
) -> Result<Writes> {
    let d = Deployment::start(setup, args, &bins.crier, cluster, Vec::new(), "writes").await?;
    let result = writes_on(&d, args, postmaster).await.map_err(|e| {
        e.context(format!(
            "{}: writes failed at {} clients\n{}",
            setup.describe(),
            args.clients,
            d.logs()
        ))
    });
    d.stop(cluster).await;
    result
}

async fn writes_on(d: &Deployment, args: &Args, postmaster: Option<u32>) -> Result<Writes> {
    let mut workers = Vec::with_capacity(args.clients);
    let tokens: Vec<Arc<str>> = d
        .nodes
        .iter()
        .map(|n| Arc::from(n.token.as_str()))
        .collect();
    for i in 0..args.clients {
        let k = i % d.nodes.len();
        workers.push(Worker::open(&d.nodes[k], tokens[k].clone(), i).await?);
    }
    let warmup = Duration::from_secs_f64(args.warmup);
    if !warmup.is_zero() {
        phase(&workers, warmup).await?;
    }
    let cpu0 = Snapshot::take(d, None, postmaster);
    let (mut latencies, elapsed) = phase(&workers, Duration::from_secs_f64(args.seconds)).await?;
    let cpu = cpu0.share_until(Snapshot::take(d, None, postmaster), elapsed);
    latencies.sort_unstable();
    Ok(Writes {
        setup: d.setup,
        writes: latencies.len(),
        elapsed,
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
        max: latencies.last().copied().unwrap_or_default(),
        cpu,
    })
}

// ---------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------

struct Bins {
    crier: PathBuf,
    sim: PathBuf,
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}%"))
}

/// `a / b` as a percentage, or `-` when either is missing.
fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.0}%", 100.0 * a / b),
        _ => "-".to_owned(),
    }
}

async fn run(args: &Args, bins: &Bins) -> Result<()> {
    let wants_pg = args.configs.iter().any(|c| *c != Setup::Sled);
    let cluster = if wants_pg {
        Some(Cluster::from_env()?)
    } else {
        None
    };
    let mut postmaster = None;
    if let Some(cluster) = &cluster {
        let db = cluster.create_db("settings").await?;
        let s = cluster.settings(&db).await;
        cluster.drop_db(&db).await;
        let s = s?;
        println!(
            "PostgreSQL {} at {} (TLS verified against {}): fsync = {}, synchronous_commit = {}, wal_sync_method = {}{}",
            s.version,
            cluster.hostport,
            cluster.ca.display(),
            s.fsync,
            s.synchronous_commit,
            s.wal_sync_method,
            if s.durable() {
                " -- a commit returns once its WAL is flushed to disk"
            } else {
                " -- NOT durable: a commit may return before its WAL is on disk"
            }
        );
        if !s.durable() && !args.allow_unsafe_pg {
            bail!("fsync or synchronous_commit is off: the PostgreSQL figures would not be durable writes (--allow-unsafe-pg to run anyway)");
        }
        if s.postmaster.is_none() {
            println!("note: the postmaster's PID was not found; no PostgreSQL CPU column");
        }
        postmaster = s.postmaster;
        println!(
            "each node: pool_size = {}; each configuration and load on a fresh database",
            args.pool_size
        );
    }
    println!();

    let mut fan_outs = Vec::new();
    if !args.no_fanout {
        println!(
            "fan-out: {} SMS subscribers, one incident opened through node 1; twilio channel (rate {}, concurrency {} per node) -> provider_sim",
            args.subscribers, args.rate, args.concurrency
        );
        println!(
            "{:<24} {:>9} {:>8} {:>12} {:>17} {:>7} {:>7} {:>7} {:>7}",
            "configuration",
            "fan-out s",
            "first ms",
            "deliveries/s",
            "sent per node",
            "crier",
            "sim",
            "pg",
            "client"
        );
        for &setup in &args.configs {
            eprintln!("fan-out on {}", setup.describe());
            let f = fan_out(setup, args, bins, cluster.as_ref(), postmaster).await?;
            let split: Vec<String> = f.per_node.iter().map(u64::to_string).collect();
            println!(
                "{:<24} {:>9.2} {:>8} {:>12.0} {:>17} {:>7} {:>7} {:>7} {:>7}",
                f.setup.describe(),
                f.elapsed.as_secs_f64(),
                f.first
                    .map_or_else(|| "-".to_owned(), |d| format!("{:.0}", ms(d))),
                f.per_second(),
                split.join(" + "),
                pct(f.cpu.crier),
                pct(f.cpu.sim),
                pct(f.cpu.pg),
                pct(f.cpu.client)
            );
            fan_outs.push(f);
        }
        println!();
    }

    let mut write_runs = Vec::new();
    if !args.no_writes {
        println!(
            "writes: {} clients, POST /api/v1/incidents/{{id}}/updates -> 201 (durable), split over the nodes; window {:.1} s after {:.1} s warm-up",
            args.clients, args.seconds, args.warmup
        );
        println!(
            "{:<24} {:>8} {:>9} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}",
            "configuration",
            "writes",
            "writes/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "crier",
            "pg",
            "client"
        );
        for &setup in &args.configs {
            eprintln!("writes on {}", setup.describe());
            let w = writes(setup, args, bins, cluster.as_ref(), postmaster).await?;
            println!(
                "{:<24} {:>8} {:>9.1} {:>7.2} {:>7.2} {:>7.2} {:>7} {:>7} {:>7}",
                w.setup.describe(),
                w.writes,
                w.per_second(),
                ms(w.p50),
                ms(w.p99),
                ms(w.max),
                pct(w.cpu.crier),
                pct(w.cpu.pg),
                pct(w.cpu.client)
            );
            write_runs.push(w);
        }
        println!();
    }

    // Ratios against sled, and two nodes against one.
    let fan = |s: Setup| {
        fan_outs
            .iter()
            .find(|f| f.setup == s)
            .map(FanOut::per_second)
    };
    let wr = |s: Setup| {
        write_runs
            .iter()
            .find(|w| w.setup == s)
            .map(Writes::per_second)
    };
    println!(
        "{:<24} {:>14} {:>14} {:>14}",
        "ratios", "fan-out", "writes", ""
    );
    for (name, a, b) in [
        ("pg1 / sled", Setup::Pg1, Setup::Sled),
        ("pg2 / sled", Setup::Pg2, Setup::Sled),
        ("pg2 / pg1", Setup::Pg2, Setup::Pg1),
    ] {
        println!(
            "{:<24} {:>14} {:>14}",
            name,
            ratio(fan(a), fan(b)),
            ratio(wr(a), wr(b))
        );
    }
    if let (Some(two), Some(sled)) = (fan(Setup::Pg2), fan(Setup::Sled)) {
        let share = two / sled;
        println!(
            "target: two PostgreSQL nodes >= 50% of sled's fan-out rate: {} ({:.0}%: {two:.0}/s vs {sled:.0}/s)",
            if share >= 0.5 { "met" } else { "NOT met" },
            100.0 * share
        );
    }
    println!("load average after: {}", load_average());
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.configs.is_empty() {
        bail!("--configs needs one or more of sled, pg1, pg2");
    }
    if args.subscribers == 0 || args.subscribers > 100_000_000 || args.batch == 0 {
        bail!("--subscribers must be between 1 and 100000000 and --batch positive");
    }
    if args.clients == 0 || !(args.seconds > 0.0 && args.warmup >= 0.0) {
        bail!("--clients and --seconds must be positive and --warmup not negative");
    }
    if args.no_fanout && args.no_writes {
        bail!("--no-fanout and --no-writes together leave nothing to measure");
    }
    // Absolute paths (target_binary): the children run in their temporary directories.
    let bins = Bins {
        crier: target_binary(args.bin.clone(), "release/crier")?,
        sim: target_binary(args.sim_bin.clone(), "release/examples/provider_sim")?,
    };
    // One thread for this program's clients, as bench_writes and bench_fanout.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    println!(
        "bench_pg: {} on {}; {} CPU(s); load average before: {}",
        args.configs
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(", "),
        bins.crier.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    rt.block_on(run(&args, &bins))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nodes get the URL without the password (crier refuses one in its store URL, and it
    /// would show in process lists); the password travels in CRIER_PG_PASSWORD only.
    #[test]
    fn the_nodes_urls_carry_no_password() {
        let c = Cluster::parse(
            "postgres://crier_test:pw-s3cret@127.0.0.1:5433/crier_test",
            PathBuf::from("/tmp/ca.pem"),
        )
        .unwrap();
        assert_eq!(
            c.url("crier_bench_x"),
            "postgres://crier_test@127.0.0.1:5433/crier_bench_x?sslmode=require"
        );
        assert_eq!(c.password, "pw-s3cret");
        assert_eq!(c.admin_db, "crier_test");
    }

    #[test]
    fn a_bad_url_is_refused_without_showing_it() {
        for url in [
            "postgres://crier_test:pw-s3cret@127.0.0.1:notaport/crier_test",
            "postgres://crier_test@127.0.0.1:5433/crier_test",
        ] {
            let e = format!("{:#}", Cluster::parse(url, PathBuf::new()).err().unwrap());
            assert!(!e.contains("pw-s3cret"), "{e}");
            assert!(e.contains("CRIER_TEST_PG_URL"), "{e}");
        }
    }

    /// The PostgreSQL CPU column finds the postmaster as a backend's parent.
    #[test]
    fn a_process_parent_is_read_from_proc() {
        assert_eq!(
            parent_pid(std::process::id()),
            Some(std::os::unix::process::parent_id())
        );
        assert!(tree_cpu(std::os::unix::process::parent_id()).is_some());
    }
}
