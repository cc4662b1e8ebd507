//! `GET /metrics`: the Prometheus text exposition, scraped like Prometheus does (no session).

use crate::helpers::*;
use crate::stream::{connect, token};
use futures_util::StreamExt;
use reqwest::StatusCode;
use sqlx::PgPool;

/// The value of the sample named exactly `series` (name and labels as exposed).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

async fn scrape(app: &TestApp) -> String {
    let res = client().get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let kind = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    res.text().await.unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn metrics_expose_queue_agents_latencies_and_stream_clients(pool: PgPool) {
    let app = spawn_app_with(pool, &[("FLOTILLA_SIM_LATENCY_MS", "0")]).await;
    let admin = app.admin().await;
    let before = scrape(&app).await;
    assert_eq!(
        sample(&before, "flotilla_agents{state=\"idle\"}"),
        Some(5.0)
    );
    assert_eq!(
        sample(&before, "flotilla_agents{state=\"paused\"}"),
        Some(0.0)
    );
    assert_eq!(sample(&before, "flotilla_websocket_clients"), Some(0.0));

    let id = app
        .submit(
            &admin,
            "Scrape the pricing website, then analyse the trends.",
        )
        .await;
    let task = app.finished(&admin, &id).await;
    assert_eq!(task["status"], "completed");
    let bearer = format!("Bearer {}", token(&app).await);
    let mut ws = connect(&app, "?after=0", &[("authorization", &bearer)])
        .await
        .unwrap();
    // The server subscribes before it replays, so a first event means the client is counted.
    assert!(matches!(ws.next().await, Some(Ok(_))));

    let text = scrape(&app).await;
    assert_eq!(sample(&text, "flotilla_queue_depth"), Some(0.0));
    assert_eq!(sample(&text, "flotilla_subtasks_running"), Some(0.0));
    assert_eq!(sample(&text, "flotilla_websocket_clients"), Some(1.0));
    assert_eq!(
        sample(&text, "flotilla_assignment_latency_seconds_count"),
        Some(2.0),
        "one observation per assignment of the two subtasks"
    );
    assert!(sample(&text, "flotilla_event_lag_seconds_count").unwrap() >= 6.0);
    assert_eq!(
        sample(
            &text,
            "flotilla_http_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/tasks\",status=\"201\"}"
        ),
        Some(1.0),
        "requests are labelled by route pattern:\n{text}"
    );
    assert!(
        sample(
            &text,
            "flotilla_http_request_duration_seconds_count{method=\"GET\",route=\"/api/v1/tasks/{id}\",status=\"200\"}"
        )
        .unwrap()
            >= 1.0
    );
    assert!(
        !text.contains(&id),
        "no raw paths, so no unbounded label values"
    );
    drop(ws);
}

#[sqlx::test(migrations = "../migrations")]
async fn an_agents_metrics_follow_its_work_over_rest_and_on_its_page(pool: PgPool) {
    let app = spawn_app_with(
        pool,
        &[
            ("FLOTILLA_SIM_LATENCY_MS", "0"),
            ("FLOTILLA_METRICS_SECS", "1"),
        ],
    )
    .await;
    let admin = app.admin().await;
    let id = app.submit(&admin, "Analyse the quarterly numbers.").await;
    let task = app.finished(&admin, &id).await;
    let agent = subtask(&task, "s1")["agent_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The sampler runs every second: soon a sample after the work shows it as an interval.
    let url = app.url(&format!("/api/v1/agents/{agent}/metrics?range=hour"));
    let body = wait_for(&admin, &url, 20, |b| {
        b["intervals"].as_array().is_some_and(|i| {
            i.iter()
                .map(|x| x["completed"].as_i64().unwrap_or(0))
                .sum::<i64>()
                == 1
        })
    })
    .await;
    assert_eq!(body["range"], "hour");
    let last = body["samples"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["tasks_completed"], 1);
    assert!(last["tokens_used"].as_i64().unwrap() > 0);

    let res = admin
        .get(app.url(&format!("/api/v1/agents/{agent}/metrics?range=year")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = uuid::Uuid::new_v4();
    let res = admin
        .get(app.url(&format!("/api/v1/agents/{unknown}/metrics")))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, "not_found");
    let res = client()
        .get(app.url(&format!("/api/v1/agents/{agent}/metrics")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // The page draws the charts on the server.
    let page = admin
        .get(app.url(&format!("/agents/{agent}?range=day")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    for title in ["Tokens per minute", "Subtasks finished", "Busy"] {
        assert!(html.contains(title), "{title} chart missing");
    }
    assert!(html.contains("<svg"), "charts are SVG");
    assert!(html.contains("Responsive"));

    // A malformed id to the page's server function is a 422 with a reason, not a 500.
    let res = admin
        .get(app.url("/api/agents/detail?id=nonsense&range=hour"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("not an agent id"));
}
