//! Agent state as the engine changes it: freed after an attempt, marked unresponsive when its
//! lease is lost, recovered when seen alive. The one place these writes live; the queue and
//! runs call here, never each other for it.

use crate::db::events::{self, NewEvent};
use crate::domain::event::{EventKind, Severity};
use crate::domain::ids::{AgentId, NodeId};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

/// Frees the agent of `node` after a failed attempt: back to idle unless paused meanwhile (a
/// paused agent stays paused), with its counters updated. Returns the agent's state after, if
/// it was still on the node; the failure's event records it.
pub(crate) async fn free_after_failure(
    conn: &mut PgConnection,
    agent: Uuid,
    node: Uuid,
    busy_ms: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"update agents set
               state = case when state = 'working' then 'idle' else state end,
               current_node = null,
               tasks_failed = tasks_failed + 1,
               busy_ms = busy_ms + $3,
               last_heartbeat = now(), updated_at = now()
           where id = $1 and current_node = $2
           returning state"#,
        agent,
        node,
        busy_ms
    )
    .fetch_optional(&mut *conn)
    .await
}

/// Frees `agent` from `node`: back to idle unless it was paused or terminated meanwhile.
/// Returns whether the agent was still on that node.
pub(crate) async fn free_agent(
    conn: &mut PgConnection,
    agent: Uuid,
    node: Uuid,
) -> Result<bool, sqlx::Error> {
    let freed = sqlx::query_scalar!(
        r#"update agents set state = case when state = 'working' then 'idle' else state end,
               current_node = null, updated_at = now()
           where id = $1 and current_node = $2 returning id"#,
        agent,
        node
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(freed.is_some())
}

/// Marks `agent` unresponsive (its lease on `node` expired on `worker`), once per outage.
pub(crate) async fn mark_unresponsive(
    conn: &mut PgConnection,
    agent: AgentId,
    node: NodeId,
    worker: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"update agents set unresponsive_since = coalesce(unresponsive_since, now())
           where id = $1"#,
        agent.0
    )
    .execute(&mut *conn)
    .await?;
    events::append(
        conn,
        NewEvent::new(EventKind::AgentUnresponsive, format!("agent/{agent}"))
            .severity(Severity::Warning)
            .agent(agent)
            .data(json!({ "node_id": node, "worker_id": worker })),
    )
    .await?;
    Ok(())
}

/// Clears the unresponsive mark of agents seen alive since it was set (they started work on a
/// live worker) and records `agent.recovered`. Returns how many recovered. The partial index
/// keeps this probe free when every agent is healthy, so the daemon runs it on every pass.
pub async fn recover_agents(conn: &mut PgConnection) -> Result<usize, sqlx::Error> {
    let back = sqlx::query!(
        r#"with r as (
               select id, unresponsive_since from agents
               where unresponsive_since is not null and last_heartbeat > unresponsive_since
               for update skip locked)
           update agents a set unresponsive_since = null, updated_at = now()
           from r where a.id = r.id
           returning a.id, a.name,
                     extract(epoch from a.last_heartbeat - r.unresponsive_since)::float8
                         as "down_secs!""#
    )
    .fetch_all(&mut *conn)
    .await?;
    for a in &back {
        let agent = AgentId(a.id);
        events::append(
            conn,
            NewEvent::new(EventKind::AgentRecovered, format!("agent/{agent}"))
                .agent(agent)
                .data(json!({ "name": a.name, "unresponsive_secs": a.down_secs })),
        )
        .await?;
    }
    Ok(back.len())
}

/// Puts `agent` in the `error` state with `reason` (its provider refused its configuration),
/// unless it was terminated meanwhile; the daemon gives it nothing until it is resumed.
pub async fn mark_error(
    conn: &mut PgConnection,
    agent: AgentId,
    node: NodeId,
    reason: &str,
) -> Result<(), sqlx::Error> {
    let changed = sqlx::query_scalar!(
        r#"update agents set state = 'error', error = $2, current_node = null, updated_at = now()
           where id = $1 and state <> 'terminated' returning id"#,
        agent.0,
        reason
    )
    .fetch_optional(&mut *conn)
    .await?;
    if changed.is_some() {
        events::append(
            conn,
            NewEvent::new(EventKind::AgentError, format!("agent/{agent}"))
                .severity(Severity::Error)
                .agent(agent)
                .node(node)
                .data(json!({ "reason": reason })),
        )
        .await?;
    }
    Ok(())
}
