//! The one adapter shape, and the one send path.
//!
//! An HTTP provider implements [`Provider`]: it builds the request for a message
//! ([`Provider::request`]), classifies the answer into an [`Outcome`] ([`Provider::classify`]),
//! and checks its credentials without posting ([`Provider::check`]). Everything else about a send
//! is the same for every provider and lives here, once, in [`HttpAdapter::send`]: the rate gate
//! (a platform that said "no requests left until …" is not asked again before then), the HTTP
//! exchange, renewing an expired session once, and the clamp on a provider-given `Retry-After`.
//! The bound on one send (the channel's `send_timeout`) is [`super::Adapter`]'s, around all of it.
//!
//! Channels that are not HTTP (the SMTP email adapter, the log adapter) implement the object-safe
//! [`Deliver`] directly: the same send / check shape without the HTTP request in between.

use super::http::{snippet, RateGate};
use super::outcome::{exchange, HttpReply, OutMessage, Outcome};
use super::retry_after::{clamp_retry_after, DEFAULT_MAX_RETRY_AFTER};
use super::Check;
use crate::dispatch::Clock;
use crate::render::rules::ChannelRule;
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// The request that sends a message, or the outcome without sending.
pub type Request = Result<reqwest::RequestBuilder, Outcome>;

/// A boxed, sendable future: what the object-safe [`Deliver`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a channel that does not say otherwise answers to a credential check.
pub fn unchecked() -> Check {
    Check::Unchecked("no credential check for this kind".into())
}

/// A channel's HTTP client: its own connection pool, no redirects (a webhook must name its final
/// URL; providers never redirect). The bound on a whole send is the [`super::Adapter`]'s.
#[derive(Debug, Clone)]
pub struct Http {
    /// The pooled client; requests are built on it.
    pub client: reqwest::Client,
    /// The server's one clock: signed timestamps, record times and rate-limit windows read
    /// "now" here (in production the system's wall clock, which providers compare against).
    pub clock: Clock,
}

impl Http {
    /// The send context's "now".
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Sends `request` and reads the whole answer.
    pub async fn exchange(&self, request: reqwest::RequestBuilder) -> Result<HttpReply, Outcome> {
        exchange(request).await
    }
}

/// A credential check's read: the JSON body of a 2xx answer to `request`, or the failed
/// [`Check`] saying what `what` (the endpoint) answered, or why it could not be reached.
pub async fn read(
    http: &Http,
    request: reqwest::RequestBuilder,
    what: &str,
) -> Result<serde_json::Value, Check> {
    match http.exchange(request).await {
        Ok(r) if (200..300).contains(&r.status) => {
            Ok(serde_json::from_str(&r.body).unwrap_or_default())
        }
        Ok(r) => Err(Check::Failed(format!(
            "{what} answered HTTP {}: {}",
            r.status,
            snippet(&r.body)
        ))),
        Err(o) => Err(Check::Failed(o.reason().to_owned())),
    }
}

/// One HTTP provider: what differs between Slack, Twilio, Mastodon and the others.
pub trait Provider: Send + Sync + 'static {
    /// The platform's name, as reasons say it ("Slack answered HTTP 404: …").
    const NAME: &'static str;

    /// The request that sends `msg`. `Err` is the outcome without sending: `Rejected` for a
    /// message this channel can never send, `Retry` when a prerequisite (a log-in) failed.
    fn request(&self, http: &Http, msg: &OutMessage) -> impl Future<Output = Request> + Send;

    /// The outcome of the platform's answer. Pure.
    fn classify(&self, reply: &HttpReply, now: DateTime<Utc>) -> Outcome;

    /// Verifies the credentials against the platform without posting.
    fn check(&self, _http: &Http) -> impl Future<Output = Check> + Send {
        async { unchecked() }
    }

    /// How long the platform has no requests left for this account, from an answer's rate-limit
    /// headers; the send path then defers sends until the window resets.
    fn rate_window(&self, _headers: &HeaderMap, _now: DateTime<Utc>) -> Option<Duration> {
        None
    }

    /// Whether `reply` says the session expired and it was renewed (`Ok(true)`: the request is
    /// then built and sent once more). `Err` is the send's outcome when renewing failed (a
    /// network error stays a `Retry`, a refused log-in a `Rejected`).
    fn renew(
        &self,
        _http: &Http,
        _reply: &HttpReply,
    ) -> impl Future<Output = Result<bool, Outcome>> + Send {
        async { Ok(false) }
    }

    /// Learns what the platform says about itself before the first send. Best effort.
    fn warm_up(&self, _http: &Http) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// A length rule the platform announced, replacing the kind's default one.
    fn rule(&self) -> Option<ChannelRule> {
        None
    }
}

/// A [`Provider`] with its client and its rate gate: the one send path.
#[derive(Debug)]
pub struct HttpAdapter<P> {
    /// The provider.
    pub provider: P,
    http: Http,
    gate: RateGate,
}

impl<P: Provider> HttpAdapter<P> {
    /// Wraps a provider and its channel's client, on the system's wall clock (see
    /// [`HttpAdapter::with_clock`]).
    pub fn new(provider: P, client: reqwest::Client) -> Self {
        let clock = Clock::wall();
        HttpAdapter {
            provider,
            http: Http { client, clock },
            gate: RateGate::default(),
        }
    }

    /// The same on `clock` (the server's one clock).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.http.clock = clock;
        self
    }

    /// The channel's client.
    pub fn http(&self) -> &Http {
        &self.http
    }

    /// Verifies the credentials without posting.
    pub async fn check(&self) -> Check {
        self.provider.check(&self.http).await
    }

    /// Sends one message: the rate gate, the request, the exchange, one renewal of an expired
    /// session, the gate's note of the answer's rate-limit window, the classification.
    pub async fn send(&self, msg: &OutMessage) -> Outcome {
        if let Some(o) = self.gate.deferred(P::NAME) {
            return o;
        }
        let mut renewed = false;
        loop {
            let request = match self.provider.request(&self.http, msg).await {
                Ok(r) => r,
                Err(o) => return o,
            };
            let reply = match self.http.exchange(request).await {
                Ok(r) => r,
                Err(o) => return o,
            };
            // Rate-limit resets are the provider's own instants (epoch seconds, dates),
            // measured against the injected clock (the wall clock in production).
            let now = self.http.now();
            if let Some(d) = self.provider.rate_window(&reply.headers, now) {
                self.gate.close_for(d);
            }
            if !renewed {
                match self.provider.renew(&self.http, &reply).await {
                    Ok(true) => {
                        renewed = true;
                        continue;
                    }
                    Ok(false) => {}
                    Err(o) => return o,
                }
            }
            return clamp(self.provider.classify(&reply, now));
        }
    }
}

/// A provider-given delay is never longer than [`DEFAULT_MAX_RETRY_AFTER`].
fn clamp(outcome: Outcome) -> Outcome {
    match outcome {
        Outcome::Retry {
            reason,
            after: Some(d),
        } => Outcome::Retry {
            reason,
            after: Some(clamp_retry_after(d, DEFAULT_MAX_RETRY_AFTER)),
        },
        other => other,
    }
}

/// The object-safe side of an adapter: what the dispatcher holds, one per channel.
pub trait Deliver: Send + Sync {
    /// Sends one message.
    fn send<'a>(&'a self, msg: &'a OutMessage) -> BoxFuture<'a, Outcome>;

    /// Verifies the credentials without posting.
    fn check(&self) -> BoxFuture<'_, Check> {
        Box::pin(async { unchecked() })
    }

    /// Learns what the platform says about itself before the first send.
    fn warm_up(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// A length rule the platform announced.
    fn rule(&self) -> Option<ChannelRule> {
        None
    }
}

impl<P: Provider> Deliver for HttpAdapter<P> {
    fn send<'a>(&'a self, msg: &'a OutMessage) -> BoxFuture<'a, Outcome> {
        Box::pin(HttpAdapter::send(self, msg))
    }

    fn check(&self) -> BoxFuture<'_, Check> {
        Box::pin(self.provider.check(&self.http))
    }

    fn warm_up(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.provider.warm_up(&self.http))
    }

    fn rule(&self) -> Option<ChannelRule> {
        self.provider.rule()
    }
}

impl<T: Deliver + ?Sized> Deliver for std::sync::Arc<T> {
    fn send<'a>(&'a self, msg: &'a OutMessage) -> BoxFuture<'a, Outcome> {
        (**self).send(msg)
    }

    fn check(&self) -> BoxFuture<'_, Check> {
        (**self).check()
    }

    fn warm_up(&self) -> BoxFuture<'_, ()> {
        (**self).warm_up()
    }

    fn rule(&self) -> Option<ChannelRule> {
        (**self).rule()
    }
}
