//! People: signing in and out, oneself, personal tokens, users (admins), and the audit log.
//!
//! Who may call what is decided by the table in [`super::authz`], not here; these handlers add
//! the rules that depend on the caller (a token's role never above its owner's; only one's own
//! tokens unless admin) and the detail of each audit entry.

use super::authz::{forbidden, noted, AuditNote, Caller, ClientAddr};
use super::extract::{ApiJson, ApiQuery};
use super::openapi::PROBLEM;
use super::session::SessionAuth;
use super::{ApiError, AppState};
use crate::credentials;
use crate::domain::audit::AuditEntry;
use crate::domain::audit::AuditFilter;
use crate::domain::user::{check_display_name, check_password, check_token_name};
use crate::domain::{ApiToken, Contact, PhoneNumber, Role, Span, User, UserName};
use crate::store::port::{Audit, SecondFactors, Sessions, Tokens, Users};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// How long a token made by `login` lasts unless the request says otherwise.
pub const LOGIN_TOKEN_LIFETIME: &str = "30d";

/// The one answer to every failed login: wrong password, unknown user and disabled user alike.
const LOGIN_FAILED: &str =
    "wrong user name or password (or the account is disabled); check both and try again";

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "credential failure");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the server could not handle the credential; check the server log",
    )
}

fn span_field(s: &str) -> Result<Span, ApiError> {
    Span::parse_in(s, Span::parse("1m").map_err(internal)?, Span::MAX).map_err(|e| ApiError {
        field: Some("expires"),
        ..ApiError::unprocessable(format!("expires: {e}"))
    })
}

/// A token just made: its secret is in this answer and nowhere else.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewToken {
    /// The secret: send it as `Authorization: Bearer <token>`. Shown once.
    pub token: String,
    #[serde(flatten)]
    pub record: ApiToken,
}

async fn make_token(
    state: &AppState,
    owner: &User,
    name: String,
    role: Role,
    expires: Option<&str>,
) -> Result<NewToken, ApiError> {
    let now = state.dispatcher.now();
    let expires_at = match expires {
        Some(s) => Some(now + span_field(s)?.as_chrono()),
        None => None,
    };
    let (secret, hash) = credentials::new_token().map_err(internal)?;
    let record = ApiToken {
        id: Ulid::new(),
        name,
        owner: owner.name.clone(),
        role,
        created_at: now,
        expires_at,
        last_used_at: None,
        revoked_at: None,
    };
    state.store.add_token(&record, &hash).await?;
    Ok(NewToken {
        token: secret,
        record,
    })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(internal)
}

/// Runs an argon2 computation off the async workers, at most [`super::authz::HASHING`] at a
/// time: each takes 19 MiB and tens of milliseconds, so a flood of logins queues here instead
/// of taking the server's memory.
async fn hashing<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let _permit = state.team.hashing.acquire().await.map_err(internal)?;
    blocking(f).await
}

/// A login.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub user: String,
    pub password: String,
    /// The second factor, for a user who has one: six digits from the authenticator app, or
    /// one of the recovery codes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The new token's name (default "login").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_name: Option<String>,
    /// Its lifetime, e.g. 12h or 90d (default 30d).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// The answer to a right password without the second factor the account has.
pub const CODE_REQUIRED: &str = "this account has a second factor: send \"code\" with the six digits your authenticator app shows (or one of your recovery codes)";
/// The answer to a wrong second factor.
const CODE_WRONG: &str = "that one-time code is wrong or was already used; wait for the next code and try again (or use a recovery code)";

/// What a password, and the second factor when the user has one, proved.
pub(super) struct Proved {
    pub user: User,
    /// The user's role needs a second factor they have not enrolled yet.
    pub enrol_only: bool,
    /// "totp" or "recovery code", when one was used.
    pub factor: Option<&'static str>,
}

/// Checks a code — a TOTP code (refused if its time step, or a later one, was used before) or
/// a recovery code (used up) — against the user's enabled second factor. Returns which kind
/// matched.
pub(super) async fn use_code(
    state: &AppState,
    user: &UserName,
    code: &str,
) -> Result<Option<&'static str>, ApiError> {
    let now = state.team.auth.clock.now().timestamp();
    let owner = user.to_string();
    let code = code.to_owned();
    let used = state
        .store
        .change_totp(user, move |rec| {
            let Some(mut r) = rec.filter(|r| r.enabled) else {
                return Ok((None, None));
            };
            let secret = crate::totp::base32_decode(&r.secret).ok_or_else(|| {
                crate::store::StoreError::Corrupt("a TOTP secret is not base32".into())
            })?;
            if let Some(step) = crate::totp::verify(&secret, &code, now, r.last_step) {
                r.last_step = Some(step);
                return Ok((Some(r), Some("totp")));
            }
            if crate::totp::as_code(&code).is_none() {
                let h = hex::encode(crate::totp::recovery_hash(&owner, &code));
                if let Some(i) = r
                    .recovery
                    .iter()
                    .position(|x| crate::token::constant_time_eq(x.as_bytes(), h.as_bytes()))
                {
                    r.recovery.remove(i);
                    return Ok((Some(r), Some("recovery code")));
                }
            }
            Ok((Some(r), None))
        })
        .await?;
    Ok(used)
}

/// The throttle's answer.
fn locked(wait: std::time::Duration) -> Response {
    let mut resp = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "too many failed logins; try again in {} minutes",
            wait.as_secs().div_ceil(60)
        ),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Checks a user name and password (throttled; one answer for every failure) and then the
/// second factor if the user has one. `Err` is the answer to give.
pub(super) async fn prove(
    state: &AppState,
    addr: Option<std::net::IpAddr>,
    user_field: &str,
    password: String,
    code: Option<String>,
) -> Result<Proved, Response> {
    let name = UserName::parse(user_field).ok();
    // Only a well-formed name is recorded: a password typed into the name field is not.
    let target = name
        .as_ref()
        .map_or_else(|| "(not a user name)".to_owned(), |n| n.to_string());
    if let Some(wait) = state.team.throttle.locked(user_field, addr) {
        tracing::warn!(user = %target, "login refused: too many failures");
        return Err(locked(wait));
    }
    let fail = |e: ApiError| e.into_response();
    let user = match &name {
        Some(n) => state.store.user(n).await.map_err(|e| fail(e.into()))?,
        None => None,
    };
    let phc = match &user {
        Some(u) => state
            .store
            .password_hash(&u.name)
            .await
            .map_err(|e| fail(e.into()))?,
        None => None,
    };
    let usable = user.as_ref().is_some_and(|u| !u.disabled) && phc.is_some();
    // The same argon2 work for every answer: an unknown user is checked against a dummy hash.
    let matches = hashing(state, move || {
        let phc = phc.as_deref().unwrap_or_else(|| credentials::dummy_hash());
        credentials::verify_password(&password, phc)
    })
    .await
    .map_err(fail)?;
    let Some(user) = user.filter(|_| usable && matches) else {
        state.team.throttle.failed(user_field, addr);
        return Err(noted(
            ApiError::new(StatusCode::UNAUTHORIZED, LOGIN_FAILED),
            AuditNote {
                action: Some("login.failed".into()),
                actor: Some("anonymous".into()),
                target: Some(target),
                force: true,
                ..Default::default()
            },
        ));
    };
    let enrolled = state
        .store
        .totp(&user.name)
        .await
        .map_err(|e| fail(e.into()))?
        .is_some_and(|t| t.enabled);
    if !enrolled {
        state.team.throttle.succeeded(user_field);
        return Ok(Proved {
            enrol_only: state.team.auth.totp_required(user.role),
            user,
            factor: None,
        });
    }
    let Some(code) = code.filter(|c| !c.trim().is_empty()) else {
        return Err(fail(ApiError {
            field: Some("code"),
            ..ApiError::new(StatusCode::UNAUTHORIZED, CODE_REQUIRED)
        }));
    };
    match use_code(state, &user.name, &code).await.map_err(fail)? {
        Some(factor) => {
            state.team.throttle.succeeded(user_field);
            Ok(Proved {
                user,
                enrol_only: false,
                factor: Some(factor),
            })
        }
        None => {
            // A wrong code counts as a failed login: six digits are not guessed in five tries.
            state.team.throttle.failed(user_field, addr);
            Err(noted(
                ApiError {
                    field: Some("code"),
                    ..ApiError::new(StatusCode::UNAUTHORIZED, CODE_WRONG)
                },
                AuditNote {
                    action: Some("login.failed".into()),
                    actor: Some("anonymous".into()),
                    target: Some(target),
                    summary: "wrong second factor".into(),
                    force: true,
                    ..Default::default()
                },
            ))
        }
    }
}

/// Signs in with a user name and password (and the second factor, when the user has one) and
/// returns a new personal token.
#[utoipa::path(
    post,
    path = "/api/v1/login",
    operation_id = "login",
    tag = "team",
    request_body = Login,
    responses(
        (status = 201, description = "Signed in; the token is shown once", body = NewToken),
        (status = 400, description = "The body is not JSON", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "Wrong user name or password, or a disabled account (one answer for all); or, with `field` = `code`, a second factor missing or wrong", body = super::error::Problem, content_type = PROBLEM),
        (status = 403, description = "The user's role needs a second factor they have not enrolled: sign in to a session (`POST /api/v1/session`) and enrol one", body = super::error::Problem, content_type = PROBLEM),
        (status = 413, description = "The body is too large", body = super::error::Problem, content_type = PROBLEM),
        (status = 415, description = "Not `Content-Type: application/json`", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "A field is invalid", body = super::error::Problem, content_type = PROBLEM),
        (status = 429, description = "Too many failed logins for this user or from this address; `Retry-After` says when to try again", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    Extension(ClientAddr(addr)): Extension<ClientAddr>,
    ApiJson(req): ApiJson<Login>,
) -> Result<Response, ApiError> {
    let proved = match prove(&state, addr, &req.user, req.password, req.code).await {
        Ok(p) => p,
        Err(answer) => return Ok(answer),
    };
    let user = proved.user;
    if proved.enrol_only {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "your role ({}) needs a second factor and you have none yet: enrol one first (`crier totp enrol --user {}`, or sign in to the console), then sign in with its code",
                user.role, user.name
            ),
        ));
    }
    let name = match req.token_name {
        Some(n) => check_token_name(&n)?,
        None => "login".to_owned(),
    };
    let expires = req
        .expires
        .unwrap_or_else(|| LOGIN_TOKEN_LIFETIME.to_owned());
    let made = make_token(&state, &user, name, user.role, Some(&expires)).await?;
    let note = AuditNote {
        actor: Some(user.name.to_string()),
        role: Some(user.role),
        target: Some(user.name.to_string()),
        summary: format!(
            "token {} ({}) made{}",
            made.record.id,
            made.record.name,
            proved
                .factor
                .map_or_else(String::new, |f| format!("; second factor: {f}"))
        ),
        ..Default::default()
    };
    Ok(noted((StatusCode::CREATED, Json(made)), note))
}

/// Revokes the token this request was made with, or ends the session (and clears its cookie).
#[utoipa::path(
    post,
    path = "/api/v1/logout",
    operation_id = "logout",
    tag = "team",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The token, now revoked", body = ApiToken),
        (status = 204, description = "The session ended; its cookie is cleared"),
        (status = 403, description = "A cookie-authenticated request without the session's CSRF token, or from another site", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "The bootstrap admin token cannot be logged out", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
) -> Result<Response, ApiError> {
    if let (None, Some(Extension(auth))) = (caller.token, session) {
        state.store.end_session(&auth.hash).await?;
        let mut resp = StatusCode::NO_CONTENT.into_response();
        resp.headers_mut().insert(
            header::SET_COOKIE,
            super::session::clear_cookie(&state.team.auth),
        );
        let note = AuditNote {
            target: Some(format!("session {}", auth.session.id)),
            summary: "session ended".into(),
            ..Default::default()
        };
        return Ok(noted(resp, note));
    }
    let Some(id) = caller.token else {
        return Err(ApiError::unprocessable(
            "the bootstrap admin token is not a login; to replace it, delete <data>/admin.token (or change $CRIER_ADMIN_TOKEN) and restart crier",
        ));
    };
    let token = state.store.revoke_token(id, state.dispatcher.now()).await?;
    let note = AuditNote {
        target: Some(format!("token {id}")),
        ..Default::default()
    };
    Ok(noted(Json(token), note))
}

/// Who the caller is.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    pub actor: String,
    pub role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub token: Option<Ulid>,
    /// The browser session, when the request came with its cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub session: Option<Ulid>,
    /// Whether the user has a TOTP second factor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totp: Option<bool>,
}

/// The caller: user, effective role and token.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    operation_id = "me",
    tag = "team",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = Me),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn me(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Me>, ApiError> {
    let user = match &caller.user {
        Some(n) => state.store.user(n).await?,
        None => None,
    };
    let totp = match &caller.user {
        Some(n) => Some(state.store.totp(n).await?.is_some_and(|t| t.enabled)),
        None => None,
    };
    Ok(Json(Me {
        actor: caller.actor,
        role: caller.role,
        user,
        token: caller.token,
        session: caller.session,
        totp,
    }))
}

/// A password change.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current: String,
    pub new: String,
}

/// Changes the caller's own password.
#[utoipa::path(
    post,
    path = "/api/v1/me/password",
    operation_id = "changePassword",
    tag = "team",
    security(("bearer" = [])),
    request_body = ChangePassword,
    responses(
        (status = 204, description = "Changed"),
        (status = 400, description = "The body is not JSON", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 413, description = "The body is too large", body = super::error::Problem, content_type = PROBLEM),
        (status = 415, description = "Not `Content-Type: application/json`", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "The current password is wrong, or the new one breaks the rule", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn change_password(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<ChangePassword>,
) -> Result<Response, ApiError> {
    let Some(name) = caller.user.clone() else {
        return Err(ApiError::unprocessable(
            "the bootstrap admin token has no password; sign in as a user",
        ));
    };
    check_password(&name, &req.new)?;
    let phc = state.store.password_hash(&name).await?;
    let current = req.current;
    let ok = hashing(&state, move || {
        credentials::verify_password(
            &current,
            phc.as_deref().unwrap_or_else(|| credentials::dummy_hash()),
        )
    })
    .await?;
    if !ok {
        return Err(ApiError {
            field: Some("current"),
            ..ApiError::unprocessable("current: this is not your password")
        });
    }
    let new = req.new;
    let phc = hashing(&state, move || credentials::hash_password(&new))
        .await?
        .map_err(internal)?;
    state.store.set_password(&name, &phc).await?;
    Ok(noted(
        StatusCode::NO_CONTENT,
        AuditNote {
            target: Some(name.to_string()),
            summary: "password changed".into(),
            ..Default::default()
        },
    ))
}

/// A token to make.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// What it is for, e.g. "laptop" or "monitoring".
    pub name: String,
    /// At most the caller's role (default: the caller's role).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Lifetime, e.g. 90d (default: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// Makes a personal token for the caller.
#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    operation_id = "createToken",
    tag = "team",
    security(("bearer" = [])),
    request_body = CreateToken,
    responses(
        (status = 201, description = "Made; the token is shown once", body = NewToken),
        (status = 400, description = "The body is not JSON", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 403, description = "The role asked for is above the caller's", body = super::error::Problem, content_type = PROBLEM),
        (status = 413, description = "The body is too large", body = super::error::Problem, content_type = PROBLEM),
        (status = 415, description = "Not `Content-Type: application/json`", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "A field is invalid, or the caller is the bootstrap admin", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn create_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<CreateToken>,
) -> Result<Response, ApiError> {
    let Some(owner) = caller.user.as_ref() else {
        return Err(ApiError::unprocessable(
            "the bootstrap admin token has no user to own a token; add one (`crier users add NAME --role admin`) and `crier login`",
        ));
    };
    let user = state
        .store
        .user(owner)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let name = check_token_name(&req.name)?;
    let role = req.role.unwrap_or(caller.role);
    if role > caller.role {
        return Err(forbidden(caller.role, role));
    }
    let made = make_token(&state, &user, name, role, req.expires.as_deref()).await?;
    let note = AuditNote {
        target: Some(format!("token {}", made.record.id)),
        summary: format!(
            "\"{}\" for {}, role {}, expires {}",
            made.record.name,
            made.record.owner,
            made.record.role,
            made.record
                .expires_at
                .map_or_else(|| "never".to_owned(), |e| e.to_rfc3339())
        ),
        ..Default::default()
    };
    Ok(noted((StatusCode::CREATED, Json(made)), note))
}

/// Lists the caller's tokens (an admin's: everyone's), oldest first. Secrets are never shown.
#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    operation_id = "listTokens",
    tag = "team",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The tokens", body = Vec<ApiToken>),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn list_tokens(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Vec<ApiToken>>, ApiError> {
    let owner = if caller.role == Role::Admin {
        None
    } else {
        caller.user.as_ref()
    };
    let mut tokens = state.store.tokens(owner).await?;
    for t in &mut tokens {
        if let Some(at) = state.team.last_used(t.id) {
            t.last_used_at = Some(t.last_used_at.map_or(at, |old| old.max(at)));
        }
    }
    Ok(Json(tokens))
}

/// Revokes a token: one's own, or anyone's for an admin.
#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{id}",
    operation_id = "revokeToken",
    tag = "team",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The token's id")),
    responses(
        (status = 200, description = "The token, now revoked", body = ApiToken),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 404, description = "No such token of yours", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "Not a token id", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn revoke_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = Ulid::from_string(id.trim()).map_err(|_| {
        ApiError::unprocessable("id: not a token id; see `crier tokens list` for the ids")
    })?;
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("token {id} not found; see `crier tokens list`"),
        )
    };
    let token = state.store.token(id).await?.ok_or_else(not_found)?;
    if caller.role < Role::Admin && caller.user.as_ref() != Some(&token.owner) {
        return Err(not_found());
    }
    let revoked = state.store.revoke_token(id, state.dispatcher.now()).await?;
    let note = AuditNote {
        target: Some(format!("token {id}")),
        summary: format!("\"{}\" of {} revoked", revoked.name, revoked.owner),
        ..Default::default()
    };
    Ok(noted(Json(revoked), note))
}

/// Lists users.
#[utoipa::path(
    get,
    path = "/api/v1/users",
    operation_id = "listUsers",
    tag = "team",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The users, by name", body = Vec<User>),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 403, description = "Not an admin", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn list_users(State(state): State<AppState>) -> Result<Json<Vec<User>>, ApiError> {
    Ok(Json(state.store.users().await?))
}

/// A user to add.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Login name: 2-32 lowercase letters, digits, '.', '-', '_'.
    pub name: String,
    pub role: Role,
    /// Default: the login name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Default: a random one, returned once in the answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// A user just added, with the initial password when crier chose it (shown once).
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedUser {
    pub user: User,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// A user's email address: none when blank, else validated as a subscriber's would be.
fn email_of(v: Option<String>) -> Result<Option<String>, ApiError> {
    match v.filter(|v| !v.trim().is_empty()) {
        None => Ok(None),
        Some(v) => Ok(Some(Contact::email(&v)?.address().to_owned())),
    }
}

/// A user's phone number: none when blank, else [`PhoneNumber::parse`]d.
fn phone_of(v: Option<String>) -> Result<Option<PhoneNumber>, ApiError> {
    match v.filter(|v| !v.trim().is_empty()) {
        None => Ok(None),
        Some(v) => Ok(Some(PhoneNumber::parse(&v)?)),
    }
}

/// Adds a user.
#[utoipa::path(
    post,
    path = "/api/v1/users",
    operation_id = "createUser",
    tag = "team",
    security(("bearer" = [])),
    request_body = CreateUser,
    responses(
        (status = 201, description = "Added", body = CreatedUser),
        (status = 400, description = "The body is not JSON", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 403, description = "Not an admin", body = super::error::Problem, content_type = PROBLEM),
        (status = 409, description = "The name is taken", body = super::error::Problem, content_type = PROBLEM),
        (status = 413, description = "The body is too large", body = super::error::Problem, content_type = PROBLEM),
        (status = 415, description = "Not `Content-Type: application/json`", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "A field is invalid", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn create_user(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CreateUser>,
) -> Result<Response, ApiError> {
    let name = UserName::parse(&req.name)?;
    let display_name = check_display_name(req.display_name.as_deref().unwrap_or(name.as_str()))?;
    let user = User {
        display_name,
        role: req.role,
        email: email_of(req.email)?,
        phone: phone_of(req.phone)?,
        disabled: false,
        created_at: state.dispatcher.now(),
        name,
    };
    let (password, shown) = match req.password {
        Some(p) => (p, false),
        None => {
            let mut p = credentials::random_password().map_err(internal)?;
            while check_password(&user.name, &p).is_err() {
                p = credentials::random_password().map_err(internal)?;
            }
            (p, true)
        }
    };
    check_password(&user.name, &password)?;
    let for_hash = password.clone();
    let phc = hashing(&state, move || credentials::hash_password(&for_hash))
        .await?
        .map_err(internal)?;
    let user = state.store.add_user(user, &phc).await?;
    let note = AuditNote {
        target: Some(user.name.to_string()),
        summary: format!("added as {}", user.role),
        ..Default::default()
    };
    Ok(noted(
        (
            StatusCode::CREATED,
            Json(CreatedUser {
                user,
                password: shown.then_some(password),
            }),
        ),
        note,
    ))
}

/// Changes to a user; absent fields stay as they are.
#[derive(Deserialize, Serialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeUser {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// An empty string removes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// An empty string removes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// Changes a user's role, display name, contact details, or disables/enables them. A disabled
/// user's tokens stop working; a demoted user's tokens are capped at the new role.
#[utoipa::path(
    patch,
    path = "/api/v1/users/{name}",
    operation_id = "changeUser",
    tag = "team",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The user's login name")),
    request_body = ChangeUser,
    responses(
        (status = 200, description = "The user as they now stand", body = User),
        (status = 400, description = "The body is not JSON", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 403, description = "Not an admin", body = super::error::Problem, content_type = PROBLEM),
        (status = 404, description = "No such user", body = super::error::Problem, content_type = PROBLEM),
        (status = 413, description = "The body is too large", body = super::error::Problem, content_type = PROBLEM),
        (status = 415, description = "Not `Content-Type: application/json`", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "A field is invalid, or nothing to change", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn change_user(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<ChangeUser>,
) -> Result<Response, ApiError> {
    let name = UserName::parse(&name)?;
    let display_name = req
        .display_name
        .as_deref()
        .map(check_display_name)
        .transpose()?;
    let email = req.email.map(|e| email_of(Some(e))).transpose()?;
    let phone = req.phone.map(|p| phone_of(Some(p))).transpose()?;
    if req.role.is_none()
        && req.disabled.is_none()
        && display_name.is_none()
        && email.is_none()
        && phone.is_none()
    {
        return Err(ApiError::unprocessable(
            "nothing to change; give role, disabled, display_name, email or phone",
        ));
    }
    let (before, after) = state
        .store
        .change_user(&name, |u| {
            let mut u = u.clone();
            if let Some(r) = req.role {
                u.role = r;
            }
            if let Some(d) = req.disabled {
                u.disabled = d;
            }
            if let Some(d) = &display_name {
                u.display_name = d.clone();
            }
            if let Some(e) = &email {
                u.email = e.clone();
            }
            if let Some(p) = &phone {
                u.phone = p.clone();
            }
            Ok(u)
        })
        .await?;
    let mut changes = Vec::new();
    // A new role or a disabled account ends the user's browser sessions: they sign in again
    // (and a session never acts with a role its user no longer has).
    if before.role != after.role || (after.disabled && !before.disabled) {
        let ended = state.store.end_sessions_of(&name).await?;
        if ended > 0 {
            changes.push(format!("{ended} session(s) ended"));
        }
    }
    if before.role != after.role {
        changes.insert(0, format!("role {} → {}", before.role, after.role));
    }
    if before.disabled != after.disabled {
        changes.push(if after.disabled {
            "disabled".to_owned()
        } else {
            "enabled".to_owned()
        });
    }
    if before.display_name != after.display_name {
        changes.push(format!(
            "display name \"{}\" → \"{}\"",
            before.display_name, after.display_name
        ));
    }
    if before.email != after.email {
        changes.push("email changed".to_owned());
    }
    if before.phone != after.phone {
        changes.push("phone changed".to_owned());
    }
    if changes.is_empty() {
        changes.push("no change".to_owned());
    }
    let note = AuditNote {
        target: Some(name.to_string()),
        summary: changes.join(", "),
        ..Default::default()
    };
    Ok(noted(Json(after), note))
}

/// Removes a user; their tokens are revoked.
#[utoipa::path(
    delete,
    path = "/api/v1/users/{name}",
    operation_id = "removeUser",
    tag = "team",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The user's login name")),
    responses(
        (status = 200, description = "The user removed", body = User),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 403, description = "Not an admin", body = super::error::Problem, content_type = PROBLEM),
        (status = 404, description = "No such user", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "Not a user name", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn remove_user(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = UserName::parse(&name)?;
    let removed = state
        .store
        .remove_user(&name, state.dispatcher.now())
        .await?;
    let note = AuditNote {
        target: Some(name.to_string()),
        summary: format!("removed ({}); tokens revoked", removed.role),
        ..Default::default()
    };
    Ok(noted(Json(removed), note))
}

/// A new password, shown once.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResetPassword {
    pub password: String,
    /// How many of the user's tokens were revoked.
    pub revoked_tokens: usize,
}

/// Gives a user a new random password (shown once) and revokes their tokens.
#[utoipa::path(
    post,
    path = "/api/v1/users/{name}/password",
    operation_id = "resetPassword",
    tag = "team",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The user's login name")),
    responses(
        (status = 200, description = "The new password", body = ResetPassword),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 403, description = "Not an admin", body = super::error::Problem, content_type = PROBLEM),
        (status = 404, description = "No such user", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "Not a user name", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn reset_password(
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
    let mut password = credentials::random_password().map_err(internal)?;
    while check_password(&name, &password).is_err() {
        password = credentials::random_password().map_err(internal)?;
    }
    let p = password.clone();
    let phc = hashing(&state, move || credentials::hash_password(&p))
        .await?
        .map_err(internal)?;
    state.store.set_password(&name, &phc).await?;
    let now = state.dispatcher.now();
    let mut revoked = 0;
    for t in state.store.tokens(Some(&name)).await? {
        if t.revoked_at.is_none() {
            state.store.revoke_token(t.id, now).await?;
            revoked += 1;
        }
    }
    let sessions = state.store.end_sessions_of(&name).await?;
    let note = AuditNote {
        target: Some(name.to_string()),
        summary: format!("password reset; {revoked} token(s) revoked, {sessions} session(s) ended"),
        ..Default::default()
    };
    Ok(noted(
        Json(ResetPassword {
            password,
            revoked_tokens: revoked,
        }),
        note,
    ))
}

/// Filters of the audit listing.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries at or after this: RFC 3339, or a span back from now such as 24h or 7d.
    since: Option<String>,
    /// Entries at or before this: RFC 3339, or a span back from now.
    until: Option<String>,
    /// Only this actor (a user name, `admin`, `anonymous`, `hook`).
    actor: Option<String>,
    /// Only this action, or a prefix ending in `.` such as `incident.`.
    action: Option<String>,
    /// Only entries whose target contains this.
    target: Option<String>,
    /// The page after this entry number (the previous page's `next`).
    after: Option<u64>,
    /// At most this many (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// A page of the audit log.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<u64>,
}

/// A point in time given as RFC 3339 or as a span back from now.
pub fn instant(
    field: &'static str,
    s: &str,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    Span::parse(s)
        .map(|d| now - d.as_chrono())
        .map_err(|e| ApiError {
            field: Some(field),
            ..ApiError::unprocessable(format!(
                "{field}: give an RFC 3339 time (2026-03-29T14:00:00Z) or a span back from now: {e}"
            ))
        })
}

/// The audit log, oldest first, filtered and paginated.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    operation_id = "listAudit",
    tag = "team",
    security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of entries", body = AuditPage),
        (status = 400, description = "Bad query string", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "A filter is invalid", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn list_audit(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let now = state.dispatcher.now();
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::unprocessable("limit: give 1-1000"));
    }
    let after = q.after.unwrap_or(0);
    if i64::try_from(after).is_err() {
        // Entry numbers are int64 in the document; a larger one is no entry's.
        return Err(ApiError::unprocessable(format!(
            "after: {after} is larger than any entry number (at most {}); pass the previous page's `next`",
            i64::MAX
        )));
    }
    let filter = AuditFilter {
        after,
        since: q
            .since
            .as_deref()
            .map(|s| instant("since", s, now))
            .transpose()?,
        until: q
            .until
            .as_deref()
            .map(|s| instant("until", s, now))
            .transpose()?,
        actor: q.actor,
        action: q.action,
        target: q.target,
        limit,
    };
    let (entries, next) = state.store.audit_entries(&filter).await?;
    Ok(Json(AuditPage { entries, next }))
}

/// The outcome of walking the audit log's hash chain.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditCheck {
    pub ok: bool,
    /// Entries checked (when ok).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries: Option<u64>,
    /// The hash of the last entry (when ok).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// Where the chain breaks (when not ok), naming the entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Walks the audit log's hash chain and names the first entry that was altered, removed or
/// moved.
#[utoipa::path(
    get,
    path = "/api/v1/audit/verify",
    operation_id = "verifyAudit",
    tag = "team",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The outcome (`ok` false names the entry)", body = AuditCheck),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn verify_audit(State(state): State<AppState>) -> Result<Json<AuditCheck>, ApiError> {
    // The backend walks the log off the async workers.
    let outcome = state.store.verify_audit().await;
    Ok(Json(match outcome {
        Ok(v) => AuditCheck {
            ok: true,
            entries: Some(v.entries),
            head: Some(v.head),
            problem: None,
        },
        Err(crate::store::audit::VerifyError::Chain(e)) => AuditCheck {
            ok: false,
            entries: None,
            head: None,
            problem: Some(e.to_string()),
        },
        Err(crate::store::audit::VerifyError::Store(e)) => return Err(e.into()),
    }))
}
