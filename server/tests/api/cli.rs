//! The `flotilla` client commands, run as the real binary against the app on port 0.

use crate::helpers::*;
use serde_json::Value;
use sqlx::PgPool;
use std::process::{Command, Output, Stdio};

/// Runs `flotilla args…` with its config directory in `home`.
fn flotilla(home: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flotilla"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("XDG_CONFIG_HOME", home)
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the binary runs")
}

async fn run(home: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let (home, env, args): (std::path::PathBuf, Vec<(String, String)>, Vec<String>) = (
        home.to_owned(),
        env.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        args.iter().map(|a| a.to_string()).collect(),
    );
    tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        flotilla(&home, &env, &args)
    })
    .await
    .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[sqlx::test(migrations = false)]
async fn login_then_submit_and_watch_a_task_to_completion(pool: PgPool) {
    let app = spawn_app_with(pool, &[("FLOTILLA_SIM_LATENCY_MS", "50")]).await;
    let home = tempdir();
    let wrong = run(
        &home,
        &[("FLOTILLA_PASSWORD", "not it")],
        &["login", "--url", &app.base, "--username", "admin"],
    )
    .await;
    assert_eq!(wrong.status.code(), Some(3), "a refused login is exit 3");
    let ok = run(
        &home,
        &[("FLOTILLA_PASSWORD", ADMIN_PASSWORD)],
        &["login", "--url", &app.base, "--username", "admin"],
    )
    .await;
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let saved = home.join("flotilla/credentials.json");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the token file is private");

    let watched = run(
        &home,
        &[],
        &[
            "task",
            "submit",
            "Scrape the pricing website. Summarise the report.",
            "--watch",
            "--json",
        ],
    )
    .await;
    assert_eq!(
        watched.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&watched.stderr)
    );
    let task: Value = serde_json::from_str(stdout(&watched).trim()).expect("one JSON task");
    assert_eq!(task["status"], "completed");
    assert_eq!(task["subtasks"].as_array().unwrap().len(), 2);

    let failing = run(
        &home,
        &[],
        &["task", "submit", "Count the rows [fail]", "--watch"],
    )
    .await;
    assert_eq!(failing.status.code(), Some(1), "a failed task is exit 1");

    let listed = run(&home, &[], &["task", "list", "--json"]).await;
    let list: Value = serde_json::from_str(stdout(&listed).trim()).unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let agents = run(&home, &[], &["agent", "list"]).await;
    assert_eq!(
        stdout(&agents).lines().count(),
        5,
        "the default fleet, a line each"
    );
    let spawned = run(
        &home,
        &[],
        &[
            "agent",
            "spawn",
            "scout",
            "-c",
            "web_scraping",
            "-c",
            "data_analysis",
            "--json",
        ],
    )
    .await;
    assert_eq!(
        spawned.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&spawned.stderr)
    );
    let scout: Value = serde_json::from_str(stdout(&spawned).trim()).unwrap();
    assert_eq!(scout["state"], "idle");
    assert_eq!(
        scout["capabilities"],
        serde_json::json!(["web_scraping", "data_analysis"])
    );
    let id = scout["id"].as_str().unwrap();
    let paused = run(&home, &[], &["agent", "pause", id]).await;
    assert_eq!(paused.status.code(), Some(0));
    let got = run(&home, &[], &["agent", "get", id, "--json"]).await;
    let got: Value = serde_json::from_str(stdout(&got).trim()).unwrap();
    assert_eq!(got["state"], "paused");
    let refused = run(&home, &[], &["agent", "spawn", "x", "-c", "telepathy"]).await;
    assert_eq!(
        refused.status.code(),
        Some(1),
        "a refused request is exit 1"
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("telepathy"));

    // The history through the CLI is exactly the REST pager's.
    let admin = app.admin().await;
    app.settle_events(&admin).await;
    let events = run(&home, &[], &["events", "--json"]).await;
    let seqs: Vec<i64> = stdout(&events)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_i64()
                .unwrap()
        })
        .collect();
    let rest = app.get_json(&admin, "/api/v1/events?limit=1000").await;
    let rest: Vec<i64> = rest["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, rest);

    let usage = run(&home, &[], &["task", "frobnicate"]).await;
    assert_eq!(usage.status.code(), Some(2), "usage errors are exit 2");
    let nowhere = run(
        &home,
        &[
            ("FLOTILLA_URL", "http://127.0.0.1:9"),
            ("FLOTILLA_TOKEN", "flt_x"),
        ],
        &["task", "list"],
    )
    .await;
    assert_eq!(
        nowhere.status.code(),
        Some(3),
        "an unreachable server is exit 3"
    );
}

/// A fresh directory under the system's temporary directory.
fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("flotilla-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[sqlx::test(migrations = false)]
async fn events_follow_resumes_across_a_server_side_close_without_loss_or_repeat(pool: PgPool) {
    use std::io::BufRead;
    let app = spawn_app_with(pool.clone(), &[("FLOTILLA_ENGINE", "off")]).await;
    let member = app.user_with_role("fred", "member").await;
    let token = app.create_token(&member, "follower").await;
    let token = token["token"].as_str().unwrap().to_owned();
    let home = tempdir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args(["events", "--follow", "--after", "0", "--json"])
        .env_clear()
        .env("XDG_CONFIG_HOME", &home)
        .env("FLOTILLA_URL", &app.base)
        .env("FLOTILLA_TOKEN", &token)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let out = child.stdout.take().unwrap();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let produce = |n: usize| {
        let pool = pool.clone();
        async move {
            for i in 0..n {
                let mut tx = pool.begin().await.unwrap();
                app::db::events::append(
                    &mut tx,
                    app::db::events::NewEvent::new(
                        app::domain::event::EventKind::Marker,
                        format!("probe/{i}"),
                    ),
                )
                .await
                .unwrap();
                tx.commit().await.unwrap();
            }
        }
    };
    let admin = app.admin().await;
    let all_seqs = || async {
        app.settle_events(&admin).await;
        let rest = app.get_json(&admin, "/api/v1/events?limit=1000").await;
        rest["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .collect::<Vec<i64>>()
    };
    let seen = |lines: &std::sync::Arc<std::sync::Mutex<Vec<String>>>| -> Vec<i64> {
        lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["seq"]
                    .as_i64()
                    .unwrap()
            })
            .collect()
    };
    let wait_until = |want: Vec<i64>| {
        let lines = lines.clone();
        async move {
            for _ in 0..200 {
                if seen(&lines).len() >= want.len() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            assert_eq!(seen(&lines), want);
        }
    };
    produce(20).await;
    wait_until(all_seqs().await).await;
    // The server closes fred's stream (his role changed) while events keep coming.
    let me = app.get_json(&member, "/api/v1/session").await;
    let res = admin
        .patch(app.url(&format!("/api/v1/users/{}", me["id"].as_str().unwrap())))
        .json(&serde_json::json!({ "role": "viewer" }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    produce(30).await;
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    produce(30).await;
    wait_until(all_seqs().await).await;
    child.kill().unwrap();
    let _ = child.wait();
}

#[sqlx::test(migrations = false)]
async fn workflows_are_validated_run_watched_and_approved_from_the_cli(pool: PgPool) {
    let app = spawn_app(pool).await;
    let home = tempdir();
    let login = run(
        &home,
        &[("FLOTILLA_PASSWORD", ADMIN_PASSWORD)],
        &["login", "--url", &app.base, "--username", "admin"],
    )
    .await;
    assert_eq!(login.status.code(), Some(0));
    let agent = |key: &str, prompt: &str| serde_json::json!({"key": key, "kind": "agent", "capability": "data_analysis", "prompt": prompt});
    let cyclic = home.join("cyclic.json");
    std::fs::write(
        &cyclic,
        serde_json::json!({"schema_version": 1, "name": "loop", "definition": {
            "nodes": [agent("a", "x"), agent("b", "y")],
            "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "a"}]}})
        .to_string(),
    )
    .unwrap();
    let refused = run(
        &home,
        &[],
        &["workflow", "validate", cyclic.to_str().unwrap()],
    )
    .await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stdout(&refused).contains("form a cycle"),
        "{}",
        stdout(&refused)
    );
    let as_json = run(
        &home,
        &[],
        &["workflow", "validate", cyclic.to_str().unwrap(), "--json"],
    )
    .await;
    let verdict: Value = serde_json::from_str(&stdout(&as_json)).unwrap();
    assert_eq!(verdict["valid"], false);
    assert_eq!(verdict["issues"][0]["code"], "cycle");

    // A workflow with an input and an approval, created over REST, run from the CLI.
    let c = app.admin().await;
    let definition = serde_json::json!({
        "inputs": [{"name": "topic", "required": true}],
        "nodes": [agent("draft", "draft {{inputs.topic}}"),
                  {"key": "review", "kind": "approval", "prompt": "ok?"}, agent("ship", "ship")],
        "edges": [{"from": "draft", "to": "review"}, {"from": "review", "to": "ship"}]
    });
    let valid = home.join("valid.json");
    std::fs::write(
        &valid,
        serde_json::json!({ "definition": definition }).to_string(),
    )
    .unwrap();
    let ok = run(
        &home,
        &[],
        &["workflow", "validate", valid.to_str().unwrap()],
    )
    .await;
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    let created: Value = c
        .post(app.url("/api/v1/workflows"))
        .json(&serde_json::json!({"name": "Ship it", "definition": definition}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let listed = run(&home, &[], &["workflow", "list", "--json"]).await;
    let listed: Value = serde_json::from_str(&stdout(&listed)).unwrap();
    assert_eq!(listed["items"][0]["id"], id);
    let missing = run(&home, &[], &["workflow", "run", id]).await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("input topic: input 'topic' is required")
    );

    let started = run(
        &home,
        &[],
        &["workflow", "run", id, "-i", "topic=tides", "--json"],
    )
    .await;
    assert_eq!(
        started.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    let run_id = serde_json::from_str::<Value>(&stdout(&started)).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for(&c, &app.url(&format!("/api/v1/runs/{run_id}")), 30, |r| {
        r["nodes"][1]["waiting_for_approval"] == true
    })
    .await;
    let approved = run(
        &home,
        &[],
        &["run", "approve", &run_id, "review", "--comment", "fine"],
    )
    .await;
    assert_eq!(
        approved.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    let twice = run(&home, &[], &["run", "approve", &run_id, "review"]).await;
    assert_eq!(twice.status.code(), Some(1), "a second decision is refused");
    let watched = run(&home, &[], &["run", "watch", &run_id, "--json"]).await;
    assert_eq!(watched.status.code(), Some(0));
    let done: Value = serde_json::from_str(&stdout(&watched)).unwrap();
    assert_eq!(done["status"], "completed");
    assert_eq!(done["nodes"][0]["prompt"], "draft tides");
}
