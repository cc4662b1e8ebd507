//! The work queue over `nodes`: assignment (the daemon), claims (workers), completion and
//! failure (fenced by attempt and lease token), and rescue of expired leases. All lease time is
//! the database's `now()`, so clocks of engine machines never matter.

use super::events::{self, NewEvent};
use crate::domain::delegation::{self, IdleAgent, ReadyNode};
use crate::domain::event::{EventKind, Severity};
use crate::domain::ids::{AgentId, NodeId, RunId, WorkerId};
use crate::domain::run::RetryPolicy;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

/// A node handed to this worker to execute, with what it needs.
#[derive(Debug, Clone)]
pub struct ClaimedNode {
    pub id: NodeId,
    pub run_id: RunId,
    pub key: String,
    pub description: String,
    pub agent_id: AgentId,
    pub attempt: i32,
    pub lease_token: Uuid,
    pub provider: String,
    pub model: String,
    pub system_prompt: String,
    /// Outputs of the node's prerequisites, in plan order.
    pub context: Vec<String>,
}

/// Why a completion or failure report was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("stale attempt: the node was re-queued, cancelled or claimed again")]
    Stale,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// What an assignment pass did.
#[derive(Debug, Default)]
pub struct Assigned {
    /// Per assignment, how long the node had waited since it became ready (seconds).
    pub waited: Vec<f64>,
    /// Nodes started straight away for the caller's worker (see [`assign_ready`]).
    pub started: Vec<ClaimedNode>,
}

/// Whether a daemon pass could do anything: an idle agent and a ready node, or a run whose
/// nodes are all completed among `among` (see [`super::runs::finish_completed`]).
/// Reads outside any transaction; under load every agent is busy, and otherwise the
/// transactions that made nodes ready have mostly assigned them already (a completion assigns
/// its dependents, a submission its first nodes), so most passes end here instead of competing
/// for the CPU with the work they would find done.
pub async fn daemon_has_work(db: &sqlx::PgPool, among: &[Uuid]) -> Result<bool, sqlx::Error> {
    let assignable = sqlx::query_scalar!(
        r#"select exists (select 1 from agents where state = 'idle' and current_node is null)
                  and exists (select 1 from nodes
                              where status = 'queued' and pending_deps = 0
                                and not_before <= now())
               as "work!""#
    )
    .fetch_one(db)
    .await?;
    // Two statements rather than one with the runs as a parameter: most passes have none to
    // check, a plan for an empty list is trivially cheap, and Postgres then plans the
    // statement anew on every call (0.4 ms) instead of reusing its generic plan.
    if assignable || among.is_empty() {
        return Ok(assignable);
    }
    sqlx::query_scalar!(
        r#"select exists (select 1 from runs r
                          where r.id = any($1) and r.status = 'in_progress'
                            and exists (select 1 from nodes n where n.run_id = r.id)
                            and not exists (select 1 from nodes n
                                            where n.run_id = r.id and n.status <> 'completed'))
               as "finishable!""#,
        among
    )
    .fetch_one(db)
    .await
}

/// Agents' capabilities, read once per agent: they never change after the agent is spawned,
/// and every assignment pass (one per completion batch, on the path to the dependents' start)
/// otherwise read an array of strings for each idle agent of the fleet. (Nothing updates
/// `agents.capabilities`; an edit of them would have to go through this cache.)
#[derive(Debug, Default)]
pub struct AgentCapabilities(std::sync::Mutex<std::collections::HashMap<Uuid, Vec<String>>>);

impl AgentCapabilities {
    /// The idle agents `ids` with their capabilities, reading those not seen before.
    async fn idle_agents(
        &self,
        conn: &mut PgConnection,
        ids: &[Uuid],
    ) -> Result<Vec<IdleAgent>, sqlx::Error> {
        let missing: Vec<Uuid> = {
            let known = self.0.lock().unwrap_or_else(|e| e.into_inner());
            ids.iter()
                .filter(|id| !known.contains_key(id))
                .copied()
                .collect()
        };
        if !missing.is_empty() {
            let rows = sqlx::query!(
                "select id, capabilities from agents where id = any($1)",
                &missing
            )
            .fetch_all(&mut *conn)
            .await?;
            let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
            for r in rows {
                known.insert(r.id, r.capabilities);
            }
        }
        let known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Ok(ids
            .iter()
            .filter_map(|id| {
                known.get(id).map(|caps| IdleAgent {
                    id: AgentId(*id),
                    capabilities: caps.clone(),
                })
            })
            .collect())
    }
}

/// A worker that starts what an assignment pass pairs, as far as it has room.
pub struct RunHere<'a> {
    pub worker: WorkerId,
    /// Called once with the number of pairs; returns how many of them the worker takes (its
    /// free slots, reserved). Reserving only once the pairs are known keeps concurrent passes
    /// from holding each other's slots.
    pub reserve: &'a mut (dyn FnMut(usize) -> usize + Send),
}

/// The daemon's pass: pairs ready nodes with idle capable agents (the pure policy decides) and
/// records the assignments. With `run_here` (a worker and its free slots), the first pairs are
/// started for that worker in the same statement (queued → running, one event), sparing the
/// separate claim on the path from a dependency to its dependent.
///
/// It sends no wake-up: a NOTIFY makes its transaction's commit take a database-wide lock
/// until the commit is flushed, serialising every transaction that sends one. The engine wakes
/// other processes after the commit instead, coalesced, from a transaction of its own.
///
/// `released` (from [`complete_many`] in the same transaction) join the ready nodes; each is
/// written once here: started, assigned, or released to wait.
pub async fn assign_ready(
    conn: &mut PgConnection,
    batch: i64,
    lease_secs: f64,
    run_here: Option<RunHere<'_>>,
    released: Released,
    capabilities: &AgentCapabilities,
) -> Result<Assigned, sqlx::Error> {
    // Idle agents first: under load there are none, and the pass ends after one read of a
    // small table. Candidates (agents and nodes) are read without locks; only the pairs are
    // locked, in the statement below, and a pair whose agent or node another assigner took
    // meanwhile is skipped (the other stays for the next pass). Locking every candidate on every
    // pass cost more than the assignments themselves.
    let agents =
        sqlx::query_scalar!("select id from agents where state = 'idle' and current_node is null")
            .fetch_all(&mut *conn)
            .await?;
    if agents.is_empty() {
        release(conn, released).await?;
        return Ok(Assigned::default());
    }
    let idle = capabilities.idle_agents(conn, &agents).await?;
    // Candidates: the most urgent, oldest ready nodes, twice as many as there are idle agents
    // (a node may need capabilities no single one of them has), not the whole backlog: under
    // load a few agents are free and hundreds of nodes ready, and reading four times as many
    // cost 3 % of the database's time in rows the pairing threw away.
    let limit = i64::try_from(idle.len().saturating_mul(2).max(16))
        .unwrap_or(i64::MAX)
        .min(batch);
    let rows = sqlx::query_as!(
        ReadyRow,
        r#"select id, required_capabilities, priority, reserved_for,
                  (extract(epoch from coalesce(ready_at, now())) * 1000)::bigint as "ready_ms!"
           from nodes
           where status = 'queued' and pending_deps = 0 and not_before <= now()
           order by priority desc, ready_at
           limit $1"#,
        limit
    )
    .fetch_all(&mut *conn)
    .await?;
    let more_ready = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= limit;
    let mut ready: Vec<ReadyNode> = Vec::with_capacity(rows.len() + released.len());
    push_new(&mut ready, rows.into_iter().map(ReadyNode::from));
    push_new(&mut ready, released.0.iter().cloned());
    if ready.is_empty() {
        return Ok(Assigned::default());
    }
    let mut pairs = delegation::assign(&ready, &idle);
    if more_ready && pairs.len() < idle.len() {
        // Agents left without work while more nodes are ready than were read: the first
        // candidates may all be a backlog only others can do, with an idle specialist's work
        // behind it. Read again for each capability set of those agents, then pair the lot.
        // (A separate statement, as this is rare: filtered by a set, it is planned anew on
        // every call.)
        let paired: Vec<AgentId> = pairs.iter().map(|p| p.1).collect();
        let mut sets: Vec<(&[String], Uuid, i64)> = Vec::new();
        for a in idle.iter().filter(|a| !paired.contains(&a.id)) {
            match sets
                .iter_mut()
                .find(|(caps, _, _)| *caps == a.capabilities.as_slice())
            {
                Some((_, _, n)) => *n += 2,
                None => sets.push((&a.capabilities, a.id.0, 2)),
            }
        }
        for (_, agent, n) in sets {
            let rows = sqlx::query_as!(
                ReadyRow,
                r#"select id, required_capabilities, priority, reserved_for,
                          (extract(epoch from coalesce(ready_at, now())) * 1000)::bigint
                              as "ready_ms!"
                   from nodes
                   where status = 'queued' and pending_deps = 0 and not_before <= now()
                     and required_capabilities
                         <@ (select capabilities from agents where id = $2)
                   order by priority desc, ready_at
                   limit $1"#,
                n.max(8).min(batch),
                agent
            )
            .fetch_all(&mut *conn)
            .await?;
            push_new(&mut ready, rows.into_iter().map(ReadyNode::from));
        }
        pairs = delegation::assign(&ready, &idle);
    }
    if pairs.is_empty() {
        release(conn, released).await?;
        return Ok(Assigned::default());
    }
    let released_ids = released.ids();
    let node_ids: Vec<Uuid> = pairs.iter().map(|p| p.0.0).collect();
    let agent_ids: Vec<Uuid> = pairs.iter().map(|p| p.1.0).collect();
    let (worker, room) = match run_here {
        Some(h) => (Some(h.worker.0), (h.reserve)(pairs.len())),
        None => (None, 0),
    };
    let here: Vec<bool> = (0..pairs.len()).map(|i| i < room).collect();
    // One statement records everything (node, agent, events): each round trip
    // sits on the path from a dependency's completion to its dependent's start. Lookups by key
    // are fenced (`offset 0`) so no plan turns them into scans of the history.
    let rows = sqlx::query_as!(
        StartRow,
        r#"with pairs as (select * from unnest($1::uuid[], $2::uuid[], $4::bool[])
                             as p(node, agent, here)),
           free as (
               select id from agents
               where id = any($2::uuid[]) and state = 'idle' and current_node is null
               order by id
               for update skip locked),
           -- Still ready, or released by this transaction (the test is kept from matching
           -- the partial index of ready nodes: the primary key finds each row directly).
           open as (
               select id from nodes
               where id = any($1::uuid[])
                 and (status = 'queued' and not_before <= now()
                      and (pending_deps = 0 or id = any($6::uuid[]))) is true
               for update skip locked),
           a as (select pairs.* from pairs join free on free.id = pairs.agent
                                           join open on open.id = pairs.node),
           n as (
               update nodes n
               set status = case when a.here then 'running' else 'assigned' end,
                   agent_id = a.agent, attempt = n.attempt + 1,
                   lease_token = gen_random_uuid(),
                   lease_expires_at = now() + make_interval(secs => $3),
                   worker_id = case when a.here then $5::uuid else n.worker_id end,
                   started_at = case when a.here then now() else n.started_at end,
                   pending_deps = 0,
                   ready_at = case when n.pending_deps > 0 then now() else n.ready_at end
               from a where n.id = a.node
               returning n.id, n.run_id, n.key, n.description, n.attempt, n.lease_token,
                         a.agent, a.here,
                         extract(epoch from clock_timestamp() - coalesce(n.ready_at, now()))
                             as waited),
           g as (
               update agents g set state = 'working', current_node = a.node, updated_at = now()
               from a where g.id = a.agent),
           -- Released dependents that found no agent now wait as ready.
           rel as (
               update nodes r set pending_deps = 0, ready_at = now()
               where r.id = any($6::uuid[]) and not exists (select 1 from n where n.id = r.id)),
           -- A node started in this statement goes from queued to running in one change,
           -- recorded as one `subtask.started` event naming its agent; one left for a claim
           -- is `subtask.assigned`. Either also records the agent's change to working.
           e as (insert into events (type, severity, subject, agent_id, run_id, node_id, data)
                 select case when here then 'subtask.started' else 'subtask.assigned' end,
                        'info', 'subtask/' || id, agent, run_id, id,
                        jsonb_build_object('agent_id', agent, 'attempt', attempt)
                            || case when here then jsonb_build_object('worker_id', $5::uuid)
                                    else '{}' end
                 from n order by id)
           select n.id, n.run_id, n.key, n.description, n.agent as "agent_id!", n.attempt,
                  n.lease_token as "lease_token!", ag.provider, ag.model, ag.system_prompt,
                  coalesce((select array_agg(coalesce(p.output, '') order by p.position)
                            from node_deps d,
                                 lateral (select output, position from nodes p
                                          where p.id = d.depends_on offset 0) p
                            where d.node_id = n.id), '{}') as "context!",
                  n.here as "here!", n.waited::float8 as "waited!"
           from n,
                lateral (select provider, model, system_prompt from agents
                         where id = n.agent offset 0) ag"#,
        &node_ids,
        &agent_ids,
        lease_secs,
        &here,
        worker,
        &released_ids
    )
    .fetch_all(&mut *conn)
    .await?;
    let waited = rows.iter().map(|r| r.waited).collect();
    let started = rows
        .into_iter()
        .filter(|r| r.here)
        .map(ClaimedNode::from)
        .collect();
    Ok(Assigned { waited, started })
}

/// A ready node as the candidate reads return it.
struct ReadyRow {
    id: Uuid,
    required_capabilities: Vec<String>,
    priority: i16,
    reserved_for: Option<Uuid>,
    ready_ms: i64,
}

impl From<ReadyRow> for ReadyNode {
    fn from(r: ReadyRow) -> Self {
        ReadyNode {
            id: NodeId(r.id),
            required_capabilities: r.required_capabilities,
            priority: r.priority,
            ready_at_ms: r.ready_ms,
            reserved_for: r.reserved_for.map(AgentId),
        }
    }
}

/// Adds the nodes not yet in `ready`.
fn push_new(ready: &mut Vec<ReadyNode>, nodes: impl IntoIterator<Item = ReadyNode>) {
    for n in nodes {
        if !ready.iter().any(|r| r.id == n.id) {
            ready.push(n);
        }
    }
}

/// A node as an assignment or a claim starts it.
struct StartRow {
    id: Uuid,
    run_id: Uuid,
    key: String,
    description: String,
    agent_id: Uuid,
    attempt: i32,
    lease_token: Uuid,
    provider: String,
    model: String,
    system_prompt: String,
    context: Vec<String>,
    here: bool,
    waited: f64,
}

impl From<StartRow> for ClaimedNode {
    fn from(r: StartRow) -> Self {
        ClaimedNode {
            id: NodeId(r.id),
            run_id: RunId(r.run_id),
            key: r.key,
            description: r.description,
            agent_id: AgentId(r.agent_id),
            attempt: r.attempt,
            lease_token: r.lease_token,
            provider: r.provider,
            model: r.model,
            system_prompt: r.system_prompt,
            context: r.context,
        }
    }
}

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
               returning n.id, n.run_id, n.key, n.description, n.agent_id, n.attempt, n.lease_token),
           e as (
               insert into events (type, severity, subject, agent_id, run_id, node_id, data)
               select 'subtask.started', 'info', 'subtask/' || id, agent_id, run_id, id,
                      jsonb_build_object('attempt', attempt, 'worker_id', $1::uuid)
               from claimed)
           select c.id, c.run_id, c.key, c.description, c.agent_id as "agent_id!", c.attempt,
                  c.lease_token as "lease_token!", a.provider, a.model, a.system_prompt,
                  coalesce((select array_agg(coalesce(p.output, '') order by p.position)
                            from node_deps d,
                                 lateral (select output, position from nodes p
                                          where p.id = d.depends_on offset 0) p
                            where d.node_id = c.id), '{}') as "context!",
                  true as "here!", 0::float8 as "waited!"
           from claimed c, lateral (select provider, model, system_prompt from agents a
                                    where a.id = c.agent_id offset 0) a"#,
        worker.0,
        limit,
        lease_secs
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(ClaimedNode::from).collect())
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
pub struct Released(Vec<ReadyNode>);

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

    fn ids(&self) -> Vec<Uuid> {
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
/// caller's assignment starts them with one write instead of two (released, then started) —
/// on a 1→100 fan-out that second write of every dependent was a third of the hop.
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

/// Frees the agent of `node` after a failed attempt: back to idle unless paused meanwhile (a
/// paused agent stays paused), with its counters updated. Returns the agent's state after, if
/// it was still on the node; the failure's event records it.
async fn free_after_failure(
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
    let agent_state = free_after_failure(conn, node.agent_id.0, node.id.0, busy_ms).await?;
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
            super::runs::fail_run(
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
async fn block_downstream(conn: &mut PgConnection, node: NodeId) -> Result<i64, sqlx::Error> {
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

/// How the attempt a release voids is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Voided {
    /// Someone decided it (agent terminated, worker shut down).
    Cancelled,
    /// Its lease expired: the worker or agent went silent.
    Lost,
}

/// Frees `agent` from `node`: back to idle unless it was paused or terminated meanwhile.
/// Returns whether the agent was still on that node.
pub(super) async fn free_agent(
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
        && free_agent(conn, agent, node.0).await?
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
    super::runs::fail_run(
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
                    .data(json!({ "node_id": n.id, "worker_id": n.worker_id })),
            )
            .await?;
        }
    }
    Ok(lost.len())
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
