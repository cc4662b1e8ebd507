//! The tools that reach beyond the workspace: `sql_query` as a role of its own (privileges and a
//! READ ONLY transaction, not a text check), `run_command` as a user of its own in namespaces of
//! its own; tools given per agent, `run_command` by admins only; an agent's provider, model and
//! tools changed over REST.

use crate::fake_llm::{self, Reply};
use crate::helpers::{count, spawn_app_with};
use serde_json::{Value, json};
use server::tools::command::{Commands, agent_uid};
use server::tools::sql::SqlTool;
use server::tools::{Services, Toolbox, http_get};
use sqlx::PgPool;
use std::sync::Arc;

#[sqlx::test]
async fn sql_query_reads_the_listed_views_and_nothing_else(pool: PgPool) {
    server::startup::migrate(&pool).await.unwrap();
    sqlx::query(
        "insert into runs (id, kind, description, priority, status)
         values (gen_random_uuid(), 'task', 'count me', 0, 'pending')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let tool = SqlTool::new(pool.clone(), Some("0123abcd".repeat(4)));

    let rows = tool
        .query("select description, status from agent_views.tasks;")
        .await
        .unwrap();
    let rows: Value = serde_json::from_str(&rows).unwrap();
    assert_eq!(
        rows,
        json!([{"description": "count me", "status": "pending"}])
    );
    let n = tool
        .query("select count(*) as n from agent_views.tasks")
        .await
        .unwrap();
    assert_eq!(n, r#"[{"n":1}]"#);

    // Each refused by Postgres, whatever the text looks like. The superuser is whoever runs
    // the tests' cluster (`postgres` here, another name in CI).
    let superuser: String = sqlx::query_scalar("select current_user::text")
        .fetch_one(&pool)
        .await
        .unwrap();
    let set_config = format!("select set_config('role', '{superuser}', false)");
    let set_role = format!("set role \"{superuser}\"");
    for (sql, because) in [
        ("select * from users", "permission denied"),
        ("select token_hash from api_tokens", "permission denied"),
        ("select api_key_sealed from providers", "permission denied"),
        ("select * from pg_authid", "permission denied"),
        ("select pg_read_file('/etc/passwd')", "permission denied"),
        (
            "with x as (delete from runs returning id) select * from x",
            "read-only|permission denied",
        ),
        (
            "delete from agent_views.tasks",
            "read-only|permission denied",
        ),
        (
            "update agent_views.tasks set status = 'failed'",
            "read-only|permission denied",
        ),
        (
            "select nextval('events_seq_seq')",
            "read-only|permission denied|does not exist",
        ),
        (set_config.as_str(), "permission denied"),
        (set_role.as_str(), "permission denied"),
        ("select 1; delete from runs", "multiple commands"),
        ("select pg_sleep(30)", "statement timeout"),
    ] {
        let err = tool.query(sql).await.expect_err(sql);
        assert!(because.split('|').any(|b| err.contains(b)), "{sql}: {err}");
    }
    assert_eq!(
        count(&pool, "select count(*) from runs where status = 'pending'").await,
        1
    );
    // Types without a JSON form ask for a cast instead of failing.
    let err = tool.query("select 1.5::numeric as x").await.unwrap_err();
    assert!(err.contains("x::text"), "{err}");
}

fn toolbox(data: &std::path::Path, agent: uuid::Uuid, allowed: &[&str]) -> Toolbox {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .connect_lazy("postgres://nobody@127.0.0.1:1/none")
        .unwrap();
    let services = Arc::new(Services {
        http: http_get::HttpGet::new(http_get::Policy::default()).unwrap(),
        sql: SqlTool::new(pool.clone(), None),
        commands: Commands::new(data.to_owned()),
    });
    Toolbox::new(
        pool,
        app::domain::ids::RunId(uuid::Uuid::nil()),
        &data.join("workspaces"),
        app::domain::ids::AgentId(agent),
        services,
        allowed.iter().map(|t| (*t).to_owned()).collect(),
    )
}

#[tokio::test]
async fn run_command_runs_as_its_own_user_without_network_secrets_or_a_way_out() {
    let data = own_data_dir();
    std::fs::create_dir_all(&data).unwrap();
    // What the server keeps and a command must not read: the master key, another file of the
    // data directory, a world-readable file in /tmp.
    std::fs::write(data.join("secret.key"), "the master key").unwrap();
    std::fs::write(data.join("notes.txt"), "server notes").unwrap();
    let canary = std::env::temp_dir().join(format!("flotilla-canary-{}", uuid::Uuid::new_v4()));
    std::fs::write(&canary, "tmp canary").unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();

    let agent = uuid::Uuid::new_v4();
    let mut tb = toolbox(&data, agent, &["write_file", "read_file", "run_command"]);
    let out = tb
        .call(
            "write_file",
            &json!({"path": "projects/in.txt", "content": "six"}),
        )
        .await;
    assert!(!out.is_error, "{}", out.content);

    // Its own uid, no groups; the workspace is its working directory and writable.
    let out = tb
        .call(
            "run_command",
            &json!({"command": "id -u; id -G; pwd; cat projects/in.txt; echo 42 > projects/out.txt"}),
        )
        .await;
    assert!(!out.is_error, "{}", out.content);
    let uid = agent_uid(agent).to_string();
    assert!(out.content.starts_with("exit code 0"), "{}", out.content);
    let lines: Vec<&str> = out.content.lines().collect();
    assert_eq!(
        &lines[2..6],
        &[uid.as_str(), uid.as_str(), "/mnt", "six"],
        "{}",
        out.content
    );
    let out = tb
        .call("read_file", &json!({"path": "projects/out.txt"}))
        .await;
    assert_eq!(out.content, "42\n");

    // Nothing of the server's: the data directory and /tmp are empty, other processes unseen,
    // no network (not even loopback), no way back to root.
    for (command, expect) in [
        (
            format!("cat {}", data.join("secret.key").display()),
            "No such file",
        ),
        (
            format!("cat {}", data.join("notes.txt").display()),
            "No such file",
        ),
        (format!("cat {}", canary.display()), "No such file"),
        (
            "cat /root/.bashrc /etc/shadow".to_owned(),
            "Permission denied",
        ),
        (
            format!(
                "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {port}), 2)'"
            ),
            "Network is unreachable",
        ),
        (
            "setpriv --reuid=0 --regid=0 --clear-groups id -u".to_owned(),
            "not permitted",
        ),
    ] {
        let out = tb.call("run_command", &json!({ "command": command })).await;
        assert!(out.is_error, "{command}: {}", out.content);
        assert!(out.content.contains(expect), "{command}: {}", out.content);
        assert!(!out.content.contains("the master key"));
    }
    assert!(
        listener.accept().is_err(),
        "nothing reached the loopback listener"
    );
    // Its own PID namespace: not one of the machine's processes is in sight.
    let out = tb
        .call(
            "run_command",
            &json!({"command": "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done"}),
        )
        .await;
    assert!(!out.is_error, "{}", out.content);
    let me = std::env::current_exe().unwrap();
    let me = me.file_name().unwrap().to_str().unwrap();
    assert!(
        !out.content.contains(me),
        "the test process is visible: {}",
        out.content
    );
    assert!(!out.content.contains("postgres"), "{}", out.content);

    // At the time limit the whole namespace dies, a background process included.
    let marker = format!("{}.{}", 900 + rand_digit(agent), agent.as_u128() % 100_000);
    let out = tb
        .call(
            "run_command",
            &json!({"command": format!("sleep {marker} & sleep {marker}"), "timeout_secs": 1}),
        )
        .await;
    assert!(
        out.is_error && out.content.contains("killed at the time limit"),
        "{}",
        out.content
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !processes().iter().any(|cmd| cmd.contains(&marker)),
        "a process of the command outlived it"
    );

    // Output is capped; a bad timeout and a tool not given are refused with reasons.
    let out = tb
        .call("run_command", &json!({"command": "yes | head -c 200000"}))
        .await;
    assert!(
        out.content
            .contains("[output cut at 32768 bytes of 200000]"),
        "{}",
        &out.content[..100]
    );
    let out = tb
        .call(
            "run_command",
            &json!({"command": "true", "timeout_secs": 0}),
        )
        .await;
    assert!(out.is_error && out.content.contains("timeout_secs"));
    let mut without = toolbox(&data, agent, &["read_file"]);
    let out = without
        .call("run_command", &json!({"command": "true"}))
        .await;
    assert!(
        out.is_error && out.content.contains("not given"),
        "{}",
        out.content
    );

    let _ = std::fs::remove_file(&canary);
    let _ = std::fs::remove_dir_all(&data);
}

/// A data directory of the test's own (the shared one holds the other tests' master key).
fn own_data_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("flotilla-tools-{}", uuid::Uuid::new_v4()))
}

fn rand_digit(agent: uuid::Uuid) -> u128 {
    agent.as_u128() % 90
}

/// The command lines of every process on the machine.
fn processes() -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            e.file_name().to_str()?.parse::<u32>().ok()?;
            let raw = std::fs::read(e.path().join("cmdline")).ok()?;
            Some(String::from_utf8_lossy(&raw).replace('\0', " "))
        })
        .collect()
}

fn completion(message: Value, finish: &str) -> Reply {
    let body = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "scripted-1",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110},
    });
    Reply::Body(200, Vec::new(), body.to_string())
}

fn tool_call(id: &str, name: &str, args: Value) -> Reply {
    completion(
        json!({"role": "assistant", "content": null, "tool_calls": [{
            "id": id, "type": "function",
            "function": {"name": name, "arguments": args.to_string()}}]}),
        "tool_calls",
    )
}

#[sqlx::test]
async fn agents_get_the_tools_they_are_given_and_only_admins_give_run_command(pool: PgPool) {
    let plan = json!({"subtasks": [{"key": "count", "description": "Count the tasks",
                                     "required_capabilities": [], "depends_on": []}]});
    let fake = fake_llm::start(vec![
        completion(
            json!({"role": "assistant", "content": plan.to_string()}),
            "stop",
        ),
        tool_call(
            "call_q",
            "sql_query",
            json!({"query": "select count(*) as n from agent_views.tasks"}),
        ),
        tool_call(
            "call_c",
            "run_command",
            json!({"command": "echo $((6 * 7)) > projects/answer.txt && cat projects/answer.txt"}),
        ),
        completion(
            json!({"role": "assistant", "content": "There is one task; 42."}),
            "stop",
        ),
        completion(json!({"role": "assistant", "content": "One task."}), "stop"),
    ])
    .await;
    let data = own_data_dir().to_string_lossy().into_owned();
    let app = spawn_app_with(
        pool.clone(),
        &[
            ("OPENAI_BASE_URL", &format!("{}/v1", fake.url)),
            ("OPENAI_API_KEY", "sk-scripted"),
            ("FLOTILLA_OPENAI_MODEL", "scripted-1"),
            ("FLOTILLA_DATA_DIR", &data),
        ],
    )
    .await;
    let admin = app.admin().await;
    let member = app.user_with_role("mia", "member").await;

    // A member may spawn with the default tools, never with run_command; unknown tools 422.
    let spawn = |tools: Value| {
        json!({"name": format!("t-{}", uuid::Uuid::new_v4()), "capabilities": ["data_analysis"],
               "tools": tools})
    };
    let res = member
        .post(app.url("/api/v1/agents"))
        .json(&json!({"name": "m-1", "capabilities": ["data_analysis"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let spawned: Value = res.json().await.unwrap();
    assert_eq!(
        spawned["tools"],
        json!([
            "read_file",
            "write_file",
            "list_files",
            "get_state",
            "set_state",
            "http_get",
            "sql_query"
        ])
    );
    let res = member
        .post(app.url("/api/v1/agents"))
        .json(&spawn(json!(["run_command"])))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = admin
        .post(app.url("/api/v1/agents"))
        .json(&spawn(json!(["rm_rf"])))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("unknown tool 'rm_rf'"));
    let m1 = spawned["id"].as_str().unwrap();
    let res = member
        .patch(app.url(&format!("/api/v1/agents/{m1}")))
        .json(&json!({"tools": ["read_file", "run_command"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // Paused, so the task below goes to the default fleet.
    admin
        .post(app.url(&format!("/api/v1/agents/{m1}/pause")))
        .send()
        .await
        .unwrap();

    // The admin gives the whole default fleet exactly sql_query and run_command.
    let fleet: Value = admin
        .get(app.url("/api/v1/agents"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for a in fleet["items"].as_array().unwrap() {
        if a["id"] == m1 {
            continue;
        }
        let res = admin
            .patch(app.url(&format!("/api/v1/agents/{}", a["id"].as_str().unwrap())))
            .json(&json!({"tools": ["sql_query", "run_command"], "model": "scripted-1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let a: Value = res.json().await.unwrap();
        assert_eq!(a["tools"], json!(["sql_query", "run_command"]));
        assert_eq!(a["provider"], "openai");
    }
    assert_eq!(
        count(
            &pool,
            "select count(*) from events where type = 'agent.reconfigured'"
        )
        .await,
        5
    );

    let id = app.submit(&admin, "Count the tasks").await;
    let task = app.finished(&admin, &id).await;
    assert_eq!(task["status"], "completed", "{task:#}");
    let sub = crate::helpers::subtask(&task, "count");
    assert_eq!(sub["output"], "There is one task; 42.");

    let seen = fake.seen();
    let offered: Vec<&str> = seen[1].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        offered,
        ["sql_query", "run_command"],
        "only the agent's tools are offered"
    );
    let result = |i: usize| {
        let msgs = seen[i].body["messages"].as_array().unwrap().clone();
        msgs.last().unwrap()["content"].as_str().unwrap().to_owned()
    };
    assert_eq!(result(2), r#"[{"n":1}]"#);
    assert!(
        result(3).contains("exit code 0") && result(3).contains("42"),
        "{}",
        result(3)
    );
    let agent = sub["agent_id"].as_str().unwrap();
    let answer = std::path::Path::new(&data)
        .join("workspaces")
        .join(agent)
        .join("projects/answer.txt");
    assert_eq!(std::fs::read_to_string(answer).unwrap(), "42\n");

    // Reconfiguring: an unknown provider is refused; a terminated agent cannot be changed.
    let res = admin
        .patch(app.url(&format!("/api/v1/agents/{m1}")))
        .json(&json!({"provider": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let res = admin
        .patch(app.url(&format!("/api/v1/agents/{m1}")))
        .json(&json!({"provider": "simulated"}))
        .send()
        .await
        .unwrap();
    let a: Value = res.json().await.unwrap();
    assert_eq!(
        (a["provider"].as_str(), a["model"].as_str()),
        (Some("simulated"), Some("simulated"))
    );
    admin
        .post(app.url(&format!("/api/v1/agents/{m1}/terminate")))
        .send()
        .await
        .unwrap();
    let res = admin
        .patch(app.url(&format!("/api/v1/agents/{m1}")))
        .json(&json!({"model": "other"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let _ = std::fs::remove_dir_all(&data);
}

#[sqlx::test]
async fn an_mcp_server_attached_to_an_agent_has_its_tools_offered_and_called(pool: PgPool) {
    let plan = json!({"subtasks": [{"key": "shout", "description": "Shout a greeting",
                                     "required_capabilities": [], "depends_on": []}]});
    let fake = fake_llm::start(vec![
        completion(
            json!({"role": "assistant", "content": plan.to_string()}),
            "stop",
        ),
        tool_call("call_s", "shout__shout", json!({"text": "hello mcp"})),
        tool_call("call_w", "shout__whoami", json!({})),
        completion(
            json!({"role": "assistant", "content": "HELLO MCP, shouted."}),
            "stop",
        ),
        completion(json!({"role": "assistant", "content": "Shouted."}), "stop"),
    ])
    .await;
    let data = own_data_dir();
    let app = spawn_app_with(
        pool.clone(),
        &[
            ("OPENAI_BASE_URL", &format!("{}/v1", fake.url)),
            ("OPENAI_API_KEY", "sk-scripted"),
            ("FLOTILLA_OPENAI_MODEL", "scripted-1"),
            ("FLOTILLA_DATA_DIR", data.to_str().unwrap()),
        ],
    )
    .await;
    let admin = app.admin().await;
    let member = app.user_with_role("max", "member").await;
    let fleet: Value = admin
        .get(app.url("/api/v1/agents"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<String> = fleet["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();

    // A stdio server is a command: members may not attach one; bad entries are refused.
    let stdio = json!({"name": "shout", "command": "python3 .agent/shout_server.py"});
    let res = member
        .patch(app.url(&format!("/api/v1/agents/{}", ids[0])))
        .json(&json!({"mcp_servers": [stdio]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    for bad in [
        json!([{"name": "x", "command": "a", "url": "http://h/mcp"}]),
        json!([{"name": "x", "url": "ftp://h/mcp"}]),
        json!([{"name": "Bad-Name", "url": "http://h/mcp"}]),
        json!([{"name": "x", "url": "http://h/a"}, {"name": "x", "url": "http://h/b"}]),
    ] {
        let res = admin
            .patch(app.url(&format!("/api/v1/agents/{}", ids[0])))
            .json(&json!({ "mcp_servers": bad }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "{bad}");
    }

    // The admin attaches the stdio server, and an HTTP one on loopback that the address
    // checks must refuse, to the whole fleet, with no built-in tools.
    let script = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/mcp/shout_server.py"
    ))
    .unwrap();
    let internal = json!({"name": "internal", "url": format!("{}/mcp", fake.url)});
    for id in &ids {
        let dir = data.join("workspaces").join(id).join(".agent");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("shout_server.py"), &script).unwrap();
        let res = admin
            .patch(app.url(&format!("/api/v1/agents/{id}")))
            .json(&json!({"mcp_servers": [stdio, internal], "tools": []}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let a: Value = res.json().await.unwrap();
        assert_eq!(
            a["mcp_servers"][0]["command"],
            "python3 .agent/shout_server.py"
        );
    }

    let id = app.submit(&admin, "Shout a greeting").await;
    let task = app.finished(&admin, &id).await;
    assert_eq!(task["status"], "completed", "{task:#}");
    let sub = crate::helpers::subtask(&task, "shout");
    assert_eq!(sub["output"], "HELLO MCP, shouted.");

    let seen = fake.seen();
    let offered: Vec<(&str, &Value)> = seen[1].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["function"]["name"].as_str().unwrap(),
                &t["function"]["parameters"],
            )
        })
        .collect();
    assert_eq!(offered.len(), 2, "{offered:?}");
    assert_eq!(offered[0].0, "shout__shout");
    assert_eq!(
        offered[0].1["required"],
        json!(["text"]),
        "its inputSchema as listed"
    );
    assert_eq!(offered[1].0, "shout__whoami");
    let result = |i: usize| {
        let msgs = seen[i].body["messages"].as_array().unwrap().clone();
        msgs.last().unwrap()["content"].as_str().unwrap().to_owned()
    };
    assert_eq!(result(2), "HELLO MCP");
    let agent: uuid::Uuid = sub["agent_id"].as_str().unwrap().parse().unwrap();
    let whoami = result(3);
    assert!(
        whoami.starts_with(&format!("uid={} network=", agent_uid(agent))),
        "{whoami}"
    );
    assert!(whoami.contains("unreachable"), "no network: {whoami}");
    // The loopback HTTP server was never reached, and the attempt says why.
    assert!(seen.iter().all(|s| s.path != "/mcp"));
    let refusal: String = sqlx::query_scalar(
        "select data->>'result' from events where type = 'tool.result' and data->>'tool' = 'mcp'
         order by seq limit 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        refusal.contains("internal") && refusal.contains("loopback"),
        "{refusal}"
    );
    let _ = std::fs::remove_dir_all(&data);
}
