//! The notices page: the recurring notices with their next fire times (the API's listing,
//! [`crate::api::notices::list`]), remove ([`crate::api::notices::remove`]), and the form to add
//! one ([`crate::api::notices::create`]). **Show next times** posts the form to
//! [`crate::api::notices::dry_run`] — the same checks, messages and fire times as adding, writing
//! nothing — and shows the next five in the notice's zone and in UTC, or the API's message next
//! to its field.

use super::compose::LANGUAGES;
use super::{answer, field, field_of, fields, filled, me};
use crate::api::authz::Caller;
use crate::api::extract::ApiJson;
use crate::api::notices::{Fire, NewNotice};
use crate::api::session::SessionAuth;
use crate::api::{ApiError, AppState};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use minijinja::{context, Value};
use serde_json::{json, Map};

/// The fields an API message about a notice may name.
const KNOWN: [&str; 9] = [
    "cron", "tz", "channels", "from", "until", "subject", "message", "locale", "body",
];

/// `GET /console/notices`.
pub async fn page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
) -> Result<Response, ApiError> {
    render(&state, &caller, session.as_deref(), &[], Form::Empty).await
}

/// What the add form shows besides what was typed.
enum Form {
    Empty,
    /// The next fire times of the typed notice (in `tz`).
    Times(Vec<Fire>, chrono_tz::Tz),
    /// The API's refusal.
    Refused(ApiError),
}

/// The form turned into the API's request body (`POST /api/v1/notices`): empty fields left
/// out, the texts per language as `body`.
fn request(f: &[(String, String)]) -> Result<NewNotice, ApiError> {
    let mut v = Map::new();
    // An empty expression or zone gets the API's message, not serde's missing field.
    for key in ["cron", "tz"] {
        v.insert(key.into(), json!(field(f, key).unwrap_or_default()));
    }
    for key in ["subject", "from", "until"] {
        if let Some(x) = filled(f, key) {
            v.insert(key.into(), json!(x));
        }
    }
    let channels: Vec<&str> = f
        .iter()
        .filter(|(k, _)| k == "channels")
        .map(|(_, c)| c.as_str())
        .collect();
    v.insert("channels".into(), json!(channels));
    let texts: Map<String, serde_json::Value> = LANGUAGES
        .iter()
        .filter_map(|(code, _)| {
            filled(f, &format!("msg_{code}")).map(|t| ((*code).into(), json!(t)))
        })
        .collect();
    if !texts.is_empty() {
        v.insert("body".into(), serde_json::Value::Object(texts));
    }
    serde_json::from_value(serde_json::Value::Object(v))
        .map_err(|e| ApiError::unprocessable(e.to_string()))
}

/// `POST /console/notices/preview[?fragment]`: the next five fire times of the typed notice, or
/// the API's message next to its field. Writes nothing. With `fragment` (for `console.js`, as
/// the expression is typed) the times or the message alone.
pub async fn preview(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let f = fields(&body);
    let form = match request(&f).and_then(|req| crate::api::notices::dry_run(&state, req)) {
        Ok(view) => match view.notice.zone() {
            Ok(tz) => Form::Times(view.next, tz),
            Err(e) => Form::Refused(e.into()),
        },
        Err(e) => Form::Refused(e),
    };
    if q.is_some_and(|q| q.split('&').any(|p| p == "fragment")) {
        let (times, zone, error) = match form {
            Form::Times(next, tz) => (
                Some(next.iter().map(|f| fire(f, tz)).collect::<Vec<_>>()),
                Some(tz.name().to_owned()),
                None,
            ),
            Form::Refused(e) => (None, None, Some(e.detail)),
            Form::Empty => (None, None, None),
        };
        return Ok(super::page(
            &state,
            "console/notice_times.html",
            me(&caller, session.as_deref()),
            context! { times => times, times_zone => zone, live_error => error },
        ));
    }
    render(&state, &caller, session.as_deref(), &f, form).await
}

/// `POST /console/notices` → [`crate::api::notices::create`]; back to the list.
pub async fn add(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let f = fields(&body);
    let created = match request(&f) {
        Ok(req) => crate::api::notices::create(State(state.clone()), ApiJson(req)).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(resp) => Ok(answer(resp.into_response())
            .await
            .redirect("/console/notices")),
        Err(e) => render(&state, &caller, session.as_deref(), &f, Form::Refused(e)).await,
    }
}

/// `POST /console/notices/{id}/remove` → [`crate::api::notices::remove`].
pub async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let resp = crate::api::notices::remove(State(state), Path(id)).await?;
    Ok(answer(resp.into_response())
        .await
        .redirect("/console/notices"))
}

/// A fire time as the page shows it: `2026-12-04 09:00 EET (07:00 UTC)`.
fn fire(f: &Fire, tz: chrono_tz::Tz) -> String {
    format!(
        "{} ({} UTC)",
        f.utc.with_timezone(&tz).format("%a %Y-%m-%d %H:%M %Z"),
        f.utc.format("%Y-%m-%d %H:%M")
    )
}

async fn render(
    state: &AppState,
    caller: &Caller,
    session: Option<&SessionAuth>,
    typed: &[(String, String)],
    form: Form,
) -> Result<Response, ApiError> {
    let axum::Json(list) = crate::api::notices::list(State(state.clone())).await?;
    let rows: Vec<Value> = list
        .into_iter()
        .map(|v| {
            let n = &v.notice;
            let tz = n.zone().unwrap_or(state.render.timezone);
            context! {
                id => n.id.to_string(),
                subject => n.subject,
                cron => n.cron,
                tz => n.tz,
                channels => n.channels,
                texts => n.body.texts().iter().map(|(l, t)| context! { locale => l.as_str(), text => t }).collect::<Vec<_>>(),
                next => v.next.iter().map(|f| fire(f, tz)).collect::<Vec<_>>(),
            }
        })
        .collect();
    let mut v = Map::new();
    for (k, val) in typed {
        if k != "channels" && k != "csrf" {
            v.insert(k.clone(), json!(val));
        }
    }
    let ticked: Vec<&str> = typed
        .iter()
        .filter(|(k, _)| k == "channels")
        .map(|(_, c)| c.as_str())
        .collect();
    let channels: Vec<Value> = state
        .dispatcher
        .broadcast_targets()
        .into_iter()
        .map(|(name, _)| context! { checked => ticked.contains(&name.as_str()), name => name })
        .collect();
    let (times, zone, error, error_field, status) = match form {
        Form::Empty => (None, None, None, None, axum::http::StatusCode::OK),
        Form::Times(next, tz) => (
            Some(next.iter().map(|f| fire(f, tz)).collect::<Vec<_>>()),
            Some(tz.name().to_owned()),
            None,
            None,
            axum::http::StatusCode::OK,
        ),
        Form::Refused(e) => {
            let mut f = field_of(&e, &KNOWN);
            if f == "message" || f == "body" {
                f = "msg_en".into();
            }
            (None, None, Some(e.detail), Some(f), e.status)
        }
    };
    let languages: Vec<Value> = LANGUAGES
        .iter()
        .map(|(code, name)| context! { code => code, name => name })
        .collect();
    let mut resp = super::page(
        state,
        "console/notices.html",
        me(caller, session),
        context! {
            notices => rows,
            v => Value::from_serialize(&v),
            default_tz => state.render.timezone.name(),
            channels => channels,
            languages => languages,
            times => times,
            times_zone => zone,
            error => error,
            error_field => error_field,
        },
    );
    *resp.status_mut() = status;
    Ok(resp)
}
