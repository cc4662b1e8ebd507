//! Providers managed by admins: REST CRUD and the connection test over a real client, keys
//! sealed at rest and never shown, and agents running on a stored provider.

use crate::fake_llm::{self, Reply};
use crate::helpers::{error_code, spawn_app, spawn_app_with};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

const CANARY: &str = "sk-canary-7f3a9c1e55d04b2b";

fn answer(text: &str) -> Reply {
    let body = json!({
        "id": "c", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14},
    });
    Reply::Body(
        200,
        vec![("x-ratelimit-remaining-requests", "499".into())],
        body.to_string(),
    )
}

#[sqlx::test]
async fn admins_manage_providers_and_the_connection_test_calls_the_provider(pool: PgPool) {
    let fake = fake_llm::start(vec![answer("OK"), answer("OK from the page")]).await;
    let app = spawn_app(pool.clone()).await;
    let admin = app.admin().await;
    let res = admin
        .post(app.url("/api/v1/providers"))
        .json(&json!({
            "name": "local", "kind": "openai_compatible", "base_url": format!("{}/v1/", fake.url),
            "api_key": CANARY, "default_model": "m",
            "prices": {"m": {"input": 1000000, "output": 2000000, "cache_read": 0, "cache_write": 0}},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["api_key_set"], true);
    assert_eq!(created["base_url"], format!("{}/v1", fake.url));
    assert_eq!(created["breaker"], "closed");
    let id = created["id"].as_str().unwrap();

    let tested: Value = admin
        .post(app.url(&format!("/api/v1/providers/{id}/test")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tested["ok"], true, "{tested:#}");
    assert_eq!(tested["report"]["reply"], "OK");
    assert_eq!(tested["report"]["usage"]["input"], 12);
    let seen = fake.seen();
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(seen[0].headers["authorization"], format!("Bearer {CANARY}"));
    // The providers page's Test button: the same test through its server function.
    let from_page: Value = admin
        .post(app.url("/api/providers/test"))
        .form(&[("id", id)])
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(from_page["ok"], true, "{from_page:#}");
    assert_eq!(from_page["report"]["reply"], "OK from the page");
    let member = app.user_with_role("moe-member", "member").await;
    let res = member
        .post(app.url("/api/providers/test"))
        .form(&[("id", id)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // A new key is sealed under the next version; an empty one removes it.
    let patched: Value = admin
        .patch(app.url(&format!("/api/v1/providers/{id}")))
        .json(&json!({"api_key": "", "default_model": "m2"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(patched["api_key_set"], false);
    assert_eq!(patched["default_model"], "m2");
    let version: i32 = sqlx::query_scalar("select key_version from providers")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(version, 2);

    // Refusals, each with a reason.
    for (body, code) in [
        (
            json!({"name": "local", "kind": "openai_compatible", "base_url": "http://x", "default_model": "m"}),
            "conflict",
        ),
        (
            json!({"name": "simulated", "kind": "openai_compatible", "base_url": "http://x", "default_model": "m"}),
            "invalid",
        ),
        (
            json!({"name": "a", "kind": "anthropic", "base_url": "https://api.anthropic.com", "default_model": "m"}),
            "invalid",
        ),
        (
            json!({"name": "b", "kind": "openai_compatible", "base_url": "file:///etc", "default_model": "m"}),
            "invalid",
        ),
        (
            json!({"name": "c", "kind": "openai_compatible", "base_url": "http://x", "default_model": "m", "api_key": "a\nb"}),
            "invalid",
        ),
        (
            json!({"name": "d", "kind": "openai_compatible", "base_url": "http://x", "default_model": "m",
                "prices": {"m": {"input": -1, "output": 0, "cache_read": 0, "cache_write": 0}}}),
            "invalid",
        ),
        (
            json!({"name": "e", "kind": "gemini", "base_url": "http://x", "default_model": "m"}),
            "invalid",
        ),
    ] {
        let res = admin
            .post(app.url("/api/v1/providers"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(error_code(res).await, code, "{body}");
    }

    // Members (and viewers) may not see or change providers.
    let member = app.user_with_role("member-1", "member").await;
    let res = member
        .get(app.url("/api/v1/providers"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let res = admin
        .delete(app.url(&format!("/api/v1/providers/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = admin
        .get(app.url(&format!("/api/v1/providers/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let kinds: Vec<String> =
        sqlx::query_scalar("select type from events where type like 'provider.%' order by seq")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        kinds,
        ["provider.created", "provider.updated", "provider.deleted"]
    );
}

#[sqlx::test]
async fn a_key_never_leaks_and_a_ciphertext_moved_to_another_row_does_not_open(pool: PgPool) {
    // The provider echoes the key it refuses, as some do.
    let refusal = json!({"error": {"message": format!("Incorrect API key provided: {CANARY}"),
                                   "type": "invalid_request_error", "code": "invalid_api_key"}});
    let fake = fake_llm::start(vec![Reply::Body(401, Vec::new(), refusal.to_string())]).await;
    let app = spawn_app(pool.clone()).await;
    let admin = app.admin().await;
    let mut bodies = Vec::new();
    let mut ids = Vec::new();
    for name in ["leaky", "other"] {
        let res = admin
            .post(app.url("/api/v1/providers"))
            .json(&json!({"name": name, "kind": "openai_compatible",
                          "base_url": format!("{}/v1", fake.url), "api_key": CANARY,
                          "default_model": "m"}))
            .send()
            .await
            .unwrap();
        let text = res.text().await.unwrap();
        ids.push(
            serde_json::from_str::<Value>(&text).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        bodies.push(text);
    }
    let test = admin
        .post(app.url(&format!("/api/v1/providers/{}/test", ids[0])))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        test.contains("\"ok\":false") && test.contains("[api key]"),
        "{test}"
    );
    bodies.push(test);
    // An agent on it fails with the provider's (scrubbed) reason.
    let spawned = admin
        .post(app.url("/api/v1/agents"))
        .json(&json!({"name": "on-leaky", "capabilities": ["data_analysis"], "provider": "leaky"}))
        .send()
        .await
        .unwrap();
    assert_eq!(spawned.status(), StatusCode::CREATED);
    let agent: Value = spawned.json().await.unwrap();
    assert_eq!(agent["model"], "m", "the provider's default model");
    for path in [
        "/api/v1/providers".to_owned(),
        format!("/api/v1/providers/{}", ids[0]),
        "/api/v1/events?limit=1000".to_owned(),
        "/api/v1/agents".to_owned(),
    ] {
        bodies.push(
            admin
                .get(app.url(&path))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    for page in ["/", "/agents", "/events", "/providers"] {
        bodies.push(
            admin
                .get(app.url(page))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    for body in &bodies {
        assert!(!body.contains(CANARY), "the key leaked: {body}");
    }
    // At rest: no text column holds it, and the sealed bytes do not contain it.
    let dump: String = sqlx::query_scalar(
        "select string_agg(t::text, ' ') from (
             select data::text as t from events
             union all select coalesce(error, '') from llm_calls
             union all select row(p.*)::text from providers p) x",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(!dump.contains(CANARY));
    let sealed: Vec<Vec<u8>> = sqlx::query_scalar("select api_key_sealed from providers")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(
        sealed
            .iter()
            .all(|s| !s.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()))
    );

    // A's sealed key copied into B's row does not open there.
    sqlx::query(
        "update providers set api_key_sealed = (select api_key_sealed from providers where name = 'leaky')
         where name = 'other'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let calls_before = fake.seen().len();
    let res = admin
        .post(app.url(&format!("/api/v1/providers/{}/test", ids[1])))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("does not open"));
    assert_eq!(
        fake.seen().len(),
        calls_before,
        "nothing was sent with a key that did not open"
    );
}

#[sqlx::test]
async fn a_process_with_another_master_key_refuses_to_start(pool: PgPool) {
    let first = "11".repeat(32);
    let _app = spawn_app_with(pool.clone(), &[("FLOTILLA_SECRET_KEY", &first)]).await;
    let config = server::config::Config::from_lookup(|k| match k {
        "FLOTILLA_SECRET_KEY" => Some("22".repeat(32)),
        "FLOTILLA_ADDR" => Some("127.0.0.1:0".into()),
        "FLOTILLA_ADMIN_PASSWORD" => Some("a long enough password".into()),
        "FLOTILLA_LOG" => Some("off".into()),
        _ => None,
    })
    .unwrap();
    let err = server::startup::Application::build(
        config,
        server::startup::Database::from_pool(pool.clone()),
    )
    .await
    .err()
    .expect("refused");
    assert!(err.to_string().contains("another master key"), "{err}");
}

#[sqlx::test]
async fn an_agent_runs_on_a_provider_added_a_moment_before(pool: PgPool) {
    let fake = fake_llm::start(vec![answer("done on the stored provider")]).await;
    let app = spawn_app(pool.clone()).await;
    let admin = app.admin().await;
    let agents: Value = admin
        .get(app.url("/api/v1/agents"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for a in agents["items"].as_array().unwrap() {
        let id = a["id"].as_str().unwrap();
        let res = admin
            .post(app.url(&format!("/api/v1/agents/{id}/terminate")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    let res = admin
        .post(app.url("/api/v1/providers"))
        .json(&json!({"name": "local", "kind": "openai_compatible",
                      "base_url": format!("{}/v1", fake.url), "default_model": "m",
                      "prices": {"m": {"input": 1000000, "output": 1000000, "cache_read": 0, "cache_write": 0}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = admin
        .post(app.url("/api/v1/agents"))
        .json(&json!({"name": "stored-1", "provider": "local",
                      "capabilities": ["data_analysis", "web_scraping", "code_generation",
                                       "file_processing", "database_operations", "api_integration"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = app.submit(&admin, "Summarise the quarterly numbers").await;
    let task = app.finished(&admin, &id).await;
    assert_eq!(task["status"], "completed", "{task:#}");
    assert_eq!(task["subtasks"][0]["output"], "done on the stored provider");
    assert_eq!(fake.seen()[0].body["model"], "m");
    let (provider, cost): (String, i64) = sqlx::query_as(
        "select provider, cost_micros from llm_calls where purpose = 'execute' limit 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((provider.as_str(), cost), ("local", 14));
}

#[sqlx::test]
async fn the_agents_page_spawns_an_agent_on_a_chosen_provider_with_caps(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let admin = app.admin().await;
    let res = admin
        .post(app.url("/api/v1/providers"))
        .json(&json!({"name": "local", "kind": "openai_compatible",
                      "base_url": "http://127.0.0.1:9/v1", "default_model": "small-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let page = admin
        .get(app.url("/agents"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("data-testid=\"spawn-form\""),
        "the form is on the page"
    );
    let providers: Value = admin
        .get(app.url("/api/agents/providers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(providers, json!(["simulated", "local"]));
    // The form as a browser posts it, before any WASM has loaded.
    let spawned = admin
        .post(app.url("/api/agents/spawn"))
        .form(&[
            ("form[name]", "writer"),
            ("form[capabilities]", "code_generation, file_processing"),
            ("form[provider]", "local"),
            ("form[model]", ""),
            ("form[system_prompt]", "Be terse."),
            ("form[tools]", "read_file, write_file"),
            ("form[max_tokens]", "5000"),
            ("form[max_cost_micros]", ""),
        ])
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert!(spawned.status().is_success(), "{}", spawned.status());
    let (id, provider, model, prompt, tools): (uuid::Uuid, String, String, String, Vec<String>) =
        sqlx::query_as(
            "select id, provider, model, system_prompt, tools from agents where name = 'writer'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        (provider.as_str(), model.as_str(), prompt.as_str()),
        ("local", "small-1", "Be terse.")
    );
    assert_eq!(tools, ["read_file", "write_file"]);
    let usage: Value = admin
        .get(app.url(&format!("/api/v1/agents/{id}/usage")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(usage["budget"]["cap_tokens"], 5000);
    // An unknown provider is refused with the ones there are.
    let refused = admin
        .post(app.url("/api/agents/spawn"))
        .form(&[
            ("form[name]", "nowhere"),
            ("form[capabilities]", "code_generation"),
            ("form[provider]", "gemini"),
            ("form[model]", ""),
            ("form[system_prompt]", ""),
            ("form[max_tokens]", ""),
            ("form[max_cost_micros]", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text().await.unwrap().contains("simulated, local"));
}

#[sqlx::test]
async fn the_providers_page_adds_lists_and_removes_providers_without_showing_keys(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let admin = app.admin().await;
    let added = admin
        .post(app.url("/api/providers/create"))
        .form(&[
            ("name", "router"),
            ("kind", "openai_compatible"),
            ("base_url", "https://openrouter.ai/api/v1"),
            ("api_key", CANARY),
            ("default_model", "anthropic/claude-sonnet-4.5"),
            ("prices", "3,15"),
            ("json_format", "json_schema"),
        ])
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert!(added.status().is_success(), "{}", added.status());
    let page = admin
        .get(app.url("/providers"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("data-provider=\"router\""),
        "the row is on the page"
    );
    assert!(
        page.contains("$3.00 / $15.00"),
        "prices per million, as money"
    );
    assert!(!page.contains(CANARY));
    let member = app.user_with_role("member-2", "member").await;
    let res = member
        .get(app.url("/api/providers/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let refused = admin
        .post(app.url("/api/providers/create"))
        .form(&[
            ("name", "bad"),
            ("kind", "openai_compatible"),
            ("base_url", "http://x/v1"),
            ("api_key", ""),
            ("default_model", "m"),
            ("prices", "1,2,3"),
            ("json_format", "json_schema"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let id: uuid::Uuid = sqlx::query_scalar("select id from providers where name = 'router'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let removed = admin
        .post(app.url("/api/providers/delete"))
        .form(&[("id", id.to_string())])
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert!(removed.status().is_success());
    assert_eq!(
        crate::helpers::count(&pool, "select count(*) from providers").await,
        0
    );
}
