//! Agents on a real provider client, end to end over HTTP: the OpenAI-compatible client pointed
//! (by environment, as a user would) at a local server scripted to plan, call `write_file`, then
//! answer.

use crate::fake_llm::{self, Reply, fixture};
use crate::helpers::{spawn_app_with, wait_for};
use serde_json::{Value, json};
use sqlx::PgPool;

fn completion(message: Value, finish: &str, prompt: i64, cached: i64, output: i64) -> Reply {
    let body = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "scripted-1",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": output,
                  "total_tokens": prompt + output,
                  "prompt_tokens_details": {"cached_tokens": cached}},
    });
    Reply::Body(200, Vec::new(), body.to_string())
}

fn text(content: &str) -> Value {
    json!({"role": "assistant", "content": content})
}

fn data_dir() -> String {
    std::env::temp_dir()
        .join(format!("flotilla-test-{}", uuid::Uuid::new_v4()))
        .to_string_lossy()
        .into_owned()
}

#[sqlx::test]
async fn a_task_plans_calls_a_tool_and_answers_on_an_openai_compatible_server(pool: PgPool) {
    let plan = json!({"subtasks": [{"key": "notes", "description": "Write the notes file",
                                     "required_capabilities": [], "depends_on": []}]});
    let fake = fake_llm::start(vec![
        completion(text(&plan.to_string()), "stop", 900, 0, 40),
        completion(
            json!({"role": "assistant", "content": null, "tool_calls": [{
                "id": "call_w", "type": "function",
                "function": {"name": "write_file",
                             "arguments": "{\"path\":\"projects/notes.txt\",\"content\":\"hello from the model\"}"}}]}),
            "tool_calls",
            1200,
            1000,
            30,
        ),
        completion(text("I wrote projects/notes.txt."), "stop", 1300, 1200, 10),
        completion(text("In short: the notes are written."), "stop", 500, 0, 8),
    ])
    .await;
    let data = data_dir();
    let app = spawn_app_with(
        pool.clone(),
        &[
            ("OPENAI_BASE_URL", &format!("{}/v1", fake.url)),
            ("OPENAI_API_KEY", "sk-scripted"),
            ("FLOTILLA_OPENAI_MODEL", "scripted-1"),
            ("FLOTILLA_OPENAI_PRICES", "1,2,0.5,0"),
            ("FLOTILLA_DATA_DIR", &data),
        ],
    )
    .await;
    let admin = app.admin().await;
    let id = app
        .submit(&admin, "Write a notes file in the workspace")
        .await;
    let task = app.finished(&admin, &id).await;
    assert_eq!(task["status"], "completed", "{task:#}");
    assert_eq!(task["planned_by"], "planner", "{task:#}");
    assert!(
        task["result"]
            .as_str()
            .unwrap()
            .contains("I wrote projects/notes.txt.")
    );
    // Then the aggregator summarises the outputs with one more call.
    let task = wait_for(&admin, &app.url(&format!("/api/v1/tasks/{id}")), 30, |t| {
        !t["summary"].is_null()
    })
    .await;
    assert_eq!(task["summary"], "In short: the notes are written.");
    let sub = crate::helpers::subtask(&task, "notes");
    assert_eq!(sub["output"], "I wrote projects/notes.txt.");

    // The file is in the agent's workspace, and the workspace is private.
    let agent = sub["agent_id"].as_str().unwrap();
    let root = std::path::Path::new(&data).join("workspaces").join(agent);
    assert_eq!(
        std::fs::read_to_string(root.join("projects/notes.txt")).unwrap(),
        "hello from the model"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&root).unwrap().permissions().mode() & 0o777,
        0o700
    );

    // What went over the wire: the default fleet and the planner on the declared provider.
    let seen = fake.seen();
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|s| s.path == "/v1/chat/completions"));
    assert!(seen.iter().all(|s| s.body["model"] == "scripted-1"));
    assert_eq!(seen[0].headers["authorization"], "Bearer sk-scripted");
    assert_eq!(
        seen[0].body["response_format"]["type"], "json_schema",
        "the planner asks under the plan's schema"
    );
    let tools: Vec<&str> = seen[1].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(
        tools.contains(&"write_file") && tools.contains(&"read_file"),
        "{tools:?}"
    );
    let last = seen[2].body["messages"].as_array().unwrap();
    let result = last.last().unwrap();
    assert_eq!(result["role"], "tool");
    assert_eq!(result["tool_call_id"], "call_w");
    assert!(
        result["content"]
            .as_str()
            .unwrap()
            .contains("wrote 20 bytes")
    );

    // Every call counted, normalised (cached tokens out of the input), priced in micro-units.
    let usage = &task["usage"];
    assert_eq!(usage["calls"], 4);
    assert_eq!(usage["failed_calls"], 0);
    assert_eq!(usage["input"], 900 + 200 + 100 + 500);
    assert_eq!(usage["cache_read"], 1000 + 1200);
    assert_eq!(usage["output"], 40 + 30 + 10 + 8);
    // input 1/Mtok, output 2/Mtok, cache read 0.5/Mtok: 1700 + 176 + 1100 micro-units.
    assert_eq!(usage["cost_micros"], 1700 + 176 + 1100);
    let summary_prompt = seen[3].body["messages"][1]["content"].as_str().unwrap();
    assert!(summary_prompt.contains("Write the notes file") && summary_prompt.contains("I wrote"));
    assert_eq!(sub["usage"]["calls"], 2);
    assert_eq!(sub["usage"]["cost_micros"], 300 + 80 + 1100);

    // The tool call and its result are events; the transcript has the whole conversation.
    app.settle_events(&admin).await;
    let events: Value = admin
        .get(app.url(&format!("/api/v1/events?task_id={id}&limit=200")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"tool.called") && kinds.contains(&"tool.result"),
        "{kinds:?}"
    );
    let transcripts: Value = admin
        .get(app.url(&format!("/api/v1/tasks/{id}/transcripts")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The attempt's own rollup: its two calls, each with its usage, and their totals.
    let attempt = &transcripts["items"][0];
    assert_eq!(attempt["usage"]["calls"], 2);
    assert_eq!(attempt["usage"]["cost_micros"], 300 + 80 + 1100);
    let calls = attempt["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["usage"]["cache_read"], 1000);
    assert_eq!(calls[1]["usage"]["output"], 10);
    assert!(
        calls
            .iter()
            .all(|c| c["attempt"] == 1 && c["model"] == "scripted-1")
    );
    let messages = transcripts["items"][0]["messages"].as_array().unwrap();
    assert_eq!(
        messages.len(),
        4,
        "prompt, tool call, result, answer: {messages:#?}"
    );
    assert_eq!(messages[1]["content"][0]["type"], "tool_call");
    assert_eq!(messages[2]["content"][0]["type"], "tool_result");

    // The agent's page figures: its calls, their cost, its transcripts.
    let agent_usage: Value = admin
        .get(app.url(&format!("/api/v1/agents/{agent}/usage")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(agent_usage["totals"]["calls"], 2);
    assert_eq!(agent_usage["calls"][0]["provider"], "openai");
    assert_eq!(agent_usage["transcripts"].as_array().unwrap().len(), 1);
    let _ = std::fs::remove_dir_all(&data);
}

#[sqlx::test]
async fn a_refused_key_puts_the_agent_in_error_until_resumed(pool: PgPool) {
    let bad_key = Reply::Body(401, Vec::new(), fixture("openai_bad_key.json"));
    let fake = fake_llm::start(vec![bad_key]).await;
    let data = data_dir();
    let app = spawn_app_with(
        pool.clone(),
        &[
            ("OPENAI_BASE_URL", &format!("{}/v1", fake.url)),
            ("OPENAI_API_KEY", "sk-wrong"),
            ("FLOTILLA_DATA_DIR", &data),
            ("FLOTILLA_RETRY_MAX_ATTEMPTS", "1"),
        ],
    )
    .await;
    let admin = app.admin().await;
    let id = app.submit(&admin, "Anything at all, please").await;
    let task = app.finished(&admin, &id).await;
    // The planner's call failed too: the task fell back to one subtask, which failed.
    assert_eq!(task["planned_by"], "fallback");
    assert_eq!(task["status"], "failed");
    let sub = &task["subtasks"][0];
    let agent = sub["agent_id"].as_str().unwrap();
    let url = app.url(&format!("/api/v1/agents/{agent}"));
    let errored = wait_for(&admin, &url, 10, |a| a["state"] == "error").await;
    assert!(
        errored["error"]
            .as_str()
            .unwrap()
            .contains("Incorrect API key"),
        "{errored:#}"
    );
    assert_eq!(task["usage"]["failed_calls"], task["usage"]["calls"]);
    app.settle_events(&admin).await;
    let events: Value = admin
        .get(app.url(&format!("/api/v1/events?type=agent.error&agent_id={agent}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(events["items"].as_array().unwrap().len(), 1, "{events:#}");
    assert_eq!(events["items"][0]["severity"], "error");

    let resumed = admin
        .post(app.url(&format!("/api/v1/agents/{agent}/resume")))
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    let agent: Value = admin.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(agent["state"], "idle");
    assert!(agent["error"].is_null());
    let _ = std::fs::remove_dir_all(&data);
}
