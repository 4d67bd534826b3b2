//! Subscribers: add one, import a CSV, list, change one's language or components, remove, and the public one-click unsubscribe.

use super::authz::{noted, AuditNote};
use super::extract::{too_large, ApiJson, ApiQuery};
use super::openapi::PROBLEM;
use super::{ApiError, AppState};
use crate::domain::{ComponentName, Contact, DomainError, Locale, Subscriber};
use crate::store::NewSubscriber;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use ulid::Ulid;

/// A subscriber as the API shows it: without the unsubscribe token, which is the subscriber's
/// own secret (it only travels in the messages sent to them). The contact is `email` or `phone`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SubscriberView {
    id: Ulid,
    #[serde(flatten)]
    contact: Contact,
    locale: Locale,
    components: Vec<ComponentName>,
    confirmed: bool,
    created_at: DateTime<Utc>,
}

impl From<Subscriber> for SubscriberView {
    fn from(s: Subscriber) -> Self {
        SubscriberView {
            id: s.id,
            contact: s.contact,
            locale: s.locale,
            components: s.components,
            confirmed: s.confirmed,
            created_at: s.created_at,
        }
    }
}

/// A subscriber: exactly one of `email` or `phone` (E.164, e.g. +358401234567).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"email": "ops@example.com", "locale": "fi"})))]
pub struct AddSubscriber {
    #[schema(format = Email)]
    email: Option<String>,
    phone: Option<String>,
    /// A language tag; blank or absent means `en`.
    #[schema(pattern = r"^\s*([A-Za-z]{2,3}([-_][A-Za-z]{2})?)?\s*$")]
    locale: Option<String>,
    /// Components they care about (existing ones); empty means all.
    #[serde(default)]
    #[schema(value_type = Vec<ComponentName>)]
    components: Vec<String>,
}

fn contact_of(email: Option<&str>, phone: Option<&str>) -> Result<Contact, ApiError> {
    match (email, phone) {
        (Some(e), None) => Ok(Contact::email(e)?),
        (None, Some(p)) => Ok(Contact::phone(p)?),
        _ => Err(ApiError::unprocessable(
            "give exactly one of `email` or `phone` per subscriber",
        )),
    }
}

fn locale_of(l: Option<&str>) -> Result<Locale, DomainError> {
    match l {
        Some(l) if !l.trim().is_empty() => Locale::parse(l),
        _ => Ok(Locale::english()),
    }
}

/// Adds one subscriber (confirmed: added by staff).
#[utoipa::path(
    post,
    path = "/api/v1/subscribers",
    operation_id = "addSubscriber",
    tag = "subscribers",
    security(("bearer" = [])),
    request_body = AddSubscriber,
    responses(
        (status = 201, description = "Added", body = SubscriberView, links(
            ("remove" = (operation_id = "removeSubscriber", parameters(("key" = "$response.body#/id")))),
        )),
        (status = 400, description = "The body is not JSON", body = super::error::Problem, content_type = PROBLEM),
        (status = 413, description = "The body is too large", body = super::error::Problem, content_type = PROBLEM),
        (status = 415, description = "Not `Content-Type: application/json`", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 409, description = "The address is already subscribed", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "A field is invalid", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn add(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<AddSubscriber>,
) -> Result<Response, ApiError> {
    let new = NewSubscriber {
        contact: contact_of(req.email.as_deref(), req.phone.as_deref())?,
        locale: locale_of(req.locale.as_deref())?,
        components: req
            .components
            .iter()
            .map(|c| ComponentName::parse(c))
            .collect::<Result<_, _>>()?,
        confirmed: true,
    };
    let s = state.store.add_subscriber(new, Utc::now()).await?;
    let note = subscriber_note(s.id);
    Ok(noted(
        (StatusCode::CREATED, Json(SubscriberView::from(s))),
        note,
    ))
}

/// The audit log names a subscriber by id: viewers read it, and never see addresses.
fn subscriber_note(id: Ulid) -> AuditNote {
    AuditNote {
        target: Some(format!("subscriber {id}")),
        ..Default::default()
    }
}

/// The most subscribers one `GET /api/v1/subscribers` returns (and the default): a larger list
/// would be built in memory in one answer.
pub const MAX_LIST_LIMIT: usize = 1000;

/// Paging of the subscriber list.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// At most this many (default and maximum 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// Lists subscribers (without their unsubscribe tokens).
#[utoipa::path(
    get,
    path = "/api/v1/subscribers",
    operation_id = "listSubscribers",
    tag = "subscribers",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "The subscribers", body = Vec<SubscriberView>),
        (status = 400, description = "A bad query string", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "`limit` is over 1000", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<SubscriberView>>, ApiError> {
    let limit = q.limit.unwrap_or(MAX_LIST_LIMIT);
    if limit == 0 {
        return Err(ApiError::bad_request("limit: use 1 or more"));
    }
    if limit > MAX_LIST_LIMIT {
        return Err(ApiError {
            field: Some("limit"),
            ..ApiError::unprocessable(format!(
                "limit: {limit} is over the maximum of {MAX_LIST_LIMIT} subscribers per request; ask for {MAX_LIST_LIMIT} or fewer"
            ))
        });
    }
    Ok(Json(
        state
            .store
            .subscribers(limit)?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// Removes a subscriber by id or by address.
#[utoipa::path(
    delete,
    path = "/api/v1/subscribers/{key}",
    operation_id = "removeSubscriber",
    tag = "subscribers",
    security(("bearer" = [])),
    params(("key" = String, Path, description = "The subscriber's id, email address or phone number")),
    responses(
        (status = 200, description = "The removed subscriber", body = SubscriberView),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 404, description = "No such subscriber", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "Not an id or a valid address", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let s = state.store.remove_subscriber(&key).await?;
    let note = subscriber_note(s.id);
    Ok(noted(Json(SubscriberView::from(s)), note))
}

/// `PATCH /api/v1/subscribers/{key}`: the fields given are replaced, the rest kept.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeSubscriber {
    /// The new language, e.g. `fi`.
    locale: Option<String>,
    /// The new component filter; `[]` means every component.
    components: Option<Vec<String>>,
}

/// Changes a subscriber's language and/or component filter; the fields not given are kept.
#[utoipa::path(
    patch,
    path = "/api/v1/subscribers/{key}",
    operation_id = "changeSubscriber",
    tag = "subscribers",
    security(("bearer" = [])),
    params(("key" = String, Path, description = "The subscriber's id, email address or phone number")),
    request_body = ChangeSubscriber,
    responses(
        (status = 200, description = "The changed subscriber", body = SubscriberView),
        (status = 400, description = "The body is not JSON", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 404, description = "No such subscriber", body = super::error::Problem, content_type = PROBLEM),
        (status = 413, description = "The body is too large", body = super::error::Problem, content_type = PROBLEM),
        (status = 415, description = "Not `Content-Type: application/json`", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "Nothing to change, an unknown component or language, or not an id or a valid address", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn change(
    State(state): State<AppState>,
    Path(key): Path<String>,
    ApiJson(req): ApiJson<ChangeSubscriber>,
) -> Result<Response, ApiError> {
    if req.locale.is_none() && req.components.is_none() {
        return Err(ApiError::unprocessable(
            "nothing to change: give `locale` and/or `components` (`[]` for every component)",
        ));
    }
    let locale = req.locale.as_deref().map(Locale::parse).transpose()?;
    let components = req
        .components
        .map(|cs| {
            cs.iter()
                .map(|c| ComponentName::parse(c))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let s = state
        .store
        .change_subscriber(&key, locale, components)
        .await?;
    let note = subscriber_note(s.id);
    Ok(noted(Json(SubscriberView::from(s)), note))
}

/// The one-click unsubscribe (RFC 8058) of the link in every message; no bearer token.
#[utoipa::path(
    post,
    path = "/api/v1/unsubscribe/{token}",
    operation_id = "unsubscribe",
    tag = "subscribers",
    params(("token" = String, Path, description = "The subscriber's unsubscribe token")),
    responses(
        (status = 200, description = "Unsubscribed", body = String, content_type = "text/plain"),
        (status = 404, description = "No such token", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn unsubscribe(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let s = state.store.unsubscribe(&token).await?;
    Ok(noted(
        "You are unsubscribed and will receive no further updates.\n",
        subscriber_note(s.id),
    ))
}

/// One rejected CSV row.
#[derive(Serialize, Debug, utoipa::ToSchema)]
pub struct RowError {
    pub line: u64,
    pub message: String,
}

/// The outcome of an import.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub added: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub errors: Vec<RowError>,
}

/// The CSV columns an import understands.
const COLUMNS: [&str; 4] = ["email", "phone", "locale", "components"];

/// The field separator, read from the header row: a comma, unless the header has none and
/// has semicolons or tabs instead (spreadsheets in many locales save "CSV" with `;`).
fn delimiter(body: &[u8]) -> u8 {
    let header = body.split(|b| *b == b'\n').next().unwrap_or_default();
    if header.contains(&b',') {
        b','
    } else if header.contains(&b';') {
        b';'
    } else if header.contains(&b'\t') {
        b'\t'
    } else {
        b','
    }
}

/// Imports subscribers from CSV with a header row naming some of `email`, `phone`, `locale`,
/// `components` (component names separated by `;`), separated by commas (or, read from the header
/// row, by semicolons or tabs). Each row has an email or a phone. Bad rows
/// are reported with their line number; the rest are imported; addresses are de-duplicated
/// against the store and within the file.
#[utoipa::path(
    post,
    path = "/api/v1/subscribers/import",
    operation_id = "importSubscribers",
    tag = "subscribers",
    security(("bearer" = [])),
    request_body(content = String, content_type = "text/csv", description = "CSV with a header row naming some of email, phone, locale, components"),
    responses(
        (status = 200, description = "Imported; bad rows are listed with their line numbers", body = ImportReport),
        (status = 400, description = "The body could not be read", body = super::error::Problem, content_type = PROBLEM),
        (status = 401, description = "No valid bearer token", body = super::error::Problem, content_type = PROBLEM),
        (status = 413, description = "The body is larger than `import_max_bytes`", body = super::error::Problem, content_type = PROBLEM),
        (status = 422, description = "The header row is unusable", body = super::error::Problem, content_type = PROBLEM),
    )
)]
pub async fn import(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ImportReport>, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ApiError::bad_request(e.body_text())
        }
    })?;
    let known: HashSet<String> = state
        .store
        .components()?
        .into_iter()
        .map(|c| c.name.to_string())
        .collect();
    let ParsedImport {
        batch,
        errors,
        in_file_duplicates,
    } = parse_import(&body, &known)?;
    let counts = state.store.import_subscribers(batch, Utc::now()).await?;
    tracing::info!(
        added = counts.added,
        rejected = errors.len(),
        "subscribers imported"
    );
    Ok(Json(ImportReport {
        added: counts.added,
        duplicates: counts.duplicates + in_file_duplicates,
        rejected: errors.len(),
        errors,
    }))
}

/// What an import body holds, before anything is written: the valid rows (unique within the
/// file), the rejected rows and how many rows repeated an earlier row's address.
pub struct ParsedImport {
    pub batch: Vec<NewSubscriber>,
    pub errors: Vec<RowError>,
    pub in_file_duplicates: usize,
}

/// Parses and validates an import body (see [`import`]) against the `known` component names.
/// It touches no store, so the fuzz target in fuzz/ can drive it directly.
pub fn parse_import(body: &[u8], known: &HashSet<String>) -> Result<ParsedImport, ApiError> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .delimiter(delimiter(body))
        .from_reader(body);
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| ApiError::unprocessable(format!("the CSV header row cannot be read: {e}")))?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    if let Some((i, dup)) = headers
        .iter()
        .enumerate()
        .find(|(i, h)| headers[..*i].contains(h))
    {
        return Err(ApiError::unprocessable(format!(
            "the CSV header row names \"{dup}\" twice (columns {} and {}); name each column once",
            headers.iter().position(|h| h == dup).map_or(0, |p| p + 1),
            i + 1
        )));
    }
    if let Some(bad) = headers.iter().find(|h| !COLUMNS.contains(&h.as_str())) {
        return Err(ApiError::unprocessable(format!(
            "unknown CSV column \"{bad}\"; the header row may name email, phone, locale and components"
        )));
    }
    if !headers.iter().any(|h| h == "email" || h == "phone") {
        return Err(ApiError::unprocessable(
            "the CSV header row names neither email nor phone; start the file with a header such as `email,phone,locale,components`",
        ));
    }
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (ce, cp, cl, cc) = (col("email"), col("phone"), col("locale"), col("components"));
    let mut batch = Vec::new();
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    let mut in_file_duplicates = 0;
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                errors.push(RowError {
                    line,
                    message: format!("unreadable row: {e}"),
                });
                continue;
            }
        };
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let field = |c: Option<usize>| c.and_then(|i| rec.get(i)).filter(|v| !v.is_empty());
        let row = (|| -> Result<NewSubscriber, String> {
            let contact = contact_of(field(ce), field(cp)).map_err(|e| e.detail)?;
            let locale = locale_of(field(cl)).map_err(|e| e.to_string())?;
            let mut components = Vec::new();
            for name in field(cc).unwrap_or_default().split(';').map(str::trim) {
                if name.is_empty() {
                    continue;
                }
                let n = ComponentName::parse(name).map_err(|e| e.to_string())?;
                if !known.contains(n.as_str()) {
                    return Err(DomainError::UnknownComponent(n.to_string()).to_string());
                }
                components.push(n);
            }
            Ok(NewSubscriber {
                contact,
                locale,
                components,
                confirmed: true,
            })
        })();
        match row {
            Ok(s) if !seen.insert(s.contact.address().to_owned()) => in_file_duplicates += 1,
            Ok(s) => batch.push(s),
            Err(message) => errors.push(RowError { line, message }),
        }
    }
    Ok(ParsedImport {
        batch,
        errors,
        in_file_duplicates,
    })
}
