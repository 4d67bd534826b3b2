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
    let url = std::env::var("CRIER_TEST_PG_URL")
        .expect("CRIER_TEST_STORE=postgres needs scripts/pg.sh (CRIER_TEST_PG_URL)");
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
    let store_url = format!("postgres://{user}@{hostport}/{db}{tls}");
    let file = crier::pg::settings::PostgresFile {
        password_env: Some("T_PG_PASSWORD".into()),
        ca_file: ca,
        pool_size: Some(4),
        // The scheduler's tests wait for its ticks: a quick first election.
        leader_check: Some("100ms".into()),
    };
    Some(
        crier::pg::settings::StoreSetting::from_parts(
            Some(&store_url),
            Some(file),
            &env(&[("T_PG_PASSWORD", password)]),
        )
        .unwrap(),
    )
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

    /// Starts `serve` with a channels folder, an optional config file and extra environment.
    pub fn start_env(
        data: &Path,
        channels: &Path,
        config: Option<&Path>,
        env: &[(&str, &str)],
    ) -> ServeProcess {
        let mut cmd = Command::new(bin());
        if let Some(c) = config {
            cmd.arg("serve").arg("--config").arg(c);
        } else {
            cmd.arg("serve");
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .args(["--bind", "127.0.0.1:0", "--data"])
            .arg(data)
            .arg("--channels")
            .arg(channels)
            .arg("--templates")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/templates"))
            .env_remove("CRIER_ADMIN_TOKEN")
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
        ServeProcess {
            child,
            addr,
            data: data.to_path_buf(),
        }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn token(&self) -> String {
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
