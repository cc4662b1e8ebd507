//! Time series of resource use: recording samples, rolling raw samples up into hourly rows,
//! pruning, and reading series for charts.

use crate::domain::ids::{AgentId, WorkerId};
use crate::domain::metrics::{AgentSample, ProcessSample, WorkFigures};
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;

/// Resolution of raw samples, seconds.
pub const RAW_SECS: i32 = 30;
/// Resolution of rolled-up samples, seconds.
pub const HOURLY_SECS: i32 = 3600;

pub async fn record_process(
    db: impl PgExecutor<'_>,
    worker: WorkerId,
    cpu_percent: f32,
    rss_bytes: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"insert into process_samples (worker_id, resolution_secs, at, cpu_percent, rss_bytes)
           values ($1, $2, now(), $3, $4)
           on conflict do nothing"#,
        worker.0,
        RAW_SECS,
        cpu_percent,
        rss_bytes
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Samples the counters of every agent whose counters changed since its last sample (or that
/// has none yet); returns how many were written. Idle fleets write nothing.
pub async fn record_agents(db: impl PgExecutor<'_>) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query!(
        r#"insert into agent_samples (agent_id, resolution_secs, at, tasks_completed,
                                      tasks_failed, tokens_used, busy_ms)
           select a.id, $1, now(), a.tasks_completed, a.tasks_failed, a.tokens_used, a.busy_ms
           from agents a
           left join lateral (
               select s.tasks_completed, s.tasks_failed, s.tokens_used, s.busy_ms
               from agent_samples s where s.agent_id = a.id
               order by s.at desc limit 1) last on true
           where last.tasks_completed is null
              or (last.tasks_completed, last.tasks_failed, last.tokens_used, last.busy_ms)
                 is distinct from (a.tasks_completed, a.tasks_failed, a.tokens_used, a.busy_ms)
           on conflict do nothing"#,
        RAW_SECS
    )
    .execute(db)
    .await?
    .rows_affected())
}

/// Rolls the oldest hour of raw samples older than `raw_hours` into hourly rows (mean CPU and
/// peak memory per process; the last counters per agent) and deletes the raw rows, in one short
/// transaction on the caller's connection. Returns how many raw rows it replaced (0: nothing
/// left to roll up).
pub async fn downsample_oldest_hour(
    conn: &mut PgConnection,
    raw_hours: i64,
) -> Result<u64, sqlx::Error> {
    let horizon = sqlx::query_scalar!(
        r#"select date_bin('1 hour', now() - make_interval(hours => $1::int),
                           timestamptz '2000-01-01') as "horizon!""#,
        i32::try_from(raw_hours).unwrap_or(i32::MAX)
    )
    .fetch_one(&mut *conn)
    .await?;
    let oldest = sqlx::query_scalar!(
        r#"select least(
               (select min(at) from process_samples where resolution_secs = $1 and at < $2),
               (select min(at) from agent_samples where resolution_secs = $1 and at < $2))"#,
        RAW_SECS,
        horizon
    )
    .fetch_one(&mut *conn)
    .await?;
    let Some(oldest) = oldest else {
        return Ok(0);
    };
    let hour = sqlx::query_scalar!(
        r#"select date_bin('1 hour', $1::timestamptz, timestamptz '2000-01-01') as "hour!""#,
        oldest
    )
    .fetch_one(&mut *conn)
    .await?;
    let end = hour + time::Duration::hours(1);
    sqlx::query!(
        r#"insert into process_samples (worker_id, resolution_secs, at, cpu_percent, rss_bytes)
           select worker_id, $1, $3, avg(cpu_percent)::real, max(rss_bytes)
           from process_samples
           where resolution_secs = $2 and at >= $3 and at < $4
           group by worker_id
           on conflict (worker_id, resolution_secs, at) do update
               set cpu_percent = excluded.cpu_percent,
                   rss_bytes = greatest(process_samples.rss_bytes, excluded.rss_bytes)"#,
        HOURLY_SECS,
        RAW_SECS,
        hour,
        end
    )
    .execute(&mut *conn)
    .await?;
    // Counters only grow, so the hour's last sample holds its maxima; it keeps its own time.
    sqlx::query!(
        r#"insert into agent_samples (agent_id, resolution_secs, at, tasks_completed,
                                      tasks_failed, tokens_used, busy_ms)
           select distinct on (agent_id) agent_id, $1, at, tasks_completed, tasks_failed,
                  tokens_used, busy_ms
           from agent_samples
           where resolution_secs = $2 and at >= $3 and at < $4
           order by agent_id, at desc
           on conflict do nothing"#,
        HOURLY_SECS,
        RAW_SECS,
        hour,
        end
    )
    .execute(&mut *conn)
    .await?;
    let p = sqlx::query!(
        "delete from process_samples where resolution_secs = $1 and at >= $2 and at < $3",
        RAW_SECS,
        hour,
        end
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let a = sqlx::query!(
        "delete from agent_samples where resolution_secs = $1 and at >= $2 and at < $3",
        RAW_SECS,
        hour,
        end
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(p + a)
}

/// Deletes up to `batch` samples of each table older than `keep_days`; returns how many.
pub async fn prune(
    conn: &mut PgConnection,
    keep_days: i64,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    let days = i32::try_from(keep_days).unwrap_or(i32::MAX);
    let p = sqlx::query!(
        r#"delete from process_samples where ctid in (
               select ctid from process_samples
               where at < now() - make_interval(days => $1) limit $2)"#,
        days,
        batch
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let a = sqlx::query!(
        r#"delete from agent_samples where ctid in (
               select ctid from agent_samples
               where at < now() - make_interval(days => $1) limit $2)"#,
        days,
        batch
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(p + a)
}

/// An agent's samples since `since`, oldest first (raw and hourly rows never overlap: the
/// roll-up replaces the raw rows it summarises).
pub async fn agent_series(
    db: impl PgExecutor<'_>,
    agent: AgentId,
    since: OffsetDateTime,
) -> Result<Vec<AgentSample>, sqlx::Error> {
    sqlx::query_as!(
        AgentSample,
        r#"select at, tasks_completed, tasks_failed, tokens_used, busy_ms
           from agent_samples where agent_id = $1 and at >= $2
           order by at"#,
        agent.0,
        since
    )
    .fetch_all(db)
    .await
}

/// Every process's samples since `since`, oldest first.
pub async fn process_series(
    db: impl PgExecutor<'_>,
    since: OffsetDateTime,
) -> Result<Vec<ProcessSample>, sqlx::Error> {
    Ok(sqlx::query!(
        r#"select s.worker_id, w.hostname, w.pid, s.at, s.cpu_percent, s.rss_bytes
           from process_samples s join workers w on w.id = s.worker_id
           where s.at >= $1
           order by s.at"#,
        since
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(|r| ProcessSample {
        worker_id: WorkerId(r.worker_id),
        label: format!("{}:{}", r.hostname, r.pid),
        at: r.at,
        cpu_percent: r.cpu_percent,
        rss_bytes: r.rss_bytes,
    })
    .collect())
}

/// Open subtasks right now: ready for an agent, waiting on prerequisites, assigned or running.
pub struct NodeCounts {
    pub ready: i64,
    pub waiting: i64,
    pub running: i64,
}

pub async fn node_counts(db: impl PgExecutor<'_>) -> Result<NodeCounts, sqlx::Error> {
    sqlx::query_as!(
        NodeCounts,
        r#"select
             count(*) filter (where status = 'queued' and pending_deps = 0) as "ready!",
             count(*) filter (where status = 'queued' and pending_deps > 0) as "waiting!",
             count(*) filter (where status in ('assigned', 'running')) as "running!"
           from nodes where status in ('queued', 'assigned', 'running')"#
    )
    .fetch_one(db)
    .await
}

pub async fn work_figures(db: &sqlx::PgPool) -> Result<WorkFigures, sqlx::Error> {
    let nodes = node_counts(db).await?;
    let tasks_active = sqlx::query_scalar!(
        r#"select count(*) as "n!" from runs where status in ('pending', 'in_progress')"#
    )
    .fetch_one(db)
    .await?;
    let hour = sqlx::query!(
        r#"select count(*) filter (where type = 'subtask.completed') as "completed!",
                  count(*) filter (where type = 'subtask.failed') as "failed!"
           from events
           where at > now() - interval '1 hour'
             and type in ('subtask.completed', 'subtask.failed')"#
    )
    .fetch_one(db)
    .await?;
    Ok(WorkFigures {
        tasks_active,
        ready: nodes.ready,
        waiting: nodes.waiting,
        running: nodes.running,
        completed_last_hour: hour.completed,
        failed_last_hour: hour.failed,
    })
}

/// Subtasks completed and failed per minute since `since`: `(minute, completed, failed)`.
pub async fn throughput(
    db: impl PgExecutor<'_>,
    since: OffsetDateTime,
) -> Result<Vec<(OffsetDateTime, i64, i64)>, sqlx::Error> {
    Ok(sqlx::query!(
        r#"select date_bin('1 minute', at, timestamptz '2000-01-01') as "minute!",
                  count(*) filter (where type = 'subtask.completed') as "completed!",
                  count(*) filter (where type = 'subtask.failed') as "failed!"
           from events
           where at >= $1 and type in ('subtask.completed', 'subtask.failed')
           group by 1 order by 1"#,
        since
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(|r| (r.minute, r.completed, r.failed))
    .collect())
}
