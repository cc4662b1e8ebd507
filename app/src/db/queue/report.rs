//! Reports of finished attempts: completions in batches, failures with the retry policy.

use super::ClaimedNode;
use crate::db::agent_state;
use crate::db::events::{self, NewEvent};
use crate::domain::delegation::ReadyNode;
use crate::domain::event::{EventKind, Severity};
use crate::domain::ids::{AgentId, NodeId};
use crate::domain::run::RetryPolicy;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

/// Why a completion or failure report was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("stale attempt: the node was re-queued, cancelled or claimed again")]
    Stale,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// A finished attempt, waiting to be recorded.
#[derive(Debug, Clone)]
pub struct Success {
    pub node: ClaimedNode,
    pub output: String,
    pub tokens: i64,
    pub busy_ms: i64,
}

/// Dependents that completions made ready: locked by the caller's transaction but not yet
/// written as ready. Pass them to [`assign_ready`], which writes each once — started, or
/// released to wait for an agent — or to [`release`]. Dropping them would leave them waiting
/// for prerequisites that are done, so the type must be used.
#[must_use = "released dependents must be written by assign_ready or release"]
#[derive(Debug, Default)]
pub struct Released(pub(super) Vec<ReadyNode>);

impl Released {
    pub fn none() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn ids(&self) -> Vec<Uuid> {
        self.0.iter().map(|n| n.id.0).collect()
    }
}

/// What [`complete_many`] recorded.
#[derive(Debug)]
pub struct Completion {
    /// Attempts whose claim was no longer current (re-queued, cancelled, claimed again).
    pub stale: Vec<NodeId>,
    pub released: Released,
}

/// Writes dependents as ready (no prerequisite left) without assigning them.
pub async fn release(conn: &mut PgConnection, released: Released) -> Result<(), sqlx::Error> {
    if released.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "update nodes set pending_deps = 0, ready_at = now() where id = any($1)",
        &released.ids()
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records many successful attempts in a fixed number of statements. Attempts whose claim is
/// no longer current (re-queued, cancelled, claimed again) are skipped and returned.
/// Dependents left with no prerequisite are returned locked but unwritten ([`Released`]): the
/// caller's assignment writes each once (started, assigned or released), never twice.
/// Like [`assign_ready`], it leaves the wake-up to the caller, after the commit.
pub async fn complete_many(
    conn: &mut PgConnection,
    done: &[Success],
) -> Result<Completion, sqlx::Error> {
    if done.is_empty() {
        return Ok(Completion {
            stale: Vec::new(),
            released: Released::none(),
        });
    }
    // In id order, so rows are locked in the order every multi-row writer uses (a run's
    // cancellation, another batch): no two of them wait on each other in a cycle.
    let mut done: Vec<&Success> = done.iter().collect();
    done.sort_by_key(|d| d.node.id.0);
    let ids: Vec<Uuid> = done.iter().map(|d| d.node.id.0).collect();
    let attempts: Vec<i32> = done.iter().map(|d| d.node.attempt).collect();
    let tokens_: Vec<Uuid> = done.iter().map(|d| d.node.lease_token).collect();
    let outputs: Vec<String> = done.iter().map(|d| d.output.clone()).collect();
    let tokens: Vec<i64> = done.iter().map(|d| d.tokens).collect();
    let busy: Vec<i64> = done.iter().map(|d| d.busy_ms).collect();
    // One statement: the node, its attempt, its dependents' counts, the events and its agent,
    // as one round trip however many outcomes the batch holds.
    let applied = sqlx::query!(
        r#"with t as (
               select * from unnest($1::uuid[], $2::int[], $3::uuid[], $4::text[], $5::int8[],
                                    $6::int8[])
                   as t(id, attempt, token, output, tokens, busy)),
           done as (
               update nodes n set status = 'completed', output = t.output,
                   tokens = n.tokens + t.tokens, error = null, finished_at = now(),
                   lease_token = null, lease_expires_at = null
               from t
               -- The status test is kept out of the planner's sight on purpose: spelled
               -- plainly, it matches the partial index of leased nodes, whose dead entries
               -- (one per finished node until vacuum) a bitmap scan reads in full, where the
               -- primary key finds each row directly.
               where n.id = t.id and n.attempt = t.attempt and n.lease_token = t.token
                 and (n.status = 'running') is true
               returning n.id, n.run_id, n.agent_id, n.attempt, n.worker_id, n.started_at,
                         t.tokens, t.busy),
           att as (
               insert into attempts (node_id, attempt, agent_id, worker_id, outcome,
                                     started_at, finished_at)
               select id, attempt, agent_id, worker_id, 'completed', started_at, now()
               from done),
           -- Each dependent loses as many pending prerequisites as completed in this batch.
           -- Dependents are locked in id order first: reports are recorded by several
           -- transactions at once, and two locking shared dependents in different orders
           -- would deadlock.
           -- (The lookup by key is fenced, and its status test hidden from the planner as in
           -- `done`: otherwise it may walk the partial index of open nodes, dead entries and
           -- all, once per dependent — 34 ms for 48 dependents once the history had grown.)
           -- A dependent left with none is not written here but returned, still locked, for
           -- the caller's assignment to write once.
           dependents as materialized (
               select n.id, d.cnt, n.pending_deps <= d.cnt as ready, n.required_capabilities,
                      n.priority, n.reserved_for
               from (select node_id, count(*)::int as cnt from node_deps
                     where depends_on in (select id from done)
                     group by node_id order by node_id) d,
                    lateral (select id, pending_deps, required_capabilities, priority,
                                    reserved_for
                             from nodes n
                             where n.id = d.node_id and (n.status = 'queued') is true
                             offset 0 for update) n),
           deps as (
               update nodes n set pending_deps = n.pending_deps - d.cnt
               from dependents d
               where n.id = d.id and not d.ready),
           freed as (
               update agents g set
                   state = case when g.state = 'working' then 'idle' else g.state end,
                   current_node = null,
                   tasks_completed = g.tasks_completed + 1,
                   tokens_used = g.tokens_used + done.tokens,
                   busy_ms = g.busy_ms + done.busy,
                   last_heartbeat = now(), updated_at = now()
               from done
               where g.id = done.agent_id and g.current_node = done.id
               returning g.id, g.state),
           -- One lookup map, built once: a join of the two CTEs is planned as a nested loop
           -- (their sizes are unknown to the planner), quadratic in the batch.
           agent as materialized (
               select coalesce(jsonb_object_agg(id, state), '{}') as m from freed),
           -- The event also records the agent's change back to idle (or that it stays
           -- paused), as `subtask.started` recorded its change to working.
           ev as (
               insert into events (type, severity, subject, agent_id, run_id, node_id, data)
               select 'subtask.completed', 'info', 'subtask/' || done.id, done.agent_id,
                      done.run_id, done.id,
                      jsonb_build_object('attempt', done.attempt, 'tokens', done.tokens,
                                         'agent_state', agent.m -> done.agent_id::text)
               from done cross join agent
               order by done.id)
           select done.id as "id!", false as "released!",
                  null::text[] as required_capabilities, null::int2 as priority,
                  null::uuid as reserved_for
           from done
           union all
           select id, true, required_capabilities, priority, reserved_for
           from dependents where ready"#,
        &ids,
        &attempts,
        &tokens_,
        &outputs,
        &tokens,
        &busy
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut ok = Vec::with_capacity(applied.len());
    let mut released = Vec::new();
    for r in applied {
        if !r.released {
            ok.push(r.id);
            continue;
        }
        released.push(ReadyNode {
            id: NodeId(r.id),
            required_capabilities: r.required_capabilities.unwrap_or_default(),
            priority: r.priority.unwrap_or_default(),
            // Ready from now: after every node that was ready before, within a priority.
            ready_at_ms: i64::MAX,
            reserved_for: r.reserved_for.map(AgentId),
        });
    }
    let stale: Vec<NodeId> = ids
        .iter()
        .filter(|id| !ok.contains(id))
        .map(|id| NodeId(*id))
        .collect();
    Ok(Completion {
        stale,
        released: Released(released),
    })
}

/// Records a failed attempt: re-queued after a backoff while the policy allows, otherwise the
/// node fails, everything downstream is blocked, and the run fails.
pub async fn fail(
    conn: &mut PgConnection,
    node: &ClaimedNode,
    error: &str,
    policy: &RetryPolicy,
    busy_ms: i64,
) -> Result<(), ReportError> {
    let failures = sqlx::query_scalar!(
        r#"with f as (
               update nodes set failures = failures + 1, error = $4
               -- Found by key: the status test is hidden from the planner (see complete_many).
               where id = $1 and attempt = $2 and lease_token = $3 and (status = 'running') is true
               returning id, attempt, agent_id, worker_id, started_at, failures),
           att as (
               insert into attempts (node_id, attempt, agent_id, worker_id, outcome, error,
                                     started_at, finished_at)
               select id, attempt, agent_id, worker_id, 'failed', $4, started_at, now() from f)
           select failures as "failures!" from f"#,
        node.id.0,
        node.attempt,
        node.lease_token,
        error
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(ReportError::Stale)?;
    let agent_state =
        agent_state::free_after_failure(conn, node.agent_id.0, node.id.0, busy_ms).await?;
    let subject = format!("subtask/{}", node.id);
    match policy.backoff_after(failures) {
        Some(ms) => {
            sqlx::query!(
                r#"update nodes set status = 'queued', agent_id = null, lease_token = null,
                       lease_expires_at = null, worker_id = null, ready_at = now(),
                       not_before = now() + make_interval(secs => $2::bigint::float8 / 1000)
                   where id = $1"#,
                node.id.0,
                ms
            )
            .execute(&mut *conn)
            .await?;
            events::append(
                conn,
                NewEvent::new(EventKind::SubtaskRetrying, subject)
                    .severity(Severity::Warning)
                    .node(node.id)
                    .run(node.run_id)
                    .agent(node.agent_id)
                    .data(
                        json!({ "attempt": node.attempt, "error": error, "backoff_ms": ms,
                                  "agent_state": agent_state }),
                    ),
            )
            .await?;
        }
        None => {
            sqlx::query!(
                r#"update nodes set status = 'failed', finished_at = now(), lease_token = null,
                       lease_expires_at = null
                   where id = $1"#,
                node.id.0
            )
            .execute(&mut *conn)
            .await?;
            events::append(
                conn,
                NewEvent::new(EventKind::SubtaskFailed, subject)
                    .severity(Severity::Error)
                    .node(node.id)
                    .run(node.run_id)
                    .agent(node.agent_id)
                    .data(json!({ "attempt": node.attempt, "error": error,
                                  "agent_state": agent_state })),
            )
            .await?;
            let blocked = block_downstream(conn, node.id).await?;
            crate::db::runs::fail_run(
                conn,
                node.run_id,
                &format!("subtask {} failed: {error}", node.key),
                blocked,
            )
            .await?;
        }
    }
    Ok(())
}

/// Marks every not-yet-final node downstream of `node` as blocked; returns how many.
pub(super) async fn block_downstream(
    conn: &mut PgConnection,
    node: NodeId,
) -> Result<i64, sqlx::Error> {
    let blocked = sqlx::query_scalar!(
        r#"with recursive down(id) as (
               select node_id from node_deps where depends_on = $1
               union
               select d.node_id from node_deps d join down on d.depends_on = down.id)
           update nodes set status = 'blocked'
           where id in (select id from down) and status = 'queued'
           returning id"#,
        node.0
    )
    .fetch_all(&mut *conn)
    .await?;
    for id in &blocked {
        events::append(
            conn,
            NewEvent::new(EventKind::SubtaskBlocked, format!("subtask/{id}"))
                .severity(Severity::Warning)
                .node(NodeId(*id))
                .data(json!({ "because_of": node.0 })),
        )
        .await?;
    }
    Ok(i64::try_from(blocked.len()).unwrap_or(i64::MAX))
}
