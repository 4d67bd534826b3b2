//! Server configuration, layered: built-in defaults → `crier.toml` (or `--config FILE`) →
//! `CRIER_*` environment variables → command-line flags, validated once at start-up so a typo
//! stops `serve` with a message instead of surfacing mid-incident. Secrets are never values here:
//! the config names the environment variable that holds them.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the server reads the secrets its files name by environment variable: the channels'
/// `*_env` keys, `admin_token_env`, `intake.hmac_secret_env`. The default is the process
/// environment; tests give a fixed set of variables ([`Environment::from_pairs`]), so no test
/// changes the environment of a multi-threaded test binary with `std::env::set_var`.
#[derive(Clone)]
pub struct Environment(Arc<crate::channels::Env>);

impl Environment {
    /// The process environment.
    pub fn process() -> Self {
        Environment(Arc::new(crate::channels::process_env))
    }

    /// Only these variables; nothing is read from the process environment.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let map: std::collections::BTreeMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Environment(Arc::new(move |name: &str| map.get(name).cloned()))
    }

    /// The value of the variable `name`, if it is set.
    pub fn var(&self, name: &str) -> Option<String> {
        (self.0)(name)
    }

    /// The lookup, as [`crate::channels::load_with_env`] takes it.
    pub fn lookup(&self) -> &crate::channels::Env {
        &*self.0
    }
}

impl Default for Environment {
    fn default() -> Self {
        Environment::process()
    }
}

/// Never prints values: they are secrets.
impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Environment(..)")
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is invalid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// The config file's shape. Every key is optional; unknown keys are errors (a misspelt key must
/// not be silently ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    /// Where the store lives: `"postgres://USER@HOST:PORT/DB"`, or `"sled"` (the default, in
    /// `data_dir`).
    pub store: Option<String>,
    /// The PostgreSQL store's password variable, CA file and pool size.
    pub postgres: Option<crate::pg::settings::PostgresFile>,
    pub bind: Option<String>,
    pub channels_dir: Option<PathBuf>,
    pub templates_dir: Option<PathBuf>,
    /// Name of the environment variable holding the admin token.
    pub admin_token_env: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub import_max_bytes: Option<usize>,
    /// Who is speaking in messages ("Finnair").
    pub org_name: Option<String>,
    /// The public status page, e.g. https://status.example.com (incident links point there).
    pub public_url: Option<String>,
    /// IANA zone messages show times in when the reader has none, e.g. Europe/Helsinki.
    pub timezone: Option<String>,
    /// Recurring notices: what to do with firings missed while crier was down.
    pub notices: Option<crate::schedule::settings::NoticesFile>,
    /// Next-update promises: staff reminders and holding statements.
    pub promises: Option<crate::schedule::settings::PromisesFile>,
    /// Scheduled maintenance: reminder before it starts.
    pub maintenance: Option<crate::schedule::settings::MaintenanceFile>,
    /// Monitoring intake: hold-down, routing rules, webhook HMAC secret.
    pub intake: Option<crate::intake::settings::IntakeFile>,
    /// Scheduled backups: how often, how many to keep, where.
    pub backup: Option<crate::backups::BackupFile>,
    /// Self-service sign-ups: confirmation channels, validity, abuse limits, purge.
    pub subscriptions: Option<crate::web::subscribe::SubscriptionsFile>,
    /// The public pages: on or off, path, logo, static copy.
    pub status_page: Option<crate::web::settings::StatusPageFile>,
    /// The Atom/RSS history: its language.
    pub feeds: Option<crate::web::feed_settings::FeedsFile>,
    /// CAP 1.2 alerts: sender, area, expiry, impact mapping.
    pub cap: Option<crate::web::feed_settings::CapFile>,
    /// Browser sessions, second factors, trusted proxies.
    pub auth: Option<crate::api::session::AuthFile>,
    /// Two-person approval of everything public: `"public"`, or `"channels"` (the default:
    /// only channels with `approval = "required"` in their file).
    pub approval: Option<String>,
    /// Two-person approval of updates that would reach more than this many recipients.
    pub approval_above: Option<u64>,
    /// Staff channels told of writes waiting for approval and of rejections (default:
    /// `promises.reminder_channels`).
    pub approval_notify: Option<Vec<String>>,
}

/// What needs a second person's approval (docs/APPROVAL.md). Channels with
/// `approval = "required"` in their own file add to this at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApprovalSettings {
    /// Every update that reaches a channel other than a staff channel.
    pub public: bool,
    /// Every update that would reach more than this many recipients.
    pub above: Option<u64>,
    /// Staff channels told of approvals requested and rejected.
    pub notify: Vec<String>,
}

impl ApprovalSettings {
    fn from_file(
        mode: Option<String>,
        above: Option<u64>,
        notify: Option<Vec<String>>,
        reminder_channels: &[String],
    ) -> Result<Self, ConfigError> {
        let public = match mode.as_deref().map(str::trim) {
            None | Some("channels") => false,
            Some("public") => true,
            Some(other) => {
                return Err(ConfigError::Invalid(format!(
                    "approval = \"{other}\": use \"public\" (every public update waits for a second person) or \"channels\" (only channels whose file says approval = \"required\")"
                )))
            }
        };
        if above == Some(0) {
            return Err(ConfigError::Invalid(
                "approval_above = 0 would hold every update; write approval = \"public\" for that, or give a number of recipients such as 10000".into(),
            ));
        }
        Ok(ApprovalSettings {
            public,
            above,
            notify: notify.unwrap_or_else(|| reminder_channels.to_vec()),
        })
    }
}

/// Overrides from the command line and environment (clap fills these from both).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    /// `--store` / `CRIER_STORE`: overrides the file's `store`.
    pub store: Option<String>,
    pub bind: Option<String>,
    pub channels_dir: Option<PathBuf>,
    pub templates_dir: Option<PathBuf>,
    pub config_file: Option<PathBuf>,
    /// Where secrets named by `*_env` keys are read (default: the process environment).
    pub env: Environment,
}

/// The validated configuration `serve` runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    /// The store: sled in `data_dir/db`, or PostgreSQL (docs/POSTGRES.md).
    pub store: crate::pg::settings::StoreSetting,
    pub bind: SocketAddr,
    pub channels_dir: PathBuf,
    pub templates_dir: PathBuf,
    pub admin_token_env: String,
    pub max_body_bytes: usize,
    pub import_max_bytes: usize,
    pub render: crate::render::Settings,
    pub schedule: crate::schedule::ScheduleSettings,
    pub intake: crate::intake::IntakeSettings,
    /// Scheduled backups (`None`: none are taken).
    pub backup: Option<crate::backups::BackupSettings>,
    /// Two-person approval.
    pub approval: ApprovalSettings,
    /// Browser sessions, second factors, trusted proxies (`[auth]`).
    pub auth: crate::api::session::AuthSettings,
    /// The feeds' language and the CAP alerts' settings (`[feeds]`, `[cap]`).
    pub public: crate::web::feed_settings::PublicSettings,
    /// Start the server's clock at this instant instead of the wall clock's (tests that must
    /// run on a given day, e.g. the night the clocks change). Not settable from the file or the
    /// environment.
    pub clock_start: Option<chrono::DateTime<chrono::Utc>>,
    /// Self-service sign-ups (`[subscriptions]`).
    pub subscriptions: crate::web::subscribe::Settings,
    /// Where the secrets named by `*_env` keys are read at start-up (the channels',
    /// `admin_token_env`): the process environment unless a test gives its own.
    pub env: Environment,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            store: crate::pg::settings::StoreSetting::Sled,
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            channels_dir: PathBuf::from("./channels"),
            templates_dir: PathBuf::from("./templates"),
            admin_token_env: "CRIER_ADMIN_TOKEN".to_owned(),
            max_body_bytes: 64 * 1024,
            import_max_bytes: 16 * 1024 * 1024,
            render: crate::render::Settings::default(),
            schedule: crate::schedule::ScheduleSettings::default(),
            intake: crate::intake::IntakeSettings::default(),
            backup: None,
            approval: ApprovalSettings::default(),
            auth: Default::default(),
            public: crate::web::feed_settings::PublicSettings::default(),
            clock_start: None,
            subscriptions: Default::default(),
            env: Environment::process(),
        }
    }
}

fn parse_bind(s: &str) -> Result<SocketAddr, ConfigError> {
    s.parse().map_err(|_| {
        ConfigError::Invalid(format!(
            "bind address \"{s}\" is not host:port; use for example 127.0.0.1:8080 or 0.0.0.0:8080"
        ))
    })
}

impl Config {
    /// Builds the configuration from the layers. `crier.toml` in the working directory is read
    /// when no `--config` is given and it exists.
    pub fn load(o: &Overrides) -> Result<Self, ConfigError> {
        let file = match &o.config_file {
            Some(p) => Some(read_file(p)?),
            None if Path::new("crier.toml").exists() => Some(read_file(Path::new("crier.toml"))?),
            None => None,
        }
        .unwrap_or_default();
        let mut c = Config {
            env: o.env.clone(),
            ..Config::default()
        };
        if let Some(v) = file.data_dir {
            c.data_dir = v;
        }
        if let Some(v) = &file.bind {
            c.bind = parse_bind(v)?;
        }
        if let Some(v) = file.channels_dir {
            c.channels_dir = v;
        }
        if let Some(v) = file.templates_dir {
            c.templates_dir = v;
        }
        if let Some(v) = file.admin_token_env {
            c.admin_token_env = v;
        }
        if let Some(v) = file.max_body_bytes {
            c.max_body_bytes = v;
        }
        if let Some(v) = file.import_max_bytes {
            c.import_max_bytes = v;
        }
        if let Some(v) = file.org_name {
            if v.trim().is_empty() || v.chars().count() > 64 {
                return Err(ConfigError::Invalid(
                    "org_name must be 1-64 characters (it prefixes every SMS)".into(),
                ));
            }
            c.render.org_name = v.trim().to_owned();
        }
        if let Some(v) = file.public_url {
            let v = v.trim().trim_end_matches('/').to_owned();
            let url = crate::domain::HttpUrl::parse(&v).map_err(|why| {
                ConfigError::Invalid(format!(
                    "public_url = \"{v}\" is not an http(s) URL ({why}); use e.g. https://status.example.com"
                ))
            })?;
            c.render.public_url = Some(url.as_str().to_owned());
        }
        if let Some(v) = file.timezone {
            c.render.timezone = v.parse().map_err(|_| {
                ConfigError::Invalid(format!(
                    "timezone = \"{v}\" is not an IANA time zone; use e.g. Europe/Helsinki or UTC"
                ))
            })?;
        }
        c.render.page =
            crate::web::PageSettings::from_file(file.status_page).map_err(ConfigError::Invalid)?;
        c.schedule = crate::schedule::ScheduleSettings::from_file(
            file.notices,
            file.promises,
            file.maintenance,
        )
        .map_err(ConfigError::Invalid)?;
        c.intake = crate::intake::IntakeSettings::from_file(file.intake, &c.env)
            .map_err(ConfigError::Invalid)?;
        c.approval = ApprovalSettings::from_file(
            file.approval,
            file.approval_above,
            file.approval_notify,
            &c.schedule.reminder_channels,
        )?;
        c.auth = crate::api::session::AuthSettings::from_file(
            file.auth,
            c.render.public_url.as_deref(),
            &c.render.org_name,
        )
        .map_err(ConfigError::Invalid)?;
        c.public = crate::web::feed_settings::PublicSettings::from_file(file.feeds, file.cap)
            .map_err(ConfigError::Invalid)?;
        c.subscriptions = crate::web::subscribe::Settings::from_file(file.subscriptions)
            .map_err(ConfigError::Invalid)?;
        if let Some(v) = &o.data_dir {
            c.data_dir = v.clone();
        }
        if let Some(v) = &o.bind {
            c.bind = parse_bind(v)?;
        }
        if let Some(v) = &o.channels_dir {
            c.channels_dir = v.clone();
        }
        if let Some(v) = &o.templates_dir {
            c.templates_dir = v.clone();
        }
        c.store = crate::pg::settings::StoreSetting::from_parts(
            o.store.as_deref().or(file.store.as_deref()),
            file.postgres,
            &c.env,
        )
        .map_err(ConfigError::Invalid)?;
        // After the overrides: the default backup directory is inside the data directory.
        c.backup = crate::backups::BackupSettings::from_file(file.backup, &c.data_dir)
            .map_err(ConfigError::Invalid)?;
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !(1024..=64 * 1024 * 1024).contains(&self.max_body_bytes) {
            return Err(ConfigError::Invalid(format!(
                "max_body_bytes = {} is out of range; use 1024 to 67108864",
                self.max_body_bytes
            )));
        }
        if self.import_max_bytes < self.max_body_bytes {
            return Err(ConfigError::Invalid(
                "import_max_bytes must be at least max_body_bytes".into(),
            ));
        }
        let env_ok = !self.admin_token_env.is_empty()
            && self
                .admin_token_env
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !env_ok {
            return Err(ConfigError::Invalid(format!(
                "admin_token_env = \"{}\" is not an environment variable name; name the variable (e.g. CRIER_ADMIN_TOKEN), never the token itself",
                self.admin_token_env
            )));
        }
        Ok(())
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_intake_secret_comes_from_the_injected_environment() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "[intake]\nhmac_secret_env = \"CRIER_TEST_INJECTED_HOOK_SECRET\"\n",
        )
        .unwrap();
        assert!(std::env::var_os("CRIER_TEST_INJECTED_HOOK_SECRET").is_none());
        let c = Config::load(&Overrides {
            config_file: Some(f.clone()),
            env: Environment::from_pairs([(
                "CRIER_TEST_INJECTED_HOOK_SECRET",
                "a-long-hook-secret-0123456789",
            )]),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            c.intake.hmac_secret.as_deref(),
            Some(&b"a-long-hook-secret-0123456789"[..])
        );
        // The server started from this config reads its other secrets from the same place.
        assert_eq!(
            c.env.var("CRIER_TEST_INJECTED_HOOK_SECRET").as_deref(),
            Some("a-long-hook-secret-0123456789")
        );
        assert_eq!(format!("{:?}", c.env), "Environment(..)");
        let e = Config::load(&Overrides {
            config_file: Some(f),
            env: Environment::from_pairs::<&str, &str>([]),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            e.to_string().contains("CRIER_TEST_INJECTED_HOOK_SECRET"),
            "{e}"
        );
    }

    #[test]
    fn the_store_is_read_from_the_file_and_the_command_line_wins() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "store = \"postgres://crier@db.example/crier\"\n[postgres]\npassword_env = \"T_PG_PW\"\npool_size = 3\n",
        )
        .unwrap();
        let load = |store: Option<&str>, env: &[(&str, &str)]| {
            Config::load(&Overrides {
                config_file: Some(f.clone()),
                store: store.map(str::to_owned),
                env: Environment::from_pairs(env.iter().copied()),
                ..Default::default()
            })
        };
        let c = load(None, &[("T_PG_PW", "pw-value")]).unwrap();
        let crate::pg::settings::StoreSetting::Postgres(p) = &c.store else {
            panic!("not postgres: {:?}", c.store);
        };
        assert_eq!(p.url, "postgres://crier@db.example/crier");
        assert_eq!(p.connect_options().password, Some("pw-value"));
        assert_eq!(p.pool_size, 3);
        assert!(!format!("{c:?}").contains("pw-value"));
        let c = load(Some("postgres://other@db2/x"), &[("T_PG_PW", "pw")]).unwrap();
        let crate::pg::settings::StoreSetting::Postgres(p) = &c.store else {
            panic!("not postgres");
        };
        assert_eq!(p.url, "postgres://other@db2/x");
        // The named variable unset: refused, naming it.
        let e = load(None, &[]).unwrap_err().to_string();
        assert!(e.contains("T_PG_PW"), "{e}");
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "bind = \"127.0.0.1:9000\"\ndata_dir = \"/tmp/x\"\n").unwrap();
        let c = Config::load(&Overrides {
            config_file: Some(f.clone()),
            data_dir: Some("/tmp/y".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.bind.port(), 9000);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/y"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "bnid = \"127.0.0.1:9000\"\n").unwrap();
        let e = Config::load(&Overrides {
            config_file: Some(f.clone()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("bnid"), "{e}");
        for bad in [
            "admin_token_env = \"s3cr3t-value!\"\n",
            "timezone = \"Mars/Olympus\"\n",
            "public_url = \"status.example.com\"\n",
            "org_name = \"\"\n",
            "approval = \"everything\"\n",
            "approval_above = 0\n",
            "approval_above = -5\n",
            "[auth]\nrequire_totp = [\"root\"]\n",
            "[auth]\ntrusted_proxies = [\"10.0.0.0/40\"]\n",
            "[auth]\nsession_idle = \"1d\"\n",
            "[auth]\nsesion_idle = \"1h\"\n",
        ] {
            std::fs::write(&f, bad).unwrap();
            assert!(
                Config::load(&Overrides {
                    config_file: Some(f.clone()),
                    ..Default::default()
                })
                .is_err(),
                "{bad}"
            );
        }
        // Every duration in the file goes through the one checked parser and names its key.
        for (bad, key) in [
            (
                "[intake]\nhold_down = \"9999999999999999h\"\n",
                "intake.hold_down",
            ),
            (
                "[notices]\ngrace = \"9999999999999999h\"\n",
                "notices.grace",
            ),
            (
                "[promises]\nremind_before = \"10 minutes\"\n",
                "promises.remind_before",
            ),
            (
                "[promises]\nholding_next_update = \"30s\"\n",
                "promises.holding_next_update",
            ),
            (
                "[maintenance]\nremind_before = \"99999999999999999999999d\"\n",
                "maintenance.remind_before",
            ),
        ] {
            std::fs::write(&f, bad).unwrap();
            let e = Config::load(&Overrides {
                config_file: Some(f.clone()),
                ..Default::default()
            })
            .unwrap_err()
            .to_string();
            assert!(
                e.contains(key) && e.contains("ms, s, m, h or d"),
                "{bad}: {e}"
            );
        }
        std::fs::write(&f, "admin_token_env = \"s3cr3t-value!\"\n").unwrap();
        assert!(Config::load(&Overrides {
            config_file: Some(f),
            ..Default::default()
        })
        .is_err());
        assert!(Config::load(&Overrides {
            bind: Some("localhost".into()),
            ..Default::default()
        })
        .is_err());
    }
}
