//! Task, agent, event and token endpoints: validation, errors and permissions.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

#[sqlx::test(migrations = false)]
async fn bad_task_input_is_refused_with_a_reason(pool: PgPool) {
    let app = spawn_app(pool).await;
    let c = app.admin().await;
    let cases = [
        (json!({ "description": "too short" }), "10 to 5000"),
        (json!({ "description": "x".repeat(5001) }), "10 to 5000"),
        (
            json!({ "description": "a perfectly fine task", "priority": 11 }),
            "priority",
        ),
        (
            json!({ "description": "a perfectly fine task", "priority": -1 }),
            "priority",
        ),
        (json!({ "priority": 3 }), "description"),
        (json!({ "description": 42 }), "description"),
    ];
    for (body, reason) in cases {
        let res = c
            .post(app.url("/api/v1/tasks"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_client_error(), "{body}: {}", res.status());
        let err: Value = res.json().await.unwrap();
        assert!(
            err["error"]["message"].as_str().unwrap().contains(reason),
            "{body}: {err}"
        );
    }
    let missing = uuid::Uuid::new_v4();
    for path in [
        format!("/api/v1/tasks/{missing}"),
        format!("/api/v1/agents/{missing}"),
    ] {
        let res = c.get(app.url(&path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
    for path in [
        "/api/v1/tasks/not-a-uuid",
        "/api/v1/tasks?status=sleeping",
        "/api/v1/tasks?limit=0",
        "/api/v1/events?severity=loud",
    ] {
        let res = c.get(app.url(path)).send().await.unwrap();
        assert!(res.status().is_client_error(), "{path}: {}", res.status());
        assert_eq!(error_code(res).await, "invalid", "{path}");
    }
    let res = c
        .post(app.url(&format!("/api/v1/subtasks/{missing}/retry")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[sqlx::test(migrations = false)]
async fn tasks_are_listed_newest_first_with_a_cursor_and_a_status_filter(pool: PgPool) {
    let app = spawn_app_with(pool, &[("FLOTILLA_ENGINE", "off")]).await;
    let c = app.admin().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.submit(&c, &format!("Analyse dataset number {i}")).await);
    }
    let page1: Value = app.get_json(&c, "/api/v1/tasks?limit=3").await;
    let got: Vec<&str> = page1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[4].as_str(), ids[3].as_str(), ids[2].as_str()]);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let page2: Value = c
        .get(app.url("/api/v1/tasks"))
        .query(&[("limit", "3"), ("cursor", cursor)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let got: Vec<&str> = page2["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[1].as_str(), ids[0].as_str()]);
    assert!(page2["next_cursor"].is_null());
    let done: Value = app.get_json(&c, "/api/v1/tasks?status=completed").await;
    assert_eq!(
        done["items"].as_array().unwrap().len(),
        0,
        "nothing runs without an engine"
    );
}

#[sqlx::test(migrations = false)]
async fn a_viewer_can_read_tasks_and_agents_but_not_submit_or_steer(pool: PgPool) {
    let app = spawn_app_with(pool, &[("FLOTILLA_ENGINE", "off")]).await;
    let viewer = app.user_with_role("vera", "viewer").await;
    assert_eq!(
        viewer
            .get(app.url("/api/v1/tasks"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let agents: Value = app.get_json(&viewer, "/api/v1/agents").await;
    let agent = agents["items"][0]["id"].as_str().unwrap().to_owned();
    let submit = viewer
        .post(app.url("/api/v1/tasks"))
        .json(&json!({ "description": "a perfectly fine task" }))
        .send()
        .await
        .unwrap();
    assert_eq!(submit.status(), StatusCode::FORBIDDEN);
    let pause = viewer
        .post(app.url(&format!("/api/v1/agents/{agent}/pause")))
        .send()
        .await
        .unwrap();
    assert_eq!(pause.status(), StatusCode::FORBIDDEN);
    let runs = count(&app.pool, "select count(*) from runs").await;
    assert_eq!(runs, 0);
}

#[sqlx::test(migrations = false)]
async fn agents_are_spawned_validated_and_terminated_for_good(pool: PgPool) {
    let app = spawn_app_with(pool, &[("FLOTILLA_ENGINE", "off")]).await;
    let c = app.admin().await;
    let res = c
        .post(app.url("/api/v1/agents"))
        .json(&json!({ "name": "analyst", "capabilities": ["data_analysis"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let agent: Value = res.json().await.unwrap();
    assert_eq!(agent["state"], "idle");
    assert_eq!(agent["provider"], "simulated");
    let id = agent["id"].as_str().unwrap();
    for (body, status) in [
        (
            json!({ "name": "analyst", "capabilities": ["data_analysis"] }),
            409,
        ),
        (json!({ "name": "x", "capabilities": ["telepathy"] }), 422),
        (json!({ "name": "x", "capabilities": [] }), 422),
        (
            json!({ "name": "x", "capabilities": ["data_analysis"], "provider": "oracle" }),
            422,
        ),
        (
            json!({ "name": "x", "capabilities": ["data_analysis"], "parent_id": uuid::Uuid::new_v4() }),
            404,
        ),
    ] {
        let res = c
            .post(app.url("/api/v1/agents"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), status, "{body}");
    }
    let res = c
        .post(app.url(&format!("/api/v1/agents/{id}/terminate")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = c
        .post(app.url(&format!("/api/v1/agents/{id}/resume")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(error_code(res).await == "conflict");
    let res = c
        .post(app.url(&format!("/api/v1/agents/{id}/fly")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    app.settle_events(&c).await;
    let events: Value = app
        .get_json(&c, &format!("/api/v1/events?agent_id={id}"))
        .await;
    let kinds: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["agent.spawned", "agent.terminated"]);
}

#[sqlx::test(migrations = false)]
async fn api_tokens_let_scripts_in_until_revoked(pool: PgPool) {
    let app = spawn_app_with(pool, &[("FLOTILLA_ENGINE", "off")]).await;
    let c = app.admin().await;
    let res = c
        .post(app.url("/api/v1/tokens"))
        .json(&json!({ "name": "ci" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    let token = created["token"].as_str().unwrap().to_owned();
    let script = crate::helpers::plain_client();
    let res = script
        .post(app.url("/api/v1/tasks"))
        .bearer_auth(&token)
        .json(&json!({ "description": "submitted from a script" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = script
        .post(app.url("/api/v1/tokens"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "a token cannot mint tokens"
    );
    let stored: Vec<u8> = sqlx::query_scalar("select token_hash from api_tokens")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_ne!(stored, token.as_bytes(), "only a hash is stored");

    let res = c
        .delete(app.url(&format!(
            "/api/v1/tokens/{}",
            created["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = script
        .get(app.url("/api/v1/tasks"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = script
        .get(app.url("/api/v1/tasks"))
        .bearer_auth("flt_made_up")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrations = false)]
async fn events_page_by_seq_and_filter_by_type(pool: PgPool) {
    let app = spawn_app_with(pool, &[("FLOTILLA_ENGINE", "off")]).await;
    let c = app.admin().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(app.submit(&c, &format!("Analyse dataset number {i}")).await);
    }
    app.settle_events(&c).await;
    // A task is a run: `task_id` and `run_id` name the same filter.
    for key in ["task_id", "run_id"] {
        let one: Value = app
            .get_json(&c, &format!("/api/v1/events?{key}={}", ids[1]))
            .await;
        let items = one["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{key}: {one}");
        assert_eq!(items[0]["subject"], format!("task/{}", ids[1]));
    }
    let all: Value = app.get_json(&c, "/api/v1/events?type=task&limit=2").await;
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|e| e["type"] == "task.submitted"));
    let next = all["next_cursor"].as_i64().unwrap();
    let rest: Value = app
        .get_json(
            &c,
            &format!("/api/v1/events?type=task.submitted&after={next}"),
        )
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest["items"][0]["seq"].as_i64().unwrap() > next);
    for field in ["seq", "type", "at", "severity", "subject", "data"] {
        assert!(!rest["items"][0][field].is_null(), "{field}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn the_pager_never_skips_an_event_that_commits_late(pool: PgPool) {
    use app::db::events::{NewEvent, append};
    let app = spawn_app_with(pool.clone(), &[("FLOTILLA_ENGINE", "off")]).await;
    let c = app.admin().await;
    app.settle_events(&c).await;
    // The slow transaction takes the lower seq; a later one commits first.
    let mut slow = pool.begin().await.unwrap();
    let first = append(
        &mut slow,
        NewEvent::new(app::domain::event::EventKind::Marker, "x".into()),
    )
    .await
    .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let second = append(
        &mut conn,
        NewEvent::new(app::domain::event::EventKind::Marker, "y".into()),
    )
    .await
    .unwrap();
    assert!(second > first);
    let url = format!("/api/v1/events?after={}", first - 1);
    for _ in 0..3 {
        let page = app.get_json(&c, &url).await;
        assert_eq!(
            page["items"].as_array().unwrap().len(),
            0,
            "the quick event waits for the slow one: {page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    slow.commit().await.unwrap();
    let page = wait_for(&c, &app.url(&url), 10, |b| {
        b["items"].as_array().is_some_and(|i| i.len() == 2)
    })
    .await;
    let seqs: Vec<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [first, second], "both, in seq order, nothing skipped");
}
