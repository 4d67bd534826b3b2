//! `crier channels check [NAME]`: before an incident, not during one, find out whether each
//! configured social channel's credentials still work. Offline (no crier server): it reads the
//! channels folder and the environment like `serve` does, and asks each platform with a call
//! that posts nothing (Mastodon verify_credentials, Bluesky createSession, X users/me, Facebook
//! the Page, Telegram getMe, Matrix whoami, Discord the webhook, Slack an empty payload). One
//! line per channel; secrets are never printed (adapters leave them out of every reason).
//! Exit code 0 when every checked channel is good, 1 when any failed (or a named one is not
//! active), 2 for bad usage.

use super::client::CliError;
use crate::adapters::check_channel;
pub use crate::adapters::ChannelCheck;
use crate::channels;
use serde_json::{json, Value};
use std::path::Path;

/// Checks the channels of `dir` (only `only` when given). `Err` for an unreadable folder or an
/// unknown name.
pub async fn check_channels(
    dir: &Path,
    only: Option<&str>,
    clock: crate::dispatch::Clock,
) -> Result<Vec<ChannelCheck>, CliError> {
    let loaded = channels::load(dir).map_err(|e| CliError::Usage(e.to_string()))?;
    if let Some(name) = only {
        let known = loaded.active.iter().any(|c| c.name == name)
            || loaded.skipped.iter().any(|(n, _)| n == name);
        if !known {
            return Err(CliError::Usage(format!(
                "no channel named \"{name}\" in {}",
                dir.display()
            )));
        }
    }
    // Adapters that need a folder (the log adapter) are not checked; nothing is written here.
    let scratch = std::env::temp_dir();
    let mut out = Vec::new();
    for ch in loaded
        .active
        .iter()
        .filter(|c| only.is_none_or(|n| n == c.name))
    {
        out.push(check_channel(ch, &scratch, clock).await);
    }
    for (name, why) in loaded
        .skipped
        .iter()
        .filter(|(n, _)| only.is_none_or(|o| o == n))
    {
        out.push(ChannelCheck {
            name: name.clone(),
            kind: String::new(),
            status: "skipped",
            detail: why.clone(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Whether the run passed: nothing failed, and a channel asked for by name is active.
pub fn passed(checks: &[ChannelCheck], only: Option<&str>) -> bool {
    checks.iter().all(|c| c.status != "failed")
        && (only.is_none() || checks.iter().all(|c| c.status != "skipped"))
}

/// The checks as printed lines: status, name, kind, detail.
pub fn describe(checks: &[ChannelCheck]) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut s = String::new();
    for c in checks {
        let kind = if c.kind.is_empty() {
            String::new()
        } else {
            format!("{}: ", c.kind)
        };
        s.push_str(&format!(
            "{:<9} {:<width$}  {kind}{}\n",
            c.status.to_uppercase(),
            c.name,
            c.detail
        ));
    }
    if checks.is_empty() {
        s.push_str("no channels configured\n");
    }
    s
}

/// The checks as JSON.
pub fn to_json(checks: &[ChannelCheck], ok: bool) -> Value {
    json!({
        "ok": ok,
        "channels": checks.iter().map(|c| json!({
            "name": c.name, "kind": c.kind, "status": c.status, "detail": c.detail
        })).collect::<Vec<_>>(),
    })
}
