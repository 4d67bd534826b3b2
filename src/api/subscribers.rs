//! Subscribers: add one, import a CSV, list, change one's language or components, remove, and the public one-click unsubscribe.

use super::authz::{noted, AuditNote};
use super::extract::{too_large, ApiJson, ApiQuery};
use super::openapi::PROBLEM;
use super::{ApiError, AppState};
use crate::domain::NewSubscriber;
use crate::domain::{ComponentName, Contact, DomainError, Locale, Subscriber};
use crate::store::port::{Components, Subscribers};
use crate::store::IMPORT_CHUNK;
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
/// The CLI reads it as this type too (`crier subscribers`).
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct SubscriberView {
    pub id: Ulid,
    #[serde(flatten)]
    pub contact: Contact,
    pub locale: Locale,
    pub components: Vec<ComponentName>,
    pub confirmed: bool,
    /// The number answered STOP (or Twilio refused a send with error 21610): nothing is sent
    /// until it answers START.
    pub opted_out: bool,
    pub created_at: DateTime<Utc>,
}

impl From<Subscriber> for SubscriberView {
    fn from(s: Subscriber) -> Self {
        SubscriberView {
            id: s.id,
            contact: s.contact,
            locale: s.locale,
            components: s.components,
            confirmed: s.confirmed,
            opted_out: s.opted_out,
            created_at: s.created_at,
        }
    }
}

/// A subscriber: exactly one of `email` or `phone` (E.164, e.g. +358401234567).
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"email": "ops@example.com", "locale": "fi"})))]
pub struct AddSubscriber {
    #[schema(format = Email)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// A language tag; blank or absent means `en`.
    #[schema(pattern = r"^\s*([A-Za-z]{2,3}([-_][A-Za-z]{2})?)?\s*$")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// Components they care about (existing ones); empty means all.
    #[serde(default)]
    #[schema(value_type = Vec<ComponentName>)]
    pub components: Vec<String>,
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
    let s = state
        .store
        .add_subscriber(new, state.dispatcher.now())
        .await?;
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
    /// `true`: only sign-ups not yet confirmed (they receive nothing); `false`: only confirmed
    /// subscribers; absent: all.
    pending: Option<bool>,
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
    let list = match q.pending {
        None => state.store.subscribers(limit).await?,
        Some(p) => {
            state
                .store
                .subscribers_where(limit, |s| s.confirmed != p)
                .await?
        }
    };
    Ok(Json(list.into_iter().map(Into::into).collect()))
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
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeSubscriber {
    /// The new language, e.g. `fi`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// The new component filter; `[]` means every component.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<String>>,
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
    let given = (locale.is_some(), components.is_some());
    let (was, s) = state
        .store
        .change_subscriber(&key, locale, components)
        .await?;
    let note = AuditNote {
        summary: change_summary(&was, &s, given),
        ..subscriber_note(s.id)
    };
    Ok(noted(Json(SubscriberView::from(s)), note))
}

/// What a change did, for the audit log: each field given, as it was → as it is now
/// (`language fi → sv; components Check-in → every component`). No address: viewers read the
/// audit log.
fn change_summary(
    was: &Subscriber,
    now: &Subscriber,
    (locale, components): (bool, bool),
) -> String {
    fn names(s: &Subscriber) -> String {
        if s.components.is_empty() {
            "every component".to_owned()
        } else {
            s.components
                .iter()
                .map(ComponentName::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        }
    }
    let mut parts = Vec::new();
    if locale {
        parts.push(format!(
            "language {} → {}",
            was.locale.as_str(),
            now.locale.as_str()
        ));
    }
    if components {
        parts.push(format!("components {} → {}", names(was), names(now)));
    }
    parts.join("; ")
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
#[derive(Serialize, Deserialize, Debug, utoipa::ToSchema)]
pub struct RowError {
    pub line: u64,
    pub message: String,
}

/// The outcome of an import; the CLI reads it as this type too (`crier subscribers import`).
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
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
        .components()
        .await?
        .into_iter()
        .map(|c| c.name.to_string())
        .collect();
    // Parsed, validated and written IMPORT_CHUNK rows at a time, so that an import holds one
    // chunk's subscribers and records in memory rather than the whole file's: five 200,000-row
    // requests peaked at 397 MiB and left 394 MiB resident when each was parsed whole (the
    // freed memory fragmented between sled's pages), and at 237 / 224 MiB chunked, which is
    // sled's own state (docs/BENCHMARKS.md, rss). Line numbers run on across chunks, and an
    // address repeated in a later chunk is found in the store, so the report is the same.
    let mut rows = ImportRows::new(&body, &known)?;
    let now = state.dispatcher.now();
    let mut report = ImportReport {
        added: 0,
        duplicates: 0,
        rejected: 0,
        errors: Vec::new(),
    };
    while let Some(chunk) = rows.next_chunk(IMPORT_CHUNK) {
        let counts = state.store.import_subscribers(chunk.batch, now).await?;
        report.added += counts.added;
        report.duplicates += counts.duplicates + chunk.in_file_duplicates;
        report.errors.extend(chunk.errors);
    }
    report.rejected = report.errors.len();
    tracing::info!(
        added = report.added,
        rejected = report.rejected,
        "subscribers imported"
    );
    Ok(Json(report))
}

/// The refusal of a CSV file over the import limit (`size`: the file's, when known).
pub fn csv_too_large(size: Option<usize>, limit: usize) -> ApiError {
    let size = size.map_or_else(String::new, |n| format!("{n} bytes, "));
    ApiError {
        field: Some("csv"),
        ..ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the CSV file is {size}over the import limit of {limit} bytes (import_max_bytes); nothing was imported: split it into smaller files, or ask the operator to raise import_max_bytes"
            ),
        )
    }
}

/// What an import body (or one chunk of it) holds, before anything is written: the valid rows
/// (unique within it), the rejected rows and how many rows repeated an earlier row's address.
pub struct ParsedImport {
    pub batch: Vec<NewSubscriber>,
    pub errors: Vec<RowError>,
    pub in_file_duplicates: usize,
}

/// Parses and validates a whole import body (see [`import`]) against the `known` component
/// names, as one chunk. It touches no store, so the fuzz target in fuzz/ can drive it directly.
pub fn parse_import(body: &[u8], known: &HashSet<String>) -> Result<ParsedImport, ApiError> {
    let mut rows = ImportRows::new(body, known)?;
    Ok(rows.next_chunk(usize::MAX).unwrap_or(ParsedImport {
        batch: Vec::new(),
        errors: Vec::new(),
        in_file_duplicates: 0,
    }))
}

/// An import body read a chunk of rows at a time: the header row is checked when it is created,
/// before anything is written; [`ImportRows::next_chunk`] parses and validates the next rows.
pub struct ImportRows<'a> {
    rdr: csv::Reader<&'a [u8]>,
    /// The positions of the email, phone, locale and components columns.
    ce: Option<usize>,
    cp: Option<usize>,
    cl: Option<usize>,
    cc: Option<usize>,
    known: &'a HashSet<String>,
    rows: usize,
    done: bool,
}

impl<'a> ImportRows<'a> {
    /// Reads and checks the header row: an unusable one refuses the whole body.
    pub fn new(body: &'a [u8], known: &'a HashSet<String>) -> Result<Self, ApiError> {
        let mut rdr = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(true)
            .delimiter(delimiter(body))
            .from_reader(body);
        let headers: Vec<String> = rdr
            .headers()
            .map_err(|e| {
                ApiError::unprocessable(format!("the CSV header row cannot be read: {e}"))
            })?
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
        Ok(ImportRows {
            ce: col("email"),
            cp: col("phone"),
            cl: col("locale"),
            cc: col("components"),
            rdr,
            known,
            rows: 0,
            done: false,
        })
    }

    /// Rows read so far (valid, rejected and repeated).
    pub fn rows_read(&self) -> usize {
        self.rows
    }

    /// Parses and validates the next at most `max` rows; `None` once every row has been read.
    /// Rows are unique within a chunk; a row repeating an address of an earlier chunk is left
    /// for the store to find.
    pub fn next_chunk(&mut self, max: usize) -> Option<ParsedImport> {
        if self.done {
            return None;
        }
        let mut chunk = ParsedImport {
            batch: Vec::new(),
            errors: Vec::new(),
            in_file_duplicates: 0,
        };
        let mut seen = HashSet::new();
        let mut rec = csv::StringRecord::new();
        let mut read = 0;
        while read < max {
            match self.rdr.read_record(&mut rec) {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    break;
                }
                Err(e) => {
                    let line = e.position().map(|p| p.line()).unwrap_or(0);
                    chunk.errors.push(RowError {
                        line,
                        message: format!("unreadable row: {e}"),
                    });
                    read += 1;
                    continue;
                }
            }
            read += 1;
            let line = rec.position().map(|p| p.line()).unwrap_or(0);
            match self.row(&rec) {
                Ok(s) if !seen.insert(s.contact.address().to_owned()) => {
                    chunk.in_file_duplicates += 1
                }
                Ok(s) => chunk.batch.push(s),
                Err(message) => chunk.errors.push(RowError { line, message }),
            }
        }
        self.rows += read;
        (read > 0).then_some(chunk)
    }

    /// One row as a subscriber, or why it is refused.
    fn row(&self, rec: &csv::StringRecord) -> Result<NewSubscriber, String> {
        let field = |c: Option<usize>| c.and_then(|i| rec.get(i)).filter(|v| !v.is_empty());
        let contact = contact_of(field(self.ce), field(self.cp)).map_err(|e| e.detail)?;
        let locale = locale_of(field(self.cl)).map_err(|e| e.to_string())?;
        let mut components = Vec::new();
        for name in field(self.cc).unwrap_or_default().split(';').map(str::trim) {
            if name.is_empty() {
                continue;
            }
            let n = ComponentName::parse(name).map_err(|e| e.to_string())?;
            if !self.known.contains(n.as_str()) {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(errors: &[RowError]) -> Vec<u64> {
        errors.iter().map(|e| e.line).collect()
    }

    fn addresses(batch: &[NewSubscriber]) -> Vec<&str> {
        batch.iter().map(|s| s.contact.address()).collect()
    }

    /// Chunks read the file in order: line numbers run on from chunk to chunk, a repeat within
    /// a chunk is counted there, and a repeat of an earlier chunk's address stays in the batch
    /// for the store to find.
    #[test]
    fn chunks_keep_line_numbers_and_leave_cross_chunk_repeats_to_the_store() {
        let known = HashSet::new();
        let body = b"email\na@x.io\nbad\nb@x.io\nB@x.io\nA@x.io\n\xff@x.io\nc@x.io\n";
        let mut rows = ImportRows::new(body, &known).unwrap();
        let c = rows.next_chunk(2).unwrap();
        assert_eq!(addresses(&c.batch), ["a@x.io"]);
        assert_eq!(lines(&c.errors), [3]);
        let c = rows.next_chunk(2).unwrap();
        assert_eq!(addresses(&c.batch), ["b@x.io"]);
        assert_eq!(c.in_file_duplicates, 1);
        assert!(c.errors.is_empty());
        let c = rows.next_chunk(2).unwrap();
        assert_eq!(addresses(&c.batch), ["a@x.io"], "left to the store");
        assert_eq!(lines(&c.errors), [7]);
        assert!(c.errors[0].message.contains("unreadable row"));
        let c = rows.next_chunk(2).unwrap();
        assert_eq!(addresses(&c.batch), ["c@x.io"]);
        assert!(rows.next_chunk(2).is_none());
        assert_eq!(rows.rows_read(), 7);

        // The whole file as one chunk finds both repeats itself.
        let whole = parse_import(body, &known).unwrap();
        assert_eq!(addresses(&whole.batch), ["a@x.io", "b@x.io", "c@x.io"]);
        assert_eq!(whole.in_file_duplicates, 2);
        assert_eq!(lines(&whole.errors), [3, 7]);
    }
}

#[cfg(test)]
mod wire_tests {
    use super::*;
    use serde_json::json;

    /// The CLI sends these structs: what one serialises, the API reads back unchanged
    /// (`deny_unknown_fields`); a field not given stays absent, and `components: []` (every
    /// component) stays distinct from no change.
    #[test]
    fn subscriber_writes_round_trip() {
        for sent in [
            json!({"email": "ops@example.com", "locale": "fi", "components": ["Check-in"]}),
            json!({"phone": "+358401234567", "components": []}),
        ] {
            let req: AddSubscriber = serde_json::from_value(sent.clone()).unwrap();
            assert_eq!(serde_json::to_value(&req).unwrap(), sent);
        }
        for sent in [
            json!({"locale": "sv"}),
            json!({"components": []}),
            json!({"locale": "fi", "components": ["Check-in"]}),
            json!({}),
        ] {
            let req: ChangeSubscriber = serde_json::from_value(sent.clone()).unwrap();
            assert_eq!(serde_json::to_value(&req).unwrap(), sent);
        }
    }
}
