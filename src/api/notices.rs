//! Recurring notices: add (validated: crontab expression, zone, channels, dates), list with each
//! one's next fire times in local time and UTC, show, remove.

use super::extract::ApiJson;
use super::incidents::Text;
use super::openapi::PROBLEM;
use super::{ApiError, AppState};
use crate::domain::{parse_day, parse_tz, DomainError, Notice};
use crate::schedule::cron::CronExpr;
use crate::store::port::Notices;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use ulid::Ulid;

/// How many upcoming fire times a notice is shown with.
const SHOW_NEXT: usize = 5;

/// A recurring notice: a crontab(5) schedule in an IANA zone, a text (`message` or `body`) and
/// the channels it goes out on.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"cron": "0 9 * * 1-5", "tz": "Europe/Helsinki", "message": "Daily status: all systems normal.", "channels": ["log"]})))]
pub struct NewNotice {
    /// crontab(5), five fields, e.g. `0 9 * * 1-5`.
    pub cron: String,
    /// IANA zone, e.g. `Europe/Helsinki`.
    pub tz: String,
    /// Only `notice`.
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[schema(min_length = 1, max_length = 25000)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[schema(value_type = Option<crate::domain::Locale>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[schema(value_type = Option<BTreeMap<crate::domain::Locale, String>>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<BTreeMap<String, String>>,
    /// Active channel names, at least one.
    #[schema(min_items = 1)]
    pub channels: Vec<String>,
    /// First local day (YYYY-MM-DD), inclusive.
    #[serde(default)]
    #[schema(format = Date)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Last local day (YYYY-MM-DD), inclusive.
    #[serde(default)]
    #[schema(format = Date)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// One upcoming firing.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Fire {
    pub utc: DateTime<Utc>,
    /// Local time with its offset, RFC 3339.
    pub local: String,
}

/// A notice as the API shows it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NoticeView {
    #[serde(flatten)]
    pub notice: Notice,
    pub next: Vec<Fire>,
}

fn view(n: Notice, now: DateTime<Utc>) -> NoticeView {
    let next = match n.zone() {
        Ok(tz) => {
            let s = n.cron.in_zone(tz);
            let after = n.last_fired.map_or(now, |l| l.max(now));
            let mut fires = Vec::new();
            let mut cursor = after;
            // Skip days outside the from/until window (bounded: a window can be in the past).
            for _ in 0..10_000 {
                if fires.len() >= SHOW_NEXT {
                    break;
                }
                let Some(t) = s.next_after(cursor) else { break };
                cursor = t;
                if n.until
                    .is_some_and(|u| t.with_timezone(&tz).date_naive() > u)
                {
                    break;
                }
                if n.in_window(t, tz) {
                    fires.push(Fire {
                        utc: t,
                        local: t.with_timezone(&tz).to_rfc3339(),
                    });
                }
            }
            fires
        }
        _ => Vec::new(),
    };
    NoticeView { notice: n, next }
}

/// `POST /api/v1/notices`
///
/// Adds a recurring notice.
#[utoipa::path(
    post,
    path = "/api/v1/notices",
    operation_id = "createNotice",
    tag = "notices",
    security(("bearer" = [])),
    request_body = NewNotice,
    responses(
        (status = 201, description = "Added, with its next fire times", body = NoticeView, links(
            ("show" = (operation_id = "showNotice", parameters(("id" = "$response.body#/id")))),
            ("remove" = (operation_id = "removeNotice", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 400, description = "The body is not JSON", body = super::error::Problem, content_type = PROBLEM),
        (status = 413, description = "The body is too large", body = super::error::Problem, content_type = PROBLEM),
        (status = 415, description = "Not `Content-Type: application/json`", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "A field is invalid (cron, tz, channels, dates, text)", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<NewNotice>,
) -> Result<(StatusCode, Json<NoticeView>), ApiError> {
    let now = state.dispatcher.now();
    let notice = validate(&state, req, now)?;
    state.store.put_notice(&notice).await?;
    tracing::info!(notice = %notice.id, cron = %notice.cron, tz = %notice.tz, "notice added");
    Ok((StatusCode::CREATED, Json(view(notice, now))))
}

/// A new notice as [`create`] would add it, with its next fire times, writing nothing: the
/// console's **Show next times** (the same checks, messages and fire times as the API's).
pub fn dry_run(state: &AppState, req: NewNotice) -> Result<NoticeView, ApiError> {
    let now = state.dispatcher.now();
    Ok(view(validate(state, req, now)?, now))
}

/// Every check of a new notice (event, zone, crontab expression, channels, dates, text,
/// subject, that it ever fires), and the notice built from it. Writes nothing.
fn validate(state: &AppState, req: NewNotice, now: DateTime<Utc>) -> Result<Notice, ApiError> {
    if let Some(e) = req.event.as_deref().map(str::trim) {
        if e != "notice" {
            return Err(ApiError::unprocessable(format!(
                "event: \"{e}\" cannot be scheduled; recurring notices use the `notice` event (incident events come from incidents)"
            )));
        }
    }
    let tz = parse_tz(&req.tz)?;
    let cron =
        CronExpr::parse(&req.cron).map_err(|e| DomainError::invalid("cron", e.to_string()))?;
    let schedule = cron.in_zone(tz);
    if req.channels.is_empty() {
        return Err(ApiError::unprocessable(
            "channels: empty; name at least one channel to send the notice on",
        ));
    }
    let active: Vec<String> = state
        .dispatcher
        .broadcast_targets()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    for c in &req.channels {
        if !active.contains(c) {
            return Err(ApiError::unprocessable(format!(
                "channels: \"{c}\" is not an active channel; active: {}",
                active.join(", ")
            )));
        }
    }
    let from = req
        .from
        .as_deref()
        .map(|d| parse_day("from", d))
        .transpose()?;
    let until = req
        .until
        .as_deref()
        .map(|d| parse_day("until", d))
        .transpose()?;
    if let (Some(f), Some(u)) = (from, until) {
        if u < f {
            return Err(ApiError::unprocessable(
                "until: is before from; the notice would never fire",
            ));
        }
    }
    let body = Text {
        message: req.message,
        locale: req.locale,
        body: req.body,
    }
    .into_body()?;
    let subject = req
        .subject
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "Notice".to_owned());
    crate::domain::check_line("subject", &subject)?;
    if schedule.next_after(now).is_none() {
        return Err(ApiError::unprocessable(format!(
            "cron: \"{}\" never fires; check the day and month fields",
            req.cron
        )));
    }
    Ok(Notice {
        id: Ulid::new(),
        cron,
        tz: tz.name().to_owned(),
        subject,
        body,
        channels: req.channels,
        from,
        until,
        created_at: now,
        last_fired: None,
    })
}

/// `GET /api/v1/notices`
///
/// Lists the notices with their next fire times.
#[utoipa::path(
    get,
    path = "/api/v1/notices",
    operation_id = "listNotices",
    tag = "notices",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The notices", body = Vec<NoticeView>),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<NoticeView>>, ApiError> {
    let now = state.dispatcher.now();
    Ok(Json(
        state
            .store
            .notices()
            .await?
            .into_iter()
            .map(|n| view(n, now))
            .collect(),
    ))
}

fn parse_id(id: &str) -> Result<Ulid, ApiError> {
    Ulid::from_string(id.trim()).map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("\"{id}\" is not a notice id; ids are 26-character ULIDs as shown by `crier notice list`"),
        )
    })
}

/// `GET /api/v1/notices/{id}`
///
/// One notice with its next fire times.
#[utoipa::path(
    get,
    path = "/api/v1/notices/{id}",
    operation_id = "showNotice",
    tag = "notices",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The notice's id (a ULID)")),
    responses(
        (status = 200, description = "The notice", body = NoticeView),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 404, description = "No such notice", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<NoticeView>, ApiError> {
    let n = state.store.notice(parse_id(&id)?).await?;
    Ok(Json(view(n, state.dispatcher.now())))
}

/// `DELETE /api/v1/notices/{id}`
///
/// Removes a notice.
#[utoipa::path(
    delete,
    path = "/api/v1/notices/{id}",
    operation_id = "removeNotice",
    tag = "notices",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The notice's id (a ULID)")),
    responses(
        (status = 200, description = "The removed notice", body = Notice),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 404, description = "No such notice", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Notice>, ApiError> {
    let n = state.store.remove_notice(parse_id(&id)?).await?;
    tracing::info!(notice = %n.id, "notice removed");
    Ok(Json(n))
}

#[cfg(test)]
mod wire_tests {
    use super::*;
    use serde_json::json;

    /// The CLI sends this struct: what it serialises, the API reads back unchanged
    /// (`deny_unknown_fields`), and the fields not given stay absent.
    #[test]
    fn new_notice_round_trips() {
        for sent in [
            json!({"cron": "0 9 * * 1-5", "tz": "Europe/Helsinki", "event": "notice",
                   "message": "Daily status.", "locale": "fi", "channels": ["log"],
                   "subject": "Status", "from": "2026-01-01", "until": "2026-12-31"}),
            json!({"cron": "0 9 * * *", "tz": "UTC", "body": {"fi": "Tila"}, "channels": ["log"]}),
        ] {
            let req: NewNotice = serde_json::from_value(sent.clone()).unwrap();
            assert_eq!(serde_json::to_value(&req).unwrap(), sent);
        }
    }
}
