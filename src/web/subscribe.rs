//! Self-service sign-up: `/subscribe` (an email address or a phone number, the components, the
//! language), confirmed by double opt-in — a single-use link by email (valid 24 h by default),
//! or a six-digit code by SMS (three attempts) — before anything else is sent.
//!
//! Abuse: sign-ups per client address and confirmations per destination are limited
//! (`[subscriptions]` in crier.toml; Statuspage allows 10 SMS sign-ups per client address per
//! 4 h), a honeypot field drops robots silently, and the answer is the same page, byte for byte,
//! whether the address was unknown, pending or already subscribed, so the form tells nobody who
//! is subscribed. The forms carry no cookie and so no CSRF token: a cross-site POST is refused by
//! its `Sec-Fetch-Site` (or, from browsers without it, its `Origin`), see [`same_origin`].

use super::page::{render, PageLang};
use crate::adapters::{OutMessage, Recipient};
use crate::api::AppState;
use crate::channels::{Kind, Rate, Reach};
use crate::domain::{CodeCheck, Secret, SignUp};
use crate::domain::{ComponentName, Contact, Locale};
use crate::render::TemplateKind;
use crate::store::port::{Components, SignUps};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use minijinja::{context, Value};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// The largest sign-up form accepted (an address, a few dozen component names).
const FORM_MAX_BYTES: usize = 64 * 1024;

/// `[subscriptions]` in crier.toml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionsFile {
    /// The channel confirmation emails go through (default: the first email channel by name).
    pub email_channel: Option<String>,
    /// The channel confirmation codes go through (default: the first Twilio, then Vonage one).
    pub sms_channel: Option<String>,
    /// How long the email link works (default 24h).
    pub link_valid: Option<String>,
    /// How long the SMS code works (default 15m).
    pub code_valid: Option<String>,
    /// Sign-ups per client address (default "10/4h").
    pub per_client: Option<String>,
    /// Confirmation messages per email address or phone number (default "3/24h").
    pub per_destination: Option<String>,
    /// Unconfirmed sign-ups are deleted this long after they were made (default 7d).
    pub purge_after: Option<String>,
}

/// The validated `[subscriptions]` settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub email_channel: Option<String>,
    pub sms_channel: Option<String>,
    pub link_valid: Duration,
    pub code_valid: Duration,
    pub per_client: Rate,
    pub per_destination: Rate,
    pub purge_after: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            email_channel: None,
            sms_channel: None,
            link_valid: Duration::from_secs(24 * 3600),
            code_valid: Duration::from_secs(15 * 60),
            per_client: Rate {
                n: 10,
                per: Duration::from_secs(4 * 3600),
            },
            per_destination: Rate {
                n: 3,
                per: Duration::from_secs(24 * 3600),
            },
            purge_after: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl Settings {
    /// Validates the file's section; each error names its key.
    pub fn from_file(f: Option<SubscriptionsFile>) -> Result<Settings, String> {
        let mut s = Settings::default();
        let Some(f) = f else { return Ok(s) };
        let span = |key: &str, v: &str| {
            crate::domain::Span::parse_in(
                v,
                crate::domain::Span::from_millis(60_000),
                crate::domain::Span::MAX,
            )
            .map(|d| d.as_std())
            .map_err(|e| format!("subscriptions.{key}: {e}"))
        };
        let rate =
            |key: &str, v: &str| Rate::parse(v).map_err(|e| format!("subscriptions.{key}: {e}"));
        s.email_channel = f.email_channel;
        s.sms_channel = f.sms_channel;
        if let Some(v) = f.link_valid {
            s.link_valid = span("link_valid", &v)?;
        }
        if let Some(v) = f.code_valid {
            s.code_valid = span("code_valid", &v)?;
        }
        if let Some(v) = f.purge_after {
            s.purge_after = span("purge_after", &v)?;
        }
        if let Some(v) = f.per_client {
            s.per_client = rate("per_client", &v)?;
        }
        if let Some(v) = f.per_destination {
            s.per_destination = rate("per_destination", &v)?;
        }
        Ok(s)
    }
}

/// Sliding-window counters kept in memory (a restart forgets them, which only ever lets a
/// little more through). Bounded: expired keys are dropped once the map grows.
#[derive(Debug, Default)]
pub struct Limiter {
    hits: HashMap<String, VecDeque<Instant>>,
}

/// Keys kept before the expired ones are swept.
const LIMITER_SWEEP: usize = 10_000;

impl Limiter {
    /// Counts one use of `key` if `rate` allows it now.
    pub fn allow(&mut self, key: &str, rate: Rate, now: Instant) -> bool {
        if self.hits.len() >= LIMITER_SWEEP {
            self.hits.retain(|_, q| {
                q.back()
                    .is_some_and(|t| now.saturating_duration_since(*t) < rate.per)
            });
        }
        let q = self.hits.entry(key.to_owned()).or_default();
        while q
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= rate.per)
        {
            q.pop_front();
        }
        if q.len() >= rate.n as usize {
            return false;
        }
        q.push_back(now);
        true
    }
}

/// The sign-up state shared by the pages: settings and limits.
#[derive(Debug, Default)]
pub struct Subscriptions {
    pub settings: Settings,
    /// The confirmation links' base (`public_url`, else `http://<bind>`).
    pub base_url: String,
    clients: Mutex<Limiter>,
    destinations: Mutex<Limiter>,
}

impl Subscriptions {
    pub fn new(settings: Settings, base_url: String) -> Self {
        Subscriptions {
            settings,
            base_url,
            ..Default::default()
        }
    }

    fn allow(which: &Mutex<Limiter>, key: &str, rate: Rate) -> bool {
        which
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .allow(key, rate, Instant::now())
    }
}

/// Refuses a POST another site made a browser send: `Sec-Fetch-Site` must be `same-origin` or
/// `none` (typed by the user), and without it an `Origin` must name this server (the `Host` the
/// request came to, or `public_url`). A request with neither header is not from a browser that
/// would carry anyone's ambient credentials (and these forms use none), so it passes.
pub fn same_origin(headers: &HeaderMap, public: &str) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    origin == public.trim_end_matches('/')
        || origin
            .split_once("://")
            .is_some_and(|(_, h)| !host.is_empty() && h == host)
}

/// A form body as (name, value) pairs; repeated names (component checkboxes) stay separate.
pub fn form(body: &[u8]) -> Vec<(String, String)> {
    std::str::from_utf8(body)
        .ok()
        .and_then(|s| crate::percent::decode_form(s).ok())
        .unwrap_or_default()
}

/// The first value of `name`.
pub fn field<'a>(f: &'a [(String, String)], name: &str) -> &'a str {
    f.iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// A component checkbox on a form.
#[derive(Serialize)]
pub struct ComponentChoice {
    pub name: String,
    pub checked: bool,
}

/// The components to choose from, ticked where `chosen` names them.
pub async fn choices(state: &AppState, chosen: &[String]) -> Vec<ComponentChoice> {
    state
        .store
        .components()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|c| ComponentChoice {
            checked: chosen.iter().any(|x| x == c.name.as_str()),
            name: c.name.to_string(),
        })
        .collect()
}

/// The components picked on a form (unknown names are ignored: the form only offers known ones).
pub async fn picked(state: &AppState, f: &[(String, String)]) -> Vec<ComponentName> {
    let known = state.store.components().await.unwrap_or_default();
    f.iter()
        .filter(|(k, _)| k == "component")
        .filter_map(|(_, v)| known.iter().find(|c| c.name.as_str() == v))
        .map(|c| c.name.clone())
        .collect()
}

/// The language picked on a form, else the page's.
pub fn chosen_language(f: &[(String, String)], page: PageLang) -> &'static str {
    super::lang::LANGUAGES
        .iter()
        .map(|(c, _)| *c)
        .find(|c| *c == field(f, "language"))
        .unwrap_or(page.0)
}

/// Marks a page that must not be cached or leak its URL (it carries a secret or a result).
pub fn private(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

fn word(lang: PageLang, key: &str) -> String {
    super::lang::words(lang.0)
        .get(key)
        .cloned()
        .unwrap_or_else(|| key.to_owned())
}

/// The sign-up form, with what was typed and an error on a field if any.
async fn form_page(
    state: &AppState,
    lang: PageLang,
    status: StatusCode,
    address: &str,
    language: &str,
    chosen: &[String],
    error: Option<String>,
) -> Response {
    let mut res = render(
        state,
        lang,
        "subscribe.html",
        context! {
            address => address,
            language => language,
            components => choices(state, chosen).await,
            error => error,
        },
    );
    *res.status_mut() = status;
    private(res)
}

/// A page with a heading and a message (the answers after a POST).
pub fn message_page(
    state: &AppState,
    lang: PageLang,
    status: StatusCode,
    heading: &str,
    text: &str,
    manage: Option<String>,
) -> Response {
    let mut res = render(
        state,
        lang,
        "subscribe_message.html",
        context! { heading => word(lang, heading), text => word(lang, text), manage => manage },
    );
    *res.status_mut() = status;
    private(res)
}

/// `GET /subscribe`.
pub async fn show(State(state): State<AppState>, lang: PageLang) -> Response {
    form_page(&state, lang, StatusCode::OK, "", lang.0, &[], None).await
}

/// The answer to every accepted sign-up, whatever happened to the address (byte-identical).
fn accepted(state: &AppState, lang: PageLang, contact: &Contact) -> Response {
    match contact {
        Contact::Email(_) => message_page(
            state,
            lang,
            StatusCode::OK,
            "check_inbox_h",
            "check_inbox",
            None,
        ),
        Contact::Phone(p) => code_page(state, lang, StatusCode::OK, p.as_str(), None),
    }
}

/// The SMS code form for `phone`.
fn code_page(
    state: &AppState,
    lang: PageLang,
    status: StatusCode,
    phone: &str,
    error: Option<String>,
) -> Response {
    let mut res = render(
        state,
        lang,
        "subscribe_code.html",
        context! { phone => phone, error => error },
    );
    *res.status_mut() = status;
    private(res)
}

/// `POST /subscribe`.
pub async fn submit(
    State(state): State<AppState>,
    lang: PageLang,
    req: axum::extract::Request,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let headers = req.headers().clone();
    let Ok(body) = axum::body::to_bytes(req.into_body(), FORM_MAX_BYTES).await else {
        return message_page(
            &state,
            lang,
            StatusCode::PAYLOAD_TOO_LARGE,
            "refused_h",
            "try_later",
            None,
        );
    };
    let subs = &state.subscriptions;
    if !same_origin(&headers, &subs.base_url) {
        return message_page(
            &state,
            lang,
            StatusCode::FORBIDDEN,
            "refused_h",
            "cross_site",
            None,
        );
    }
    let f = form(&body);
    let address = field(&f, "address").trim().to_owned();
    let language = chosen_language(&f, lang);
    let chosen: Vec<String> = picked(&state, &f)
        .await
        .iter()
        .map(|c| c.to_string())
        .collect();
    let again = |status, error: String| {
        form_page(
            &state,
            lang,
            status,
            &address,
            language,
            &chosen,
            Some(error),
        )
    };
    let contact = match Contact::parse_any(&address) {
        Ok(c) if !address.is_empty() => c,
        _ => {
            let key = if address.contains('@') {
                "bad_email"
            } else {
                "bad_address"
            };
            return again(StatusCode::UNPROCESSABLE_ENTITY, word(lang, key)).await;
        }
    };
    let (kind, channel) = match &contact {
        Contact::Email(_) => (TemplateKind::Email, confirmation_channel(&state, true)),
        Contact::Phone(_) => (TemplateKind::Sms, confirmation_channel(&state, false)),
    };
    let Some(channel) = channel else {
        let key = if kind == TemplateKind::Email {
            "no_email_channel"
        } else {
            "no_sms_channel"
        };
        return again(StatusCode::UNPROCESSABLE_ENTITY, word(lang, key)).await;
    };
    // The honeypot: a field people never see. A robot that fills it gets the same answer as
    // everyone and nothing happens.
    if !field(&f, "website").is_empty() {
        return accepted(&state, lang, &contact);
    }
    let client = peer.unwrap_or_else(|| IpAddr::from([0, 0, 0, 0]));
    if !Subscriptions::allow(&subs.clients, &client.to_string(), subs.settings.per_client) {
        return again(StatusCode::TOO_MANY_REQUESTS, word(lang, "too_many")).await;
    }
    // Beyond the per-destination limit nothing is written or sent, and the answer is the same.
    if !Subscriptions::allow(
        &subs.destinations,
        contact.address(),
        subs.settings.per_destination,
    ) {
        return accepted(&state, lang, &contact);
    }
    let locale = super::lang::locale(language);
    let secret = match new_secret(kind) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "no randomness for a sign-up");
            return again(StatusCode::SERVICE_UNAVAILABLE, word(lang, "try_later")).await;
        }
    };
    let valid = if kind == TemplateKind::Email {
        subs.settings.link_valid
    } else {
        subs.settings.code_valid
    };
    let now = state.dispatcher.now();
    let components = picked(&state, &f).await;
    let outcome = state
        .store
        .sign_up(
            contact.clone(),
            locale.clone(),
            components,
            &secret,
            chrono::Duration::from_std(valid).unwrap_or(chrono::Duration::hours(24)),
            now,
        )
        .await;
    match outcome {
        Ok(SignUp::Created(s) | SignUp::Renewed(s)) => {
            let ctx = match &secret {
                Secret::Link(t) => context! {
                    org => state.render.org_name.clone(),
                    link => format!("{}/subscribe/confirm/{}.{t}", subs.base_url, s.id),
                    hours => valid.as_secs() / 3600,
                },
                Secret::Code(c) => context! {
                    org => state.render.org_name.clone(),
                    code => c,
                    minutes => valid.as_secs() / 60,
                },
            };
            // Sent after answering: the answer must not take longer for a new address.
            let st = state.clone();
            tokio::spawn(async move {
                send_confirmation(&st, &channel, kind, &s.contact, &s.locale, &ctx).await;
            });
            accepted(&state, lang, &contact)
        }
        Ok(SignUp::AlreadyConfirmed) => accepted(&state, lang, &contact),
        Err(e) => {
            tracing::error!(error = %e, "a sign-up could not be stored");
            again(StatusCode::SERVICE_UNAVAILABLE, word(lang, "try_later")).await
        }
    }
}

/// A fresh link secret or six-digit code.
fn new_secret(kind: TemplateKind) -> Result<Secret, crate::token::TokenError> {
    let hex = crate::token::random_hex(16)?;
    Ok(if kind == TemplateKind::Email {
        Secret::Link(hex)
    } else {
        // 64 random bits reduced to six digits: the bias (< 10^-13) is nothing.
        let n = u64::from_str_radix(&hex[..16], 16).unwrap_or(0) % 1_000_000;
        Secret::Code(format!("{n:06}"))
    })
}

/// The channel confirmations go through: the configured one, else the first active channel (by
/// name) of the kind: email for email, Twilio then Vonage for SMS.
fn confirmation_channel(state: &AppState, email: bool) -> Option<String> {
    let s = &state.subscriptions.settings;
    let configured = if email {
        &s.email_channel
    } else {
        &s.sms_channel
    };
    if let Some(name) = configured {
        return state.dispatcher.channel(name).map(|c| c.name);
    }
    // The kinds that reach exactly this contact, in registration order (Twilio before Vonage).
    let reach = if email { Reach::Email } else { Reach::Phone };
    crate::adapters::KINDS
        .iter()
        .filter(|k| k.reach == reach)
        .find_map(|k| state.dispatcher.first_channel_of(Kind::new(k)))
}

/// Renders and sends a confirmation; failures are logged (the person can sign up again).
async fn send_confirmation(
    state: &AppState,
    channel: &str,
    kind: TemplateKind,
    contact: &Contact,
    locale: &Locale,
    ctx: &Value,
) {
    let rendered = match state.templates.subscribe_confirm(kind, locale, ctx) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "the sign-up confirmation could not be rendered");
            return;
        }
    };
    let recipient = match contact {
        Contact::Email(a) => Recipient::Email(a.clone()),
        Contact::Phone(p) => Recipient::Phone(p.to_string()),
    };
    let msg = OutMessage {
        idempotency_key: crate::domain::signup::hash_hex(&[ctx.to_string().as_bytes()]),
        recipient,
        locale: rendered.locale.to_string(),
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
        unsubscribe_url: None,
        document: None,
        thread: None,
    };
    match state.dispatcher.send_direct(channel, &msg).await {
        Some(crate::adapters::Outcome::Delivered { .. }) => {
            tracing::info!(channel, "sign-up confirmation sent");
        }
        Some(o) => tracing::warn!(
            channel,
            reason = o.reason(),
            "sign-up confirmation not sent"
        ),
        None => tracing::warn!(channel, "sign-up confirmation channel is not active"),
    }
}

/// `GET /subscribe/confirm/{token}`: a button that confirms. The GET itself changes nothing, so
/// a mail scanner that follows links confirms nobody.
pub async fn confirm_page(
    State(state): State<AppState>,
    lang: PageLang,
    Path(token): Path<String>,
) -> Response {
    let mut res = render(
        &state,
        lang,
        "subscribe_confirm.html",
        context! { token => token },
    );
    *res.status_mut() = StatusCode::OK;
    private(res)
}

/// `POST /subscribe/confirm/{token}`.
pub async fn confirm(
    State(state): State<AppState>,
    lang: PageLang,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !same_origin(&headers, &state.subscriptions.base_url) {
        return message_page(
            &state,
            lang,
            StatusCode::FORBIDDEN,
            "refused_h",
            "cross_site",
            None,
        );
    }
    match state
        .store
        .confirm_link(&token, state.dispatcher.now())
        .await
    {
        Ok(Some(s)) => confirmed(&state, lang, &s.unsubscribe_token),
        Ok(None) => message_page(
            &state,
            lang,
            StatusCode::NOT_FOUND,
            "link_dead_h",
            "link_dead",
            None,
        ),
        Err(e) => {
            tracing::error!(error = %e, "a confirmation could not be stored");
            message_page(
                &state,
                lang,
                StatusCode::SERVICE_UNAVAILABLE,
                "refused_h",
                "try_later",
                None,
            )
        }
    }
}

fn confirmed(state: &AppState, lang: PageLang, token: &str) -> Response {
    message_page(
        state,
        lang,
        StatusCode::OK,
        "confirmed_h",
        "confirmed",
        Some(token.to_owned()),
    )
}

/// `POST /subscribe/code`: the SMS code.
pub async fn code(
    State(state): State<AppState>,
    lang: PageLang,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !same_origin(&headers, &state.subscriptions.base_url) {
        return message_page(
            &state,
            lang,
            StatusCode::FORBIDDEN,
            "refused_h",
            "cross_site",
            None,
        );
    }
    let f = form(&body);
    let phone_text = field(&f, "phone");
    let code = field(&f, "code").trim();
    let Ok(phone) = Contact::phone(phone_text) else {
        return message_page(
            &state,
            lang,
            StatusCode::NOT_FOUND,
            "code_dead_h",
            "code_dead",
            None,
        );
    };
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return code_page(
            &state,
            lang,
            StatusCode::UNPROCESSABLE_ENTITY,
            phone.address(),
            Some(word(lang, "code_format")),
        );
    }
    match state
        .store
        .confirm_code(&phone, code, state.dispatcher.now())
        .await
    {
        Ok(CodeCheck::Confirmed(s)) => confirmed(&state, lang, &s.unsubscribe_token),
        Ok(CodeCheck::Wrong(left)) => code_page(
            &state,
            lang,
            StatusCode::UNPROCESSABLE_ENTITY,
            phone.address(),
            Some(word(lang, "code_wrong").replace("{n}", &left.to_string())),
        ),
        Ok(CodeCheck::Dead) => message_page(
            &state,
            lang,
            StatusCode::NOT_FOUND,
            "code_dead_h",
            "code_dead",
            None,
        ),
        Err(e) => {
            tracing::error!(error = %e, "a code check could not be stored");
            message_page(
                &state,
                lang,
                StatusCode::SERVICE_UNAVAILABLE,
                "refused_h",
                "try_later",
                None,
            )
        }
    }
}

/// Deletes unconfirmed sign-ups older than `purge_after`, hourly, until shutdown.
pub async fn purge_loop(
    store: crate::store::Store,
    dispatcher: crate::dispatch::Dispatcher,
    after: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
    lead: crate::leadership::Leadership,
) {
    let every = Duration::from_secs(3600).min(after);
    loop {
        // One node purges (the others would find nothing left, but need not look).
        if !lead.is_leader() {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1).min(every)) => continue,
                _ = stop.changed() => return,
            }
        }
        let cutoff = dispatcher.now()
            - chrono::Duration::from_std(after).unwrap_or(chrono::Duration::days(7));
        match store.purge_unconfirmed(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "purged sign-ups that were never confirmed"),
            Err(e) => {
                tracing::warn!(error = %e, "purging unconfirmed sign-ups failed; trying again later")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_counts_in_a_sliding_window() {
        let mut l = Limiter::default();
        let rate = Rate::parse("2/1h").unwrap();
        let t0 = Instant::now();
        assert!(l.allow("a", rate, t0));
        assert!(l.allow("a", rate, t0));
        assert!(!l.allow("a", rate, t0 + Duration::from_secs(10)));
        assert!(l.allow("b", rate, t0), "another key has its own count");
        assert!(l.allow("a", rate, t0 + Duration::from_secs(3600)));
    }

    #[test]
    fn cross_site_posts_are_refused() {
        let h = |pairs: &[(&str, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(
                    axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            m
        };
        let base = "https://status.example.com";
        assert!(same_origin(&h(&[("sec-fetch-site", "same-origin")]), base));
        assert!(same_origin(&h(&[("sec-fetch-site", "none")]), base));
        assert!(!same_origin(&h(&[("sec-fetch-site", "cross-site")]), base));
        assert!(!same_origin(&h(&[("sec-fetch-site", "same-site")]), base));
        assert!(same_origin(&h(&[("origin", base)]), base));
        assert!(same_origin(
            &h(&[
                ("origin", "http://127.0.0.1:8080"),
                ("host", "127.0.0.1:8080")
            ]),
            base
        ));
        assert!(!same_origin(
            &h(&[
                ("origin", "https://evil.example"),
                ("host", "127.0.0.1:8080")
            ]),
            base
        ));
        assert!(same_origin(&h(&[]), base), "not a browser");
    }

    #[test]
    fn sms_codes_are_six_digits() {
        for _ in 0..50 {
            let Secret::Code(c) = new_secret(TemplateKind::Sms).unwrap() else {
                panic!()
            };
            assert_eq!(c.len(), 6);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }
}
