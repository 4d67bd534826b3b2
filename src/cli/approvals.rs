//! `crier approvals list|approve ID|reject ID --reason R`, the `--break-glass --reason` flags of
//! the publishing incident commands, and how a write held for approval is shown.

use super::client::{answer_as, Body, CliError, Client};
use super::{enc, output, shown_as};
use crate::api::approvals::{Approved, Reject};
use crate::domain::{Approval, ApprovalState};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::Value;

#[derive(Subcommand, Debug)]
pub enum ApprovalsCmd {
    /// List writes waiting for a second person (oldest first).
    List {
        /// Show these instead: approved, rejected or all.
        #[arg(long)]
        state: Option<String>,
    },
    /// Approve a write someone else made: it is published exactly as if sent directly.
    Approve {
        /// The approval's id (26 characters, see `approvals list`).
        id: String,
    },
    /// Reject a write someone else made: nothing is sent; staff are told the reason.
    Reject {
        /// The approval's id (26 characters, see `approvals list`).
        id: String,
        /// Why, for the author and the audit log.
        #[arg(long)]
        reason: String,
    },
}

/// Breaking glass: an admin publishes at once although the configuration asks for a second
/// person's approval.
#[derive(Args, Debug, Default)]
pub struct Glass {
    /// Publish without the second person's approval the configuration asks for (admins only;
    /// needs --reason; recorded in the audit log).
    #[arg(long, requires = "reason")]
    pub break_glass: bool,
    /// Why glass is broken (with --break-glass).
    #[arg(long, requires = "break_glass")]
    pub reason: Option<String>,
}

impl Glass {
    /// The query string of `incident publish`.
    pub fn query(&self) -> String {
        match (&self.break_glass, &self.reason) {
            (true, Some(r)) => format!("?break_glass=true&reason={}", enc(r)),
            (true, None) => "?break_glass=true".into(),
            _ => String::new(),
        }
    }
}

/// The approval, when an answer is a write held for approval (202: an [`Approval`] in state
/// `pending_approval`), read as the API's own type.
pub fn held_approval(path: &str, v: &Value) -> Result<Option<Approval>, CliError> {
    let pending = ApprovalState::PendingApproval.as_str();
    if v.get("state").and_then(Value::as_str) != Some(pending) {
        return Ok(None);
    }
    answer_as(path, v).map(Some)
}

/// Prints a write held for approval.
pub fn held(v: &Value, a: &Approval, json_out: bool) {
    if json_out {
        return output::print_json(v);
    }
    let id = a.id;
    println!(
        "Held for approval {id}: nothing was sent. {}",
        a.reasons.join("; ")
    );
    println!("  another publisher or admin approves it with `crier approvals approve {id}` (or rejects it with `crier approvals reject {id} --reason \"…\"`)");
}

/// A time as the server writes it.
fn at(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn line(a: &Approval) -> String {
    let mut out = format!(
        "{}  {:<16}  {:<7}  {}  by {}  at {}\n    \"{}\"",
        a.id,
        a.state.as_str(),
        a.action.as_str(),
        a.incident_id,
        a.author,
        at(a.requested_at),
        a.title,
    );
    if let Some(m) = &a.message {
        out.push_str(&format!("\n    message: {m}"));
    }
    out.push_str(&format!("\n    why: {}", a.reasons.join("; ")));
    if let Some(by) = &a.decided_by {
        out.push_str(&format!(
            "\n    {} by {by} at {}",
            a.state.as_str(),
            a.decided_at.map(at).unwrap_or_default()
        ));
    }
    if let Some(r) = &a.reason {
        out.push_str(&format!("\n    reason: {r}"));
    }
    out
}

pub async fn approvals(c: &Client, cmd: ApprovalsCmd, json_out: bool) -> Result<(), CliError> {
    match cmd {
        ApprovalsCmd::List { state } => {
            let path = match state {
                Some(s) => format!("/api/v1/approvals?state={}", enc(&s)),
                None => "/api/v1/approvals".to_owned(),
            };
            let (v, list) = c.call_as::<Vec<Approval>>(Method::GET, &path, None).await?;
            if json_out {
                output::print_json(&v);
            } else {
                if list.is_empty() {
                    println!("Nothing waits for approval.");
                }
                for a in &list {
                    println!("{}", line(a));
                }
            }
        }
        ApprovalsCmd::Approve { id } => {
            let path = format!("/api/v1/approvals/{}/approve", enc(&id));
            shown_as(c, Method::POST, &path, None, json_out, |done: Approved| {
                let a = &done.approval;
                println!(
                    "Approved {} ({} by {}): published.",
                    a.id,
                    a.action.as_str(),
                    a.author
                );
            })
            .await?;
        }
        ApprovalsCmd::Reject { id, reason } => {
            let path = format!("/api/v1/approvals/{}/reject", enc(&id));
            let body = Some(Body::json(&Reject { reason })?);
            shown_as(c, Method::POST, &path, body, json_out, |a: Approval| {
                println!("Rejected {}: nothing was sent; staff are told why.", a.id)
            })
            .await?;
        }
    }
    Ok(())
}
