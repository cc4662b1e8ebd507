//! REST load benchmark, as the seed plans state it: 10,000 tasks in the database and 50
//! concurrent clients mixing submits, filtered lists and the detail of a 100-subtask task,
//! with p50/p95/p99 per request kind beside the seed's bar (p95 < 200 ms; our aim is 20 ms) and
//! beside `pgbench -N` at the same 50 connections, measured in the same run.
//!
//! Run: `cargo bench -p server --bench rest` (about a minute).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use app::domain::account::UserId;
use app::domain::plan::{PlanDraft, SubtaskDraft, ValidatedPlan};
use secrecy::ExposeSecret;
use server::embedded_pg::EmbeddedPostgres;
use server::startup::{Application, Database};
use std::time::{Duration, Instant};

const TASKS: i64 = 10_000;
const CLIENTS: u32 = 50;
const SECS: u64 = 20;
const STATUSES: [&str; 5] = ["pending", "in_progress", "completed", "failed", "cancelled"];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::with_postgres("rest-bench", |pg| async move {
        let result = run(&pg).await;
        (pg, result)
    })
    .await
}

async fn run(pg: &EmbeddedPostgres) -> anyhow::Result<()> {
    let url = pg.url(server::embedded_pg::APP_DATABASE);
    let url = url.expose_secret().to_owned();
    let config = server::config::Config::from_lookup(|key| match key {
        "DATABASE_URL" => Some(url.clone()),
        "FLOTILLA_ADDR" => Some("127.0.0.1:0".into()),
        // The REST layer alone: no planner picks up the submitted tasks.
        "FLOTILLA_ENGINE" => Some("off".into()),
        "FLOTILLA_ADMIN_PASSWORD" => Some("bench admin password".into()),
        "FLOTILLA_LOG" => Some("off".into()),
        "FLOTILLA_DB_POOL" => Some("32".into()),
        _ => None,
    })?;
    let db = Database::connect(&config).await?;
    let pool = db.pool.clone();
    let app = Application::build(config, db).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let admin: uuid::Uuid = sqlx::query_scalar("select id from users limit 1")
        .fetch_one(&pool)
        .await?;
    let token = app::db::tokens::create(&pool, UserId(admin), "bench")
        .await?
        .token;

    // 10,000 tasks across every status, a second apart, and one task of 100 subtasks.
    sqlx::query(
        "insert into runs (id, kind, description, priority, status, created_by, created_at)
         select gen_random_uuid(), 'task', 'benchmark task number ' || i, i % 11,
                (array['pending','in_progress','completed','failed','cancelled'])[1 + i % 5],
                $1, now() - i * interval '1 second'
         from generate_series(1, $2) i",
    )
    .bind(admin)
    .bind(TASKS)
    .execute(&pool)
    .await?;
    let subtasks = (0..100)
        .map(|i| SubtaskDraft {
            key: format!("s{i}"),
            description: format!("step {i} of the large task"),
            required_capabilities: vec!["data_analysis".into()],
            // Ten layers of ten, each node after one of the layer before.
            depends_on: if i >= 10 {
                vec![format!("s{}", i - 10)]
            } else {
                vec![]
            },
            priority: 5,
        })
        .collect();
    let plan = ValidatedPlan::parse(PlanDraft { subtasks }, &app::domain::agent::CAPABILITIES)?;
    let mut tx = pool.begin().await?;
    let big = app::db::runs::submit(&mut tx, "benchmark: a task of 100 subtasks", 5, None).await?;
    app::db::runs::store_plan(&mut tx, big, &plan, "benchmark", None).await?;
    tx.commit().await?;
    sqlx::query("analyze").execute(&pool).await?;

    let (pgbench, bench_url) = common::pgbench(pg).await?;
    println!(
        "Flotilla REST load benchmark — {TASKS} tasks stored, {CLIENTS} clients for {SECS} s,"
    );
    println!(
        "of every 10 requests: 2 submits, 4 filtered lists (50 a page), 4 details of a 100-subtask task.\n"
    );
    let pg_ms = common::pgbench_figure(
        &pgbench,
        bench_url.expose_secret(),
        CLIENTS,
        10,
        "latency average = ",
    )
    .await?;

    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (base, token) = (base.clone(), token.clone());
            tokio::spawn(async move { client(c, &base, &token, big.0, started).await })
        })
        .collect();
    let mut by_kind: [Vec<f64>; 3] = Default::default();
    let mut errors = 0;
    for c in clients {
        let (samples, errs) = c.await??;
        errors += errs;
        for (all, mine) in by_kind.iter_mut().zip(samples) {
            all.extend(mine);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total: usize = by_kind.iter().map(Vec::len).sum();

    println!(
        "{:<30} {:>8} {:>8} {:>8} {:>8}",
        "", "p50 ms", "p95 ms", "p99 ms", "count"
    );
    let mut all = Vec::new();
    for (name, samples) in [
        "submit (POST /tasks)",
        "list (GET /tasks?status=)",
        "detail (GET /tasks/{id})",
    ]
    .iter()
    .zip(by_kind.iter_mut())
    {
        all.extend_from_slice(samples);
        row(name, samples);
    }
    row("all requests", &mut all);
    println!(
        "\n{total} requests in {elapsed:.1} s ({:.0} req/s), {errors} errors.",
        total as f64 / elapsed
    );
    println!(
        "Baseline: one pgbench -N transaction at {CLIENTS} connections took {pg_ms:.2} ms on average this minute."
    );
    println!("Targets: p95 < 200 ms (the seed's bar); our aim p95 < 20 ms.");
    Ok(())
}

fn row(name: &str, samples: &mut [f64]) {
    samples.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        samples
            .get(((samples.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "{name:<30} {:>8.2} {:>8.2} {:>8.2} {:>8}",
        pick(0.5),
        pick(0.95),
        pick(0.99),
        samples.len()
    );
}

/// One client's loop until the time is up: latencies in ms per kind, and the non-2xx count.
async fn client(
    c: u32,
    base: &str,
    token: &str,
    big: uuid::Uuid,
    started: Instant,
) -> anyhow::Result<([Vec<f64>; 3], usize)> {
    server::install_tls_provider();
    let http = reqwest::Client::new();
    let mut samples: [Vec<f64>; 3] = Default::default();
    let mut errors = 0;
    let mut i: usize = c as usize;
    while started.elapsed() < Duration::from_secs(SECS) {
        let (kind, req) = match i % 10 {
            0 | 5 => (
                0,
                http.post(format!("{base}/api/v1/tasks"))
                    .json(&serde_json::json!({
                        "description": format!("load test task {c}-{i}: summarise the report"),
                    })),
            ),
            1 | 3 | 6 | 8 => (2, http.get(format!("{base}/api/v1/tasks/{big}"))),
            _ => (
                1,
                http.get(format!(
                    "{base}/api/v1/tasks?status={}&limit=50",
                    STATUSES[i % STATUSES.len()]
                )),
            ),
        };
        let t = Instant::now();
        let res = req.bearer_auth(token).send().await?;
        let ok = res.status().is_success();
        res.bytes().await?;
        samples[kind].push(t.elapsed().as_secs_f64() * 1000.0);
        if !ok {
            errors += 1;
        }
        i += 1;
    }
    Ok((samples, errors))
}
