//! The OpenAPI 3.1 document of the HTTP API, served at `GET /api/v1/openapi.json`.
//!
//! It is generated, not written: every handler carries a `#[utoipa::path]` attribute, and the
//! router in [`super::router`] is assembled from those handlers by utoipa-axum's `routes!`, which
//! registers the route in axum and the operation in the document from the same attribute. A route
//! therefore cannot be served without being documented, and its documented path is the path axum
//! matches. What this module adds is the part no handler knows: the document's info, the bearer
//! security scheme, the problem+json error shape and the tags.

use axum::http::header;
use axum::response::IntoResponse;
use axum::Extension;
use std::sync::Arc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The media type of every error answer (RFC 9457).
pub const PROBLEM: &str = "application/problem+json";

/// The security scheme name operations refer to in `security(("bearer" = []))`.
pub const BEARER: &str = "bearer";

/// The frame of the document: everything but the paths and the schemas they collect.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "crier",
        description = "Crisis status updates: incidents and maintenance, their timelines, subscribers, \
                       recurring notices, monitoring intake and delivery status. Every write and every \
                       non-public read needs `Authorization: Bearer <token>`: a personal token (`POST /api/v1/login`) \
                       or the bootstrap admin token in `<data>/admin.token`; what each role may call is \
                       in docs/SECURITY.md. Errors are `application/problem+json` with a `detail` that \
                       says what to change."
    ),
    modifiers(&Security),
    components(schemas(super::error::Problem)),
    tags(
        (name = "incidents", description = "Incidents and maintenance windows with their timelines"),
        (name = "deliveries", description = "What was sent to whom, and requeueing dead deliveries"),
        (name = "components", description = "The parts of the service the status page shows"),
        (name = "subscribers", description = "People who are told by email or SMS"),
        (name = "notices", description = "Recurring notices on a crontab(5) schedule"),
        (name = "templates", description = "Incident templates: canned titles and messages per language, applied when composing"),
        (name = "intake", description = "Monitoring triggers and webhooks (Alertmanager, Grafana)"),
        (name = "preview", description = "What a channel would send, rendered and fitted"),
        (name = "hooks", description = "Provider callbacks (Twilio status)"),
        (name = "backup", description = "A consistent snapshot of the whole store, for `crier restore`"),
        (name = "public", description = "Probes, metrics, the public status summary, this document"),
        (name = "team", description = "Signing in, users, personal tokens and the audit log (docs/SECURITY.md)"),
    )
)]
pub struct ApiDoc;

/// Adds the bearer scheme (the admin token; opaque, not a JWT).
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A personal token (crier_…, from POST /api/v1/login or /api/v1/tokens), or the \
                         bootstrap admin token: CRIER_ADMIN_TOKEN (or the variable named by \
                         admin_token_env), else the generated <data>/admin.token",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as served: serialised once when the router is built.
#[derive(Clone)]
pub struct Document(pub Arc<String>);

impl Document {
    pub fn new(doc: &utoipa::openapi::OpenApi) -> Self {
        // Serialising a document of plain maps and strings cannot fail; an empty object would
        // still be valid JSON should it ever.
        Document(Arc::new(doc.to_json().unwrap_or_else(|_| "{}".to_owned())))
    }
}

/// This document: the whole HTTP API as OpenAPI 3.1.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapi",
    tag = "public",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object))
)]
pub async fn openapi_json(Extension(doc): Extension<Document>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.0.as_str().to_owned(),
    )
}

/// Documents the 403 of every operation that needs a token: which role it needs is the
/// authorisation table's business (`super::authz`), so the handlers do not each repeat it.
pub fn document_forbidden(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::content::ContentBuilder;
    use utoipa::openapi::response::ResponseBuilder;
    use utoipa::openapi::{Ref, RefOr};
    for item in doc.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in ops.into_iter().flatten() {
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            if !secured || op.responses.responses.contains_key("403") {
                continue;
            }
            let response = ResponseBuilder::new()
                .description(
                    "The token's role is below the one this operation needs (docs/SECURITY.md)",
                )
                .content(
                    PROBLEM,
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build();
            op.responses
                .responses
                .insert("403".to_owned(), RefOr::T(response));
        }
    }
}
