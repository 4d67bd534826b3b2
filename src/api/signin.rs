//! Browser sign-in and second factors: `POST /api/v1/session` (a session cookie for the web
//! console), `GET /api/v1/session` (the session and its CSRF token), and TOTP enrolment,
//! confirmation and removal. The mechanics of sessions and CSRF are in [`super::session`]; the
//! password and code checks are shared with the token login in [`super::users`].
//!
//! Sign-in takes JSON or an HTML form (`application/x-www-form-urlencoded`), so a
//! server-rendered console can post its login form straight here. A user whose role is listed
//! in `auth.require_totp` and who has no second factor yet gets a session in the state
//! `totp_enrolment_required`, which may only enrol one (`POST /api/v1/me/totp`, then
//! `POST /api/v1/me/totp/confirm`); confirming makes the session a full one.

use super::authz::{noted, AuditNote, Caller, ClientAddr};
use super::extract::ApiJson;
use super::openapi::PROBLEM;
use super::session::{self, SessionAuth};
use super::users::{prove, use_code};
use super::{ApiError, AppState};
use crate::domain::TotpRecord;
use crate::domain::{Role, UserName};
use crate::store::port::{SecondFactors, Sessions, Users};
use crate::store::StoreError;
use crate::totp;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// A JSON or HTML-form body.
pub struct JsonOrForm<T>(pub T);

impl<S, T> FromRequest<S> for JsonOrForm<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !form {
            return ApiJson::<T>::from_request(req, state)
                .await
                .map(|ApiJson(v)| JsonOrForm(v));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| super::extract::too_large())?;
        serde_urlencoded::from_bytes(&bytes)
            .map(JsonOrForm)
            .map_err(|e| {
                ApiError::unprocessable(format!("the form does not match the expected fields: {e}"))
            })
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "credential failure");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the server could not handle the credential; check the server log",
    )
}

fn no_store(resp: &mut Response) {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// A browser sign-in.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionLogin {
    pub user: String,
    pub password: String,
    /// The second factor, for a user who has one: six digits, or a recovery code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// A browser session, as its owner sees it.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionInfo {
    /// `active`, or `totp_enrolment_required`: the session may only enrol a second factor
    /// (`POST /api/v1/me/totp`, then `POST /api/v1/me/totp/confirm`).
    pub state: String,
    /// The session's public id (the audit log names it); not the cookie's secret.
    #[schema(value_type = String)]
    pub id: Ulid,
    #[schema(value_type = String)]
    pub user: UserName,
    pub role: Role,
    /// Send it back with every write: header `X-CSRF-Token`, or form field `csrf`.
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    /// When the session ends unless it is used before.
    pub idle_expires_at: DateTime<Utc>,
    /// When it ends however much it is used.
    pub expires_at: DateTime<Utc>,
}

fn info(state: &AppState, auth: &SessionAuth) -> SessionInfo {
    let (idle, absolute) = auth.expiry(&state.team.auth);
    SessionInfo {
        state: if auth.session.enrol_only {
            "totp_enrolment_required".into()
        } else {
            "active".into()
        },
        id: auth.session.id,
        user: auth.session.user.clone(),
        role: auth.session.role,
        csrf_token: auth.csrf.clone(),
        created_at: auth.session.created_at,
        idle_expires_at: idle,
        expires_at: absolute,
    }
}

/// Signs in to a browser session: sets the `crier_session` cookie (`HttpOnly`,
/// `SameSite=Strict`, `Secure` behind an https `public_url`) and returns the session's CSRF
/// token. Takes JSON or an HTML form.
#[utoipa::path(
    post,
    path = "/api/v1/session",
    operation_id = "signIn",
    tag = "team",
    request_body(content(
        (SessionLogin = "application/json"),
        (SessionLogin = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 201, description = "Signed in (see `state`); the cookie is set", body = SessionInfo,
            headers(("set-cookie" = String, description = "crier_session=…; HttpOnly; SameSite=Strict; Path=/"))),
        (status = 400, description = "The body is not JSON", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "Wrong user name or password, or a disabled account (one answer for all); or, with `field` = `code`, a second factor missing or wrong", body = super::error::Problem, content_type = PROBLEM),
        (status = 403, description = "Posted from another site (`Origin` / `Sec-Fetch-Site`)", body = super::error::Problem, content_type = PROBLEM),
        (status = 413, description = "The body is too large", body = super::error::Problem, content_type = PROBLEM),
        (status = 415, description = "Neither JSON nor a form", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "A field is invalid", body = super::error::Problem, content_type = PROBLEM),
        (status = 429, description = "Too many failed logins for this user or from this address; `Retry-After` says when to try again", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn sign_in(
    State(state): State<AppState>,
    Extension(ClientAddr(addr)): Extension<ClientAddr>,
    headers: HeaderMap,
    JsonOrForm(req): JsonOrForm<SessionLogin>,
) -> Result<Response, ApiError> {
    // Login CSRF: a sign-in form posted from another site is refused.
    if let Err(why) = session::same_origin(&state, &headers) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "refused as a possible cross-site request: {why}; sign in from crier's own pages"
            ),
        ));
    }
    let proved = match prove(&state, addr, &req.user, req.password, req.code).await {
        Ok(p) => p,
        Err(answer) => return Ok(answer),
    };
    let now = state.team.auth.clock.now();
    state
        .store
        .prune_sessions(
            now,
            state.team.auth.session_idle,
            state.team.auth.session_absolute,
        )
        .await?;
    let (secret, hash) = session::new_secret().map_err(internal)?;
    let record = session::new_session(&proved.user, now, proved.enrol_only);
    state.store.add_session(&hash, &record).await?;
    let auth = SessionAuth {
        hash,
        csrf: session::csrf_token(&secret),
        session: record,
    };
    let body = info(&state, &auth);
    let mut resp = (StatusCode::CREATED, Json(body)).into_response();
    if let Some(c) = session::set_cookie(&state.team.auth, &secret) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    no_store(&mut resp);
    let note = AuditNote {
        actor: Some(proved.user.name.to_string()),
        role: Some(proved.user.role),
        target: Some(proved.user.name.to_string()),
        summary: format!(
            "session {} began{}",
            auth.session.id,
            match (proved.enrol_only, proved.factor) {
                (true, _) => " (may only enrol a second factor)".to_owned(),
                (false, Some(f)) => format!("; second factor: {f}"),
                (false, None) => String::new(),
            }
        ),
        ..Default::default()
    };
    Ok(noted(resp, note))
}

/// The caller's session and its CSRF token (a server-rendered page puts the token in its
/// forms).
#[utoipa::path(
    get,
    path = "/api/v1/session",
    operation_id = "showSession",
    tag = "team",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The session", body = SessionInfo),
        (status = 401, description = "No valid session cookie", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "The request carried a bearer token, not a session cookie", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn show_session(
    State(state): State<AppState>,
    session: Option<Extension<SessionAuth>>,
) -> Result<Response, ApiError> {
    let Some(Extension(auth)) = session else {
        return Err(ApiError::unprocessable(
            "this request was made with a bearer token, not a session; sign in with POST /api/v1/session",
        ));
    };
    let mut resp = Json(info(&state, &auth)).into_response();
    no_store(&mut resp);
    Ok(resp)
}

/// A second factor to confirm, shown once.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct TotpEnrolment {
    /// The shared secret (base32), for typing into the app.
    pub secret: String,
    /// The same as an `otpauth://totp/…` URI, for a QR code.
    pub uri: String,
}

fn user_of(caller: &Caller) -> Result<UserName, ApiError> {
    caller.user.clone().ok_or_else(|| {
        ApiError::unprocessable(
            "the bootstrap admin token belongs to no user and has no second factor; sign in as a user",
        )
    })
}

/// Starts enrolling a TOTP second factor: returns a new secret (once). It takes effect when
/// confirmed with a code (`POST /api/v1/me/totp/confirm`); starting again replaces an
/// unconfirmed one.
#[utoipa::path(
    post,
    path = "/api/v1/me/totp",
    operation_id = "beginTotp",
    tag = "team",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The secret, shown once", body = TotpEnrolment),
        (status = 401, description = "No valid credential", body = super::error::Problem, content_type = PROBLEM),
        (status = 403, description = "A cookie-authenticated request without the session's CSRF token, or from another site", body = super::error::Problem, content_type = PROBLEM),
        (status = 409, description = "A second factor is already enabled; disable it first", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "The caller is the bootstrap admin", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn begin_totp(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    let name = user_of(&caller)?;
    let secret = totp::new_secret().map_err(internal)?;
    let record = TotpRecord {
        secret: totp::base32_encode(&secret),
        enabled: false,
        last_step: None,
        recovery: Vec::new(),
        created_at: state.team.auth.clock.now(),
    };
    state
        .store
        .change_totp(&name, move |current| {
            if current.is_some_and(|c| c.enabled) {
                return Err(StoreError::Conflict(
                    "you already have a second factor; to replace it, disable it first (`crier totp disable --code …`)"
                        .into(),
                ));
            }
            Ok((Some(record.clone()), ()))
        })
        .await?;
    let body = TotpEnrolment {
        uri: totp::uri(&state.team.auth.issuer, name.as_str(), &secret),
        secret: totp::base32_encode(&secret),
    };
    let mut resp = (StatusCode::CREATED, Json(body)).into_response();
    no_store(&mut resp);
    Ok(noted(
        resp,
        AuditNote {
            target: Some(name.to_string()),
            summary: "second factor enrolment started".into(),
            ..Default::default()
        },
    ))
}

/// A code from the authenticator app (or, to disable, a recovery code).
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    pub code: String,
}

/// The recovery codes, shown once.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecoveryCodes {
    /// Each signs in once in place of a code from the app. Keep them somewhere safe.
    pub recovery_codes: Vec<String>,
}

/// Confirms the second factor with its first code: from now on signing in needs a code.
/// Returns 10 recovery codes (once). An enrol-only session becomes a full one.
#[utoipa::path(
    post,
    path = "/api/v1/me/totp/confirm",
    operation_id = "confirmTotp",
    tag = "team",
    security(("bearer" = [])),
    request_body = TotpCode,
    responses(
        (status = 200, description = "Enabled; the recovery codes, shown once", body = RecoveryCodes),
        (status = 400, description = "The body is not JSON", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "No valid credential", body = super::error::Problem, content_type = PROBLEM),
        (status = 403, description = "A cookie-authenticated request without the session's CSRF token, or from another site", body = super::error::Problem, content_type = PROBLEM),
        (status = 409, description = "Nothing to confirm, or already enabled", body = super::error::Problem, content_type = PROBLEM),
        (status = 413, description = "The body is too large", body = super::error::Problem, content_type = PROBLEM),
        (status = 415, description = "Not `Content-Type: application/json`", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "The code is wrong", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn confirm_totp(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
    ApiJson(req): ApiJson<TotpCode>,
) -> Result<Response, ApiError> {
    let name = user_of(&caller)?;
    let codes = totp::new_recovery_codes().map_err(internal)?;
    let hashes: Vec<String> = codes
        .iter()
        .map(|c| hex::encode(totp::recovery_hash(name.as_str(), c)))
        .collect();
    let now = state.team.auth.clock.now().timestamp();
    let code = req.code;
    let confirmed = state
        .store
        .change_totp(&name, move |current| {
            let Some(mut r) = current.filter(|c| !c.enabled) else {
                return Err(StoreError::Conflict(
                    "there is no second factor waiting to be confirmed; start with POST /api/v1/me/totp (`crier totp enrol`)"
                        .into(),
                ));
            };
            let secret = totp::base32_decode(&r.secret)
                .ok_or_else(|| StoreError::Corrupt("a TOTP secret is not base32".into()))?;
            let Some(step) = totp::verify(&secret, &code, now, None) else {
                return Ok((Some(r), false));
            };
            r.enabled = true;
            r.last_step = Some(step);
            r.recovery = hashes.clone();
            Ok((Some(r), true))
        })
        .await?;
    if !confirmed {
        return Err(ApiError {
            field: Some("code"),
            ..ApiError::unprocessable(
                "code: that is not the code the app shows for this secret now; check the phone's clock and type the current six digits",
            )
        });
    }
    if let Some(Extension(auth)) = session.filter(|s| s.session.enrol_only) {
        state.store.upgrade_session(&auth.hash).await?;
    }
    let mut resp = Json(RecoveryCodes {
        recovery_codes: codes,
    })
    .into_response();
    no_store(&mut resp);
    Ok(noted(
        resp,
        AuditNote {
            target: Some(name.to_string()),
            summary: format!(
                "second factor enabled; {} recovery codes",
                totp::RECOVERY_CODES
            ),
            ..Default::default()
        },
    ))
}

/// Removes the caller's second factor; takes a current code or a recovery code.
#[utoipa::path(
    post,
    path = "/api/v1/me/totp/disable",
    operation_id = "disableTotp",
    tag = "team",
    security(("bearer" = [])),
    request_body = TotpCode,
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "The body is not JSON", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "No valid credential", body = super::error::Problem, content_type = PROBLEM),
        (status = 403, description = "A cookie-authenticated request without the session's CSRF token, or from another site", body = super::error::Problem, content_type = PROBLEM),
        (status = 409, description = "No second factor to remove", body = super::error::Problem, content_type = PROBLEM),
        (status = 413, description = "The body is too large", body = super::error::Problem, content_type = PROBLEM),
        (status = 415, description = "Not `Content-Type: application/json`", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "The code is wrong", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn disable_totp(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<TotpCode>,
) -> Result<Response, ApiError> {
    let name = user_of(&caller)?;
    if !state.store.totp(&name).await?.is_some_and(|t| t.enabled) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "you have no second factor to disable",
        ));
    }
    let Some(factor) = use_code(&state, &name, &req.code).await? else {
        return Err(ApiError {
            field: Some("code"),
            ..ApiError::unprocessable(
                "code: wrong or already used; give the current code from the app, or a recovery code",
            )
        });
    };
    state.store.change_totp(&name, |_| Ok((None, ()))).await?;
    let required = state.team.auth.totp_required(caller.role);
    Ok(noted(
        StatusCode::NO_CONTENT,
        AuditNote {
            target: Some(name.to_string()),
            summary: format!(
                "second factor disabled with a {factor}{}",
                if required {
                    "; the role requires one, so the next sign-in must enrol again"
                } else {
                    ""
                }
            ),
            ..Default::default()
        },
    ))
}

/// Removes a user's second factor (a lost phone and lost recovery codes) and ends their
/// sessions; they enrol again at their next sign-in if their role requires it.
#[utoipa::path(
    delete,
    path = "/api/v1/users/{name}/totp",
    operation_id = "resetTotp",
    tag = "team",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The user's login name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No valid credential", body = super::error::Problem, content_type = PROBLEM),
        (status = 403, description = "Not an admin", body = super::error::Problem, content_type = PROBLEM),
        (status = 404, description = "No such user", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "Not a user name", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn reset_totp(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = UserName::parse(&name)?;
    if state.store.user(&name).await?.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("user {name} not found; see `crier users list`"),
        ));
    }
    let had = state
        .store
        .change_totp(&name, |current| {
            Ok((None, current.is_some_and(|c| c.enabled)))
        })
        .await?;
    let ended = state.store.end_sessions_of(&name).await?;
    Ok(noted(
        StatusCode::NO_CONTENT,
        AuditNote {
            target: Some(name.to_string()),
            summary: format!(
                "{}; {ended} session(s) ended",
                if had {
                    "second factor removed"
                } else {
                    "had no second factor"
                }
            ),
            ..Default::default()
        },
    ))
}
