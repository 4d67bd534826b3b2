//! Two-person approval: a publishing write the configuration says needs a second person is kept
//! as an [`Approval`] (`pending_approval`) instead of being applied. Nothing of it reaches the
//! incident, its timeline or any channel until another publisher or admin approves it; it is
//! then applied exactly as the original request would have been. A rejection keeps it, with its
//! reason, and sends nothing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    /// Waiting for a second person; nothing was sent.
    PendingApproval,
    /// Approved and published.
    Approved,
    /// Rejected with a reason; nothing was sent.
    Rejected,
}

impl ApprovalState {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::PendingApproval => "pending_approval",
            ApprovalState::Approved => "approved",
            ApprovalState::Rejected => "rejected",
        }
    }
}

/// The write that waits: the route it was sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalAction {
    /// `POST /api/v1/incidents` (the incident does not exist until approved).
    Open,
    /// `POST /api/v1/incidents/{id}/updates`
    Update,
    /// `POST /api/v1/incidents/{id}/resolve`
    Resolve,
    /// `POST /api/v1/incidents/{id}/reopen`
    Reopen,
    /// `POST /api/v1/incidents/{id}/publish` (the incident's drafts as they are at approval)
    Publish,
}

impl ApprovalAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalAction::Open => "open",
            ApprovalAction::Update => "update",
            ApprovalAction::Resolve => "resolve",
            ApprovalAction::Reopen => "reopen",
            ApprovalAction::Publish => "publish",
        }
    }
}

/// A publishing write waiting for (or decided by) a second person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Approval {
    pub id: Ulid,
    pub state: ApprovalState,
    pub action: ApprovalAction,
    /// The incident it opens (its id is fixed now) or changes.
    pub incident_id: Ulid,
    /// The incident's title (for an `open`, the title it will have).
    pub title: String,
    /// The message as written (its first language), for the approver to read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The request body as sent, applied unchanged on approval (`{}` for a publish).
    #[schema(value_type = Object)]
    pub request: serde_json::Value,
    /// Who wrote it; never the one who approves it.
    pub author: String,
    pub requested_at: DateTime<Utc>,
    /// Why it needs a second person (which rule of the configuration).
    pub reasons: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,
    /// Why it was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Approval {
    /// The refusal of a second decision on a decided approval.
    pub fn decided_already(&self) -> String {
        let by = self.decided_by.as_deref().unwrap_or("someone");
        let at = self
            .decided_at
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        format!(
            "approval {} was already {} by {by} at {at}; nothing was done",
            self.id,
            self.state.as_str()
        )
    }
}

/// An approval being granted, passed to the incident write that publishes it.
#[derive(Debug, Clone)]
pub struct Decision {
    pub approval: Ulid,
    pub by: String,
    pub at: DateTime<Utc>,
}
