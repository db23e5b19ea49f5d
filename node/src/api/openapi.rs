//! The API's OpenAPI 3.1 document, generated from the routes and the [`super::wire`] types,
//! and the route that serves it (`GET /v1/openapi.json`).

use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::{access, audit, cases, drafts, evidence, keys, messages, send, status, wire};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Rogatory node local API",
        description = "The local API of a Rogatory node: cases, messages, evidence and audit, for \
            the command line and case-management systems on the agency's machine. Every request \
            but /v1/proof and /v1/openapi.json carries `Authorization: Bearer <token>`: an official's own \
            token (`rogatory user add`), each route needing a permission the account's roles \
            give (spec/PEOPLE.md), or the node's `api-token` file (every permission while no \
            account exists, an administrator's once one does; `X-Rogatory-User` then names the \
            local user for the audit log).",
        license(name = "Apache-2.0")
    ),
    paths(
        status::status, status::proof, document,
        messages::inbox, messages::outbox, messages::outbox_one, send::send, send::send_batch,
        messages::message, messages::forward,
        cases::cases, cases::new_case, cases::case_one, cases::case_export, cases::deadlines,
        evidence::list, evidence::add, evidence::send, evidence::export, evidence::verify,
        audit::alerts, audit::log, audit::checkpoint, audit::prove, audit::consistency,
        audit::verify_store, keys::reload, access::me, super::backup::backup, super::metrics::metrics, super::stats::stats,
        drafts::list, drafts::one, drafts::approve, drafts::reject, drafts::validate,
    ),
    components(schemas(wire::ErrorBody, wire::PeerStatus)),
    modifiers(&Bearer),
    security(("bearer" = [])),
    tags(
        (name = "status", description = "The node"),
        (name = "messages", description = "Inbox, outbox, sending"),
        (name = "cases", description = "Cases, their history and deadlines"),
        (name = "evidence", description = "Evidence items and their content"),
        (name = "audit", description = "Audit logs, proofs, alerts"),
    )
)]
struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The node's API token (its `api-token` file)"))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document, as JSON.
pub fn openapi() -> serde_json::Value {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    serde_json::to_value(&doc).unwrap_or_default()
}

/// This API's OpenAPI 3.1 document (the same as `spec/openapi.json`). Needs no token.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "status", security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
pub(super) async fn document() -> axum::Json<serde_json::Value> {
    axum::Json(openapi())
}
