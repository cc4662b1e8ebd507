//! Separate `flotilla worker` processes sharing one database: scale-out and crash recovery.

use crate::helpers::*;
use sqlx::PgPool;
use tokio::process::{Child, Command};

/// The URL of this test's database (the `#[sqlx::test]` pool's), for child processes.
fn database_url(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let db = pool
        .connect_options()
        .get_database()
        .expect("database name")
        .to_owned();
    let (server, _) = base.rsplit_once('/').expect("url with a database");
    format!("{server}/{db}")
}

fn worker(pool: &PgPool, env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flotilla"));
    cmd.arg("worker")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url(pool))
        .env("FLOTILLA_DATA_DIR", crate::helpers::test_data_dir())
        .env(
            "FLOTILLA_LOG",
            std::env::var("TEST_LOG").unwrap_or_else(|_| "error".into()),
        )
        .env("FLOTILLA_HEARTBEAT_SECS", "0.3")
        .env("FLOTILLA_LEASE_SECS", "2")
        .env("FLOTILLA_DB_POOL", "6")
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("worker starts")
}

#[sqlx::test(migrations = false)]
async fn two_worker_processes_share_the_work(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), &[("FLOTILLA_ENGINE", "off")]).await;
    let opts = [
        ("FLOTILLA_SIM_LATENCY_MS", "300"),
        ("FLOTILLA_WORKER_SLOTS", "1"),
    ];
    let _a = worker(&pool, &opts);
    let _b = worker(&pool, &opts);
    let c = app.admin().await;
    let id = app
        .submit(
            &c,
            "Analyse sales. Analyse costs. Analyse churn. Analyse growth. Analyse margins. Analyse risk.",
        )
        .await;
    let task = app.finished(&c, &id).await;
    assert_eq!(task["status"], "completed", "{task:#}");
    assert_eq!(task["subtasks"].as_array().unwrap().len(), 6);
    let workers = count(
        &pool,
        "select count(distinct worker_id) from attempts where outcome = 'completed'",
    )
    .await;
    assert_eq!(workers, 2, "both processes ran subtasks");
    let per_node: Vec<i64> = sqlx::query_scalar(
        "select count(*) from attempts where outcome = 'completed' group by node_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(per_node, vec![1; 6], "each subtask completed exactly once");
}

#[sqlx::test(migrations = false)]
async fn a_worker_killed_mid_subtask_loses_it_to_another_and_it_completes_once(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), &[("FLOTILLA_ENGINE", "off")]).await;
    let mut doomed = worker(&pool, &[("FLOTILLA_SIM_LATENCY_MS", "60000")]);
    let c = app.admin().await;
    let id = app.submit(&c, "Analyse the quarterly numbers.").await;
    let url = app.url(&format!("/api/v1/tasks/{id}"));
    wait_for(&c, &url, 20, |t| t["subtasks"][0]["status"] == "running").await;

    doomed.start_kill().expect("SIGKILL");
    doomed.wait().await.expect("reaped");
    // The rescuer's own lease is long: on a loaded machine a 2 s lease of its own could expire
    // too, and the attempt it runs would then (rightly) be lost as well.
    let _rescuer = worker(
        &pool,
        &[
            ("FLOTILLA_SIM_LATENCY_MS", "0"),
            ("FLOTILLA_LEASE_SECS", "30"),
        ],
    );

    let task = app.finished(&c, &id).await;
    assert_eq!(task["status"], "completed", "{task:#}");
    let outcomes: Vec<(i32, Option<String>)> =
        sqlx::query_as("select attempt, outcome from attempts order by attempt")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        outcomes,
        [(1, Some("lost".into())), (2, Some("completed".into()))]
    );
    let requeued = count(
        &pool,
        "select count(*) from events where type = 'subtask.requeued'",
    )
    .await;
    assert_eq!(requeued, 1);
}
