//! `GET /api/v1/events`: the stored event history, paged in release order: `after` (or
//! `cursor`) is the `seq` of the last event seen, and the next page holds what was released
//! after it, late commits included, nothing twice.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiQuery, page_limit};
use app::api::ErrorKind;
use app::db::events::{EventQuery, list as list_events, position_after};
use app::domain::event::{Event, EventFilter, EventKind, Severity};
use app::domain::ids::{AgentId, RunId};
use app::domain::text::pattern;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::openapi::Object;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::{IntoParams, ToSchema};

/// The `type` filter: an event type or a family (the part before the dot), or blank for all.
pub fn type_filter() -> Object {
    let mut words: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
    let families: Vec<&str> = words.iter().filter_map(|w| w.split('.').next()).collect();
    words.extend(families);
    words.sort_unstable();
    words.dedup();
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern::one_of(&words, true)))
        .description(Some(
            "An event type such as `task.submitted`, or a family such as `task`.",
        ))
        .build()
}

/// The `severity` filter: this severity and above.
pub fn severity_filter() -> Object {
    let words: Vec<&str> = Severity::ALL.iter().map(|s| s.as_str()).collect();
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern::one_of(&words, true)))
        .description(Some("This severity and above."))
        .build()
}

/// The `actor` filter: a username, or blank for everyone.
pub fn actor_filter() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern::trimmed(1, 64, pattern::CONTROL, true)))
        .description(Some("Only what this user (a username) did."))
        .build()
}

/// The filters the history and the live stream share.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Query {
    /// Only events released after this `seq` (default 0: from the start).
    after: Option<i64>,
    /// The same as `after`: the previous page's `next_cursor`.
    cursor: Option<i64>,
    #[serde(rename = "type")]
    #[param(rename = "type", schema_with = type_filter)]
    kind: Option<String>,
    agent_id: Option<AgentId>,
    /// A task is one kind of run; `run_id` names the same filter for workflow runs.
    #[serde(alias = "run_id")]
    task_id: Option<RunId>,
    #[param(schema_with = severity_filter)]
    severity: Option<String>,
    #[param(schema_with = actor_filter)]
    actor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// A page of events in release order.
#[derive(Serialize, ToSchema)]
pub struct EventPage {
    pub items: Vec<Event>,
    /// The `seq` to pass as `after` for the next page; `null` on the last.
    pub next_cursor: Option<i64>,
}

/// The event history, oldest first, in the order the live stream delivers it.
#[utoipa::path(get, path = "/events", tag = "events", params(Query),
    responses((status = 200, description = "A page of events", body = EventPage)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<Query>,
) -> Result<Json<EventPage>, ApiError> {
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
    Ok(Json(EventPage {
        items,
        next_cursor: next,
    }))
}
