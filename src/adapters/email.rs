//! SMTP email adapter: turns an [`OutMessage`] into a MIME message and hands
//! it to the channel's SMTP relay through a pooled lettre transport.
//!
//! * Connections are pooled per channel ([`EmailAdapter::new`]): up to the
//!   channel's concurrency stay open between sends, on sockets with
//!   `TCP_NODELAY`, checked with NOOP only after [`CHECK_IDLE_AFTER`] idle and
//!   closed after [`CLOSE_IDLE_AFTER`]; lettre speaks SMTP on each one.
//! * `Message-ID: <{idempotency_key}@{domain}>` is the same on every retry, so
//!   receiving systems can spot duplicates.
//! * Bodies are `multipart/alternative` (text/plain first, then text/html) when
//!   HTML is present, plain text otherwise.
//! * With an unsubscribe URL the RFC 8058 one-click headers are added:
//!   `List-Unsubscribe: <url>` and `List-Unsubscribe-Post: List-Unsubscribe=One-Click`,
//!   as typed lettre headers ([`ListUnsubscribe`], [`ListUnsubscribePost`]).
//!   The URL is checked for CR/LF, `<`, `>`, whitespace and non-ASCII first.
//! * Every send is wrapped in `tokio::time::timeout` (lettre's own timeout is
//!   per socket operation, not per conversation).
//!
//! Classification ([`classify_smtp_error`]):
//!
//! | failure | Outcome |
//! |---|---|
//! | accepted (2xx after DATA) | `Delivered { receipt: "<code> <server text>" }` |
//! | SMTP 4xx (`Error::is_transient`) | `Retry` |
//! | SMTP 5xx (`Error::is_permanent`) | `Rejected` |
//! | timeout, connection, TLS, network, protocol errors | `Retry` |
//! | message cannot be built (bad address, bad URL) | `Rejected` |
//!
//! TLS modes: [`TlsMode::Starttls`] (port 587, TLS required before AUTH),
//! [`TlsMode::Tls`] (implicit TLS, port 465), [`TlsMode::Plain`] (no TLS; only
//! accepted for a loopback host, e.g. a local relay or a test server).

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::Message;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::outcome::{OutMessage, Outcome, Recipient};
use super::{BoxFuture, Deliver};

/// Default bound on one whole SMTP conversation.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections kept open when the caller does not say (lettre's pool default).
pub const DEFAULT_CONNECTIONS: usize = 10;

/// Longest unsubscribe URL accepted (keeps the header line well under 998 octets).
pub const MAX_UNSUBSCRIBE_URL_LEN: usize = 900;

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain connect, then STARTTLS, which is required (submission, port 587).
    Starttls,
    /// TLS from the first byte (submissions, port 465).
    Tls,
    /// No TLS at all. Only allowed when the host is a loopback address.
    Plain,
}

impl TlsMode {
    /// The conventional port for this mode.
    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::Starttls => 587,
            TlsMode::Tls => 465,
            TlsMode::Plain => 25,
        }
    }
}

/// Errors configuring the email channel or building one message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// The SMTP host is empty.
    #[error("email config: host must not be empty")]
    EmptyHost,
    /// Plain (unencrypted) SMTP to a host that is not loopback.
    #[error("email config: plain SMTP is only allowed to a loopback host, not {0:?}")]
    PlainNotLoopback(String),
    /// Only one of username/password was given.
    #[error("email config: set both username and password, or neither")]
    IncompleteCredentials,
    /// The `from` mailbox does not parse.
    #[error("email config: invalid from address {0:?}")]
    BadFrom(String),
    /// The `reply_to` mailbox does not parse.
    #[error("email config: invalid reply_to address {0:?}")]
    BadReplyTo(String),
    /// The Message-ID domain is not a plain host name.
    #[error("email config: domain {0:?} is not a valid host name")]
    BadDomain(String),
    /// TLS parameters could not be set up.
    #[error("email config: TLS setup failed: {0}")]
    Tls(String),
    /// [`EmailAdapter::new`] was called outside a Tokio runtime.
    #[error("email adapter must be created inside a Tokio runtime")]
    NoRuntime,
    /// The message is not addressed to an email recipient.
    #[error("email needs an email recipient")]
    NotEmailRecipient,
    /// The recipient address does not parse.
    #[error("invalid recipient address {0:?}")]
    BadRecipient(String),
    /// The idempotency key cannot be used in a Message-ID.
    #[error("idempotency key must be non-empty ASCII letters, digits or '-'")]
    BadIdempotencyKey,
    /// The unsubscribe URL is unsafe or malformed.
    #[error("invalid unsubscribe URL: {0}")]
    BadUnsubscribeUrl(&'static str),
    /// lettre refused to build the message.
    #[error("could not build message: {0}")]
    Build(String),
}

/// Settings for one email channel. The password is resolved by the caller.
#[derive(Clone)]
pub struct EmailConfig {
    /// SMTP relay host name (also the TLS server name).
    pub host: String,
    /// SMTP port.
    pub port: u16,
    /// Connection security.
    pub tls: TlsMode,
    /// SMTP AUTH user, if the relay needs AUTH.
    pub username: Option<String>,
    /// SMTP AUTH password. Never printed.
    pub password: Option<SecretString>,
    /// `From` mailbox, e.g. `Crier <alerts@status.example>`.
    pub from: String,
    /// Optional `Reply-To` mailbox.
    pub reply_to: Option<String>,
    /// Right-hand side of Message-IDs and the EHLO name, e.g. `status.example`.
    pub domain: String,
    /// Bound on one whole send.
    pub timeout: Duration,
    /// Extra trusted root certificates (PEM), for relays with a private CA.
    pub ca_pem: Option<Vec<u8>>,
    /// Connections kept open between sends: the channel's concurrency, so that every
    /// concurrent send finds one and none is opened and closed per message.
    pub connections: usize,
}

impl EmailConfig {
    /// A config using the mode's default port, no AUTH and the default timeout.
    pub fn new(
        host: impl Into<String>,
        tls: TlsMode,
        from: impl Into<String>,
        domain: impl Into<String>,
    ) -> Self {
        EmailConfig {
            host: host.into(),
            port: tls.default_port(),
            tls,
            username: None,
            password: None,
            from: from.into(),
            reply_to: None,
            domain: domain.into(),
            timeout: DEFAULT_TIMEOUT,
            ca_pem: None,
            connections: DEFAULT_CONNECTIONS,
        }
    }

    /// Checks the config: host set, Plain only to loopback, credentials
    /// complete, addresses and domain valid.
    pub fn validate(&self) -> Result<(), EmailError> {
        if self.host.trim().is_empty() {
            return Err(EmailError::EmptyHost);
        }
        if self.tls == TlsMode::Plain && !is_loopback_host(&self.host) {
            return Err(EmailError::PlainNotLoopback(self.host.clone()));
        }
        if self.username.is_some() != self.password.is_some() {
            return Err(EmailError::IncompleteCredentials);
        }
        self.sender_mailbox()?;
        self.reply_to_mailbox()?;
        if !is_host_name(&self.domain) {
            return Err(EmailError::BadDomain(self.domain.clone()));
        }
        Ok(())
    }

    fn sender_mailbox(&self) -> Result<Mailbox, EmailError> {
        self.from
            .parse()
            .map_err(|_| EmailError::BadFrom(self.from.clone()))
    }

    fn reply_to_mailbox(&self) -> Result<Option<Mailbox>, EmailError> {
        self.reply_to
            .as_ref()
            .map(|r| r.parse().map_err(|_| EmailError::BadReplyTo(r.clone())))
            .transpose()
    }
}

impl fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("from", &self.from)
            .field("reply_to", &self.reply_to)
            .field("domain", &self.domain)
            .field("timeout", &self.timeout)
            .field("connections", &self.connections)
            .finish()
    }
}

/// `localhost` or a loopback IP literal (IPv6 may be bracketed).
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim().trim_end_matches('.');
    if h.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let h = h.trim_start_matches('[').trim_end_matches(']');
    h.parse::<IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// The RFC 2369 / RFC 8058 `List-Unsubscribe` header holding one URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListUnsubscribe(String);

impl ListUnsubscribe {
    /// Checks `url` (http/https, printable ASCII, no whitespace, no `<`/`>`,
    /// at most [`MAX_UNSUBSCRIBE_URL_LEN`] bytes) and wraps it.
    pub fn new(url: &str) -> Result<Self, EmailError> {
        if url.is_empty() || url.len() > MAX_UNSUBSCRIBE_URL_LEN {
            return Err(EmailError::BadUnsubscribeUrl("empty or too long"));
        }
        if url.contains(['\r', '\n']) {
            return Err(EmailError::BadUnsubscribeUrl("contains CR or LF"));
        }
        if url.contains(['<', '>']) {
            return Err(EmailError::BadUnsubscribeUrl("contains '<' or '>'"));
        }
        if !url.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(EmailError::BadUnsubscribeUrl(
                "contains whitespace, control or non-ASCII characters",
            ));
        }
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://")) {
            return Err(EmailError::BadUnsubscribeUrl("must be an http(s) URL"));
        }
        Ok(ListUnsubscribe(url.to_owned()))
    }

    /// The URL, without angle brackets.
    pub fn url(&self) -> &str {
        &self.0
    }
}

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let inner = s
            .trim()
            .strip_prefix('<')
            .and_then(|rest| rest.strip_suffix('>'))
            .ok_or(EmailError::BadUnsubscribeUrl("missing angle brackets"))?;
        Ok(ListUnsubscribe::new(inner)?)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), format!("<{}>", self.0))
    }
}

/// The RFC 8058 `List-Unsubscribe-Post: List-Unsubscribe=One-Click` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListUnsubscribePost;

impl ListUnsubscribePost {
    /// The only value RFC 8058 defines.
    pub const VALUE: &'static str = "List-Unsubscribe=One-Click";
}

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        if s.trim() == Self::VALUE {
            Ok(ListUnsubscribePost)
        } else {
            Err(EmailError::BadUnsubscribeUrl("unexpected List-Unsubscribe-Post value").into())
        }
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), Self::VALUE.to_owned())
    }
}

/// The stable Message-ID for a message: `<{key}@{domain}>`.
pub fn message_id(idempotency_key: &str, domain: &str) -> Result<String, EmailError> {
    let key_ok = !idempotency_key.is_empty()
        && idempotency_key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !key_ok {
        return Err(EmailError::BadIdempotencyKey);
    }
    if !is_host_name(domain) {
        return Err(EmailError::BadDomain(domain.to_owned()));
    }
    Ok(format!("<{idempotency_key}@{domain}>"))
}

/// Builds the MIME message for `msg` (pure; no network).
pub fn build_message(config: &EmailConfig, msg: &OutMessage) -> Result<Message, EmailError> {
    let to_addr = match &msg.recipient {
        Recipient::Email(addr) => addr,
        _ => return Err(EmailError::NotEmailRecipient),
    };
    let to: Mailbox = to_addr
        .parse()
        .map_err(|_| EmailError::BadRecipient(to_addr.clone()))?;
    let mut builder = Message::builder()
        .from(config.sender_mailbox()?)
        .to(to)
        .message_id(Some(message_id(&msg.idempotency_key, &config.domain)?));
    if let Some(reply_to) = config.reply_to_mailbox()? {
        builder = builder.reply_to(reply_to);
    }
    if let Some(subject) = &msg.subject {
        // lettre encodes control characters safely; folding line breaks into
        // spaces also keeps the decoded subject on one line.
        builder = builder.subject(subject.replace(['\r', '\n'], " "));
    }
    if let Some(url) = &msg.unsubscribe_url {
        builder = builder
            .header(ListUnsubscribe::new(url)?)
            .header(ListUnsubscribePost);
    }
    let built = match &msg.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            msg.text.clone(),
            html.clone(),
        )),
        None => builder.singlepart(SinglePart::plain(msg.text.clone())),
    };
    built.map_err(|e| EmailError::Build(e.to_string()))
}

/// Maps a lettre SMTP error to an [`Outcome`]: 5xx is permanent, everything
/// else (4xx, timeouts, connection, TLS, protocol) is worth retrying.
pub fn classify_smtp_error(err: &lettre::transport::smtp::Error) -> Outcome {
    if err.is_permanent() {
        Outcome::rejected(format!("SMTP {err}"))
    } else if err.is_transient() {
        Outcome::retry(format!("SMTP {err}"))
    } else if err.is_timeout() {
        Outcome::retry("timed out")
    } else {
        Outcome::retry(format!("SMTP {err}"))
    }
}

/// Sends email through one SMTP relay, keeping connections open between sends.
#[derive(Clone)]
pub struct EmailAdapter {
    config: EmailConfig,
    pool: Arc<Pool>,
}

impl fmt::Debug for EmailAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailAdapter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why a send failed: the SMTP conversation (an answer, TLS, the network), or the TCP connect.
#[derive(Debug)]
enum SendError {
    Smtp(lettre::transport::smtp::Error),
    Connect(std::io::Error),
}

impl From<lettre::transport::smtp::Error> for SendError {
    fn from(e: lettre::transport::smtp::Error) -> Self {
        SendError::Smtp(e)
    }
}

/// How a connection is secured once it is open.
enum Secure {
    None,
    Starttls(TlsParameters),
    Wrapper(TlsParameters),
}

/// The relay's open connections that no send is using, most recently used last, each with
/// the instant it was parked. At most `max_idle` (the channel's concurrency) are kept.
///
/// Unlike lettre's own pool this one opens its sockets itself, with `TCP_NODELAY` (lettre writes
/// the message body and the final `.` in two writes; with Nagle's algorithm the second waits for
/// the server's delayed ACK, about 40 ms on Linux, on every message), and only tests a parked
/// connection (NOOP, a round trip) when it has been idle for [`CHECK_IDLE_AFTER`]: during a
/// fan-out connections are reused within milliseconds. A parked connection that fails anyway (the
/// server closed it) is replaced by a fresh one within the same send.
struct Pool {
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    max_idle: usize,
    host: String,
    port: u16,
    hello: ClientId,
    secure: Secure,
    credentials: Option<Credentials>,
}

/// A parked connection idle this long is tested with NOOP before it is used again.
pub const CHECK_IDLE_AFTER: Duration = Duration::from_secs(5);
/// A parked connection idle this long is closed (QUIT) instead of being used again.
pub const CLOSE_IDLE_AFTER: Duration = Duration::from_secs(60);

impl Pool {
    /// A fresh connection: TCP with `TCP_NODELAY`, greeting and EHLO, TLS as configured, AUTH.
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        use lettre::transport::smtp::authentication::DEFAULT_MECHANISMS;
        let mut conn = match &self.secure {
            Secure::Wrapper(params) => {
                // Implicit TLS: lettre opens this socket (it offers no way to start TLS on one of
                // ours before the greeting), so Nagle's algorithm stays on for these.
                AsyncSmtpConnection::connect_tokio1(
                    (self.host.as_str(), self.port),
                    None,
                    &self.hello,
                    Some(params.clone()),
                    None,
                )
                .await?
            }
            Secure::None | Secure::Starttls(_) => {
                let tcp = open_tcp(&self.host, self.port)
                    .await
                    .map_err(SendError::Connect)?;
                AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello).await?
            }
        };
        if let Secure::Starttls(params) = &self.secure {
            conn.starttls(params.clone(), &self.hello).await?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials).await?;
        }
        Ok(conn)
    }

    /// The most recently parked connection that still works, if any (stale ones are closed).
    async fn checkout(&self) -> Option<AsyncSmtpConnection> {
        loop {
            let (mut conn, since) = self.idle.lock().ok()?.pop()?;
            let idle = since.elapsed();
            if idle >= CLOSE_IDLE_AFTER {
                conn.abort().await;
                continue;
            }
            if idle >= CHECK_IDLE_AFTER && !conn.test_connected().await {
                conn.abort().await;
                continue;
            }
            return Some(conn);
        }
    }

    /// Parks a connection that is still usable, unless enough are parked already.
    async fn checkin(&self, mut conn: AsyncSmtpConnection) {
        if conn.has_broken() {
            return;
        }
        let surplus = match self.idle.lock() {
            Ok(mut idle) if idle.len() < self.max_idle => {
                idle.push((conn, Instant::now()));
                return;
            }
            _ => conn,
        };
        conn = surplus;
        conn.abort().await;
    }

    /// Closes the connections parked for [`CLOSE_IDLE_AFTER`] or longer.
    async fn close_stale(&self) {
        let stale: Vec<AsyncSmtpConnection> = match self.idle.lock() {
            Ok(mut idle) => {
                let (stale, keep): (Vec<_>, Vec<_>) = idle
                    .drain(..)
                    .partition(|(_, since)| since.elapsed() >= CLOSE_IDLE_AFTER);
                *idle = keep;
                stale.into_iter().map(|(c, _)| c).collect()
            }
            Err(_) => return,
        };
        for mut conn in stale {
            conn.abort().await;
        }
    }

    /// Sends one message on a parked connection, or a fresh one. If a parked connection fails
    /// without an SMTP answer (the server had closed it), the message goes once more on a fresh
    /// connection: the same at-least-once risk as the retry it replaces, and the Message-ID is
    /// the same.
    async fn send(
        &self,
        envelope: &lettre::address::Envelope,
        bytes: &[u8],
    ) -> Result<lettre::transport::smtp::response::Response, SendError> {
        if let Some(mut conn) = self.checkout().await {
            match conn.send(envelope, bytes).await {
                Ok(response) => {
                    self.checkin(conn).await;
                    return Ok(response);
                }
                Err(e) if e.is_transient() || e.is_permanent() => {
                    self.checkin(conn).await;
                    return Err(SendError::Smtp(e));
                }
                Err(_) => {} // no answer from the server: try a fresh connection
            }
        }
        let mut conn = self.connect().await?;
        let result = conn.send(envelope, bytes).await;
        self.checkin(conn).await;
        Ok(result?)
    }
}

/// A TCP connection to the relay with `TCP_NODELAY` set (best effort: without it a message
/// waits for a delayed ACK, but still goes).
async fn open_tcp(host: &str, port: u16) -> std::io::Result<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect((host, port)).await?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

impl EmailAdapter {
    /// Validates `config` and sets up the connection pool. No connection is made yet. Must be
    /// called inside a Tokio runtime (a task closes idle connections); otherwise returns
    /// [`EmailError::NoRuntime`].
    pub fn new(config: EmailConfig) -> Result<Self, EmailError> {
        config.validate()?;
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err(EmailError::NoRuntime);
        };
        let secure = match config.tls {
            TlsMode::Plain => Secure::None,
            TlsMode::Starttls => Secure::Starttls(tls_parameters(&config)?),
            TlsMode::Tls => Secure::Wrapper(tls_parameters(&config)?),
        };
        let credentials = match (&config.username, &config.password) {
            (Some(user), Some(pass)) => Some(Credentials::new(
                user.clone(),
                pass.expose_secret().to_owned(),
            )),
            _ => None,
        };
        let pool = Arc::new(Pool {
            idle: Mutex::new(Vec::new()),
            max_idle: config.connections.max(1),
            host: config.host.trim().to_owned(),
            port: config.port,
            hello: ClientId::Domain(config.domain.clone()),
            secure,
            credentials,
        });
        let weak = Arc::downgrade(&pool);
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(CLOSE_IDLE_AFTER).await;
                match weak.upgrade() {
                    Some(pool) => pool.close_stale().await,
                    None => return,
                }
            }
        });
        Ok(EmailAdapter { config, pool })
    }

    /// Builds and sends one email, bounded by the configured timeout. Never
    /// panics; every failure is an [`Outcome`].
    pub async fn send(&self, msg: &OutMessage) -> Outcome {
        let message = match build_message(&self.config, msg) {
            Ok(m) => m,
            Err(e) => return Outcome::rejected(e.to_string()),
        };
        let bytes = message.formatted();
        let send = self.pool.send(message.envelope(), &bytes);
        match tokio::time::timeout(self.config.timeout, send).await {
            Err(_elapsed) => Outcome::retry("timed out"),
            Ok(Err(SendError::Smtp(err))) => classify_smtp_error(&err),
            Ok(Err(SendError::Connect(err))) => {
                Outcome::retry(format!("SMTP cannot connect to the relay: {err}"))
            }
            Ok(Ok(response)) => {
                let text: Vec<&str> = response.message().collect();
                Outcome::Delivered {
                    receipt: Some(format!("{} {}", response.code(), text.join(" "))),
                }
            }
        }
    }
}

fn tls_parameters(config: &EmailConfig) -> Result<TlsParameters, EmailError> {
    let mut b = TlsParameters::builder(config.host.trim().to_owned());
    if let Some(pem) = &config.ca_pem {
        let cert = lettre::transport::smtp::client::Certificate::from_pem(pem)
            .map_err(|e| EmailError::Tls(format!("the ca_file is not a PEM certificate: {e}")))?;
        b = b.add_root_certificate(cert);
    }
    b.build().map_err(|e| EmailError::Tls(e.to_string()))
}

/// SMTP is not HTTP: no request to build, and an SMTP reply code rather than an HTTP status to
/// classify; the connection pool is the adapter's own. It has the same [`Deliver`] shape as every
/// adapter, so the dispatcher sends through it like through any other; its send timeout is the
/// [`super::Adapter`]'s, like every channel's.
impl Deliver for EmailAdapter {
    fn send<'a>(&'a self, msg: &'a OutMessage) -> BoxFuture<'a, Outcome> {
        Box::pin(EmailAdapter::send(self, msg))
    }
}

use crate::channels::{KindSettings, KindSpec, Reach, Resolve, Settings};
use crate::render::preview::Platform;
use secrecy::{ExposeSecret, SecretString};
use std::path::PathBuf;

/// The `email` kind: SMTP to subscribers.
pub static KIND: KindSpec =
    KindSpec::subscribers("email", Platform::Email, Reach::Email, "20/s", declare);

#[derive(serde::Deserialize)]
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

fn declare(table: toml::Table, r: &mut Resolve<'_>) -> Result<Option<Settings>, String> {
    let f: EmailFile = r.declared(table)?;
    let port = match f.port {
        Some(p) => match u16::try_from(p) {
            Ok(p) if p > 0 => Some(p),
            _ => {
                r.invalid("port must be 1-65535");
                None
            }
        },
        None => None,
    };
    let tls = match f.tls.as_str() {
        "starttls" => TlsMode::Starttls,
        "tls" => TlsMode::Tls,
        "plain" => TlsMode::Plain,
        other => {
            r.invalid(format!(
                "tls = \"{other}\": use starttls, tls or plain (plain only to a loopback host)"
            ));
            TlsMode::Starttls
        }
    };
    let (username, password) = if f.username_env.is_some() || f.password_env.is_some() {
        (
            r.secret("username_env", f.username_env),
            r.secret("password_env", f.password_env),
        )
    } else {
        (None, None)
    };
    if f.host.is_none() || f.from.is_none() {
        r.invalid("host and from are required");
    }
    let (Some(host), Some(from)) = (f.host, f.from) else {
        return Ok(None);
    };
    let domain = f.domain.unwrap_or_else(|| {
        from.rsplit('@')
            .next()
            .unwrap_or("localhost")
            .trim_end_matches('>')
            .to_owned()
    });
    let port = port.unwrap_or(match tls {
        TlsMode::Tls => 465,
        TlsMode::Plain => 25,
        TlsMode::Starttls => 587,
    });
    Ok(Some(Settings::new(EmailSettings {
        config: EmailConfig {
            port,
            username,
            password: password.map(SecretString::from),
            ..EmailConfig::new(host, tls, from, domain)
        },
        ca_file: f.ca_file,
    })))
}

/// An email channel's settings: the adapter's [`EmailConfig`] but for what comes from the
/// channel's limits (timeout, connections) and the CA file's contents, read when the server
/// starts.
#[derive(Clone)]
pub struct EmailSettings {
    pub config: EmailConfig,
    /// Extra trusted root certificate(s) (PEM) for a relay with a private CA.
    pub ca_file: Option<PathBuf>,
}

impl fmt::Debug for EmailSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        write!(
            f,
            "Email {{ host: {}, port: {}, tls: {:?}, from: {}, credentials: *** }}",
            c.host, c.port, c.tls, c.from
        )
    }
}

impl KindSettings for EmailSettings {
    fn build(&self, s: &super::Setup<'_>) -> Result<Box<dyn Deliver>, String> {
        let ca_pem = match &self.ca_file {
            Some(p) => Some(
                std::fs::read(p)
                    .map_err(|e| format!("cannot read ca_file {}: {e}", p.display()))?,
            ),
            None => None,
        };
        let config = EmailConfig {
            timeout: s.channel.send_timeout,
            ca_pem,
            connections: s.channel.concurrency,
            ..self.config.clone()
        };
        EmailAdapter::new(config)
            .map(|a| Box::new(a) as Box<dyn Deliver>)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    const PASSWORD: &str = "smtp-pass-31337";
    const KEY: &str = "c0ffee00c0ffee00";

    fn config() -> EmailConfig {
        let mut c = EmailConfig::new(
            "smtp.example.org",
            TlsMode::Starttls,
            "Crier Alerts <alerts@status.example>",
            "status.example",
        );
        c.username = Some("alerts".into());
        c.password = Some(PASSWORD.into());
        c.reply_to = Some("support@status.example".into());
        c
    }

    fn mail(html: Option<&str>, unsub: Option<&str>, subject: &str) -> OutMessage {
        OutMessage {
            idempotency_key: KEY.into(),
            recipient: Recipient::Email("resident@example.net".into()),
            locale: "fi".into(),
            subject: Some(subject.into()),
            text: "Vesikatko klo 14-16.".into(),
            html: html.map(str::to_owned),
            unsubscribe_url: unsub.map(str::to_owned),
            document: None,
            thread: None,
        }
    }

    fn formatted(m: &Message) -> String {
        String::from_utf8(m.formatted()).unwrap()
    }

    fn header_lines(raw: &str) -> Vec<&str> {
        raw.split("\r\n\r\n")
            .next()
            .unwrap()
            .split("\r\n")
            .collect()
    }

    #[test]
    fn builds_headers_and_multipart_in_order() {
        let m = build_message(
            &config(),
            &mail(
                Some("<p>Vesikatko</p>"),
                Some("https://status.example/u/abc123?l=fi"),
                "Vesikatko Kalliossa",
            ),
        )
        .unwrap();
        let raw = formatted(&m);
        let headers = header_lines(&raw);
        assert!(
            headers.contains(&"From: \"Crier Alerts\" <alerts@status.example>"),
            "{raw}"
        );
        assert!(headers.contains(&"To: resident@example.net"), "{raw}");
        assert!(
            headers.contains(&"Reply-To: support@status.example"),
            "{raw}"
        );
        assert!(headers.contains(&"Subject: Vesikatko Kalliossa"), "{raw}");
        assert!(
            headers.contains(&"Message-ID: <c0ffee00c0ffee00@status.example>"),
            "{raw}"
        );
        assert!(
            headers.contains(&"List-Unsubscribe: <https://status.example/u/abc123?l=fi>"),
            "{raw}"
        );
        assert!(
            headers.contains(&"List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
            "{raw}"
        );
        assert!(raw.contains("multipart/alternative"), "{raw}");
        let plain = raw.find("text/plain").unwrap();
        let html = raw.find("text/html").unwrap();
        assert!(plain < html, "text part must come first");
    }

    #[test]
    fn message_id_is_stable_across_builds() {
        let a = build_message(&config(), &mail(None, None, "s")).unwrap();
        let b = build_message(&config(), &mail(None, None, "s")).unwrap();
        let id = |m: &Message| {
            header_lines(&formatted(m))
                .into_iter()
                .find(|l| l.starts_with("Message-ID:"))
                .unwrap()
                .to_owned()
        };
        assert_eq!(id(&a), id(&b));
        assert_eq!(id(&a), "Message-ID: <c0ffee00c0ffee00@status.example>");
        let raw = formatted(&a);
        assert!(!raw.contains("multipart"), "plain-only mail is single part");
        assert!(
            !raw.contains("List-Unsubscribe"),
            "no unsubscribe header without URL"
        );
    }

    #[test]
    fn subject_cannot_inject_headers() {
        let m = build_message(
            &config(),
            &mail(None, None, "Hello\r\nBcc: victim@example.com\r\n\r\nbody"),
        )
        .unwrap();
        let raw = formatted(&m);
        for line in header_lines(&raw) {
            assert!(!line.to_ascii_lowercase().starts_with("bcc:"), "{raw}");
        }
        assert!(!raw.contains("\r\nBcc: victim"), "{raw}");
        assert!(
            raw.contains("Subject: Hello  Bcc: victim@example.com    body"),
            "{raw}"
        );
        // Envelope recipients are unaffected.
        let rcpts: Vec<String> = m.envelope().to().iter().map(|a| a.to_string()).collect();
        assert_eq!(rcpts, ["resident@example.net"]);
    }

    #[test]
    fn unsafe_unsubscribe_urls_are_refused() {
        for bad in [
            "https://x.example/u\r\nBcc: a@b.c",
            "https://x.example/u\n",
            "https://x.example/u>, <mailto:evil@x",
            "https://x.example/a b",
            "https://x.example/ä",
            "javascript:alert(1)",
            "",
        ] {
            assert!(ListUnsubscribe::new(bad).is_err(), "{bad:?}");
            assert!(
                build_message(&config(), &mail(None, Some(bad), "s")).is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(
            ListUnsubscribe::parse(" <https://x.example/u> ")
                .unwrap()
                .url(),
            "https://x.example/u"
        );
        assert!(ListUnsubscribe::parse("https://x.example/u").is_err());
        assert!(ListUnsubscribePost::parse("List-Unsubscribe=One-Click").is_ok());
        assert!(ListUnsubscribePost::parse("other").is_err());
    }

    #[test]
    fn bad_inputs_are_errors() {
        let mut m = mail(None, None, "s");
        m.recipient = Recipient::Phone("+358401234567".into());
        assert_eq!(
            build_message(&config(), &m).unwrap_err(),
            EmailError::NotEmailRecipient
        );
        m.recipient = Recipient::Email("not an address".into());
        assert!(matches!(
            build_message(&config(), &m),
            Err(EmailError::BadRecipient(_))
        ));
        let mut m = mail(None, None, "s");
        m.idempotency_key = "a@b>".into();
        assert_eq!(
            build_message(&config(), &m).unwrap_err(),
            EmailError::BadIdempotencyKey
        );
    }

    #[test]
    fn validation_rules() {
        assert_eq!(config().validate(), Ok(()));
        let mut plain = config();
        plain.tls = TlsMode::Plain;
        assert!(matches!(
            plain.validate(),
            Err(EmailError::PlainNotLoopback(_))
        ));
        for host in [
            "localhost",
            "127.0.0.1",
            "127.0.0.53",
            "::1",
            "[::1]",
            "LOCALHOST.",
        ] {
            plain.host = host.into();
            assert_eq!(plain.validate(), Ok(()), "{host}");
        }
        for host in ["10.0.0.1", "mail.localhost.example", "0.0.0.0"] {
            plain.host = host.into();
            assert!(plain.validate().is_err(), "{host}");
        }
        let mut half = config();
        half.password = None;
        assert_eq!(half.validate(), Err(EmailError::IncompleteCredentials));
        let mut bad_from = config();
        bad_from.from = "nope".into();
        assert!(matches!(bad_from.validate(), Err(EmailError::BadFrom(_))));
        let mut bad_domain = config();
        bad_domain.domain = "status.example>".into();
        assert!(matches!(
            bad_domain.validate(),
            Err(EmailError::BadDomain(_))
        ));
        assert_eq!(TlsMode::Tls.default_port(), 465);
    }

    #[test]
    fn debug_hides_password() {
        let dbg = format!("{:?}", config());
        assert!(!dbg.contains(PASSWORD) && dbg.contains("***"), "{dbg}");
    }

    #[test]
    fn new_outside_runtime_is_an_error() {
        assert_eq!(
            EmailAdapter::new(config()).unwrap_err(),
            EmailError::NoRuntime
        );
    }

    #[tokio::test]
    async fn tls_modes_build_without_connecting() {
        for mode in [TlsMode::Starttls, TlsMode::Tls] {
            let mut c = config();
            c.tls = mode;
            let adapter = EmailAdapter::new(c).unwrap();
            assert!(!format!("{adapter:?}").contains(PASSWORD));
        }
    }

    /// A tiny in-process SMTP server: just enough for lettre to send one mail.
    /// Answers RCPT with `rcpt_reply`; records each DATA payload.
    async fn fake_smtp(rcpt_reply: &'static str) -> (u16, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let store = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&store);
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let seen = Arc::clone(&seen);
                tokio::spawn(async move {
                    let (r, mut w) = sock.into_split();
                    let mut r = BufReader::new(r);
                    w.write_all(b"220 fake.test ESMTP\r\n").await.unwrap();
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            break;
                        }
                        let cmd = line.get(..4).unwrap_or("").to_ascii_uppercase();
                        let reply: &str = match cmd.as_str() {
                            "EHLO" | "HELO" => "250 fake.test\r\n",
                            "MAIL" | "RSET" | "NOOP" => "250 2.0.0 OK\r\n",
                            "RCPT" => rcpt_reply,
                            "DATA" => {
                                w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                                    .await
                                    .unwrap();
                                let mut data = String::new();
                                loop {
                                    let mut l = String::new();
                                    if r.read_line(&mut l).await.unwrap_or(0) == 0 || l == ".\r\n" {
                                        break;
                                    }
                                    data.push_str(&l);
                                }
                                seen.lock().unwrap().push(data);
                                "250 2.0.0 Ok: queued as FAKE1\r\n"
                            }
                            "QUIT" => {
                                let _ = w.write_all(b"221 2.0.0 Bye\r\n").await;
                                break;
                            }
                            _ => "502 5.5.2 Command not recognized\r\n",
                        };
                        if w.write_all(reply.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        (port, store)
    }

    fn local_config(port: u16) -> EmailConfig {
        let mut c = EmailConfig::new(
            "127.0.0.1",
            TlsMode::Plain,
            "Crier <alerts@status.example>",
            "status.example",
        );
        c.port = port;
        c.timeout = Duration::from_secs(10);
        c
    }

    #[tokio::test]
    async fn smtp_delivery_and_classification() {
        // 250 on RCPT: delivered, and the server saw our headers.
        let (port, seen) = fake_smtp("250 2.1.5 OK\r\n").await;
        let adapter = EmailAdapter::new(local_config(port)).unwrap();
        let out = adapter
            .send(&mail(
                Some("<p>hi</p>"),
                Some("https://status.example/u/1"),
                "Testi",
            ))
            .await;
        match &out {
            Outcome::Delivered { receipt: Some(r) } => {
                assert!(r.contains("queued as FAKE1"), "{r}")
            }
            other => panic!("expected delivery, got {other:?}"),
        }
        let data = seen.lock().unwrap().join("");
        assert!(
            data.contains("Message-ID: <c0ffee00c0ffee00@status.example>"),
            "{data}"
        );
        assert!(
            data.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
            "{data}"
        );

        // 450 on RCPT: transient; 550: permanent.
        for (reply, code, permanent) in [
            ("450 4.2.1 Mailbox busy\r\n", "450", false),
            ("550 5.1.1 No such user\r\n", "550", true),
        ] {
            let (port, _) = fake_smtp(reply).await;
            let out = EmailAdapter::new(local_config(port))
                .unwrap()
                .send(&mail(None, None, "s"))
                .await;
            let classed = match &out {
                Outcome::Retry { reason, .. } => !permanent && reason.contains(code),
                Outcome::Rejected { reason } => permanent && reason.contains(code),
                _ => false,
            };
            assert!(classed, "{reply}: {out:?}");
        }
    }

    /// What a scripted SMTP server saw: connections accepted and every command line.
    #[derive(Default)]
    struct Seen {
        connections: usize,
        commands: Vec<String>,
    }

    /// A fake SMTP server that accepts any mail. With `barrier`, each "." is answered only
    /// once that many messages are waiting (so that many connections are open at once); with
    /// `close_after_message`, it closes the connection after answering each message.
    async fn scripted_smtp(
        barrier: Option<usize>,
        close_after_message: bool,
    ) -> (u16, Arc<Mutex<Seen>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let barrier = barrier.map(|n| Arc::new(tokio::sync::Barrier::new(n)));
        let s = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                s.lock().unwrap().connections += 1;
                let (s, barrier) = (Arc::clone(&s), barrier.clone());
                tokio::spawn(async move {
                    let (r, mut w) = sock.into_split();
                    let mut r = BufReader::new(r);
                    w.write_all(b"220 fake.test ESMTP\r\n").await.unwrap();
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            break;
                        }
                        s.lock().unwrap().commands.push(line.trim_end().to_owned());
                        let cmd = line.get(..4).unwrap_or("").to_ascii_uppercase();
                        let reply: &[u8] = match cmd.as_str() {
                            "EHLO" | "HELO" => b"250 fake.test\r\n",
                            "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 2.0.0 OK\r\n",
                            "DATA" => {
                                w.write_all(b"354 go ahead\r\n").await.unwrap();
                                loop {
                                    let mut l = String::new();
                                    if r.read_line(&mut l).await.unwrap_or(0) == 0 || l == ".\r\n" {
                                        break;
                                    }
                                }
                                if let Some(b) = &barrier {
                                    b.wait().await;
                                }
                                if close_after_message {
                                    let _ = w.write_all(b"250 2.0.0 queued\r\n").await;
                                    break;
                                }
                                b"250 2.0.0 queued\r\n"
                            }
                            "QUIT" => {
                                let _ = w.write_all(b"221 bye\r\n").await;
                                break;
                            }
                            _ => b"502 5.5.2 unknown\r\n",
                        };
                        if w.write_all(reply).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        (port, seen)
    }

    fn numbered(i: usize) -> OutMessage {
        let mut m = mail(Some("<p>hi</p>"), Some("https://status.example/u/1"), "s");
        m.idempotency_key = format!("key-{i}");
        m
    }

    #[tokio::test]
    async fn one_connection_serves_consecutive_sends_without_a_check_each_time() {
        let (port, seen) = scripted_smtp(None, false).await;
        let adapter = EmailAdapter::new(local_config(port)).unwrap();
        for i in 0..3 {
            let out = adapter.send(&numbered(i)).await;
            assert!(matches!(out, Outcome::Delivered { .. }), "{out:?}");
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.connections, 1, "{:?}", seen.commands);
        assert_eq!(
            seen.commands
                .iter()
                .filter(|c| c.starts_with("MAIL"))
                .count(),
            3
        );
        // lettre's own pool sends NOOP before every reuse: a round trip per message.
        assert!(
            !seen.commands.iter().any(|c| c.starts_with("NOOP")),
            "{:?}",
            seen.commands
        );
    }

    #[tokio::test]
    async fn the_pool_keeps_as_many_connections_as_the_channel_sends_at_once() {
        // 12 at once, twice: the first wave opens 12 connections (the server answers only
        // when all 12 are waiting), and the second finds all 12 parked. lettre's pool kept 10
        // and closed the others, so every wave opened new ones.
        const AT_ONCE: usize = 12;
        let (port, seen) = scripted_smtp(Some(AT_ONCE), false).await;
        let mut config = local_config(port);
        config.connections = AT_ONCE;
        let adapter = EmailAdapter::new(config).unwrap();
        for wave in 0..2 {
            let sends = (0..AT_ONCE).map(|i| {
                let adapter = adapter.clone();
                tokio::spawn(async move { adapter.send(&numbered(wave * AT_ONCE + i)).await })
            });
            for out in futures_util::future::join_all(sends).await {
                let out = out.unwrap();
                assert!(matches!(out, Outcome::Delivered { .. }), "{out:?}");
            }
        }
        assert_eq!(seen.lock().unwrap().connections, AT_ONCE);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_replaced_within_the_send() {
        let (port, seen) = scripted_smtp(None, true).await;
        let adapter = EmailAdapter::new(local_config(port)).unwrap();
        for i in 0..2 {
            let out = adapter.send(&numbered(i)).await;
            assert!(
                matches!(out, Outcome::Delivered { .. }),
                "send {i}: {out:?}"
            );
        }
        assert_eq!(seen.lock().unwrap().connections, 2);
    }

    #[tokio::test]
    async fn connections_are_opened_without_nagle_delay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tcp = open_tcp("127.0.0.1", port).await.unwrap();
        assert!(tcp.nodelay().unwrap(), "TCP_NODELAY must be set");
    }

    #[tokio::test]
    async fn smtp_connection_refused_retries() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let out = EmailAdapter::new(local_config(port))
            .unwrap()
            .send(&mail(None, None, "s"))
            .await;
        assert!(matches!(out, Outcome::Retry { .. }), "{out:?}");
    }

    #[tokio::test]
    async fn smtp_silent_server_times_out() {
        // Accepts the TCP connection but never sends the greeting.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((sock, _)) = listener.accept().await {
                held.push(sock);
            }
        });
        let mut c = local_config(port);
        c.timeout = Duration::from_millis(200);
        let out = EmailAdapter::new(c)
            .unwrap()
            .send(&mail(None, None, "s"))
            .await;
        assert_eq!(out, Outcome::retry("timed out"));
    }
}
