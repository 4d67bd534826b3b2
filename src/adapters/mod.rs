//! Adapters: one module per provider kind, each the same shape — its configuration, a `build`
//! from the channel's settings, and (for HTTP providers) a [`Provider`]: the request it builds,
//! the classification of the provider's answer into an [`Outcome`] (`Delivered(receipt)`,
//! `Retry(reason, after)` or `Rejected(reason)`) and a credential check that posts nothing. The
//! one send path ([`HttpAdapter`], in `provider.rs`) owns the rate gate, the exchange and the
//! `Retry-After` clamp; [`Adapter`] owns the send timeout. Adding a kind: docs/CHANNELS.md.

pub mod bluesky;
pub mod discord;
pub mod email;
pub mod facebook;
pub mod http;
pub mod log;
pub mod mastodon;
pub mod matrix;
mod outcome;
pub mod provider;
pub mod retry_after;
pub mod slack;
pub mod teams;
pub mod telegram;
#[cfg(test)]
mod tests_new_kind;
pub mod twilio;
pub mod vonage;
pub mod webhook;
pub mod x;

pub use outcome::{
    exchange, transport_failure, HttpReply, OutMessage, Outcome, Recipient, ThreadRef,
};

/// The channel kinds crier ships, one registration line each: a kind is its module (a
/// [`KindSpec`] named `KIND`, its declared keys, its settings and its adapter) plus its line
/// here. The order is the order kinds are listed in, and tried in for a sign-up's confirmation.
pub static KINDS: &[&KindSpec] = &[
    &log::KIND,
    &email::KIND,
    &twilio::KIND,
    &vonage::KIND,
    &webhook::KIND,
    &mastodon::KIND,
    &bluesky::KIND,
    &x::KIND,
    &facebook::KIND,
    &slack::KIND,
    &teams::KIND,
    &discord::KIND,
    &telegram::KIND,
    &matrix::KIND,
];

/// Why a social or chat kind takes `audience = "fixed"` only, after "a <kind> channel".
pub const SOCIAL_TARGET: &str = "posts to its own account or room";

pub use provider::{BoxFuture, Deliver, Http, HttpAdapter, Provider, Request};

use crate::channels::{Channel, KindSpec};
use crate::dispatch::Clock;
use std::path::Path;
use std::time::Duration;

/// A channel's adapter: one [`Deliver`] (for HTTP providers, a [`Provider`] on the one send
/// path, [`HttpAdapter`]) under the channel's send timeout, the one bound on a send.
pub struct Adapter {
    inner: Box<dyn Deliver>,
    timeout: Duration,
}

#[cfg(test)]
pub mod scripted {
    //! A scripted adapter for dispatcher tests (paused time): a [`Deliver`] like any other.
    use super::provider::{BoxFuture, Deliver};
    use super::{OutMessage, Outcome};
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// One scripted answer.
    pub enum Step {
        Answer(Outcome),
        /// Never answers (the adapter's send timeout must fire).
        Hang,
        /// Answers after a while, as a provider over the network does.
        Slow(std::time::Duration, Outcome),
    }

    /// Answers in order; when the script runs out, delivers.
    #[derive(Default)]
    pub struct Scripted {
        pub script: Mutex<VecDeque<Step>>,
        pub sent: Mutex<Vec<(tokio::time::Instant, OutMessage)>>,
    }

    impl Scripted {
        pub fn new(steps: Vec<Step>) -> Self {
            Scripted {
                script: Mutex::new(steps.into()),
                sent: Mutex::new(Vec::new()),
            }
        }
    }

    impl Deliver for Scripted {
        fn send<'a>(&'a self, msg: &'a OutMessage) -> BoxFuture<'a, Outcome> {
            Box::pin(async move {
                self.sent
                    .lock()
                    .unwrap()
                    .push((tokio::time::Instant::now(), msg.clone()));
                let step = self.script.lock().unwrap().pop_front();
                match step {
                    Some(Step::Answer(o)) => o,
                    Some(Step::Hang) => std::future::pending().await,
                    Some(Step::Slow(d, o)) => {
                        tokio::time::sleep(d).await;
                        o
                    }
                    None => Outcome::Delivered { receipt: None },
                }
            })
        }
    }
}

/// What `crier channels check` found out about one channel's credentials, without posting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The platform accepted the credentials; what it said about the account.
    Ok(String),
    /// The platform refused them, or could not be reached; why (never the secret itself).
    Failed(String),
    /// This kind cannot be checked without sending something; why.
    Unchecked(String),
}

/// The verdict on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelCheck {
    pub name: String,
    pub kind: String,
    /// `ok`, `failed`, `skipped` (not active) or `unchecked` (cannot be checked without posting).
    pub status: &'static str,
    pub detail: String,
}

/// Checks one active channel's credentials without posting: what `crier channels check` and
/// the console's channels page (docs/CONSOLE.md) both run. Social kinds ask the platform
/// ([`Adapter::check`]); the others cannot be checked without sending (`unchecked`).
pub async fn check_channel(ch: &Channel, data_dir: &Path, clock: Clock) -> ChannelCheck {
    let verdict = |status: &'static str, detail: String| ChannelCheck {
        name: ch.name.clone(),
        kind: ch.kind.as_str().to_owned(),
        status,
        detail,
    };
    if !ch.kind.is_social() {
        return verdict(
            "unchecked",
            format!("no credential check for {} channels", ch.kind.as_str()),
        );
    }
    let adapter = match Adapter::build(ch, data_dir, clock) {
        Ok(a) => a,
        Err(e) => return verdict("failed", e.message),
    };
    match adapter.check().await {
        Check::Ok(d) => verdict("ok", d),
        Check::Failed(d) => verdict("failed", d),
        Check::Unchecked(d) => verdict("unchecked", d),
    }
}

/// Why an adapter could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("channel {channel}: {message}")]
pub struct AdapterError {
    pub channel: String,
    pub message: String,
}

/// The HTTP client of one channel: its own connection pool, a connect timeout, and no redirects
/// (a webhook must name its final URL; providers never redirect). The bound on a whole send is
/// the [`Adapter`]'s.
fn http_client(channel: &Channel) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(channel.send_timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(channel.concurrency)
        .user_agent(concat!("crier/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build its HTTP client: {e}"))
}

/// What building one channel's adapter needs: the channel and the data folder.
pub struct Setup<'a> {
    pub channel: &'a Channel,
    pub data_dir: &'a Path,
    /// The server's one clock (the CLI's own wall clock for `channels check`).
    pub clock: Clock,
}

impl Setup<'_> {
    /// `provider` on the one HTTP send path, with this channel's own client.
    pub fn http<P: Provider>(&self, provider: P) -> Result<Box<dyn Deliver>, String> {
        Ok(Box::new(
            HttpAdapter::new(provider, http_client(self.channel)?).with_clock(self.clock),
        ))
    }
}

impl Adapter {
    /// An adapter sending through `inner`, each send bounded by `timeout`.
    pub fn new(inner: impl Deliver + 'static, timeout: Duration) -> Adapter {
        Adapter {
            inner: Box::new(inner),
            timeout,
        }
    }

    /// Builds the adapter for a channel, once: transports and HTTP clients pool connections.
    /// Must run inside a tokio runtime (the SMTP pool spawns a task). The kind's own settings
    /// build its sender ([`crate::channels::KindSettings::build`]).
    pub fn build(
        channel: &Channel,
        data_dir: &Path,
        clock: Clock,
    ) -> Result<Adapter, AdapterError> {
        let setup = Setup {
            channel,
            data_dir,
            clock,
        };
        let inner = channel
            .settings
            .build(&setup)
            .map_err(|message| AdapterError {
                channel: channel.name.clone(),
                message,
            })?;
        Ok(Adapter {
            inner,
            timeout: channel.send_timeout,
        })
    }

    /// Sends one message, under the channel's send timeout.
    pub async fn send(&self, msg: &OutMessage) -> Outcome {
        match tokio::time::timeout(self.timeout, self.inner.send(msg)).await {
            Ok(o) => o,
            Err(_) => Outcome::retry("timed out"),
        }
    }

    /// Verifies the channel's credentials against its platform without posting.
    pub async fn check(&self) -> Check {
        match tokio::time::timeout(self.timeout, self.inner.check()).await {
            Ok(c) => c,
            Err(_) => Check::Failed("timed out".into()),
        }
    }

    /// Learns what the platform says about itself before the first send (a Mastodon
    /// instance's length limits). Best effort: on failure the defaults stay.
    pub async fn warm_up(&self) {
        let _ = tokio::time::timeout(self.timeout, self.inner.warm_up()).await;
    }

    /// A length rule the platform announced, replacing the kind's default one.
    pub fn rule(&self) -> Option<crate::render::rules::ChannelRule> {
        self.inner.rule()
    }
}
