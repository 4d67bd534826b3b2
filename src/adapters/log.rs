//! The `log` channel: writes each rendered message as one JSON line to
//! `<data>/outbox/<channel>.jsonl`. It needs no credentials, so the shipped `channels/` shows a
//! newcomer a complete fan-out at once, and tests can read exactly what would have been sent.

use super::{BoxFuture, Deliver, OutMessage, Outcome, Recipient};
use serde_json::json;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Appends messages to one file.
pub struct LogAdapter {
    channel: String,
    path: PathBuf,
    file: Mutex<File>,
}

impl LogAdapter {
    /// Opens (creating) `<dir>/<channel>.jsonl` for appending.
    pub fn open(dir: &Path, channel: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{channel}.jsonl"));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(LogAdapter {
            channel: channel.to_owned(),
            path,
            file: Mutex::new(file),
        })
    }

    /// Writes one line: the message as it would have been sent.
    pub fn send(&self, msg: &OutMessage) -> Outcome {
        let recipient = match &msg.recipient {
            Recipient::Email(a) | Recipient::Phone(a) => a.as_str(),
            Recipient::Endpoint => "endpoint",
        };
        let line = json!({
            "channel": self.channel,
            "idempotency_key": msg.idempotency_key,
            "recipient": recipient,
            "locale": msg.locale,
            "subject": msg.subject,
            "text": msg.text,
            "unsubscribe_url": msg.unsubscribe_url,
            "sent_at": chrono::Utc::now(),
        });
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        let written = match self.file.lock() {
            Ok(mut f) => f.write_all(&bytes),
            Err(poisoned) => poisoned.into_inner().write_all(&bytes),
        };
        match written {
            Ok(()) => Outcome::Delivered { receipt: None },
            Err(e) => Outcome::Retry {
                reason: format!("cannot write {}: {e}", self.path.display()),
                after: None,
            },
        }
    }
}

/// Not HTTP: a line appended to a file; the same [`Deliver`] shape as every adapter.
impl Deliver for LogAdapter {
    fn send<'a>(&'a self, msg: &'a OutMessage) -> BoxFuture<'a, Outcome> {
        let outcome = LogAdapter::send(self, msg);
        Box::pin(async move { outcome })
    }
}

use crate::channels::{Audiences, KindSettings, KindSpec, Reach, Resolve, Settings};
use crate::render::preview::Platform;

/// The `log` kind: only the common keys; `render` picks the platform it renders for.
pub static KIND: KindSpec = KindSpec {
    name: "log",
    platform: Platform::Sms,
    render_key: true,
    audience: Audiences::Either,
    reach: Reach::Everyone,
    social: false,
    threads: false,
    rate: "1000/s",
    declare,
};

/// A `log` channel has only the common keys.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LogFile {}

fn declare(table: toml::Table, r: &mut Resolve<'_>) -> Result<Option<Settings>, String> {
    let LogFile {} = r.declared(table)?;
    Ok(Some(Settings::new(LogSettings)))
}

/// A log channel's settings: none.
#[derive(Debug)]
pub struct LogSettings;

impl KindSettings for LogSettings {
    fn build(&self, s: &super::Setup<'_>) -> Result<Box<dyn Deliver>, String> {
        LogAdapter::open(&s.data_dir.join("outbox"), &s.channel.name)
            .map(|a| Box::new(a) as Box<dyn Deliver>)
            .map_err(|e| format!("cannot open its outbox file: {e}"))
    }
}
