//! `GET /api/v1/events`: the stored event history, paged in release order: `after` (or
//! `cursor`) is the `seq` of the last event seen, and the next page holds what was released
//! after it, late commits included, nothing twice.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiQuery, page_limit};
use app::api::ErrorKind;
use app::db::events::{EventQuery, list as list_events, position_after};
use app::domain::event::EventFilter;
use app::domain::ids::{AgentId, RunId};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
pub struct Query {
    after: Option<i64>,
    cursor: Option<i64>,
    #[serde(rename = "type")]
    kind: Option<String>,
    agent_id: Option<AgentId>,
    /// A task is one kind of run; `run_id` names the same filter for workflow runs.
    #[serde(alias = "run_id")]
    task_id: Option<RunId>,
    severity: Option<String>,
    /// Only what this user (a username) did.
    actor: Option<String>,
    limit: Option<i64>,
}

pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<Query>,
) -> Result<Json<Value>, ApiError> {
    let limit = page_limit(q.limit, 100, 1000)?;
    let filter = EventFilter::parse(q.kind, q.agent_id, q.task_id, q.severity)
        .and_then(|f| f.with_actor(q.actor))
        .map_err(|e| ApiError::new(ErrorKind::Invalid, e))?;
    let after = q.cursor.or(q.after).unwrap_or(0).max(0);
    // Only as far as the hub has released, so the pager and the live streams agree.
    let query = EventQuery {
        after: position_after(&state.ctx.pool, after).await?,
        upto: state.hub.as_ref().map(|h| h.released()),
        filter,
        limit,
    };
    let items = list_events(&state.ctx.pool, &query).await?;
    let next = (items.len() == usize::try_from(limit).unwrap_or(usize::MAX))
        .then(|| items.last().map(|e| e.seq))
        .flatten();
    Ok(Json(json!({ "items": items, "next_cursor": next })))
}
