//! Assignment: the daemon pairs ready nodes with idle capable agents.

use super::{ClaimedNode, Released, StartRow, release};
use crate::domain::delegation::{self, IdleAgent, ReadyNode};
use crate::domain::ids::{AgentId, NodeId, WorkerId};
use sqlx::PgConnection;
use uuid::Uuid;

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
    // statement anew on every call instead of reusing its generic plan.
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
                         n.step, a.agent, a.here,
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
                  n.lease_token as "lease_token!", ag.provider, ag.model, ag.system_prompt, ag.tools, ag.mcp_servers,
                  coalesce((select array_agg(coalesce(p.output, '') order by p.position)
                            from node_deps d,
                                 lateral (select output, position from nodes p
                                          where p.id = d.depends_on offset 0) p
                            where d.node_id = n.id), '{}') as "context!",
                  n.step,
                  n.here as "here!", n.waited::float8 as "waited!"
           from n,
                lateral (select provider, model, system_prompt, tools, mcp_servers from agents
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
