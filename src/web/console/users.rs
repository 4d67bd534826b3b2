//! Users and tokens (admins only): the users with their role, state, second factor and last
//! sign-in; add one (the initial password crier chose is shown once), change a role, disable or
//! enable, reset a password (shown once), remove; everyone's tokens, make one for oneself (the
//! secret shown once), revoke one. Every write calls the API's handler in
//! [`crate::api::users`], so the rules, the messages and the audit entries exist once.

use super::{answer, field_of, fields, filled, me, when};
use crate::api::authz::Caller;
use crate::api::extract::ApiJson;
use crate::api::session::SessionAuth;
use crate::api::{ApiError, AppState};
use crate::domain::{Role, UserName};
use crate::store::port::{SecondFactors, Sessions};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use minijinja::{context, Value};
use serde::Deserialize;
use serde_json::{json, Map};

/// The fields of the add-user form an API message can be about.
const USER_FIELDS: [&str; 6] = ["name", "role", "display_name", "email", "phone", "password"];
/// The fields of the new-token form.
const TOKEN_FIELDS: [&str; 3] = ["token_name", "token_role", "expires"];

#[derive(Deserialize)]
pub struct PageQuery {
    done: Option<String>,
}

/// A secret shown once: what it is, for whom, and the secret.
struct Secret {
    what: &'static str,
    whom: String,
    value: String,
}

#[derive(Default)]
struct View {
    notice: Option<String>,
    secret: Option<Secret>,
    /// A refused write: the API's message and the field (or the user/token row) it is about.
    error: Option<(String, String)>,
    typed: Map<String, serde_json::Value>,
    status: Option<StatusCode>,
}

/// `GET /console/users`.
pub async fn page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let notice = match q.done.as_deref() {
        Some("changed") => Some(
            "User changed; their browser sessions ended if the role changed or they were disabled.",
        ),
        Some("removed") => Some("User removed; their tokens are revoked."),
        Some("revoked") => Some("Token revoked."),
        _ => None,
    };
    let view = View {
        notice: notice.map(str::to_owned),
        ..View::default()
    };
    show(&state, &caller, session.as_deref(), view).await
}

async fn show(
    state: &AppState,
    caller: &Caller,
    session: Option<&SessionAuth>,
    v: View,
) -> Result<Response, ApiError> {
    let axum::Json(users) = crate::api::users::list_users(State(state.clone())).await?;
    let mut rows = Vec::new();
    for u in &users {
        let totp = state.store.totp(&u.name).await?.is_some_and(|t| t.enabled);
        // Sessions are the only sign-ins the store keeps (until they end).
        let last = state
            .store
            .sessions_of(&u.name)
            .await?
            .iter()
            .map(|s| s.created_at)
            .max();
        rows.push(context! {
            name => u.name.as_str(),
            display_name => u.display_name,
            role => u.role.as_str(),
            disabled => u.disabled,
            totp => totp,
            last_login => last.map(|t| when(state, t)),
            me => caller.user.as_ref() == Some(&u.name),
        });
    }
    let axum::Json(tokens) =
        crate::api::users::list_tokens(State(state.clone()), Extension(caller.clone())).await?;
    let now = state.dispatcher.clock().now();
    let tokens: Vec<Value> = tokens
        .iter()
        .rev()
        .map(|t| {
            let state_word = if t.revoked_at.is_some() {
                "revoked"
            } else if t.expires_at.is_some_and(|e| e <= now) {
                "expired"
            } else {
                "live"
            };
            context! {
                id => t.id.to_string(),
                name => t.name,
                owner => t.owner.as_str(),
                role => t.role.as_str(),
                created => when(state, t.created_at),
                expires => t.expires_at.map(|e| when(state, e)),
                last_used => t.last_used_at.map(|e| when(state, e)),
                state => state_word,
            }
        })
        .collect();
    let (error, error_field) = match v.error {
        Some((msg, f)) => (Some(msg), Some(f)),
        None => (None, None),
    };
    let mut resp = super::page(
        state,
        "console/users.html",
        me(caller, session),
        context! {
            users => rows,
            tokens => tokens,
            roles => Role::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            notice => v.notice,
            secret => v.secret.map(|s| context! { what => s.what, whom => s.whom, value => s.value }),
            error => error,
            error_field => error_field,
            typed => Value::from_serialize(&v.typed),
        },
    );
    if let Some(s) = v.status {
        *resp.status_mut() = s;
    }
    Ok(resp)
}

/// The form fields named in `names`, filled ones only, as a JSON object.
fn object(f: &[(String, String)], names: &[(&str, &str)]) -> Map<String, serde_json::Value> {
    let mut m = Map::new();
    for (form, api) in names {
        if let Some(v) = filled(f, form) {
            m.insert((*api).to_owned(), json!(v));
        }
    }
    m
}

/// A role field checked by the domain's own parser (its message names the roles).
fn role(f: &[(String, String)], name: &'static str) -> Result<Option<Role>, ApiError> {
    filled(f, name)
        .map(Role::parse)
        .transpose()
        .map_err(|e| ApiError {
            field: Some(name),
            ..ApiError::from(e)
        })
}

/// A refused write shown on the page: the API's message next to `at`.
async fn refused(
    state: &AppState,
    caller: &Caller,
    session: Option<&SessionAuth>,
    e: ApiError,
    at: String,
    typed: Map<String, serde_json::Value>,
) -> Result<Response, ApiError> {
    let view = View {
        status: Some(e.status),
        error: Some((e.detail, at)),
        typed,
        ..View::default()
    };
    show(state, caller, session, view).await
}

/// `POST /console/users` → [`crate::api::users::create_user`]. The answer is the page with the
/// initial password crier chose, shown this once (never in a URL).
pub async fn add(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let f = fields(&body);
    let mut req = object(
        &f,
        &[
            ("name", "name"),
            ("display_name", "display_name"),
            ("email", "email"),
            ("phone", "phone"),
        ],
    );
    let result = match role(&f, "role") {
        Ok(r) => {
            req.insert("role".into(), json!(r.map(Role::as_str)));
            match serde_json::from_value(serde_json::Value::Object(req.clone())) {
                Ok(b) => crate::api::users::create_user(State(state.clone()), ApiJson(b)).await,
                Err(e) => Err(ApiError::unprocessable(e.to_string())),
            }
        }
        Err(e) => Err(e),
    };
    let session = session.as_deref();
    match result {
        Ok(resp) => {
            let a = answer(resp).await;
            let name = a.body["user"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let secret = a.body["password"].as_str().map(|p| Secret {
                what: "initial password",
                whom: name.clone(),
                value: p.to_owned(),
            });
            let view = View {
                notice: Some(format!(
                    "User {name} added. Give them the password below by a safe way; they change it with crier password."
                )),
                secret,
                ..View::default()
            };
            let mut page = show(&state, &caller, session, view).await?;
            // The handler's audit note travels with the page.
            page.extensions_mut().extend(a.extensions);
            Ok(page)
        }
        Err(e) => {
            let at = field_of(&e, &USER_FIELDS);
            req.remove("role");
            if let Some(r) = filled(&f, "role") {
                req.insert("role".into(), json!(r));
            }
            refused(&state, &caller, session, e, at, req).await
        }
    }
}

/// `POST /console/users/{name}` (a new `role`, or `disabled` = true / false) →
/// [`crate::api::users::change_user`].
pub async fn change(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let f = fields(&body);
    let mut req = Map::new();
    let result = match role(&f, "role") {
        Ok(r) => {
            if let Some(r) = r {
                req.insert("role".into(), json!(r.as_str()));
            }
            match filled(&f, "disabled") {
                Some("true") => {
                    req.insert("disabled".into(), json!(true));
                }
                Some("false") => {
                    req.insert("disabled".into(), json!(false));
                }
                _ => {}
            }
            match serde_json::from_value(serde_json::Value::Object(req)) {
                Ok(b) => {
                    crate::api::users::change_user(
                        State(state.clone()),
                        Path(name.clone()),
                        ApiJson(b),
                    )
                    .await
                }
                Err(e) => Err(ApiError::unprocessable(e.to_string())),
            }
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(resp) => Ok(answer(resp).await.redirect("/console/users?done=changed")),
        Err(e) => {
            let at = format!("user-{name}");
            refused(&state, &caller, session.as_deref(), e, at, Map::new()).await
        }
    }
}

/// `POST /console/users/{name}/remove` → [`crate::api::users::remove_user`].
pub async fn remove(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    match crate::api::users::remove_user(State(state.clone()), Path(name.clone())).await {
        Ok(resp) => Ok(answer(resp).await.redirect("/console/users?done=removed")),
        Err(e) => {
            let at = format!("user-{name}");
            refused(&state, &caller, session.as_deref(), e, at, Map::new()).await
        }
    }
}

/// `POST /console/users/{name}/password` → [`crate::api::users::reset_password`]: a new
/// random password, shown once; the user's tokens are revoked and sessions ended.
pub async fn reset_password(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let session = session.as_deref();
    match crate::api::users::reset_password(State(state.clone()), Path(name.clone())).await {
        Ok(resp) => {
            let a = answer(resp).await;
            let shown = UserName::parse(&name).map_or(name.clone(), |n| n.to_string());
            let view = View {
                notice: Some(format!(
                    "{shown} has a new password; {} of their tokens were revoked and their sessions ended.",
                    a.body["revoked_tokens"].as_u64().unwrap_or(0)
                )),
                secret: a.body["password"].as_str().map(|p| Secret {
                    what: "new password",
                    whom: shown.clone(),
                    value: p.to_owned(),
                }),
                ..View::default()
            };
            let mut page = show(&state, &caller, session, view).await?;
            page.extensions_mut().extend(a.extensions);
            Ok(page)
        }
        Err(e) => {
            let at = format!("user-{name}");
            refused(&state, &caller, session, e, at, Map::new()).await
        }
    }
}

/// `POST /console/tokens` → [`crate::api::users::create_token`]: a token for the signed-in
/// admin, its secret shown once.
pub async fn create_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let f = fields(&body);
    let mut req = object(&f, &[("token_name", "name"), ("expires", "expires")]);
    if !req.contains_key("name") {
        // The API's own message for a missing name.
        req.insert("name".into(), json!(""));
    }
    let session = session.as_deref();
    let result = match role(&f, "token_role") {
        Ok(r) => {
            if let Some(r) = r {
                req.insert("role".into(), json!(r.as_str()));
            }
            match serde_json::from_value(serde_json::Value::Object(req.clone())) {
                Ok(b) => {
                    crate::api::users::create_token(
                        State(state.clone()),
                        Extension(caller.clone()),
                        ApiJson(b),
                    )
                    .await
                }
                Err(e) => Err(ApiError::unprocessable(e.to_string())),
            }
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(resp) => {
            let a = answer(resp).await;
            let view = View {
                notice: Some(format!(
                    "Token \"{}\" made. Copy it now: it is shown once, and crier keeps only its hash.",
                    a.body["name"].as_str().unwrap_or_default()
                )),
                secret: a.body["token"].as_str().map(|t| Secret {
                    what: "token",
                    whom: caller.actor.clone(),
                    value: t.to_owned(),
                }),
                ..View::default()
            };
            let mut page = show(&state, &caller, session, view).await?;
            page.extensions_mut().extend(a.extensions);
            Ok(page)
        }
        Err(e) => {
            let at = match field_of(&e, &["name", "role", "expires"]).as_str() {
                "name" => "token_name",
                "role" => "token_role",
                "expires" => "expires",
                _ => "token-form",
            };
            let typed = TOKEN_FIELDS
                .iter()
                .filter_map(|k| filled(&f, k).map(|v| ((*k).to_owned(), json!(v))))
                .collect();
            refused(&state, &caller, session, e, at.to_owned(), typed).await
        }
    }
}

/// `POST /console/tokens/{id}/revoke` → [`crate::api::users::revoke_token`].
pub async fn revoke_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match crate::api::users::revoke_token(
        State(state.clone()),
        Extension(caller.clone()),
        Path(id.clone()),
    )
    .await
    {
        Ok(resp) => Ok(answer(resp).await.redirect("/console/users?done=revoked")),
        Err(e) => {
            let at = format!("token-{id}");
            refused(&state, &caller, session.as_deref(), e, at, Map::new()).await
        }
    }
}
