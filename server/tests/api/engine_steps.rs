//! Each engine step (`plan_once`, `daemon_once`, `work_once`) against a fresh database.

use crate::helpers::count;
use app::db::runs;
use app::domain::ids::RunId;
use app::domain::run::RetryPolicy;
use server::engine::{Engine, EngineConfig, Outcome};
use sqlx::PgPool;
use std::time::Duration;

async fn engine(pool: &PgPool) -> Engine {
    app::db::agents::ensure_default_fleet(pool, "simulated", "simulated")
        .await
        .unwrap();
    let config = EngineConfig {
        simulated_latency: Duration::ZERO,
        retry: RetryPolicy {
            base_ms: 1,
            ..RetryPolicy::default()
        },
        ..EngineConfig::default()
    };
    Engine::register(pool.clone(), config).await.unwrap()
}

async fn submit(pool: &PgPool, text: &str) -> RunId {
    let mut conn = pool.acquire().await.unwrap();
    runs::submit(&mut conn, text, 5, None).await.unwrap()
}

async fn statuses(pool: &PgPool, run: RunId) -> Vec<(String, String)> {
    sqlx::query_as("select key, status from nodes where run_id = $1 order by key")
        .bind(run.0)
        .fetch_all(pool)
        .await
        .unwrap()
}

const TEXT: &str = "Scrape the pricing website. Query the sales database, then analyse the trends.";

#[sqlx::test(migrations = "../migrations")]
async fn plan_once_turns_a_pending_task_into_queued_subtasks(pool: PgPool) {
    let e = engine(&pool).await;
    let run = submit(&pool, TEXT).await;
    assert_eq!(e.plan_once().await.unwrap(), Outcome::Worked);
    assert_eq!(
        e.plan_once().await.unwrap(),
        Outcome::Idle,
        "nothing left to plan"
    );
    assert_eq!(
        statuses(&pool, run).await,
        [
            ("s1".into(), "queued".into()),
            ("s2".into(), "queued".into()),
            ("s3".into(), "queued".into())
        ]
    );
    let ready = count(&pool, "select count(*) from nodes where pending_deps = 0").await;
    assert_eq!(ready, 2);
    let status: String = sqlx::query_scalar("select status from runs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "in_progress");
}

#[sqlx::test(migrations = "../migrations")]
async fn daemon_once_assigns_ready_work_to_capable_idle_agents_only(pool: PgPool) {
    let e = engine(&pool).await;
    let run = submit(&pool, TEXT).await;
    e.plan_once().await.unwrap();
    assert_eq!(e.daemon_once().await.unwrap(), Outcome::Worked);
    assert_eq!(
        statuses(&pool, run).await,
        [
            ("s1".into(), "assigned".into()),
            ("s2".into(), "assigned".into()),
            ("s3".into(), "queued".into())
        ]
    );
    let mismatched = count(
        &pool,
        "select count(*) from nodes n join agents a on a.id = n.agent_id
         where not (n.required_capabilities <@ a.capabilities)",
    )
    .await;
    assert_eq!(mismatched, 0);
    let working = count(&pool, "select count(*) from agents where state = 'working'").await;
    assert_eq!(working, 2);
    assert_eq!(
        e.daemon_once().await.unwrap(),
        Outcome::Idle,
        "the dependent is not ready yet"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn an_idle_specialist_finds_its_work_behind_a_backlog_it_cannot_do(pool: PgPool) {
    let e = engine(&pool).await;
    // Forty scraping subtasks wait, older than the one database subtask; one idle agent can
    // scrape, two others can query databases.
    let backlog = (1..=40)
        .map(|i| format!("Scrape the website page {i}."))
        .collect::<String>();
    submit(&pool, &backlog).await;
    e.plan_once().await.unwrap();
    let run = submit(&pool, "Query the sales database for the totals.").await;
    e.plan_once().await.unwrap();
    assert_eq!(e.daemon_once().await.unwrap(), Outcome::Worked);
    assert_eq!(
        statuses(&pool, run).await,
        [("s1".into(), "assigned".into())]
    );
    let scraping = count(
        &pool,
        "select count(*) from nodes where status = 'assigned'
         and 'web_scraping' = any(required_capabilities)",
    )
    .await;
    assert_eq!(scraping, 1, "the scraping agent took one of its own");
}

#[sqlx::test(migrations = "../migrations")]
async fn the_daemon_probe_sees_work_only_for_an_idle_agent_and_a_ready_node(pool: PgPool) {
    let e = engine(&pool).await;
    let probe = || async {
        let running = app::db::runs::in_progress(&pool).await.unwrap();
        app::db::queue::daemon_has_work(&pool, &running)
            .await
            .unwrap()
    };
    assert!(!probe().await, "idle agents, nothing submitted");
    submit(&pool, TEXT).await;
    e.plan_once().await.unwrap();
    assert!(probe().await, "two ready subtasks and idle agents");
    e.daemon_once().await.unwrap();
    assert!(
        !probe().await,
        "three agents are idle, but the one subtask left waits for its prerequisite"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn work_once_runs_assigned_nodes_releases_dependents_and_completes_the_run(pool: PgPool) {
    let e = engine(&pool).await;
    let run = submit(&pool, TEXT).await;
    e.plan_once().await.unwrap();
    e.daemon_once().await.unwrap();
    assert_eq!(e.work_once().await.unwrap(), Outcome::Worked);
    let s3_pending: i32 = sqlx::query_scalar("select pending_deps from nodes where key = 's3'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(s3_pending, 0, "its prerequisite completed");
    assert_eq!(e.daemon_once().await.unwrap(), Outcome::Worked);
    assert_eq!(e.work_once().await.unwrap(), Outcome::Worked);
    assert_eq!(e.work_once().await.unwrap(), Outcome::Idle);
    // The daemon's next pass sees the last completion committed and finishes the run.
    assert_eq!(e.daemon_once().await.unwrap(), Outcome::Idle);
    let (status, result): (String, Option<String>) =
        sqlx::query_as("select status, result from runs where id = $1")
            .bind(run.0)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "completed");
    assert!(result.unwrap().contains("## s3"));
    let idle = count(
        &pool,
        "select count(*) from agents where state = 'idle' and current_node is null",
    )
    .await;
    assert_eq!(idle, 5);
}

/// Rows of `nodes` updated on `conn` and not yet counted in the shared statistics: it may
/// include earlier transactions of the session, so take the difference within a transaction.
async fn node_writes(conn: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar("select n_tup_upd from pg_stat_xact_user_tables where relname = 'nodes'")
        .fetch_one(conn)
        .await
        .unwrap()
}

/// Runs `TEXT` up to its two first subtasks running, then, in one transaction, records s2's
/// completion and an assignment pass; with `pause_all`, every agent pauses first (the one
/// finishing s2 then stays paused, so nobody can take s3). Returns s3's (status, pending_deps,
/// ready_at is set) and how many node rows the transaction wrote.
async fn complete_s2_then_assign(
    pool: &PgPool,
    e: &Engine,
    pause_all: bool,
) -> ((String, i32, bool), i64) {
    use app::db::queue::{self, Success};
    let run = submit(pool, TEXT).await;
    e.plan_once().await.unwrap();
    e.daemon_once().await.unwrap();
    let claimed = e.claim(10).await.unwrap();
    let s2 = claimed.into_iter().find(|n| n.key == "s2").unwrap();
    if pause_all {
        sqlx::query("update agents set state = 'paused'")
            .execute(pool)
            .await
            .unwrap();
    }
    let mut tx = pool.begin().await.unwrap();
    let before = node_writes(&mut tx).await;
    let done = queue::complete_many(
        &mut tx,
        &[Success {
            node: s2,
            output: "the sales rows".into(),
            tokens: 3,
            busy_ms: 1,
        }],
    )
    .await
    .unwrap();
    assert!(done.stale.is_empty());
    assert_eq!(done.released.len(), 1, "s3 has no prerequisite left");
    let capabilities = queue::AgentCapabilities::default();
    queue::assign_ready(&mut tx, 256, 60.0, None, done.released, &capabilities)
        .await
        .unwrap();
    let writes = node_writes(&mut tx).await - before;
    tx.commit().await.unwrap();
    let s3 = sqlx::query_as(
        "select status, pending_deps, ready_at is not null from nodes
         where run_id = $1 and key = 's3'",
    )
    .bind(run.0)
    .fetch_one(pool)
    .await
    .unwrap();
    (s3, writes)
}

#[sqlx::test(migrations = "../migrations")]
async fn a_dependent_released_by_a_completion_is_assigned_in_the_same_write(pool: PgPool) {
    let e = engine(&pool).await;
    let (s3, writes) = complete_s2_then_assign(&pool, &e, false).await;
    assert_eq!(s3, ("assigned".into(), 0, true));
    assert_eq!(writes, 2, "s2 completed and s3 assigned, one write each");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_released_dependent_no_agent_can_take_is_left_ready(pool: PgPool) {
    let e = engine(&pool).await;
    let (s3, writes) = complete_s2_then_assign(&pool, &e, true).await;
    assert_eq!(s3, ("queued".into(), 0, true));
    assert_eq!(writes, 2, "s2 completed and s3 released, one write each");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_stale_completion_is_refused_and_the_node_completes_exactly_once(pool: PgPool) {
    let first = engine(&pool).await;
    let second = Engine::register(pool.clone(), first.config.as_ref().clone())
        .await
        .unwrap();
    submit(&pool, "Analyse the quarterly numbers.").await;
    first.plan_once().await.unwrap();
    first.daemon_once().await.unwrap();
    let stale = first.claim(10).await.unwrap();
    assert_eq!(stale.len(), 1);
    // The first worker goes silent: its lease runs out and the daemon re-queues and reassigns.
    sqlx::query("update nodes set lease_expires_at = now() - interval '1 second'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(second.daemon_once().await.unwrap(), Outcome::Worked);
    // The silent worker wakes up and reports: refused, because the claim is no longer its own.
    for node in stale {
        first.execute(node).await.unwrap();
    }
    let completed = count(
        &pool,
        "select count(*) from attempts where outcome = 'completed'",
    )
    .await;
    assert_eq!(completed, 0);
    assert_eq!(second.work_once().await.unwrap(), Outcome::Worked);
    let outcomes: Vec<(i32, Option<String>)> =
        sqlx::query_as("select attempt, outcome from attempts order by attempt")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        outcomes,
        [(1, Some("lost".into())), (2, Some("completed".into()))]
    );
    let events: Vec<String> =
        sqlx::query_scalar("select type from events where type like 'agent.%' order by seq")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(
        events.contains(&"agent.unresponsive".to_owned()),
        "{events:?}"
    );
}

async fn unresponsive_since(pool: &PgPool, agent: uuid::Uuid) -> Option<time::OffsetDateTime> {
    sqlx::query_scalar("select unresponsive_since from agents where id = $1")
        .bind(agent)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn a_rescued_agent_is_unresponsive_until_it_works_again(pool: PgPool) {
    let e = engine(&pool).await;
    submit(&pool, "Analyse the quarterly numbers.").await;
    e.plan_once().await.unwrap();
    e.daemon_once().await.unwrap();
    let claimed = e.claim(10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let agent: uuid::Uuid = sqlx::query_scalar("select agent_id from nodes")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query("update nodes set lease_expires_at = now() - interval '1 second'")
        .execute(&pool)
        .await
        .unwrap();
    // Park the other agents so the rescued one gets the work again.
    sqlx::query("update agents set state = 'paused' where id <> $1")
        .bind(agent)
        .execute(&pool)
        .await
        .unwrap();
    e.daemon_once().await.unwrap();
    let since = unresponsive_since(&pool, agent).await;
    assert!(since.is_some(), "the rescue marks the agent unresponsive");
    let shown = app::db::agents::get(&pool, app::domain::ids::AgentId(agent))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(shown.unresponsive_since, since, "cards read the mark");
    assert_eq!(e.work_once().await.unwrap(), Outcome::Worked);
    e.daemon_once().await.unwrap();
    let since = unresponsive_since(&pool, agent).await;
    assert_eq!(since, None, "running work again clears the mark");
    let health: Vec<String> = sqlx::query_scalar(
        "select type from events where agent_id = $1
           and type in ('agent.unresponsive', 'agent.recovered') order by seq",
    )
    .bind(agent)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(health, ["agent.unresponsive", "agent.recovered"]);
    // Recovery is recorded once, not on every pass.
    e.daemon_once().await.unwrap();
    assert_eq!(
        count(
            &pool,
            "select count(*) from events where type = 'agent.recovered'"
        )
        .await,
        1
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn retention_prunes_only_events_past_the_window_in_batches(pool: PgPool) {
    let e = engine(&pool).await;
    // More old events than one pruning batch holds.
    sqlx::query(
        "insert into events (type, subject, at)
         select 'test.old', 'x', now() - interval '31 days' from generate_series(1, 12000)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let recent_before = count(
        &pool,
        "select count(*) from events where at > now() - interval '1 day'",
    )
    .await;
    assert!(recent_before > 0, "the fleet's spawn events are recent");
    assert_eq!(e.retention_once().await.unwrap(), 12_000);
    assert_eq!(
        count(&pool, "select count(*) from events where type = 'test.old'").await,
        0
    );
    let recent_after = count(
        &pool,
        "select count(*) from events where at > now() - interval '1 day'",
    )
    .await;
    assert_eq!(recent_after, recent_before);
    assert_eq!(e.retention_once().await.unwrap(), 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_heartbeat_skips_rows_a_report_holds_instead_of_waiting_for_them(pool: PgPool) {
    let e = engine(&pool).await;
    submit(&pool, TEXT).await;
    e.plan_once().await.unwrap();
    e.daemon_once().await.unwrap();
    let claimed = e.claim(10).await.unwrap();
    assert_eq!(claimed.len(), 2, "the two ready subtasks run");
    sqlx::query("update nodes set lease_expires_at = now() where status = 'running'")
        .execute(&pool)
        .await
        .unwrap();
    // A report holds the first node's row (as it does while recording its outcome).
    let mut report = pool.begin().await.unwrap();
    sqlx::query("select 1 from nodes where id = $1 for update")
        .bind(claimed[0].id.0)
        .execute(&mut *report)
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    // Waiting for the held row would block here until the report ends; it must not.
    tokio::time::timeout(
        Duration::from_secs(5),
        app::db::queue::heartbeat(
            &mut conn,
            e.worker_id,
            60.0,
            &claimed.iter().map(|c| c.id).collect::<Vec<_>>(),
        ),
    )
    .await
    .expect("the heartbeat did not wait for the report")
    .unwrap();
    let renewed: Vec<uuid::Uuid> = sqlx::query_scalar(
        "select id from nodes where status = 'running' and lease_expires_at > now() + interval '30 seconds'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert_eq!(renewed, [claimed[1].id.0], "the other lease was renewed");
    report.rollback().await.unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn a_heartbeat_renews_only_the_nodes_that_still_have_a_runner(pool: PgPool) {
    let e = engine(&pool).await;
    submit(&pool, TEXT).await;
    e.plan_once().await.unwrap();
    e.daemon_once().await.unwrap();
    let claimed = e.claim(10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    sqlx::query("update nodes set lease_expires_at = now() where status = 'running'")
        .execute(&pool)
        .await
        .unwrap();
    // Only the first still runs here (the second's runner died): only it is renewed.
    let mut conn = pool.acquire().await.unwrap();
    let renewed = app::db::queue::heartbeat(&mut conn, e.worker_id, 60.0, &[claimed[0].id])
        .await
        .unwrap();
    assert_eq!(renewed, [claimed[0].id]);
    let stale: Vec<uuid::Uuid> = sqlx::query_scalar(
        "select id from nodes where status = 'running' and lease_expires_at <= now()",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert_eq!(stale, [claimed[1].id.0], "left to expire and be rescued");
}
