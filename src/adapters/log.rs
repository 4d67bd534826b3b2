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
