//! A database of its own for each PostgreSQL test, in the throwaway cluster that scripts/pg.sh
//! starts (CRIER_TEST_PG_URL). Without that variable the tests print a notice and skip, unless
//! CRIER_TEST_PG_REQUIRED is set (scripts/test.sh sets it), when they fail: a broken setup on CI
//! must not pass as skipped tests. The databases go with the cluster.

use std::path::PathBuf;
use std::time::Duration;

use super::{ConnectOptions, Pg};

pub(crate) struct TestDb {
    /// postgres://USER@HOST:PORT/DB, no password.
    url: String,
    password: String,
    ca: Option<PathBuf>,
}

fn split_url(url: &str) -> Option<(String, String, String)> {
    let rest = url.strip_prefix("postgres://")?;
    let (userinfo, rest) = rest.split_once('@')?;
    let (user, password) = userinfo.split_once(':')?;
    let (hostport, _db) = rest.split_once('/')?;
    Some((user.to_string(), password.to_string(), hostport.to_string()))
}

impl TestDb {
    /// A fresh, empty database, or None (after a printed notice) when no test cluster is set.
    pub(crate) async fn create(name: &str) -> Option<TestDb> {
        let Ok(url) = std::env::var("CRIER_TEST_PG_URL") else {
            if std::env::var_os("CRIER_TEST_PG_REQUIRED").is_some() {
                panic!(
                    "CRIER_TEST_PG_REQUIRED is set but CRIER_TEST_PG_URL is not: run the tests \
                     through scripts/pg.sh"
                );
            }
            // Written to stderr directly, past the test harness's capture, once per run.
            static NOTICE: std::sync::Once = std::sync::Once::new();
            NOTICE.call_once(|| {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "NOTICE: skipping the PostgreSQL tests (src/pg/, crier store migrate; first: \
                     {name}): CRIER_TEST_PG_URL is unset; run `bash scripts/pg.sh cargo test \
                     --lib -- pg:: store_migrate` to start a throwaway PostgreSQL for them"
                );
            });
            return None;
        };
        let (user, password, hostport) = split_url(&url)
            .expect("CRIER_TEST_PG_URL must look like postgres://USER:PASSWORD@HOST:PORT/DB");
        let ca = std::env::var_os("CRIER_TEST_PG_CA").map(PathBuf::from);
        let admin = TestDb {
            url: url.replacen(&format!(":{password}@"), "@", 1),
            password: password.clone(),
            ca: ca.clone(),
        };
        let dbname = format!(
            "crier_t_{name}_{}",
            ulid::Ulid::new().to_string().to_lowercase()
        );
        let client = admin
            .pg(1)
            .client()
            .await
            .expect("connect to the test cluster");
        client
            .batch_execute(&format!("CREATE DATABASE {dbname}"))
            .await
            .expect("create the test database");
        Some(TestDb {
            url: format!("postgres://{user}@{hostport}/{dbname}"),
            password,
            ca,
        })
    }

    /// The URL without password, and the password.
    pub(crate) fn url_and_password(&self) -> (String, String) {
        (self.url.clone(), self.password.clone())
    }

    pub(crate) fn ca_file(&self) -> Option<PathBuf> {
        self.ca.clone()
    }

    /// A handle on this database (TLS verified against the test CA when there is one).
    pub(crate) fn pg(&self, pool_size: usize) -> Pg {
        let url = if self.ca.is_some() {
            self.url.clone()
        } else {
            format!("{}?sslmode=disable", self.url)
        };
        Pg::new(&ConnectOptions {
            url: &url,
            password: Some(&self.password),
            ca_file: self.ca.as_deref(),
            pool_size,
        })
        .expect("test database handle")
    }

    /// A handle on this database, migrated.
    pub(crate) async fn migrated(&self, pool_size: usize) -> Pg {
        let pg = self.pg(pool_size);
        pg.migrate().await.expect("migrate the test database");
        pg
    }
}

/// Waits until `cond` holds, checking every 20 ms, and fails with `what` after a generous bound
/// (a bounded wait, not a timing assertion: the bound only stops a hung test).
pub(crate) async fn wait_until<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if cond().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("gave up after 60 s waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
