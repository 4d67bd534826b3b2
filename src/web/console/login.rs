//! Signing in and out: the login form posts to the console, which calls the API's sign-in
//! ([`crate::api::signin::sign_in`]: the same password and second-factor checks, the same
//! throttle, the same single answer for every failure, the same audit entries).

use super::{answer, field, fields, EN};
use crate::api::authz::{Caller, ClientAddr};
use crate::api::session::SessionAuth;
use crate::api::signin::{sign_in, JsonOrForm, SessionLogin};
use crate::api::AppState;
use crate::web::page::render;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use minijinja::context;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct LoginQuery {
    ended: Option<String>,
    out: Option<String>,
    enrol: Option<String>,
    next: Option<String>,
}

/// Only a console page may be the page to go to after signing in.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/console/") && !n.contains("//") && !n.contains('\\') => {
            n.to_owned()
        }
        _ => "/console/".to_owned(),
    }
}

/// `GET /console/login`.
pub async fn page(State(state): State<AppState>, Query(q): Query<LoginQuery>) -> Response {
    let notice = if q.ended.is_some() {
        Some("Your session has ended (signed out, expired, or your account changed). Sign in again; nothing you had not sent was saved.")
    } else if q.enrol.is_some() {
        Some("Your role needs a second factor and you have none yet: sign in with your password and enrol one on the account page that follows (or with `crier totp enrol --user NAME`), then sign in here with a code.")
    } else if q.out.is_some() {
        Some("You are signed out.")
    } else {
        None
    };
    render(
        &state,
        EN,
        "console/login.html",
        context! { notice => notice, next => safe_next(q.next.as_deref()) },
    )
}

/// `POST /console/login`: signs in through the API's sign-in and goes on to the console.
pub async fn submit(
    State(state): State<AppState>,
    addr: Extension<ClientAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = fields(&body);
    let user = field(&f, "user").unwrap_or_default().to_owned();
    let next = safe_next(field(&f, "next"));
    let login = SessionLogin {
        user: user.clone(),
        password: field(&f, "password").unwrap_or_default().to_owned(),
        code: field(&f, "code").map(str::to_owned),
    };
    let form_again =
        |status: StatusCode, error: String, code_error: bool, a: Option<super::Answer>| {
            let mut resp = render(
                &state,
                EN,
                "console/login.html",
                context! { user => user, next => next, error => error, code_error => code_error },
            );
            *resp.status_mut() = status;
            if let Some(a) = a {
                // The failed login's audit note (the middleware records it).
                *resp.extensions_mut() = a.extensions;
            }
            resp
        };
    let resp = match sign_in(State(state.clone()), addr, headers, JsonOrForm(login)).await {
        Ok(r) => r,
        Err(e) => return form_again(e.status, e.detail, false, None),
    };
    let cookie = resp.headers().get(header::SET_COOKIE).cloned();
    let retry_after = resp.headers().get(header::RETRY_AFTER).cloned();
    let a = answer(resp).await;
    if a.status.is_success() {
        let enrol = a.body["state"] == "totp_enrolment_required";
        let to = if enrol {
            "/console/account".to_owned()
        } else {
            next
        };
        let mut resp = a.redirect(&to);
        if let Some(c) = cookie {
            resp.headers_mut().insert(header::SET_COOKIE, c);
        }
        return resp;
    }
    let detail = a.body["detail"]
        .as_str()
        .unwrap_or("sign-in failed")
        .to_owned();
    let code_error = a.body["field"] == "code";
    let status = a.status;
    let mut resp = form_again(status, detail, code_error, Some(a));
    if let Some(r) = retry_after {
        resp.headers_mut().insert(header::RETRY_AFTER, r);
    }
    resp
}

/// `POST /console/logout`: ends the session through the API's logout.
pub async fn logout(
    State(state): State<AppState>,
    caller: Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
) -> Response {
    match crate::api::users::logout(State(state), caller, session).await {
        Ok(resp) => {
            let cookie = resp.headers().get(header::SET_COOKIE).cloned();
            let a = answer(resp).await;
            let mut resp = a.redirect("/console/login?out=1");
            if let Some(c) = cookie {
                resp.headers_mut().insert(header::SET_COOKIE, c);
            }
            resp
        }
        Err(e) => axum::response::IntoResponse::into_response(e),
    }
}
