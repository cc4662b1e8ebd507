//! The `runs` table and a run's nodes: submit, plan, list, inspect, cancel, retry.

use super::events::{self, NewEvent};
use super::subworkflows::{self, ChildEnd};
use crate::domain::event::{EventKind, Severity};
use crate::domain::ids::{AgentId, NodeId, RunId};
use crate::domain::plan::ValidatedPlan;
use crate::domain::run::{NodeStatus, RunStatus, SubtaskView, TaskDetail, TaskSummary};
use serde_json::{Value, json};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum RunDbError {
    #[error("no such task")]
    NotFound,
    #[error("no such subtask")]
    NodeNotFound,
    #[error("the task is already {0}")]
    AlreadyFinal(RunStatus),
    #[error("only a failed or blocked subtask can be retried (this one is {0})")]
    NotRetryable(NodeStatus),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Records a new task and wakes the planners; returns at once.
pub async fn submit(
    conn: &mut PgConnection,
    description: &str,
    priority: i16,
    created_by: Option<Uuid>,
) -> Result<RunId, sqlx::Error> {
    let id = RunId(Uuid::new_v4());
    sqlx::query!(
        "insert into runs (id, kind, description, priority, created_by) values ($1, 'task', $2, $3, $4)",
        id.0,
        description,
        priority,
        created_by
    )
    .execute(&mut *conn)
    .await?;
    events::append(
        conn,
        NewEvent::new(EventKind::TaskSubmitted, format!("task/{id}"))
            .run(id)
            .data(json!({ "priority": priority })),
    )
    .await?;
    Ok(id)
}

/// A pending run a planner took: it holds a planning lease until it stores a plan.
#[derive(Debug, Clone)]
pub struct PlanningClaim {
    pub id: RunId,
    pub description: String,
    pub priority: i16,
    /// How many times the run has been claimed for planning, this claim included.
    pub attempt: i32,
}

/// Takes the oldest pending run nobody is planning (or whose planner went silent).
pub async fn claim_for_planning(
    conn: &mut PgConnection,
    lease_secs: f64,
) -> Result<Option<PlanningClaim>, sqlx::Error> {
    let row = sqlx::query!(
        r#"with next as (
               select id from runs
               where status = 'pending'
                 and (planning_lease_expires_at is null or planning_lease_expires_at < now())
               order by priority desc, created_at
               limit 1 for update skip locked)
           update runs r set planning_lease_expires_at = now() + make_interval(secs => $1),
               planning_attempts = r.planning_attempts + 1
           from next where r.id = next.id
           returning r.id, r.description, r.priority, r.planning_attempts"#,
        lease_secs
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| PlanningClaim {
        id: RunId(r.id),
        description: r.description,
        priority: r.priority,
        attempt: r.planning_attempts,
    }))
}

/// Stores a validated plan as nodes and starts the run. Does nothing if the run is no longer
/// pending (cancelled, or planned by someone else after a lease lapse).
pub async fn store_plan(
    conn: &mut PgConnection,
    run: RunId,
    plan: &ValidatedPlan,
    planned_by: &str,
    note: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let started = sqlx::query!(
        r#"update runs set status = 'in_progress', planned_by = $2, plan_note = $3,
               planning_lease_expires_at = null, updated_at = now()
           where id = $1 and status = 'pending' returning id"#,
        run.0,
        planned_by,
        note
    )
    .fetch_optional(&mut *conn)
    .await?;
    if started.is_none() {
        return Ok(false);
    }
    let subtasks = plan.subtasks();
    let ids: Vec<Uuid> = subtasks.iter().map(|_| Uuid::new_v4()).collect();
    let mut position = vec![0i32; subtasks.len()];
    for (pos, &i) in plan.order().iter().enumerate() {
        position[i] = i32::try_from(pos).unwrap_or(i32::MAX);
    }
    let keys: Vec<String> = subtasks.iter().map(|s| s.key.clone()).collect();
    let descriptions: Vec<String> = subtasks.iter().map(|s| s.description.clone()).collect();
    // Arrays of arrays must be rectangular in Postgres: pass capabilities as one joined string.
    let caps: Vec<String> = subtasks
        .iter()
        .map(|s| s.required_capabilities.join(","))
        .collect();
    let priorities: Vec<i16> = subtasks.iter().map(|s| s.priority).collect();
    let pending: Vec<i32> = (0..subtasks.len())
        .map(|i| i32::try_from(plan.dependencies(i).len()).unwrap_or(i32::MAX))
        .collect();
    sqlx::query!(
        r#"insert into nodes (id, run_id, key, position, description, required_capabilities,
                              priority, pending_deps, ready_at)
           select id, $1, key, pos, description,
                  case when caps = '' then '{}'::text[] else string_to_array(caps, ',') end,
                  priority, pending, case when pending = 0 then now() end
           from unnest($2::uuid[], $3::text[], $4::int[], $5::text[], $6::text[], $7::int2[], $8::int[])
                as t(id, key, pos, description, caps, priority, pending)"#,
        run.0,
        &ids,
        &keys,
        &position,
        &descriptions,
        &caps,
        &priorities,
        &pending
    )
    .execute(&mut *conn)
    .await?;
    let (mut from, mut to) = (Vec::new(), Vec::new());
    for (i, id) in ids.iter().enumerate() {
        for &d in plan.dependencies(i) {
            from.push(*id);
            to.push(ids[d]);
        }
    }
    if !from.is_empty() {
        sqlx::query!(
            "insert into node_deps (node_id, depends_on) select * from unnest($1::uuid[], $2::uuid[])",
            &from,
            &to
        )
        .execute(&mut *conn)
        .await?;
    }
    events::append(
        conn,
        NewEvent::new(EventKind::TaskPlanned, format!("task/{run}"))
            .run(run)
            .severity(if planned_by == "fallback" {
                Severity::Warning
            } else {
                Severity::Info
            })
            .data(json!({ "subtasks": ids.len(), "planned_by": planned_by, "note": note })),
    )
    .await?;
    Ok(true)
}

/// The runs in progress (the daemon checks them all for being finished now and then).
pub async fn in_progress(db: impl PgExecutor<'_>) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!("select id from runs where status = 'in_progress'")
        .fetch_all(db)
        .await
}

/// Completes those of `among` (runs that had completions since the last check, or all in
/// progress) whose nodes are all completed. Called by the daemon, which sees completions only
/// after they commit, so no run can be missed by two racing completions.
pub async fn finish_completed(
    conn: &mut PgConnection,
    among: &[Uuid],
    summarize: bool,
) -> Result<usize, sqlx::Error> {
    if among.is_empty() {
        return Ok(0);
    }
    let done = sqlx::query_scalar!(
        r#"select r.id from runs r
           where r.id = any($1) and r.status = 'in_progress'
             and exists (select 1 from nodes n where n.run_id = r.id)
             and not exists (select 1 from nodes n where n.run_id = r.id
                             and n.status not in ('completed', 'skipped'))
           for update of r skip locked"#,
        among
    )
    .fetch_all(&mut *conn)
    .await?;
    for run in &done {
        finish_if_done(conn, RunId(*run), summarize).await?;
    }
    Ok(done.len())
}

/// Completes the run if every node is completed, writing the aggregated result; with
/// `summarize`, a task is left for the aggregator to summarise too.
pub async fn finish_if_done(
    conn: &mut PgConnection,
    run: RunId,
    summarize: bool,
) -> Result<bool, sqlx::Error> {
    let open = sqlx::query_scalar!(
        r#"select count(*) as "n!" from nodes
           where run_id = $1 and status not in ('completed', 'skipped')"#,
        run.0
    )
    .fetch_one(&mut *conn)
    .await?;
    if open > 0 {
        return Ok(false);
    }
    let parts = sqlx::query!(
        "select key, description, output from nodes
         where run_id = $1 and status = 'completed' order by position",
        run.0
    )
    .fetch_all(&mut *conn)
    .await?;
    // Aggregation by concatenation in dependency order; the aggregator may add a summary.
    let result = parts
        .iter()
        .map(|p| {
            format!(
                "## {} — {}\n{}",
                p.key,
                p.description,
                p.output.as_deref().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n\n");
    let done = sqlx::query!(
        r#"update runs set status = 'completed', result = $2, finished_at = now(), updated_at = now(),
               summary_pending = $3 and kind = 'task'
           where id = $1 and status = 'in_progress' returning parent_node"#,
        run.0,
        result,
        summarize
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(done) = done else {
        return Ok(false);
    };
    events::append(
        conn,
        NewEvent::new(EventKind::TaskCompleted, format!("task/{run}"))
            .run(run)
            .data(json!({ "subtasks": parts.len() })),
    )
    .await?;
    if let Some(parent) = done.parent_node {
        let outputs = parts
            .into_iter()
            .map(|p| (p.key, Value::String(p.output.unwrap_or_default())))
            .collect();
        subworkflows::child_ended(conn, NodeId(parent), ChildEnd::Completed(outputs)).await?;
    }
    Ok(true)
}

/// Fails a run that is still open: in progress (a subtask failed for good) or pending (it could
/// not even be planned, its planning kept dying). Returns whether it did.
pub async fn fail_run(
    conn: &mut PgConnection,
    run: RunId,
    error: &str,
    blocked: i64,
) -> Result<bool, sqlx::Error> {
    let failed = sqlx::query!(
        r#"update runs set status = 'failed', error = $2, planning_lease_expires_at = null,
               finished_at = now(), updated_at = now()
           where id = $1 and status in ('pending', 'in_progress') returning parent_node"#,
        run.0,
        error
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(failed) = &failed {
        events::append(
            conn,
            NewEvent::new(EventKind::TaskFailed, format!("task/{run}"))
                .run(run)
                .severity(Severity::Error)
                .data(json!({ "error": error, "blocked_subtasks": blocked })),
        )
        .await?;
        if let Some(parent) = failed.parent_node {
            subworkflows::child_ended(conn, NodeId(parent), ChildEnd::Failed(error)).await?;
        }
    }
    Ok(failed.is_some())
}

/// Cancels a task: open nodes are cancelled, their agents freed.
pub async fn cancel(conn: &mut PgConnection, run: RunId) -> Result<(), RunDbError> {
    let status = sqlx::query_scalar!(
        r#"select status as "status: RunStatus" from runs where id = $1 for update"#,
        run.0
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(RunDbError::NotFound)?;
    if status.is_final() {
        return Err(RunDbError::AlreadyFinal(status));
    }
    // Attempts in progress are recorded as cancelled, from the rows as they were.
    let cancelled = sqlx::query!(
        r#"with old as (
               select id, status, attempt, agent_id, worker_id, started_at from nodes
               where run_id = $1 and status in ('queued', 'assigned', 'running', 'blocked')
               order by id
               for update),
           upd as (
               update nodes n set status = 'cancelled', lease_token = null,
                   lease_expires_at = null, finished_at = now()
               from old where n.id = old.id),
           att as (
               insert into attempts (node_id, attempt, agent_id, worker_id, outcome,
                                     started_at, finished_at)
               select id, attempt, agent_id, worker_id, 'cancelled',
                      case when status = 'running' then started_at end, now()
               -- (a sub-workflow node runs no attempt: its child run is cancelled)
               from old where status in ('assigned', 'running') and agent_id is not null)
           select id, agent_id from old"#,
        run.0
    )
    .fetch_all(&mut *conn)
    .await?;
    for n in &cancelled {
        if let Some(agent) = n.agent_id {
            super::agent_state::free_agent(conn, agent, n.id).await?;
        }
    }
    if cancelled.iter().any(|n| n.agent_id.is_some()) {
        events::request_stop(&mut *conn, events::Stop::Run(run)).await?;
    }
    let ids: Vec<Uuid> = cancelled.iter().map(|n| n.id).collect();
    for child in subworkflows::open_children(conn, &ids).await? {
        Box::pin(cancel(conn, child)).await?;
    }
    let parent = sqlx::query_scalar!(
        "update runs set status = 'cancelled', finished_at = now(), updated_at = now()
         where id = $1 returning parent_node",
        run.0
    )
    .fetch_one(&mut *conn)
    .await?;
    events::append(
        conn,
        NewEvent::new(EventKind::TaskCancelled, format!("task/{run}"))
            .run(run)
            .severity(Severity::Warning)
            .data(json!({ "cancelled_subtasks": cancelled.len() })),
    )
    .await?;
    if let Some(parent) = parent {
        subworkflows::child_ended(conn, NodeId(parent), ChildEnd::Cancelled).await?;
    }
    Ok(())
}

/// Gives a failed (or blocked) subtask a fresh set of attempts; what it blocked is queued again
/// and its task resumes.
pub async fn retry_node(conn: &mut PgConnection, node: NodeId) -> Result<RunId, RunDbError> {
    let row = sqlx::query!(
        r#"select run_id, status as "status: NodeStatus" from nodes where id = $1 for update"#,
        node.0
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(RunDbError::NodeNotFound)?;
    let status = row.status;
    if !matches!(status, NodeStatus::Failed | NodeStatus::Blocked) {
        return Err(RunDbError::NotRetryable(status));
    }
    let run = RunId(row.run_id);
    let run_status = sqlx::query_scalar!(
        r#"select status as "status: RunStatus" from runs where id = $1 for update"#,
        run.0
    )
    .fetch_one(&mut *conn)
    .await?;
    if run_status == RunStatus::Cancelled {
        return Err(RunDbError::AlreadyFinal(RunStatus::Cancelled));
    }
    sqlx::query!(
        r#"update nodes set status = 'queued', failures = 0, error = null, not_before = now(),
               ready_at = now(), finished_at = null,
               -- A sub-workflow that ran goes back to its gate: the advancer starts a new child.
               pending_deps = case when step ->> 'kind' = 'workflow' and pending_deps = 0
                                   then 1 else pending_deps end,
               -- A rejected approval asks again: its gate was never opened.
               approval = case when approval = 'rejected' then null else approval end,
               decided_by = case when approval = 'rejected' then null else decided_by end,
               decided_at = case when approval = 'rejected' then null else decided_at end
           where run_id = $1 and status in ('failed', 'blocked')"#,
        run.0
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        r#"update runs set status = 'in_progress', error = null, finished_at = null, updated_at = now()
           where id = $1"#,
        run.0
    )
    .execute(&mut *conn)
    .await?;
    events::append(
        conn,
        NewEvent::new(EventKind::SubtaskRetried, format!("subtask/{node}"))
            .node(node)
            .run(run)
            .data(json!({ "previous_status": status.as_str() })),
    )
    .await?;
    Ok(run)
}

pub async fn list(
    db: impl PgExecutor<'_>,
    status: Option<RunStatus>,
    limit: i64,
    before: Option<time::OffsetDateTime>,
) -> Result<Vec<TaskSummary>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select r.id, r.description, r.priority, r.status as "status: RunStatus", r.created_at,
                  (select username from users u where u.id = r.created_by) as submitted_by,
                  (select count(*) from nodes n where n.run_id = r.id) as "total!",
                  (select count(*) from nodes n where n.run_id = r.id and n.status = 'completed') as "done!"
           from runs r
           where r.kind = 'task' and ($1::text is null or r.status = $1)
             and ($3::timestamptz is null or r.created_at < $3)
           order by r.created_at desc limit $2"#,
        status.map(|s| s.as_str()),
        limit,
        before
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| TaskSummary {
            id: RunId(r.id),
            description: r.description,
            priority: r.priority,
            status: r.status,
            subtasks_total: r.total,
            subtasks_completed: r.done,
            submitted_by: r.submitted_by,
            created_at: r.created_at,
        })
        .collect())
}

pub async fn get(conn: &mut PgConnection, id: RunId) -> Result<Option<TaskDetail>, sqlx::Error> {
    let Some(r) = sqlx::query!(
        r#"select id, description, priority, status as "status: RunStatus", planned_by, plan_note, result, error,
                  summary, summary_error, created_at, finished_at,
                  (select username from users u where u.id = runs.created_by) as submitted_by
           from runs where id = $1 and kind = 'task'"#,
        id.0
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let nodes = sqlx::query!(
        r#"select n.id, n.key, n.description, n.required_capabilities, n.priority,
                  n.status as "status: NodeStatus",
                  n.agent_id, n.attempt, n.output, n.error,
                  coalesce(array_agg(d.depends_on) filter (where d.depends_on is not null), '{}') as "deps!"
           from nodes n left join node_deps d on d.node_id = n.id
           where n.run_id = $1
           group by n.id order by n.position"#,
        id.0
    )
    .fetch_all(&mut *conn)
    .await?;
    let (usage, mut per_node) = super::llm_calls::run_totals(conn, id).await?;
    Ok(Some(TaskDetail {
        id: RunId(r.id),
        description: r.description,
        priority: r.priority,
        status: r.status,
        planned_by: r.planned_by,
        plan_note: r.plan_note,
        result: r.result,
        error: r.error,
        summary: r.summary,
        summary_error: r.summary_error,
        submitted_by: r.submitted_by,
        created_at: r.created_at,
        finished_at: r.finished_at,
        usage,
        budget: super::budgets::get_conn(conn, "task", id.0).await?,
        subtasks: nodes
            .into_iter()
            .map(|n| SubtaskView {
                id: NodeId(n.id),
                key: n.key,
                description: n.description,
                required_capabilities: n.required_capabilities,
                depends_on: n.deps.into_iter().map(NodeId).collect(),
                priority: n.priority,
                status: n.status,
                agent_id: n.agent_id.map(AgentId),
                attempt: n.attempt,
                output: n.output,
                error: n.error,
                usage: per_node.remove(&NodeId(n.id)).unwrap_or_default(),
            })
            .collect(),
    }))
}

/// A completed task waiting for its summary, claimed for `lease_secs`.
pub struct SummaryClaim {
    pub id: RunId,
    pub description: String,
    pub result: String,
}

/// Claims the oldest task waiting for a summary whose claim (if any) has expired.
pub async fn claim_for_summary(
    conn: &mut PgConnection,
    lease_secs: f64,
) -> Result<Option<SummaryClaim>, sqlx::Error> {
    let row = sqlx::query!(
        r#"update runs set summary_lease_expires_at = now() + make_interval(secs => $1)
           where id = (select id from runs
                       where summary_pending
                         and (summary_lease_expires_at is null or summary_lease_expires_at < now())
                       order by finished_at limit 1 for update skip locked)
           returning id, description, result"#,
        lease_secs
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| SummaryClaim {
        id: RunId(r.id),
        description: r.description,
        result: r.result.unwrap_or_default(),
    }))
}

/// Stores a task's summary, or why there is none, and records the event.
pub async fn store_summary(
    conn: &mut PgConnection,
    run: RunId,
    summary: Result<&str, &str>,
) -> Result<(), sqlx::Error> {
    let (text, error) = match summary {
        Ok(s) => (Some(s), None),
        Err(e) => (None, Some(e)),
    };
    let stored = sqlx::query!(
        "update runs set summary = $2, summary_error = $3, summary_pending = false,
                summary_lease_expires_at = null, updated_at = now()
         where id = $1 and summary_pending returning id",
        run.0,
        text,
        error
    )
    .fetch_optional(&mut *conn)
    .await?;
    if stored.is_some() {
        events::append(
            conn,
            NewEvent::new(EventKind::TaskSummarized, format!("task/{run}"))
                .run(run)
                .severity(if error.is_some() {
                    Severity::Warning
                } else {
                    Severity::Info
                })
                .data(json!({ "error": error })),
        )
        .await?;
    }
    Ok(())
}
