//! Adapters: one module per provider kind, each the same shape — its configuration, the request
//! it builds, and the classification of the provider's answer into an [`Outcome`]:
//! `Delivered(receipt)`, `Retry(reason, after)` or `Rejected(reason)`.

pub mod email;
pub mod log;
mod outcome;
pub mod retry_after;
pub mod twilio;
pub mod vonage;
pub mod webhook;

pub use outcome::{exchange, transport_failure, HttpReply, OutMessage, Outcome, Recipient};

use crate::channels::{Channel, Settings};
use std::path::Path;

/// A channel's adapter (enum dispatch: one variant per provider kind).
pub enum Adapter {
    Log(log::LogAdapter),
    Email(Box<email::EmailAdapter>),
    Twilio(twilio::TwilioAdapter),
    Vonage(vonage::VonageAdapter),
    Webhook(webhook::WebhookAdapter),
    /// Test double: answers from a script, recording what it was asked to send and when.
    #[cfg(test)]
    Scripted(std::sync::Arc<scripted::Scripted>),
}

#[cfg(test)]
pub mod scripted {
    //! A scripted adapter for dispatcher tests (paused time).
    use super::{OutMessage, Outcome};
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// One scripted answer.
    pub enum Step {
        Answer(Outcome),
        /// Never answers (the dispatcher's send timeout must fire).
        Hang,
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

        pub async fn send(&self, msg: &OutMessage) -> Outcome {
            self.sent
                .lock()
                .unwrap()
                .push((tokio::time::Instant::now(), msg.clone()));
            let step = self.script.lock().unwrap().pop_front();
            match step {
                Some(Step::Answer(o)) => o,
                Some(Step::Hang) => std::future::pending().await,
                None => Outcome::Delivered { receipt: None },
            }
        }
    }
}

/// Why an adapter could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("channel {channel}: {message}")]
pub struct AdapterError {
    pub channel: String,
    pub message: String,
}

/// The HTTP client of one channel: its own connection pool, a timeout (reqwest has none by
/// default), and no redirects (a webhook must name its final URL; providers never redirect).
fn http_client(channel: &Channel) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(channel.send_timeout)
        .connect_timeout(channel.send_timeout.min(std::time::Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(channel.concurrency)
        .user_agent(concat!("crier/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build its HTTP client: {e}"))
}

impl Adapter {
    /// Builds the adapter for a channel, once: transports and HTTP clients pool connections.
    /// Must run inside a tokio runtime (the SMTP pool spawns a task).
    pub fn build(channel: &Channel, data_dir: &Path) -> Result<Adapter, AdapterError> {
        let err = |message: String| AdapterError {
            channel: channel.name.clone(),
            message,
        };
        let base = |default: &str| {
            channel
                .base_url
                .clone()
                .unwrap_or_else(|| default.to_owned())
                .trim_end_matches('/')
                .to_owned()
        };
        Ok(match &channel.settings {
            Settings::Log => log::LogAdapter::open(&data_dir.join("outbox"), &channel.name)
                .map(Adapter::Log)
                .map_err(|e| err(format!("cannot open its outbox file: {e}")))?,
            Settings::Twilio {
                account_sid,
                auth_token,
                from,
                messaging_service_sid,
                status_callback,
            } => {
                let config = twilio::TwilioConfig {
                    base_url: base(twilio::DEFAULT_BASE_URL),
                    account_sid: account_sid.clone(),
                    auth_token: auth_token.clone(),
                    from: from.clone(),
                    messaging_service_sid: messaging_service_sid.clone(),
                    status_callback: status_callback.clone(),
                    timeout: channel.send_timeout,
                };
                config.validate().map_err(|e| err(e.to_string()))?;
                Adapter::Twilio(twilio::TwilioAdapter::new(
                    config,
                    http_client(channel).map_err(err)?,
                ))
            }
            Settings::Vonage {
                api_key,
                api_secret,
                from,
            } => {
                let config = vonage::VonageConfig {
                    base_url: base(vonage::DEFAULT_BASE_URL),
                    api_key: api_key.clone(),
                    api_secret: api_secret.clone(),
                    from: from.clone(),
                    timeout: channel.send_timeout,
                };
                config.validate().map_err(|e| err(e.to_string()))?;
                Adapter::Vonage(vonage::VonageAdapter::new(
                    config,
                    http_client(channel).map_err(err)?,
                ))
            }
            Settings::Webhook { url, secret } => {
                let config = webhook::WebhookConfig {
                    url: url.clone(),
                    secret: secret.as_bytes().to_vec(),
                    timeout: channel.send_timeout,
                };
                Adapter::Webhook(webhook::WebhookAdapter::new(
                    config,
                    http_client(channel).map_err(err)?,
                ))
            }
            Settings::Email {
                host,
                port,
                tls,
                username,
                password,
                from,
                domain,
                ca_file,
            } => {
                let mode = match tls.as_str() {
                    "tls" => email::TlsMode::Tls,
                    "plain" => email::TlsMode::Plain,
                    _ => email::TlsMode::Starttls,
                };
                let ca_pem =
                    match ca_file {
                        Some(p) => Some(std::fs::read(p).map_err(|e| {
                            err(format!("cannot read ca_file {}: {e}", p.display()))
                        })?),
                        None => None,
                    };
                let config = email::EmailConfig {
                    host: host.clone(),
                    port: *port,
                    tls: mode,
                    username: username.clone(),
                    password: password.clone(),
                    from: from.clone(),
                    reply_to: None,
                    domain: domain.clone(),
                    timeout: channel.send_timeout,
                    ca_pem,
                };
                Adapter::Email(Box::new(
                    email::EmailAdapter::new(config).map_err(|e| err(e.to_string()))?,
                ))
            }
        })
    }

    /// Sends one message.
    pub async fn send(&self, msg: &OutMessage) -> Outcome {
        match self {
            Adapter::Log(a) => a.send(msg),
            Adapter::Email(a) => a.send(msg).await,
            Adapter::Twilio(a) => a.send(msg).await,
            Adapter::Vonage(a) => a.send(msg).await,
            Adapter::Webhook(a) => a.send(msg).await,
            #[cfg(test)]
            Adapter::Scripted(a) => a.send(msg).await,
        }
    }
}
