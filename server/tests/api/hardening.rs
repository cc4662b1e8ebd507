//! Regression tests of the hardening: one bad input never stops the engine, no event is ever
//! skipped, a cancel reaches running work, every loop is supervised.

use crate::helpers::*;
use crate::stream::{connect, token};
use app::db::events::{NewEvent, append};
use app::domain::event::EventKind;
use futures_util::StreamExt;
use serde_json::Value;
use sqlx::PgPool;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const FAST: [(&str, &str); 2] = [
    ("FLOTILLA_SIM_LATENCY_MS", "0"),
    ("FLOTILLA_RETRY_BASE_MS", "1"),
];

#[sqlx::test(migrations = "../migrations")]
async fn a_kelvin_sign_in_a_task_neither_stops_planning_nor_the_tasks_after_it(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), &FAST).await;
    let c = app.admin().await;
    // U+212A lowercases to one byte from three: slicing at an offset found in a lowercased
    // copy panicked and killed the planner for everyone.
    let poison = app
        .submit(&c, "Measure \u{212A}, then write the report about it")
        .await;
    let normal = app.submit(&c, "Summarise the quarterly figures.").await;
    let poison = app.finished(&c, &poison).await;
    assert_eq!(poison["status"], "completed", "{poison:#}");
    assert_eq!(poison["subtasks"].as_array().unwrap().len(), 2);
    assert_eq!(subtask(&poison, "s1")["description"], "Measure \u{212A}");
    assert_eq!(app.finished(&c, &normal).await["status"], "completed");
    // Every event the engine wrote is of a kind the one enum knows.
    let kinds: Vec<String> = sqlx::query_scalar("select distinct type from events")
        .fetch_all(&pool)
        .await
        .unwrap();
    for k in kinds {
        assert!(k.parse::<EventKind>().is_ok(), "unknown event type {k}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_task_whose_planning_keeps_dying_falls_back_then_fails_across_restarts(pool: PgPool) {
    // As if three planners had died on it (each restart re-claims it first).
    let app = spawn_app_with(pool.clone(), &[("FLOTILLA_ENGINE", "off")]).await;
    let c = app.admin().await;
    let fallen = app.submit(&c, "Scrape the pricing website please.").await;
    let failed = app.submit(&c, "Query the sales database please.").await;
    sqlx::query("update runs set planning_attempts = 3 where id = $1::uuid")
        .bind(&fallen)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("update runs set planning_attempts = 4 where id = $1::uuid")
        .bind(&failed)
        .execute(&pool)
        .await
        .unwrap();
    let engine = spawn_app_with(pool.clone(), &FAST).await;
    let fallen = engine.finished(&c, &fallen).await;
    assert_eq!(fallen["status"], "completed");
    assert_eq!(fallen["planned_by"], "fallback", "{fallen:#}");
    assert!(
        fallen["plan_note"]
            .as_str()
            .unwrap()
            .contains("did not finish in 3 attempts")
    );
    let failed = engine.finished(&c, &failed).await;
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("could not be planned")
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_runner_panic_is_a_failed_attempt_that_gives_back_its_slot_and_agent(pool: PgPool) {
    // One slot: the task after the panic can run only if the slot came back.
    let app = spawn_app_with(
        pool.clone(),
        &[
            ("FLOTILLA_SIM_LATENCY_MS", "0"),
            ("FLOTILLA_RETRY_BASE_MS", "1"),
            ("FLOTILLA_RETRY_MAX_ATTEMPTS", "2"),
            ("FLOTILLA_WORKER_SLOTS", "1"),
        ],
    )
    .await;
    let c = app.admin().await;
    let id = app.submit(&c, "Summarise the numbers [panic]").await;
    let task = app.finished(&c, &id).await;
    assert_eq!(task["status"], "failed", "{task:#}");
    let s1 = subtask(&task, "s1");
    assert!(s1["error"].as_str().unwrap().contains("panicked"), "{s1}");
    let failed = count(
        &pool,
        "select count(*) from attempts where outcome = 'failed' and error like '%panicked%'",
    )
    .await;
    assert_eq!(
        failed, 2,
        "each attempt failed once, the retry policy applied"
    );
    let next = app.submit(&c, "Summarise the other numbers.").await;
    assert_eq!(app.finished(&c, &next).await["status"], "completed");
    assert_eq!(
        count(&pool, "select count(*) from agents where state <> 'idle'").await,
        0
    );
}

/// Event seqs from a stream until `n` have come, skipping the `stream.ready` marker.
async fn seqs(ws: &mut crate::stream::Ws, n: usize) -> Vec<i64> {
    let mut out = Vec::new();
    while out.len() < n {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("an event within 30 s")
            .expect("stream open")
            .unwrap();
        if let Message::Text(t) = msg {
            let e: Value = serde_json::from_str(&t).unwrap();
            if e["type"] != "stream.ready" {
                out.push(e["seq"].as_i64().unwrap());
            }
        }
    }
    out
}

#[sqlx::test(migrations = "../migrations")]
async fn an_event_that_commits_ten_seconds_late_reaches_streams_pagers_and_resumers(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), &[("FLOTILLA_ENGINE", "off")]).await;
    let c = app.admin().await;
    app.settle_events(&c).await;
    let bearer = format!("Bearer {}", token(&app).await);
    app.settle_events(&c).await;
    let mut live = connect(&app, "", &[("Authorization", &bearer)])
        .await
        .unwrap();
    let mut slow = pool.begin().await.unwrap();
    let late = append(&mut slow, NewEvent::new(EventKind::Marker, "late".into()))
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let quick = append(&mut conn, NewEvent::new(EventKind::Marker, "quick".into()))
        .await
        .unwrap();
    assert!(quick > late);
    // Far beyond any patience timer the hub once had.
    tokio::time::sleep(Duration::from_secs(10)).await;
    slow.commit().await.unwrap();
    let got = seqs(&mut live, 2).await;
    assert_eq!(
        got,
        [late, quick],
        "both, the late one first (release order)"
    );
    let page = wait_for(
        &c,
        &app.url(&format!("/api/v1/events?after={}", late - 1)),
        10,
        |b| b["items"].as_array().is_some_and(|i| i.len() == 2),
    )
    .await;
    let paged: Vec<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(paged, got, "the pager agrees with the stream");
    // A client that saw only the late one resumes from it and gets the rest, once.
    let mut resumed = connect(
        &app,
        &format!("?after={late}"),
        &[("Authorization", &bearer)],
    )
    .await
    .unwrap();
    assert_eq!(seqs(&mut resumed, 1).await, [quick]);
    let more = append(&mut conn, NewEvent::new(EventKind::Marker, "after".into()))
        .await
        .unwrap();
    assert_eq!(seqs(&mut resumed, 1).await, [more], "nothing twice");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_cancel_stops_a_model_call_that_never_answers_within_a_second(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), &FAST).await;
    let engine = app.engine.clone().unwrap();
    let c = app.admin().await;
    let id = app.submit(&c, "Summarise the answer [hang]").await;
    let url = app.url(&format!("/api/v1/tasks/{id}"));
    wait_for(&c, &url, 20, |t| {
        t["subtasks"][0]["status"].as_str() == Some("running")
    })
    .await;
    // Let the call reach the model.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let calls = engine.providers.simulated_calls();
    let cancelled_at = Instant::now();
    let res = c
        .post(app.url(&format!("/api/v1/tasks/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    loop {
        let busy = count(&pool, "select count(*) from agents where state <> 'idle'").await;
        if busy == 0 && engine.running_nodes() == 0 {
            break;
        }
        assert!(
            cancelled_at.elapsed() < Duration::from_secs(1),
            "the agent is idle and the call stopped within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        engine.providers.simulated_calls(),
        calls,
        "no further model call for it"
    );
    assert_eq!(
        count(
            &pool,
            "select count(*) from attempts where outcome = 'cancelled'"
        )
        .await,
        1
    );
    assert_eq!(count(&pool, "select count(*) from attempts").await, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn every_loop_killed_by_a_panic_restarts_and_readyz_says_so(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), &FAST).await;
    let c = app.admin().await;
    let loops = [
        "planner",
        "daemon",
        "advancer",
        "worker",
        "reporter",
        "heartbeat",
        "listener",
        "notifier",
        "hub",
        "access",
        "retention",
        "sampler",
        "breakers",
        "providers",
        "aggregator",
    ];
    for name in loops {
        assert!(app.supervisor.inject_panic(name), "{name} is supervised");
        let ready = wait_for(&c, &app.url("/readyz"), 20, |b| {
            b["loops"][name]["restarts"].as_u64() == Some(1) && b["loops"][name]["up"] == true
        })
        .await;
        assert_eq!(ready["status"], "ready");
        assert!(
            ready["loops"][name]["last_error"]
                .as_str()
                .unwrap()
                .contains("injected fault"),
            "{ready:#}"
        );
    }
    let metrics = c
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in loops {
        assert!(
            metrics.contains(&format!(
                "flotilla_loop_restarts_total{{loop=\"{name}\"}} 1"
            )),
            "{name} in {metrics}"
        );
        assert!(metrics.contains(&format!("flotilla_loop_up{{loop=\"{name}\"}} 1")));
    }
    assert_eq!(
        count(&pool, "select count(*) from events where type = 'engine.loop_restarted' and severity = 'critical'").await,
        i64::try_from(loops.len()).unwrap()
    );
    // The engine still works after all of that.
    let id = app
        .submit(&c, "Summarise the figures. Then chart them.")
        .await;
    assert_eq!(app.finished(&c, &id).await["status"], "completed");
}
