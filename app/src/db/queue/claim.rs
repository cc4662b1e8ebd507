//! Claims and heartbeats: a worker takes the nodes assigned to it and keeps their leases.

use super::{ClaimedNode, StartRow};
use crate::domain::ids::{NodeId, WorkerId};
use sqlx::PgConnection;
use uuid::Uuid;

/// A worker takes up to `limit` assigned nodes in one statement and starts them.
pub async fn claim_assigned(
    conn: &mut PgConnection,
    worker: WorkerId,
    limit: i64,
    lease_secs: f64,
) -> Result<Vec<ClaimedNode>, sqlx::Error> {
    // One statement claims; the rest are set-based, so a batch costs the same few round trips
    // as a single node.
    // The lookups by primary key are fenced (`offset 0`) so that no plan, however stale its
    // idea of the table sizes, turns them into a scan of the whole history per claimed node.
    let rows = sqlx::query_as!(
        StartRow,
        r#"with picked as (
               select id from nodes where status = 'assigned'
               order by priority desc, ready_at
               limit $2 for update skip locked),
           claimed as (
               update nodes n
               set status = 'running', worker_id = $1, started_at = now(),
                   lease_expires_at = now() + make_interval(secs => $3)
               from picked where n.id = picked.id
               returning n.id, n.run_id, n.key, n.description, n.agent_id, n.attempt, n.lease_token,
                         n.step),
           e as (
               insert into events (type, severity, subject, agent_id, run_id, node_id, data)
               select 'subtask.started', 'info', 'subtask/' || id, agent_id, run_id, id,
                      jsonb_build_object('attempt', attempt, 'worker_id', $1::uuid)
               from claimed)
           select c.id, c.run_id, c.key, c.description, c.agent_id as "agent_id!", c.attempt,
                  c.lease_token as "lease_token!", a.provider, a.model, a.system_prompt, a.tools, a.mcp_servers,
                  coalesce((select array_agg(coalesce(p.output, '') order by p.position)
                            from node_deps d,
                                 lateral (select output, position from nodes p
                                          where p.id = d.depends_on offset 0) p
                            where d.node_id = c.id), '{}') as "context!",
                  c.step,
                  true as "here!", 0::float8 as "waited!"
           from claimed c, lateral (select provider, model, system_prompt, tools, mcp_servers from agents a
                                    where a.id = c.agent_id offset 0) a"#,
        worker.0,
        limit,
        lease_secs
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(ClaimedNode::from).collect())
}

/// A worker's heartbeat: it is alive, and so are the leases of `running`, the nodes it runs
/// right now. Only those: a node this worker no longer runs (its runner died) must lose its
/// lease and be rescued. Returns the nodes renewed; one missing from it is no longer this
/// worker's to run (cancelled, released) or has just been completed.
pub async fn heartbeat(
    conn: &mut PgConnection,
    worker: WorkerId,
    lease_secs: f64,
    running: &[NodeId],
) -> Result<Vec<NodeId>, sqlx::Error> {
    sqlx::query!(
        "update workers set last_heartbeat = now() where id = $1",
        worker.0
    )
    .execute(&mut *conn)
    .await?;
    if running.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = running.iter().map(|n| n.0).collect();
    let renewed = sqlx::query_scalar!(
        // Rows a report is completing right now are skipped, not waited for: they are done,
        // and waiting while holding others deadlocked against the report, which locks the
        // same two tables.
        r#"with mine as (
               select id from nodes
               where id = any($3) and worker_id = $1 and status = 'running'
               for update skip locked),
           renewed as (
               update nodes n set lease_expires_at = now() + make_interval(secs => $2)
               from mine where n.id = mine.id
               returning n.id, n.agent_id),
           alive as (
               select id from agents where id in (select agent_id from renewed)
               for update skip locked),
           beat as (
               update agents a set last_heartbeat = now() from alive where a.id = alive.id)
           select id as "id!" from renewed"#,
        worker.0,
        lease_secs,
        &ids
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(renewed.into_iter().map(NodeId).collect())
}
