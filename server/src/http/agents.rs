//! `/api/v1/agents`.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use app::api::ErrorKind;
use app::commands::{self, ConfigureAgent, SpawnAgent};
use app::domain::account::Actor;
use app::domain::agent::{Agent, AgentState};
use app::domain::ids::AgentId;
use app::domain::metrics::{AgentInterval, AgentSample, MetricsRange, agent_intervals};
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

/// The whole fleet (one page: fleets are small).
#[derive(Serialize, ToSchema)]
pub struct AgentPage {
    pub items: Vec<Agent>,
    /// Always `null`: the fleet fits in one page.
    pub next_cursor: Option<String>,
}

/// Every agent, terminated ones included.
#[utoipa::path(get, path = "/agents", tag = "agents",
    responses((status = 200, description = "The fleet", body = AgentPage)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<AgentPage>, ApiError> {
    let items = app::db::agents::list(&state.ctx.pool).await?;
    Ok(Json(AgentPage {
        items,
        next_cursor: None,
    }))
}

/// Adds an agent to the fleet; it is idle and takes work at once.
#[utoipa::path(post, path = "/agents", tag = "agents", request_body = SpawnAgent,
    responses((status = 201, description = "Spawned", body = Agent)))]
pub async fn spawn(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiJson(body): ApiJson<SpawnAgent>,
) -> Result<(StatusCode, Json<Agent>), ApiError> {
    let declared = &state.ctx.declared_providers;
    let agent = commands::spawn_agent(&state.ctx.pool, &me, body, declared).await?;
    Ok((StatusCode::CREATED, Json(agent)))
}

#[utoipa::path(get, path = "/agents/{id}", tag = "agents", params(("id" = AgentId, Path)),
    responses((status = 200, description = "The agent", body = Agent)))]
pub async fn get(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<AgentId>,
) -> Result<Json<Agent>, ApiError> {
    app::db::agents::get(&state.ctx.pool, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, "no such agent"))
}

/// Points the agent at another provider or model, or changes its prompt or tools, from its
/// next step on. An agent in `error` (its provider refused its configuration) is idle again.
#[utoipa::path(patch, path = "/agents/{id}", tag = "agents", params(("id" = AgentId, Path)),
    request_body = ConfigureAgent,
    responses((status = 200, description = "Reconfigured", body = Agent)))]
pub async fn configure(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiPath(id): ApiPath<AgentId>,
    ApiJson(body): ApiJson<ConfigureAgent>,
) -> Result<Json<Agent>, ApiError> {
    let declared = &state.ctx.declared_providers;
    let agent = commands::configure_agent(&state.ctx.pool, &me, id, body, declared).await?;
    Ok(Json(agent))
}

/// Stops the agent taking new work; what it is doing finishes.
#[utoipa::path(post, path = "/agents/{id}/pause", tag = "agents", params(("id" = AgentId, Path)),
    responses((status = 200, description = "Paused", body = Agent)))]
pub async fn pause(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiPath(id): ApiPath<AgentId>,
) -> Result<Json<Agent>, ApiError> {
    command(&state, &me, id, AgentState::Paused).await
}

/// Lets a paused (or failed) agent take work again.
#[utoipa::path(post, path = "/agents/{id}/resume", tag = "agents", params(("id" = AgentId, Path)),
    responses((status = 200, description = "Idle again", body = Agent)))]
pub async fn resume(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiPath(id): ApiPath<AgentId>,
) -> Result<Json<Agent>, ApiError> {
    command(&state, &me, id, AgentState::Idle).await
}

/// Retires the agent for good; its current subtask is queued for another.
#[utoipa::path(post, path = "/agents/{id}/terminate", tag = "agents", params(("id" = AgentId, Path)),
    responses((status = 200, description = "Terminated", body = Agent)))]
pub async fn terminate(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiPath(id): ApiPath<AgentId>,
) -> Result<Json<Agent>, ApiError> {
    command(&state, &me, id, AgentState::Terminated).await
}

async fn command(
    state: &AppState,
    me: &Actor,
    id: AgentId,
    to: AgentState,
) -> Result<Json<Agent>, ApiError> {
    Ok(Json(
        commands::agent_command(&state.ctx.pool, me, id, to).await?,
    ))
}

#[derive(serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MetricsQuery {
    /// How far back (default `hour`).
    range: Option<MetricsRange>,
}

/// An agent's counters over a range, and the per-interval figures drawn from them.
#[derive(Serialize, ToSchema)]
pub struct AgentMetrics {
    pub agent_id: AgentId,
    pub range: MetricsRange,
    pub samples: Vec<AgentSample>,
    pub intervals: Vec<AgentInterval>,
}

/// `GET /api/v1/agents/{id}/metrics?range=hour|day|week|month`: the agent's counter samples
/// and the per-interval figures derived from them.
#[utoipa::path(get, path = "/agents/{id}/metrics", tag = "agents",
    params(("id" = AgentId, Path), MetricsQuery),
    responses((status = 200, description = "Samples and intervals", body = AgentMetrics)))]
pub async fn metrics(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<AgentId>,
    ApiQuery(q): ApiQuery<MetricsQuery>,
) -> Result<Json<AgentMetrics>, ApiError> {
    let range = q.range.unwrap_or(MetricsRange::Hour);
    let pool = &state.ctx.pool;
    if app::db::agents::get(pool, id).await?.is_none() {
        return Err(ApiError::new(ErrorKind::NotFound, "no such agent"));
    }
    let since = time::OffsetDateTime::now_utc() - range.duration();
    let samples = app::db::metrics::agent_series(pool, id, since).await?;
    let intervals = agent_intervals(&samples);
    Ok(Json(AgentMetrics {
        agent_id: id,
        range,
        samples,
        intervals,
    }))
}

/// What an agent's model calls came to, its newest calls and its newest transcripts.
#[derive(Serialize, ToSchema)]
pub struct AgentUsage {
    pub agent_id: AgentId,
    /// Every call it made, failed ones included.
    pub totals: app::domain::usage::UsageTotals,
    /// The newest 50 calls, newest first.
    pub calls: Vec<app::domain::usage::CallView>,
    /// The newest 20 attempts' conversations, newest first.
    pub transcripts: Vec<app::domain::usage::TranscriptView>,
    /// Its caps and where it stands, when it has caps.
    pub budget: Option<app::domain::usage::Budget>,
}

/// `GET /api/v1/agents/{id}/usage`: tokens and cost, per call and in total, and transcripts.
#[utoipa::path(get, path = "/agents/{id}/usage", tag = "agents", params(("id" = AgentId, Path)),
    responses((status = 200, description = "Usage and transcripts", body = AgentUsage)))]
pub async fn usage(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<AgentId>,
) -> Result<Json<AgentUsage>, ApiError> {
    let pool = &state.ctx.pool;
    if app::db::agents::get(pool, id).await?.is_none() {
        return Err(ApiError::new(ErrorKind::NotFound, "no such agent"));
    }
    let mut conn = pool.acquire().await.map_err(app::api::AppError::from)?;
    let db = |e: sqlx::Error| ApiError::from(app::api::AppError::from(e));
    Ok(Json(AgentUsage {
        agent_id: id,
        totals: app::db::llm_calls::agent_totals(&mut conn, id)
            .await
            .map_err(db)?,
        calls: app::db::llm_calls::agent_recent(&mut conn, id, 50)
            .await
            .map_err(db)?,
        transcripts: app::db::transcripts::for_agent(&mut conn, id, 20)
            .await
            .map_err(db)?,
        budget: app::db::budgets::get_conn(&mut conn, "agent", id.0)
            .await
            .map_err(db)?,
    }))
}
