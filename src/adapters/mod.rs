//! Adapters: one module per provider kind, each the same shape — its configuration, the request
//! it builds, and the classification of the provider's answer into an [`Outcome`]:
//! `Delivered(receipt)`, `Retry(reason, after)` or `Rejected(reason)`.

pub mod bluesky;
pub mod discord;
pub mod email;
pub mod facebook;
pub mod http;
pub mod log;
pub mod mastodon;
pub mod matrix;
mod outcome;
pub mod retry_after;
pub mod slack;
pub mod teams;
pub mod telegram;
pub mod twilio;
pub mod vonage;
pub mod webhook;
pub mod x;

pub use outcome::{
    exchange, transport_failure, HttpReply, OutMessage, Outcome, Recipient, ThreadRef,
};

use crate::channels::{Channel, Kind, Settings};
use std::path::Path;

/// A channel's adapter (enum dispatch: one variant per provider kind).
pub enum Adapter {
    Log(log::LogAdapter),
    Email(Box<email::EmailAdapter>),
    Twilio(twilio::TwilioAdapter),
    Vonage(vonage::VonageAdapter),
    Webhook(webhook::WebhookAdapter),
    Mastodon(mastodon::MastodonAdapter),
    Bluesky(Box<bluesky::BlueskyAdapter>),
    X(x::XAdapter),
    Facebook(facebook::FacebookAdapter),
    Slack(slack::SlackAdapter),
    Teams(teams::TeamsAdapter),
    Discord(discord::DiscordAdapter),
    Telegram(telegram::TelegramAdapter),
    Matrix(matrix::MatrixAdapter),
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

        pub async fn send(&self, msg: &OutMessage) -> Outcome {
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
            Settings::Mastodon { token, visibility } => {
                Adapter::Mastodon(mastodon::MastodonAdapter::new(
                    mastodon::MastodonConfig {
                        base_url: base(""),
                        token: token.clone(),
                        visibility: visibility.clone(),
                        timeout: channel.send_timeout,
                    },
                    http_client(channel).map_err(err)?,
                ))
            }
            Settings::Bluesky {
                identifier,
                password,
            } => Adapter::Bluesky(Box::new(bluesky::BlueskyAdapter::new(
                bluesky::BlueskyConfig {
                    base_url: base(bluesky::DEFAULT_BASE_URL),
                    identifier: identifier.clone(),
                    password: password.clone(),
                    timeout: channel.send_timeout,
                },
                http_client(channel).map_err(err)?,
            ))),
            Settings::X {
                consumer_key,
                consumer_secret,
                access_token,
                access_token_secret,
            } => Adapter::X(x::XAdapter::new(
                x::XConfig {
                    base_url: base(x::DEFAULT_BASE_URL),
                    credentials: x::OAuth1Credentials {
                        consumer_key: consumer_key.clone(),
                        consumer_secret: consumer_secret.clone(),
                        token: access_token.clone(),
                        token_secret: access_token_secret.clone(),
                    },
                    timeout: channel.send_timeout,
                },
                http_client(channel).map_err(err)?,
            )),
            Settings::Facebook {
                page_id,
                page_token,
                graph_version,
            } => Adapter::Facebook(facebook::FacebookAdapter::new(
                facebook::FacebookConfig {
                    base_url: base(facebook::DEFAULT_BASE_URL),
                    graph_version: graph_version.clone(),
                    page_id: page_id.clone(),
                    page_token: page_token.clone(),
                    timeout: channel.send_timeout,
                },
                http_client(channel).map_err(err)?,
            )),
            Settings::ChatWebhook { url } => {
                let http = http_client(channel).map_err(err)?;
                let (webhook_url, timeout) = (url.clone(), channel.send_timeout);
                match channel.kind {
                    Kind::Slack => Adapter::Slack(slack::SlackAdapter::new(
                        slack::SlackConfig {
                            webhook_url,
                            timeout,
                        },
                        http,
                    )),
                    Kind::Teams => Adapter::Teams(teams::TeamsAdapter::new(
                        teams::TeamsConfig {
                            webhook_url,
                            timeout,
                        },
                        http,
                    )),
                    Kind::Discord => Adapter::Discord(discord::DiscordAdapter::new(
                        discord::DiscordConfig {
                            webhook_url,
                            timeout,
                        },
                        http,
                    )),
                    other => {
                        return Err(err(format!(
                            "a {} channel has no webhook adapter",
                            other.as_str()
                        )))
                    }
                }
            }
            Settings::Telegram { bot_token, chat_id } => {
                Adapter::Telegram(telegram::TelegramAdapter::new(
                    telegram::TelegramConfig {
                        base_url: base(telegram::DEFAULT_BASE_URL),
                        bot_token: bot_token.clone(),
                        chat_id: chat_id.clone(),
                        timeout: channel.send_timeout,
                    },
                    http_client(channel).map_err(err)?,
                ))
            }
            Settings::Matrix {
                access_token,
                room_id,
            } => Adapter::Matrix(matrix::MatrixAdapter::new(
                matrix::MatrixConfig {
                    base_url: base(""),
                    access_token: access_token.clone(),
                    room_id: room_id.clone(),
                    timeout: channel.send_timeout,
                },
                http_client(channel).map_err(err)?,
            )),
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
                    connections: channel.concurrency,
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
            Adapter::Mastodon(a) => a.send(msg).await,
            Adapter::Bluesky(a) => a.send(msg).await,
            Adapter::X(a) => a.send(msg).await,
            Adapter::Facebook(a) => a.send(msg).await,
            Adapter::Slack(a) => a.send(msg).await,
            Adapter::Teams(a) => a.send(msg).await,
            Adapter::Discord(a) => a.send(msg).await,
            Adapter::Telegram(a) => a.send(msg).await,
            Adapter::Matrix(a) => a.send(msg).await,
            #[cfg(test)]
            Adapter::Scripted(a) => a.send(msg).await,
        }
    }

    /// Verifies the channel's credentials against its platform without posting.
    pub async fn check(&self) -> Check {
        match self {
            Adapter::Mastodon(a) => a.check().await,
            Adapter::Bluesky(a) => a.check().await,
            Adapter::X(a) => a.check().await,
            Adapter::Facebook(a) => a.check().await,
            Adapter::Slack(a) => a.check().await,
            Adapter::Teams(a) => a.check().await,
            Adapter::Discord(a) => a.check().await,
            Adapter::Telegram(a) => a.check().await,
            Adapter::Matrix(a) => a.check().await,
            _ => Check::Unchecked("no credential check for this kind".into()),
        }
    }

    /// Learns what the platform says about itself before the first send (a Mastodon
    /// instance's length limits). Best effort: on failure the defaults stay.
    pub async fn warm_up(&self) {
        if let Adapter::Mastodon(a) = self {
            a.fetch_limits().await;
        }
    }

    /// A length rule the platform announced, replacing the kind's default one.
    pub fn rule(&self) -> Option<crate::render::rules::ChannelRule> {
        match self {
            Adapter::Mastodon(a) => a.rule(),
            _ => None,
        }
    }
}
