//! Workflow runs through the engine on the simulated model: inputs into templates, outputs
//! downstream, a false condition skipping its branch, approvals (approved, rejected, decided
//! twice, by a viewer) and a restart while an approval waits.

use crate::helpers::*;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

pub(crate) fn agent(key: &str, prompt: &str) -> Value {
    json!({"key": key, "kind": "agent", "capability": "data_analysis", "prompt": prompt})
}

pub(crate) async fn create(app: &TestApp, c: &Client, definition: Value) -> String {
    let res = c
        .post(app.url("/api/v1/workflows"))
        .json(&json!({"name": "under test", "definition": definition}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["state"], "ready", "{body}");
    body["id"].as_str().unwrap().to_owned()
}

pub(crate) async fn start(
    app: &TestApp,
    c: &Client,
    workflow: &str,
    inputs: Value,
) -> (StatusCode, Value) {
    let res = c
        .post(app.url(&format!("/api/v1/workflows/{workflow}/runs")))
        .json(&json!({"inputs": inputs}))
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap())
}

pub(crate) async fn run_until(
    app: &TestApp,
    c: &Client,
    run: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    wait_for(c, &app.url(&format!("/api/v1/runs/{run}")), 30, done).await
}

pub(crate) fn finished(r: &Value) -> bool {
    matches!(
        r["status"].as_str(),
        Some("completed" | "failed" | "cancelled")
    )
}

pub(crate) fn node<'a>(run: &'a Value, key: &str) -> &'a Value {
    run["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["key"] == key))
        .unwrap_or_else(|| panic!("no node {key} in {run:#}"))
}

#[sqlx::test(migrations = false)]
async fn inputs_fill_templates_and_outputs_flow_downstream(pool: PgPool) {
    let app = spawn_app(pool).await;
    let c = app.admin().await;
    let wf = create(
        &app,
        &c,
        json!({
            "inputs": [{"name": "topic", "required": true}, {"name": "depth", "type": "number", "default": 2}],
            "nodes": [agent("a", "study {{inputs.topic}} to depth {{inputs.depth}}"),
                      agent("b", "sum up: {{nodes.a.output}}")],
            "edges": [{"from": "a", "to": "b"}]
        }),
    )
    .await;
    let (status, err) = start(&app, &c, &wf, json!({"depth": "deep"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let codes: Vec<&str> = err["error"]["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, vec!["missing_input", "input"], "{err}");
    let (status, err) = start(&app, &c, &wf, json!({"topic": "t", "depth": 1e300})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(err["error"]["field"], "inputs", "{err}");

    let (status, started) = start(&app, &c, &wf, json!({"topic": "tides"})).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let run = run_until(&app, &c, started["id"].as_str().unwrap(), finished).await;
    assert_eq!(run["status"], "completed", "{run:#}");
    assert_eq!(run["inputs"], json!({"topic": "tides", "depth": 2}));
    assert_eq!(node(&run, "a")["prompt"], "study tides to depth 2");
    assert_eq!(
        node(&run, "b")["prompt"],
        "sum up: [simulated] done: study tides to depth 2"
    );
    assert!(node(&run, "b")["tokens"].as_i64().unwrap() > 0);
    let history = app
        .get_json(&c, &format!("/api/v1/workflows/{wf}/runs"))
        .await;
    assert_eq!(history["items"][0]["id"], run["id"]);
    assert_eq!(history["items"][0]["nodes_finished"], 2);
    let events = app
        .get_json(&c, "/api/v1/events?type=workflow.run_started")
        .await;
    assert_eq!(events["items"].as_array().unwrap().len(), 1);
}

#[sqlx::test(migrations = false)]
async fn a_false_condition_skips_its_branch_and_a_join_still_runs(pool: PgPool) {
    let app = spawn_app(pool).await;
    let c = app.admin().await;
    let wf = create(
        &app,
        &c,
        json!({
            "nodes": [agent("a", "look at the tides"), agent("yes", "on yes"), agent("no", "on no"),
                      agent("after_no", "after no"), agent("join", "join")],
            "edges": [
                {"from": "a", "to": "yes", "condition": {"op": "contains", "value": "tides"}},
                {"from": "a", "to": "no", "condition": {"op": "contains", "value": "tides", "negate": true}},
                {"from": "no", "to": "after_no"},
                {"from": "yes", "to": "join"}, {"from": "after_no", "to": "join"}
            ]
        }),
    )
    .await;
    let (_, started) = start(&app, &c, &wf, json!({})).await;
    let run = run_until(&app, &c, started["id"].as_str().unwrap(), finished).await;
    assert_eq!(run["status"], "completed", "{run:#}");
    let states: Vec<(&str, &str)> = ["a", "yes", "no", "after_no", "join"]
        .iter()
        .map(|k| (*k, node(&run, k)["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        vec![
            ("a", "completed"),
            ("yes", "completed"),
            ("no", "skipped"),
            ("after_no", "skipped"),
            ("join", "completed")
        ]
    );
    assert!(node(&run, "no")["output"].is_null());
    let skipped = app
        .get_json(&c, "/api/v1/events?type=subtask.skipped")
        .await;
    assert_eq!(skipped["items"].as_array().unwrap().len(), 2);
}

fn gated() -> Value {
    json!({
        "nodes": [agent("draft", "draft it"),
                  {"key": "review", "kind": "approval", "prompt": "ship {{nodes.draft.output}}?"},
                  agent("ship", "ship it")],
        "edges": [{"from": "draft", "to": "review"}, {"from": "review", "to": "ship"}]
    })
}

async fn decide(
    app: &TestApp,
    c: &Client,
    run: &str,
    verb: &str,
    comment: Value,
) -> (StatusCode, Value) {
    let res = c
        .post(app.url(&format!("/api/v1/runs/{run}/nodes/review/{verb}")))
        .json(&json!({"comment": comment}))
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap())
}

pub(crate) fn waiting(r: &Value) -> bool {
    r["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["waiting_for_approval"] == true)
}

#[sqlx::test(migrations = false)]
async fn approvals_wait_holding_nothing_and_are_decided_once(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let c = app.admin().await;
    let viewer = app.user_with_role("vic", "viewer").await;
    let wf = create(&app, &c, gated()).await;

    let (_, started) = start(&app, &c, &wf, json!({})).await;
    let id = started["id"].as_str().unwrap().to_owned();
    let run = run_until(&app, &c, &id, waiting).await;
    let review = node(&run, "review");
    assert_eq!(review["status"], "queued");
    assert_eq!(review["prompt"], "ship [simulated] done: draft it?");
    assert!(review["agent_id"].is_null());
    assert_eq!(node(&run, "ship")["status"], "queued");
    // While it waits, no agent works and no lease is held.
    assert_eq!(
        count(&pool, "select count(*) from agents where state = 'working'").await,
        0
    );
    assert_eq!(
        count(
            &pool,
            "select count(*) from nodes where lease_token is not null"
        )
        .await,
        0
    );
    let (status, _) = decide(&app, &viewer, &id, "approve", json!(null)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = decide(&app, &c, &id, "approve", json!("looks right")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, again) = decide(&app, &c, &id, "reject", json!(null)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        again["error"]["message"]
            .as_str()
            .unwrap()
            .contains("approved by admin"),
        "{again}"
    );
    let run = run_until(&app, &c, &id, finished).await;
    assert_eq!(run["status"], "completed", "{run:#}");
    let review = node(&run, "review");
    assert_eq!(
        (review["decision"].clone(), review["decided_by"].clone()),
        (json!("approved"), json!("admin"))
    );
    assert_eq!(review["decision_comment"], "looks right");
    assert!(review["decided_at"].is_string());

    // Rejected: the run fails and what follows is blocked; a retry asks again.
    let (_, started) = start(&app, &c, &wf, json!({})).await;
    let id = started["id"].as_str().unwrap().to_owned();
    run_until(&app, &c, &id, waiting).await;
    let (status, _) = decide(&app, &c, &id, "reject", json!("not yet")).await;
    assert_eq!(status, StatusCode::OK);
    let run = run_until(&app, &c, &id, finished).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(node(&run, "ship")["status"], "blocked");
    assert!(
        run["error"].as_str().unwrap().contains("rejected: not yet"),
        "{run:#}"
    );
    let res = c
        .post(app.url(&format!("/api/v1/runs/{id}/nodes/review/retry")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let run = run_until(&app, &c, &id, waiting).await;
    assert_eq!(run["status"], "in_progress");
    let (status, _) = decide(&app, &c, &id, "approve", json!(null)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        run_until(&app, &c, &id, finished).await["status"],
        "completed"
    );

    // Deciding a node that is not an approval, or one that does not exist.
    let res = c
        .post(app.url(&format!("/api/v1/runs/{id}/nodes/ship/approve")))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let res = c
        .post(app.url(&format!("/api/v1/runs/{id}/nodes/ghost/approve")))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[sqlx::test(migrations = false)]
async fn an_approval_survives_a_restart(pool: PgPool) {
    // Each "process" has its own pool: a shut-down app closes the pool it was given.
    let fresh = || {
        sqlx::postgres::PgPoolOptions::new().connect_lazy_with((*pool.connect_options()).clone())
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (first, running) = spawn_app_until(fresh(), &[], async {
        let _ = stopped.await;
    })
    .await;
    let c = first.admin().await;
    let wf = create(&first, &c, gated()).await;
    let (_, started) = start(&first, &c, &wf, json!({})).await;
    let id = started["id"].as_str().unwrap().to_owned();
    run_until(&first, &c, &id, waiting).await;
    stop.send(()).unwrap();
    running.await.unwrap();

    let second = spawn_app(fresh()).await;
    let c = second.admin().await;
    let run = run_until(&second, &c, &id, waiting).await;
    assert_eq!(run["status"], "in_progress");
    let (status, _) = decide(&second, &c, &id, "approve", json!(null)).await;
    assert_eq!(status, StatusCode::OK);
    let run = run_until(&second, &c, &id, finished).await;
    assert_eq!(run["status"], "completed", "{run:#}");
    assert_eq!(node(&run, "ship")["status"], "completed");
}

#[sqlx::test(migrations = false)]
async fn a_run_is_cancelled(pool: PgPool) {
    let app = spawn_app(pool).await;
    let c = app.admin().await;
    let wf = create(&app, &c, gated()).await;
    let (_, started) = start(&app, &c, &wf, json!({})).await;
    let id = started["id"].as_str().unwrap().to_owned();
    run_until(&app, &c, &id, waiting).await;
    let res = c
        .post(app.url(&format!("/api/v1/runs/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let run = app.get_json(&c, &format!("/api/v1/runs/{id}")).await;
    assert_eq!(run["status"], "cancelled");
    assert_eq!(node(&run, "review")["status"], "cancelled");
    let (status, _) = decide(&app, &c, &id, "approve", json!(null)).await;
    assert_eq!(status, StatusCode::CONFLICT);
}
