//! Leases and rescue: nodes whose claim is void go back to the queue, and work whose worker
//! went silent is taken back.

use super::report::block_downstream;
use crate::db::agent_state;
use crate::db::events::{self, NewEvent};
use crate::domain::event::{EventKind, Severity};
use crate::domain::ids::{AgentId, NodeId, RunId};
use crate::domain::run::RetryPolicy;
use serde_json::json;
use sqlx::PgConnection;

/// How the attempt a release voids is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Voided {
    /// Someone decided it (agent terminated, worker shut down).
    Cancelled,
    /// Its lease expired: the worker or agent went silent.
    Lost,
}

/// What releasing a node did.
#[derive(Debug, Clone, Copy)]
pub struct ReleasedNode {
    /// The agent it freed, if that agent was still on the node.
    pub freed: Option<AgentId>,
    /// Failed attempts since the last manual retry, a lost one included.
    pub failures: i32,
    pub run: RunId,
}

/// Puts a node that was assigned or running back in the queue (its agent terminated, its worker
/// shut down, or its lease lost) and tells whichever process runs it to stop. The current claim
/// is void from here on. A lost attempt counts as a failure: work that kills its worker every
/// time is not retried forever. None if the node was not assigned or running.
pub async fn release_node(
    conn: &mut PgConnection,
    node: NodeId,
    reason: &str,
    voided: Voided,
) -> Result<Option<ReleasedNode>, sqlx::Error> {
    // The attempt is recorded from the row as it was before the update.
    let Some(r) = sqlx::query!(
        r#"with old as (
               select id, run_id, status, attempt, agent_id, worker_id, started_at from nodes
               -- Found by key: the status test is hidden from the planner (see complete_many).
               where id = $1 and (status in ('assigned', 'running')) is true
               for update),
           upd as (
               update nodes n set status = 'queued', agent_id = null, lease_token = null,
                   lease_expires_at = null, worker_id = null, ready_at = now(),
                   failures = n.failures + case when $2 = 'lost' then 1 else 0 end
               from old where n.id = old.id
               returning n.failures),
           att as (
               insert into attempts (node_id, attempt, agent_id, worker_id, outcome, error,
                                     started_at, finished_at)
               select id, attempt, agent_id, worker_id, $2, $3,
                      case when status = 'running' then started_at end, now()
               from old)
           select run_id, attempt, agent_id, worker_id, (select failures from upd) as "failures!"
           from old"#,
        node.0,
        match voided {
            Voided::Cancelled => "cancelled",
            Voided::Lost => "lost",
        },
        reason
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    events::append(
        conn,
        NewEvent::new(EventKind::SubtaskRequeued, format!("subtask/{node}"))
            .severity(Severity::Warning)
            .node(node)
            .run(RunId(r.run_id))
            .data(json!({ "attempt": r.attempt, "reason": reason, "worker_id": r.worker_id })),
    )
    .await?;
    events::request_stop(&mut *conn, events::Stop::Node(node)).await?;
    let mut freed = None;
    if let Some(agent) = r.agent_id
        && agent_state::free_agent(conn, agent, node.0).await?
    {
        freed = Some(AgentId(agent));
    }
    Ok(Some(ReleasedNode {
        freed,
        failures: r.failures,
        run: RunId(r.run_id),
    }))
}

/// Fails a queued node whose attempts are used up (lost ones), blocking what depends on it
/// and failing its run.
async fn give_up(
    conn: &mut PgConnection,
    node: NodeId,
    run: RunId,
    error: &str,
) -> Result<(), sqlx::Error> {
    let key = sqlx::query_scalar!(
        r#"update nodes set status = 'failed', error = $2, finished_at = now()
           where id = $1 and status = 'queued' returning key"#,
        node.0,
        error
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(key) = key else {
        return Ok(());
    };
    events::append(
        conn,
        NewEvent::new(EventKind::SubtaskFailed, format!("subtask/{node}"))
            .severity(Severity::Error)
            .node(node)
            .run(run)
            .data(json!({ "error": error })),
    )
    .await?;
    let blocked = block_downstream(conn, node).await?;
    crate::db::runs::fail_run(
        conn,
        run,
        &format!("subtask {key} failed: {error}"),
        blocked,
    )
    .await?;
    Ok(())
}

/// Re-queues work whose lease expired (its worker or agent went silent) and marks the agents
/// unresponsive in the event log; a node lost as often as the policy allows attempts fails.
/// Returns how many nodes were rescued.
pub async fn rescue_expired(
    conn: &mut PgConnection,
    policy: &RetryPolicy,
) -> Result<usize, sqlx::Error> {
    let lost = sqlx::query!(
        r#"select id, worker_id from nodes
           where status in ('assigned', 'running') and lease_expires_at < now()
           for update skip locked"#
    )
    .fetch_all(&mut *conn)
    .await?;
    for n in &lost {
        let Some(released) =
            release_node(conn, NodeId(n.id), "lease expired", Voided::Lost).await?
        else {
            continue;
        };
        if policy.backoff_after(released.failures).is_none() {
            let error = format!(
                "lost {} times (its worker stopped answering while running it)",
                released.failures
            );
            give_up(conn, NodeId(n.id), released.run, &error).await?;
        }
        if let Some(agent) = released.freed {
            agent_state::mark_unresponsive(conn, agent, NodeId(n.id), n.worker_id).await?;
        }
    }
    Ok(lost.len())
}
