//! Workflow runs over the engine's `runs` and `nodes`: starting one, the advancer's decisions
//! at each gated node (skip, wait for approval, open), approval decisions, and the run view.
//! Every workflow node is gated (one pending dependency more than it has prerequisites), so
//! the engine's completions bring it down to its gate and only these functions open it.

use super::events::{self, NewEvent};
use super::runs::{self, RunDbError};
use crate::domain::event::{EventKind, Severity};
use crate::domain::ids::{AgentId, NodeId, RunId, WorkflowId};
use crate::domain::run::{NodeStatus, RunStatus};
use crate::domain::workflow::{
    Condition, RunDetail, RunNode, RunSummary, Step, WorkflowDetail, render,
};
use serde_json::{Map, Value, json};
use sqlx::{PgConnection, PgExecutor};
use std::collections::HashMap;
use uuid::Uuid;

/// The capability of approval nodes: no agent can have it, so none is ever assigned one even
/// if its gate were opened.
const NOBODY: &str = "@approval";

#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    #[error("no such run")]
    RunNotFound,
    #[error("the run has no node '{0}'")]
    NodeNotFound(String),
    #[error("node '{0}' is not an approval")]
    NotApproval(String),
    #[error("node '{key}' is not waiting for a decision ({state})")]
    NotWaiting { key: String, state: String },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Starts a run of `wf`'s version with checked `inputs`; the advancer opens its first nodes.
/// `agents` maps the names agent steps use to their ids and capabilities.
pub async fn start(
    conn: &mut PgConnection,
    wf: &WorkflowDetail,
    inputs: &Map<String, Value>,
    agents: &HashMap<String, (AgentId, Vec<String>)>,
    started_by: Option<Uuid>,
    parent: Option<NodeId>,
) -> Result<RunId, sqlx::Error> {
    let run = RunId(Uuid::new_v4());
    let def = &wf.definition;
    sqlx::query!(
        "insert into runs (id, kind, description, priority, status, planned_by, created_by,
                           workflow_id, workflow_version, inputs, parent_node)
         values ($1, 'workflow', $2, 5, 'in_progress', 'workflow', $3, $4, $5, $6, $7)",
        run.0,
        wf.name,
        started_by,
        wf.id.0,
        wf.version,
        Value::Object(inputs.clone()),
        parent.map(|p| p.0)
    )
    .execute(&mut *conn)
    .await?;
    let index: HashMap<&str, usize> = def
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.key.as_str(), i))
        .collect();
    let ids: Vec<Uuid> = def.nodes.iter().map(|_| Uuid::new_v4()).collect();
    // One pass over the edges: the dependency rows and each node's count of prerequisites.
    let mut prerequisites = vec![0i32; def.nodes.len()];
    let (mut dependent, mut prerequisite, mut conditions) = (Vec::new(), Vec::new(), Vec::new());
    for e in &def.edges {
        if let (Some(&a), Some(&b)) = (index.get(e.from.as_str()), index.get(e.to.as_str())) {
            prerequisites[b] += 1;
            dependent.push(ids[b]);
            prerequisite.push(ids[a]);
            conditions.push(
                e.condition
                    .as_ref()
                    .and_then(|c| serde_json::to_value(c).ok()),
            );
        }
    }
    let order = topological(def.nodes.len(), &def.edges, &index);
    let mut position = vec![0i32; def.nodes.len()];
    for (pos, &i) in order.iter().enumerate() {
        position[i] = i32::try_from(pos).unwrap_or(i32::MAX);
    }
    let (mut keys, mut prompts, mut caps, mut reserved, mut steps) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for n in &def.nodes {
        keys.push(n.key.clone());
        let (prompt, cap, agent) = match &n.step {
            Step::Agent {
                capability,
                agent,
                prompt,
            } => {
                let named = agent.as_ref().and_then(|a| agents.get(a));
                let cap = match (capability, named) {
                    (Some(c), _) => c.clone(),
                    // A named agent: only agents with all its capabilities may stand in.
                    (None, Some((_, c))) => c.join(","),
                    (None, None) => String::new(),
                };
                (prompt.clone(), cap, named.map(|(id, _)| id.0))
            }
            Step::Approval { prompt } => (prompt.clone(), NOBODY.to_owned(), None),
            // Any agent's worker makes a tool step's one call (the run's start authorised it).
            Step::Tool { .. } => (String::new(), String::new(), None),
            // Never assigned: its child run does the work.
            Step::Workflow { .. } => (String::new(), NOBODY.to_owned(), None),
        };
        prompts.push(prompt);
        caps.push(cap);
        reserved.push(agent);
        steps.push(serde_json::to_value(&n.step).unwrap_or(Value::Null));
    }
    // The gate: one pending dependency more than the node has prerequisites.
    let pending: Vec<i32> = prerequisites.iter().map(|d| d + 1).collect();
    sqlx::query!(
        r#"insert into nodes (id, run_id, key, position, description, required_capabilities,
                              priority, pending_deps, reserved_for, step, gated)
           select id, $1, key, pos, description,
                  case when caps = '' then '{}'::text[] else string_to_array(caps, ',') end,
                  5, pending, reserved, step, true
           from unnest($2::uuid[], $3::text[], $4::int[], $5::text[], $6::text[], $7::int[],
                       $8::uuid[], $9::jsonb[])
                as t(id, key, pos, description, caps, pending, reserved, step)"#,
        run.0,
        &ids,
        &keys,
        &position,
        &prompts,
        &caps,
        &pending,
        &reserved as &[Option<Uuid>],
        &steps
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "insert into node_deps (node_id, depends_on, condition)
         select * from unnest($1::uuid[], $2::uuid[], $3::jsonb[])",
        &dependent,
        &prerequisite,
        &conditions as &[Option<Value>]
    )
    .execute(&mut *conn)
    .await?;
    events::append(
        conn,
        NewEvent::new(EventKind::WorkflowRunStarted, format!("task/{run}"))
            .run(run)
            .data(json!({
                "workflow_id": wf.id,
                "version": wf.version,
                "nodes": ids.len(),
            })),
    )
    .await?;
    Ok(run)
}

/// Kahn's order of the nodes (the definition was validated acyclic; any node left over by a
/// cycle goes last, so every node still gets a position).
fn topological(
    n: usize,
    edges: &[crate::domain::workflow::Edge],
    index: &HashMap<&str, usize>,
) -> Vec<usize> {
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut indegree = vec![0usize; n];
    for e in edges {
        if let (Some(&a), Some(&b)) = (index.get(e.from.as_str()), index.get(e.to.as_str())) {
            out[a].push(b);
            indegree[b] += 1;
        }
    }
    let mut queue: std::collections::VecDeque<usize> =
        (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = queue.pop_front() {
        order.push(i);
        for &j in &out[i] {
            indegree[j] -= 1;
            if indegree[j] == 0 {
                queue.push_back(j);
            }
        }
    }
    let placed: std::collections::HashSet<usize> = order.iter().copied().collect();
    order.extend((0..n).filter(|i| !placed.contains(i)));
    order
}

/// A gated node down to its gate, locked for the advancer's decision.
#[derive(Debug)]
pub struct Gated {
    pub id: NodeId,
    pub run_id: RunId,
    pub key: String,
    pub step: Option<Value>,
    pub inputs: Option<Value>,
}

/// The next undecided gated node of a run in progress, locked (others skip it).
pub async fn next_gated(conn: &mut PgConnection) -> Result<Option<Gated>, sqlx::Error> {
    let row = sqlx::query!(
        r#"select n.id, n.run_id, n.key, n.step, r.inputs
           from nodes n join runs r on r.id = n.run_id
           where n.gated and n.pending_deps = 1 and n.status = 'queued' and n.approval is null
             and r.status = 'in_progress'
           limit 1 for update of n skip locked"#
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| Gated {
        id: NodeId(r.id),
        run_id: RunId(r.run_id),
        key: r.key,
        step: r.step,
        inputs: r.inputs,
    }))
}

/// Whether the node should run: it has no incoming edge, or one from a completed node whose
/// condition (if any) holds on that node's output. Edges from skipped nodes are inactive.
pub async fn is_active(conn: &mut PgConnection, node: NodeId) -> Result<bool, sqlx::Error> {
    let incoming = sqlx::query!(
        r#"select d.condition, s.status as "status: NodeStatus", s.output
           from node_deps d join nodes s on s.id = d.depends_on
           where d.node_id = $1"#,
        node.0
    )
    .fetch_all(conn)
    .await?;
    if incoming.is_empty() {
        return Ok(true);
    }
    Ok(incoming.iter().any(|e| {
        e.status == NodeStatus::Completed
            && e.condition
                .as_ref()
                .and_then(|c| serde_json::from_value::<Condition>(c.clone()).ok())
                .is_none_or(|c| c.holds(e.output.as_deref().unwrap_or_default()))
    }))
}

/// The outputs of the run's completed nodes, by key (what templates read).
pub async fn outputs(
    conn: &mut PgConnection,
    run: RunId,
) -> Result<HashMap<String, String>, sqlx::Error> {
    let rows = sqlx::query!(
        "select key, output from nodes where run_id = $1 and status = 'completed'",
        run.0
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.key, r.output.unwrap_or_default()))
        .collect())
}

/// One fewer pending dependency for each queued dependent of `node`.
pub(super) async fn release_dependents(
    conn: &mut PgConnection,
    node: NodeId,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update nodes set pending_deps = pending_deps - 1
         where id in (select node_id from node_deps where depends_on = $1) and status = 'queued'",
        node.0
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Finishes the node without running it; its dependents count it as done (with an inactive
/// edge).
pub async fn skip(conn: &mut PgConnection, g: &Gated) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update nodes set status = 'skipped', pending_deps = 0, finished_at = now() where id = $1",
        g.id.0
    )
    .execute(&mut *conn)
    .await?;
    release_dependents(conn, g.id).await?;
    events::append(
        conn,
        NewEvent::new(EventKind::SubtaskSkipped, format!("subtask/{}", g.id))
            .run(g.run_id)
            .node(g.id)
            .data(json!({ "key": g.key })),
    )
    .await?;
    runs::finish_if_done(conn, g.run_id, false).await?;
    Ok(())
}

/// Marks an approval node as waiting for a person; it holds no agent, slot or lease.
pub async fn request_approval(
    conn: &mut PgConnection,
    g: &Gated,
    prompt: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update nodes set approval = 'waiting', description = $2, ready_at = now() where id = $1",
        g.id.0,
        prompt
    )
    .execute(&mut *conn)
    .await?;
    events::append(
        conn,
        NewEvent::new(EventKind::ApprovalRequested, format!("subtask/{}", g.id))
            .run(g.run_id)
            .node(g.id)
            .severity(Severity::Warning)
            .data(json!({ "key": g.key })),
    )
    .await?;
    Ok(())
}

/// Opens the gate with the rendered prompt: the daemon assigns it like any ready node.
pub async fn open(conn: &mut PgConnection, g: &Gated, prompt: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update nodes set description = $2, pending_deps = 0, ready_at = now(), not_before = now()
         where id = $1",
        g.id.0,
        prompt
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Opens a tool step's gate with its arguments rendered: the daemon assigns it to any idle
/// agent, whose worker makes the call.
pub async fn open_tool(
    conn: &mut PgConnection,
    g: &Gated,
    tool: &str,
    arguments: &Map<String, Value>,
) -> Result<(), sqlx::Error> {
    let step = json!({ "kind": "tool", "tool": tool, "arguments": arguments });
    let description = format!("{tool} {}", Value::Object(arguments.clone()));
    sqlx::query!(
        "update nodes set description = $2, step = $3, pending_deps = 0, ready_at = now(),
             not_before = now()
         where id = $1",
        g.id.0,
        description,
        step
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The fleet's agents by name, with their ids and capabilities (what agent steps name).
pub async fn agents_by_name(
    conn: &mut PgConnection,
) -> Result<HashMap<String, (AgentId, Vec<String>)>, sqlx::Error> {
    Ok(
        sqlx::query!("select id, name, capabilities from agents where state <> 'terminated'")
            .fetch_all(conn)
            .await?
            .into_iter()
            .map(|a| (a.name, (AgentId(a.id), a.capabilities)))
            .collect(),
    )
}

/// Fails a node the advancer cannot run (a malformed step), blocking what depends on it and
/// failing the run: a poison node fails itself, never the loop.
pub async fn fail_node(
    conn: &mut PgConnection,
    node: NodeId,
    run: RunId,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update nodes set status = 'failed', error = $2, finished_at = now() where id = $1",
        node.0,
        error
    )
    .execute(&mut *conn)
    .await?;
    failed(conn, node, run, error).await
}

/// What follows a node's failure: what depends on it is blocked, the failure is an event, and
/// the run fails.
pub(super) async fn failed(
    conn: &mut PgConnection,
    node: NodeId,
    run: RunId,
    error: &str,
) -> Result<(), sqlx::Error> {
    let blocked = block_downstream(conn, node).await?;
    events::append(
        conn,
        NewEvent::new(EventKind::SubtaskFailed, format!("subtask/{node}"))
            .run(run)
            .node(node)
            .severity(Severity::Error)
            .data(json!({ "error": error })),
    )
    .await?;
    Box::pin(runs::fail_run(conn, run, error, blocked)).await?;
    Ok(())
}

/// Blocks every queued node downstream of `node`; returns how many.
async fn block_downstream(conn: &mut PgConnection, node: NodeId) -> Result<i64, sqlx::Error> {
    let n = sqlx::query_scalar!(
        r#"with recursive down(id) as (
               select node_id from node_deps where depends_on = $1
               union
               select d.node_id from node_deps d join down on d.depends_on = down.id),
           blocked as (
               update nodes set status = 'blocked'
               where id in (select id from down) and status = 'queued' returning 1)
           select count(*) as "n!" from blocked"#,
        node.0
    )
    .fetch_one(conn)
    .await?;
    Ok(n)
}

/// Approves or rejects the approval node `key` of `run` as `by`. Approved, it completes (its
/// output is the comment) and the run goes on; rejected, it fails, what depends on it is
/// blocked and the run fails. Only a waiting node can be decided, once.
pub async fn decide(
    conn: &mut PgConnection,
    run: RunId,
    key: &str,
    approve: bool,
    comment: Option<&str>,
    by: Uuid,
) -> Result<(), DecisionError> {
    let node = sqlx::query!(
        r#"select n.id, n.approval, n.step ->> 'kind' as kind, n.status as "status: NodeStatus",
                  u.username as "decided_by?"
           from nodes n left join users u on u.id = n.decided_by
           where n.run_id = $1 and n.key = $2 for update of n"#,
        run.0,
        key
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(node) = node else {
        let exists = sqlx::query_scalar!("select 1 as \"one!\" from runs where id = $1", run.0)
            .fetch_optional(&mut *conn)
            .await?;
        return Err(match exists {
            None => DecisionError::RunNotFound,
            Some(_) => DecisionError::NodeNotFound(key.to_owned()),
        });
    };
    if node.kind.as_deref() != Some("approval") {
        return Err(DecisionError::NotApproval(key.to_owned()));
    }
    if node.approval.as_deref() != Some("waiting") || node.status != NodeStatus::Queued {
        let state = match (node.approval.as_deref(), node.decided_by) {
            (Some(d @ ("approved" | "rejected")), Some(who)) => format!("{d} by {who}"),
            (Some(d), _) => d.to_owned(),
            (None, _) => format!("{}, not yet reached", node.status),
        };
        return Err(DecisionError::NotWaiting {
            key: key.to_owned(),
            state,
        });
    }
    let id = NodeId(node.id);
    let decision = if approve { "approved" } else { "rejected" };
    sqlx::query!(
        "update nodes set approval = $2, decided_by = $3, decided_at = now(), decision_comment = $4
         where id = $1",
        id.0,
        decision,
        by,
        comment
    )
    .execute(&mut *conn)
    .await?;
    events::append(
        conn,
        NewEvent::new(EventKind::ApprovalDecided, format!("subtask/{id}"))
            .run(run)
            .node(id)
            .data(json!({ "key": key, "decision": decision, "comment": comment })),
    )
    .await?;
    if approve {
        sqlx::query!(
            "update nodes set status = 'completed', output = $2, pending_deps = 0,
                 finished_at = now()
             where id = $1",
            id.0,
            comment.unwrap_or("approved")
        )
        .execute(&mut *conn)
        .await?;
        release_dependents(conn, id).await?;
        runs::finish_if_done(conn, run, false).await?;
    } else {
        let reason = match comment {
            Some(c) => format!("approval '{key}' was rejected: {c}"),
            None => format!("approval '{key}' was rejected"),
        };
        sqlx::query!(
            "update nodes set status = 'failed', error = $2, finished_at = now() where id = $1",
            id.0,
            reason
        )
        .execute(&mut *conn)
        .await?;
        let blocked = block_downstream(conn, id).await?;
        runs::fail_run(conn, run, &reason, blocked).await?;
    }
    Ok(())
}

/// The node id of `key` in `run`, for retrying it.
pub async fn node_id(conn: &mut PgConnection, run: RunId, key: &str) -> Result<NodeId, RunDbError> {
    sqlx::query_scalar!(
        "select id from nodes where run_id = $1 and key = $2",
        run.0,
        key
    )
    .fetch_optional(conn)
    .await?
    .map(NodeId)
    .ok_or(RunDbError::NodeNotFound)
}

/// A workflow run with its nodes, or `None` if there is no such run of a workflow.
pub async fn get(conn: &mut PgConnection, id: RunId) -> Result<Option<RunDetail>, sqlx::Error> {
    let Some(r) = sqlx::query!(
        r#"select r.workflow_id as "workflow_id!", r.workflow_version as "workflow_version!",
                  r.status as "status: RunStatus", r.inputs, r.result, r.error, r.created_at,
                  r.finished_at, u.username as "username?"
           from runs r left join users u on u.id = r.created_by
           where r.id = $1 and r.kind = 'workflow'"#,
        id.0
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let nodes = sqlx::query!(
        r#"select n.id, n.key, coalesce(n.step ->> 'kind', 'agent') as "kind!",
                  n.status as "status: NodeStatus", n.approval, n.decided_at, n.decision_comment,
                  u.username as "decided_by?", n.description, n.agent_id, n.attempt, n.output,
                  n.error, n.tokens, n.started_at, n.finished_at,
                  (select c.id from runs c where c.parent_node = n.id
                   order by c.created_at desc limit 1) as child_run,
                  coalesce((select array_agg(s.key order by s.position) from node_deps d
                            join nodes s on s.id = d.depends_on where d.node_id = n.id),
                           '{}') as "depends_on!"
           from nodes n left join users u on u.id = n.decided_by
           where n.run_id = $1 order by n.position"#,
        id.0
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(RunDetail {
        id,
        workflow_id: WorkflowId(r.workflow_id),
        workflow_version: r.workflow_version,
        status: r.status,
        inputs: r.inputs.unwrap_or_else(|| json!({})),
        result: r.result,
        error: r.error,
        started_by: r.username,
        created_at: r.created_at,
        finished_at: r.finished_at,
        nodes: nodes
            .into_iter()
            .map(|n| RunNode {
                id: NodeId(n.id),
                key: n.key,
                kind: n.kind,
                status: n.status,
                waiting_for_approval: n.approval.as_deref() == Some("waiting")
                    && n.status == NodeStatus::Queued,
                decision: n.approval.filter(|a| a != "waiting"),
                decided_by: n.decided_by,
                decided_at: n.decided_at,
                decision_comment: n.decision_comment,
                depends_on: n.depends_on,
                prompt: n.description,
                agent_id: n.agent_id.map(AgentId),
                attempt: n.attempt,
                output: n.output,
                error: n.error,
                tokens: n.tokens,
                child_run: n.child_run.map(RunId),
                started_at: n.started_at,
                finished_at: n.finished_at,
            })
            .collect(),
    }))
}

/// A workflow's runs, newest first, optionally in one status.
pub async fn list(
    db: impl PgExecutor<'_>,
    workflow: WorkflowId,
    status: Option<RunStatus>,
    limit: i64,
    before: Option<time::OffsetDateTime>,
) -> Result<Vec<RunSummary>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select r.id, r.workflow_version as "workflow_version!", r.status as "status: RunStatus",
                  r.created_at, r.finished_at, u.username as "username?",
                  (select count(*) from nodes n where n.run_id = r.id) as "total!",
                  (select count(*) from nodes n where n.run_id = r.id
                       and n.status in ('completed', 'skipped')) as "finished!"
           from runs r left join users u on u.id = r.created_by
           where r.workflow_id = $1 and ($2::text is null or r.status = $2)
             and ($4::timestamptz is null or r.created_at < $4)
           order by r.created_at desc limit $3"#,
        workflow.0,
        status.map(RunStatus::as_str),
        limit,
        before
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| RunSummary {
            id: RunId(r.id),
            workflow_id: workflow,
            workflow_version: r.workflow_version,
            status: r.status,
            nodes_total: r.total,
            nodes_finished: r.finished,
            started_by: r.username,
            created_at: r.created_at,
            finished_at: r.finished_at,
        })
        .collect())
}

/// The prompt of a gated node's step, rendered with the run's inputs and upstream outputs.
pub fn rendered_prompt(
    step: &Step,
    inputs: &Map<String, Value>,
    outputs: &HashMap<String, String>,
) -> String {
    match step {
        Step::Agent { prompt, .. } | Step::Approval { prompt } => render(prompt, inputs, outputs),
        _ => String::new(),
    }
}
