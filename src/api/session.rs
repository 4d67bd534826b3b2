//! Browser sessions, CSRF protection and the client's address behind trusted proxies.
//!
//! A session is an opaque random id (256 bits, 64 hex digits) in the `crier_session` cookie
//! (`HttpOnly; SameSite=Strict; Path=/`, plus `Secure` when `public_url` is https). The store
//! keeps only its SHA-256 ([`crate::store::sessions`]). A session ends when it has been idle for
//! `auth.session_idle` (default 30 minutes) or is `auth.session_absolute` old (default 12
//! hours), at logout, and when its user is disabled, removed, given a new password or a new
//! role.
//!
//! Every cookie-authenticated write must pass two CSRF checks (bearer-token requests are
//! exempt: a browser never adds a bearer token by itself):
//! - **origin**: `Sec-Fetch-Site`, when sent, is `same-origin` or `none`, and `Origin`, when
//!   sent, is the `public_url`'s origin or this server's own (`http(s)://` + `Host`);
//! - **synchroniser token**: the session's CSRF token — HMAC-SHA-256 of the session id, so it
//!   is stored nowhere and reveals nothing of the id — in the `X-CSRF-Token` header or, for an
//!   HTML form, the `csrf` field of an `application/x-www-form-urlencoded` body.
//!
//! A refused write writes nothing but a `csrf.refused` audit entry.
//!
//! The client's address (audit log, login throttle) is the TCP peer, unless the peer is one of
//! `auth.trusted_proxies`: then it is the rightmost address of `X-Forwarded-For` that is not a
//! trusted proxy.

use super::authz::Caller;
use super::ApiError;
use super::AppState;
use crate::credentials::token_hash;
use crate::domain::Session;
use crate::domain::{HttpUrl, Role, Span};
use crate::store::port::{Sessions, Users};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use ulid::Ulid;

/// The session cookie's name.
pub const COOKIE: &str = "crier_session";
/// The CSRF token's header.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The CSRF token's form field.
pub const CSRF_FIELD: &str = "csrf";
/// The largest form body the CSRF check reads to find the `csrf` field.
pub const FORM_MAX_BYTES: usize = 64 * 1024;
/// The one console form that carries a whole file (the CSV import): its body may be larger,
/// see [`import_form_max`].
pub const IMPORT_FORM: &str = "/console/subscribers/import";

/// The largest body of [`IMPORT_FORM`]: a CSV file of `import_max_bytes` percent-encoded (at
/// most three bytes per byte) and the form's other fields. The handler checks the file itself
/// against `import_max_bytes`.
pub fn import_form_max(import_max_bytes: usize) -> usize {
    import_max_bytes
        .saturating_mul(3)
        .saturating_add(FORM_MAX_BYTES)
}
/// How often, at most, a session's last-seen time is written.
pub const TOUCH_EVERY: chrono::Duration = chrono::Duration::seconds(60);

/// Time for sessions and TOTP: the server's one clock (the dispatcher's, see
/// [`crate::dispatch::Clock`]) plus an offset tests can advance without waiting.
#[derive(Debug, Clone, Default)]
pub struct AuthClock {
    base: crate::dispatch::Clock,
    offset_ms: Arc<AtomicI64>,
}

impl AuthClock {
    /// A clock that reads `start` now (see `Config::clock_start`).
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        AuthClock::on(crate::dispatch::Clock::starting_at(start))
    }

    /// The server's one clock (see [`crate::dispatch::Clock`]), with an offset of zero.
    pub fn on(base: crate::dispatch::Clock) -> Self {
        AuthClock {
            base,
            offset_ms: Arc::default(),
        }
    }

    /// This clock read from `base` (the server's one clock), keeping its offset: clones made
    /// before (a test's handle) still advance it.
    pub fn rebased(&self, base: crate::dispatch::Clock) -> Self {
        AuthClock {
            base,
            offset_ms: self.offset_ms.clone(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.base.now() + chrono::Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone of it) forward: for tests.
    pub fn advance(&self, by: Duration) {
        self.offset_ms
            .fetch_add(by.as_millis() as i64, Ordering::Relaxed);
    }
}

/// An IP network, `10.0.0.0/8` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let bad = || {
            format!(
                "\"{s}\" is not an address or network; use e.g. 10.0.0.0/8, 192.0.2.7 or fd00::/8"
            )
        };
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 peer may arrive as an IPv4-mapped IPv6 address on a dual-stack socket.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The `[auth]` table of crier.toml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFile {
    pub session_idle: Option<String>,
    pub session_absolute: Option<String>,
    pub require_totp: Option<Vec<String>>,
    pub trusted_proxies: Option<Vec<String>>,
}

/// Sessions, second factors and proxies, validated.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub session_idle: chrono::Duration,
    pub session_absolute: chrono::Duration,
    /// Roles whose users must have a TOTP second factor to sign in.
    pub require_totp: Vec<Role>,
    pub trusted_proxies: Vec<Cidr>,
    /// The `public_url`'s origin (`https://status.example.com`), if configured.
    pub public_origin: Option<String>,
    /// `Secure` on the cookie: the public URL is https.
    pub secure_cookie: bool,
    /// The issuer authenticator apps show (the organisation's name).
    pub issuer: String,
    /// Not settable from the file: tests advance it.
    pub clock: AuthClock,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            session_idle: chrono::Duration::minutes(30),
            session_absolute: chrono::Duration::hours(12),
            require_totp: Vec::new(),
            trusted_proxies: Vec::new(),
            public_origin: None,
            secure_cookie: false,
            issuer: "crier".into(),
            clock: AuthClock::default(),
        }
    }
}

impl AuthSettings {
    /// From the file's `[auth]` table and the already-validated `public_url` and `org_name`.
    pub fn from_file(
        f: Option<AuthFile>,
        public_url: Option<&str>,
        org_name: &str,
    ) -> Result<Self, String> {
        let f = f.unwrap_or_default();
        let mut s = AuthSettings::default();
        let span = |key: &str, v: &str| {
            Span::parse_in(v, Span::from_secs(60), Span::MAX)
                .map(|d| d.as_chrono())
                .map_err(|e| format!("auth.{key}: {e}"))
        };
        if let Some(v) = &f.session_idle {
            s.session_idle = span("session_idle", v)?;
        }
        if let Some(v) = &f.session_absolute {
            s.session_absolute = span("session_absolute", v)?;
        }
        if s.session_idle > s.session_absolute {
            return Err(
                "auth.session_idle is longer than auth.session_absolute; the idle limit must be the shorter (e.g. 30m and 12h)"
                    .into(),
            );
        }
        for r in f.require_totp.unwrap_or_default() {
            let role = Role::parse(&r).map_err(|e| format!("auth.require_totp: {e}"))?;
            if !s.require_totp.contains(&role) {
                s.require_totp.push(role);
            }
        }
        for p in f.trusted_proxies.unwrap_or_default() {
            s.trusted_proxies
                .push(Cidr::parse(&p).map_err(|e| format!("auth.trusted_proxies: {e}"))?);
        }
        s.site(public_url, org_name);
        Ok(s)
    }

    /// Takes the cookie's `Secure`, the allowed origin and the TOTP issuer from the public URL
    /// and the organisation's name.
    pub fn site(&mut self, public_url: Option<&str>, org_name: &str) {
        // `public_url` was validated by the configuration; a text that is not an HttpUrl
        // (only possible from a test) sets neither.
        if let Some(url) = public_url.and_then(|u| HttpUrl::parse(u).ok()) {
            self.secure_cookie |= url.is_https();
            self.public_origin = Some(url.origin());
        }
        self.issuer = org_name.to_owned();
    }

    /// Whether a user of `role` must have a second factor.
    pub fn totp_required(&self, role: Role) -> bool {
        self.require_totp.contains(&role)
    }
}

/// The client's address: the peer, or — when the peer is a trusted proxy — the rightmost
/// `X-Forwarded-For` hop that is not one. Hops left of an untrusted one are the client's own
/// claims and ignored; a malformed hop ends the walk at the last trusted address.
pub fn client_addr(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[Cidr]) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            break;
        };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    Some(client)
}

/// The session id in the request's cookies, if one is well-formed.
pub fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim().trim_matches('"'))
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The CSRF token of a session id.
pub fn csrf_token(secret: &str) -> String {
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(b"crier csrf token v1");
    hex::encode(mac.finalize().into_bytes())
}

/// The session a request was authenticated by (in the request's extensions).
#[derive(Debug, Clone)]
pub struct SessionAuth {
    pub hash: [u8; 32],
    pub session: Session,
    /// The session's CSRF token (derived from its id, which is not kept).
    pub csrf: String,
}

impl SessionAuth {
    /// When the session ends if unused, and at the latest.
    pub fn expiry(&self, s: &AuthSettings) -> (DateTime<Utc>, DateTime<Utc>) {
        let absolute = self.session.created_at + s.session_absolute;
        let idle = (self.session.last_seen_at + s.session_idle).min(absolute);
        (idle, absolute)
    }
}

/// The routes a session that must first enrol a second factor may use.
pub const ENROL_ONLY_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/session"),
    ("GET", "/api/v1/me"),
    ("POST", "/api/v1/me/totp"),
    ("POST", "/api/v1/me/totp/confirm"),
    ("POST", "/api/v1/logout"),
    // The console's enrolment page and its forms, and signing out.
    ("GET", "/console/account"),
    ("POST", "/console/account/totp"),
    ("POST", "/console/account/totp/confirm"),
    ("POST", "/console/logout"),
];

/// The caller a session cookie stands for, if the session is live now.
pub async fn authenticate(
    state: &AppState,
    secret: &str,
) -> Result<Option<(Caller, SessionAuth)>, ApiError> {
    let settings = &state.team.auth;
    let hash = token_hash(secret);
    let Some(session) = state.store.session(&hash).await? else {
        return Ok(None);
    };
    let now = settings.clock.now();
    let auth = SessionAuth {
        hash,
        csrf: csrf_token(secret),
        session,
    };
    let (idle, absolute) = auth.expiry(settings);
    if now >= idle || now >= absolute {
        return Ok(None);
    }
    let s = &auth.session;
    let Some(user) = state.store.user(&s.user).await? else {
        return Ok(None);
    };
    // Disabling a user or changing their role ends their sessions; this refuses one that
    // outlived that (a failed write) all the same.
    if user.disabled || user.role != s.role {
        return Ok(None);
    }
    Ok(Some((
        Caller {
            actor: user.name.to_string(),
            role: s.role,
            user: Some(user.name),
            token: None,
            session: Some(s.id),
        },
        auth,
    )))
}

/// Records the session's use (at most once a minute; see [`TOUCH_EVERY`]).
pub async fn touch(state: &AppState, auth: &SessionAuth) {
    let now = state.team.auth.clock.now();
    if now - auth.session.last_seen_at < TOUCH_EVERY {
        return;
    }
    if let Err(e) = state.store.touch_session(&auth.hash, now).await {
        tracing::warn!(error = %e, "could not record a session's use");
    }
}

/// The answer to a request whose session cookie is not (or no longer) valid.
pub fn session_unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "your session has ended (signed out, expired, or your account changed); sign in again",
    )
}

/// The `Sec-Fetch-Site` / `Origin` check (see the module docs); `Err` says why not.
pub fn same_origin(state: &AppState, headers: &HeaderMap) -> Result<(), String> {
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or_default();
        if !matches!(site, "same-origin" | "none") {
            return Err(format!(
                "the request came from another site (Sec-Fetch-Site: {site})"
            ));
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default().to_ascii_lowercase();
    let own = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.to_ascii_lowercase());
    let ok = state.team.auth.public_origin.as_deref() == Some(origin.as_str())
        || own
            .as_deref()
            .is_some_and(|h| origin == format!("http://{h}") || origin == format!("https://{h}"));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the request came from another origin ({})",
            if origin.len() > 100 { "…" } else { &origin }
        ))
    }
}

/// Checks a cookie-authenticated write (see the module docs); returns the request (its body,
/// at most `form_max` bytes, read and put back when the token was in a form) or why it is
/// refused.
pub async fn check_csrf(
    state: &AppState,
    req: Request,
    auth: &SessionAuth,
    form_max: usize,
) -> Result<Request, (String, Option<ApiError>)> {
    same_origin(state, req.headers()).map_err(|why| (why, None))?;
    let want = auth.csrf.as_bytes();
    if let Some(v) = req.headers().get(CSRF_HEADER) {
        return if crate::token::constant_time_eq(v.as_bytes(), want) {
            Ok(req)
        } else {
            Err((
                "the X-CSRF-Token header is not this session's token".into(),
                None,
            ))
        };
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err((
            "no CSRF token: send the session's token (from the login answer or GET /api/v1/session) in the X-CSRF-Token header or the form field csrf".into(),
            None,
        ));
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, form_max).await.map_err(|_| {
        (
            "the form is too large to check".to_owned(),
            Some(super::extract::too_large()),
        )
    })?;
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
        .map_err(|_| ("the form cannot be read".to_owned(), None))?;
    let found = fields
        .iter()
        .find(|(k, _)| k == CSRF_FIELD)
        .is_some_and(|(_, v)| crate::token::constant_time_eq(v.as_bytes(), want));
    if !found {
        return Err((
            "the form's csrf field is missing or not this session's token".into(),
            None,
        ));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// A new session id and the hash it is stored under.
pub fn new_secret() -> Result<(String, [u8; 32]), crate::token::TokenError> {
    let secret = crate::token::random_hex(32)?;
    let hash = token_hash(&secret);
    Ok((secret, hash))
}

/// The `Set-Cookie` value that sets a session id.
pub fn set_cookie(settings: &AuthSettings, secret: &str) -> Option<HeaderValue> {
    let max_age = settings.session_absolute.num_seconds();
    let secure = if settings.secure_cookie {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{COOKIE}={secret}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"
    ))
    .ok()
}

/// The `Set-Cookie` value that clears the session cookie.
pub fn clear_cookie(settings: &AuthSettings) -> HeaderValue {
    if settings.secure_cookie {
        HeaderValue::from_static(
            "crier_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0; Secure",
        )
    } else {
        HeaderValue::from_static("crier_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
    }
}

/// A new session's record.
pub fn new_session(user: &crate::domain::User, now: DateTime<Utc>, enrol_only: bool) -> Session {
    Session {
        id: Ulid::new(),
        user: user.name.clone(),
        role: user.role,
        created_at: now,
        last_seen_at: now,
        enrol_only,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_contain_their_addresses() {
        let n = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        let one = Cidr::parse("192.0.2.7").unwrap();
        assert!(one.contains("192.0.2.7".parse().unwrap()));
        assert!(!one.contains("192.0.2.8".parse().unwrap()));
        assert!(Cidr::parse("fd00::/8")
            .unwrap()
            .contains("fd12::1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "ten", "10.0.0.0/", "::/129"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop_and_only_behind_a_trusted_peer() {
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.9, 10.0.0.2"),
        );
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        // Behind the proxy: the spoofed leftmost hop is ignored.
        assert_eq!(client_addr(ip("10.0.0.1"), &h, &trusted), ip("203.0.113.9"));
        // From an untrusted peer the header is ignored altogether.
        assert_eq!(
            client_addr(ip("198.51.100.1"), &h, &trusted),
            ip("198.51.100.1")
        );
        // No header: the proxy itself.
        assert_eq!(
            client_addr(ip("10.0.0.1"), &HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
        // A malformed hop ends the walk at the last trusted address.
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("garbage, 10.0.0.3"),
        );
        assert_eq!(client_addr(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.3"));
    }

    #[test]
    fn cookies_are_found_and_checked() {
        let id = "a".repeat(64);
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("x=1; {COOKIE}={id}; y=2")).unwrap(),
        );
        assert_eq!(cookie(&h), Some(id.as_str()));
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("crier_session=short"),
        );
        assert_eq!(cookie(&h), None);
        let t = csrf_token(&id);
        assert_eq!(t.len(), 64);
        assert_ne!(t, csrf_token(&"b".repeat(64)));
        assert!(!t.contains(&id));
    }

    #[test]
    fn settings_are_validated() {
        let f = AuthFile {
            session_idle: Some("10m".into()),
            session_absolute: Some("8h".into()),
            require_totp: Some(vec!["Publisher".into(), "admin".into()]),
            trusted_proxies: Some(vec!["10.0.0.0/8".into()]),
        };
        let s =
            AuthSettings::from_file(Some(f), Some("https://Status.Example.com/x"), "Acme").unwrap();
        assert!(s.secure_cookie);
        assert_eq!(
            s.public_origin.as_deref(),
            Some("https://status.example.com")
        );
        assert!(s.totp_required(Role::Admin) && !s.totp_required(Role::Responder));
        for bad in [
            AuthFile {
                session_idle: Some("13h".into()),
                ..Default::default()
            },
            AuthFile {
                require_totp: Some(vec!["root".into()]),
                ..Default::default()
            },
            AuthFile {
                trusted_proxies: Some(vec!["10.0.0.0/99".into()]),
                ..Default::default()
            },
            AuthFile {
                session_idle: Some("10s".into()),
                ..Default::default()
            },
        ] {
            assert!(AuthSettings::from_file(Some(bad), None, "x").is_err());
        }
    }
}
