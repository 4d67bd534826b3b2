//! The channels page: every channel of the channel files with its kind, audience, rate and
//! health (the dashboard's rows), and for admins a **Check credentials** button per channel
//! that runs [`crate::adapters::check_channel`] — the check `crier channels check` runs, which
//! asks the platform with a call that posts nothing. Secrets are never shown (adapters leave
//! them out of every reason).

use super::dashboard::channel_health;
use super::me;
use crate::api::authz::Caller;
use crate::api::session::SessionAuth;
use crate::api::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use minijinja::{context, Value};

/// `GET /console/channels`.
pub async fn page(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
) -> Response {
    render(&state, &caller, session.as_deref(), None)
}

/// `POST /console/channels/{name}/check` (admins): the credential check of one channel, shown
/// on the page. Writes nothing and posts nothing to the platform.
pub async fn check(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    session: Option<Extension<SessionAuth>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let verdict = match state.dispatcher.channel(&name) {
        Some(ch) => {
            // Adapters that need a folder (the log adapter) are not checked; nothing is
            // written there.
            let clock = state.dispatcher.clock();
            let c = crate::adapters::check_channel(&ch, &std::env::temp_dir(), clock).await;
            (c.name, c.status, c.detail)
        }
        None => match state.skipped_channels.iter().find(|(n, _)| *n == name) {
            Some((n, why)) => (n.clone(), "skipped", why.clone()),
            None => {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("no channel named \"{name}\"; the channels page lists them"),
                ))
            }
        },
    };
    Ok(render(&state, &caller, session.as_deref(), Some(verdict)))
}

fn render(
    state: &AppState,
    caller: &Caller,
    session: Option<&SessionAuth>,
    checked: Option<(String, &'static str, String)>,
) -> Response {
    let rows: Vec<Value> = channel_health(state)
        .into_iter()
        .map(|row| {
            let name = row
                .get_attr("name")
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let result = checked
                .as_ref()
                .filter(|(n, _, _)| *n == name)
                .map(|(_, status, detail)| context! { status => status, detail => detail });
            context! {
                action => format!("/console/channels/{}/check", crate::percent::encode(&name)),
                check => result,
                ..row
            }
        })
        .collect();
    super::page(
        state,
        "console/channels.html",
        me(caller, session),
        context! { channels => rows },
    )
}
