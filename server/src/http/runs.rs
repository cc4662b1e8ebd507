//! Workflow runs: start one, its history, the run with node states, cancel, retry a node,
//! approve or reject an approval node.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery, next_time_cursor, page_limit, time_cursor};
use super::tasks::TaskStatus;
use app::api::{AppError, ErrorKind};
use app::commands;
use app::commands::workflows as cmd;
use app::domain::account::Actor;
use app::domain::ids::{NodeId, RunId, WorkflowId};
use app::domain::run::{NodeStatus, RunStatus};
use app::domain::workflow::{RunDetail, RunSummary};
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, ToSchema)]
pub struct StartRun {
    /// Values for the workflow's declared inputs; defaults fill the rest.
    #[serde(default)]
    #[schema(value_type = Object)]
    inputs: serde_json::Map<String, serde_json::Value>,
    /// A past version to run (default: the newest).
    #[schema(minimum = 1)]
    #[serde(default, deserialize_with = "app::domain::number::integral_i32_opt")]
    version: Option<i32>,
}

/// Starts a run: 201 with the run, or 422 listing every issue (graph or inputs).
#[utoipa::path(post, path = "/workflows/{id}/runs", tag = "runs", params(("id" = WorkflowId, Path)),
    request_body = StartRun,
    responses((status = 201, description = "Started", body = TaskStatus)))]
pub async fn start(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiPath(id): ApiPath<WorkflowId>,
    ApiJson(body): ApiJson<StartRun>,
) -> Result<(StatusCode, Json<TaskStatus>), ApiError> {
    let run = cmd::run(&state.ctx.pool, &me, id, body.version, &body.inputs).await?;
    Ok((
        StatusCode::CREATED,
        Json(TaskStatus {
            id: run,
            status: RunStatus::InProgress,
        }),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// Only runs in this status.
    status: Option<RunStatus>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(format = DateTime)]
    cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RunPage {
    pub items: Vec<RunSummary>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// A workflow's runs, newest first.
#[utoipa::path(get, path = "/workflows/{id}/runs", tag = "runs",
    params(("id" = WorkflowId, Path), RunsQuery),
    responses((status = 200, description = "A page of runs", body = RunPage)))]
pub async fn list(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<WorkflowId>,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> Result<Json<RunPage>, ApiError> {
    let pool = &state.ctx.pool;
    let limit = page_limit(q.limit, 50, 500)?;
    let before = time_cursor(q.cursor.as_deref())?;
    // 404 for a workflow that does not exist, rather than an empty page.
    app::db::workflows::get(pool, id, None).await?;
    let items = app::db::workflow_runs::list(pool, id, q.status, limit, before).await?;
    let next_cursor = next_time_cursor(&items, limit, |r| r.created_at);
    Ok(Json(RunPage { items, next_cursor }))
}

/// A run with each node's state, output and decision.
#[utoipa::path(get, path = "/runs/{id}", tag = "runs", params(("id" = RunId, Path)),
    responses((status = 200, description = "The run", body = RunDetail)))]
pub async fn get(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<RunId>,
) -> Result<Json<RunDetail>, ApiError> {
    let mut conn = state.ctx.pool.acquire().await.map_err(AppError::from)?;
    app::db::workflow_runs::get(&mut conn, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, "no such workflow run"))
}

/// Cancels a run and its unfinished nodes.
#[utoipa::path(post, path = "/runs/{id}/cancel", tag = "runs", params(("id" = RunId, Path)),
    responses((status = 200, description = "Cancelled", body = TaskStatus)))]
pub async fn cancel(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiPath(id): ApiPath<RunId>,
) -> Result<Json<TaskStatus>, ApiError> {
    commands::cancel_task(&state.ctx.pool, &me, id).await?;
    Ok(Json(TaskStatus {
        id,
        status: RunStatus::Cancelled,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct RetriedNode {
    pub id: NodeId,
    pub run_id: RunId,
    pub status: NodeStatus,
}

/// Queues a failed or blocked node again (the run resumes).
#[utoipa::path(post, path = "/runs/{id}/nodes/{key}/retry", tag = "runs",
    params(("id" = RunId, Path), ("key" = String, Path, description = "The node's key")),
    responses((status = 200, description = "Queued again", body = RetriedNode)))]
pub async fn retry(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiPath((id, key)): ApiPath<(RunId, String)>,
) -> Result<Json<RetriedNode>, ApiError> {
    let node = cmd::retry_node(&state.ctx.pool, &me, id, &key).await?;
    Ok(Json(RetriedNode {
        id: node,
        run_id: id,
        status: NodeStatus::Queued,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct Decision {
    /// Why, for the run's record.
    #[schema(schema_with = app::api::schema::decision_comment)]
    comment: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Decided {
    pub run_id: RunId,
    pub key: String,
    /// `approved` or `rejected`.
    pub decision: String,
}

async fn decide(
    state: &AppState,
    me: &Actor,
    id: RunId,
    key: String,
    approve: bool,
    body: Decision,
) -> Result<Json<Decided>, ApiError> {
    cmd::decide(
        &state.ctx.pool,
        me,
        id,
        &key,
        approve,
        body.comment.as_deref(),
    )
    .await?;
    Ok(Json(Decided {
        run_id: id,
        key,
        decision: if approve { "approved" } else { "rejected" }.into(),
    }))
}

/// Approves a waiting approval node: it completes and the run goes on. 409 once decided.
#[utoipa::path(post, path = "/runs/{id}/nodes/{key}/approve", tag = "runs",
    params(("id" = RunId, Path), ("key" = String, Path, description = "The approval node's key")),
    request_body = Decision,
    responses((status = 200, description = "Approved", body = Decided)))]
pub async fn approve(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiPath((id, key)): ApiPath<(RunId, String)>,
    ApiJson(body): ApiJson<Decision>,
) -> Result<Json<Decided>, ApiError> {
    decide(&state, &me, id, key, true, body).await
}

/// Rejects a waiting approval node: it fails, what depends on it is blocked and the run
/// fails. 409 once decided.
#[utoipa::path(post, path = "/runs/{id}/nodes/{key}/reject", tag = "runs",
    params(("id" = RunId, Path), ("key" = String, Path, description = "The approval node's key")),
    request_body = Decision,
    responses((status = 200, description = "Rejected", body = Decided)))]
pub async fn reject(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiPath((id, key)): ApiPath<(RunId, String)>,
    ApiJson(body): ApiJson<Decision>,
) -> Result<Json<Decided>, ApiError> {
    decide(&state, &me, id, key, false, body).await
}
