//! `/api/v1/workflows` and `/api/v1/workflow-templates`: stored, versioned workflow graphs.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery, next_time_cursor, page_limit, time_cursor};
use app::api::AppError;
use app::commands::CommandError;
use app::commands::workflows::{self as cmd, Draft, Save};
use app::domain::account::Actor;
use app::domain::ids::WorkflowId;
use app::domain::workflow::{
    Definition, Export, Issue, SCHEMA_VERSION, VersionSummary, WorkflowDetail, WorkflowSummary,
    builtin_templates,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Templates instead of workflows.
    #[serde(default)]
    template: bool,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(format = DateTime)]
    cursor: Option<String>,
}

/// A page of workflows, most recently saved first.
#[derive(Serialize, ToSchema)]
pub struct WorkflowPage {
    pub items: Vec<WorkflowSummary>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// Lists workflows (or saved templates), most recently saved first.
#[utoipa::path(get, path = "/workflows", tag = "workflows", params(ListQuery),
    responses((status = 200, description = "A page of workflows", body = WorkflowPage)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<WorkflowPage>, ApiError> {
    let limit = page_limit(q.limit, 50, 500)?;
    let before = time_cursor(q.cursor.as_deref())?;
    let items = app::db::workflows::list(&state.ctx.pool, q.template, limit, before).await?;
    let next_cursor = next_time_cursor(&items, limit, |w| w.updated_at);
    Ok(Json(WorkflowPage { items, next_cursor }))
}

/// A new workflow: a definition, or a template to start from.
#[derive(Deserialize, ToSchema)]
pub struct Create {
    #[schema(schema_with = app::api::schema::workflow_name)]
    name: Option<String>,
    #[schema(schema_with = app::api::schema::workflow_description)]
    description: Option<String>,
    /// The graph; empty when starting from a template.
    definition: Option<Definition>,
    /// A built-in template's slug or a saved template's id (instead of `definition`).
    #[schema(schema_with = app::api::schema::template_ref)]
    from_template: Option<String>,
    /// A note on this first version.
    #[schema(schema_with = app::api::schema::version_message)]
    message: Option<String>,
}

/// Creates a workflow as version 1 (saved as a draft when it does not validate yet).
#[utoipa::path(post, path = "/workflows", tag = "workflows", request_body = Create,
    responses((status = 201, description = "Created", body = WorkflowDetail)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiJson(body): ApiJson<Create>,
) -> Result<(StatusCode, Json<WorkflowDetail>), ApiError> {
    let pool = &state.ctx.pool;
    let detail = match (body.from_template, body.definition) {
        (Some(_), Some(_)) => {
            return Err(
                AppError::invalid("give a definition or from_template, not both")
                    .with_field("from_template")
                    .into(),
            );
        }
        (Some(t), None) => {
            let (name, description) = (body.name.as_deref(), body.description.as_deref());
            cmd::instantiate(pool, &me, &t, name, description, body.message.as_deref()).await?
        }
        (None, definition) => {
            let draft = Draft {
                name: body.name.unwrap_or_else(|| "Untitled workflow".into()),
                description: body.description.unwrap_or_default(),
                definition: definition.unwrap_or_default(),
                message: body.message.unwrap_or_default(),
            };
            cmd::create(pool, &me, draft, false).await?
        }
    };
    Ok((StatusCode::CREATED, Json(detail)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VersionQuery {
    /// A past version instead of the newest.
    #[param(minimum = 1)]
    version: Option<i32>,
}

/// A workflow with its newest version (or the one asked for).
#[utoipa::path(get, path = "/workflows/{id}", tag = "workflows",
    params(("id" = WorkflowId, Path), VersionQuery),
    responses((status = 200, description = "The workflow", body = WorkflowDetail)))]
pub async fn get(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<WorkflowId>,
    ApiQuery(q): ApiQuery<VersionQuery>,
) -> Result<Json<WorkflowDetail>, ApiError> {
    let detail = app::db::workflows::get(&state.ctx.pool, id, q.version).await?;
    Ok(Json(detail))
}

/// A save: the version it was based on and the new graph.
#[derive(Deserialize, ToSchema)]
pub struct SaveBody {
    /// The version this edit started from; 409 when a newer one was saved meanwhile.
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "app::domain::number::integral_i32")]
    base_version: i32,
    #[schema(schema_with = app::api::schema::workflow_name)]
    name: Option<String>,
    #[schema(schema_with = app::api::schema::workflow_description)]
    description: Option<String>,
    definition: Definition,
    /// What changed, for the history.
    #[schema(schema_with = app::api::schema::version_message)]
    message: Option<String>,
}

/// Saves a new version of a workflow.
#[utoipa::path(put, path = "/workflows/{id}", tag = "workflows", params(("id" = WorkflowId, Path)),
    request_body = SaveBody,
    responses((status = 200, description = "Saved as the newest version", body = WorkflowDetail)))]
pub async fn save(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiPath(id): ApiPath<WorkflowId>,
    ApiJson(body): ApiJson<SaveBody>,
) -> Result<Json<WorkflowDetail>, ApiError> {
    let save = Save {
        base_version: body.base_version,
        name: body.name,
        description: body.description,
        definition: body.definition,
        message: body.message.unwrap_or_default(),
    };
    Ok(Json(cmd::save(&state.ctx.pool, &me, id, save).await?))
}

/// The outcome of a validation that passed.
#[derive(Serialize, ToSchema)]
pub struct Validation {
    pub valid: bool,
    pub issues: Vec<Issue>,
}

/// A 422 listing every issue, or the passing outcome.
fn verdict(issues: Vec<Issue>) -> Result<Json<Validation>, ApiError> {
    if issues.is_empty() {
        Ok(Json(Validation {
            valid: true,
            issues,
        }))
    } else {
        Err(CommandError::Issues(issues).into())
    }
}

/// An unsaved workflow body (an export file is one).
#[derive(Deserialize, ToSchema)]
pub struct ValidateBody {
    /// When given (as in an export), it must be the version this server reads.
    #[schema(minimum = 1, maximum = 1)]
    #[serde(default, deserialize_with = "app::domain::number::integral_u32_opt")]
    schema_version: Option<u32>,
    definition: Definition,
}

/// Validates an unsaved definition: 200 when it could run, 422 with every issue otherwise.
#[utoipa::path(post, path = "/workflows/validate", tag = "workflows", request_body = ValidateBody,
    responses((status = 200, description = "Valid", body = Validation)))]
pub async fn validate_body(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ValidateBody>,
) -> Result<Json<Validation>, ApiError> {
    if let Some(v) = body.schema_version
        && v != SCHEMA_VERSION
    {
        return Err(AppError::invalid(format!(
            "schema_version {v} is not supported (this Flotilla reads {SCHEMA_VERSION})"
        ))
        .with_field("schema_version")
        .into());
    }
    verdict(cmd::check(&state.ctx.pool, None, &body.definition).await?)
}

/// Validates a stored workflow's newest version against the fleet as it is now.
#[utoipa::path(post, path = "/workflows/{id}/validate", tag = "workflows",
    params(("id" = WorkflowId, Path)),
    responses((status = 200, description = "Valid", body = Validation)))]
pub async fn validate_stored(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<WorkflowId>,
) -> Result<Json<Validation>, ApiError> {
    let pool = &state.ctx.pool;
    let detail = app::db::workflows::get(pool, id, None).await?;
    verdict(cmd::check(pool, Some(id), &detail.definition).await?)
}

/// A page of a workflow's versions, newest first.
#[derive(Serialize, ToSchema)]
pub struct VersionPage {
    pub items: Vec<VersionSummary>,
}

/// The saved versions of a workflow, newest first.
#[utoipa::path(get, path = "/workflows/{id}/versions", tag = "workflows",
    params(("id" = WorkflowId, Path)),
    responses((status = 200, description = "Its history", body = VersionPage)))]
pub async fn versions(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<WorkflowId>,
) -> Result<Json<VersionPage>, ApiError> {
    let mut conn = state.ctx.pool.acquire().await.map_err(AppError::from)?;
    let items = app::db::workflows::versions(&mut conn, id).await?;
    Ok(Json(VersionPage { items }))
}

/// A version as an export file (`schema_version` 1), for `POST /workflows/import`.
#[utoipa::path(get, path = "/workflows/{id}/export", tag = "workflows",
    params(("id" = WorkflowId, Path), VersionQuery),
    responses((status = 200, description = "The export", body = Export)))]
pub async fn export(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<WorkflowId>,
    ApiQuery(q): ApiQuery<VersionQuery>,
) -> Result<Json<Export>, ApiError> {
    let detail = app::db::workflows::get(&state.ctx.pool, id, q.version).await?;
    Ok(Json(cmd::export(&detail)))
}

/// Creates a workflow from an export file; an unknown `schema_version` is refused.
#[utoipa::path(post, path = "/workflows/import", tag = "workflows", request_body = Export,
    responses((status = 201, description = "Imported as a new workflow", body = WorkflowDetail)))]
pub async fn import(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<(StatusCode, Json<WorkflowDetail>), ApiError> {
    let detail = cmd::import(&state.ctx.pool, &me, &body).await?;
    Ok((StatusCode::CREATED, Json(detail)))
}

#[derive(Deserialize, ToSchema)]
pub struct TemplateBody {
    /// The template's name (default: the workflow's, marked as a template).
    #[schema(schema_with = app::api::schema::workflow_name)]
    name: Option<String>,
}

/// Saves a workflow's newest version as a new template.
#[utoipa::path(post, path = "/workflows/{id}/template", tag = "workflows",
    params(("id" = WorkflowId, Path)), request_body = TemplateBody,
    responses((status = 201, description = "The new template", body = WorkflowDetail)))]
pub async fn save_as_template(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiPath(id): ApiPath<WorkflowId>,
    ApiJson(body): ApiJson<TemplateBody>,
) -> Result<(StatusCode, Json<WorkflowDetail>), ApiError> {
    let detail = cmd::save_as_template(&state.ctx.pool, &me, id, body.name.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(detail)))
}

/// A template to start a workflow from.
#[derive(Serialize, ToSchema)]
pub struct TemplateSummary {
    /// What `from_template` takes: a built-in slug, or a saved template's id.
    pub id: String,
    pub name: String,
    pub description: String,
    pub builtin: bool,
    pub nodes: i64,
}

#[derive(Serialize, ToSchema)]
pub struct TemplatePage {
    pub items: Vec<TemplateSummary>,
}

/// The built-in templates, then the saved ones (newest first, up to 500).
#[utoipa::path(get, path = "/workflow-templates", tag = "workflows",
    responses((status = 200, description = "Templates", body = TemplatePage)))]
pub async fn templates(State(state): State<AppState>) -> Result<Json<TemplatePage>, ApiError> {
    let mut items: Vec<TemplateSummary> = builtin_templates()
        .into_iter()
        .map(|t| TemplateSummary {
            id: t.slug.to_owned(),
            nodes: i64::try_from(t.export.definition.nodes.len()).unwrap_or(i64::MAX),
            name: t.export.name,
            description: t.export.description,
            builtin: true,
        })
        .collect();
    let saved = app::db::workflows::list(&state.ctx.pool, true, 500, None).await?;
    items.extend(saved.into_iter().map(|w| TemplateSummary {
        id: w.id.to_string(),
        name: w.name,
        description: w.description,
        builtin: false,
        nodes: w.nodes,
    }));
    Ok(Json(TemplatePage { items }))
}
