//! Shared test helpers: an in-process app on port 0 with a temporary data dir, and the real
//! `crier` binary spawned as a child process for CLI, restart and crash tests.

use crier::config::Config;
use crier::server::Server;
use crier::store::Store;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use tempfile::TempDir;
use tokio::sync::oneshot;

/// An app running inside the test's runtime.
pub struct TestApp {
    pub base: String,
    pub token: String,
    pub client: reqwest::Client,
    pub store: Store,
    pub dir: TempDir,
    shutdown: oneshot::Sender<()>,
    running: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// The app with no channels (nothing is sent in the background, so store checksums are stable).
pub async fn spawn_app() -> TestApp {
    spawn_app_with_channels(&[]).await
}

/// The app with channel files (`name`, TOML text) written to `<dir>/channels`.
pub async fn spawn_app_with_channels(channels: &[(&str, &str)]) -> TestApp {
    spawn_app_with(channels, |_| {}).await
}

/// The environment a test app reads the secrets named by `*_env` keys from: only these
/// variables (a test never changes the process environment: `set_var` is unsound while other
/// test threads run).
pub fn env(vars: &[(&str, &str)]) -> crier::config::Environment {
    crier::config::Environment::from_pairs(vars.iter().copied())
}

/// The app with channel files and a configuration adjusted by `configure`.
pub async fn spawn_app_with(
    channels: &[(&str, &str)],
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let channels_dir = dir.path().join("channels");
    std::fs::create_dir_all(&channels_dir).unwrap();
    for (name, text) in channels {
        // A name with a slash is a file under the channels folder (a channel's own templates).
        let path = if name.contains('/') {
            channels_dir.join(name)
        } else {
            channels_dir.join(format!("{name}.toml"))
        };
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let config = Config {
        channels_dir,
        data_dir: dir.path().join("data"),
        bind: "127.0.0.1:0".parse().unwrap(),
        admin_token_env: "CRIER_TEST_UNSET_TOKEN_VAR".into(),
        templates_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/templates").into(),
        // Hermetic: secrets come only from what a test passes in `configure` (see [`env`]).
        env: env(&[]),
        ..Config::default()
    };
    let mut config = config;
    configure(&mut config);
    if let Some(store) = pg_store_for_tests().await {
        config.store = store;
    }
    let (server, _) = Server::build(&config).await.unwrap();
    let addr = server.local_addr().unwrap();
    let store = server.store();
    let (tx, rx) = oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = rx.await;
    }));
    let token = crier::token::read_admin_token(&dir.path().join("data"))
        .unwrap()
        .unwrap();
    TestApp {
        base: format!("http://{addr}"),
        token,
        client: reqwest::Client::new(),
        store,
        dir,
        shutdown: tx,
        running,
    }
}

/// Whether this run's apps keep their store in PostgreSQL (`CRIER_TEST_STORE=postgres`): the
/// few tests of what only sled has (its group commit, its files, its backup format) say so and
/// stop there.
pub fn on_postgres() -> bool {
    std::env::var("CRIER_TEST_STORE").ok().as_deref() == Some("postgres")
}

/// Prints why a sled-specific test stops early on PostgreSQL, and tells the caller to.
pub fn sled_only(what: &str) -> bool {
    if on_postgres() {
        eprintln!("sled-specific, not run on PostgreSQL: {what}");
        return true;
    }
    false
}

/// With `CRIER_TEST_STORE=postgres` (and the throwaway cluster of scripts/pg.sh), each app gets
/// a fresh database of its own instead of the sled store: the same tests, on the other backend.
pub async fn pg_store_for_tests() -> Option<crier::pg::settings::StoreSetting> {
    if !on_postgres() {
        return None;
    }
    Some(PgDatabase::create().await.setting())
}

/// A fresh database on the throwaway cluster of scripts/pg.sh (`CRIER_TEST_PG_URL`,
/// `CRIER_TEST_PG_CA`): what the in-process app and the real binary need to reach it.
#[derive(Clone)]
pub struct PgDatabase {
    /// `postgres://USER@HOST:PORT/DB` without the password (as `serve --store` and
    /// `store migrate --to` want it).
    pub url: String,
    /// The password, for `CRIER_PG_PASSWORD` (never on a command line).
    pub password: String,
    /// The CA that signed the cluster's certificate.
    pub ca: Option<PathBuf>,
}

impl PgDatabase {
    /// Creates a database of its own on the cluster.
    pub async fn create() -> PgDatabase {
        let url = std::env::var("CRIER_TEST_PG_URL")
            .expect("a PostgreSQL test needs scripts/pg.sh (CRIER_TEST_PG_URL)");
        let rest = url.strip_prefix("postgres://").unwrap();
        let (userinfo, rest) = rest.split_once('@').unwrap();
        let (user, password) = userinfo.split_once(':').unwrap();
        let (hostport, _) = rest.split_once('/').unwrap();
        let ca = std::env::var_os("CRIER_TEST_PG_CA").map(PathBuf::from);
        let tls = if ca.is_some() { "" } else { "?sslmode=disable" };
        let admin_url = format!("postgres://{user}@{hostport}/postgres{tls}");
        let admin = crier::pg::Pg::new(&crier::pg::ConnectOptions {
            url: &admin_url,
            password: Some(password),
            ca_file: ca.as_deref(),
            pool_size: 1,
        })
        .unwrap();
        let db = format!("crier_api_{}", ulid::Ulid::new().to_string().to_lowercase());
        admin
            .client()
            .await
            .unwrap()
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .unwrap();
        admin.close();
        PgDatabase {
            url: format!("postgres://{user}@{hostport}/{db}{tls}"),
            password: password.to_owned(),
            ca,
        }
    }

    /// [`Self::create`] from synchronous code, in or outside a runtime (on a thread of its own).
    pub fn create_blocking() -> PgDatabase {
        std::thread::spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(PgDatabase::create())
        })
        .join()
        .unwrap()
    }

    /// The in-process app's store setting for this database.
    pub fn setting(&self) -> crier::pg::settings::StoreSetting {
        let file = crier::pg::settings::PostgresFile {
            password_env: Some("T_PG_PASSWORD".into()),
            ca_file: self.ca.clone(),
            pool_size: Some(4),
            // The scheduler's tests wait for its ticks: a quick first election.
            leader_check: Some("100ms".into()),
            lease: None,
        };
        crier::pg::settings::StoreSetting::from_parts(
            Some(&self.url),
            Some(file),
            &env(&[("T_PG_PASSWORD", &self.password)]),
        )
        .unwrap()
    }

    /// A connection pool of the test's own on the database, to read what the nodes wrote.
    pub fn pool(&self) -> crier::pg::Pg {
        crier::pg::Pg::new(&crier::pg::ConnectOptions {
            url: &self.url,
            password: Some(&self.password),
            ca_file: self.ca.as_deref(),
            pool_size: 2,
        })
        .unwrap()
    }

    /// The `[postgres]` table a config file for the real binary needs (the password comes
    /// from `CRIER_PG_PASSWORD`, the default).
    pub fn config_table(&self) -> String {
        let mut t = String::from("\n[postgres]\npool_size = 4\nleader_check = \"100ms\"\n");
        if let Some(ca) = &self.ca {
            t.push_str(&format!("ca_file = {:?}\n", ca.display().to_string()));
        }
        t
    }
}

/// The database the real binary serves `data` from in the PostgreSQL run: made fresh the first
/// time, the same one when a test starts the binary again on the same data directory (a
/// restart); `None` on the sled run.
pub fn bin_database_for(data: &Path) -> Option<PgDatabase> {
    static DATABASES: std::sync::Mutex<Vec<(PathBuf, PgDatabase)>> =
        std::sync::Mutex::new(Vec::new());
    if !on_postgres() {
        return None;
    }
    let mut dbs = DATABASES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, db)) = dbs.iter().find(|(d, _)| d == data) {
        return Some(db.clone());
    }
    let db = PgDatabase::create_blocking();
    dbs.push((data.to_path_buf(), db.clone()));
    Some(db)
}

/// A response: status, content type and parsed body.
pub struct Resp {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

impl Resp {
    /// The problem+json `detail`, asserting the content type.
    pub fn problem(&self) -> &str {
        assert_eq!(
            self.content_type, "application/problem+json",
            "{:?}",
            self.body
        );
        self.body["detail"].as_str().unwrap()
    }
}

async fn into_resp(r: reqwest::Response) -> Resp {
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Resp {
        status,
        content_type,
        body,
    }
}

impl TestApp {
    /// Signals shutdown (as SIGTERM does) and returns the server's own result once it has
    /// stopped; the data directory stays until the returned value is dropped.
    pub async fn shut_down(self) -> (anyhow::Result<()>, TempDir) {
        let TestApp {
            shutdown,
            running,
            dir,
            ..
        } = self;
        let _ = shutdown.send(());
        (running.await.unwrap(), dir)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// An authenticated request with an optional JSON body.
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Resp {
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        into_resp(req.send().await.unwrap()).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    /// A raw request with any body and headers, for malformed-input tests.
    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
        content_type: Option<&str>,
        token: Option<&str>,
    ) -> Resp {
        let mut req = self.client.request(method, self.url(path)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        into_resp(req.send().await.unwrap()).await
    }

    /// Creates a component.
    pub async fn component(&self, name: &str) {
        let r = self
            .put(
                &format!("/api/v1/components/{name}"),
                serde_json::json!({"status": "operational"}),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }

    /// Opens an incident and returns its id.
    pub async fn open_incident(&self, title: &str) -> String {
        let r = self
            .post(
                "/api/v1/incidents",
                serde_json::json!({"title": title, "impact": "major", "message": "Investigating"}),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }

    pub async fn checksum(&self) -> u32 {
        self.store.checksum().await.unwrap()
    }
}

/// The path of the binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_crier")
}

/// The real binary running `serve` as a child process.
pub struct ServeProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub data: PathBuf,
    /// The admin token given in `CRIER_ADMIN_TOKEN` (nodes sharing a database share it); `None`
    /// when the node generated its own into the data directory.
    admin_token: Option<String>,
}

impl ServeProcess {
    /// Starts `crier serve --data DIR --bind 127.0.0.1:0` and waits for its listening line.
    pub fn start(data: &Path) -> ServeProcess {
        Self::start_with(data, &data.join("no-channels"))
    }

    /// Starts `serve` with a channels folder.
    pub fn start_with(data: &Path, channels: &Path) -> ServeProcess {
        Self::start_env(data, channels, None, &[])
    }

    /// Starts `serve` with a channels folder, an optional config file and extra environment;
    /// in the PostgreSQL run (`CRIER_TEST_STORE=postgres`) on the data directory's own database
    /// ([`bin_database_for`]).
    pub fn start_env(
        data: &Path,
        channels: &Path,
        config: Option<&Path>,
        env: &[(&str, &str)],
    ) -> ServeProcess {
        Self::start_on(data, channels, config, env, bin_database_for(data))
    }

    /// Starts `serve` on the given store: sled in `data` (`None`), or `--store URL` with the
    /// password in `CRIER_PG_PASSWORD` and the CA in the config's `[postgres]` table (the test's
    /// config file, if any, copied with that table added).
    pub fn start_on(
        data: &Path,
        channels: &Path,
        config: Option<&Path>,
        env: &[(&str, &str)],
        pg: Option<PgDatabase>,
    ) -> ServeProcess {
        let mut cmd = Command::new(bin());
        cmd.arg("serve")
            .env_remove("CRIER_ADMIN_TOKEN")
            .env_remove("CRIER_STORE")
            .env_remove("CRIER_PG_PASSWORD");
        let pg_config = pg.as_ref().map(|db| {
            let mut text = config
                .map(|c| std::fs::read_to_string(c).unwrap())
                .unwrap_or_default();
            text.push_str(&db.config_table());
            let file = tempfile::Builder::new()
                .prefix("crier-pg-")
                .suffix(".toml")
                .tempfile()
                .unwrap();
            std::fs::write(file.path(), text).unwrap();
            cmd.arg("--store")
                .arg(&db.url)
                .env("CRIER_PG_PASSWORD", &db.password);
            file.into_temp_path()
        });
        if let Some(c) = pg_config.as_deref().or(config) {
            cmd.arg("--config").arg(c);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let admin_token = env
            .iter()
            .find(|(k, _)| *k == "CRIER_ADMIN_TOKEN")
            .map(|(_, v)| (*v).to_owned());
        let mut child = cmd
            .args(["--bind", "127.0.0.1:0", "--data"])
            .arg(data)
            .arg("--channels")
            .arg(channels)
            .arg("--templates")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/templates"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    if let Some(tx) = tx.take() {
                        let addr = rest
                            .split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_owned();
                        let _ = tx.send(addr);
                    }
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("crier serve did not report its address")
            .parse()
            .unwrap();
        // The config was read at start-up; its copy may go.
        drop(pg_config);
        ServeProcess {
            child,
            addr,
            data: data.to_path_buf(),
            admin_token,
        }
    }

    /// Starts `serve` on the PostgreSQL database `db` (`store = "postgres://…"` and a
    /// `[postgres]` table in a config file written beside `data`, the password in
    /// `CRIER_PG_PASSWORD`, claims leased for `lease`), with `admin_token` as its admin token
    /// (so several nodes on one database answer the same token). `top` is more top-level config.
    pub fn start_pg(
        data: &Path,
        channels: &Path,
        db: &PgDatabase,
        lease: &str,
        top: &str,
        admin_token: &str,
        env: &[(&str, &str)],
    ) -> ServeProcess {
        let mut config = format!(
            "{top}\nstore = \"{}\"\n[postgres]\nlease = \"{lease}\"\n",
            db.url
        );
        if let Some(ca) = &db.ca {
            config.push_str(&format!("ca_file = \"{}\"\n", ca.display()));
        }
        let file = data.with_extension("toml");
        std::fs::write(&file, config).unwrap();
        let mut all: Vec<(&str, &str)> = vec![
            ("CRIER_PG_PASSWORD", &db.password),
            ("CRIER_ADMIN_TOKEN", admin_token),
        ];
        all.extend_from_slice(env);
        Self::start_on(data, channels, Some(&file), &all, None)
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn token(&self) -> String {
        if let Some(t) = &self.admin_token {
            return t.clone();
        }
        crier::token::read_admin_token(&self.data).unwrap().unwrap()
    }

    /// SIGKILL, as a crash.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, a graceful stop; returns the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        self.child.wait().unwrap()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the real binary as a client of `app` (its URL and token; the environment's cleared).
pub async fn crier(app: &TestApp, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(bin())
        .args(["--url", &app.base, "--token", &app.token])
        .args(args)
        .env_remove("CRIER_URL")
        .env_remove("CRIER_TOKEN")
        .output()
        .await
        .unwrap()
}

/// A command's standard output, as text.
pub fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A command's standard error, as text.
pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A successful command's `--json` output.
pub fn json(o: &std::process::Output) -> Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}
