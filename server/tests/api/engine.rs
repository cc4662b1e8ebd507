//! The engine end to end through the REST API, running inside the app process.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

#[sqlx::test(migrations = false)]
async fn a_task_with_a_dependency_completes_in_order_with_an_aggregated_result(pool: PgPool) {
    let app = spawn_app(pool).await;
    let c = app.admin().await;
    let id = app
        .submit(
            &c,
            "Scrape the pricing website. Query the sales database, then analyse the trends.",
        )
        .await;
    let task = app.finished(&c, &id).await;
    assert_eq!(task["status"], "completed", "{task:#}");
    assert_eq!(task["planned_by"], "planner");
    assert_eq!(task["subtasks"].as_array().unwrap().len(), 3);
    let (s2, s3) = (subtask(&task, "s2"), subtask(&task, "s3"));
    assert_eq!(s3["depends_on"], json!([s2["id"]]));
    assert_eq!(
        subtask(&task, "s1")["required_capabilities"],
        json!(["web_scraping"])
    );
    assert!(
        s3["output"].as_str().unwrap().contains("1 prerequisite"),
        "context was passed on"
    );
    let result = task["result"].as_str().unwrap();
    for key in ["s1", "s2", "s3"] {
        assert!(
            result.contains(subtask(&task, key)["output"].as_str().unwrap()),
            "{result}"
        );
    }

    // Order: the dependent started only after its prerequisite completed.
    app.settle_events(&c).await;
    let events: Value = app
        .get_json(&c, &format!("/api/v1/events?task_id={id}&limit=1000"))
        .await;
    // A subtask's event of a kind.
    let event_of = |kind: &str, node: &Value| {
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| {
                e["type"] == kind
                    && e["subject"] == format!("subtask/{}", node["id"].as_str().unwrap())
            })
            .unwrap_or_else(|| panic!("no {kind} event for {node}"))
            .clone()
    };
    let seq_of = |kind: &str, node: &Value| event_of(kind, node)["seq"].as_i64().unwrap();
    assert!(seq_of("subtask.completed", s2) < seq_of("subtask.started", s3));
    let kinds: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    for k in [
        "task.submitted",
        "task.planned",
        "subtask.started",
        "subtask.completed",
        "task.completed",
    ] {
        assert!(kinds.contains(&k), "missing {k} in {kinds:?}");
    }
    // Each subtask's start names its agent (the agent's change to working) and its completion
    // the agent's state after (back to idle), so no subtask or agent change goes unrecorded.
    for node in task["subtasks"].as_array().unwrap() {
        let of = |kind: &str| event_of(kind, node);
        assert_eq!(of("subtask.started")["data"]["agent_id"], node["agent_id"]);
        assert_eq!(of("subtask.completed")["data"]["agent_state"], "idle");
    }
}

#[sqlx::test(migrations = false)]
async fn a_failing_subtask_is_retried_then_blocks_its_dependents_and_fails_the_task(pool: PgPool) {
    let app = spawn_app(pool).await;
    let c = app.admin().await;
    let id = app
        .submit(
            &c,
            "Query the sales table [fail]. Then chart the results. Scrape the competitor website.",
        )
        .await;
    let task = app.finished(&c, &id).await;
    assert_eq!(task["status"], "failed", "{task:#}");
    let s1 = subtask(&task, "s1");
    assert_eq!(s1["status"], "failed");
    assert_eq!(s1["attempt"], 3, "three attempts by the retry policy");
    assert!(s1["error"].as_str().unwrap().contains("simulated failure"));
    assert_eq!(subtask(&task, "s2")["status"], "blocked");
    assert!(task["error"].as_str().unwrap().contains("s1"));
    let attempts = count(
        &app.pool,
        "select count(*) from attempts where outcome = 'failed'",
    )
    .await;
    assert_eq!(attempts, 3);
}

#[sqlx::test(migrations = false)]
async fn retrying_a_failed_subtask_resumes_the_task(pool: PgPool) {
    let app = spawn_app_with(pool, &[("FLOTILLA_RETRY_MAX_ATTEMPTS", "1")]).await;
    let c = app.admin().await;
    let id = app
        .submit(&c, "Parse the CSV file [flaky]. Then summarise the totals.")
        .await;
    let task = app.finished(&c, &id).await;
    assert_eq!(task["status"], "failed");
    assert_eq!(subtask(&task, "s2")["status"], "blocked");
    let s1 = subtask(&task, "s1")["id"].as_str().unwrap().to_owned();
    let res = c
        .post(app.url(&format!("/api/v1/subtasks/{s1}/retry")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let task = app.finished(&c, &id).await;
    assert_eq!(task["status"], "completed", "{task:#}");
    assert_eq!(subtask(&task, "s1")["attempt"], 2);
    let again = c
        .post(app.url(&format!("/api/v1/subtasks/{s1}/retry")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        StatusCode::CONFLICT,
        "a completed subtask cannot be retried"
    );
}

#[sqlx::test(migrations = false)]
async fn a_cycle_in_the_planners_json_falls_back_to_one_subtask(pool: PgPool) {
    let app = spawn_app(pool).await;
    let c = app.admin().await;
    let id = app
        .submit(&c, "Collect the numbers. Then chart them [cycle].")
        .await;
    let task = app.finished(&c, &id).await;
    assert_eq!(task["status"], "completed", "{task:#}");
    assert_eq!(task["planned_by"], "fallback");
    assert!(
        task["plan_note"].as_str().unwrap().contains("cycle"),
        "{task:#}"
    );
    assert_eq!(task["subtasks"].as_array().unwrap().len(), 1);
    assert_eq!(
        subtask(&task, "s1")["description"],
        "Collect the numbers. Then chart them [cycle]."
    );
}

#[sqlx::test(migrations = false)]
async fn a_paused_agent_takes_no_work_until_resumed(pool: PgPool) {
    let app = spawn_app(pool).await;
    let c = app.admin().await;
    let agents: Value = app.get_json(&c, "/api/v1/agents").await;
    let agents = agents["items"].as_array().unwrap().clone();
    assert_eq!(agents.len(), 5, "the default fleet");
    for a in &agents {
        let res = c
            .post(app.url(&format!(
                "/api/v1/agents/{}/pause",
                a["id"].as_str().unwrap()
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    let id = app
        .submit(&c, "Scrape the pricing website for prices.")
        .await;
    let url = app.url(&format!("/api/v1/tasks/{id}"));
    wait_for(&c, &url, 10, |t| t["status"] == "in_progress").await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let task: Value = c.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        subtask(&task, "s1")["status"],
        "queued",
        "no paused agent took it"
    );

    let scraper = agents
        .iter()
        .find(|a| {
            a["capabilities"]
                .as_array()
                .unwrap()
                .contains(&json!("web_scraping"))
        })
        .unwrap();
    let res = c
        .post(app.url(&format!(
            "/api/v1/agents/{}/resume",
            scraper["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let task = app.finished(&c, &id).await;
    assert_eq!(task["status"], "completed");
    assert_eq!(subtask(&task, "s1")["agent_id"], scraper["id"]);
    let after: Value = c
        .get(app.url(&format!(
            "/api/v1/agents/{}",
            scraper["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after["tasks_completed"], 1);
    assert!(after["tokens_used"].as_i64().unwrap() > 0);
}

#[sqlx::test(migrations = false)]
async fn cancelling_a_task_cancels_its_open_subtasks_and_frees_the_agents(pool: PgPool) {
    let app = spawn_app_with(pool, &[("FLOTILLA_SIM_LATENCY_MS", "3000")]).await;
    let c = app.admin().await;
    let id = app
        .submit(&c, "Query the orders database. Then write a report.")
        .await;
    let url = app.url(&format!("/api/v1/tasks/{id}"));
    wait_for(&c, &url, 15, |t| {
        t["subtasks"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["status"] == "running"))
    })
    .await;
    let res = c
        .post(app.url(&format!("/api/v1/tasks/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let task: Value = c.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(task["status"], "cancelled");
    assert!(
        task["subtasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "cancelled")
    );
    let busy = count(
        &app.pool,
        "select count(*) from agents where state = 'working'",
    )
    .await;
    assert_eq!(busy, 0);
    // The attempt that was running is recorded once, as cancelled, with its start; the
    // subtask that never started has no attempt at all.
    let attempts: Vec<(String, bool)> = sqlx::query_as(
        "select a.outcome, a.started_at is not null from attempts a join nodes n on n.id = a.node_id where n.run_id = $1::uuid",
    )
    .bind(id.as_str())
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(attempts, [("cancelled".to_owned(), true)]);
    let again = c
        .post(app.url(&format!("/api/v1/tasks/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    // The in-flight model call finishes later; its completion must be refused.
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let completions = count(
        &app.pool,
        "select count(*) from attempts where outcome = 'completed'",
    )
    .await;
    assert_eq!(completions, 0);
}
