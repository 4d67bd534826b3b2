//! Channel definitions: one TOML file per channel instance in `channels/` (the `--channels` dir).
//! Each names its `kind`, its credentials by environment-variable name only, its audience, rate,
//! locale, time zone and too-long policy. A channel whose credentials are missing from the
//! environment, or present there but malformed (a Twilio SID with a dash), is reported at
//! start-up and skipped, never fatal to the others; `enabled = false` turns one off; unknown
//! keys, syntax errors and bad values in the file are errors naming the file.

use crate::domain::{Locale, Span};
use crate::render::preview::Platform;
use crate::render::rules::OverflowPolicy;
use chrono_tz::Tz;
use secrecy::SecretString;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why the channel definitions could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("cannot read {path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("channel file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The provider behind a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Writes each rendered message as a JSON line to `<data>/outbox/<channel>.jsonl`.
    Log,
    /// SMTP via lettre.
    Email,
    /// Twilio Messages API (SMS).
    Twilio,
    /// Vonage SMS API.
    Vonage,
    /// A signed JSON document POSTed to a URL.
    Webhook,
    /// A Mastodon account (statuses API).
    Mastodon,
    /// A Bluesky account (AT Protocol, app password).
    Bluesky,
    /// An X account (API v2, OAuth 1.0a user context).
    X,
    /// A Facebook Page (Graph API).
    Facebook,
    /// A Slack incoming webhook.
    Slack,
    /// A Microsoft Teams Workflows webhook (Adaptive Card).
    Teams,
    /// A Discord channel webhook.
    Discord,
    /// A Telegram chat through a bot.
    Telegram,
    /// A Matrix room.
    Matrix,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Log => "log",
            Kind::Email => "email",
            Kind::Twilio => "twilio",
            Kind::Vonage => "vonage",
            Kind::Webhook => "webhook",
            Kind::Mastodon => "mastodon",
            Kind::Bluesky => "bluesky",
            Kind::X => "x",
            Kind::Facebook => "facebook",
            Kind::Slack => "slack",
            Kind::Teams => "teams",
            Kind::Discord => "discord",
            Kind::Telegram => "telegram",
            Kind::Matrix => "matrix",
        }
    }

    /// A social or chat account: posts to its own fixed target, never to subscribers.
    pub fn is_social(self) -> bool {
        !matches!(
            self,
            Kind::Log | Kind::Email | Kind::Twilio | Kind::Vonage | Kind::Webhook
        )
    }

    /// Whether the platform can reply to an earlier post, so that an incident's updates form
    /// one thread (Slack and Teams webhooks and Discord webhooks cannot).
    pub fn supports_threads(self) -> bool {
        matches!(
            self,
            Kind::Mastodon
                | Kind::Bluesky
                | Kind::X
                | Kind::Facebook
                | Kind::Telegram
                | Kind::Matrix
        )
    }
}

/// Who a channel sends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Every confirmed subscriber reachable by this channel (email address for email, phone for
    /// SMS, both for log) whose component filter matches.
    Subscribers,
    /// The channel's own fixed target (a webhook URL, a social account).
    Fixed,
}

/// A send rate: `n` per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub n: u32,
    pub per: Duration,
}

impl Rate {
    /// Parses `30/s`, `100/m`, `1000/h`, or a count per any span, such as `5/10s`.
    pub fn parse(s: &str) -> Result<Rate, String> {
        let bad = || format!("rate \"{s}\" is not of the form 30/s, 100/m or 1000/h");
        let (n, per) = s.trim().split_once('/').ok_or_else(bad)?;
        let n: u32 = n.trim().parse().map_err(|_| bad())?;
        let per = per.trim();
        // A bare unit is one of it: `30/s` is thirty per second.
        let per = match per.starts_with(|c: char| c.is_ascii_digit()) {
            true => per.to_owned(),
            false => format!("1{per}"),
        };
        let per = Span::parse_in(&per, Span::from_millis(1), Span::MAX)
            .map_err(|e| format!("rate \"{s}\": the period {e}"))?
            .as_std();
        if n == 0 {
            return Err(format!("rate \"{s}\" allows nothing; use at least 1"));
        }
        Ok(Rate { n, per })
    }

    /// Sends per second.
    pub fn per_second(&self) -> f64 {
        f64::from(self.n) / self.per.as_secs_f64()
    }
}

/// The keys every channel file may have.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommonFile {
    kind: Kind,
    #[serde(default = "yes")]
    enabled: bool,
    audience: Option<Audience>,
    rate: Option<String>,
    concurrency: Option<usize>,
    locale: Option<String>,
    timezone: Option<String>,
    policy: Option<String>,
    sms_max_segments: Option<usize>,
    base_url: Option<String>,
    retry: Option<Vec<String>>,
    send_timeout: Option<String>,
    /// For `log` channels: which platform's rendering and length rule to apply.
    render: Option<String>,
    /// `"required"`: an update that would go to this channel waits for a second person's
    /// approval (docs/APPROVAL.md); `"none"` (the default): it does not.
    approval: Option<String>,
}

fn yes() -> bool {
    true
}

const COMMON_KEYS: [&str; 14] = [
    "kind",
    "enabled",
    "audience",
    "rate",
    "concurrency",
    "locale",
    "timezone",
    "policy",
    "sms_max_segments",
    "base_url",
    "retry",
    "send_timeout",
    "render",
    "approval",
];

/// Kind-specific settings with secrets resolved from the environment, held as [`SecretString`].
/// Debug never shows secrets.
#[derive(Clone)]
pub enum Settings {
    Log,
    Email {
        host: String,
        port: u16,
        tls: String,
        username: Option<String>,
        password: Option<SecretString>,
        from: String,
        domain: String,
        /// Extra trusted root certificate(s) (PEM) for a relay with a private CA.
        ca_file: Option<PathBuf>,
    },
    Twilio {
        account_sid: String,
        auth_token: SecretString,
        from: Option<String>,
        messaging_service_sid: Option<String>,
        status_callback: Option<String>,
    },
    Vonage {
        api_key: String,
        api_secret: SecretString,
        from: String,
    },
    Webhook {
        url: String,
        secret: SecretString,
    },
    Mastodon {
        token: SecretString,
        /// public, unlisted, private or direct.
        visibility: String,
    },
    Bluesky {
        /// Handle or DID of the account.
        identifier: String,
        /// An app password.
        password: SecretString,
    },
    X {
        consumer_key: SecretString,
        consumer_secret: SecretString,
        access_token: SecretString,
        access_token_secret: SecretString,
    },
    Facebook {
        page_id: String,
        page_token: SecretString,
        /// Graph API version, e.g. `v23.0`.
        graph_version: String,
    },
    /// Slack, Teams and Discord: the webhook URL is itself the secret.
    ChatWebhook {
        url: SecretString,
    },
    Telegram {
        bot_token: SecretString,
        chat_id: String,
    },
    Matrix {
        access_token: SecretString,
        room_id: String,
    },
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Settings::Log => f.write_str("Log"),
            Settings::Email { host, port, tls, from, .. } => {
                write!(f, "Email {{ host: {host}, port: {port}, tls: {tls}, from: {from}, credentials: *** }}")
            }
            Settings::Twilio { from, messaging_service_sid, .. } => write!(
                f,
                "Twilio {{ from: {from:?}, messaging_service_sid: {messaging_service_sid:?}, credentials: *** }}"
            ),
            Settings::Vonage { from, .. } => write!(f, "Vonage {{ from: {from}, credentials: *** }}"),
            Settings::Webhook { url, .. } => write!(f, "Webhook {{ url: {url}, secret: *** }}"),
            Settings::Mastodon { visibility, .. } => {
                write!(f, "Mastodon {{ visibility: {visibility}, token: *** }}")
            }
            Settings::Bluesky { identifier, .. } => {
                write!(f, "Bluesky {{ identifier: {identifier}, password: *** }}")
            }
            Settings::X { .. } => f.write_str("X { credentials: *** }"),
            Settings::Facebook { page_id, graph_version, .. } => write!(
                f,
                "Facebook {{ page_id: {page_id}, graph_version: {graph_version}, page_token: *** }}"
            ),
            Settings::ChatWebhook { .. } => f.write_str("ChatWebhook { url: *** }"),
            Settings::Telegram { chat_id, .. } => {
                write!(f, "Telegram {{ chat_id: {chat_id}, bot_token: *** }}")
            }
            Settings::Matrix { room_id, .. } => {
                write!(f, "Matrix {{ room_id: {room_id}, access_token: *** }}")
            }
        }
    }
}

/// A configured, active channel.
#[derive(Debug, Clone)]
pub struct Channel {
    pub name: String,
    pub kind: Kind,
    pub audience: Audience,
    pub rate: Rate,
    pub concurrency: usize,
    pub locale: Locale,
    pub timezone: Option<Tz>,
    /// The platform whose rendering and length rule apply.
    pub platform: Platform,
    pub policy_name: String,
    pub sms_max_segments: usize,
    /// Updates to this channel wait for a second person's approval (`approval = "required"`).
    pub approval_required: bool,
    pub base_url: Option<String>,
    /// Delays before each retry; after the last one a delivery is dead.
    pub retry: Vec<Duration>,
    pub send_timeout: Duration,
    pub settings: Settings,
    /// The channel's own template folder (`channels/<name>/`), if it exists.
    pub templates: Option<PathBuf>,
}

impl Channel {
    /// The too-long policy, with `link` as the shortening link.
    pub fn policy(&self, link: Option<String>) -> OverflowPolicy {
        match self.policy_name.as_str() {
            "thread" => OverflowPolicy::Thread,
            "reject" => OverflowPolicy::Reject,
            _ => OverflowPolicy::Shorten { link },
        }
    }

    /// The status-callback URL a provider reports delivery to, if configured.
    pub fn status_callback(&self) -> Option<&str> {
        match &self.settings {
            Settings::Twilio {
                status_callback, ..
            } => status_callback.as_deref(),
            _ => None,
        }
    }

    /// Whether a subscriber's contact is reachable by this channel.
    pub fn reaches(&self, contact: &crate::domain::Contact) -> bool {
        use crate::domain::Contact;
        matches!(
            (self.kind, contact),
            (Kind::Email, Contact::Email(_))
                | (Kind::Twilio | Kind::Vonage, Contact::Phone(_))
                | (Kind::Log, _)
        )
    }
}

/// The result of loading a channels folder.
#[derive(Debug, Default)]
pub struct Loaded {
    pub active: Vec<Channel>,
    /// Channels not active, with the reason (disabled, credentials missing or invalid).
    pub skipped: Vec<(String, String)>,
    /// Of the skipped, those that simply wait for credentials: none of the variables they name
    /// is set (a shipped channel not yet configured). The others are half-configured or
    /// malformed, or disabled (see `disabled`).
    pub waiting: Vec<String>,
    /// Of the skipped, those turned off with `enabled = false`.
    pub disabled: Vec<String>,
}

impl Loaded {
    /// Skipped channels that need attention: credentials partly set or malformed.
    pub fn misconfigured(&self) -> impl Iterator<Item = &(String, String)> {
        self.skipped
            .iter()
            .filter(|(n, _)| !self.waiting.contains(n) && !self.disabled.contains(n))
    }
}

/// Why a channel does not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SkipKind {
    Disabled,
    /// None of the credential variables it names is set.
    Waiting,
    /// Some set and some missing, or a value that cannot work.
    Misconfigured,
}

/// Parses a duration in a channel file (`500ms`, `30s`, `5m`, `1h`) with the one duration
/// parser, [`Span`]; `key` names the setting in the error.
fn parse_span(key: &str, s: &str, min: Span, max: Span) -> Result<Duration, String> {
    Span::parse_in(s, min, max)
        .map(Span::as_std)
        .map_err(|e| format!("{key}: {e}"))
}

/// The default retry schedule: about 3.5 hours in all, then the delivery is dead.
pub fn default_retry() -> Vec<Duration> {
    [10, 30, 120, 600, 1800, 3600, 7200]
        .into_iter()
        .map(Duration::from_secs)
        .collect()
}

/// What the environment holds for a channel's secrets: which named variables are missing,
/// which hold a value that cannot work (malformed), and which variable each key named, so a
/// problem is reported by the variable's name, never by its value.
#[derive(Default)]
struct EnvSecrets {
    missing: Vec<String>,
    malformed: Vec<String>,
    names: Vec<(&'static str, String)>,
}

impl EnvSecrets {
    fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.malformed.is_empty()
    }

    /// Nothing is set yet: every variable named is missing, none is malformed.
    fn none_set(&self) -> bool {
        self.malformed.is_empty() && self.missing.len() == self.names.len()
    }

    /// Records that the value of the variable `key` names cannot work, and why (no value).
    fn malformed(&mut self, key: &str, why: &str) {
        let name = self
            .names
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, n)| n.as_str())
            .unwrap_or(key);
        self.malformed.push(format!("${name} ({key}) {why}"));
    }

    /// Why the channel is skipped: every missing variable and every malformed value.
    fn reason(&self) -> String {
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!(
                "credentials missing: set {} in the environment",
                self.missing.join(", ")
            ));
        }
        if !self.malformed.is_empty() {
            parts.push(format!(
                "credentials invalid: {}; fix the value in the environment",
                self.malformed.join("; ")
            ));
        }
        parts.join("; ")
    }
}

/// The kind-specific keys of a channel file, declared: one struct per kind, selected by `kind`.
/// Unknown keys are refused (`deny_unknown_fields`); defaults are on the structs; a secret is
/// declared as the NAME of the environment variable that holds it (`*_env`), resolved through an
/// injected [`Env`] and validated once, when the channel is built ([`KindFile::resolve`]).
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum KindFile {
    Log(LogFile),
    Email(EmailFile),
    Twilio(TwilioFile),
    Vonage(VonageFile),
    Webhook(WebhookFile),
    Mastodon(MastodonFile),
    Bluesky(BlueskyFile),
    X(XFile),
    Facebook(FacebookFile),
    Slack(ChatFile),
    Teams(ChatFile),
    Discord(ChatFile),
    Telegram(TelegramFile),
    Matrix(MatrixFile),
}

/// A `log` channel has only the common keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogFile {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailFile {
    host: Option<String>,
    port: Option<i64>,
    #[serde(default = "starttls")]
    tls: String,
    from: Option<String>,
    /// The EHLO domain; by default the domain of `from`.
    domain: Option<String>,
    ca_file: Option<PathBuf>,
    username_env: Option<String>,
    password_env: Option<String>,
}

fn starttls() -> String {
    "starttls".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TwilioFile {
    account_sid_env: Option<String>,
    auth_token_env: Option<String>,
    from: Option<String>,
    messaging_service_sid: Option<String>,
    status_callback: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VonageFile {
    api_key_env: Option<String>,
    api_secret_env: Option<String>,
    from: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookFile {
    url: Option<String>,
    secret_env: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MastodonFile {
    token_env: Option<String>,
    #[serde(default = "public")]
    visibility: String,
}

fn public() -> String {
    "public".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BlueskyFile {
    identifier: Option<String>,
    app_password_env: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct XFile {
    consumer_key_env: Option<String>,
    consumer_secret_env: Option<String>,
    access_token_env: Option<String>,
    access_token_secret_env: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FacebookFile {
    page_id: Option<String>,
    page_token_env: Option<String>,
    #[serde(default = "graph_version")]
    graph_version: String,
}

fn graph_version() -> String {
    crate::adapters::facebook::DEFAULT_GRAPH_VERSION.into()
}

/// Slack, Teams and Discord: the webhook URL is itself the secret.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatFile {
    webhook_url_env: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TelegramFile {
    bot_token_env: Option<String>,
    chat_id: Option<ChatId>,
}

/// A Telegram chat: a number (`-1001234567890`) or `@channelusername`.
#[derive(Deserialize)]
#[serde(untagged)]
enum ChatId {
    Number(i64),
    Name(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MatrixFile {
    access_token_env: Option<String>,
    room_id: Option<String>,
}

/// What a key's value must be, when it is not: named by the key, never echoing the value.
fn wrong_type(k: &str, v: &toml::Value) -> Option<String> {
    let ok = match k {
        "port" => v.is_integer(),
        "chat_id" => v.is_integer() || v.is_str(),
        _ => v.is_str(),
    };
    (!ok).then(|| match k {
        "port" => "port must be 1-65535".to_owned(),
        "chat_id" => {
            "chat_id must be the chat's id (e.g. -1001234567890) or @channelusername".to_owned()
        }
        k if k.ends_with("_env") => format!("{k} must be the name of an environment variable"),
        k => format!("{k} must be a string"),
    })
}

/// Reads the kind's keys into its declared struct. Serde's messages are mapped to ones that name
/// the key and say what to write instead, and never echo a value: a secret pasted into the file
/// must not reach an error.
fn declare(kind: Kind, table: toml::Table) -> Result<KindFile, String> {
    let types: Vec<String> = table.iter().filter_map(|(k, v)| wrong_type(k, v)).collect();
    let keys: Vec<String> = table.keys().cloned().collect();
    let mut tagged = table;
    tagged.insert("kind".into(), toml::Value::String(kind.as_str().into()));
    toml::Value::Table(tagged).try_into().map_err(|e: toml::de::Error| {
        let m = e.message();
        let named = |prefix: &str| {
            m.strip_prefix(prefix)
                .and_then(|r| r.split('`').next())
                .map(str::to_owned)
        };
        if let Some(k) = named("unknown field `") {
            let mut out = format!("unknown key `{k}` for a {} channel", kind.as_str());
            let env_key = format!("{k}_env");
            if m.contains(&format!("`{env_key}`")) && !keys.contains(&env_key) {
                out.push_str(&format!(
                    "; {env_key} is missing: name the environment variable that holds it (the secret itself goes in the environment, never in this file)"
                ));
            }
            out
        } else if let Some(k) = named("missing field `") {
            format!("{k} is missing")
        } else if !types.is_empty() {
            types.join("; ")
        } else {
            "a key's value has the wrong type".to_owned()
        }
    })
}

/// Reads the environment variable a file names, for a secret. A value with a control character
/// (a pasted line break) can never be sent in a header or a form, so it is malformed.
fn secret(
    key: &'static str,
    name: Option<String>,
    env: &Env,
    missing: &mut EnvSecrets,
    invalid: &mut Vec<String>,
) -> Option<String> {
    let Some(name) = name else {
        invalid.push(format!(
            "{key} is missing: name the environment variable that holds it"
        ));
        return None;
    };
    if !is_env_name(&name) {
        invalid.push(format!(
            "{key} = \"…\" is not an environment variable name (capital letters, digits and _, such as MASTODON_TOKEN); put the secret in the environment and its NAME here"
        ));
        return None;
    }
    missing.names.push((key, name.clone()));
    match env(&name) {
        Some(v) if v.trim().chars().any(char::is_control) => {
            missing.malformed(key, "contains a line break or another control character");
            None
        }
        Some(v) if !v.trim().is_empty() => Some(v.trim().to_owned()),
        _ => {
            missing.missing.push(name);
            None
        }
    }
}

/// An environment variable name as crier accepts one: capital letters, digits and `_`, not
/// starting with a digit. Tokens, SIDs and passwords pasted here instead of a name almost always
/// hold a lowercase letter or another character, so they are refused without being echoed: a
/// secret never reaches an error message, not even one saying "set <it> in the environment".
fn is_env_name(name: &str) -> bool {
    name.bytes().next().is_some_and(|b| !b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

type Skip = (SkipKind, String);

impl KindFile {
    /// The kind's settings with its secrets resolved through `env`, validated once. File
    /// problems go to `invalid`; missing or malformed secrets to `missing` (they skip the
    /// channel, not fail the file). `None` when the channel cannot run.
    fn resolve(
        self,
        c: &CommonFile,
        env: &Env,
        missing: &mut EnvSecrets,
        invalid: &mut Vec<String>,
    ) -> Option<Settings> {
        // The kind's secret `key` names a variable: resolve it (a closure would hold `invalid`).
        macro_rules! secret {
            ($key:expr, $name:expr) => {
                secret($key, $name, env, missing, invalid)
            };
        }
        match self {
            KindFile::Log(LogFile {}) => Some(Settings::Log),
            KindFile::Twilio(f) => {
                let account_sid = secret!("account_sid_env", f.account_sid_env);
                let auth_token = secret!("auth_token_env", f.auth_token_env);
                if f.from.is_some() == f.messaging_service_sid.is_some() {
                    invalid.push(
                        "give exactly one of `from` (a Twilio number) or `messaging_service_sid`"
                            .into(),
                    );
                }
                if let Some(sid) = &account_sid {
                    if !crate::adapters::twilio::valid_account_sid(sid) {
                        missing.malformed(
                            "account_sid_env",
                            "is not an account SID: use letters and digits only (AC followed by 32 hex digits, as the Twilio console shows it)",
                        );
                    }
                }
                Some(Settings::Twilio {
                    account_sid: account_sid?,
                    auth_token: auth_token?.into(),
                    from: f.from,
                    messaging_service_sid: f.messaging_service_sid,
                    status_callback: f.status_callback,
                })
            }
            KindFile::Vonage(f) => {
                let api_key = secret!("api_key_env", f.api_key_env);
                let api_secret = secret!("api_secret_env", f.api_secret_env);
                if f.from.is_none() {
                    invalid.push("from is missing: the sender id or number".into());
                }
                Some(Settings::Vonage {
                    api_key: api_key?,
                    api_secret: api_secret?.into(),
                    from: f.from?,
                })
            }
            KindFile::Webhook(f) => {
                let secret = secret!("secret_env", f.secret_env);
                // h-types: an HttpUrl type replaces this check.
                match &f.url {
                    Some(u) if u.starts_with("https://") || u.starts_with("http://") => {}
                    _ => invalid.push("url must be the http(s) URL to POST to".into()),
                }
                Some(Settings::Webhook {
                    url: f.url?,
                    secret: secret?.into(),
                })
            }
            KindFile::Mastodon(f) => {
                let token = secret!("token_env", f.token_env);
                let visibility = f.visibility;
                if !["public", "unlisted", "private", "direct"].contains(&visibility.as_str()) {
                    invalid.push(format!(
                        "visibility = \"{visibility}\": use public, unlisted, private or direct"
                    ));
                }
                if c.base_url.is_none() {
                    invalid.push(
                        "base_url is missing: the instance, e.g. https://mastodon.social".into(),
                    );
                }
                Some(Settings::Mastodon {
                    token: token?.into(),
                    visibility,
                })
            }
            KindFile::Bluesky(f) => {
                let password = secret!("app_password_env", f.app_password_env);
                if f.identifier.is_none() {
                    invalid.push(
                        "identifier is missing: the account's handle, e.g. status.example.com"
                            .into(),
                    );
                }
                Some(Settings::Bluesky {
                    identifier: f.identifier?,
                    password: password?.into(),
                })
            }
            KindFile::X(f) => {
                let consumer_key = secret!("consumer_key_env", f.consumer_key_env);
                let consumer_secret = secret!("consumer_secret_env", f.consumer_secret_env);
                let access_token = secret!("access_token_env", f.access_token_env);
                let access_token_secret =
                    secret!("access_token_secret_env", f.access_token_secret_env);
                Some(Settings::X {
                    consumer_key: consumer_key?.into(),
                    consumer_secret: consumer_secret?.into(),
                    access_token: access_token?.into(),
                    access_token_secret: access_token_secret?.into(),
                })
            }
            KindFile::Facebook(f) => {
                let page_token = secret!("page_token_env", f.page_token_env);
                match &f.page_id {
                    Some(p) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => {}
                    _ => invalid.push("page_id must be the Page's numeric id".into()),
                }
                if !f.graph_version.starts_with('v') {
                    invalid.push(format!(
                        "graph_version = \"{}\": use e.g. v23.0",
                        f.graph_version
                    ));
                }
                Some(Settings::Facebook {
                    page_id: f.page_id?,
                    page_token: page_token?.into(),
                    graph_version: f.graph_version,
                })
            }
            KindFile::Slack(f) | KindFile::Teams(f) | KindFile::Discord(f) => {
                match secret!("webhook_url_env", f.webhook_url_env)? {
                    // h-types: an HttpUrl type replaces this check.
                    u if u.starts_with("https://") || u.starts_with("http://") => {
                        Some(Settings::ChatWebhook { url: u.into() })
                    }
                    _ => {
                        missing.malformed("webhook_url_env", "must hold an http(s) URL");
                        None
                    }
                }
            }
            KindFile::Telegram(f) => {
                let bot_token = secret!("bot_token_env", f.bot_token_env);
                let chat_id = match f.chat_id {
                    Some(ChatId::Name(s)) if !s.is_empty() => Some(s),
                    Some(ChatId::Number(i)) => Some(i.to_string()),
                    _ => {
                        invalid.push("chat_id is missing: the chat's id (e.g. -1001234567890) or @channelusername".into());
                        None
                    }
                };
                Some(Settings::Telegram {
                    bot_token: bot_token?.into(),
                    chat_id: chat_id?,
                })
            }
            KindFile::Matrix(f) => {
                let access_token = secret!("access_token_env", f.access_token_env);
                match &f.room_id {
                    // Room versions before 12 end in `:server`; version 12 ids are `!` + a hash.
                    Some(r) if r.starts_with('!') && r.len() > 1 => {}
                    _ => invalid.push(
                        "room_id must be a room id (starting with !) such as !abc123:example.org, not an alias".into(),
                    ),
                }
                if c.base_url.is_none() {
                    invalid.push(
                        "base_url is missing: the homeserver, e.g. https://matrix.example.org"
                            .into(),
                    );
                }
                Some(Settings::Matrix {
                    access_token: access_token?.into(),
                    room_id: f.room_id?,
                })
            }
            KindFile::Email(f) => {
                let port = match f.port {
                    Some(p) => match u16::try_from(p) {
                        Ok(p) if p > 0 => Some(p),
                        _ => {
                            invalid.push("port must be 1-65535".into());
                            None
                        }
                    },
                    None => None,
                };
                let tls = f.tls;
                if !["starttls", "tls", "plain"].contains(&tls.as_str()) {
                    invalid.push(format!(
                        "tls = \"{tls}\": use starttls, tls or plain (plain only to a loopback host)"
                    ));
                }
                let (username, password) = if f.username_env.is_some() || f.password_env.is_some() {
                    (
                        secret!("username_env", f.username_env),
                        secret!("password_env", f.password_env),
                    )
                } else {
                    (None, None)
                };
                if f.host.is_none() || f.from.is_none() {
                    invalid.push("host and from are required".into());
                }
                let (host, from) = (f.host?, f.from?);
                let domain = f.domain.unwrap_or_else(|| {
                    from.rsplit('@')
                        .next()
                        .unwrap_or("localhost")
                        .trim_end_matches('>')
                        .to_owned()
                });
                let port = port.unwrap_or(match tls.as_str() {
                    "tls" => 465,
                    "plain" => 25,
                    _ => 587,
                });
                Some(Settings::Email {
                    host,
                    port,
                    tls,
                    username,
                    password: password.map(SecretString::from),
                    from,
                    domain,
                    ca_file: f.ca_file,
                })
            }
        }
    }
}

fn parse_file(path: &Path, name: &str, env: &Env) -> Result<Result<Channel, Skip>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut table: toml::Table = toml::from_str(&text).map_err(|e| e.to_string())?;
    let mut common = toml::Table::new();
    for k in COMMON_KEYS {
        if let Some(v) = table.remove(k) {
            common.insert(k.to_owned(), v);
        }
    }
    let c: CommonFile = toml::Value::Table(common)
        .try_into()
        .map_err(|e: toml::de::Error| e.to_string())?;
    let file = declare(c.kind, table)?;
    let mut invalid = Vec::new();
    let mut missing = EnvSecrets::default();
    let settings = file.resolve(&c, env, &mut missing, &mut invalid);
    // Any named variable missing from the environment, or holding a value that cannot work,
    // makes the channel inactive (reported, not fatal: the other channels still start).
    let settings = if missing.is_empty() { settings } else { None };
    let platform = match (&c.render, c.kind) {
        (Some(r), Kind::Log) => Platform::parse(r)?,
        (Some(_), _) => return Err("render is only for log channels".into()),
        (None, Kind::Log) => Platform::Sms,
        (None, Kind::Email) => Platform::Email,
        (None, Kind::Twilio | Kind::Vonage) => Platform::Sms,
        (None, Kind::Webhook | Kind::Slack) => Platform::Slack,
        (None, Kind::Mastodon) => Platform::Mastodon,
        (None, Kind::Bluesky) => Platform::Bluesky,
        (None, Kind::X) => Platform::X,
        (None, Kind::Facebook) => Platform::Facebook,
        (None, Kind::Teams) => Platform::Teams,
        (None, Kind::Discord) => Platform::Discord,
        (None, Kind::Telegram) => Platform::Telegram,
        (None, Kind::Matrix) => Platform::Matrix,
    };
    let audience = c.audience.unwrap_or(match c.kind {
        Kind::Webhook => Audience::Fixed,
        k if k.is_social() => Audience::Fixed,
        _ => Audience::Subscribers,
    });
    if audience == Audience::Subscribers && c.kind.is_social() {
        invalid.push(format!(
            "a {} channel posts to its own account or room; use audience = \"fixed\"",
            c.kind.as_str()
        ));
    }
    if audience == Audience::Fixed
        && c.kind != Kind::Webhook
        && c.kind != Kind::Log
        && !c.kind.is_social()
    {
        invalid.push(format!(
            "a {} channel sends to subscribers; remove audience = \"fixed\"",
            c.kind.as_str()
        ));
    }
    if audience == Audience::Subscribers && c.kind == Kind::Webhook {
        invalid.push("a webhook channel posts to its url; use audience = \"fixed\"".into());
    }
    let rate = Rate::parse(c.rate.as_deref().unwrap_or(match c.kind {
        Kind::Log => "1000/s",
        Kind::Email => "20/s",
        Kind::Twilio | Kind::Vonage => "30/s",
        Kind::Webhook => "10/s",
        // Below each platform's documented limit for one account, webhook or bot.
        Kind::Mastodon | Kind::Bluesky | Kind::Facebook => "30/m",
        Kind::X => "10/m",
        Kind::Slack | Kind::Teams => "1/s",
        Kind::Discord => "2/s",
        Kind::Telegram => "20/m",
        Kind::Matrix => "5/s",
    }))?;
    // One post at a time keeps an incident's thread in order: each reply needs its parent.
    let concurrency = c
        .concurrency
        .unwrap_or(if c.kind.is_social() { 1 } else { 16 });
    if !(1..=1024).contains(&concurrency) {
        invalid.push("concurrency must be 1-1024".into());
    }
    let locale = Locale::parse(c.locale.as_deref().unwrap_or("en")).map_err(|e| e.to_string())?;
    let timezone = c
        .timezone
        .as_deref()
        .map(|t| {
            t.parse::<Tz>().map_err(|_| {
                format!("timezone \"{t}\" is not an IANA zone such as Europe/Helsinki")
            })
        })
        .transpose()?;
    let policy_name = c.policy.unwrap_or_else(|| match platform {
        Platform::Sms => "shorten".into(),
        _ => "thread".into(),
    });
    if !["thread", "shorten", "reject"].contains(&policy_name.as_str()) {
        invalid.push(format!(
            "policy = \"{policy_name}\": use thread, shorten or reject"
        ));
    }
    let retry = match c.retry {
        Some(list) => list
            .iter()
            .map(|s| parse_span("retry", s, Span::ZERO, Span::MAX))
            .collect::<Result<Vec<_>, _>>()?,
        None => default_retry(),
    };
    let send_timeout = parse_span(
        "send_timeout",
        c.send_timeout.as_deref().unwrap_or("30s"),
        Span::from_millis(100),
        Span::from_secs(3600),
    )?;
    if let Some(b) = &c.base_url {
        if !(b.starts_with("https://") || b.starts_with("http://")) {
            invalid.push("base_url must be an http(s) URL".into());
        }
    }
    let approval_required = match c.approval.as_deref().map(str::trim) {
        None | Some("none") => false,
        Some("required") => true,
        Some(other) => {
            invalid.push(format!(
                "approval = \"{other}\": use \"required\" (updates to this channel wait for a second person) or \"none\""
            ));
            false
        }
    };
    if !invalid.is_empty() {
        return Err(invalid.join("; "));
    }
    let dir = path.with_extension("");
    let channel = match settings {
        Some(settings) => Ok(Channel {
            name: name.to_owned(),
            kind: c.kind,
            audience,
            rate,
            concurrency,
            locale,
            timezone,
            platform,
            policy_name,
            sms_max_segments: c.sms_max_segments.unwrap_or(3).max(1),
            approval_required,
            base_url: c.base_url,
            retry,
            send_timeout,
            settings,
            templates: dir.is_dir().then_some(dir),
        }),
        None if !c.enabled => Err(disabled()),
        None if missing.none_set() => Err((SkipKind::Waiting, missing.reason())),
        None => Err((SkipKind::Misconfigured, missing.reason())),
    };
    Ok(match channel {
        Ok(_) if !c.enabled => Err(disabled()),
        other => other,
    })
}

fn disabled() -> Skip {
    (SkipKind::Disabled, "disabled (enabled = false)".to_owned())
}

/// Where a channel's secrets come from: the value of an environment variable by its name.
/// Production reads the process environment ([`process_env`]); tests pass a map, so no test
/// changes the environment of a multi-threaded test binary.
pub type Env = dyn Fn(&str) -> Option<String> + Send + Sync;

/// The process environment, as an [`Env`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Loads every `*.toml` in `dir` (file stem = channel name), secrets from the process
/// environment. A missing folder means no channels.
pub fn load(dir: &Path) -> Result<Loaded, ChannelError> {
    load_with_env(dir, &process_env)
}

/// [`load`] with secrets looked up in `env`.
pub fn load_with_env(dir: &Path, env: &Env) -> Result<Loaded, ChannelError> {
    let mut out = Loaded::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => {
            return Err(ChannelError::Io {
                path: dir.to_owned(),
                message: e.to_string(),
            })
        }
    };
    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    for entry in entries {
        let path = entry
            .map_err(|e| ChannelError::Io {
                path: dir.to_owned(),
                message: e.to_string(),
            })?
            .path();
        if path.extension().is_some_and(|e| e == "toml") {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(ChannelError::Invalid {
                    path,
                    message: "a channel's file name is its name: use letters, digits, '-' and '_'"
                        .into(),
                });
            }
            files.insert(name, path);
        }
    }
    for (name, path) in files {
        match parse_file(&path, &name, env) {
            Ok(Ok(ch)) => out.active.push(ch),
            Ok(Err((kind, why))) => {
                match kind {
                    SkipKind::Waiting => out.waiting.push(name.clone()),
                    SkipKind::Disabled => out.disabled.push(name.clone()),
                    SkipKind::Misconfigured => {}
                }
                out.skipped.push((name, why));
            }
            Err(message) => return Err(ChannelError::Invalid { path, message }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shipped file parses; without credentials in the environment each social one is
    /// skipped with the variables to set, not an error.
    #[test]
    fn shipped_social_channels_are_skipped_without_credentials() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("channels");
        let loaded = load_with_env(&dir, &|_| None).unwrap();
        for (name, var) in [
            ("mastodon", "MASTODON_TOKEN"),
            ("bluesky", "BLUESKY_APP_PASSWORD"),
            ("x", "X_API_KEY"),
            ("facebook", "FACEBOOK_PAGE_TOKEN"),
            ("slack", "SLACK_WEBHOOK_URL"),
            ("teams", "TEAMS_WEBHOOK_URL"),
            ("discord", "DISCORD_WEBHOOK_URL"),
            ("telegram", "TELEGRAM_BOT_TOKEN"),
            ("matrix", "MATRIX_ACCESS_TOKEN"),
        ] {
            let why = loaded
                .skipped
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, w)| w.as_str())
                .unwrap_or_else(|| panic!("{name} not skipped"));
            assert!(
                why.starts_with("credentials missing") && why.contains(var),
                "{name}: {why}"
            );
        }
    }

    fn load_one(name: &str, text: &str) -> Result<Result<Channel, String>, String> {
        load_one_kind(name, text).map(|r| r.map_err(|(_, why)| why))
    }

    fn load_one_kind(name: &str, text: &str) -> Result<Result<Channel, Skip>, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        parse_file(&path, name, &test_env)
    }

    /// The environment the tests see: a fixed map, never the process's (no `set_var`).
    fn test_env(name: &str) -> Option<String> {
        [
            ("CRIER_TEST_HALF_SID", "AC0123456789abcdef0123456789abcdef"),
            ("CRIER_TEST_HALF_BAD", "AC-with-dash"),
            ("CRIER_TEST_SOCIAL_SECRET", "s3cret"),
            (
                "CRIER_TEST_SOCIAL_URL",
                "https://hooks.example.com/x/secret",
            ),
            ("CRIER_TEST_MAL_SID", "AC-with-dash-5150"),
            ("CRIER_TEST_MAL_TOKEN", "tok\nen-5150"),
            ("CRIER_TEST_MAL_OK", "fine-secret-5150"),
            ("CRIER_TEST_SOCIAL_SECRET2", "s3cret"),
        ]
        .into_iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
    }

    /// A channel none of whose credential variables is set simply waits for them (a shipped
    /// file not yet configured); one with some set and some missing, or a malformed value, is
    /// misconfigured, which start-up warns about.
    #[test]
    fn unconfigured_channels_wait_and_half_configured_ones_are_misconfigured() {
        let twilio = |sid: &str, token: &str, extra: &str| {
            format!("kind = \"twilio\"\naccount_sid_env = \"{sid}\"\nauth_token_env = \"{token}\"\nfrom = \"+15005550006\"\n{extra}")
        };
        for (text, want) in [
            (
                twilio("CRIER_TEST_HALF_UNSET1", "CRIER_TEST_HALF_UNSET2", ""),
                SkipKind::Waiting,
            ),
            (
                twilio("CRIER_TEST_HALF_SID", "CRIER_TEST_HALF_UNSET2", ""),
                SkipKind::Misconfigured,
            ),
            (
                twilio("CRIER_TEST_HALF_BAD", "CRIER_TEST_HALF_UNSET2", ""),
                SkipKind::Misconfigured,
            ),
            (
                twilio(
                    "CRIER_TEST_HALF_UNSET1",
                    "CRIER_TEST_HALF_UNSET2",
                    "enabled = false",
                ),
                SkipKind::Disabled,
            ),
        ] {
            let (kind, _) = load_one_kind("c", &text).unwrap().unwrap_err();
            assert_eq!(kind, want, "{text}");
        }
    }

    #[test]
    fn social_kinds_parse_with_credentials_from_the_environment() {
        let cases = [
            (
                "kind = \"mastodon\"\nbase_url = \"https://m.example\"\ntoken_env = \"CRIER_TEST_SOCIAL_SECRET\"",
                Kind::Mastodon,
                Platform::Mastodon,
            ),
            (
                "kind = \"bluesky\"\nidentifier = \"a.example\"\napp_password_env = \"CRIER_TEST_SOCIAL_SECRET\"",
                Kind::Bluesky,
                Platform::Bluesky,
            ),
            (
                "kind = \"x\"\nconsumer_key_env = \"CRIER_TEST_SOCIAL_SECRET\"\nconsumer_secret_env = \"CRIER_TEST_SOCIAL_SECRET\"\naccess_token_env = \"CRIER_TEST_SOCIAL_SECRET\"\naccess_token_secret_env = \"CRIER_TEST_SOCIAL_SECRET\"",
                Kind::X,
                Platform::X,
            ),
            (
                "kind = \"facebook\"\npage_id = \"123\"\npage_token_env = \"CRIER_TEST_SOCIAL_SECRET\"",
                Kind::Facebook,
                Platform::Facebook,
            ),
            (
                "kind = \"slack\"\nwebhook_url_env = \"CRIER_TEST_SOCIAL_URL\"",
                Kind::Slack,
                Platform::Slack,
            ),
            (
                "kind = \"teams\"\nwebhook_url_env = \"CRIER_TEST_SOCIAL_URL\"",
                Kind::Teams,
                Platform::Teams,
            ),
            (
                "kind = \"discord\"\nwebhook_url_env = \"CRIER_TEST_SOCIAL_URL\"",
                Kind::Discord,
                Platform::Discord,
            ),
            (
                "kind = \"telegram\"\nbot_token_env = \"CRIER_TEST_SOCIAL_SECRET\"\nchat_id = -100123",
                Kind::Telegram,
                Platform::Telegram,
            ),
            (
                "kind = \"matrix\"\nbase_url = \"https://hs.example\"\naccess_token_env = \"CRIER_TEST_SOCIAL_SECRET\"\nroom_id = \"!r:hs.example\"",
                Kind::Matrix,
                Platform::Matrix,
            ),
        ];
        for (text, kind, platform) in cases {
            let ch = load_one("c", text).unwrap().unwrap();
            assert_eq!((ch.kind, ch.platform), (kind, platform), "{text}");
            assert_eq!(ch.audience, Audience::Fixed);
            assert_eq!(ch.concurrency, 1);
            assert_eq!(ch.policy_name, "thread");
            let debug = format!("{:?}", ch.settings);
            assert!(
                !debug.contains("s3cret") && !debug.contains("/x/secret"),
                "{debug}"
            );
        }
    }

    /// Rates, retry schedules and send timeouts go through the one duration parser: absurd
    /// values are errors naming the key, the units and the limit (once `9999999999999999h`
    /// overflowed a multiplication here).
    #[test]
    fn durations_in_channel_files_are_checked() {
        let base = "kind = \"log\"\n";
        for (extra, needle) in [
            (
                "retry = [\"9999999999999999h\"]",
                "retry: \"9999999999999999h\" is longer than 365d",
            ),
            ("retry = [\"10\"]", "retry: \"10\" lacks a unit"),
            (
                "send_timeout = \"0s\"",
                "send_timeout: \"0s\" is shorter than 100ms",
            ),
            ("send_timeout = \"99999999999999999999m\"", "send_timeout"),
            ("rate = \"5/0s\"", "rate \"5/0s\": the period"),
            ("rate = \"5/9999999999999999h\"", "longer than 365d"),
            ("rate = \"5/fortnight\"", "unknown unit"),
        ] {
            let err = load_one("c", &format!("{base}{extra}\n")).unwrap_err();
            assert!(err.contains(needle), "{extra}: {err}");
            assert!(err.contains("ms, s, m, h or d"), "{extra}: {err}");
        }
        let ch = load_one(
            "c",
            &format!("{base}rate = \"5/10s\"\nretry = [\"500ms\", \"1h30m\"]\n"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(ch.rate.per, Duration::from_secs(10));
        assert_eq!(
            ch.retry,
            [Duration::from_millis(500), Duration::from_secs(5400)]
        );
        let ch = load_one("c", &format!("{base}rate = \"100/m\"\n"))
            .unwrap()
            .unwrap();
        assert_eq!(ch.rate.per, Duration::from_secs(60));
    }

    /// Credentials present in the environment but malformed skip their channel, like missing
    /// ones (reported by variable name, never by value); they are not errors of the file.
    #[test]
    fn malformed_credentials_skip_the_channel_without_showing_the_value() {
        for (text, needles) in [
            (
                "kind = \"twilio\"\naccount_sid_env = \"CRIER_TEST_MAL_SID\"\nauth_token_env = \"CRIER_TEST_MAL_OK\"\nfrom = \"+15005550006\"",
                &["credentials invalid", "$CRIER_TEST_MAL_SID (account_sid_env)", "letters and digits"][..],
            ),
            (
                "kind = \"twilio\"\naccount_sid_env = \"CRIER_TEST_MAL_SID\"\nauth_token_env = \"CRIER_TEST_MAL_UNSET\"\nfrom = \"+15005550006\"",
                &["credentials missing: set CRIER_TEST_MAL_UNSET", "credentials invalid", "$CRIER_TEST_MAL_SID"][..],
            ),
            (
                "kind = \"mastodon\"\nbase_url = \"https://m.example\"\ntoken_env = \"CRIER_TEST_MAL_TOKEN\"",
                &["$CRIER_TEST_MAL_TOKEN (token_env) contains a line break"][..],
            ),
            (
                "kind = \"slack\"\nwebhook_url_env = \"CRIER_TEST_MAL_OK\"",
                &["$CRIER_TEST_MAL_OK (webhook_url_env) must hold an http(s) URL"][..],
            ),
        ] {
            let why = load_one("c", text).expect("not an error of the file").unwrap_err();
            for n in needles {
                assert!(why.contains(n), "{text}: {why}");
            }
            assert!(!why.contains("5150"), "a value leaked: {why}");
        }
    }

    /// A token pasted where the variable's name belongs is refused, and its value appears in no
    /// error and no skip reason (once a valid-looking one was reported as "set <token> in the
    /// environment").
    #[test]
    fn a_secret_pasted_as_a_variable_name_is_never_echoed() {
        for (text, secret) in [
            (
                "kind = \"twilio\"\naccount_sid_env = \"TWILIO_ACCOUNT_SID\"\nauth_token_env = \"a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6\"\nfrom = \"+15005550006\"",
                "a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6",
            ),
            (
                "kind = \"mastodon\"\nbase_url = \"https://m.example\"\ntoken_env = \"Zq3xT9_kP0aL7mN2bV5cX8dF1gH4jK6sW\"",
                "Zq3xT9_kP0aL7mN2bV5cX8dF1gH4jK6sW",
            ),
            (
                "kind = \"telegram\"\nbot_token_env = \"123456:ABCdefGHIjklMNO\"\nchat_id = -1",
                "123456:ABCdefGHIjklMNO",
            ),
            (
                "kind = \"slack\"\nwebhook_url_env = \"https://hooks.slack.com/services/T0/B0/XXXXsecret\"",
                "XXXXsecret",
            ),
        ] {
            let why = match load_one("c", text) {
                Err(e) => e,
                Ok(Err(e)) => e,
                Ok(Ok(_)) => panic!("{text}: loaded"),
            };
            assert!(why.contains("is not an environment variable name"), "{why}");
            assert!(!why.contains(secret), "the secret leaked: {why}");
        }
    }

    /// The kind's keys are declared: an unknown key, a secret written in place of its variable's
    /// name and a value of the wrong type are errors naming the key and what to write instead,
    /// never echoing the value; defaults come from the declaration.
    #[test]
    fn declared_kind_keys_are_checked_with_file_messages() {
        for (text, needles) in [
            (
                "kind = \"mastodon\"\nbase_url = \"https://m.example\"\ntoken_env = \"CRIER_TEST_SOCIAL_SECRET\"\nvisibilty = \"public\"",
                &["unknown key `visibilty` for a mastodon channel"][..],
            ),
            (
                "kind = \"slack\"\nwebhook_url = \"https://hooks.slack.com/services/T0/B0/XXXXsecret\"",
                &["unknown key `webhook_url` for a slack channel", "webhook_url_env is missing"][..],
            ),
            (
                "kind = \"mastodon\"\nbase_url = \"https://m.example\"\ntoken_env = 5150",
                &["token_env must be the name of an environment variable"][..],
            ),
            (
                "kind = \"email\"\nhost = \"localhost\"\nfrom = \"a@example.com\"\nport = \"5150\"",
                &["port must be 1-65535"][..],
            ),
            (
                "kind = \"telegram\"\nbot_token_env = \"CRIER_TEST_SOCIAL_SECRET\"\nchat_id = [5150]",
                &["chat_id must be the chat's id"][..],
            ),
        ] {
            let err = load_one("c", text).unwrap_err();
            for n in needles {
                assert!(err.contains(n), "{text}: {err}");
            }
            assert!(!err.contains("5150") && !err.contains("XXXXsecret"), "{err}");
        }
        let ch = load_one(
            "c",
            "kind = \"mastodon\"\nbase_url = \"https://m.example\"\ntoken_env = \"CRIER_TEST_SOCIAL_SECRET\"",
        )
        .unwrap()
        .unwrap();
        assert!(
            matches!(ch.settings, Settings::Mastodon { ref visibility, .. } if visibility == "public")
        );
    }

    #[test]
    fn social_kinds_refuse_bad_settings() {
        for (text, needle) in [
            (
                "kind = \"mastodon\"\ntoken_env = \"CRIER_TEST_SOCIAL_SECRET2\"",
                "base_url is missing",
            ),
            (
                "kind = \"mastodon\"\nbase_url = \"https://m.example\"\ntoken_env = \"CRIER_TEST_SOCIAL_SECRET2\"\nvisibility = \"everyone\"",
                "visibility",
            ),
            (
                "kind = \"matrix\"\nbase_url = \"https://hs.example\"\naccess_token_env = \"CRIER_TEST_SOCIAL_SECRET2\"\nroom_id = \"#alias:hs\"",
                "room_id",
            ),
            (
                "kind = \"facebook\"\npage_id = \"my-page\"\npage_token_env = \"CRIER_TEST_SOCIAL_SECRET2\"",
                "page_id",
            ),
            (
                "kind = \"telegram\"\nbot_token_env = \"CRIER_TEST_SOCIAL_SECRET2\"\nchat_id = \"-1\"\naudience = \"subscribers\"",
                "fixed",
            ),
            (
                "kind = \"telegram\"\nbot_token = \"123:abc\"\nchat_id = \"-1\"",
                "bot_token_env is missing",
            ),
        ] {
            let err = load_one("c", text).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
    }
}
