//! `/api/v1/tasks` and `/api/v1/subtasks`.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery, page_limit};
use app::api::ErrorKind;
use app::commands;
use app::domain::account::Actor;
use app::domain::ids::{NodeId, RunId};
use app::domain::run::{RunStatus, TaskDetail};
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
pub struct Submit {
    description: String,
    priority: Option<i64>,
}

pub async fn submit(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiJson(body): ApiJson<Submit>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = commands::submit_task(&state.ctx.pool, &me, &body.description, body.priority).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "status": RunStatus::Pending })),
    ))
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = q
        .status
        .map(|s| s.parse::<RunStatus>())
        .transpose()
        .map_err(|e| ApiError::new(ErrorKind::Invalid, e))?;
    let limit = page_limit(q.limit, 50, 500)?;
    let before = q
        .cursor
        .map(|c| time::OffsetDateTime::parse(&c, &time::format_description::well_known::Rfc3339))
        .transpose()
        .map_err(|_| ApiError::new(ErrorKind::Invalid, "cursor is not one this API returned"))?;
    let items = app::db::runs::list(&state.ctx.pool, status, limit, before).await?;
    let next = (items.len() == usize::try_from(limit).unwrap_or(usize::MAX))
        .then(|| items.last())
        .flatten()
        .and_then(|t| {
            t.created_at
                .format(&time::format_description::well_known::Rfc3339)
                .ok()
        });
    Ok(Json(json!({ "items": items, "next_cursor": next })))
}

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

pub async fn cancel(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiPath(id): ApiPath<RunId>,
) -> Result<Json<Value>, ApiError> {
    commands::cancel_task(&state.ctx.pool, &me, id).await?;
    Ok(Json(json!({ "id": id, "status": RunStatus::Cancelled })))
}

pub async fn retry_subtask(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiPath(id): ApiPath<NodeId>,
) -> Result<Json<Value>, ApiError> {
    let task = commands::retry_subtask(&state.ctx.pool, &me, id).await?;
    Ok(Json(
        json!({ "id": id, "task_id": task, "status": "queued" }),
    ))
}
