//! The signed-in person's own account: enrolling a TOTP second factor in the browser.
//!
//! The forms call the API's own handlers — [`crate::api::signin::begin_totp`] and
//! [`crate::api::signin::confirm_totp`] — so the secret, the code check, the recovery codes,
//! the upgrade of an enrol-only session and the audit entries (`totp.begin`, `totp.enable`) are
//! the API's. The secret and the recovery codes are shown once, on the answer page.

use super::{answer, field, me};
use crate::api::authz::Caller;
use crate::api::extract::ApiJson;
use crate::api::session::SessionAuth;
use crate::api::signin::{self, TotpCode};
use crate::api::{ApiError, AppState};
use crate::domain::UserName;
use crate::store::port::SecondFactors;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use minijinja::context;

/// What the page shows besides the person's state.
#[derive(Default)]
struct View {
    /// Just begun: the secret and its `otpauth://` URI (shown once).
    enrolment: Option<(String, String)>,
    /// Just confirmed: the recovery codes (shown once).
    recovery: Vec<String>,
    /// The API's refusal, and the field it is about (`code` or `form`).
    error: Option<(String, String)>,
    status: Option<StatusCode>,
}

/// `none`, `pending` (begun, not confirmed) or `enabled`.
async fn totp_state(state: &AppState, caller: &Caller) -> &'static str {
    let Some(user) = caller.user.as_ref() else {
        return "none";
    };
    match state.store.totp(user).await {
        Ok(Some(r)) if r.enabled => "enabled",
        Ok(Some(_)) => "pending",
        _ => "none",
    }
}

async fn show(
    state: &AppState,
    caller: &Caller,
    session: Option<&SessionAuth>,
    view: View,
) -> Response {
    let totp = totp_state(state, caller).await;
    let (error_field, error) = match view.error {
        Some((f, e)) => (Some(f), Some(e)),
        None => (None, None),
    };
    let enrol_only = session.is_some_and(|s| s.session.enrol_only);
    let mut resp = super::page(
        state,
        "console/account.html",
        me(caller, session),
        context! {
            user => caller.user.as_ref().map(UserName::as_str),
            totp => totp,
            enrol_only => enrol_only,
            enrolment => view.enrolment.map(|(secret, uri)| context! { secret => secret, uri => uri }),
            recovery => view.recovery,
            error => error,
            error_field => error_field,
        },
    );
    if let Some(s) = view.status {
        *resp.status_mut() = s;
    }
    resp
}

/// `GET /console/account`.
pub async fn page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
) -> Response {
    show(&state, &caller, session.as_deref(), View::default()).await
}

fn refused(e: ApiError) -> View {
    let at = if e.field == Some("code") {
        "code"
    } else {
        "form"
    };
    View {
        error: Some((at.to_owned(), e.detail)),
        status: Some(e.status),
        ..View::default()
    }
}

/// `POST /console/account/totp`: begins enrolment through the API's `begin_totp`.
pub async fn begin(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
) -> Response {
    match signin::begin_totp(State(state.clone()), Extension(caller.clone())).await {
        Ok(resp) => {
            let a = answer(resp).await;
            let secret = a.body["secret"].as_str().unwrap_or_default().to_owned();
            let uri = a.body["uri"].as_str().unwrap_or_default().to_owned();
            let view = View {
                enrolment: Some((secret, uri)),
                ..View::default()
            };
            let mut page = show(&state, &caller, session.as_deref(), view).await;
            // The handler's audit note travels with the page.
            page.extensions_mut().extend(a.extensions);
            page
        }
        Err(e) => show(&state, &caller, session.as_deref(), refused(e)).await,
    }
}

/// `POST /console/account/totp/confirm`: confirms with the first code through the API's
/// `confirm_totp`; shows the recovery codes once.
pub async fn confirm(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
    body: Bytes,
) -> Response {
    let f = super::fields(&body);
    let req = TotpCode {
        code: field(&f, "code").unwrap_or_default().trim().to_owned(),
    };
    let result = signin::confirm_totp(
        State(state.clone()),
        Extension(caller.clone()),
        session.clone(),
        ApiJson(req),
    )
    .await;
    match result {
        Ok(resp) => {
            let a = answer(resp).await;
            let recovery: Vec<String> = a.body["recovery_codes"]
                .as_array()
                .map(|v| {
                    v.iter()
                        .filter_map(|c| c.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let view = View {
                recovery,
                ..View::default()
            };
            // The session may have just become a full one: shown as it now stands.
            let mut page = show(&state, &caller, session.as_deref(), view).await;
            page.extensions_mut().extend(a.extensions);
            page
        }
        Err(e) => show(&state, &caller, session.as_deref(), refused(e)).await,
    }
}
