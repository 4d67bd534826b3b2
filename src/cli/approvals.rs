//! `crier approvals list|approve ID|reject ID --reason R`, the `--break-glass --reason` flags of
//! the publishing incident commands, and how a write held for approval is shown.

use super::client::{Body, CliError, Client};
use super::{enc, output};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Value};

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

/// Whether an answer is a write held for approval (202).
pub fn is_held(v: &Value) -> bool {
    v.get("state").and_then(Value::as_str) == Some("pending_approval")
}

/// Prints a write held for approval.
pub fn held(v: &Value, json_out: bool) {
    if json_out {
        return output::print_json(v);
    }
    let id = v["id"].as_str().unwrap_or_default();
    println!(
        "Held for approval {id}: nothing was sent. {}",
        reasons(v).join("; ")
    );
    println!("  another publisher or admin approves it with `crier approvals approve {id}` (or rejects it with `crier approvals reject {id} --reason \"…\"`)");
}

fn reasons(v: &Value) -> Vec<&str> {
    v["reasons"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn line(a: &Value) -> String {
    let mut out = format!(
        "{}  {:<16}  {:<7}  {}  by {}  at {}\n    \"{}\"",
        a["id"].as_str().unwrap_or_default(),
        a["state"].as_str().unwrap_or_default(),
        a["action"].as_str().unwrap_or_default(),
        a["incident_id"].as_str().unwrap_or_default(),
        a["author"].as_str().unwrap_or_default(),
        a["requested_at"].as_str().unwrap_or_default(),
        a["title"].as_str().unwrap_or_default(),
    );
    if let Some(m) = a["message"].as_str() {
        out.push_str(&format!("\n    message: {m}"));
    }
    out.push_str(&format!("\n    why: {}", reasons(a).join("; ")));
    if let Some(by) = a["decided_by"].as_str() {
        out.push_str(&format!(
            "\n    {} by {by} at {}",
            a["state"].as_str().unwrap_or_default(),
            a["decided_at"].as_str().unwrap_or_default()
        ));
    }
    if let Some(r) = a["reason"].as_str() {
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
            let v = c.call(Method::GET, &path, None).await?;
            if json_out {
                output::print_json(&v);
            } else {
                let list = v.as_array().cloned().unwrap_or_default();
                if list.is_empty() {
                    println!("Nothing waits for approval.");
                }
                for a in &list {
                    println!("{}", line(a));
                }
            }
        }
        ApprovalsCmd::Approve { id } => {
            let v = c
                .call(
                    Method::POST,
                    &format!("/api/v1/approvals/{}/approve", enc(&id)),
                    None,
                )
                .await?;
            if json_out {
                output::print_json(&v);
            } else {
                let a = &v["approval"];
                println!(
                    "Approved {} ({} by {}): published.",
                    a["id"].as_str().unwrap_or_default(),
                    a["action"].as_str().unwrap_or_default(),
                    a["author"].as_str().unwrap_or_default()
                );
            }
        }
        ApprovalsCmd::Reject { id, reason } => {
            let v = c
                .call(
                    Method::POST,
                    &format!("/api/v1/approvals/{}/reject", enc(&id)),
                    Some(Body::Json(json!({ "reason": reason }))),
                )
                .await?;
            if json_out {
                output::print_json(&v);
            } else {
                println!(
                    "Rejected {}: nothing was sent; staff are told why.",
                    v["id"].as_str().unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}
