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
/// One channel kind, declared once in its adapter module and registered with one line in
/// [`crate::adapters::KINDS`] (or, for a kind crier does not ship, [`Kinds::with`]): its name
/// in `kind = "…"`, its defaults, who it may send to, and how its own keys are read.
/// docs/CHANNELS.md walks through adding one.
pub struct KindSpec {
    /// What a channel file writes in `kind = "…"`.
    pub name: &'static str,
    /// The platform whose rendering and length rule apply by default.
    pub platform: Platform,
    /// `render = "<platform>"` may pick another platform (log channels only, today).
    pub render_key: bool,
    /// Who channels of this kind may send to.
    pub audience: Audiences,
    /// Which subscriber contacts it reaches (for [`Audience::Subscribers`]).
    pub reach: Reach,
    /// A social or chat account: one post at a time, credentials checkable without posting.
    pub social: bool,
    /// Whether the platform can reply to an earlier post, so an incident's updates form one
    /// thread.
    pub threads: bool,
    /// The default `rate`, below the platform's documented limit for one account.
    pub rate: &'static str,
    /// Reads the kind's own keys (everything but the common ones) into its [`Settings`]:
    /// `Err` is a problem of the file; `Ok(None)` a channel that cannot run (what is wrong is
    /// recorded in the [`Resolve`]).
    pub declare: Declare,
}

/// The kind's reader of its own keys (see [`KindSpec::declare`]).
pub type Declare = fn(toml::Table, &mut Resolve<'_>) -> Result<Option<Settings>, String>;

impl KindSpec {
    /// A social or chat account's kind: posts to its own account ([`SOCIAL_TARGET`]), never
    /// to subscribers; credentials checkable without posting.
    ///
    /// [`SOCIAL_TARGET`]: crate::adapters::SOCIAL_TARGET
    pub const fn social(
        name: &'static str,
        platform: Platform,
        threads: bool,
        rate: &'static str,
        declare: Declare,
    ) -> KindSpec {
        KindSpec {
            name,
            platform,
            render_key: false,
            audience: Audiences::Fixed(crate::adapters::SOCIAL_TARGET),
            reach: Reach::Nobody,
            social: true,
            threads,
            rate,
            declare,
        }
    }

    /// A kind that posts to its own fixed target only (`target` says what, after "a <kind>
    /// channel"), not a social account (the webhook).
    pub const fn fixed(
        name: &'static str,
        platform: Platform,
        target: &'static str,
        rate: &'static str,
        declare: Declare,
    ) -> KindSpec {
        KindSpec {
            name,
            platform,
            render_key: false,
            audience: Audiences::Fixed(target),
            reach: Reach::Nobody,
            social: false,
            threads: false,
            rate,
            declare,
        }
    }

    /// A kind that sends to subscribers only, reaching their `reach` contacts (email, SMS).
    pub const fn subscribers(
        name: &'static str,
        platform: Platform,
        reach: Reach,
        rate: &'static str,
        declare: Declare,
    ) -> KindSpec {
        KindSpec {
            name,
            platform,
            render_key: false,
            audience: Audiences::Subscribers,
            reach,
            social: false,
            threads: false,
            rate,
            declare,
        }
    }
}

/// Who the channels of a kind may send to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audiences {
    /// Subscribers only (email, SMS).
    Subscribers,
    /// Its own fixed target only; the text says why, after "a <kind> channel".
    Fixed(&'static str),
    /// Either; subscribers by default (the log channel).
    Either,
}

/// Which subscriber contacts a kind reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    Nobody,
    Email,
    Phone,
    Everyone,
}

/// The provider behind a channel: a registered [`KindSpec`].
#[derive(Clone, Copy)]
pub struct Kind(&'static KindSpec);

impl Kind {
    pub const fn new(spec: &'static KindSpec) -> Kind {
        Kind(spec)
    }

    pub fn spec(self) -> &'static KindSpec {
        self.0
    }

    pub fn as_str(self) -> &'static str {
        self.0.name
    }

    /// A social or chat account: posts to its own fixed target, never to subscribers.
    pub fn is_social(self) -> bool {
        self.0.social
    }

    /// Whether the platform can reply to an earlier post, so that an incident's updates form
    /// one thread (Slack and Teams webhooks and Discord webhooks cannot).
    pub fn supports_threads(self) -> bool {
        self.0.threads
    }
}

impl PartialEq for Kind {
    fn eq(&self, other: &Kind) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for Kind {}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name)
    }
}

/// The kinds a channels folder may use: crier's own ([`crate::adapters::KINDS`]) and any added
/// with [`Kinds::with`].
#[derive(Clone)]
pub struct Kinds(Vec<&'static KindSpec>);

impl Kinds {
    /// The kinds crier ships.
    pub fn builtin() -> Kinds {
        Kinds(crate::adapters::KINDS.to_vec())
    }

    /// These kinds and `spec` (which replaces a kind of the same name).
    pub fn with(mut self, spec: &'static KindSpec) -> Kinds {
        self.0.retain(|k| k.name != spec.name);
        self.0.push(spec);
        self
    }

    /// The kind named `name`.
    pub fn get(&self, name: &str) -> Option<Kind> {
        self.0.iter().find(|k| k.name == name).map(|k| Kind(k))
    }

    /// Every kind, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = Kind> + '_ {
        self.0.iter().map(|k| Kind(k))
    }
}

/// A kind's settings with its secrets resolved from the environment (held as
/// [`SecretString`]), built into its adapter when the server starts. Debug never shows
/// secrets.
pub trait KindSettings: std::any::Any + std::fmt::Debug + Send + Sync {
    /// The channel's sender (for HTTP providers, `setup.http(provider)`).
    fn build(
        &self,
        setup: &crate::adapters::Setup<'_>,
    ) -> Result<Box<dyn crate::adapters::Deliver>, String>;
}

/// One channel's kind-specific settings.
#[derive(Clone, Debug)]
pub struct Settings(std::sync::Arc<dyn KindSettings>);

impl Settings {
    pub fn new(settings: impl KindSettings) -> Settings {
        Settings(std::sync::Arc::new(settings))
    }

    /// The settings as their kind's own type, if they are of it.
    pub fn get<T: KindSettings>(&self) -> Option<&T> {
        let any: &dyn std::any::Any = &*self.0;
        any.downcast_ref()
    }

    /// Builds the channel's sender.
    pub fn build(
        &self,
        setup: &crate::adapters::Setup<'_>,
    ) -> Result<Box<dyn crate::adapters::Deliver>, String> {
        self.0.build(setup)
    }
}

/// What a kind's [`KindSpec::declare`] reads with: the kind's keys into its declared struct,
/// secrets through the injected environment, and where problems go.
pub struct Resolve<'a> {
    kind: &'static str,
    base_url: Option<&'a str>,
    env: &'a Env,
    secrets: EnvSecrets,
    invalid: Vec<String>,
}

impl Resolve<'_> {
    /// The kind's keys as its declared struct (`#[serde(deny_unknown_fields)]`, defaults on
    /// the struct). Serde's messages are mapped to ones that name the key and say what to write
    /// instead, and never echo a value: a secret pasted into the file must not reach an error.
    pub fn declared<T: serde::de::DeserializeOwned>(
        &self,
        table: toml::Table,
    ) -> Result<T, String> {
        declare(self.kind, table)
    }

    /// The value of the environment variable that `key` (`…_env`) names, for a secret; `None`
    /// (recorded) when the key is absent, not a variable name, unset or malformed.
    pub fn secret(&mut self, key: &'static str, name: Option<String>) -> Option<String> {
        secret(key, name, self.env, &mut self.secrets, &mut self.invalid)
    }

    /// Records a problem of the file: a message naming the key and what to write instead.
    pub fn invalid(&mut self, message: impl Into<String>) {
        self.invalid.push(message.into());
    }

    /// Records that the value of the variable `key` names cannot work, and why (no value): the
    /// channel is skipped, not the file refused.
    pub fn malformed(&mut self, key: &str, why: &str) {
        self.secrets.malformed(key, why);
    }

    /// The channel file's `base_url`, if any.
    pub fn base_url(&self) -> Option<&str> {
        self.base_url
    }

    /// `base_url` from the channel file, or the provider's `default`, without a trailing `/`.
    pub fn base(&self, default: &str) -> String {
        self.base_url
            .unwrap_or(default)
            .trim_end_matches('/')
            .to_owned()
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
    kind: String,
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
        self.settings
            .get::<crate::adapters::twilio::TwilioConfig>()
            .and_then(|t| t.status_callback.as_deref())
    }

    /// Whether a subscriber's contact is reachable by this channel.
    pub fn reaches(&self, contact: &crate::domain::Contact) -> bool {
        use crate::domain::Contact;
        matches!(
            (self.kind.spec().reach, contact),
            (Reach::Email, Contact::Email(_))
                | (Reach::Phone, Contact::Phone(_))
                | (Reach::Everyone, _)
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
fn declare<T: serde::de::DeserializeOwned>(kind: &str, table: toml::Table) -> Result<T, String> {
    let types: Vec<String> = table.iter().filter_map(|(k, v)| wrong_type(k, v)).collect();
    let keys: Vec<String> = table.keys().cloned().collect();
    toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| {
        let m = e.message();
        let named = |prefix: &str| {
            m.strip_prefix(prefix)
                .and_then(|r| r.split('`').next())
                .map(str::to_owned)
        };
        if let Some(k) = named("unknown field `") {
            let mut out = format!("unknown key `{k}` for a {kind} channel");
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

fn parse_file(
    path: &Path,
    name: &str,
    env: &Env,
    kinds: &Kinds,
) -> Result<Result<Channel, Skip>, String> {
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
    let kind = kinds.get(&c.kind).ok_or_else(|| {
        let names: Vec<&str> = kinds.iter().map(Kind::as_str).collect();
        format!(
            "kind = \"{}\" is not a channel kind; use one of {}",
            c.kind,
            names.join(", ")
        )
    })?;
    let spec = kind.spec();
    let mut r = Resolve {
        kind: spec.name,
        base_url: c.base_url.as_deref(),
        env,
        secrets: EnvSecrets::default(),
        invalid: Vec::new(),
    };
    let settings = (spec.declare)(table, &mut r)?;
    let Resolve {
        secrets: missing,
        mut invalid,
        ..
    } = r;
    // Any named variable missing from the environment, or holding a value that cannot work,
    // makes the channel inactive (reported, not fatal: the other channels still start).
    let settings = if missing.is_empty() { settings } else { None };
    let platform = match (&c.render, spec.render_key) {
        (Some(r), true) => Platform::parse(r)?,
        (Some(_), false) => return Err("render is only for log channels".into()),
        (None, _) => spec.platform,
    };
    let audience = c.audience.unwrap_or(match spec.audience {
        Audiences::Fixed(_) => Audience::Fixed,
        Audiences::Subscribers | Audiences::Either => Audience::Subscribers,
    });
    match (audience, spec.audience) {
        (Audience::Subscribers, Audiences::Fixed(why)) => invalid.push(format!(
            "a {} channel {why}; use audience = \"fixed\"",
            spec.name
        )),
        (Audience::Fixed, Audiences::Subscribers) => invalid.push(format!(
            "a {} channel sends to subscribers; remove audience = \"fixed\"",
            spec.name
        )),
        _ => {}
    }
    let rate = Rate::parse(c.rate.as_deref().unwrap_or(spec.rate))?;
    // One post at a time keeps an incident's thread in order: each reply needs its parent.
    let concurrency = c
        .concurrency
        .unwrap_or(if kind.is_social() { 1 } else { 16 });
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
            kind,
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
    load_with(dir, env, &Kinds::builtin())
}

/// [`load_with_env`] for the channel kinds `kinds`: crier's own and any registered with
/// [`Kinds::with`].
pub fn load_with(dir: &Path, env: &Env, kinds: &Kinds) -> Result<Loaded, ChannelError> {
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
        match parse_file(&path, &name, env, kinds) {
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
        parse_file(&path, name, &test_env, &Kinds::builtin())
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
                Kind::new(&crate::adapters::mastodon::KIND),
                Platform::Mastodon,
            ),
            (
                "kind = \"bluesky\"\nidentifier = \"a.example\"\napp_password_env = \"CRIER_TEST_SOCIAL_SECRET\"",
                Kind::new(&crate::adapters::bluesky::KIND),
                Platform::Bluesky,
            ),
            (
                "kind = \"x\"\nconsumer_key_env = \"CRIER_TEST_SOCIAL_SECRET\"\nconsumer_secret_env = \"CRIER_TEST_SOCIAL_SECRET\"\naccess_token_env = \"CRIER_TEST_SOCIAL_SECRET\"\naccess_token_secret_env = \"CRIER_TEST_SOCIAL_SECRET\"",
                Kind::new(&crate::adapters::x::KIND),
                Platform::X,
            ),
            (
                "kind = \"facebook\"\npage_id = \"123\"\npage_token_env = \"CRIER_TEST_SOCIAL_SECRET\"",
                Kind::new(&crate::adapters::facebook::KIND),
                Platform::Facebook,
            ),
            (
                "kind = \"slack\"\nwebhook_url_env = \"CRIER_TEST_SOCIAL_URL\"",
                Kind::new(&crate::adapters::slack::KIND),
                Platform::Slack,
            ),
            (
                "kind = \"teams\"\nwebhook_url_env = \"CRIER_TEST_SOCIAL_URL\"",
                Kind::new(&crate::adapters::teams::KIND),
                Platform::Teams,
            ),
            (
                "kind = \"discord\"\nwebhook_url_env = \"CRIER_TEST_SOCIAL_URL\"",
                Kind::new(&crate::adapters::discord::KIND),
                Platform::Discord,
            ),
            (
                "kind = \"telegram\"\nbot_token_env = \"CRIER_TEST_SOCIAL_SECRET\"\nchat_id = -100123",
                Kind::new(&crate::adapters::telegram::KIND),
                Platform::Telegram,
            ),
            (
                "kind = \"matrix\"\nbase_url = \"https://hs.example\"\naccess_token_env = \"CRIER_TEST_SOCIAL_SECRET\"\nroom_id = \"!r:hs.example\"",
                Kind::new(&crate::adapters::matrix::KIND),
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
        assert!(ch
            .settings
            .get::<crate::adapters::mastodon::MastodonConfig>()
            .is_some_and(|m| m.visibility == "public"));
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
