//! The REST API and its OpenAPI 3.1 document, from one router: a route is added here with the
//! `#[utoipa::path]` of its handler, so none can exist undocumented.

use super::error::ErrorBody;
use super::{
    AppState, agents, events, providers, runs, session, stream, tasks, tokens, users, workflows,
};
use axum::http::header;
use axum::response::IntoResponse;
use std::sync::OnceLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr, Response, ResponseBuilder, content::Content};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Where the API lives; the document's paths include it.
pub const PREFIX: &str = "/api/v1";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Flotilla",
        description = "Tasks planned into DAGs of subtasks and run by a fleet of agents. Every \
            error is `{\"error\": {\"code\", \"message\", \"field\"?}}` with the status of its code.",
    ),
    modifiers(&Security),
    security(("bearer" = []), ("session" = [])),
    tags(
        (name = "session", description = "Logging in and out"),
        (name = "tasks", description = "Tasks and their subtasks"),
        (name = "agents", description = "The fleet"),
        (name = "providers", description = "The model providers agents run on (admins)"),
        (name = "workflows", description = "Saved, versioned workflow graphs and their templates"),
        (name = "runs", description = "Runs of workflows: node states, approvals, retries"),
        (name = "events", description = "The record of every state change, paged or live"),
        (name = "users", description = "Accounts (admins)"),
        (name = "tokens", description = "API tokens for scripts"),
        (name = "meta", description = "This document"),
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token from `POST /api/v1/tokens`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("flotilla_session"))),
        );
    }
}

/// Every REST route, relative to [`PREFIX`].
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(session::current, session::login, session::logout))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::set_role))
        .routes(routes!(tokens::create))
        .routes(routes!(tokens::revoke))
        .routes(routes!(tasks::list, tasks::submit))
        .routes(routes!(tasks::get))
        .routes(routes!(tasks::transcripts))
        .routes(routes!(tasks::cancel))
        .routes(routes!(tasks::retry_subtask))
        .routes(routes!(agents::list, agents::spawn))
        .routes(routes!(agents::get, agents::configure))
        .routes(routes!(agents::metrics))
        .routes(routes!(agents::usage))
        .routes(routes!(agents::pause))
        .routes(routes!(agents::resume))
        .routes(routes!(agents::terminate))
        .routes(routes!(providers::list, providers::create))
        .routes(routes!(
            providers::get,
            providers::update,
            providers::delete
        ))
        .routes(routes!(providers::test))
        .routes(routes!(workflows::list, workflows::create))
        .routes(routes!(workflows::validate_body))
        .routes(routes!(workflows::import))
        .routes(routes!(workflows::get, workflows::save))
        .routes(routes!(workflows::validate_stored))
        .routes(routes!(workflows::versions))
        .routes(routes!(workflows::export))
        .routes(routes!(workflows::save_as_template))
        .routes(routes!(workflows::templates))
        .routes(routes!(runs::list, runs::start))
        .routes(routes!(runs::get))
        .routes(routes!(runs::cancel))
        .routes(routes!(runs::retry))
        .routes(routes!(runs::approve))
        .routes(routes!(runs::reject))
        .routes(routes!(events::list))
        .routes(routes!(stream::stream))
        .routes(routes!(openapi_json))
}

/// The refusals any operation may meet, from the guard, the limits or the handler itself.
const ERRORS: [(u16, &str); 10] = [
    (401, "Not logged in, or an unknown or revoked token"),
    (403, "The role does not allow it, or a cross-site request"),
    (404, "No such resource"),
    (409, "It conflicts with the current state"),
    (413, "The body is too large"),
    (415, "The body is not JSON"),
    (
        422,
        "The input was refused; `message` says why and `field` which",
    ),
    (
        429,
        "Too many requests; `Retry-After` says when to try again",
    ),
    (500, "An internal failure (logged on the server)"),
    (503, "Not ready, or shutting down"),
];

fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                "ErrorBody",
            )))),
        )
        .build()
        .into()
}

/// The whole document, built once.
pub fn document() -> &'static Document {
    static DOC: OnceLock<Document> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = OpenApiRouter::<AppState>::with_openapi(ApiDoc::openapi())
            .nest(PREFIX, routes())
            .into_openapi();
        for item in doc.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in ops.into_iter().flatten() {
                // Handler names repeat across modules (`list`, `get`): prefix the tag.
                if let (Some(tag), Some(id)) = (
                    op.tags.as_ref().and_then(|t| t.first()),
                    op.operation_id.as_mut(),
                ) {
                    *id = format!("{tag}_{id}");
                }
                for (status, description) in ERRORS {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| error_response(description));
                }
            }
        }
        let components = doc.components.get_or_insert_with(Default::default);
        components.schemas.insert(
            "ErrorBody".into(),
            <ErrorBody as utoipa::PartialSchema>::schema(),
        );
        for (name, schema) in {
            let mut v = Vec::new();
            <ErrorBody as utoipa::ToSchema>::schemas(&mut v);
            v
        } {
            components.schemas.entry(name).or_insert(schema);
        }
        doc
    })
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of this API",
        content_type = "application/json", body = Object)))]
pub async fn openapi_json() -> impl IntoResponse {
    static JSON: OnceLock<String> = OnceLock::new();
    let body = JSON.get_or_init(|| serde_json::to_string(document()).unwrap_or_default());
    ([(header::CONTENT_TYPE, "application/json")], body.as_str())
}
