//! Authorisation: ONE table of every route and the least role that may call it, enforced by ONE
//! middleware ([`enforce`]) wrapped around every route, which also writes the audit entry of
//! every state-changing request.
//!
//! For each request the middleware finds the route's row by method and matched path (a route
//! without a row is refused: fail closed, and `tests/api/authz.rs` fails), authenticates the
//! bearer token when the row needs one (the bootstrap admin token, or a personal token looked up
//! by its SHA-256), compares roles, runs the handler, and — when the row names an audit action
//! and the answer is a success, or the handler asked for it (a failed login) — appends one
//! entry to the audit log. docs/SECURITY.md shows the same table.

use super::auth::bearer;
use super::error::ApiError;
use super::session::{self, SessionAuth};
use super::{AppState, Principal};
use crate::credentials::{token_hash, TOKEN_PREFIX};
use crate::domain::audit::NewAudit;
use crate::domain::{Role, UserName, BOOTSTRAP_ADMIN};
use crate::store::audit;
use crate::store::port::{Audit, Tokens, Users};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use ulid::Ulid;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a credential.
    Public,
    /// A webhook that checks its own credential in the handler: monitoring hooks take the
    /// bootstrap admin token, a publisher's or admin's personal token, or an HMAC signature;
    /// the Twilio hook its signature.
    Hook,
    /// A bearer token whose role is this one or above.
    Min(Role),
}

/// One row: a route, who may call it, and the audit action its successful calls record.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    /// `None` for reads, and for the few writes that change nothing a person decided
    /// (previews; the SMS provider's delivery receipts, one per message sent).
    pub audit: Option<&'static str>,
}

const fn rule(
    method: &'static str,
    path: &'static str,
    access: Access,
    audit: Option<&'static str>,
) -> Rule {
    Rule {
        method,
        path,
        access,
        audit,
    }
}

use Access::{Hook, Min, Public};
use Role::{Admin, Publisher, Responder, Viewer};

/// THE table. Every route the router serves has exactly one row (tests/api/authz.rs checks it
/// against the OpenAPI document); docs/SECURITY.md shows it.
pub const TABLE: &[Rule] = &[
    // Probes, metrics, the public status summary, this API's document.
    rule("GET", "/healthz", Public, None),
    rule("GET", "/readyz", Public, None),
    rule("GET", "/metrics", Public, None),
    rule("GET", "/api/v1/status", Public, None),
    rule("GET", "/api/v1/openapi.json", Public, None),
    // Incidents: responders open and update them (a responder's non-draft write is held for
    // a publisher's or admin's approval: `AppState::approval_reasons_for`), publishers publish. Resolving and reopening always
    // publish.
    rule("GET", "/api/v1/incidents", Min(Viewer), None),
    rule(
        "POST",
        "/api/v1/incidents",
        Min(Responder),
        Some("incident.create"),
    ),
    rule("GET", "/api/v1/incidents/{id}", Min(Viewer), None),
    rule(
        "POST",
        "/api/v1/incidents/{id}/updates",
        Min(Responder),
        Some("incident.update"),
    ),
    rule(
        "POST",
        "/api/v1/incidents/{id}/resolve",
        Min(Publisher),
        Some("incident.resolve"),
    ),
    rule(
        "POST",
        "/api/v1/incidents/{id}/reopen",
        Min(Publisher),
        Some("incident.reopen"),
    ),
    rule(
        "POST",
        "/api/v1/incidents/{id}/publish",
        Min(Publisher),
        Some("incident.publish"),
    ),
    // Deliveries.
    rule(
        "GET",
        "/api/v1/incidents/{id}/deliveries",
        Min(Viewer),
        None,
    ),
    rule(
        "GET",
        "/api/v1/incidents/{id}/deliveries/stream",
        Min(Viewer),
        None,
    ),
    rule(
        "POST",
        "/api/v1/incidents/{id}/deliveries/retry",
        Min(Publisher),
        Some("deliveries.requeue"),
    ),
    // Monitoring intake: a trigger opens and publishes incidents.
    rule("POST", "/api/v1/triggers", Min(Publisher), Some("trigger")),
    rule(
        "POST",
        "/api/v1/hooks/alertmanager",
        Hook,
        Some("hook.alertmanager"),
    ),
    rule("POST", "/api/v1/hooks/grafana", Hook, Some("hook.grafana")),
    rule("POST", "/api/v1/hooks/twilio/{channel}", Hook, None),
    rule("POST", "/api/v1/hooks/twilio/{channel}/inbound", Hook, None),
    // Recurring notices.
    rule("GET", "/api/v1/notices", Min(Viewer), None),
    rule(
        "POST",
        "/api/v1/notices",
        Min(Publisher),
        Some("notice.create"),
    ),
    rule("GET", "/api/v1/notices/{id}", Min(Viewer), None),
    rule(
        "DELETE",
        "/api/v1/notices/{id}",
        Min(Publisher),
        Some("notice.remove"),
    ),
    // Incident templates: every role reads and applies them; publishers keep them.
    rule("GET", "/api/v1/templates", Min(Viewer), None),
    rule(
        "POST",
        "/api/v1/templates",
        Min(Publisher),
        Some("template.create"),
    ),
    rule("GET", "/api/v1/templates/{key}", Min(Viewer), None),
    rule(
        "PATCH",
        "/api/v1/templates/{key}",
        Min(Publisher),
        Some("template.update"),
    ),
    rule(
        "DELETE",
        "/api/v1/templates/{key}",
        Min(Publisher),
        Some("template.remove"),
    ),
    rule("POST", "/api/v1/preview", Min(Viewer), None),
    // Components.
    rule("GET", "/api/v1/components", Min(Viewer), None),
    rule(
        "PUT",
        "/api/v1/components/{name}",
        Min(Responder),
        Some("component.set"),
    ),
    // Subscribers: their addresses are for publishers and admins only.
    rule("GET", "/api/v1/subscribers", Min(Publisher), None),
    rule(
        "POST",
        "/api/v1/subscribers",
        Min(Publisher),
        Some("subscriber.add"),
    ),
    rule(
        "DELETE",
        "/api/v1/subscribers/{key}",
        Min(Publisher),
        Some("subscriber.remove"),
    ),
    rule(
        "PATCH",
        "/api/v1/subscribers/{key}",
        Min(Publisher),
        Some("subscriber.change"),
    ),
    rule(
        "POST",
        "/api/v1/subscribers/import",
        Min(Publisher),
        Some("subscriber.import"),
    ),
    rule(
        "POST",
        "/api/v1/unsubscribe/{token}",
        Public,
        Some("subscriber.unsubscribe"),
    ),
    // Signing in and out, oneself, one's tokens.
    rule("POST", "/api/v1/login", Public, Some("login")),
    rule("POST", "/api/v1/logout", Min(Viewer), Some("logout")),
    // Browser sessions (the cookie; see `session`) and second factors.
    rule("POST", "/api/v1/session", Public, Some("session.login")),
    rule("GET", "/api/v1/session", Min(Viewer), None),
    rule("POST", "/api/v1/me/totp", Min(Viewer), Some("totp.begin")),
    rule(
        "POST",
        "/api/v1/me/totp/confirm",
        Min(Viewer),
        Some("totp.enable"),
    ),
    rule(
        "POST",
        "/api/v1/me/totp/disable",
        Min(Viewer),
        Some("totp.disable"),
    ),
    rule(
        "DELETE",
        "/api/v1/users/{name}/totp",
        Min(Admin),
        Some("user.totp_reset"),
    ),
    rule("GET", "/api/v1/me", Min(Viewer), None),
    rule(
        "POST",
        "/api/v1/me/password",
        Min(Viewer),
        Some("user.password"),
    ),
    rule("GET", "/api/v1/tokens", Min(Viewer), None),
    rule("POST", "/api/v1/tokens", Min(Viewer), Some("token.create")),
    rule(
        "DELETE",
        "/api/v1/tokens/{id}",
        Min(Viewer),
        Some("token.revoke"),
    ),
    // Users.
    rule("GET", "/api/v1/users", Min(Admin), None),
    rule("POST", "/api/v1/users", Min(Admin), Some("user.create")),
    rule(
        "PATCH",
        "/api/v1/users/{name}",
        Min(Admin),
        Some("user.change"),
    ),
    rule(
        "DELETE",
        "/api/v1/users/{name}",
        Min(Admin),
        Some("user.remove"),
    ),
    rule(
        "POST",
        "/api/v1/users/{name}/password",
        Min(Admin),
        Some("user.reset_password"),
    ),
    // A copy of the whole store (every subscriber's address): admins only, and audited.
    rule("POST", "/api/v1/backup", Min(Admin), Some("backup")),
    // The audit log.
    rule("GET", "/api/v1/audit", Min(Viewer), None),
    rule("GET", "/api/v1/audit/verify", Min(Viewer), None),
    // Two-person approval: a publisher or admin other than the author decides.
    rule("GET", "/api/v1/approvals", Min(Viewer), None),
    rule(
        "POST",
        "/api/v1/approvals/{id}/approve",
        Min(Publisher),
        Some("approval.approve"),
    ),
    rule(
        "POST",
        "/api/v1/approvals/{id}/reject",
        Min(Publisher),
        Some("approval.reject"),
    ),
];

/// The staff console's routes (HTML pages and form posts under `/console/`; see
/// [`crate::web::console`]). Not in the OpenAPI document, but enforced and audited by the same
/// middleware: each write needs the same role as the API route whose handler it calls, and
/// records the same audit action. docs/SECURITY.md shows these rows too.
pub const CONSOLE: &[Rule] = &[
    rule("GET", "/console/login", Public, None),
    rule("POST", "/console/login", Public, Some("session.login")),
    rule("POST", "/console/logout", Min(Viewer), Some("logout")),
    // One's own account: a second factor enrolled in the browser (the API's handlers).
    rule("GET", "/console/account", Min(Viewer), None),
    rule(
        "POST",
        "/console/account/totp",
        Min(Viewer),
        Some("totp.begin"),
    ),
    rule(
        "POST",
        "/console/account/totp/confirm",
        Min(Viewer),
        Some("totp.enable"),
    ),
    rule("GET", "/console/", Min(Viewer), None),
    rule("GET", "/console/live", Min(Viewer), None),
    rule("GET", "/console/compose", Min(Responder), None),
    rule("POST", "/console/preview", Min(Viewer), None),
    rule("POST", "/console/confirm", Min(Responder), None),
    rule(
        "POST",
        "/console/incidents",
        Min(Responder),
        Some("incident.create"),
    ),
    rule("GET", "/console/incidents/{id}", Min(Viewer), None),
    rule("GET", "/console/incidents/{id}/progress", Min(Viewer), None),
    // The same progress as server-sent events until every delivery is final.
    rule("GET", "/console/incidents/{id}/stream", Min(Viewer), None),
    rule(
        "POST",
        "/console/incidents/{id}/updates",
        Min(Responder),
        Some("incident.update"),
    ),
    rule(
        "POST",
        "/console/incidents/{id}/resolve",
        Min(Publisher),
        Some("incident.resolve"),
    ),
    rule(
        "POST",
        "/console/incidents/{id}/reopen",
        Min(Publisher),
        Some("incident.reopen"),
    ),
    rule(
        "POST",
        "/console/incidents/{id}/publish",
        Min(Publisher),
        Some("incident.publish"),
    ),
    rule(
        "POST",
        "/console/incidents/{id}/retry",
        Min(Publisher),
        Some("deliveries.requeue"),
    ),
    rule(
        "POST",
        "/console/approvals/{id}/approve",
        Min(Publisher),
        Some("approval.approve"),
    ),
    rule(
        "POST",
        "/console/approvals/{id}/reject",
        Min(Publisher),
        Some("approval.reject"),
    ),
    rule("GET", "/console/audit", Min(Viewer), None),
    rule("GET", "/console/components", Min(Viewer), None),
    rule(
        "POST",
        "/console/components/{name}",
        Min(Responder),
        Some("component.set"),
    ),
    // Channels: every role sees them; a credential check (posts nothing, writes nothing) is an
    // admin's, as `crier channels check` is the operator's.
    rule("GET", "/console/channels", Min(Viewer), None),
    rule("POST", "/console/channels/{name}/check", Min(Admin), None),
    rule("GET", "/console/notices", Min(Viewer), None),
    rule(
        "POST",
        "/console/notices",
        Min(Publisher),
        Some("notice.create"),
    ),
    // The next fire times of a notice being added: writes nothing.
    rule("POST", "/console/notices/preview", Min(Publisher), None),
    rule(
        "POST",
        "/console/notices/{id}/remove",
        Min(Publisher),
        Some("notice.remove"),
    ),
    // Incident templates: every role sees them; publishers keep them (the API's handlers).
    rule("GET", "/console/templates", Min(Viewer), None),
    rule(
        "POST",
        "/console/templates",
        Min(Publisher),
        Some("template.create"),
    ),
    rule(
        "POST",
        "/console/templates/{id}",
        Min(Publisher),
        Some("template.update"),
    ),
    rule(
        "POST",
        "/console/templates/{id}/remove",
        Min(Publisher),
        Some("template.remove"),
    ),
    // Subscribers: every role sees the counts; addresses and writes are the API's publishers'.
    rule("GET", "/console/subscribers", Min(Viewer), None),
    rule(
        "POST",
        "/console/subscribers",
        Min(Publisher),
        Some("subscriber.add"),
    ),
    rule(
        "POST",
        "/console/subscribers/import",
        Min(Publisher),
        Some("subscriber.import"),
    ),
    rule(
        "POST",
        "/console/subscribers/{id}",
        Min(Publisher),
        Some("subscriber.change"),
    ),
    rule(
        "POST",
        "/console/subscribers/{id}/remove",
        Min(Publisher),
        Some("subscriber.remove"),
    ),
    // Users and tokens: admins only.
    rule("GET", "/console/users", Min(Admin), None),
    rule("POST", "/console/users", Min(Admin), Some("user.create")),
    rule(
        "POST",
        "/console/users/{name}",
        Min(Admin),
        Some("user.change"),
    ),
    rule(
        "POST",
        "/console/users/{name}/remove",
        Min(Admin),
        Some("user.remove"),
    ),
    rule(
        "POST",
        "/console/users/{name}/password",
        Min(Admin),
        Some("user.reset_password"),
    ),
    rule("POST", "/console/tokens", Min(Admin), Some("token.create")),
    rule(
        "POST",
        "/console/tokens/{id}/revoke",
        Min(Admin),
        Some("token.revoke"),
    ),
];

/// The row of `method path` (`path` as the router matched it, e.g. `/api/v1/incidents/{id}`).
pub fn rule_for(method: &str, path: &str) -> Option<&'static Rule> {
    TABLE
        .iter()
        .chain(CONSOLE)
        .find(|r| r.method.eq_ignore_ascii_case(method) && r.path == path)
}

/// Who made a request, as the middleware established it (routes that need a token only).
#[derive(Debug, Clone)]
pub struct Caller {
    /// A user name, or `admin` for the bootstrap admin token.
    pub actor: String,
    /// The effective role: the token's, capped by its owner's current role.
    pub role: Role,
    /// The user, for personal tokens.
    pub user: Option<UserName>,
    /// The personal token used.
    pub token: Option<Ulid>,
    /// The browser session used (see [`super::session`]).
    pub session: Option<Ulid>,
}

/// The client's address (the TCP peer), when known.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

/// The request's id, also sent back as `x-request-id`.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// What a handler adds to its route's audit entry (put into the response's extensions with
/// [`noted`]). `force` records the entry even though the answer is not a success.
#[derive(Debug, Clone, Default)]
pub struct AuditNote {
    pub action: Option<String>,
    pub actor: Option<String>,
    pub role: Option<Role>,
    pub target: Option<String>,
    pub summary: String,
    pub force: bool,
}

/// A response carrying an audit note.
pub fn noted(resp: impl IntoResponse, note: AuditNote) -> Response {
    let mut resp = resp.into_response();
    resp.extensions_mut().insert(note);
    resp
}

/// How many argon2 computations may run at once (19 MiB each).
pub const HASHING: usize = 4;

/// The team's in-memory state: token last-used times (written to the store at most once a
/// minute), the failed-login throttle, and the limit on concurrent password hashing.
pub struct Team {
    last_used: Mutex<LastUsed>,
    pub throttle: super::throttle::Throttle,
    pub hashing: tokio::sync::Semaphore,
    /// Sessions, second factors, trusted proxies and their clock.
    pub auth: super::session::AuthSettings,
}

struct LastUsed {
    pending: HashMap<Ulid, DateTime<Utc>>,
    seen: HashMap<Ulid, DateTime<Utc>>,
    written: tokio::time::Instant,
}

/// How often last-used times reach the store.
pub const LAST_USED_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl Default for Team {
    fn default() -> Self {
        Team::new(Default::default())
    }
}

impl Team {
    pub fn new(auth: super::session::AuthSettings) -> Self {
        Team {
            last_used: Mutex::new(LastUsed {
                pending: HashMap::new(),
                seen: HashMap::new(),
                written: tokio::time::Instant::now(),
            }),
            throttle: Default::default(),
            hashing: tokio::sync::Semaphore::new(HASHING),
            auth,
        }
    }
}

impl Team {
    /// Notes a token's use; returns the batch to write when a minute has passed since the last.
    fn used(&self, id: Ulid, at: DateTime<Utc>) -> Option<Vec<(Ulid, DateTime<Utc>)>> {
        let mut l = self.last_used.lock().unwrap_or_else(|p| p.into_inner());
        l.pending.insert(id, at);
        l.seen.insert(id, at);
        if l.seen.len() > 100_000 {
            // Bounded: the store has the older times.
            l.seen.clear();
        }
        if l.written.elapsed() < LAST_USED_EVERY {
            return None;
        }
        l.written = tokio::time::Instant::now();
        Some(l.pending.drain().collect())
    }

    /// Writes the last-used times not yet in the store (at shutdown).
    pub async fn persist(&self, store: &crate::store::Store) {
        let batch: Vec<(Ulid, DateTime<Utc>)> = {
            let mut l = self.last_used.lock().unwrap_or_else(|p| p.into_inner());
            l.written = tokio::time::Instant::now();
            l.pending.drain().collect()
        };
        if let Err(e) = store.touch_tokens(&batch).await {
            tracing::warn!(error = %e, "could not record when tokens were last used");
        }
    }

    /// The last use seen in memory, fresher than the store's.
    pub fn last_used(&self, id: Ulid) -> Option<DateTime<Utc>> {
        let l = self.last_used.lock().unwrap_or_else(|p| p.into_inner());
        l.seen.get(&id).copied()
    }

    /// The caller a presented bearer token stands for, if it is valid now.
    pub async fn authenticate(
        &self,
        state: &AppState,
        presented: &str,
    ) -> Result<Option<Caller>, ApiError> {
        if state.tokens.check(presented).is_some() {
            return Ok(Some(Caller {
                actor: BOOTSTRAP_ADMIN.to_owned(),
                role: Role::Admin,
                user: None,
                token: None,
                session: None,
            }));
        }
        if !presented.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let now = state.dispatcher.now();
        let Some(token) = state.store.token_by_hash(&token_hash(presented)).await? else {
            return Ok(None);
        };
        if !token.live(now) {
            return Ok(None);
        }
        let Some(user) = state.store.user(&token.owner).await? else {
            return Ok(None);
        };
        if user.disabled {
            return Ok(None);
        }
        if let Some(batch) = self.used(token.id, now) {
            if let Err(e) = state.store.touch_tokens(&batch).await {
                tracing::warn!(error = %e, "could not record when tokens were last used");
            }
        }
        Ok(Some(Caller {
            actor: user.name.to_string(),
            role: token.role.min(user.role),
            user: Some(user.name),
            token: Some(token.id),
            session: None,
        }))
    }
}

/// The answer to a role that is too low.
pub fn forbidden(role: Role, needs: Role) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        format!("this needs the {needs} role or above; your token acts as {role} (ask an admin, see docs/SECURITY.md)"),
    )
}

/// Every (method, path) the router serves, from the OpenAPI document (which lists exactly what
/// is served; tests/api/openapi.rs checks that). The middleware refuses a served route that has
/// no row, and lets the router answer 405 to a method a path does not serve.
#[derive(Clone, Default)]
pub struct Operations(std::sync::Arc<std::collections::HashSet<(String, String)>>);

impl Operations {
    pub fn from_doc(doc: &utoipa::openapi::OpenApi) -> Self {
        let mut ops = std::collections::HashSet::new();
        for (path, item) in &doc.paths.paths {
            let methods = [
                ("GET", item.get.is_some()),
                ("PUT", item.put.is_some()),
                ("POST", item.post.is_some()),
                ("DELETE", item.delete.is_some()),
                ("PATCH", item.patch.is_some()),
                ("HEAD", item.head.is_some()),
                ("OPTIONS", item.options.is_some()),
                ("TRACE", item.trace.is_some()),
            ];
            for (m, present) in methods {
                if present {
                    ops.insert((m.to_owned(), path.clone()));
                }
            }
        }
        Operations(std::sync::Arc::new(ops))
    }

    fn serves(&self, method: &str, path: &str) -> bool {
        self.0
            .contains(&(method.to_ascii_uppercase(), path.to_owned()))
    }
}

/// The middleware around every route (see the module docs).
pub async fn enforce(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(path) = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
    else {
        return next.run(req).await;
    };
    if rule_for(req.method().as_str(), &path).is_none() {
        let served = req
            .extensions()
            .get::<Operations>()
            .is_some_and(|ops| ops.serves(req.method().as_str(), &path));
        if !served {
            // A method the path does not serve: the router answers 405.
            return next.run(req).await;
        }
    }
    let request_id = Ulid::new().to_string();
    let resp = match authorise(&state, &path, &mut req, &request_id).await {
        Err(e) => e.into_response(),
        Ok(rule) => {
            let client = req.extensions().get::<ClientAddr>().and_then(|c| c.0);
            let caller = req.extensions().get::<Caller>().cloned();
            if let Some(auth) = req.extensions().get::<SessionAuth>().cloned() {
                // A cookie-authenticated write must pass the CSRF checks; bearer tokens are
                // exempt (a browser never adds one by itself).
                let write = !matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS");
                if write {
                    // The CSV import's form carries a whole file, up to the import limit.
                    let import_max = (path == session::IMPORT_FORM)
                        .then(|| req.extensions().get::<super::Limits>())
                        .flatten()
                        .map(|l| l.import_max_bytes);
                    let form_max =
                        import_max.map_or(session::FORM_MAX_BYTES, session::import_form_max);
                    req = match session::check_csrf(&state, req, &auth, form_max).await {
                        Ok(req) => req,
                        // Too large to read: refused, but no sign of a forgery (not audited).
                        Err((_, Some(answer)))
                            if answer.status == StatusCode::PAYLOAD_TOO_LARGE =>
                        {
                            let answer = match import_max {
                                Some(limit) => super::subscribers::csv_too_large(None, limit),
                                None => answer,
                            };
                            return with_request_id(answer.into_response(), &request_id);
                        }
                        Err((why, answer)) => {
                            let entry = NewAudit {
                                actor: auth.session.user.to_string(),
                                token: None,
                                role: Some(auth.session.role),
                                client: client.map(|c| c.to_string()),
                                request_id: request_id.clone(),
                                action: "csrf.refused".into(),
                                target: format!("{} {path}", rule.method),
                                summary: format!("session {}: {why}", auth.session.id),
                            };
                            tracing::warn!(request_id, user = %auth.session.user, "cookie-authenticated write refused: {why}");
                            if let Err(e) = state.store.audit(entry, state.dispatcher.now()).await {
                                tracing::error!(error = %e, request_id, "could not write the audit entry of a refused write");
                            }
                            let mut resp = answer
                                .unwrap_or_else(|| {
                                    ApiError::new(
                                        StatusCode::FORBIDDEN,
                                        format!("refused as a possible cross-site request forgery: {why}; nothing was changed"),
                                    )
                                })
                                .into_response();
                            if let Ok(v) = HeaderValue::from_str(&request_id) {
                                resp.headers_mut().insert("x-request-id", v);
                            }
                            return resp;
                        }
                    };
                }
                session::touch(&state, &auth).await;
            }
            let uri_path = req.uri().path().to_owned();
            let Some(action) = rule.audit else {
                return with_request_id(next.run(req).await, &request_id);
            };
            // A path that carries a secret (the unsubscribe token) is recorded as its template.
            let target = if rule.path.contains("{token}") {
                rule.path.to_owned()
            } else {
                uri_path
            };
            let default_actor = match rule.access {
                Access::Hook => "hook",
                _ => "anonymous",
            };
            let base = NewAudit {
                actor: caller
                    .as_ref()
                    .map_or_else(|| default_actor.to_owned(), |c| c.actor.clone()),
                token: caller.as_ref().and_then(|c| c.token.map(|t| t.to_string())),
                role: caller.as_ref().map(|c| c.role),
                client: client.map(|c| c.to_string()),
                request_id: request_id.clone(),
                action: action.to_owned(),
                target,
                summary: String::new(),
            };
            // The handler's store write may write the entry in its own commit (see
            // `store::audit::record`); otherwise it is written here, after the answer was made.
            let clock = state.dispatcher.clone();
            let (mut resp, written) =
                audit::record(base.clone(), move || clock.now(), next.run(req)).await;
            let note = resp.extensions_mut().remove::<AuditNote>();
            let force = note.as_ref().is_some_and(|n| n.force);
            // A console form answers a write that succeeded with 303 See Other (then GET).
            let done = resp.status().is_success()
                || (resp.status() == StatusCode::SEE_OTHER && rule.path.starts_with("/console/"));
            if written.is_none() && (done || force) {
                let note = note.unwrap_or_default();
                let entry = NewAudit {
                    actor: note.actor.unwrap_or(base.actor),
                    role: note.role.or(base.role),
                    action: note.action.unwrap_or(base.action),
                    target: note.target.unwrap_or(base.target),
                    summary: note.summary,
                    ..base
                };
                if let Err(e) = state.store.audit(entry, state.dispatcher.now()).await {
                    tracing::error!(error = %e, request_id, "could not write the audit entry of a request that succeeded");
                }
            }
            resp
        }
    };
    with_request_id(resp, &request_id)
}

/// The answer with its `x-request-id` header.
fn with_request_id(mut resp: Response, request_id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// Finds the row, authenticates and compares roles; leaves the caller, the client's address
/// and the request id in the request's extensions.
async fn authorise(
    state: &AppState,
    path: &str,
    req: &mut Request,
    request_id: &str,
) -> Result<&'static Rule, ApiError> {
    let rule = rule_for(req.method().as_str(), path).ok_or_else(|| {
        tracing::error!(method = %req.method(), path, "a route has no row in the authorisation table");
        ApiError::new(
            StatusCode::FORBIDDEN,
            "this route has no authorisation rule, so it is refused; report this as a bug",
        )
    })?;
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    // Behind a trusted proxy, the client is the one it forwarded for (see [`session`]).
    let client = session::client_addr(peer, req.headers(), &state.team.auth.trusted_proxies);
    req.extensions_mut().insert(ClientAddr(client));
    req.extensions_mut()
        .insert(RequestId(request_id.to_owned()));
    if rule.access == Access::Hook {
        // The hook checks its credential itself; a personal token still names the actor.
        if let Some(presented) = bearer(req.headers()) {
            if let Some(caller) = state.team.authenticate(state, presented).await? {
                req.extensions_mut()
                    .insert(Principal(caller.actor.clone(), caller.role));
                req.extensions_mut().insert(caller);
            }
        }
    }
    if let Access::Min(needs) = rule.access {
        // A bearer token when there is one; else the session cookie.
        let caller = match (bearer(req.headers()), session::cookie(req.headers())) {
            (Some(presented), _) => state
                .team
                .authenticate(state, presented)
                .await?
                .ok_or_else(ApiError::unauthorized)?,
            (None, Some(secret)) => {
                let (caller, auth) = session::authenticate(state, secret)
                    .await?
                    .ok_or_else(session::session_unauthorized)?;
                if auth.session.enrol_only
                    && !session::ENROL_ONLY_ROUTES
                        .iter()
                        .any(|(m, p)| m.eq_ignore_ascii_case(req.method().as_str()) && *p == path)
                {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        format!(
                            "your role ({}) needs a second factor: enrol one first (on the console at /console/account, or POST /api/v1/me/totp, then confirm it with a code), then you may continue",
                            auth.session.role
                        ),
                    ));
                }
                req.extensions_mut().insert(auth);
                caller
            }
            (None, None) => return Err(ApiError::unauthorized()),
        };
        if caller.role < needs {
            return Err(forbidden(caller.role, needs));
        }
        req.extensions_mut()
            .insert(Principal(caller.actor.clone(), caller.role));
        req.extensions_mut().insert(caller);
    }
    Ok(rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_one_row_per_route() {
        let mut seen = std::collections::BTreeSet::new();
        for r in TABLE.iter().chain(CONSOLE) {
            assert!(
                seen.insert((r.method, r.path)),
                "{} {} twice",
                r.method,
                r.path
            );
            if r.method == "GET" {
                assert!(r.audit.is_none(), "a read is not audited: {}", r.path);
            }
        }
    }

    #[test]
    fn docs_security_lists_every_row() {
        let doc = include_str!("../../docs/SECURITY.md");
        for r in TABLE.iter().chain(CONSOLE) {
            let who = match r.access {
                Access::Public => "public".to_owned(),
                Access::Hook => "hook (own credential)".to_owned(),
                Access::Min(role) => role.to_string(),
            };
            let audit = r.audit.map_or_else(|| "—".to_owned(), |a| format!("`{a}`"));
            let line = format!("| {} | `{}` | {who} | {audit} |", r.method, r.path);
            assert!(doc.contains(&line), "docs/SECURITY.md lacks the row {line}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn last_used_times_are_written_at_most_once_a_minute() {
        let team = Team::default();
        let (a, b) = (Ulid::new(), Ulid::new());
        let now = Utc::now();
        assert!(team.used(a, now).is_none());
        tokio::time::advance(std::time::Duration::from_secs(59)).await;
        assert!(team.used(b, now).is_none());
        assert_eq!(team.last_used(a), Some(now));
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        let batch = team.used(a, now).unwrap();
        assert_eq!(batch.len(), 2);
        assert!(team.used(b, now).is_none(), "written a moment ago");
    }
}
