//! The process's Prometheus metrics (`GET /metrics`, text exposition format). Latencies are
//! observed where they happen (HTTP middleware, the daemon's assignments, the event hub); queue
//! figures are read from the database at scrape time, so every process reports the same truth.

use crate::supervisor::LoopLabel;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    /// The route pattern (`/api/v1/tasks/{id}`), never the raw path, to bound cardinality.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: String,
}

/// Shared by the HTTP layer, the engine and the event hub of one process.
pub struct Metrics {
    registry: Registry,
    pub http: Family<HttpLabels, Histogram>,
    pub assignment_latency: Histogram,
    pub event_lag: Histogram,
    /// How long the oldest committed event has been held back by an open transaction.
    pub event_hold: prometheus_client::metrics::gauge::Gauge<f64, std::sync::atomic::AtomicU64>,
    pub loop_restarts: Family<LoopLabel, Counter>,
    pub loop_up: Family<LoopLabel, Gauge>,
    queue_depth: Gauge,
    waiting: Gauge,
    running: Gauge,
    agents: Family<StateLabels, Gauge>,
    ws_clients: Gauge,
}

/// From 0.25 ms doubling to about 8 s: engine steps are milliseconds, stalls are seconds.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.000_25, 2.0, 16)
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("flotilla");
        let http = Family::<HttpLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(latency_buckets())) as fn() -> Histogram,
        );
        let assignment_latency = Histogram::new(latency_buckets());
        let event_lag = Histogram::new(latency_buckets());
        let (queue_depth, waiting, running, ws_clients) = (
            Gauge::default(),
            Gauge::default(),
            Gauge::default(),
            Gauge::default(),
        );
        let agents = Family::<StateLabels, Gauge>::default();
        let event_hold =
            prometheus_client::metrics::gauge::Gauge::<f64, std::sync::atomic::AtomicU64>::default(
            );
        let loop_restarts = Family::<LoopLabel, Counter>::default();
        let loop_up = Family::<LoopLabel, Gauge>::default();
        registry.register(
            "event_hold_seconds",
            "Age of the oldest committed event held back by a transaction still open",
            event_hold.clone(),
        );
        registry.register(
            "loop_restarts",
            "Restarts of each engine loop after a panic or an unexpected stop",
            loop_restarts.clone(),
        );
        registry.register(
            "loop_up",
            "Whether each engine loop is running (1) or waiting to restart (0)",
            loop_up.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route pattern and status",
            http.clone(),
        );
        registry.register(
            "assignment_latency_seconds",
            "Time from a subtask becoming ready to its assignment to an agent",
            assignment_latency.clone(),
        );
        registry.register(
            "event_lag_seconds",
            "Time from an event's commit to its release to this process's streams",
            event_lag.clone(),
        );
        registry.register(
            "queue_depth",
            "Subtasks ready to run and not yet assigned",
            queue_depth.clone(),
        );
        registry.register(
            "subtasks_waiting",
            "Queued subtasks still waiting for prerequisites",
            waiting.clone(),
        );
        registry.register(
            "subtasks_running",
            "Subtasks assigned to or running on an agent",
            running.clone(),
        );
        registry.register("agents", "Agents by state", agents.clone());
        registry.register(
            "websocket_clients",
            "Event stream WebSocket clients connected to this process",
            ws_clients.clone(),
        );
        Arc::new(Self {
            registry,
            http,
            assignment_latency,
            event_lag,
            event_hold,
            loop_restarts,
            loop_up,
            queue_depth,
            waiting,
            running,
            agents,
            ws_clients,
        })
    }

    /// Reads the database figures and renders everything in the text exposition format.
    pub async fn render(&self, pool: &PgPool, ws_clients: usize) -> Result<String, sqlx::Error> {
        let q = app::db::metrics::node_counts(pool).await?;
        self.queue_depth.set(q.ready);
        self.waiting.set(q.waiting);
        self.running.set(q.running);
        let states = sqlx::query!(r#"select state, count(*) as "n!" from agents group by state"#)
            .fetch_all(pool)
            .await?;
        for s in app::domain::agent::AgentState::ALL {
            let n = states
                .iter()
                .find(|r| r.state == s.as_str())
                .map_or(0, |r| r.n);
            self.agents
                .get_or_create(&StateLabels {
                    state: s.as_str().to_owned(),
                })
                .set(n);
        }
        self.ws_clients
            .set(i64::try_from(ws_clients).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &self.registry);
        Ok(out)
    }
}

/// Times every request by its route pattern.
pub async fn track_http(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(req.method()).to_owned();
    let started = Instant::now();
    let response = next.run(req).await;
    metrics
        .http
        .get_or_create(&HttpLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .observe(started.elapsed().as_secs_f64());
    response
}

/// A method as a label: the standard ones by name, anything else `other`, so no request can
/// add series.
fn method_label(method: &axum::http::Method) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN
        .into_iter()
        .find(|k| *k == method.as_str())
        .unwrap_or("other")
}

/// `GET /metrics`; with `FLOTILLA_METRICS_TOKEN` set, only for `Authorization: Bearer <it>`.
pub async fn scrape(
    State(state): State<crate::http::AppState>,
    headers: axum::http::HeaderMap,
) -> Response {
    if let Some(token) = &state.config.metrics_token {
        use secrecy::ExposeSecret;
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !constant_time_eq(given.as_bytes(), token.expose_secret().as_bytes()) {
            return crate::http::error::ApiError::new(
                app::api::ErrorKind::Unauthenticated,
                "/metrics needs Authorization: Bearer <FLOTILLA_METRICS_TOKEN>",
            )
            .into_response();
        }
    }
    let clients = state.hub.as_ref().map_or(0, |h| h.subscribers());
    match state.metrics.render(&state.ctx.pool, clients).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => crate::http::error::ApiError::from(e).into_response(),
    }
}

/// Compares without an early exit, so the time taken does not tell how much of a guess was
/// right (the length may show; tokens are long and random).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_methods_become_labels() {
        assert_eq!(method_label(&axum::http::Method::GET), "GET");
        let odd = axum::http::Method::from_bytes(&[b'X'; 20_000]).unwrap();
        assert_eq!(method_label(&odd), "other");
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }
}
