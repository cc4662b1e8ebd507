//! `/api/v1/agents`.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use app::api::ErrorKind;
use app::commands::{self, SpawnAgent};
use app::domain::account::Actor;
use app::domain::agent::{Agent, AgentState};
use app::domain::ids::AgentId;
use app::domain::metrics::{MetricsRange, agent_intervals};
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde_json::{Value, json};

pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let items = app::db::agents::list(&state.ctx.pool).await?;
    Ok(Json(json!({ "items": items, "next_cursor": null })))
}

pub async fn spawn(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiJson(body): ApiJson<SpawnAgent>,
) -> Result<(StatusCode, Json<Agent>), ApiError> {
    let agent = commands::spawn_agent(&state.ctx.pool, &me, body).await?;
    Ok((StatusCode::CREATED, Json(agent)))
}

pub async fn get(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<AgentId>,
) -> Result<Json<Agent>, ApiError> {
    app::db::agents::get(&state.ctx.pool, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, "no such agent"))
}

pub async fn command(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiPath((id, verb)): ApiPath<(AgentId, String)>,
) -> Result<Json<Agent>, ApiError> {
    let to = match verb.as_str() {
        "pause" => AgentState::Paused,
        "resume" => AgentState::Idle,
        "terminate" => AgentState::Terminated,
        _ => return Err(ApiError::new(ErrorKind::NotFound, "no such API route")),
    };
    Ok(Json(
        commands::agent_command(&state.ctx.pool, &me, id, to).await?,
    ))
}

#[derive(serde::Deserialize)]
pub struct MetricsQuery {
    range: Option<String>,
}

/// `GET /api/v1/agents/{id}/metrics?range=hour|day|week|month`: the agent's counter samples
/// and the per-interval figures derived from them.
pub async fn metrics(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<AgentId>,
    ApiQuery(q): ApiQuery<MetricsQuery>,
) -> Result<Json<Value>, ApiError> {
    let range: MetricsRange = q
        .range
        .as_deref()
        .unwrap_or("hour")
        .parse()
        .map_err(|e: String| ApiError::new(ErrorKind::Invalid, e))?;
    let pool = &state.ctx.pool;
    if app::db::agents::get(pool, id).await?.is_none() {
        return Err(ApiError::new(ErrorKind::NotFound, "no such agent"));
    }
    let since = time::OffsetDateTime::now_utc() - range.duration();
    let samples = app::db::metrics::agent_series(pool, id, since).await?;
    let intervals = agent_intervals(&samples);
    Ok(Json(json!({
        "agent_id": id,
        "range": range,
        "samples": samples,
        "intervals": intervals,
    })))
}
