//! `/api/v1/tasks` and `/api/v1/subtasks`.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery, next_time_cursor, page_limit, time_cursor};
use app::api::ErrorKind;
use app::commands;
use app::domain::account::Actor;
use app::domain::ids::{NodeId, RunId};
use app::domain::run::{NodeStatus, RunStatus, TaskDetail, TaskSummary};
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, ToSchema)]
pub struct Submit {
    #[schema(schema_with = app::api::schema::task_description)]
    description: String,
    /// 0 (lowest) to 10; default 5.
    #[schema(minimum = 0, maximum = 10)]
    #[serde(default, deserialize_with = "super::extract::integral")]
    priority: Option<i64>,
    /// Caps on the task's model calls (planning and every subtask's attempts).
    #[serde(default, deserialize_with = "app::domain::number::object")]
    budget: commands::Caps,
}

/// A task or subtask and the status it now has.
#[derive(Serialize, ToSchema)]
pub struct TaskStatus {
    pub id: RunId,
    pub status: RunStatus,
}

/// Submits a task; the planner turns it into a DAG of subtasks.
#[utoipa::path(post, path = "/tasks", tag = "tasks", request_body = Submit,
    responses((status = 201, description = "Accepted, not yet planned", body = TaskStatus)))]
pub async fn submit(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiJson(body): ApiJson<Submit>,
) -> Result<(StatusCode, Json<TaskStatus>), ApiError> {
    let id = commands::submit_task(
        &state.ctx.pool,
        &me,
        &body.description,
        body.priority,
        body.budget,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(TaskStatus {
            id,
            status: RunStatus::Pending,
        }),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only tasks in this status.
    status: Option<RunStatus>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(format = DateTime)]
    cursor: Option<String>,
}

/// A page of tasks, newest first.
#[derive(Serialize, ToSchema)]
pub struct TaskPage {
    pub items: Vec<TaskSummary>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// Lists tasks, newest first.
#[utoipa::path(get, path = "/tasks", tag = "tasks", params(ListQuery),
    responses((status = 200, description = "A page of tasks", body = TaskPage)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<TaskPage>, ApiError> {
    let status = q.status;
    let limit = page_limit(q.limit, 50, 500)?;
    let before = time_cursor(q.cursor.as_deref())?;
    let items = app::db::runs::list(&state.ctx.pool, status, limit, before).await?;
    let next = next_time_cursor(&items, limit, |t| t.created_at);
    Ok(Json(TaskPage {
        items,
        next_cursor: next,
    }))
}

/// A task with its subtasks.
#[utoipa::path(get, path = "/tasks/{id}", tag = "tasks", params(("id" = RunId, Path)),
    responses((status = 200, description = "The task", body = TaskDetail)))]
pub async fn get(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<RunId>,
) -> Result<Json<TaskDetail>, ApiError> {
    let mut conn = state
        .ctx
        .pool
        .acquire()
        .await
        .map_err(app::api::AppError::from)?;
    app::db::runs::get(&mut conn, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, "no such task"))
}

/// Cancels a task and its unfinished subtasks.
#[utoipa::path(post, path = "/tasks/{id}/cancel", tag = "tasks", params(("id" = RunId, Path)),
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
pub struct RetriedSubtask {
    pub id: NodeId,
    pub task_id: RunId,
    pub status: NodeStatus,
}

/// Queues a failed or blocked subtask again (its task resumes).
#[utoipa::path(post, path = "/subtasks/{id}/retry", tag = "tasks", params(("id" = NodeId, Path)),
    responses((status = 200, description = "Queued again", body = RetriedSubtask)))]
pub async fn retry_subtask(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiPath(id): ApiPath<NodeId>,
) -> Result<Json<RetriedSubtask>, ApiError> {
    let task_id = commands::retry_subtask(&state.ctx.pool, &me, id).await?;
    Ok(Json(RetriedSubtask {
        id,
        task_id,
        status: NodeStatus::Queued,
    }))
}

/// Every attempt's conversation with its model.
#[derive(Serialize, ToSchema)]
pub struct TaskTranscripts {
    pub task_id: RunId,
    pub items: Vec<app::domain::usage::TranscriptView>,
}

/// The transcripts of a task's attempts (messages, tool calls and results, whole), by subtask
/// and attempt.
#[utoipa::path(get, path = "/tasks/{id}/transcripts", tag = "tasks", params(("id" = RunId, Path)),
    responses((status = 200, description = "The transcripts", body = TaskTranscripts)))]
pub async fn transcripts(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<RunId>,
) -> Result<Json<TaskTranscripts>, ApiError> {
    let mut conn = state
        .ctx
        .pool
        .acquire()
        .await
        .map_err(app::api::AppError::from)?;
    if app::db::runs::get(&mut conn, id).await?.is_none() {
        return Err(ApiError::new(ErrorKind::NotFound, "no such task"));
    }
    let items = app::db::transcripts::for_run(&mut conn, id)
        .await
        .map_err(app::api::AppError::from)?;
    Ok(Json(TaskTranscripts { task_id: id, items }))
}
