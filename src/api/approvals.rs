//! Two-person approval (docs/APPROVAL.md): what needs a second person, holding a publishing
//! write as `pending_approval`, telling the staff channels, and approving (applying the write
//! exactly as it would have been applied directly, once) or rejecting it with a reason.
//! Breaking glass — an admin publishing without approval — needs a reason and is audited.

use super::authz::{noted, AuditNote};
use super::extract::{ApiJson, ApiQuery};
use super::incidents;
use super::openapi::PROBLEM;
use super::{ApiError, AppState, Principal};
use crate::config::ApprovalSettings;
use crate::domain::standalone::{approval_note_seq, Standalone, StandaloneKind};
use crate::domain::Decision;
use crate::domain::{Approval, ApprovalAction, ApprovalState, Body, Locale, Role};
use crate::store::port::{Approvals, Standalones, Subscribers};
use crate::store::StoreError;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// What needs approval, as start-up settled it.
#[derive(Debug, Clone, Default)]
pub struct ApprovalRules {
    pub settings: ApprovalSettings,
    /// Channels that reach staff only (the approval, reminder and intake staff channels): with
    /// `approval = "public"` an update to these alone needs no approval.
    pub staff: Vec<String>,
}

/// The longest rejection or break-glass reason.
const MAX_REASON_CHARS: usize = 1000;

impl AppState {
    /// Why a publishing write now would need a second person's approval: one line per rule
    /// that asks for it (empty: it needs none). The whole write waits, on every channel, so that
    /// one message goes out consistently.
    pub(crate) async fn approval_reasons(&self) -> Vec<String> {
        let rules = &self.approval;
        let targets = self.dispatcher.broadcast_targets();
        let mut why = Vec::new();
        for (name, _) in &targets {
            if self.dispatcher.approval_required(name) {
                why.push(format!("channel {name} has approval = \"required\""));
            }
        }
        if rules.settings.public && targets.iter().any(|(n, _)| !rules.staff.contains(n)) {
            why.push("approval = \"public\": every public update needs a second person".into());
        }
        if let Some(limit) = rules.settings.above {
            let audience = self.audience(&targets).await;
            if audience > limit {
                why.push(format!(
                    "its audience of up to {audience} recipients is above approval_above = {limit}"
                ));
            }
        }
        why
    }

    /// [`AppState::approval_reasons`] for a publishing write by `who`: a responder may not
    /// publish alone, so their write always waits for a publisher or admin (never its author);
    /// the configuration's rules are added as for anyone.
    pub(crate) async fn approval_reasons_for(&self, who: &Principal) -> Vec<String> {
        let mut why = Vec::new();
        if who.1 < Role::Publisher {
            why.push(format!(
                "the author's role ({}) may not publish alone (a {} saves drafts or submits them for a publisher's approval)",
                who.1, who.1
            ));
        }
        why.extend(self.approval_reasons().await);
        why
    }

    /// The recipients a published update reaches on `targets` (the broadcast targets), counted
    /// conservatively: every subscriber when a channel sends to subscribers (component filters
    /// are not subtracted) plus one per fixed-target channel. `approval_above` compares it, and
    /// the console's publish confirmation shows it.
    pub(crate) async fn audience(&self, targets: &[(String, bool)]) -> u64 {
        let fixed = targets.iter().filter(|(_, subs)| !subs).count() as u64;
        let subscribers = match targets.iter().any(|(_, subs)| *subs) {
            // Unreadable (a broken store): counted as none, as before the port.
            true => self.store.subscriber_count().await.unwrap_or(0) as u64,
            false => 0,
        };
        subscribers + fixed
    }
}

/// Checks the break-glass fields of a publishing write: `Some(reason)` when an admin breaks
/// glass, `None` when glass stays whole. Nothing is written on a refusal.
pub(crate) fn break_glass(
    who: &Principal,
    glass: bool,
    reason: Option<String>,
    draft: bool,
) -> Result<Option<String>, ApiError> {
    let reason = reason.map(|r| r.trim().to_owned());
    if !glass {
        if reason.is_some() {
            return Err(ApiError::unprocessable(
                "reason: goes with break_glass; leave it out, or break glass with \"break_glass\": true (admins only)",
            ));
        }
        return Ok(None);
    }
    if who.1 < Role::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "only an admin may break glass; your token acts as {}: leave break_glass out and the update waits for a second person's approval",
                who.1
            ),
        ));
    }
    if draft {
        return Err(ApiError::unprocessable(
            "break_glass: a draft publishes nothing, so there is no approval to bypass; leave break_glass out",
        ));
    }
    match reason {
        Some(r) if !r.is_empty() => {
            crate::domain::check_line("reason", &r)?;
            if r.chars().count() > MAX_REASON_CHARS {
                return Err(ApiError::unprocessable(format!(
                    "reason: keep it at most {MAX_REASON_CHARS} characters"
                )));
            }
            Ok(Some(r))
        }
        _ => Err(ApiError::unprocessable(
            "reason: missing; breaking glass needs a reason for the audit log, e.g. \"reason\": \"approver unreachable, passengers at the gate\" (`--reason` in the CLI)",
        )),
    }
}

/// A write's answer, before it becomes a response: the approval path needs its body. The body
/// is the answer's JSON text, serialised once in the struct's field order; only an approval
/// parses it again (into [`Approved::published`]).
pub(crate) struct Out {
    pub status: StatusCode,
    pub body: Vec<u8>,
    pub note: AuditNote,
}

impl Out {
    pub(crate) fn new<T: Serialize>(
        status: StatusCode,
        body: &T,
        note: AuditNote,
    ) -> Result<Out, ApiError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| ApiError::from(StoreError::Corrupt(e.to_string())))?;
        Ok(Out { status, body, note })
    }
}

/// The answer to a write applied directly; when glass was broken, its audit entry says so (as
/// `break_glass`, with the reason and what approval it bypassed).
pub(crate) fn finish(out: Out, glass: Option<String>, needed: &[String]) -> Response {
    let mut note = out.note;
    if let Some(reason) = glass {
        let bypassed = match needed.is_empty() {
            true => "no approval was needed".to_owned(),
            false => format!("approval bypassed ({})", needed.join("; ")),
        };
        note.summary = format!("{}; {bypassed}; reason: {reason}", note.summary);
        note.action = Some("break_glass".into());
    }
    let json = [(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    )];
    noted((out.status, json, out.body), note)
}

/// The request body as it is stored for approval.
pub(crate) fn request_value<T: Serialize>(req: &T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(req).map_err(|e| ApiError::from(StoreError::Corrupt(e.to_string())))
}

/// A write to hold, already checked in full.
pub(crate) struct Held {
    pub action: ApprovalAction,
    pub incident_id: Ulid,
    pub title: String,
    pub message: Option<String>,
    pub request: serde_json::Value,
    pub reasons: Vec<String>,
}

/// Saves a write as `pending_approval`, tells the staff channels, and answers 202 with the
/// approval. Nothing reaches the incident or any public channel.
pub(crate) async fn hold(
    state: &AppState,
    who: &Principal,
    held: Held,
) -> Result<Response, ApiError> {
    let now = state.dispatcher.now();
    let a = Approval {
        id: Ulid::new(),
        state: ApprovalState::PendingApproval,
        action: held.action,
        incident_id: held.incident_id,
        title: held.title,
        message: held.message,
        request: held.request,
        author: who.0.clone(),
        requested_at: now,
        reasons: held.reasons,
        decided_by: None,
        decided_at: None,
        reason: None,
    };
    state.store.put_approval(&a).await?;
    tracing::info!(approval = %a.id, incident = %a.incident_id, action = a.action.as_str(), "held for approval");
    let text = format!(
        "{} wants to {} \"{}\" and needs a second person's approval ({}).{}\nApprove: crier approvals approve {}\nReject: crier approvals reject {} --reason \"…\"",
        a.author,
        verb(a.action),
        a.title,
        a.reasons.join("; "),
        a.message
            .as_deref()
            .map(|m| format!("\nMessage: {m}"))
            .unwrap_or_default(),
        a.id,
        a.id
    );
    tell_staff(state, &a, 1, "Approval needed", &text).await;
    let note = AuditNote {
        target: Some(format!("incident {}", a.incident_id)),
        summary: format!(
            "held for approval {} ({}): {}",
            a.id,
            a.action.as_str(),
            a.reasons.join("; ")
        ),
        ..Default::default()
    };
    Ok(noted((StatusCode::ACCEPTED, Json(a)), note))
}

fn verb(action: ApprovalAction) -> &'static str {
    match action {
        ApprovalAction::Open => "open the incident",
        ApprovalAction::Update => "post an update to",
        ApprovalAction::Resolve => "resolve",
        ApprovalAction::Reopen => "reopen",
        ApprovalAction::Publish => "publish the drafts of",
    }
}

/// Posts a note about an approval to the staff channels (once per (approval, n)). A failure is
/// logged: the approval itself is saved and listed by `GET /api/v1/approvals`.
async fn tell_staff(state: &AppState, a: &Approval, n: u32, subject: &str, text: &str) {
    let targets: Vec<(String, bool)> = state
        .dispatcher
        .broadcast_targets()
        .into_iter()
        .filter(|(name, _)| state.approval.settings.notify.contains(name))
        .collect();
    if targets.is_empty() {
        tracing::warn!(approval = %a.id, "no staff channel to tell of the approval (set approval_notify or promises.reminder_channels); it is listed by `crier approvals list`");
        return;
    }
    let body = match Body::single(Locale::english(), text) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(approval = %a.id, error = %e, "the staff note could not be written");
            return;
        }
    };
    let now = state.dispatcher.now();
    let msg = Standalone::new(
        a.id,
        approval_note_seq(n),
        StandaloneKind::StaffNote {
            at: now,
            subject: format!("{subject}: {}", a.title),
            body,
        },
        now,
    );
    match state.store.post_standalone(&msg, &targets, now).await {
        Ok(_) => state.dispatcher.kick(),
        Err(e) => {
            tracing::error!(approval = %a.id, error = %e, "the staff channels could not be told of the approval")
        }
    }
}

fn parse_approval_id(id: &str) -> Result<Ulid, ApiError> {
    Ulid::from_string(id.trim()).map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("\"{id}\" is not an approval id; ids are 26-character ULIDs as shown by `crier approvals list`"),
        )
    })
}

/// Filters of the approval list.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `pending_approval` (the default), `approved`, `rejected` or `all`.
    state: Option<String>,
    /// At most this many, oldest first (default 1000).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<usize>,
}

/// Writes waiting for a second person (or, with `state`, those decided), oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/approvals",
    operation_id = "listApprovals",
    tag = "approvals",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "The approvals", body = Vec<Approval>),
        (status = 400, description = "A bad query string", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "An unknown state", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<Approval>>, ApiError> {
    let limit = q.limit.unwrap_or(1000);
    if limit == 0 || limit > 10_000 {
        return Err(ApiError::bad_request("limit: use 1 to 10000"));
    }
    let filter = match q.state.as_deref().map(str::trim) {
        None | Some("pending_approval") | Some("pending") => Some(ApprovalState::PendingApproval),
        Some("approved") => Some(ApprovalState::Approved),
        Some("rejected") => Some(ApprovalState::Rejected),
        Some("all") => None,
        Some(other) => {
            return Err(ApiError::unprocessable(format!(
                "state: \"{other}\" is not a state; use pending_approval, approved, rejected or all"
            )))
        }
    };
    Ok(Json(state.store.approvals(filter, limit).await?))
}

/// An approval granted, and what its write answered.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct Approved {
    pub approval: Approval,
    /// The answer the write would have had if published directly (the incident and its update,
    /// or the published drafts).
    #[schema(value_type = Object)]
    pub published: serde_json::Value,
}

/// The refusal of an approval by its own author.
fn own_write(a: &Approval) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        format!(
            "you wrote this (approval {} by {}): two-person approval needs another publisher or admin to approve or reject it",
            a.id, a.author
        ),
    )
}

/// Approves a write waiting for a second person: it is applied exactly as it would have been
/// when sent (the same deliveries, once). The author cannot approve their own write.
#[utoipa::path(
    post,
    path = "/api/v1/approvals/{id}/approve",
    operation_id = "approve",
    tag = "approvals",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The approval's id (a ULID)")),
    responses(
        (status = 200, description = "Approved and published", body = Approved),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 403, description = "Your own write, or a role below publisher", body = super::error::Problem, content_type = PROBLEM),
        (status = 404, description = "No such approval", body = super::error::Problem, content_type = PROBLEM),
        (status = 409, description = "Already approved or rejected, or the incident changed so that the write no longer applies (reject it)", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "The write no longer applies (e.g. a component was removed): reject it", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn approve(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let a = state.store.approval(parse_approval_id(&id)?).await?;
    if a.state != ApprovalState::PendingApproval {
        return Err(ApiError::new(StatusCode::CONFLICT, a.decided_already()));
    }
    if a.author == who.0 {
        return Err(own_write(&a));
    }
    let decision = Decision {
        approval: a.id,
        by: who.0.clone(),
        at: state.dispatcher.now(),
    };
    let corrupt = |e: serde_json::Error| ApiError::from(StoreError::Corrupt(e.to_string()));
    let out = match a.action {
        ApprovalAction::Open => {
            let req = serde_json::from_value(a.request.clone()).map_err(corrupt)?;
            incidents::open(
                &state,
                a.incident_id,
                a.author.clone(),
                req,
                Some(&decision),
            )
            .await?
        }
        ApprovalAction::Update | ApprovalAction::Resolve | ApprovalAction::Reopen => {
            let req: incidents::PostUpdate =
                serde_json::from_value(a.request.clone()).map_err(corrupt)?;
            let change = incidents::change_of(a.action, &req)?;
            incidents::append(
                &state,
                a.author.clone(),
                a.incident_id,
                change,
                req,
                Some(&decision),
            )
            .await?
        }
        ApprovalAction::Publish => {
            incidents::publish_now(&state, a.incident_id, Some(&decision)).await?
        }
    };
    let approval = state.store.approval(a.id).await?;
    tracing::info!(approval = %a.id, by = %who.0, "approved and published");
    let note = AuditNote {
        target: Some(format!("approval {}", a.id)),
        summary: format!(
            "approved {}'s {} of incident {}: {}",
            a.author,
            a.action.as_str(),
            a.incident_id,
            out.note.summary
        ),
        ..Default::default()
    };
    Ok(noted(
        (
            StatusCode::OK,
            Json(Approved {
                approval,
                published: serde_json::from_slice(&out.body).map_err(corrupt)?,
            }),
        ),
        note,
    ))
}

/// Why a write is rejected.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"reason": "Do not name the supplier; say 'a technical fault'."})))]
pub struct Reject {
    /// Shown to staff (the approval list and the staff channels) and kept in the audit log.
    #[schema(min_length = 1, max_length = 1000)]
    pub reason: String,
}

/// Rejects a write waiting for a second person, with a reason: nothing is sent, and the staff
/// channels are told why.
#[utoipa::path(
    post,
    path = "/api/v1/approvals/{id}/reject",
    operation_id = "reject",
    tag = "approvals",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The approval's id (a ULID)")),
    request_body = Reject,
    responses(
        (status = 200, description = "Rejected; nothing was sent", body = Approval),
        (status = 400, description = "The body is not JSON", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 403, description = "Your own write, or a role below publisher", body = super::error::Problem, content_type = PROBLEM),
        (status = 404, description = "No such approval", body = super::error::Problem, content_type = PROBLEM),
        (status = 409, description = "Already approved or rejected", body = super::error::Problem, content_type = PROBLEM),
        (status = 413, description = "The body is too large", body = super::error::Problem, content_type = PROBLEM),
        (status = 415, description = "Not `Content-Type: application/json`", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "No reason given", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn reject(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Reject>,
) -> Result<Response, ApiError> {
    let reason = req.reason.trim().to_owned();
    if reason.is_empty() {
        return Err(ApiError::unprocessable(
            "reason: missing; say why, so the author can fix the update (`--reason` in the CLI)",
        ));
    }
    crate::domain::check_line("reason", &reason)?;
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::unprocessable(format!(
            "reason: keep it at most {MAX_REASON_CHARS} characters"
        )));
    }
    let a = state.store.approval(parse_approval_id(&id)?).await?;
    if a.state != ApprovalState::PendingApproval {
        return Err(ApiError::new(StatusCode::CONFLICT, a.decided_already()));
    }
    if a.author == who.0 {
        return Err(own_write(&a));
    }
    let a = state
        .store
        .reject_approval(a.id, &who.0, &reason, state.dispatcher.now())
        .await?;
    tracing::info!(approval = %a.id, by = %who.0, "rejected");
    let text = format!(
        "{} rejected {}'s request to {} \"{}\": {reason}\nNothing was sent.",
        who.0,
        a.author,
        verb(a.action),
        a.title
    );
    tell_staff(&state, &a, 2, "Rejected", &text).await;
    let note = AuditNote {
        target: Some(format!("approval {}", a.id)),
        summary: format!(
            "rejected {}'s {} of incident {}: {reason}",
            a.author,
            a.action.as_str(),
            a.incident_id
        ),
        ..Default::default()
    };
    Ok(noted(Json(a), note))
}
