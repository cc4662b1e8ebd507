//! The domain's state machines are the ones the SQL enforces: every status change the engine's
//! statements make, over a run that exercises them all, is one `can_become` allows.

use crate::helpers::*;
use app::domain::agent::AgentState;
use app::domain::run::{NodeStatus, RunStatus};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use std::collections::BTreeSet;

/// Records every change of `runs.status`, `nodes.status` and `agents.state` (test database only).
const RECORDER: &str = r#"
create table transitions (tbl text not null, old text not null, new text not null);
create function record_transition() returns trigger language plpgsql as $$
begin
    if tg_table_name = 'agents' then
        if old.state is distinct from new.state then
            insert into transitions values ('agents', old.state, new.state);
        end if;
    elsif old.status is distinct from new.status then
        insert into transitions values (tg_table_name, old.status, new.status);
    end if;
    return new;
end $$;
create trigger runs_t after update on runs for each row execute function record_transition();
create trigger nodes_t after update on nodes for each row execute function record_transition();
create trigger agents_t after update on agents for each row execute function record_transition();
"#;

async fn post(app: &TestApp, c: &reqwest::Client, path: &str) {
    let res = c.post(app.url(path)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{path}");
}

#[sqlx::test(migrations = "../migrations")]
async fn every_status_change_the_sql_makes_is_one_the_domain_allows(pool: PgPool) {
    sqlx::raw_sql(RECORDER).execute(&pool).await.unwrap();
    let app = spawn_app_with(
        pool.clone(),
        &[
            ("FLOTILLA_SIM_LATENCY_MS", "0"),
            ("FLOTILLA_RETRY_BASE_MS", "1"),
            ("FLOTILLA_RETRY_MAX_ATTEMPTS", "2"),
            // One slot: of two nodes ready at once, one is started, the other only assigned.
            ("FLOTILLA_WORKER_SLOTS", "1"),
        ],
    )
    .await;
    let c = app.admin().await;
    let agents = app.get_json(&c, "/api/v1/agents").await;
    let agents: Vec<String> = agents["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    post(&app, &c, &format!("/api/v1/agents/{}/pause", agents[0])).await;
    post(&app, &c, &format!("/api/v1/agents/{}/resume", agents[0])).await;

    let fine = app
        .submit(&c, "Scrape the pricing website. Summarise the report.")
        .await;
    let flaky = app.submit(&c, "Count the rows [flaky]").await;
    let failing = app
        .submit(&c, "Parse the CSV file [fail]. Then summarise the totals.")
        .await;
    for id in [&fine, &flaky, &failing] {
        app.finished(&c, id).await;
    }
    let failed = app.get_json(&c, &format!("/api/v1/tasks/{failing}")).await;
    assert_eq!(failed["status"], "failed");
    let s1 = subtask(&failed, "s1")["id"].as_str().unwrap().to_owned();
    post(&app, &c, &format!("/api/v1/subtasks/{s1}/retry")).await;
    app.finished(&c, &failing).await;

    // Last: it holds the one slot until cancelled.
    let hung = app.submit(&c, "Summarise the answer [hang]").await;
    let url = app.url(&format!("/api/v1/tasks/{hung}"));
    let running = wait_for(&c, &url, 20, |t| t["subtasks"][0]["status"] == "running").await;
    let busy = running["subtasks"][0]["agent_id"]
        .as_str()
        .unwrap()
        .to_owned();
    post(&app, &c, &format!("/api/v1/agents/{busy}/terminate")).await;
    wait_for(&c, &url, 20, |t| t["subtasks"][0]["status"] == "running").await;
    post(&app, &c, &format!("/api/v1/tasks/{hung}/cancel")).await;
    let idle: Vec<&String> = agents.iter().filter(|a| **a != busy).collect();
    post(&app, &c, &format!("/api/v1/agents/{}/terminate", idle[0])).await;

    let seen: Vec<(String, String, String)> =
        sqlx::query_as("select distinct tbl, old, new from transitions order by 1, 2, 3")
            .fetch_all(&pool)
            .await
            .unwrap();
    let mut covered = BTreeSet::new();
    for (tbl, old, new) in &seen {
        let allowed = match tbl.as_str() {
            "runs" => old
                .parse::<RunStatus>()
                .unwrap()
                .can_become(new.parse().unwrap()),
            "nodes" => old
                .parse::<NodeStatus>()
                .unwrap()
                .can_become(new.parse().unwrap()),
            "agents" => old
                .parse::<AgentState>()
                .unwrap()
                .can_become(new.parse().unwrap()),
            other => panic!("unexpected table {other}"),
        };
        assert!(allowed, "{tbl}: {old} → {new} is not in the state machine");
        covered.insert(format!("{tbl}: {old} → {new}"));
    }
    // The run reached the transitions that matter, or the check above proves little.
    for must in [
        "runs: pending → in_progress",
        "runs: in_progress → completed",
        "runs: in_progress → failed",
        "runs: failed → in_progress",
        "runs: in_progress → cancelled",
        "nodes: queued → assigned",
        "nodes: assigned → running",
        "nodes: running → completed",
        "nodes: running → queued",
        "nodes: running → failed",
        "nodes: queued → blocked",
        "nodes: failed → queued",
        "nodes: blocked → queued",
        "nodes: running → cancelled",
        "agents: idle → working",
        "agents: working → idle",
        "agents: idle → paused",
        "agents: paused → idle",
        "agents: idle → terminated",
    ] {
        assert!(
            covered.contains(must),
            "not exercised: {must}; saw {covered:#?}"
        );
    }
    let _: Value = app.finished(&c, &hung).await;
}
