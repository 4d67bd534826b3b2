//! Where the store lives, as the configuration says it: the embedded sled store in the data
//! directory (the default), or a PostgreSQL database (`store = "postgres://…"` in the file,
//! `--store` / `CRIER_STORE` on the command line, with a `[postgres]` table for the rest).
//!
//! Validated at start-up, before anything is opened, so a mistake is one clear message and
//! nothing is written: a URL that is not PostgreSQL's, a password written into the URL (it
//! would end up in shell history, process lists and config repositories — it belongs in the
//! environment variable the config names), a password variable named but unset, a CA file that
//! cannot be read, a pool size out of range. The password itself is held here only to be handed
//! to the connection, and this type's `Debug` never shows it.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;

use super::{redact_url, ConnectOptions};
use crate::config::Environment;

/// The variable the PostgreSQL password is read from when the config names none (the same
/// default as `crier store migrate --password-env`).
pub const DEFAULT_PASSWORD_ENV: &str = "CRIER_PG_PASSWORD";

/// Connections in the pool when the config says nothing.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// The leader election's try / re-check interval when the config says nothing.
pub const DEFAULT_LEADER_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// The `[postgres]` table of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresFile {
    /// The environment variable holding the password (default `CRIER_PG_PASSWORD`).
    pub password_env: Option<String>,
    /// A PEM file of the CA that signed the server's certificate (default: the platform's roots).
    pub ca_file: Option<PathBuf>,
    /// Connections in the pool, 1-256 (default 16).
    pub pool_size: Option<usize>,
    /// How often a node tries to become leader, and the leader re-checks that it still is
    /// (`100ms`-`1m`, default `1s`): the longest a dead leader's singletons wait for another.
    pub leader_check: Option<String>,
}

/// The validated store setting.
#[derive(Clone, Default)]
pub enum StoreSetting {
    /// sled in `data_dir/db`.
    #[default]
    Sled,
    /// A PostgreSQL database.
    Postgres(PostgresSettings),
}

impl std::fmt::Debug for StoreSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreSetting::Sled => f.write_str("Sled"),
            StoreSetting::Postgres(p) => f.debug_tuple("Postgres").field(p).finish(),
        }
    }
}

/// What it takes to reach the database.
#[derive(Clone)]
pub struct PostgresSettings {
    /// The URL as configured; it carries no password (refused at start-up).
    pub url: String,
    /// The variable the password was read from, for messages.
    pub password_env: String,
    password: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub pool_size: usize,
    /// The leader election's try / re-check interval.
    pub leader_check: std::time::Duration,
}

impl std::fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSettings")
            .field("url", &redact_url(&self.url))
            .field("password_env", &self.password_env)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("ca_file", &self.ca_file)
            .field("pool_size", &self.pool_size)
            .field("leader_check", &self.leader_check)
            .finish()
    }
}

impl PostgresSettings {
    /// The options [`super::Pg::new`] takes.
    pub fn connect_options(&self) -> ConnectOptions<'_> {
        ConnectOptions {
            url: &self.url,
            password: self.password.as_deref(),
            ca_file: self.ca_file.as_deref(),
            pool_size: self.pool_size,
        }
    }
}

impl StoreSetting {
    /// Validates `store` (from the command line, else the file) and the `[postgres]` table,
    /// reading the password from `env`. `None` is the embedded sled store.
    pub fn from_parts(
        store: Option<&str>,
        file: Option<PostgresFile>,
        env: &Environment,
    ) -> Result<StoreSetting, String> {
        let Some(raw) = store.map(str::trim).filter(|s| !s.is_empty()) else {
            if file.is_some() {
                return Err(
                    "the config has a [postgres] table but no store = \"postgres://…\": \
                     add the store URL, or remove the table to use the embedded sled store"
                        .into(),
                );
            }
            return Ok(StoreSetting::Sled);
        };
        if raw == "sled" {
            if file.is_some() {
                return Err("store = \"sled\" with a [postgres] table: remove one of them".into());
            }
            return Ok(StoreSetting::Sled);
        }
        let shown = redact_url(raw);
        if !(raw.starts_with("postgres://") || raw.starts_with("postgresql://")) {
            return Err(format!(
                "store = \"{shown}\" is neither \"sled\" nor a PostgreSQL URL; write it as \
                 postgres://USER@HOST:PORT/DATABASE?sslmode=require, or leave it out for the \
                 embedded sled store in the data directory"
            ));
        }
        let parsed = tokio_postgres::Config::from_str(raw).map_err(|e| {
            format!(
                "store = \"{shown}\" is not a valid PostgreSQL URL ({e}); write it as \
                 postgres://USER@HOST:PORT/DATABASE?sslmode=require"
            )
        })?;
        let file = file.unwrap_or_default();
        let password_env = file
            .password_env
            .clone()
            .unwrap_or_else(|| DEFAULT_PASSWORD_ENV.to_owned());
        if parsed.get_password().is_some() {
            return Err(format!(
                "store = \"{shown}\" has a password in the URL: remove it from the URL and put \
                 it in the environment variable {password_env} (named by [postgres] \
                 password_env), so it stays out of files, shell history and process lists"
            ));
        }
        if parsed.get_hosts().is_empty() {
            return Err(format!(
                "store = \"{shown}\" names no host; write it as \
                 postgres://USER@HOST:PORT/DATABASE"
            ));
        }
        if parsed.get_user().is_none() {
            return Err(format!(
                "store = \"{shown}\" names no user; write it as \
                 postgres://USER@HOST:PORT/DATABASE"
            ));
        }
        let password = env.var(&password_env);
        if password.is_none() && file.password_env.is_some() {
            return Err(format!(
                "[postgres] password_env = \"{password_env}\" but that environment variable is \
                 not set: set it to the database password, or remove password_env if the \
                 server needs none (certificate or local trust authentication)"
            ));
        }
        if let Some(ca) = &file.ca_file {
            check_readable(ca)?;
        }
        let pool_size = file.pool_size.unwrap_or(DEFAULT_POOL_SIZE);
        if !(1..=256).contains(&pool_size) {
            return Err(format!(
                "[postgres] pool_size = {pool_size}: use 1-256 connections per node (default \
                 {DEFAULT_POOL_SIZE}); PostgreSQL's max_connections must cover every node's pool"
            ));
        }
        let leader_check = match &file.leader_check {
            None => DEFAULT_LEADER_CHECK,
            Some(v) => crate::domain::Span::parse_in(
                v,
                crate::domain::Span::from_millis(100),
                crate::domain::Span::from_secs(60),
            )
            .map(crate::domain::Span::as_std)
            .map_err(|e| {
                format!("[postgres] leader_check: {e} (default 1s; how long a dead leader's scheduler waits for another node)")
            })?,
        };
        Ok(StoreSetting::Postgres(PostgresSettings {
            url: raw.to_owned(),
            password_env,
            password,
            ca_file: file.ca_file,
            pool_size,
            leader_check,
        }))
    }
}

fn check_readable(ca: &Path) -> Result<(), String> {
    match std::fs::read(ca) {
        Ok(bytes) if bytes.windows(11).any(|w| w == b"-----BEGIN ") => Ok(()),
        Ok(_) => Err(format!(
            "[postgres] ca_file = \"{}\" holds no PEM certificate; give the PEM file of the CA \
             that signed the database server's certificate",
            ca.display()
        )),
        Err(e) => Err(format!(
            "[postgres] ca_file = \"{}\" cannot be read ({e}); give the PEM file of the CA that \
             signed the database server's certificate",
            ca.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Environment {
        Environment::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn no_store_is_sled_and_a_postgres_table_without_a_url_is_refused() {
        assert!(matches!(
            StoreSetting::from_parts(None, None, &env(&[])),
            Ok(StoreSetting::Sled)
        ));
        assert!(matches!(
            StoreSetting::from_parts(Some("sled"), None, &env(&[])),
            Ok(StoreSetting::Sled)
        ));
        let e =
            StoreSetting::from_parts(None, Some(PostgresFile::default()), &env(&[])).unwrap_err();
        assert!(e.contains("no store = \"postgres://"), "{e}");
    }

    #[test]
    fn a_url_reads_the_password_from_the_named_variable_and_never_shows_it() {
        let file = PostgresFile {
            password_env: Some("DB_PW".into()),
            ca_file: None,
            pool_size: Some(4),
            leader_check: Some("250ms".into()),
        };
        let s = StoreSetting::from_parts(
            Some("postgres://crier@db.example:5432/crier?sslmode=require"),
            Some(file),
            &env(&[("DB_PW", "s3cret-pw")]),
        )
        .unwrap();
        let StoreSetting::Postgres(p) = &s else {
            panic!("not postgres: {s:?}");
        };
        let o = p.connect_options();
        assert_eq!(o.password, Some("s3cret-pw"));
        assert_eq!(o.pool_size, 4);
        assert_eq!(p.leader_check, std::time::Duration::from_millis(250));
        assert_eq!(
            o.url,
            "postgres://crier@db.example:5432/crier?sslmode=require"
        );
        let shown = format!("{s:?}");
        assert!(!shown.contains("s3cret-pw"), "{shown}");
        assert!(shown.contains("DB_PW"), "{shown}");
    }

    #[test]
    fn the_default_variable_is_optional_but_a_named_one_must_be_set() {
        let s =
            StoreSetting::from_parts(Some("postgres://crier@db/crier"), None, &env(&[])).unwrap();
        let StoreSetting::Postgres(p) = s else {
            panic!("not postgres");
        };
        assert_eq!(p.password_env, DEFAULT_PASSWORD_ENV);
        assert_eq!(p.connect_options().password, None);
        assert_eq!(p.pool_size, DEFAULT_POOL_SIZE);
        assert_eq!(p.leader_check, DEFAULT_LEADER_CHECK);

        let e = StoreSetting::from_parts(
            Some("postgres://crier@db/crier"),
            Some(PostgresFile {
                password_env: Some("MISSING_PW".into()),
                ..PostgresFile::default()
            }),
            &env(&[]),
        )
        .unwrap_err();
        assert!(e.contains("MISSING_PW") && e.contains("not set"), "{e}");
    }

    #[test]
    fn bad_store_values_are_refused_with_what_to_write_and_no_password_in_the_message() {
        let cases = [
            (
                "mysql://crier@db/crier",
                "neither \"sled\" nor a PostgreSQL URL",
            ),
            ("./data", "neither \"sled\" nor a PostgreSQL URL"),
            (
                "postgres://crier:hunter2-pw@db/crier",
                "has a password in the URL",
            ),
            ("postgres://db/crier", "names no user"),
            (
                "postgres://crier@db:notaport/crier",
                "not a valid PostgreSQL URL",
            ),
        ];
        for (raw, want) in cases {
            let e = StoreSetting::from_parts(Some(raw), None, &env(&[])).unwrap_err();
            assert!(e.contains(want), "{raw}: {e}");
            assert!(!e.contains("hunter2-pw"), "{raw}: {e}");
        }
    }

    #[test]
    fn pool_size_and_ca_file_are_checked() {
        let e = StoreSetting::from_parts(
            Some("postgres://crier@db/crier"),
            Some(PostgresFile {
                pool_size: Some(0),
                ..PostgresFile::default()
            }),
            &env(&[]),
        )
        .unwrap_err();
        assert!(e.contains("pool_size = 0"), "{e}");

        for bad in ["10ms", "5m", "soon"] {
            let e = StoreSetting::from_parts(
                Some("postgres://crier@db/crier"),
                Some(PostgresFile {
                    leader_check: Some(bad.into()),
                    ..PostgresFile::default()
                }),
                &env(&[]),
            )
            .unwrap_err();
            assert!(e.contains("[postgres] leader_check"), "{bad}: {e}");
        }

        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let e = StoreSetting::from_parts(
            Some("postgres://crier@db/crier"),
            Some(PostgresFile {
                ca_file: Some(missing.clone()),
                ..PostgresFile::default()
            }),
            &env(&[]),
        )
        .unwrap_err();
        assert!(e.contains("cannot be read"), "{e}");

        let not_pem = dir.path().join("ca.txt");
        std::fs::write(&not_pem, "hello").unwrap();
        let e = StoreSetting::from_parts(
            Some("postgres://crier@db/crier"),
            Some(PostgresFile {
                ca_file: Some(not_pem),
                ..PostgresFile::default()
            }),
            &env(&[]),
        )
        .unwrap_err();
        assert!(e.contains("holds no PEM certificate"), "{e}");
    }
}
