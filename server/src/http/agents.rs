//! `/api/v1/agents`.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath};
use app::api::ErrorKind;
use app::commands::{self, SpawnAgent};
use app::domain::account::User;
use app::domain::agent::{Agent, AgentState};
use app::domain::ids::AgentId;
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
    Extension(me): Extension<User>,
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
    Extension(me): Extension<User>,
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
