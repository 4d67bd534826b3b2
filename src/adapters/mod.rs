//! Adapters: one module per provider kind, each the same shape — its configuration, the request
//! it builds, and the classification of the provider's answer into an [`Outcome`]:
//! `Delivered(receipt)`, `Retry(reason, after)` or `Rejected(reason)`.

pub mod log;
mod outcome;

pub use outcome::{OutMessage, Outcome, Recipient};

use crate::channels::{Channel, Settings};
use std::path::Path;

/// A channel's adapter (enum dispatch: one variant per provider kind).
pub enum Adapter {
    Log(log::LogAdapter),
}

/// Why an adapter could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("channel {channel}: {message}")]
pub struct AdapterError {
    pub channel: String,
    pub message: String,
}

impl Adapter {
    /// Builds the adapter for a channel (once: transports and HTTP clients pool connections).
    pub fn build(channel: &Channel, data_dir: &Path) -> Result<Adapter, AdapterError> {
        let err = |message: String| AdapterError {
            channel: channel.name.clone(),
            message,
        };
        match &channel.settings {
            Settings::Log => log::LogAdapter::open(&data_dir.join("outbox"), &channel.name)
                .map(Adapter::Log)
                .map_err(|e| err(format!("cannot open its outbox file: {e}"))),
            other => Err(err(format!(
                "the {other:?} adapter is not available in this build"
            ))),
        }
    }

    /// Sends one message.
    pub async fn send(&self, msg: &OutMessage) -> Outcome {
        match self {
            Adapter::Log(a) => a.send(msg),
        }
    }
}
