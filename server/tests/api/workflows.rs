//! Workflow endpoints: create, versions with a stale base refused, validation with reasons,
//! templates, export and import, permissions.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

fn chain() -> Value {
    json!({
        "inputs": [{"name": "topic", "type": "string", "required": true}],
        "nodes": [
            {"key": "a", "kind": "agent", "capability": "data_analysis", "prompt": "study {{inputs.topic}}",
             "position": {"x": 0.0, "y": 0.0}},
            {"key": "b", "kind": "agent", "capability": "data_analysis", "prompt": "sum up {{nodes.a.output}}",
             "position": {"x": 0.0, "y": 160.0}}
        ],
        "edges": [{"from": "a", "to": "b"}]
    })
}

fn export_of_chain() -> Value {
    json!({"schema_version": 1, "name": "Edge", "description": "", "definition": chain()})
}

async fn post(app: &TestApp, c: &reqwest::Client, path: &str, body: Value) -> (StatusCode, Value) {
    let res = c.post(app.url(path)).json(&body).send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn put(app: &TestApp, c: &reqwest::Client, path: &str, body: Value) -> (StatusCode, Value) {
    let res = c.put(app.url(path)).json(&body).send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[sqlx::test(migrations = false)]
async fn a_workflow_is_saved_in_versions_and_a_stale_base_is_a_conflict(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let c = app.admin().await;
    let (status, created) = post(
        &app,
        &c,
        "/api/v1/workflows",
        json!({"name": "Study", "definition": chain(), "message": "first"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["version"], 1);
    assert_eq!(created["state"], "ready", "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/workflows/{id}");

    // Two authors start from version 1; the first save wins, the second is told what happened.
    let mut edited = chain();
    edited["nodes"][1]["prompt"] = json!("shorten {{nodes.a.output}}");
    let (status, saved) = put(
        &app,
        &c,
        &path,
        json!({"base_version": 1, "definition": edited, "message": "shorter"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["version"], 2);
    let (status, stale) = put(
        &app,
        &c,
        &path,
        json!({"base_version": 1, "definition": chain()}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{stale}");
    assert_eq!(stale["error"]["field"], "base_version");
    assert!(
        stale["error"]["message"]
            .as_str()
            .unwrap()
            .contains("version 2 was saved after version 1"),
        "{stale}"
    );

    // Every version stays readable as it was saved.
    let v1 = app.get_json(&c, &format!("{path}?version=1")).await;
    assert_eq!(v1["definition"], chain());
    assert_eq!(v1["latest_version"], 2);
    let latest = app.get_json(&c, &path).await;
    assert_eq!(
        latest["definition"]["nodes"][1]["prompt"],
        "shorten {{nodes.a.output}}"
    );
    let history = app.get_json(&c, &format!("{path}/versions")).await;
    let versions: Vec<i64> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, vec![2, 1]);
    assert_eq!(history["items"][0]["message"], "shorter");
    assert_eq!(history["items"][0]["saved_by"], "admin");
    let res = c
        .get(app.url(&format!("{path}?version=9")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // Each save is an event naming the version.
    let events = app.get_json(&c, "/api/v1/events?type=workflow.saved").await;
    assert_eq!(events["items"][0]["data"]["version"], 2, "{events}");
    assert_eq!(
        count(&pool, "select count(*) from workflow_versions").await,
        2
    );
}

#[sqlx::test(migrations = false)]
async fn validation_answers_422_with_every_reason_and_the_cycle_path(pool: PgPool) {
    let app = spawn_app(pool).await;
    let c = app.admin().await;
    let cyclic = json!({
        "nodes": [
            {"key": "a", "kind": "agent", "capability": "data_analysis", "prompt": "x"},
            {"key": "b", "kind": "agent", "capability": "astrology", "prompt": "{{inputs.nope}}"},
            {"key": "c", "kind": "tool", "tool": "http_get", "arguments": {"url": "{{nodes.a.output}}"}}
        ],
        "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "a"}, {"from": "c", "to": "ghost"}]
    });
    let (status, body) = post(
        &app,
        &c,
        "/api/v1/workflows/validate",
        json!({"definition": cyclic}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "invalid");
    let issues = body["error"]["issues"].as_array().unwrap();
    let codes: Vec<&str> = issues.iter().map(|i| i["code"].as_str().unwrap()).collect();
    for want in [
        "unknown_capability",
        "dangling_edge",
        "cycle",
        "undeclared_reference",
    ] {
        assert!(codes.contains(&want), "{want} missing: {body}");
    }
    let cycle = issues.iter().find(|i| i["code"] == "cycle").unwrap();
    assert_eq!(cycle["path"].as_array().unwrap().len(), 3, "{cycle}");
    let dangling = issues
        .iter()
        .find(|i| i["code"] == "dangling_edge")
        .unwrap();
    assert_eq!(
        dangling["target"],
        json!({"kind": "edge", "index": 2, "from": "c", "to": "ghost"})
    );

    // A valid body passes; an export file is a valid body; another schema version is refused.
    let (status, ok) = post(
        &app,
        &c,
        "/api/v1/workflows/validate",
        json!({"definition": chain()}),
    )
    .await;
    assert_eq!(
        (status, ok["valid"].clone()),
        (StatusCode::OK, json!(true)),
        "{ok}"
    );
    let (status, _) = post(
        &app,
        &c,
        "/api/v1/workflows/validate",
        json!({"schema_version": 1, "name": "x", "definition": chain()}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, v2) = post(
        &app,
        &c,
        "/api/v1/workflows/validate",
        json!({"schema_version": 2, "definition": chain()}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v2["error"]["field"], "schema_version");

    // A draft saves (work in progress), and validating it stored names the same issues.
    let (status, draft) = post(
        &app,
        &c,
        "/api/v1/workflows",
        json!({"name": "Broken", "definition": cyclic}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(draft["state"], "draft");
    assert_eq!(draft["issues"].as_array().unwrap().len(), issues.len());
    let id = draft["id"].as_str().unwrap();
    let (status, again) = post(
        &app,
        &c,
        &format!("/api/v1/workflows/{id}/validate"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(again["error"]["issues"], body["error"]["issues"]);

    // A NUL cannot be stored: refused with a reason, not a database error.
    let mut nul = chain();
    nul["nodes"][0]["prompt"] = json!("a\u{0}b");
    let (status, err) = post(&app, &c, "/api/v1/workflows", json!({"definition": nul})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(err["error"]["field"], "definition");
}

#[sqlx::test(migrations = false)]
async fn agents_named_by_steps_must_exist_and_workflows_cannot_contain_themselves(pool: PgPool) {
    let app = spawn_app(pool).await;
    let c = app.admin().await;
    let named =
        json!({"nodes": [{"key": "a", "kind": "agent", "agent": "researcher", "prompt": "x"}]});
    let (status, body) = post(
        &app,
        &c,
        "/api/v1/workflows/validate",
        json!({"definition": named}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["issues"][0]["code"], "unknown_agent");
    let (status, _) = post(
        &app,
        &c,
        "/api/v1/agents",
        json!({"name": "researcher", "capabilities": ["data_analysis"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = post(
        &app,
        &c,
        "/api/v1/workflows/validate",
        json!({"definition": named}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // outer v1 runs inner v1; saving inner v2 to run outer v1 would close a loop.
    let (_, inner) = post(
        &app,
        &c,
        "/api/v1/workflows",
        json!({"name": "inner", "definition": chain()}),
    )
    .await;
    let inner_id = inner["id"].as_str().unwrap().to_owned();
    let runs = |id: &str| {
        json!({"nodes": [{"key": "sub", "kind": "workflow", "workflow_id": id, "version": 1,
                          "inputs": {"topic": "tides"}}]})
    };
    let (_, outer) = post(
        &app,
        &c,
        "/api/v1/workflows",
        json!({"name": "outer", "definition": runs(&inner_id)}),
    )
    .await;
    assert_eq!(outer["state"], "ready", "{outer}");
    let outer_id = outer["id"].as_str().unwrap().to_owned();
    let mut looped = runs(&outer_id);
    looped["nodes"][0]["inputs"] = json!({});
    let (status, saved) = put(
        &app,
        &c,
        &format!("/api/v1/workflows/{inner_id}"),
        json!({"base_version": 1, "definition": looped}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let codes: Vec<&str> = saved["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, vec!["recursive"], "{saved}");
    // Missing the inner workflow's required input is named too.
    let mut missing = runs(&inner_id);
    missing["nodes"][0]["inputs"] = json!({});
    let (_, body) = post(
        &app,
        &c,
        "/api/v1/workflows/validate",
        json!({"definition": missing}),
    )
    .await;
    assert_eq!(
        body["error"]["issues"][0]["code"], "missing_input",
        "{body}"
    );
}

#[sqlx::test(migrations = false)]
async fn templates_instantiate_and_exports_round_trip(pool: PgPool) {
    let app = spawn_app(pool).await;
    let c = app.admin().await;
    let templates = app.get_json(&c, "/api/v1/workflow-templates").await;
    let builtin: Vec<&str> = templates["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["builtin"] == true)
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        builtin,
        vec!["research-brief", "code-change", "data-pipeline"]
    );
    for slug in &builtin {
        let (status, w) = post(
            &app,
            &c,
            "/api/v1/workflows",
            json!({"from_template": slug}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{w}");
        assert_eq!(w["state"], "ready", "{slug}: {w}");
    }
    let (status, err) = post(
        &app,
        &c,
        "/api/v1/workflows",
        json!({"from_template": "nope"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["error"]["field"], "from_template");

    // Save as template, then instantiate the saved one by id.
    let (_, w) = post(
        &app,
        &c,
        "/api/v1/workflows",
        json!({"name": "Mine", "definition": chain()}),
    )
    .await;
    let id = w["id"].as_str().unwrap();
    let (status, t) = post(
        &app,
        &c,
        &format!("/api/v1/workflows/{id}/template"),
        json!({"name": "Mine as a template"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    assert_eq!(t["is_template"], true);
    let listed = app.get_json(&c, "/api/v1/workflow-templates").await;
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == t["id"])
    );
    let (status, from_saved) = post(
        &app,
        &c,
        "/api/v1/workflows",
        json!({"from_template": t["id"], "name": "Copy"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(from_saved["definition"], chain());
    assert_eq!(from_saved["is_template"], false);
    let plain = app.get_json(&c, "/api/v1/workflows").await;
    assert!(
        plain["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["is_template"] == false)
    );
    let only = app.get_json(&c, "/api/v1/workflows?template=true").await;
    assert_eq!(only["items"].as_array().unwrap().len(), 1);

    // Export, import: the same workflow under a new id; another schema version is refused.
    let export = app
        .get_json(&c, &format!("/api/v1/workflows/{id}/export"))
        .await;
    assert_eq!(export["schema_version"], 1);
    let (status, imported) = post(&app, &c, "/api/v1/workflows/import", export.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{imported}");
    assert_ne!(imported["id"], w["id"]);
    assert_eq!(
        (imported["name"].clone(), imported["definition"].clone()),
        (json!("Mine"), chain())
    );
    let mut future = export;
    future["schema_version"] = json!(2);
    let (status, err) = post(&app, &c, "/api/v1/workflows/import", future).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("schema_version 2 is not supported")
    );

    // A number Postgres would print back past f64's range is refused by path, not stored
    // (it once made every later read of the version a 500).
    let mut huge = export_of_chain();
    huge["definition"]["nodes"][1]["position"]["y"] = json!(1.797_693_134_862_315_5e308);
    let (status, err) = post(&app, &c, "/api/v1/workflows/import", huge).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(err["error"]["field"], "definition");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(message.contains("$.nodes[1].position.y"), "{message}");
    // The largest exact magnitude round-trips through the database unchanged.
    let mut edge = export_of_chain();
    edge["definition"]["nodes"][1]["position"]["y"] = json!(-9_007_199_254_740_991.0);
    let (status, stored) = post(&app, &c, "/api/v1/workflows/import", edge.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    let back = app
        .get_json(
            &c,
            &format!("/api/v1/workflows/{}", stored["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(back["definition"], edge["definition"]);
}

#[sqlx::test(migrations = false)]
async fn viewers_read_workflows_but_cannot_change_them(pool: PgPool) {
    let app = spawn_app(pool).await;
    let admin = app.admin().await;
    let (_, w) = post(
        &app,
        &admin,
        "/api/v1/workflows",
        json!({"name": "Shared", "definition": chain()}),
    )
    .await;
    let id = w["id"].as_str().unwrap();
    let viewer = app.user_with_role("vic", "viewer").await;
    let read = app
        .get_json(&viewer, &format!("/api/v1/workflows/{id}"))
        .await;
    assert_eq!(read["name"], "Shared");
    let (status, _) = put(
        &app,
        &viewer,
        &format!("/api/v1/workflows/{id}"),
        json!({"base_version": 1, "definition": chain()}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = post(
        &app,
        &viewer,
        "/api/v1/workflows",
        json!({"definition": chain()}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
