//! PostgreSQL groundwork (issue 16; docs/POSTGRES.md): connecting from a URL with the password
//! from the environment and TLS, versioned schema migrations, outbox claims with leases, leader
//! election on an advisory lock, LISTEN/NOTIFY wake-ups, and the store port's PostgreSQL backend
//! ([`store::PgStore`], the aggregates ported so far). Not wired into the server yet: `Store`
//! gets its PostgreSQL variant once every aggregate is behind the port.

pub mod leader;
pub mod migrate;
pub mod outbox;
pub mod rows;
pub mod settings;
pub mod store;
pub mod tls;
pub mod wake;

#[cfg(test)]
pub(crate) mod fixture;
#[cfg(test)]
pub(crate) mod testdb;

use std::path::Path;
use std::str::FromStr;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::{Client, Connection, Socket};

pub use tls::RustlsConnect;

/// Errors of the PostgreSQL backend. None of them carries the password.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error(
        "the store URL is not a PostgreSQL URL ({0}); write it as \
         postgres://USER@HOST:PORT/DATABASE?sslmode=require"
    )]
    Url(String),
    #[error("TLS setup for PostgreSQL failed: {0}")]
    Tls(String),
    #[error("PostgreSQL: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("PostgreSQL connection pool: {0}")]
    Pool(String),
    #[error(
        "the database's schema is at version {database} but this crier knows versions up to \
         {binary}: a newer crier has migrated it. Run the newer crier (or a newer release) against \
         this database, or restore the backup taken before the upgrade; this crier changes nothing"
    )]
    SchemaTooNew { database: i32, binary: i32 },
    #[error(
        "delivery {id}: the lease of this claim (attempt {attempt}, node {node}) is no longer held: \
         another node took the delivery over or it is finished; this node must not report on it"
    )]
    LeaseLost {
        id: String,
        attempt: i32,
        node: String,
    },
    /// A unique key is taken (the same message as the sled store's `Conflict`).
    #[error("{0}")]
    Conflict(String),
    #[error("a stored row could not be read ({0}); the database may have been edited by hand")]
    Corrupt(String),
}

/// How to reach the database.
pub struct ConnectOptions<'a> {
    /// `postgres://USER@HOST:PORT/DATABASE?sslmode=...` (the password, if any, is better left
    /// out: see `password`).
    pub url: &'a str,
    /// The password, read by the caller from the environment variable named in the
    /// configuration; it replaces a password in the URL.
    pub password: Option<&'a str>,
    /// A PEM file of the CA that signed the server's certificate; without it the platform's
    /// roots are used.
    pub ca_file: Option<&'a Path>,
    /// Connections in the pool (the leader and the listener use their own, outside it).
    pub pool_size: usize,
}

/// A handle on the database: a pool for ordinary work, and what it takes to open dedicated
/// connections (leader election, LISTEN). Cheap to clone.
#[derive(Clone)]
pub struct Pg {
    config: tokio_postgres::Config,
    tls: RustlsConnect,
    pool: Pool,
}

impl std::fmt::Debug for Pg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pg")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .finish_non_exhaustive()
    }
}

/// A dedicated connection: the client and the connection future, which the caller drives.
pub type RawConnection = (Client, Connection<Socket, tls::RustlsStream<Socket>>);

impl Pg {
    /// Parses the URL and builds the pool; connects lazily (the first `client()` connects).
    pub fn new(opts: &ConnectOptions<'_>) -> Result<Pg, PgError> {
        let mut config =
            tokio_postgres::Config::from_str(opts.url).map_err(|e| PgError::Url(e.to_string()))?;
        if config.get_hosts().is_empty() {
            return Err(PgError::Url("no host".into()));
        }
        if let Some(pw) = opts.password {
            config.password(pw);
        }
        config.application_name("crier");
        let tls = RustlsConnect::new(opts.ca_file)?;
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(opts.pool_size.max(1))
            .build()
            .map_err(|e| PgError::Pool(e.to_string()))?;
        Ok(Pg { config, tls, pool })
    }

    /// The pool's figures now: its maximum size, the connections it holds, the idle ones and
    /// the tasks waiting for one (`/metrics`).
    pub fn pool_status(&self) -> deadpool_postgres::Status {
        self.pool.status()
    }

    /// Closes the pool: no new connection is handed out, idle ones are dropped.
    pub fn close(&self) {
        self.pool.close();
    }

    /// A pooled connection.
    pub async fn client(&self) -> Result<deadpool_postgres::Object, PgError> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => PgError::Db(e),
            other => PgError::Pool(other.to_string()),
        })
    }

    /// A connection outside the pool, whose connection future the caller drives (to read
    /// notifications, or to notice at once when the server drops it).
    pub async fn connect_raw(&self) -> Result<RawConnection, PgError> {
        Ok(self.config.connect(self.tls.clone()).await?)
    }

    /// A connection outside the pool, driven by a spawned task that ends when it closes.
    pub async fn connect_dedicated(
        &self,
    ) -> Result<(Client, tokio::task::JoinHandle<()>), PgError> {
        let (client, conn) = self.connect_raw().await?;
        let task = tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "dedicated PostgreSQL connection closed");
            }
        });
        Ok((client, task))
    }

    /// Applies the pending schema migrations (see [`migrate`]).
    pub async fn migrate(&self) -> Result<i32, PgError> {
        let mut client = self.client().await?;
        migrate::migrate(&mut client).await
    }
}

/// The URL with its password (if any) replaced by `***`, for logs and messages.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else {
        return url.to_string();
    };
    format!(
        "{}{}:***{}",
        &url[..scheme_end + 3],
        &userinfo[..colon],
        &rest[at..]
    )
}

#[cfg(test)]
mod tests {
    use super::testdb::TestDb;
    use super::*;

    #[test]
    fn redact_url_hides_the_password_and_nothing_else() {
        assert_eq!(
            redact_url("postgres://crier:s3cr%40t@db.example:5432/crier?sslmode=require"),
            "postgres://crier:***@db.example:5432/crier?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://crier@db/crier"),
            "postgres://crier@db/crier"
        );
        assert_eq!(redact_url("postgres://db/c?x=a@b"), "postgres://db/c?x=a@b");
    }

    #[test]
    fn a_bad_url_is_refused_without_echoing_it() {
        let err = Pg::new(&ConnectOptions {
            url: "postgres://crier:hunter2@db:notaport/crier",
            password: None,
            ca_file: None,
            pool_size: 1,
        })
        .expect_err("a bad port must be refused");
        let msg = err.to_string();
        assert!(msg.contains("postgres://USER@HOST"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    #[tokio::test]
    async fn connects_with_the_password_given_apart_and_over_verified_tls() {
        let Some(db) = TestDb::create("connect").await else {
            return;
        };
        // The password comes apart from the URL (as from the environment variable).
        let (url_without_password, password) = db.url_and_password();
        let ca = db.ca_file();
        let url = format!("{url_without_password}?sslmode=require");
        let pg = Pg::new(&ConnectOptions {
            url: &url,
            password: Some(&password),
            ca_file: ca.as_deref(),
            pool_size: 2,
        })
        .expect("pg");
        let client = pg
            .client()
            .await
            .expect("connect with the password given apart");
        let row = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .expect("query");
        let ssl: bool = row.get(0);
        if ca.is_some() {
            assert!(ssl, "sslmode=require must give an encrypted connection");
        }

        // A wrong password is refused, and the error does not carry it.
        let bad = Pg::new(&ConnectOptions {
            url: &url,
            password: Some("wrong-password-xyz"),
            ca_file: ca.as_deref(),
            pool_size: 1,
        })
        .expect("pg");
        let err = bad
            .client()
            .await
            .expect_err("a wrong password must be refused");
        let msg = format!("{err} {err:?}");
        assert!(!msg.contains("wrong-password-xyz"), "{msg}");
        assert!(!format!("{pg:?}").contains(&password));
    }

    #[tokio::test]
    async fn tls_with_an_unknown_ca_is_refused() {
        let Some(db) = TestDb::create("tlsca").await else {
            return;
        };
        if db.ca_file().is_none() {
            eprintln!("CRIER_TEST_PG_CA unset: the server has no certificate to check");
            return;
        }
        let (url, password) = db.url_and_password();
        // The platform's roots do not know the test CA: the handshake must fail.
        let pg = Pg::new(&ConnectOptions {
            url: &format!("{url}?sslmode=require"),
            password: Some(&password),
            ca_file: None,
            pool_size: 1,
        })
        .expect("pg");
        assert!(
            pg.client().await.is_err(),
            "a server certificate from an unknown CA must be refused"
        );
    }
}
