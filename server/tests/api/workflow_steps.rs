//! Tool and sub-workflow steps at run time: a tool step's one call with its arguments rendered
//! (its answer the output, an error answer failing it, run_command for admins only), and a
//! sub-workflow running its pinned version as a child run whose end is the node's.

use crate::helpers::*;
use crate::workflow_runs::{agent, create, finished, node, run_until, start, waiting};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

fn tool(key: &str, tool: &str, arguments: Value) -> Value {
    json!({"key": key, "kind": "tool", "tool": tool, "arguments": arguments})
}

async fn run_of(app: &TestApp, c: &Client, workflow: &str, inputs: Value) -> Value {
    let (status, started) = start(app, c, workflow, inputs).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    run_until(app, c, started["id"].as_str().unwrap(), finished).await
}

#[sqlx::test(migrations = false)]
async fn tool_steps_make_their_call_with_rendered_arguments(pool: PgPool) {
    let app = spawn_app(pool).await;
    let c = app.admin().await;
    let wf = create(
        &app,
        &c,
        json!({
            "inputs": [{"name": "colour", "required": true}],
            "nodes": [
                tool("put", "set_state", json!({"key": "favourite", "value": "{{inputs.colour}} and gold"})),
                tool("get", "get_state", json!({"key": "favourite"})),
                agent("tell", "paint it {{nodes.get.output}}")
            ],
            "edges": [{"from": "put", "to": "get"}, {"from": "get", "to": "tell"}]
        }),
    )
    .await;
    let run = run_of(&app, &c, &wf, json!({"colour": "teal"})).await;
    assert_eq!(run["status"], "completed", "{run:#}");
    assert_eq!(node(&run, "put")["kind"], "tool");
    assert_eq!(
        node(&run, "put")["prompt"],
        r#"set_state {"key":"favourite","value":"teal and gold"}"#
    );
    assert_eq!(node(&run, "get")["output"], r#""teal and gold""#);
    assert_eq!(node(&run, "get")["tokens"], 0, "a tool step asks no model");
    assert_eq!(node(&run, "tell")["prompt"], r#"paint it "teal and gold""#);
    let id = run["id"].as_str().unwrap();
    let events = app
        .get_json(&c, &format!("/api/v1/events?type=tool.called&task_id={id}"))
        .await;
    let tools: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["data"]["tool"].as_str().unwrap())
        .collect();
    assert_eq!(tools.len(), 2, "{events:#}");
    assert!(tools.contains(&"set_state") && tools.contains(&"get_state"));

    // A tool that answers an error fails its step, and what depends on it is blocked.
    let broken = create(
        &app,
        &c,
        json!({
            "nodes": [tool("read", "read_file", json!({"path": "../../etc/passwd"})), agent("after", "go on")],
            "edges": [{"from": "read", "to": "after"}]
        }),
    )
    .await;
    let run = run_of(&app, &c, &broken, json!({})).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let read = node(&run, "read");
    assert_eq!(read["status"], "failed");
    assert!(
        read["error"]
            .as_str()
            .unwrap()
            .starts_with("read_file answered an error"),
        "{read}"
    );
    assert_eq!(node(&run, "after")["status"], "blocked");
}

#[sqlx::test(migrations = false)]
async fn only_an_admin_starts_a_run_with_a_run_command_step(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.admin().await;
    let member = app.user_with_role("mia", "member").await;
    let wf = create(
        &app,
        &admin,
        json!({"nodes": [tool("sh", "run_command", json!({"command": "echo hi"}))]}),
    )
    .await;
    let (status, err) = start(&app, &member, &wf, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    assert!(
        err["error"]["message"].as_str().unwrap().contains("admin"),
        "{err}"
    );
    let runs = app
        .get_json(&admin, &format!("/api/v1/workflows/{wf}/runs"))
        .await;
    assert_eq!(
        runs["items"].as_array().unwrap().len(),
        0,
        "nothing started"
    );
}

/// A child workflow of one agent step reading its `topic` input, saved twice: runs pin v1.
async fn child(app: &TestApp, c: &Client) -> String {
    let id = create(
        app,
        c,
        json!({
            "inputs": [{"name": "topic", "required": true}, {"name": "depth", "type": "number", "default": 1}],
            "nodes": [agent("study", "study {{inputs.topic}} at depth {{inputs.depth}}")]
        }),
    )
    .await;
    let res = c
        .put(app.url(&format!("/api/v1/workflows/{id}")))
        .json(&json!({"base_version": 1, "definition": {
            "inputs": [{"name": "topic", "required": true}],
            "nodes": [agent("other", "version two: {{inputs.topic}}")]
        }}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{:?}", res.text().await);
    id
}

#[sqlx::test(migrations = false)]
async fn a_sub_workflow_runs_its_pinned_version_and_its_outputs_are_the_nodes(pool: PgPool) {
    let app = spawn_app(pool).await;
    let c = app.admin().await;
    let sub = child(&app, &c).await;
    let wf = create(
        &app,
        &c,
        json!({
            "inputs": [{"name": "t", "required": true}],
            "nodes": [
                {"key": "sub", "kind": "workflow", "workflow_id": sub, "version": 1,
                 "inputs": {"topic": "{{inputs.t}} tables", "depth": "3"}},
                agent("after", "use {{nodes.sub.output}}")
            ],
            "edges": [{"from": "sub", "to": "after"}]
        }),
    )
    .await;
    let run = run_of(&app, &c, &wf, json!({"t": "tide"})).await;
    assert_eq!(run["status"], "completed", "{run:#}");
    let sub_node = node(&run, "sub");
    assert_eq!(sub_node["kind"], "workflow");
    assert_eq!(sub_node["agent_id"], Value::Null, "it held no agent");
    let output: Value = serde_json::from_str(sub_node["output"].as_str().unwrap()).unwrap();
    assert_eq!(
        output,
        json!({"study": "[simulated] done: study tide tables at depth 3"})
    );
    let child_run = sub_node["child_run"].as_str().unwrap();
    let child = app.get_json(&c, &format!("/api/v1/runs/{child_run}")).await;
    assert_eq!(child["status"], "completed");
    assert_eq!(child["workflow_version"], 1, "the pinned version ran");
    assert_eq!(child["inputs"], json!({"topic": "tide tables", "depth": 3}));
    assert!(
        node(&run, "after")["prompt"]
            .as_str()
            .unwrap()
            .contains("study tide tables at depth 3"),
        "{run:#}"
    );
}

#[sqlx::test(migrations = false)]
async fn a_failed_child_fails_its_node_a_retry_starts_another_and_cancel_reaches_it(pool: PgPool) {
    let app = spawn_app(pool).await;
    let c = app.admin().await;
    let sub = create(
        &app,
        &c,
        json!({"nodes": [{"key": "ok", "kind": "approval", "prompt": "go?"}]}),
    )
    .await;
    let wf = create(
        &app,
        &c,
        json!({
            "nodes": [{"key": "sub", "kind": "workflow", "workflow_id": sub, "version": 1},
                      agent("after", "after")],
            "edges": [{"from": "sub", "to": "after"}]
        }),
    )
    .await;
    let (_, started) = start(&app, &c, &wf, json!({})).await;
    let id = started["id"].as_str().unwrap().to_owned();
    let parent = run_until(&app, &c, &id, |r| node(r, "sub")["child_run"].is_string()).await;
    assert_eq!(node(&parent, "sub")["status"], "running");
    let first = node(&parent, "sub")["child_run"]
        .as_str()
        .unwrap()
        .to_owned();
    run_until(&app, &c, &first, waiting).await;
    let res = c
        .post(app.url(&format!("/api/v1/runs/{first}/nodes/ok/reject")))
        .json(&json!({"comment": "not today"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let parent = run_until(&app, &c, &id, finished).await;
    assert_eq!(parent["status"], "failed", "{parent:#}");
    assert_eq!(
        node(&parent, "sub")["error"],
        "the sub-workflow run failed: approval 'ok' was rejected: not today"
    );
    assert_eq!(node(&parent, "after")["status"], "blocked");

    let res = c
        .post(app.url(&format!("/api/v1/runs/{id}/nodes/sub/retry")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{:?}", res.text().await);
    let parent = run_until(&app, &c, &id, |r| {
        node(r, "sub")["child_run"]
            .as_str()
            .is_some_and(|c| c != first)
    })
    .await;
    let second = node(&parent, "sub")["child_run"]
        .as_str()
        .unwrap()
        .to_owned();
    run_until(&app, &c, &second, waiting).await;
    let res = c
        .post(app.url(&format!("/api/v1/runs/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let child = app.get_json(&c, &format!("/api/v1/runs/{second}")).await;
    assert_eq!(child["status"], "cancelled", "{child:#}");
    let parent = app.get_json(&c, &format!("/api/v1/runs/{id}")).await;
    assert_eq!(parent["status"], "cancelled");
    assert_eq!(node(&parent, "sub")["status"], "cancelled");
}
