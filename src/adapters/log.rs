//! The `log` channel: writes each rendered message as one JSON line to
//! `<data>/outbox/<channel>.jsonl`. It needs no credentials, so the shipped `channels/` shows a
//! newcomer a complete fan-out at once, and tests can read exactly what would have been sent.

use super::{BoxFuture, Deliver, OutMessage, Outcome, Recipient};
use crate::dispatch::Clock;
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
    /// The server's clock: each line's `sent_at`.
    clock: Clock,
}

impl LogAdapter {
    /// Opens (creating) `<dir>/<channel>.jsonl` for appending; `sent_at` read on `clock`.
    pub fn open(dir: &Path, channel: &str, clock: Clock) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{channel}.jsonl"));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(LogAdapter {
            channel: channel.to_owned(),
            path,
            file: Mutex::new(file),
            clock,
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
            "sent_at": self.clock.now(),
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
        LogAdapter::open(&s.data_dir.join("outbox"), &s.channel.name, s.clock)
            .map(|a| Box::new(a) as Box<dyn Deliver>)
            .map_err(|e| format!("cannot open its outbox file: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn msg(key: &str) -> OutMessage {
        OutMessage {
            idempotency_key: key.into(),
            recipient: Recipient::Endpoint,
            locale: "en".into(),
            subject: None,
            text: "Delays".into(),
            html: None,
            unsubscribe_url: None,
            document: None,
            thread: None,
        }
    }

    /// `sent_at` is the injected clock's, not the wall clock's: an anchored clock in 2001
    /// writes 2001.
    #[test]
    fn sent_at_is_read_on_the_injected_clock() {
        let dir = tempfile::tempdir().unwrap();
        let start = chrono::Utc.with_ymd_and_hms(2001, 2, 3, 4, 5, 6).unwrap();
        let a = LogAdapter::open(dir.path(), "ops", Clock::starting_at(start)).unwrap();
        let msg = msg("k1");
        assert!(matches!(a.send(&msg), Outcome::Delivered { .. }));
        let line = std::fs::read_to_string(dir.path().join("ops.jsonl")).unwrap();
        let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        let sent: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(v["sent_at"].clone()).unwrap();
        assert!(
            sent >= start && sent - start < chrono::Duration::minutes(1),
            "{line}"
        );
    }

    /// Built as the dispatcher builds every channel's adapter ([`super::super::Adapter::build`]),
    /// the log adapter gets the server's clock through the set-up.
    #[tokio::test]
    async fn a_built_log_channel_writes_on_the_clock_it_was_given() {
        use crate::channels::{Audience, Channel, Kind, Rate, Settings as ChannelSettings};
        use crate::domain::Locale;
        use crate::render::preview::Platform;
        let dir = tempfile::tempdir().unwrap();
        let ch = Channel {
            name: "ops".into(),
            kind: Kind::new(&KIND),
            audience: Audience::Fixed,
            rate: Rate {
                n: 10,
                per: std::time::Duration::from_secs(1),
            },
            concurrency: 1,
            locale: Locale::english(),
            timezone: None,
            platform: Platform::Slack,
            policy_name: "thread".into(),
            sms_max_segments: 3,
            approval_required: false,
            base_url: None,
            retry: vec![std::time::Duration::from_secs(1)],
            send_timeout: std::time::Duration::from_secs(5),
            settings: ChannelSettings::new(LogSettings),
            templates: None,
        };
        let start = chrono::Utc.with_ymd_and_hms(2001, 2, 3, 4, 5, 6).unwrap();
        let a = super::super::Adapter::build(&ch, dir.path(), Clock::starting_at(start)).unwrap();
        let msg = msg("k2");
        assert!(matches!(a.send(&msg).await, Outcome::Delivered { .. }));
        let line = std::fs::read_to_string(dir.path().join("outbox/ops.jsonl")).unwrap();
        assert!(line.contains("\"sent_at\":\"2001-02-03T04:05:"), "{line}");
    }
}
