//! Caps on tasks' and agents' model calls: a call reserves its worst case before it is made,
//! so parallel calls racing for a cap's remainder cannot all pass.

use crate::fake_llm::{self, Reply};
use crate::helpers::spawn_app_with;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

fn completion(content: &str, output: i64) -> Reply {
    let body = json!({
        "id": "c", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": output, "total_tokens": output},
    });
    Reply::Body(200, Vec::new(), body.to_string())
}

#[sqlx::test]
async fn two_parallel_subtasks_racing_for_the_last_of_a_task_cap_make_exactly_one_call(
    pool: PgPool,
) {
    // Output costs one micro-unit a token and input nothing: a planner call's worst case is
    // 2,048 micro-units, a subtask step's 1,024.
    let plan = json!({"subtasks": [
        {"key": "a", "description": "first half", "required_capabilities": [], "depends_on": [], "priority": 5},
        {"key": "b", "description": "second half", "required_capabilities": [], "depends_on": [], "priority": 5},
    ]});
    let fake = fake_llm::start(vec![
        completion(&plan.to_string(), 10),
        // Slow, so the second subtask reserves while the first is in flight.
        Reply::Slow(1500, Box::new(completion("half done", 5))),
    ])
    .await;
    let data = std::env::temp_dir().join(format!("flotilla-budget-{}", uuid::Uuid::new_v4()));
    let app = spawn_app_with(
        pool.clone(),
        &[
            ("OPENAI_BASE_URL", &format!("{}/v1", fake.url)),
            ("FLOTILLA_OPENAI_MODEL", "m"),
            ("FLOTILLA_OPENAI_PRICES", "0,1"),
            ("FLOTILLA_DATA_DIR", &data.to_string_lossy()),
        ],
    )
    .await;
    let admin = app.admin().await;
    // The cap is the planner's worst case exactly. After planning (10 spent), 2,038 are left:
    // room for one step's 1,024 in flight, not for a second beside it.
    let res = admin
        .post(app.url("/api/v1/tasks"))
        .json(&json!({"description": "Split this in two halves", "budget": {"max_cost_micros": 2048}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.finished(&admin, &id).await;
    // The refusal fails the task at once; the call that got through still finishes.
    let task =
        crate::helpers::wait_for(&admin, &app.url(&format!("/api/v1/tasks/{id}")), 30, |t| {
            t["subtasks"].as_array().is_some_and(|s| {
                s.iter()
                    .all(|s| s["status"] == "completed" || s["status"] == "failed")
            })
        })
        .await;
    assert_eq!(task["planned_by"], "planner", "{task:#}");
    let seen = fake.seen();
    assert_eq!(
        seen.len(),
        2,
        "the plan and exactly one subtask step were sent"
    );
    let outcomes: Vec<(&str, &str)> = task["subtasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["status"].as_str().unwrap(),
                s["error"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        outcomes.iter().filter(|(s, _)| *s == "completed").count(),
        1,
        "{outcomes:?}"
    );
    let refused = outcomes
        .iter()
        .find(|(s, _)| *s == "failed")
        .expect("one refused");
    assert!(refused.1.contains("task budget has no room"), "{refused:?}");
    assert_eq!(task["status"], "failed");
    // Settled: everything spent is counted, nothing is left reserved.
    let budget = &task["budget"];
    assert_eq!(budget["spent_cost_micros"], 15);
    assert_eq!(budget["reserved_cost_micros"], 0);
    assert_eq!(budget["cap_cost_micros"], 2048);
    assert_eq!(task["usage"]["calls"], 2);
    let _ = std::fs::remove_dir_all(&data);
}

#[sqlx::test]
async fn an_agent_cap_refuses_a_call_before_it_is_made(pool: PgPool) {
    let fake = fake_llm::start(vec![completion("never sent", 1)]).await;
    let data = std::env::temp_dir().join(format!("flotilla-budget-{}", uuid::Uuid::new_v4()));
    let app = spawn_app_with(
        pool.clone(),
        &[("FLOTILLA_DATA_DIR", &*data.to_string_lossy())],
    )
    .await;
    let admin = app.admin().await;
    let res = admin
        .post(app.url("/api/v1/providers"))
        .json(&json!({"name": "local", "kind": "openai_compatible",
                      "base_url": format!("{}/v1", fake.url), "default_model": "m"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let agents: Value = admin
        .get(app.url("/api/v1/agents"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for a in agents["items"].as_array().unwrap() {
        let path = format!("/api/v1/agents/{}/terminate", a["id"].as_str().unwrap());
        admin.post(app.url(&path)).send().await.unwrap();
    }
    // Fewer tokens than any call's worst case.
    let res = admin
        .post(app.url("/api/v1/agents"))
        .json(&json!({"name": "capped", "provider": "local", "budget": {"max_tokens": 100},
                      "capabilities": ["data_analysis", "web_scraping", "code_generation",
                                       "file_processing", "database_operations", "api_integration"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let agent = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = app.submit(&admin, "Anything the capped agent gets").await;
    let task = app.finished(&admin, &id).await;
    assert_eq!(task["status"], "failed");
    assert!(
        task["subtasks"][0]["error"]
            .as_str()
            .unwrap()
            .contains("agent budget has no room"),
        "{task:#}"
    );
    assert!(fake.seen().is_empty(), "no call was made");
    let usage: Value = admin
        .get(app.url(&format!("/api/v1/agents/{agent}/usage")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(usage["budget"]["cap_tokens"], 100);
    assert_eq!(usage["budget"]["spent_tokens"], 0);
    assert_eq!(usage["budget"]["reserved_tokens"], 0);
    // Bad caps are refused (an array is not an object, even with the fields in order).
    for budget in [
        json!({"max_tokens": 0}),
        json!({"max_cost_micros": -1}),
        json!({"max_tokens": 1.5}),
        json!([null, null]),
        json!({"max_tokens": 9223372036854775808_u64}),
        json!([100, 100]),
    ] {
        let res = admin
            .post(app.url("/api/v1/tasks"))
            .json(&json!({"description": "Refused for its budget", "budget": budget}))
            .send()
            .await
            .unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{budget}: {text}");
    }
    // An integral number written as a float is the integer (JSON Schema's `integer`).
    let res = admin
        .post(app.url("/api/v1/tasks"))
        .json(&json!({"description": "Capped at a float-spelled integer", "budget": {"max_cost_micros": 906141.0}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let _ = std::fs::remove_dir_all(&data);
}

#[sqlx::test]
async fn the_task_form_sets_caps_and_refuses_ones_that_are_not_numbers(pool: PgPool) {
    let app = crate::helpers::spawn_app(pool.clone()).await;
    let admin = app.admin().await;
    // The form as a browser posts it, before any WASM has loaded (it lands on the task).
    let res = admin
        .post(app.url("/api/tasks/submit"))
        .form(&[
            ("description", "Summarise the quarterly numbers"),
            ("priority", "5"),
            ("max_tokens", "9000"),
            ("max_cost_micros", ""),
        ])
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let id: String = res.json().await.unwrap();
    let task: Value = admin
        .get(app.url(&format!("/api/v1/tasks/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(task["budget"]["cap_tokens"], 9000, "{task:#}");
    assert!(task["budget"]["cap_cost_micros"].is_null());
    // Without the cap fields (an older form) the task is uncapped; a word is refused.
    let res = admin
        .post(app.url("/api/tasks/submit"))
        .form(&[
            ("description", "Summarise the yearly numbers"),
            ("priority", "5"),
        ])
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let res = admin
        .post(app.url("/api/tasks/submit"))
        .form(&[
            ("description", "Summarise the monthly numbers"),
            ("max_tokens", "lots"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("max_tokens must be a whole number")
    );
}
