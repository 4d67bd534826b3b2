//! `provider_sim`: a fake SMS/webhook provider for crier's end-to-end tests,
//! benchmarks and README demo.
//!
//! # Why it exists
//!
//! crier talks to Twilio, Vonage and arbitrary webhooks. Tests and benchmarks
//! must not hit the real services (cost, rate limits, no network in CI), yet
//! they need realistic wire shapes *and* realistic failures: throttling with
//! `Retry-After`, 5xx errors, requests that never answer and connections that
//! are reset mid-request. This binary speaks the documented request/response
//! shapes of those providers, injects those faults on demand, and counts what
//! it received (including duplicate deliveries) so a test can assert on
//! crier's at-least-once / no-duplicate behaviour through `GET /stats`.
//!
//! # How to run it
//!
//! ```text
//! cargo run --release --example provider_sim -- --bind 127.0.0.1:9099
//! cargo run --release --example provider_sim -- --error-rate 0.1 --burst-every 100 --burst-length 5
//! cargo run --release --example provider_sim -- --help
//! ```
//!
//! On start it prints exactly one line to stdout,
//! `provider_sim listening on http://ADDR`, which tests parse to learn the
//! port (the default `--bind` is `127.0.0.1:0`, an ephemeral port). Nothing is
//! logged per request. Faults can be changed at run time with `POST /faults`
//! (the whole fault set is replaced; omitted fields mean "off").
//!
//! Endpoints: `POST /2010-04-01/Accounts/{sid}/Messages.json` (Twilio),
//! `POST /sms/json` (Vonage), `POST /webhook/{name}`, `GET /stats`,
//! `POST /stats/reset`, `GET|POST /faults`, `GET /healthz`. Faults apply only
//! to the first three.
//!
//! # Fault semantics (what tests can rely on)
//!
//! - Faults are drawn per request, before authentication and validation, in
//!   this order: latency, reset, hang, 429 burst, error. A faulted request is
//!   never counted as accepted.
//! - `burst_429` is one cycle shared by all provider endpoints: after every N
//!   accepted requests the next M requests are throttled. Exact for a
//!   sequential client; with concurrent clients "next" is approximate.
//!   Changing the faults or resetting the stats restarts the cycle.
//! - A reset is per request even on keep-alive connections: the connection
//!   the request arrived on is closed with `SO_LINGER=0` (an RST) after the
//!   request was read, so the client sees "connection reset" and no answer.
//! - A hang holds the request until the client gives up, `--hang-secs` pass
//!   (then 503), or the simulator shuts down (SIGINT/SIGTERM release hangs).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::future::Future;
use std::hash::{BuildHasherDefault, DefaultHasher, Hash, Hasher};
use std::io;
use std::io::Write as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::{IncomingStream, Listener};
use axum::{Form, Json, Router};
use clap::Parser;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How long the process waits for in-flight requests after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Number of lock shards for the duplicate/recipient sets.
const SHARDS: usize = 64;
/// Maximum number of entries kept in `duplicate_samples`.
const MAX_SAMPLES: usize = 20;
/// Vonage's documented throttling text.
const VONAGE_THROTTLED: &str = "Throughput Rate Exceeded - please wait [ 1000 ] and retry";

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

/// Fake Twilio / Vonage / webhook provider with fault injection, for crier's
/// e2e tests, benchmarks and demo.
///
/// Prints `provider_sim listening on http://ADDR` once on start, then logs
/// nothing per request. Every fault flag below can also be changed at run time
/// with `POST /faults` (JSON body, replaces the whole fault set) and read with
/// `GET /faults`. Faults apply to the Twilio, Vonage and webhook endpoints only,
/// never to /stats, /faults or /healthz.
#[derive(Debug, Parser)]
#[command(name = "provider_sim", version)]
struct Cli {
    /// Address to listen on; port 0 picks a free port (see the printed line).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    bind: String,

    /// Seed of the fault PRNG (default: derived from the clock). With a fixed
    /// seed a sequential client sees a reproducible fault pattern.
    #[arg(long, value_name = "U64")]
    seed: Option<u64>,

    /// Fixed delay added to every provider request before it is answered.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    latency_ms: u64,

    /// Fraction (0.0-1.0) of provider requests answered with an internal error:
    /// HTTP 500 for Twilio/webhook, status "5" for Vonage.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate, value_name = "RATE")]
    error_rate: f64,

    /// Enable 429 bursts: after every N accepted requests, the next
    /// --burst-length requests are throttled (Twilio/webhook: HTTP 429 with
    /// Retry-After; Vonage: status "1"). 0 disables bursts.
    #[arg(long, default_value_t = 0, value_name = "N")]
    burst_every: u64,

    /// Number of requests throttled per burst (see --burst-every).
    #[arg(long, default_value_t = 1, value_name = "M")]
    burst_length: u64,

    /// Retry-After header value sent with burst 429s: delay seconds ("2") or
    /// an HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT").
    #[arg(long, default_value = "1", value_name = "VALUE")]
    burst_retry_after: String,

    /// Fraction (0.0-1.0) of provider requests that never get an answer: the
    /// connection is held open until the client gives up, --hang-secs pass, or
    /// the simulator shuts down.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate, value_name = "RATE")]
    hang_rate: f64,

    /// Fraction (0.0-1.0) of provider requests whose TCP connection is reset
    /// (RST, no HTTP answer) after the request has been read.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate, value_name = "RATE")]
    reset_rate: f64,

    /// Upper bound on how long a hung request is held before it is answered 503.
    #[arg(long, default_value_t = 3600, value_name = "SECS")]
    hang_secs: u64,

    /// If set, Twilio requests must also carry this auth token as the Basic
    /// auth password (the username must always equal the account SID in the URL).
    #[arg(long, value_name = "TOKEN")]
    twilio_auth_token: Option<String>,

    /// If set, Vonage requests must carry this api_key (else status "4").
    #[arg(long, value_name = "KEY")]
    vonage_api_key: Option<String>,

    /// If set, Vonage requests must carry this api_secret (else status "4").
    #[arg(long, value_name = "SECRET")]
    vonage_api_secret: Option<String>,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|e| format!("not a number: {e}"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err("must be between 0.0 and 1.0".to_owned())
    }
}

impl Cli {
    fn fault_spec(&self) -> FaultSpec {
        FaultSpec {
            latency_ms: self.latency_ms,
            error_rate: self.error_rate,
            burst_429: (self.burst_every > 0).then(|| BurstSpec {
                every: self.burst_every,
                length: self.burst_length,
                retry_after: self.burst_retry_after.clone(),
            }),
            hang_rate: self.hang_rate,
            reset_rate: self.reset_rate,
        }
    }

    fn server_config(&self) -> ServerConfig {
        ServerConfig {
            hang: Duration::from_secs(self.hang_secs),
            twilio_auth_token: self.twilio_auth_token.clone(),
            vonage_api_key: self.vonage_api_key.clone(),
            vonage_api_secret: self.vonage_api_secret.clone(),
        }
    }
}

// ---------------------------------------------------------------------------
// Fault configuration
// ---------------------------------------------------------------------------

/// The fault set, as accepted by `POST /faults` and the CLI. Omitted fields are
/// "off"; unknown fields are rejected so typos in tests fail loudly.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FaultSpec {
    latency_ms: u64,
    error_rate: f64,
    burst_429: Option<BurstSpec>,
    hang_rate: f64,
    reset_rate: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BurstSpec {
    every: u64,
    length: u64,
    #[serde(default = "default_retry_after")]
    retry_after: String,
}

fn default_retry_after() -> String {
    "1".to_owned()
}

/// A validated [`FaultSpec`] plus the pre-built `Retry-After` header value.
#[derive(Debug)]
struct ActiveFaults {
    spec: FaultSpec,
    retry_after: Option<HeaderValue>,
}

impl ActiveFaults {
    fn new(spec: FaultSpec) -> Result<Self, String> {
        for (name, rate) in [
            ("error_rate", spec.error_rate),
            ("hang_rate", spec.hang_rate),
            ("reset_rate", spec.reset_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0.0 and 1.0, got {rate}"));
            }
        }
        let retry_after =
            match &spec.burst_429 {
                None => None,
                Some(burst) => {
                    if burst.every == 0 {
                        return Err("burst_429.every must be at least 1".to_owned());
                    }
                    let value = burst.retry_after.trim();
                    if value.is_empty() {
                        return Err("burst_429.retry_after must not be empty".to_owned());
                    }
                    Some(HeaderValue::from_str(value).map_err(|_| {
                        "burst_429.retry_after is not a valid header value".to_owned()
                    })?)
                }
            };
        Ok(Self { spec, retry_after })
    }
}

/// Progress through the 429 burst cycle.
#[derive(Debug, Default)]
struct BurstState {
    accepted_since_burst: u64,
    throttle_remaining: u64,
}

/// Settings that are not faults and do not change at run time.
#[derive(Clone, Debug)]
struct ServerConfig {
    hang: Duration,
    twilio_auth_token: Option<String>,
    vonage_api_key: Option<String>,
    vonage_api_secret: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            hang: Duration::from_secs(3600),
            twilio_auth_token: None,
            vonage_api_key: None,
            vonage_api_secret: None,
        }
    }
}

// ---------------------------------------------------------------------------
// Small utilities: PRNG, hashing, locks, encodings, dates
// ---------------------------------------------------------------------------

/// SplitMix64 over an atomic counter: lock-free, shareable between worker
/// threads, and deterministic for a given seed and request order.
#[derive(Debug)]
struct Rng(AtomicU64);

impl Rng {
    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

    fn new(seed: u64) -> Self {
        Self(AtomicU64::new(seed))
    }

    fn next_u64(&self) -> u64 {
        let mut z = self
            .0
            .fetch_add(Self::GAMMA, Ordering::Relaxed)
            .wrapping_add(Self::GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `p` (0.0 never draws, 1.0 is always true).
    fn chance(&self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        // 53 random bits -> uniform float in [0, 1).
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        unit < p
    }
}

fn clock_seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0x5EED, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id()).rotate_left(32)
}

/// Hasher for keys that already are 64-bit hashes: passes them through.
#[derive(Default)]
struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type PreHashed = BuildHasherDefault<PassThroughHasher>;

/// Stable 64-bit fingerprint of a tagged tuple (SipHash via `DefaultHasher`).
fn fingerprint(parts: &[&[u8]]) -> u64 {
    let mut h = DefaultHasher::new();
    for part in parts {
        part.hash(&mut h);
    }
    h.finish()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave the data
    // inconsistent in a way that matters for a test double; keep serving.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn random_hex(rng: &Rng, words: usize, upper: bool) -> String {
    let mut s = String::with_capacity(words * 16);
    for _ in 0..words {
        let v = rng.next_u64();
        // Writing into a String cannot fail.
        let _ = if upper {
            write!(s, "{v:016X}")
        } else {
            write!(s, "{v:016x}")
        };
    }
    s
}

fn base64_decode(input: &str) -> Option<Vec<u8>> {
    let data = input.trim_end_matches('=').as_bytes();
    if data.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in data {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// `(username, password)` from an `Authorization: Basic ...` header.
fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(base64_decode(encoded.trim())?).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

fn all_digits_between(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// E.164 as Twilio wants it: `+` followed by 8-15 digits.
fn is_e164(s: &str) -> bool {
    s.strip_prefix('+')
        .is_some_and(|d| all_digits_between(d, 8, 15))
}

/// Vonage takes E.164 without the `+` (a leading `+` is tolerated).
fn is_vonage_number(s: &str) -> bool {
    all_digits_between(s.strip_prefix('+').unwrap_or(s), 8, 15)
}

/// Recipient key shared by Twilio (`+15550001111`) and Vonage (`15550001111`)
/// so a failover that delivers to both providers is seen as a duplicate.
fn normalize_recipient(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('+').unwrap_or(s)
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// RFC 2822 date in GMT, as Twilio renders `date_created`.
fn rfc2822(unix_secs: u64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    // Civil-from-days (proleptic Gregorian), shifted so eras start on 1 March.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7 + 4) as usize % 7],
        day,
        MONTHS[(month - 1) as usize],
        year,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

fn now_rfc2822() -> String {
    rfc2822(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Twilio = 0,
    Vonage = 1,
    Webhook = 2,
}

const KINDS: [(Kind, &str); 3] = [
    (Kind::Twilio, "twilio"),
    (Kind::Vonage, "vonage"),
    (Kind::Webhook, "webhook"),
];

impl Kind {
    fn name(self) -> &'static str {
        KINDS[self as usize].1
    }
}

#[derive(Debug, Default)]
struct KindCounters {
    requests: AtomicU64,
    accepted: AtomicU64,
    rejected: AtomicU64,
    duplicates: AtomicU64,
}

#[derive(Debug, Default)]
struct FaultCounters {
    latency: AtomicU64,
    error: AtomicU64,
    throttle: AtomicU64,
    hang: AtomicU64,
    reset: AtomicU64,
}

/// One lock shard. Everything stored is a 64-bit fingerprint, so a million
/// recipients cost roughly 20-40 MB in total instead of the strings themselves.
#[derive(Debug, Default)]
struct Shard {
    /// recipient fingerprint -> bit set of kinds (1 = twilio, 2 = vonage).
    recipients: HashMap<u64, u8, PreHashed>,
    /// (recipient, body) fingerprints of accepted SMS, shared by both providers.
    pairs: HashSet<u64, PreHashed>,
    /// Idempotency-Key (per webhook name) and Vonage client-ref fingerprints.
    keys: HashSet<u64, PreHashed>,
}

#[derive(Debug)]
struct Stats {
    kinds: [KindCounters; 3],
    faults: FaultCounters,
    unique_twilio: AtomicU64,
    unique_vonage: AtomicU64,
    unique_total: AtomicU64,
    dup_recipient_body: AtomicU64,
    dup_client_ref: AtomicU64,
    dup_idempotency_key: AtomicU64,
    webhook_without_key: AtomicU64,
    shards: Vec<Mutex<Shard>>,
    samples: Mutex<Vec<Value>>,
}

fn zero(counters: &[&AtomicU64]) {
    for c in counters {
        c.store(0, Ordering::Relaxed);
    }
}

fn read(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Stats {
    fn new() -> Self {
        Self {
            kinds: Default::default(),
            faults: FaultCounters::default(),
            unique_twilio: AtomicU64::new(0),
            unique_vonage: AtomicU64::new(0),
            unique_total: AtomicU64::new(0),
            dup_recipient_body: AtomicU64::new(0),
            dup_client_ref: AtomicU64::new(0),
            dup_idempotency_key: AtomicU64::new(0),
            webhook_without_key: AtomicU64::new(0),
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            samples: Mutex::new(Vec::new()),
        }
    }

    fn kind(&self, kind: Kind) -> &KindCounters {
        &self.kinds[kind as usize]
    }

    fn shard(&self, fp: u64) -> MutexGuard<'_, Shard> {
        // Middle bits pick the shard; the maps inside use the low bits (bucket)
        // and top bits (control byte), so the three stay independent.
        lock(&self.shards[(fp >> 32) as usize % SHARDS])
    }

    fn note_recipient(&self, kind: Kind, recipient: &str) {
        let fp = fingerprint(&[b"recipient", normalize_recipient(recipient).as_bytes()]);
        let bit = 1u8 << (kind as u8);
        let previous = {
            let mut shard = self.shard(fp);
            let slot = shard.recipients.entry(fp).or_insert(0);
            let previous = *slot;
            *slot |= bit;
            previous
        };
        if previous == 0 {
            bump(&self.unique_total);
        }
        if previous & bit == 0 {
            match kind {
                Kind::Twilio => bump(&self.unique_twilio),
                Kind::Vonage => bump(&self.unique_vonage),
                Kind::Webhook => {}
            }
        }
    }

    /// Records an accepted (recipient, body) pair; true if it was seen before.
    fn pair_seen_before(&self, recipient: &str, body: &str) -> bool {
        let fp = fingerprint(&[
            b"pair",
            normalize_recipient(recipient).as_bytes(),
            body.as_bytes(),
        ]);
        !self.shard(fp).pairs.insert(fp)
    }

    /// Records a key (idempotency key / client-ref); true if it was seen before.
    fn key_seen_before(&self, parts: &[&[u8]]) -> bool {
        let fp = fingerprint(parts);
        !self.shard(fp).keys.insert(fp)
    }

    fn duplicate(&self, kind: Kind, sample: Value) {
        bump(&self.kind(kind).duplicates);
        let mut samples = lock(&self.samples);
        if samples.len() < MAX_SAMPLES {
            samples.push(sample);
        }
    }

    fn snapshot(&self) -> Value {
        let per_kind = |f: fn(&KindCounters) -> &AtomicU64| {
            let mut map = serde_json::Map::new();
            let mut total = 0;
            for (kind, name) in KINDS {
                let v = read(f(self.kind(kind)));
                total += v;
                map.insert(name.to_owned(), json!(v));
            }
            map.insert("total".to_owned(), json!(total));
            Value::Object(map)
        };
        let f = &self.faults;
        let faults_total = read(&f.error) + read(&f.throttle) + read(&f.hang) + read(&f.reset);
        json!({
            "requests": per_kind(|k| &k.requests),
            "accepted": per_kind(|k| &k.accepted),
            "rejected": per_kind(|k| &k.rejected),
            "duplicates": per_kind(|k| &k.duplicates),
            "duplicate_reasons": {
                "recipient_body": read(&self.dup_recipient_body),
                "client_ref": read(&self.dup_client_ref),
                "idempotency_key": read(&self.dup_idempotency_key),
            },
            "unique_recipients": {
                "twilio": read(&self.unique_twilio),
                "vonage": read(&self.unique_vonage),
                "total": read(&self.unique_total),
            },
            "webhook_without_idempotency_key": read(&self.webhook_without_key),
            "faults": {
                "latency": read(&f.latency),
                "error": read(&f.error),
                "throttle": read(&f.throttle),
                "hang": read(&f.hang),
                "reset": read(&f.reset),
                "total": faults_total,
            },
            "duplicate_samples": lock(&self.samples).clone(),
        })
    }

    fn reset(&self) {
        for k in &self.kinds {
            zero(&[&k.requests, &k.accepted, &k.rejected, &k.duplicates]);
        }
        let f = &self.faults;
        zero(&[&f.latency, &f.error, &f.throttle, &f.hang, &f.reset]);
        zero(&[
            &self.unique_twilio,
            &self.unique_vonage,
            &self.unique_total,
            &self.dup_recipient_body,
            &self.dup_client_ref,
            &self.dup_idempotency_key,
            &self.webhook_without_key,
        ]);
        for shard in &self.shards {
            // Replace rather than clear() so the memory of a big run is freed.
            *lock(shard) = Shard::default();
        }
        lock(&self.samples).clear();
    }
}

// ---------------------------------------------------------------------------
// Shared state and fault injection
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct AppState {
    faults: RwLock<Arc<ActiveFaults>>,
    burst: Mutex<BurstState>,
    stats: Stats,
    rng: Rng,
    config: ServerConfig,
    shutdown: watch::Receiver<bool>,
}

/// A fault chosen for one request.
enum Fault {
    Reset,
    Hang,
    Throttle(HeaderValue),
    Error,
}

impl AppState {
    fn new(
        faults: ActiveFaults,
        config: ServerConfig,
        seed: u64,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            faults: RwLock::new(Arc::new(faults)),
            burst: Mutex::new(BurstState::default()),
            stats: Stats::new(),
            rng: Rng::new(seed),
            config,
            shutdown,
        }
    }

    fn current_faults(&self) -> Arc<ActiveFaults> {
        Arc::clone(&self.faults.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn replace_faults(&self, faults: ActiveFaults) {
        *self.faults.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(faults);
        *lock(&self.burst) = BurstState::default();
    }

    /// Sleeps for `d` unless the simulator starts shutting down first.
    async fn sleep_unless_shutdown(&self, d: Duration) {
        let mut rx = self.shutdown.clone();
        tokio::select! {
            () = tokio::time::sleep(d) => {}
            _ = rx.wait_for(|stopping| *stopping) => {}
        }
    }

    /// Rolls the dice for one provider request. Order: latency, reset, hang,
    /// 429 burst, error. Each applied fault is counted in `/stats`.
    async fn inject(&self, conn: &ConnHandle) -> Option<Fault> {
        let faults = self.current_faults();
        let f = &self.stats.faults;
        if faults.spec.latency_ms > 0 {
            bump(&f.latency);
            self.sleep_unless_shutdown(Duration::from_millis(faults.spec.latency_ms))
                .await;
        }
        if self.rng.chance(faults.spec.reset_rate) {
            bump(&f.reset);
            conn.kill();
            return Some(Fault::Reset);
        }
        if self.rng.chance(faults.spec.hang_rate) {
            bump(&f.hang);
            self.sleep_unless_shutdown(self.config.hang).await;
            return Some(Fault::Hang);
        }
        if let Some(retry_after) = &faults.retry_after {
            let throttled = {
                let mut burst = lock(&self.burst);
                if burst.throttle_remaining > 0 {
                    burst.throttle_remaining -= 1;
                    true
                } else {
                    false
                }
            };
            if throttled {
                bump(&f.throttle);
                return Some(Fault::Throttle(retry_after.clone()));
            }
        }
        if self.rng.chance(faults.spec.error_rate) {
            bump(&f.error);
            return Some(Fault::Error);
        }
        None
    }

    /// Counts an accepted request and advances the 429 burst cycle.
    fn accepted(&self, kind: Kind) {
        bump(&self.stats.kind(kind).accepted);
        let faults = self.current_faults();
        if let Some(burst) = &faults.spec.burst_429 {
            let mut state = lock(&self.burst);
            state.accepted_since_burst += 1;
            if state.accepted_since_burst >= burst.every {
                state.accepted_since_burst = 0;
                state.throttle_remaining = burst.length;
            }
        }
    }

    fn rejected(&self, kind: Kind) {
        bump(&self.stats.kind(kind).rejected);
    }
}

/// Answer for a request whose connection is being reset. The response is never
/// delivered: the kill flag makes the socket fail the write and close with RST.
fn reset_response() -> Response {
    (
        StatusCode::BAD_GATEWAY,
        [(header::CONNECTION, "close")],
        "connection reset by provider_sim",
    )
        .into_response()
}

// ---------------------------------------------------------------------------
// Connection layer: listener + IO wrapper that can reset a connection
// ---------------------------------------------------------------------------

/// `axum::serve::Listener` over a tokio `TcpListener` whose connections are
/// wrapped in [`SimIo`], so a handler can reset the connection it runs on.
struct SimListener {
    inner: TcpListener,
}

impl Listener for SimListener {
    type Io = SimIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        static LOGGED_ACCEPT_ERROR: AtomicBool = AtomicBool::new(false);
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    // Best effort: NODELAY only affects latency, never correctness.
                    let _ = stream.set_nodelay(true);
                    return (SimIo::new(stream), addr);
                }
                Err(e) => {
                    let per_connection = matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::ConnectionRefused
                    );
                    if per_connection {
                        continue;
                    }
                    // E.g. EMFILE under heavy load: report once, back off, retry.
                    if !LOGGED_ACCEPT_ERROR.swap(true, Ordering::Relaxed) {
                        eprintln!("provider_sim: accept error (retrying): {e}");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A TCP stream with a shared "kill" flag. Once the flag is set, the next read
/// or write sets `SO_LINGER` to zero and fails, so hyper drops the connection
/// and the kernel sends RST instead of an HTTP answer.
struct SimIo {
    stream: TcpStream,
    kill: Arc<AtomicBool>,
    lingering_off: bool,
}

impl SimIo {
    fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            kill: Arc::new(AtomicBool::new(false)),
            lingering_off: false,
        }
    }

    fn check(&mut self) -> io::Result<()> {
        if !self.kill.load(Ordering::Relaxed) {
            return Ok(());
        }
        if !self.lingering_off {
            self.lingering_off = true;
            // If this fails the peer sees a FIN instead of an RST: still no answer.
            let _ = self.stream.set_zero_linger();
        }
        Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "provider_sim: injected connection reset",
        ))
    }
}

impl AsyncRead for SimIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(e) = this.check() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for SimIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(e) = this.check() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(e) = this.check() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(e) = this.check() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(e) = this.check() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

/// Per-connection handle given to handlers through `ConnectInfo`.
#[derive(Clone, Debug)]
struct ConnHandle(Arc<AtomicBool>);

impl ConnHandle {
    fn kill(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Connected<IncomingStream<'_, SimListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, SimListener>) -> Self {
        Self(Arc::clone(&stream.io().kill))
    }
}

// ---------------------------------------------------------------------------
// Twilio
// ---------------------------------------------------------------------------

/// Fields of Twilio's Create Message form that the simulator looks at.
/// Anything else (StatusCallback, MediaUrl, ...) is accepted and ignored.
#[derive(Debug, Deserialize)]
struct TwilioForm {
    #[serde(rename = "To")]
    to: Option<String>,
    #[serde(rename = "From")]
    from: Option<String>,
    #[serde(rename = "MessagingServiceSid")]
    messaging_service_sid: Option<String>,
    #[serde(rename = "Body")]
    body: Option<String>,
}

/// Twilio's Message resource as returned by Create Message (typed rather than
/// a `json!` tree: this is the hot path of benchmarks).
#[derive(Debug, Serialize)]
struct TwilioMessage<'a> {
    account_sid: &'a str,
    api_version: &'static str,
    body: &'a str,
    date_created: &'a str,
    date_sent: Option<&'a str>,
    date_updated: &'a str,
    direction: &'static str,
    error_code: Option<u32>,
    error_message: Option<&'a str>,
    from: Option<&'a str>,
    messaging_service_sid: Option<&'a str>,
    num_media: &'static str,
    num_segments: &'static str,
    price: Option<&'a str>,
    price_unit: &'static str,
    sid: &'a str,
    status: &'static str,
    subresource_uris: TwilioSubresources<'a>,
    to: &'a str,
    uri: &'a str,
}

#[derive(Debug, Serialize)]
struct TwilioSubresources<'a> {
    media: &'a str,
}

fn twilio_error(status: StatusCode, code: u32, message: impl Into<String>) -> Response {
    let body = json!({
        "code": code,
        "message": message.into(),
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (status, Json(body)).into_response()
}

fn twilio_fault(fault: Fault) -> Response {
    match fault {
        Fault::Reset => reset_response(),
        Fault::Hang => twilio_error(
            StatusCode::SERVICE_UNAVAILABLE,
            20503,
            "Service Unavailable",
        ),
        Fault::Throttle(retry_after) => {
            let mut resp = twilio_error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests");
            resp.headers_mut().insert(header::RETRY_AFTER, retry_after);
            resp
        }
        Fault::Error => twilio_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            20500,
            "Internal Server Error",
        ),
    }
}

async fn twilio_send(
    State(state): State<Arc<AppState>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    Path(account_sid): Path<String>,
    headers: HeaderMap,
    form: Result<Form<TwilioForm>, FormRejection>,
) -> Response {
    const KIND: Kind = Kind::Twilio;
    bump(&state.stats.kind(KIND).requests);
    if let Some(fault) = state.inject(&conn).await {
        return twilio_fault(fault);
    }

    let authorized = basic_auth(&headers).is_some_and(|(user, pass)| {
        user == account_sid
            && state
                .config
                .twilio_auth_token
                .as_ref()
                .is_none_or(|token| *token == pass)
    });
    if !authorized {
        state.rejected(KIND);
        let mut resp = twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"Twilio API\""),
        );
        return resp;
    }

    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => {
            state.rejected(KIND);
            return twilio_error(
                StatusCode::BAD_REQUEST,
                20001,
                format!("Invalid request: {rejection}"),
            );
        }
    };
    let Some(to) = non_empty(form.to) else {
        state.rejected(KIND);
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21604,
            "A 'To' phone number is required.",
        );
    };
    if !is_e164(&to) {
        state.rejected(KIND);
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21211,
            format!("The 'To' number {to} is not a valid phone number."),
        );
    }
    let from = non_empty(form.from);
    let service = non_empty(form.messaging_service_sid);
    if from.is_none() && service.is_none() {
        state.rejected(KIND);
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21603,
            "A 'From' phone number is required.",
        );
    }
    let Some(body) = non_empty(form.body) else {
        state.rejected(KIND);
        return twilio_error(StatusCode::BAD_REQUEST, 21602, "Message body is required.");
    };

    state.accepted(KIND);
    state.stats.note_recipient(KIND, &to);
    if state.stats.pair_seen_before(&to, &body) {
        bump(&state.stats.dup_recipient_body);
        state.stats.duplicate(
            KIND,
            json!({"kind": KIND.name(), "reason": "recipient_body", "recipient": to, "body": truncate(&body, 80)}),
        );
    }

    let sid = format!("SM{}", random_hex(&state.rng, 2, false));
    let now = now_rfc2822();
    // Twilio answers "accepted" when only a Messaging Service was given (the
    // sender is picked later) and "queued" when an explicit From was given.
    let status = if from.is_some() { "queued" } else { "accepted" };
    let uri = format!("/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json");
    let media_uri = format!("/2010-04-01/Accounts/{account_sid}/Messages/{sid}/Media.json");
    let num_segments = if from.is_some() { "1" } else { "0" };
    let resp = TwilioMessage {
        account_sid: &account_sid,
        api_version: "2010-04-01",
        body: &body,
        date_created: &now,
        date_sent: None,
        date_updated: &now,
        direction: "outbound-api",
        error_code: None,
        error_message: None,
        from: from.as_deref(),
        messaging_service_sid: service.as_deref(),
        num_media: "0",
        num_segments,
        price: None,
        price_unit: "USD",
        sid: &sid,
        status,
        subresource_uris: TwilioSubresources { media: &media_uri },
        to: &to,
        uri: &uri,
    };
    (StatusCode::CREATED, Json(resp)).into_response()
}

// ---------------------------------------------------------------------------
// Vonage
// ---------------------------------------------------------------------------

/// Fields of Vonage's SMS API form. `type` and others are accepted and ignored.
#[derive(Debug, Deserialize)]
struct VonageForm {
    api_key: Option<String>,
    api_secret: Option<String>,
    from: Option<String>,
    to: Option<String>,
    text: Option<String>,
    #[serde(rename = "client-ref")]
    client_ref: Option<String>,
}

/// Vonage's success answer for a single-part message.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
struct VonageReply<'a> {
    message_count: &'static str,
    messages: [VonageMessage<'a>; 1],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
struct VonageMessage<'a> {
    to: &'a str,
    message_id: &'a str,
    status: &'static str,
    remaining_balance: &'static str,
    message_price: &'static str,
    network: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_ref: Option<&'a str>,
}

/// Vonage always answers HTTP 200; success or failure is in `status`.
fn vonage_reply(message: Value) -> Response {
    Json(json!({ "message-count": "1", "messages": [message] })).into_response()
}

fn vonage_status(status: &str, error_text: &str) -> Response {
    vonage_reply(json!({ "status": status, "error-text": error_text }))
}

fn vonage_fault(fault: Fault) -> Response {
    match fault {
        Fault::Reset => reset_response(),
        Fault::Throttle(_) => vonage_status("1", VONAGE_THROTTLED),
        Fault::Hang | Fault::Error => vonage_status("5", "Internal Error"),
    }
}

async fn vonage_send(
    State(state): State<Arc<AppState>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    form: Result<Form<VonageForm>, FormRejection>,
) -> Response {
    const KIND: Kind = Kind::Vonage;
    bump(&state.stats.kind(KIND).requests);
    if let Some(fault) = state.inject(&conn).await {
        return vonage_fault(fault);
    }

    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => {
            state.rejected(KIND);
            return vonage_status("2", &format!("Missing Parameters: {rejection}"));
        }
    };
    let (api_key, api_secret) = match (non_empty(form.api_key), non_empty(form.api_secret)) {
        (Some(k), Some(s)) => (k, s),
        (None, _) => {
            state.rejected(KIND);
            return vonage_status("2", "Missing api_key");
        }
        (_, None) => {
            state.rejected(KIND);
            return vonage_status("2", "Missing api_secret");
        }
    };
    let cfg = &state.config;
    if cfg.vonage_api_key.as_ref().is_some_and(|k| *k != api_key)
        || cfg
            .vonage_api_secret
            .as_ref()
            .is_some_and(|s| *s != api_secret)
    {
        state.rejected(KIND);
        return vonage_status("4", "Bad Credentials");
    }
    // `from` is required by Vonage but not echoed in its answer.
    let (Some(_from), Some(to), Some(text)) = (
        non_empty(form.from),
        non_empty(form.to),
        non_empty(form.text),
    ) else {
        state.rejected(KIND);
        return vonage_status("2", "Missing from, to or text param");
    };
    if !is_vonage_number(&to) {
        state.rejected(KIND);
        return vonage_status("3", "Invalid to param");
    }
    let client_ref = non_empty(form.client_ref);

    state.accepted(KIND);
    state.stats.note_recipient(KIND, &to);
    let pair_dup = state.stats.pair_seen_before(&to, &text);
    let ref_dup = client_ref.as_ref().is_some_and(|r| {
        state
            .stats
            .key_seen_before(&[b"vonage-client-ref", r.as_bytes()])
    });
    if pair_dup {
        bump(&state.stats.dup_recipient_body);
    }
    if ref_dup {
        bump(&state.stats.dup_client_ref);
    }
    if pair_dup || ref_dup {
        let reason = if ref_dup {
            "client_ref"
        } else {
            "recipient_body"
        };
        state.stats.duplicate(
            KIND,
            json!({
                "kind": KIND.name(),
                "reason": reason,
                "recipient": to,
                "body": truncate(&text, 80),
                "client_ref": client_ref,
            }),
        );
    }

    let message_id = random_hex(&state.rng, 1, true);
    let reply = VonageReply {
        message_count: "1",
        messages: [VonageMessage {
            to: &to,
            message_id: &message_id,
            status: "0",
            remaining_balance: "10.0",
            message_price: "0.01",
            network: "12345",
            client_ref: client_ref.as_deref(),
        }],
    };
    Json(reply).into_response()
}

// ---------------------------------------------------------------------------
// Webhook receiver
// ---------------------------------------------------------------------------

fn webhook_error(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "ok": false, "error": error }))).into_response()
}

fn webhook_fault(fault: Fault) -> Response {
    match fault {
        Fault::Reset => reset_response(),
        Fault::Hang => webhook_error(StatusCode::SERVICE_UNAVAILABLE, "service unavailable"),
        Fault::Throttle(retry_after) => {
            let mut resp = webhook_error(StatusCode::TOO_MANY_REQUESTS, "too many requests");
            resp.headers_mut().insert(header::RETRY_AFTER, retry_after);
            resp
        }
        Fault::Error => webhook_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    }
}

async fn webhook(
    State(state): State<Arc<AppState>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const KIND: Kind = Kind::Webhook;
    bump(&state.stats.kind(KIND).requests);
    if let Some(fault) = state.inject(&conn).await {
        return webhook_fault(fault);
    }
    // Validate without building a tree: any well-formed JSON is accepted.
    if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
        state.rejected(KIND);
        return webhook_error(StatusCode::BAD_REQUEST, "body is not valid JSON");
    }

    state.accepted(KIND);
    match headers.get("idempotency-key") {
        Some(key) => {
            let seen = state.stats.key_seen_before(&[
                b"webhook-idempotency-key",
                name.as_bytes(),
                key.as_bytes(),
            ]);
            if seen {
                bump(&state.stats.dup_idempotency_key);
                state.stats.duplicate(
                    KIND,
                    json!({
                        "kind": KIND.name(),
                        "reason": "idempotency_key",
                        "webhook": name,
                        "idempotency_key": truncate(&String::from_utf8_lossy(key.as_bytes()), 80),
                    }),
                );
            }
        }
        None => bump(&state.stats.webhook_without_key),
    }
    Json(json!({ "ok": true })).into_response()
}

// ---------------------------------------------------------------------------
// Control plane (never faulted)
// ---------------------------------------------------------------------------

async fn healthz() -> &'static str {
    "ok"
}

async fn get_stats(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(state.stats.snapshot())
}

async fn reset_stats(State(state): State<Arc<AppState>>) -> Json<Value> {
    state.stats.reset();
    *lock(&state.burst) = BurstState::default();
    Json(state.stats.snapshot())
}

async fn get_faults(State(state): State<Arc<AppState>>) -> Json<FaultSpec> {
    Json(state.current_faults().spec.clone())
}

async fn set_faults(
    State(state): State<Arc<AppState>>,
    spec: Result<Json<FaultSpec>, JsonRejection>,
) -> Response {
    let spec = match spec {
        Ok(Json(spec)) => spec,
        Err(rejection) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": rejection.body_text() })),
            )
                .into_response();
        }
    };
    match ActiveFaults::new(spec) {
        Ok(faults) => {
            let spec = faults.spec.clone();
            state.replace_faults(faults);
            Json(spec).into_response()
        }
        Err(error) => (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response(),
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(
            "/2010-04-01/Accounts/{sid}/Messages.json",
            post(twilio_send),
        )
        .route("/sms/json", post(vonage_send))
        .route("/webhook/{name}", post(webhook))
        .route("/stats", get(get_stats))
        .route("/stats/reset", post(reset_stats))
        .route("/faults", get(get_faults).post(set_faults))
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// Serves until `shutdown` resolves and open connections have finished.
async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<ConnHandle>();
    axum::serve(SimListener { inner: listener }, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No SIGINT handler available: rely on SIGTERM / being killed.
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let faults = ActiveFaults::new(cli.fault_spec()).map_err(anyhow::Error::msg)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let seed = cli.seed.unwrap_or_else(clock_seed);
    let state = Arc::new(AppState::new(
        faults,
        cli.server_config(),
        seed,
        stop_rx.clone(),
    ));

    let listener = TcpListener::bind(&cli.bind)
        .await
        .with_context(|| format!("binding {}", cli.bind))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "provider_sim listening on http://{addr}")?;
    stdout.flush()?;
    drop(stdout);

    let shutdown = async move {
        shutdown_signal().await;
        // Releases hung requests and pending latency sleeps.
        let _ = stop_tx.send(true);
    };
    let mut hard_stop = stop_rx;
    tokio::select! {
        res = serve(listener, state, shutdown) => res.context("serving")?,
        () = async move {
            let _ = hard_stop.wait_for(|stopping| *stopping).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {}
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    const SID: &str = "AC00000000000000000000000000000001";
    /// Safety net so a broken server fails a test instead of hanging it.
    const IO_LIMIT: Duration = Duration::from_secs(30);

    struct TestServer {
        addr: SocketAddr,
        _stop: watch::Sender<bool>,
    }

    async fn start(spec: FaultSpec) -> TestServer {
        start_with(spec, ServerConfig::default()).await
    }

    async fn start_with(spec: FaultSpec, config: ServerConfig) -> TestServer {
        let faults = ActiveFaults::new(spec).expect("test fault spec is valid");
        let (stop_tx, stop_rx) = watch::channel(false);
        let state = Arc::new(AppState::new(faults, config, 42, stop_rx.clone()));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let mut stop = stop_rx;
        tokio::spawn(serve(listener, state, async move {
            let _ = stop.wait_for(|s| *s).await;
        }));
        TestServer {
            addr,
            _stop: stop_tx,
        }
    }

    #[derive(Debug)]
    struct Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    }

    impl Reply {
        fn json(&self) -> Value {
            serde_json::from_str(&self.body).unwrap_or(Value::Null)
        }

        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    async fn write_all(stream: &TcpStream, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            stream.writable().await?;
            match stream.try_write(data) {
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn read_to_end(stream: &TcpStream) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            stream.readable().await?;
            match stream.try_read(&mut chunk) {
                Ok(0) => return Ok(out),
                Ok(n) => out.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Minimal HTTP/1.1 client: one request per connection (`Connection: close`).
    async fn raw_request(
        addr: SocketAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> io::Result<Vec<u8>> {
        let stream = TcpStream::connect(addr).await?;
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        let exchange = async {
            write_all(&stream, req.as_bytes()).await?;
            read_to_end(&stream).await
        };
        tokio::time::timeout(IO_LIMIT, exchange)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "test request timed out"))?
    }

    fn parse_reply(raw: &[u8]) -> Reply {
        let text = String::from_utf8_lossy(raw);
        let (head, body) = text.split_once("\r\n\r\n").expect("complete HTTP response");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status code");
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        Reply {
            status,
            headers,
            body: body.to_owned(),
        }
    }

    async fn request(
        addr: SocketAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let raw = raw_request(addr, method, path, headers, body)
            .await
            .expect("request succeeds");
        parse_reply(&raw)
    }

    fn base64_encode(data: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    fn form_encode(pairs: &[(&str, &str)]) -> String {
        fn enc(s: &str) -> String {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        char::from(b).to_string()
                    }
                    b' ' => "+".to_owned(),
                    _ => format!("%{b:02X}"),
                })
                .collect()
        }
        pairs
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");
    const JSON: (&str, &str) = ("Content-Type", "application/json");

    async fn twilio(addr: SocketAddr, user: Option<&str>, to: &str, body: &str) -> Reply {
        let auth =
            user.map(|u| format!("Basic {}", base64_encode(format!("{u}:secret").as_bytes())));
        let mut headers = vec![FORM];
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        let form = form_encode(&[
            ("To", to),
            ("From", "+15550009999"),
            ("Body", body),
            ("StatusCallback", "http://127.0.0.1:1/cb"),
        ]);
        let path = format!("/2010-04-01/Accounts/{SID}/Messages.json");
        request(addr, "POST", &path, &headers, &form).await
    }

    async fn vonage(addr: SocketAddr, fields: &[(&str, &str)]) -> Reply {
        let mut all = vec![
            ("api_key", "key"),
            ("api_secret", "secret"),
            ("from", "Crier"),
        ];
        all.extend_from_slice(fields);
        request(addr, "POST", "/sms/json", &[FORM], &form_encode(&all)).await
    }

    async fn webhook_post(addr: SocketAddr, key: Option<&str>) -> Reply {
        let mut headers = vec![JSON];
        if let Some(k) = key {
            headers.push(("Idempotency-Key", k));
        }
        request(
            addr,
            "POST",
            "/webhook/ops",
            &headers,
            r#"{"incident":"x"}"#,
        )
        .await
    }

    async fn stats(addr: SocketAddr) -> Value {
        let reply = request(addr, "GET", "/stats", &[], "").await;
        assert_eq!(reply.status, 200);
        reply.json()
    }

    #[test]
    fn cli_definition_is_consistent_and_parses_flags() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "provider_sim",
            "--error-rate",
            "0.25",
            "--burst-every",
            "10",
            "--burst-length",
            "3",
            "--burst-retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT",
        ])
        .expect("valid flags");
        let spec = cli.fault_spec();
        assert_eq!(spec.error_rate, 0.25);
        assert_eq!(
            spec.burst_429.as_ref().map(|b| (b.every, b.length)),
            Some((10, 3))
        );
        assert!(ActiveFaults::new(spec).is_ok());
        assert!(Cli::try_parse_from(["provider_sim", "--hang-rate", "1.5"]).is_err());
        assert_eq!(
            Cli::try_parse_from(["provider_sim"])
                .expect("defaults")
                .bind,
            "127.0.0.1:0"
        );
    }

    #[test]
    fn helpers_behave() {
        assert_eq!(
            base64_decode("QUM6c2VjcmV0").as_deref(),
            Some(&b"AC:secret"[..])
        );
        assert_eq!(
            base64_decode(&base64_encode(b"ab")).as_deref(),
            Some(&b"ab"[..])
        );
        assert!(base64_decode("a$==").is_none());
        assert!(is_e164("+15551234567"));
        assert!(!is_e164("15551234567"));
        assert!(!is_e164("+1234567"));
        assert!(!is_e164("+1234567890123456"));
        assert!(is_vonage_number("447700900000"));
        assert_eq!(rfc2822(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc2822(1_700_000_000), "Tue, 14 Nov 2023 22:13:20 +0000");
        assert_eq!(rfc2822(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        let rng = Rng::new(7);
        assert!((0..1000).all(|_| rng.chance(1.0)));
        assert!((0..1000).all(|_| !rng.chance(0.0)));
    }

    #[tokio::test]
    async fn twilio_accepts_valid_message() {
        let srv = start(FaultSpec::default()).await;
        let reply = twilio(srv.addr, Some(SID), "+15551230001", "Outage resolved").await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        let v = reply.json();
        let sid = v["sid"].as_str().expect("sid");
        assert!(sid.starts_with("SM") && sid.len() == 34, "{sid}");
        assert!(sid[2..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(v["status"], "queued");
        assert_eq!(v["to"], "+15551230001");
        assert_eq!(v["from"], "+15550009999");
        assert_eq!(v["body"], "Outage resolved");
        assert_eq!(v["account_sid"], SID);
        let s = stats(srv.addr).await;
        assert_eq!(s["accepted"]["twilio"], 1);
        assert_eq!(s["unique_recipients"]["twilio"], 1);
    }

    #[tokio::test]
    async fn twilio_rejects_missing_or_wrong_auth() {
        let srv = start(FaultSpec::default()).await;
        for user in [None, Some("ACsomeoneelse")] {
            let reply = twilio(srv.addr, user, "+15551230001", "hi").await;
            assert_eq!(reply.status, 401);
            let v = reply.json();
            assert_eq!(v["code"], 20003);
            assert_eq!(v["message"], "Authenticate");
            assert_eq!(v["status"], 401);
            assert!(v["more_info"].as_str().is_some());
        }
        let config = ServerConfig {
            twilio_auth_token: Some("other".to_owned()),
            ..ServerConfig::default()
        };
        let strict = start_with(FaultSpec::default(), config).await;
        assert_eq!(
            twilio(strict.addr, Some(SID), "+15551230001", "hi")
                .await
                .status,
            401
        );
        let s = stats(srv.addr).await;
        assert_eq!(s["rejected"]["twilio"], 2);
        assert_eq!(s["accepted"]["twilio"], 0);
    }

    #[tokio::test]
    async fn twilio_rejects_invalid_to() {
        let srv = start(FaultSpec::default()).await;
        for to in ["12345", "+12ab567890", "+1234"] {
            let reply = twilio(srv.addr, Some(SID), to, "hi").await;
            assert_eq!(reply.status, 400, "{to}");
            assert_eq!(reply.json()["code"], 21211);
        }
        assert_eq!(stats(srv.addr).await["accepted"]["twilio"], 0);
    }

    #[tokio::test]
    async fn vonage_accepts_message_and_reports_missing_fields() {
        let srv = start(FaultSpec::default()).await;
        let reply = vonage(
            srv.addr,
            &[
                ("to", "447700900000"),
                ("text", "Status: degraded"),
                ("type", "text"),
                ("client-ref", "inc-1"),
            ],
        )
        .await;
        assert_eq!(reply.status, 200);
        let v = reply.json();
        assert_eq!(v["message-count"], "1");
        let m = &v["messages"][0];
        assert_eq!(m["status"], "0");
        assert_eq!(m["to"], "447700900000");
        assert_eq!(m["client-ref"], "inc-1");
        assert!(m["message-id"].as_str().is_some_and(|id| !id.is_empty()));

        let missing = vonage(srv.addr, &[("to", "447700900000")]).await;
        assert_eq!(missing.status, 200);
        assert_eq!(missing.json()["messages"][0]["status"], "2");
        assert!(missing.json()["messages"][0]["error-text"]
            .as_str()
            .is_some());
        let s = stats(srv.addr).await;
        assert_eq!(s["accepted"]["vonage"], 1);
        assert_eq!(s["rejected"]["vonage"], 1);
    }

    #[tokio::test]
    async fn vonage_throttled_during_burst() {
        let spec = FaultSpec {
            burst_429: Some(BurstSpec {
                every: 1,
                length: 1,
                retry_after: "1".to_owned(),
            }),
            ..FaultSpec::default()
        };
        let srv = start(spec).await;
        let mut statuses = Vec::new();
        for i in 0..4 {
            let text = format!("update {i}");
            let reply = vonage(srv.addr, &[("to", "447700900001"), ("text", &text)]).await;
            assert_eq!(reply.status, 200);
            let m = reply.json()["messages"][0].clone();
            if m["status"] == "1" {
                assert_eq!(m["error-text"], VONAGE_THROTTLED);
            }
            statuses.push(m["status"].as_str().unwrap_or_default().to_owned());
        }
        assert_eq!(statuses, ["0", "1", "0", "1"]);
        let s = stats(srv.addr).await;
        assert_eq!(s["accepted"]["vonage"], 2);
        assert_eq!(s["faults"]["throttle"], 2);
    }

    #[tokio::test]
    async fn webhook_duplicate_idempotency_key_is_counted() {
        let srv = start(FaultSpec::default()).await;
        for key in [Some("k-1"), Some("k-1"), Some("k-2"), None] {
            let reply = webhook_post(srv.addr, key).await;
            assert_eq!(reply.status, 200);
            assert_eq!(reply.json(), json!({"ok": true}));
        }
        let bad = request(srv.addr, "POST", "/webhook/ops", &[JSON], "{not json").await;
        assert_eq!(bad.status, 400);
        let s = stats(srv.addr).await;
        assert_eq!(s["accepted"]["webhook"], 4);
        assert_eq!(s["duplicates"]["webhook"], 1);
        assert_eq!(s["duplicate_reasons"]["idempotency_key"], 1);
        assert_eq!(s["webhook_without_idempotency_key"], 1);
        let samples = s["duplicate_samples"].as_array().expect("samples");
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0]["idempotency_key"], "k-1");
    }

    #[tokio::test]
    async fn stats_count_duplicate_recipient_body_pairs_and_reset() {
        let srv = start(FaultSpec::default()).await;
        let a = "+15551230001";
        assert_eq!(twilio(srv.addr, Some(SID), a, "Resolved").await.status, 201);
        assert_eq!(twilio(srv.addr, Some(SID), a, "Resolved").await.status, 201);
        assert_eq!(
            twilio(srv.addr, Some(SID), a, "Another update")
                .await
                .status,
            201
        );
        assert_eq!(
            twilio(srv.addr, Some(SID), "+15551230002", "Resolved")
                .await
                .status,
            201
        );
        // Same person and text through the other provider (failover) is a duplicate too.
        vonage(
            srv.addr,
            &[
                ("to", "15551230001"),
                ("text", "Resolved"),
                ("client-ref", "r1"),
            ],
        )
        .await;
        // Same client-ref with new text is a duplicate by client-ref.
        vonage(
            srv.addr,
            &[("to", "15551230003"), ("text", "New"), ("client-ref", "r1")],
        )
        .await;

        let s = stats(srv.addr).await;
        assert_eq!(s["accepted"]["twilio"], 4);
        assert_eq!(s["accepted"]["vonage"], 2);
        assert_eq!(s["duplicates"]["twilio"], 1);
        assert_eq!(s["duplicates"]["vonage"], 2);
        assert_eq!(s["duplicates"]["total"], 3);
        assert_eq!(s["duplicate_reasons"]["recipient_body"], 2);
        assert_eq!(s["duplicate_reasons"]["client_ref"], 1);
        assert_eq!(s["unique_recipients"]["twilio"], 2);
        assert_eq!(s["unique_recipients"]["vonage"], 2);
        assert_eq!(s["unique_recipients"]["total"], 3);
        assert_eq!(s["duplicate_samples"].as_array().map(Vec::len), Some(3));
        assert_eq!(s["duplicate_samples"][0]["recipient"], a);

        let reset = request(srv.addr, "POST", "/stats/reset", &[], "").await;
        assert_eq!(reset.status, 200);
        let s = stats(srv.addr).await;
        assert_eq!(s["requests"]["total"], 0);
        assert_eq!(s["duplicates"]["total"], 0);
        assert_eq!(s["unique_recipients"]["total"], 0);
        assert_eq!(s["duplicate_samples"], json!([]));
        // After a reset the same pair is new again.
        twilio(srv.addr, Some(SID), a, "Resolved").await;
        assert_eq!(stats(srv.addr).await["duplicates"]["total"], 0);
    }

    #[tokio::test]
    async fn burst_429_throttles_exactly_length_after_every_n_accepted() {
        let date = "Wed, 21 Oct 2015 07:28:00 GMT";
        let spec = FaultSpec {
            burst_429: Some(BurstSpec {
                every: 3,
                length: 2,
                retry_after: date.to_owned(),
            }),
            ..FaultSpec::default()
        };
        let srv = start(spec).await;
        let mut codes = Vec::new();
        for i in 0..10 {
            let reply = twilio(srv.addr, Some(SID), "+15551230001", &format!("n{i}")).await;
            if reply.status == 429 {
                assert_eq!(reply.header("retry-after"), Some(date));
                let v = reply.json();
                assert_eq!(v["code"], 20429);
                assert_eq!(v["message"], "Too Many Requests");
                assert_eq!(v["status"], 429);
            }
            codes.push(reply.status);
        }
        assert_eq!(codes, [201, 201, 201, 429, 429, 201, 201, 201, 429, 429]);
        let s = stats(srv.addr).await;
        assert_eq!(s["accepted"]["twilio"], 6);
        assert_eq!(s["faults"]["throttle"], 4);
        assert_eq!(s["requests"]["twilio"], 10);
    }

    #[tokio::test]
    async fn error_rate_one_fails_every_provider_request_but_not_control_plane() {
        let spec = FaultSpec {
            error_rate: 1.0,
            ..FaultSpec::default()
        };
        let srv = start(spec).await;
        for _ in 0..5 {
            let reply = twilio(srv.addr, Some(SID), "+15551230001", "x").await;
            assert_eq!(reply.status, 500);
            assert_eq!(reply.json()["code"], 20500);
            assert_eq!(webhook_post(srv.addr, Some("k")).await.status, 500);
            let v = vonage(srv.addr, &[("to", "447700900000"), ("text", "x")]).await;
            assert_eq!(v.status, 200);
            assert_eq!(v.json()["messages"][0]["status"], "5");
        }
        assert_eq!(
            request(srv.addr, "GET", "/healthz", &[], "").await.status,
            200
        );
        assert_eq!(
            request(srv.addr, "GET", "/faults", &[], "").await.status,
            200
        );
        let s = stats(srv.addr).await;
        assert_eq!(s["accepted"]["total"], 0);
        assert_eq!(s["requests"]["total"], 15);
        assert_eq!(s["faults"]["error"], 15);
    }

    #[tokio::test]
    async fn reset_rate_one_resets_connection_without_answer() {
        let spec = FaultSpec {
            reset_rate: 1.0,
            ..FaultSpec::default()
        };
        let srv = start(spec).await;
        let form = form_encode(&[
            ("To", "+15551230001"),
            ("From", "+15550009999"),
            ("Body", "x"),
        ]);
        let auth = format!("Basic {}", base64_encode(format!("{SID}:t").as_bytes()));
        let path = format!("/2010-04-01/Accounts/{SID}/Messages.json");
        let outcome = raw_request(
            srv.addr,
            "POST",
            &path,
            &[FORM, ("Authorization", &auth)],
            &form,
        )
        .await;
        match outcome {
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}"),
            Ok(bytes) => panic!(
                "expected a reset, got {} bytes: {:?}",
                bytes.len(),
                String::from_utf8_lossy(&bytes)
            ),
        }
        let hook = raw_request(srv.addr, "POST", "/webhook/a", &[JSON], "{}").await;
        assert!(hook.is_err(), "webhook connection should be reset too");
        // Control plane is never reset.
        assert_eq!(
            request(srv.addr, "GET", "/healthz", &[], "").await.status,
            200
        );
        let s = stats(srv.addr).await;
        assert_eq!(s["faults"]["reset"], 2);
        assert_eq!(s["accepted"]["total"], 0);
    }

    #[tokio::test]
    async fn hang_rate_one_never_answers() {
        let spec = FaultSpec {
            hang_rate: 1.0,
            ..FaultSpec::default()
        };
        let srv = start(spec).await;
        let addr = srv.addr;
        let pending =
            tokio::spawn(
                async move { raw_request(addr, "POST", "/webhook/a", &[JSON], "{}").await },
            );
        // Wait until the server has registered the hang (bounded polling).
        let mut hung = 0;
        for _ in 0..500 {
            hung = stats(addr).await["faults"]["hang"].as_u64().unwrap_or(0);
            if hung == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(hung, 1);
        assert!(
            !pending.is_finished(),
            "a hung request must not be answered"
        );
        pending.abort();
    }

    #[tokio::test]
    async fn faults_round_trip_and_validation() {
        let srv = start(FaultSpec::default()).await;
        let initial = request(srv.addr, "GET", "/faults", &[], "").await;
        assert_eq!(
            initial.json(),
            serde_json::to_value(FaultSpec::default()).expect("serializable")
        );
        let body = json!({
            "latency_ms": 0,
            "error_rate": 0.5,
            "burst_429": {"every": 4, "length": 2, "retry_after": "Wed, 21 Oct 2015 07:28:00 GMT"},
            "hang_rate": 0.0,
            "reset_rate": 0.25
        });
        let set = request(srv.addr, "POST", "/faults", &[JSON], &body.to_string()).await;
        assert_eq!(set.status, 200, "{}", set.body);
        assert_eq!(set.json(), body);
        let got = request(srv.addr, "GET", "/faults", &[], "").await;
        assert_eq!(got.json(), body);

        for bad in [
            r#"{"error_rate": 2.0}"#,
            r#"{"burst_429": {"every": 0, "length": 1}}"#,
            r#"{"eror_rate": 0.1}"#,
            "not json",
        ] {
            let reply = request(srv.addr, "POST", "/faults", &[JSON], bad).await;
            assert_eq!(reply.status, 400, "{bad}");
            assert!(reply.json()["error"].as_str().is_some(), "{bad}");
        }
        // Rejected updates leave the previous set in place; {} clears everything.
        assert_eq!(
            request(srv.addr, "GET", "/faults", &[], "").await.json(),
            body
        );
        let cleared = request(srv.addr, "POST", "/faults", &[JSON], "{}").await;
        assert_eq!(cleared.status, 200);
        assert_eq!(
            twilio(srv.addr, Some(SID), "+15551230001", "ok")
                .await
                .status,
            201
        );
    }
}
