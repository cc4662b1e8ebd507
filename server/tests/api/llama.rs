//! The OpenAI-compatible client against a real model server: llama.cpp's (llama-cpp-python)
//! with SmolLM2-135M, both from PyPI, installed by `.ci/setup`. A server that does not start
//! fails the test: it never skips. The model is tiny and its answers poor (it likes absolute
//! paths), which is what the workspace guard is for; the assertions are about the wire, the
//! loop and the ledger, not about the answers' quality.

use crate::helpers::{spawn_app_with, wait_for};
use serde_json::Value;
use server::engine::provider::check;
use server::llm::openai::{JsonFormat, OpenAi, OpenAiConfig};
use server::llm::{ChatRequest, HttpSettings, Model};
use sqlx::PgPool;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The llama.cpp server, killed when dropped.
struct LlamaServer {
    child: Child,
    base_url: String,
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server's log, kept in the temp dir for a failing run to be read.
fn log_file(port: u16) -> Stdio {
    let path = std::env::temp_dir().join(format!("flotilla-llama-{port}.log"));
    std::fs::File::create(&path).map_or(Stdio::null(), Stdio::from)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_llama() -> LlamaServer {
    let python = std::env::var("FLOTILLA_LLAMA_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/.cache/flotilla/llama/bin/python",
            std::env::var("HOME").unwrap()
        )
    });
    let venv = std::path::Path::new(&python)
        .parent()
        .and_then(|p| p.parent())
        .unwrap()
        .to_owned();
    let find = Command::new("find")
        .arg(&venv)
        .args(["-name", "SmolLM2-135M-Instruct.Q4_1.gguf"])
        .output()
        .expect("find runs");
    let model = String::from_utf8(find.stdout).unwrap();
    let model = model
        .lines()
        .next()
        .unwrap_or_else(|| panic!("SmolLM2-135M is not installed under {venv:?}: run .ci/setup"));
    let port = free_port();
    let child = Command::new(&python)
        .args([
            "-m",
            "llama_cpp.server",
            "--model",
            model,
            "--host",
            "127.0.0.1",
        ])
        .args(["--port", &port.to_string(), "--n_ctx", "4096"])
        .args(["--chat_format", "chatml-function-calling", "--seed", "7"])
        .stdout(Stdio::null())
        .stderr(log_file(port))
        .spawn()
        .unwrap_or_else(|e| panic!("{python} does not start: {e} (run .ci/setup)"));
    let mut server = LlamaServer {
        child,
        base_url: format!("http://127.0.0.1:{port}/v1"),
    };
    let http = crate::helpers::plain_client();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(res) = http.get(format!("{}/models", server.base_url)).send().await
            && res.status().is_success()
        {
            return server;
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("the llama.cpp server exited: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "the llama.cpp server did not start in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn client(server: &LlamaServer) -> OpenAi {
    OpenAi::new(
        &OpenAiConfig {
            base_url: server.base_url.clone(),
            api_key: None,
            extra_headers: Vec::new(),
            json_format: JsonFormat::JsonObject,
        },
        &HttpSettings::default(),
    )
    .unwrap()
}

#[tokio::test]
async fn the_connection_test_and_a_planner_call_under_a_json_schema() {
    let server = start_llama().await;
    let llama = client(&server);
    let report = check(&llama, "smollm2")
        .await
        .expect("the connection test passes");
    assert!(
        report.usage.input > 0 && report.usage.output > 0,
        "{report:?}"
    );
    assert!(report.latency_ms > 0);

    // The plan schema, grammar-constrained by the server: the answer is JSON of its shape.
    let schema = app::domain::plan::plan_request_schema(&app::domain::agent::CAPABILITIES);
    let mut req = ChatRequest::new(
        "smollm2",
        "You split a task into subtasks.",
        "Split into subtasks: fetch the weather, then summarise it.".to_owned(),
    );
    req.json_schema = Some(("plan".into(), schema));
    req.max_tokens = 400;
    let answer = llama.chat(&req).await.expect("a planner answer");
    let plan: Value = serde_json::from_str(&answer.text())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", answer.text()));
    let subtasks = plan["subtasks"].as_array().expect("subtasks");
    assert!(!subtasks.is_empty());
    for s in subtasks {
        assert!(s["key"].is_string() && s["description"].is_string(), "{s}");
        assert!(
            s["depends_on"].is_array() && s["required_capabilities"].is_array(),
            "{s}"
        );
    }
}

#[sqlx::test]
async fn a_task_runs_on_the_real_model_with_its_tools_guarded_and_every_call_counted(pool: PgPool) {
    let server = start_llama().await;
    let data = std::env::temp_dir().join(format!("flotilla-llama-{}", uuid::Uuid::new_v4()));
    let app = spawn_app_with(
        pool.clone(),
        &[
            ("OPENAI_BASE_URL", &server.base_url),
            ("FLOTILLA_OPENAI_MODEL", "smollm2"),
            ("FLOTILLA_OPENAI_JSON_FORMAT", "json_object"),
            ("FLOTILLA_OPENAI_PRICES", "0.10,0.40"),
            ("FLOTILLA_AGENT_MAX_STEPS", "3"),
            // CPU inference on a busy 2-core machine: a step with the tools' schemas in its
            // prompt can take minutes.
            ("FLOTILLA_LLM_TIMEOUT_SECS", "600"),
            ("FLOTILLA_RETRY_MAX_ATTEMPTS", "1"),
            ("FLOTILLA_DATA_DIR", &data.to_string_lossy()),
        ],
    )
    .await;
    let admin = app.admin().await;
    let id = app
        .submit(
            &admin,
            "Write the word hello into a file named greeting.txt",
        )
        .await;
    let url = app.url(&format!("/api/v1/tasks/{id}"));
    let task = wait_for(&admin, &url, 1500, |t| {
        matches!(t["status"].as_str(), Some("completed" | "failed"))
    })
    .await;

    // Every call is in the ledger with its tokens and a cost at the declared prices.
    let usage = &task["usage"];
    assert!(
        usage["calls"].as_i64().unwrap() >= 2,
        "a plan and a step: {task:#}"
    );
    assert!(usage["input"].as_i64().unwrap() > 0 && usage["output"].as_i64().unwrap() > 0);
    assert!(usage["cost_micros"].as_i64().unwrap() > 0, "{usage}");
    let calls: Vec<(String, String, i64, Option<String>)> = sqlx::query_as(
        "select purpose, model, input_tokens + output_tokens, error from llm_calls
         where run_id = $1::uuid",
    )
    .bind(&id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(calls.iter().any(|(p, ..)| p == "plan"));
    assert!(
        calls
            .iter()
            .any(|(p, _, t, e)| p == "execute" && *t > 0 && e.is_none()),
        "a subtask step answered: {calls:?}"
    );
    assert!(
        calls
            .iter()
            .all(|(_, m, t, e)| m == "smollm2" && (*t > 0) == e.is_none()),
        "answered calls have tokens, failed ones a reason: {calls:?}"
    );

    // Whatever paths the model picked, nothing was written outside the agent's workspace:
    // each write it asked for either landed inside or was refused.
    app.settle_events(&admin).await;
    let events: Value = admin
        .get(app.url(&format!("/api/v1/events?task_id={id}&limit=500")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = events["items"].as_array().unwrap();
    let called: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "tool.called")
        .collect();
    let results: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "tool.result")
        .collect();
    assert_eq!(called.len(), results.len(), "every call has its result");
    for (call, result) in called.iter().zip(&results) {
        assert_eq!(call["data"]["call_id"], result["data"]["call_id"]);
        if call["data"]["tool"] != "write_file" {
            continue;
        }
        let args: Value =
            serde_json::from_str(call["data"]["arguments"].as_str().unwrap()).unwrap_or_default();
        let Some(path) = args["path"].as_str() else {
            continue;
        };
        let agent = call["agent_id"].as_str().unwrap();
        let root = data.join("workspaces").join(agent);
        if result["data"]["is_error"] == true {
            if std::path::Path::new(path).is_absolute() {
                assert!(!std::path::Path::new(path).exists(), "{path} was written");
            }
        } else {
            assert!(root.join(path).is_file(), "{path} is not in the workspace");
        }
    }
    let _ = std::fs::remove_dir_all(&data);
}
