//! Resource samples, their hourly roll-up and pruning, against a fresh database.

use crate::helpers::count;
use app::db::metrics;
use app::domain::ids::AgentId;
use app::domain::metrics::agent_intervals;
use server::engine::{Engine, EngineConfig, Outcome, ProcessSampler};
use sqlx::PgPool;
use std::time::Duration;

async fn engine(pool: &PgPool) -> Engine {
    app::db::agents::ensure_default_fleet(pool, "simulated", "simulated")
        .await
        .unwrap();
    let config = EngineConfig {
        simulated_latency: Duration::ZERO,
        ..EngineConfig::default()
    };
    Engine::register(pool.clone(), config).await.unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn samples_hold_the_process_and_only_agents_whose_counters_moved(pool: PgPool) {
    let e = engine(&pool).await;
    let mut sampler = ProcessSampler::new();
    assert_eq!(
        e.sample_once(&mut sampler).await.unwrap(),
        5,
        "a baseline per agent"
    );
    assert_eq!(
        e.sample_once(&mut sampler).await.unwrap(),
        0,
        "nothing moved"
    );
    let (workers, rss): (i64, i64) =
        sqlx::query_as("select count(distinct worker_id), min(rss_bytes) from process_samples")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(workers, 1);
    assert!(rss > 1_000_000, "a live process has resident memory: {rss}");

    let mut conn = pool.acquire().await.unwrap();
    app::db::runs::submit(&mut conn, "Analyse the quarterly numbers.", 5, None)
        .await
        .unwrap();
    drop(conn);
    e.plan_once().await.unwrap();
    e.daemon_once().await.unwrap();
    assert_eq!(e.work_once().await.unwrap(), Outcome::Worked);
    let worker: uuid::Uuid =
        sqlx::query_scalar("select agent_id from nodes where status = 'completed'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        e.sample_once(&mut sampler).await.unwrap(),
        1,
        "only the agent that worked"
    );

    let since = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let series = metrics::agent_series(&pool, AgentId(worker), since)
        .await
        .unwrap();
    assert_eq!(series.len(), 2);
    let done: i64 = agent_intervals(&series).iter().map(|i| i.completed).sum();
    assert_eq!(done, 1);
    let processes = metrics::process_series(&pool, since).await.unwrap();
    assert_eq!(processes.len(), 3);
    assert!(
        processes[0]
            .label
            .ends_with(&format!(":{}", std::process::id()))
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn old_raw_samples_roll_up_hourly_and_samples_past_retention_go(pool: PgPool) {
    let e = engine(&pool).await;
    let worker = e.worker_id.0;
    // Two full hours of raw samples two days ago (CPU 10 then 30 in the first hour, memory
    // peaking at 900), ten minutes of recent ones, and some past the retention window.
    sqlx::query(
        "insert into process_samples (worker_id, resolution_secs, at, cpu_percent, rss_bytes)
         select $1, 30, date_bin('1 hour', now() - interval '2 days', timestamptz '2000-01-01')
                        + make_interval(secs => i * 30),
                case when i < 120 then 10 else 30 end, 100 + i * 5
         from generate_series(0, 239) i
         union all
         select $1, 30, now() - make_interval(secs => i * 30), 50, 100
         from generate_series(1, 20) i
         union all
         select $1, 3600, now() - make_interval(days => 40, hours => i), 1, 1
         from generate_series(1, 5) i",
    )
    .bind(worker)
    .execute(&pool)
    .await
    .unwrap();
    let agent: uuid::Uuid = sqlx::query_scalar("select id from agents order by name limit 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query(
        "insert into agent_samples (agent_id, resolution_secs, at, tasks_completed, tasks_failed,
                                    tokens_used, busy_ms)
         select $1, 30, date_bin('1 hour', now() - interval '2 days', timestamptz '2000-01-01')
                        + make_interval(secs => i * 30), i, 0, i * 10, i * 100
         from generate_series(0, 239) i",
    )
    .bind(agent)
    .execute(&pool)
    .await
    .unwrap();

    // 5 pruned + 240 process and 240 agent raw rows replaced.
    assert_eq!(e.retention_once().await.unwrap(), 5 + 240 + 240);
    let hourly: Vec<(f32, i64)> = sqlx::query_as(
        "select cpu_percent, rss_bytes from process_samples
         where resolution_secs = 3600 order by at",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(hourly.len(), 2);
    assert!((hourly[0].0 - 10.0).abs() < 1e-3 && hourly[0].1 == 100 + 119 * 5);
    assert!((hourly[1].0 - 30.0).abs() < 1e-3 && hourly[1].1 == 100 + 239 * 5);
    assert_eq!(
        count(
            &pool,
            "select count(*) from process_samples where resolution_secs = 30"
        )
        .await,
        20,
        "recent raw samples stay"
    );
    let agent_hourly: Vec<(i64, i64)> = sqlx::query_as(
        "select tasks_completed, tokens_used from agent_samples
         where resolution_secs = 3600 order by at",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        agent_hourly,
        [(119, 1190), (239, 2390)],
        "each hour's last counters"
    );
    assert_eq!(e.retention_once().await.unwrap(), 0, "nothing left to do");
}
