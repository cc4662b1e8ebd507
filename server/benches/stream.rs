//! Event stream benchmark: event commit → received by WebSocket clients, and sustained frames
//! per second, for Flotilla's `/api/v1/events/stream` beside a raw tokio-tungstenite broadcast
//! server measured in the same run on the same cores (interleaved: raw, then Flotilla, per
//! client count).
//!
//! Latency runs from the moment an event's transaction has committed (the producer notes it when
//! `commit` returns) to the frame's arrival at a client; the raw baseline notes the moment just
//! before it broadcasts. Both sides' clients parse every frame the same way (its `seq`) and note
//! its arrival on the same monotonic clock.
//!
//! Run: `cargo bench -p server --bench stream` (about a minute).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use futures_util::{SinkExt, StreamExt};
use secrecy::ExposeSecret;
use server::embedded_pg::EmbeddedPostgres;
use server::startup::{Application, Database};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const RATE_PER_SEC: u64 = 100;
const LATENCY_SECS: u64 = 5;
const BURST: usize = 2_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::with_postgres("stream-bench", |pg| async move {
        let result = run(&pg).await;
        (pg, result)
    })
    .await
}

async fn run(pg: &EmbeddedPostgres) -> anyhow::Result<()> {
    let url = pg.url(server::embedded_pg::APP_DATABASE);
    let url = url.expose_secret().to_owned();
    let config = server::config::Config::from_lookup(|key| match key {
        "DATABASE_URL" => Some(url.clone()),
        "FLOTILLA_ADDR" => Some("127.0.0.1:0".into()),
        "FLOTILLA_ENGINE" => Some("off".into()),
        "FLOTILLA_ADMIN_PASSWORD" => Some("bench admin password".into()),
        "FLOTILLA_LOG" => Some("off".into()),
        "FLOTILLA_DB_POOL" => Some("32".into()),
        // A thousand clients from one address: the per-address cap would refuse them.
        "FLOTILLA_MAX_CONNECTIONS_PER_IP" => Some("4096".into()),
        _ => None,
    })?;
    let db = Database::connect(&config).await?;
    let pool = db.pool.clone();
    let app = Application::build(config, db).await?;
    let port = app.port();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let admin: uuid::Uuid = sqlx::query_scalar("select id from users limit 1")
        .fetch_one(&pool)
        .await?;
    let token = app::db::tokens::create(&pool, app::domain::account::UserId(admin), "bench")
        .await?
        .token;
    let flotilla = Target::Flotilla {
        url: format!("ws://127.0.0.1:{port}/api/v1/events/stream"),
        token,
        pool,
    };
    let raw = Target::raw().await?;

    println!(
        "Flotilla event stream benchmark — {RATE_PER_SEC} events/s for {LATENCY_SECS} s, then"
    );
    println!(
        "a burst of {BURST} events; each figure beside a raw tokio-tungstenite broadcast server.\n"
    );
    println!("{:<34} {:>12} {:>12} {:>9}", "", "raw", "flotilla", "ratio");
    for clients in [100, 1000] {
        let r = latency(&raw, clients).await?;
        let f = latency(&flotilla, clients).await?;
        row(
            &format!("{clients} clients, p50 latency (ms)"),
            r.p50,
            f.p50,
        );
        row(
            &format!("{clients} clients, p99 latency (ms)"),
            r.p99,
            f.p99,
        );
        println!(
            "{:<34} {:>12} {:>12}",
            format!("{clients} clients, frames lost"),
            r.lost,
            f.lost
        );
    }
    for clients in [100, 1000] {
        let r = burst(&raw, clients).await?;
        let f = burst(&flotilla, clients).await?;
        row(&format!("{clients} clients, burst frames/s"), r, f);
    }
    println!("\nTargets: p99 <= 1.5x raw; frames/s >= 0.5x raw.");
    Ok(())
}

fn row(what: &str, raw: f64, ours: f64) {
    println!(
        "{what:<34} {raw:>12.1} {ours:>12.1} {:>8.2}x",
        if raw > 0.0 { ours / raw } else { f64::NAN }
    );
}

/// What the clients connect to and how events are produced there.
enum Target {
    Raw {
        url: String,
        tx: broadcast::Sender<Arc<String>>,
    },
    Flotilla {
        url: String,
        token: String,
        pool: PgPool,
    },
}

impl Target {
    /// A plain broadcast server: every connection forwards every message.
    async fn raw() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("ws://{}", listener.local_addr()?);
        let (tx, _) = broadcast::channel::<Arc<String>>(4096);
        let hub = tx.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let mut rx = hub.subscribe();
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                        return;
                    };
                    while let Ok(m) = rx.recv().await {
                        if ws.send(Message::text(m.as_str())).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Ok(Self::Raw { url, tx })
    }

    async fn connect(&self) -> anyhow::Result<Ws> {
        let req = match self {
            Target::Raw { url, .. } => url.as_str().into_client_request()?,
            Target::Flotilla { url, token, .. } => {
                let mut req = url.as_str().into_client_request()?;
                req.headers_mut()
                    .insert("authorization", format!("Bearer {token}").parse()?);
                req
            }
        };
        let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
        if matches!(self, Target::Flotilla { .. }) {
            // The `stream.ready` marker: the server has subscribed.
            ws.next().await.ok_or_else(|| anyhow::anyhow!("closed"))??;
        } else {
            // The raw server subscribes before its handshake; nothing to wait for.
        }
        Ok(ws)
    }

    /// Produces `n` events, `per_sec` a second (all at once when `None`); returns when each
    /// was committed (or broadcast), by `seq`.
    async fn produce(&self, n: usize, per_sec: Option<u64>) -> anyhow::Result<Vec<(i64, Instant)>> {
        let mut sent = Vec::with_capacity(n);
        match (self, per_sec) {
            (Target::Raw { tx, .. }, Some(rate)) => {
                let mut tick = tokio::time::interval(Duration::from_secs(1) / rate as u32);
                for seq in 0..n {
                    tick.tick().await;
                    let message = Arc::new(raw_event(seq));
                    sent.push((i64::try_from(seq)?, Instant::now()));
                    let _ = tx.send(message);
                }
            }
            (Target::Raw { tx, .. }, None) => {
                for seq in 0..n {
                    let _ = tx.send(Arc::new(raw_event(seq)));
                }
            }
            (Target::Flotilla { pool, .. }, Some(rate)) => {
                let mut tick = tokio::time::interval(Duration::from_secs(1) / rate as u32);
                for i in 0..n {
                    tick.tick().await;
                    let mut tx = pool.begin().await?;
                    let e = app::db::events::NewEvent::new(
                        app::domain::event::EventKind::Marker,
                        format!("bench/{i}"),
                    );
                    let seq = app::db::events::append(&mut tx, e).await?;
                    tx.commit().await?;
                    sent.push((seq, Instant::now()));
                }
            }
            (Target::Flotilla { pool, .. }, None) => {
                let mut tx = pool.begin().await?;
                sqlx::query(
                    "insert into events (type, subject)
                     select 'bench.burst', 'bench/' || i from generate_series(1, $1) i",
                )
                .bind(i64::try_from(n)?)
                .execute(&mut *tx)
                .await?;
                app::db::events::wake(&mut *tx).await?;
                tx.commit().await?;
            }
        }
        Ok(sent)
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A message shaped like a Flotilla event, stamped now.
fn raw_event(seq: usize) -> String {
    serde_json::json!({
        "seq": seq,
        "type": "bench.tick",
        "at": OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default(),
        "severity": "info",
        "subject": format!("bench/{seq}"),
        "data": {},
    })
    .to_string()
}

#[derive(serde::Deserialize)]
struct Stamp {
    seq: i64,
}

/// Reads `expect` frames (or until `deadline`), returning each one's `seq` and arrival.
async fn receive(mut ws: Ws, expect: usize, deadline: Instant) -> Vec<(i64, Instant)> {
    let mut arrivals = Vec::with_capacity(expect);
    while arrivals.len() < expect {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(Ok(msg))) = tokio::time::timeout(left, ws.next()).await else {
            break;
        };
        let Message::Text(text) = msg else { continue };
        let now = Instant::now();
        if let Ok(stamp) = serde_json::from_str::<Stamp>(text.as_str()) {
            arrivals.push((stamp.seq, now));
        }
    }
    let _ = ws.close(None).await;
    arrivals
}

async fn connect_all(target: &Target, clients: usize) -> anyhow::Result<Vec<Ws>> {
    let mut out = Vec::with_capacity(clients);
    for _ in 0..clients {
        out.push(target.connect().await?);
    }
    Ok(out)
}

struct Latency {
    p50: f64,
    p99: f64,
    lost: usize,
}

async fn latency(target: &Target, clients: usize) -> anyhow::Result<Latency> {
    let n = usize::try_from(RATE_PER_SEC * LATENCY_SECS)?;
    let sockets = connect_all(target, clients).await?;
    let deadline = Instant::now() + Duration::from_secs(LATENCY_SECS + 20);
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|ws| tokio::spawn(receive(ws, n, deadline)))
        .collect();
    let sent: std::collections::HashMap<i64, Instant> = target
        .produce(n, Some(RATE_PER_SEC))
        .await?
        .into_iter()
        .collect();
    let mut all = Vec::with_capacity(n * clients);
    for r in readers {
        for (seq, at) in r.await? {
            // A frame can land a hair before the producer notes its commit: that is zero.
            if let Some(sent_at) = sent.get(&seq) {
                all.push(at.saturating_duration_since(*sent_at).as_secs_f64() * 1000.0);
            }
        }
    }
    let lost = n * clients - all.len();
    all.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        all.get(((all.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    Ok(Latency {
        p50: pct(0.50),
        p99: pct(0.99),
        lost,
    })
}

/// Frames per second delivered to all clients for a burst of [`BURST`] events.
async fn burst(target: &Target, clients: usize) -> anyhow::Result<f64> {
    let sockets = connect_all(target, clients).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let started = Instant::now();
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|ws| tokio::spawn(receive(ws, BURST, deadline)))
        .collect();
    target.produce(BURST, None).await?;
    let mut frames = 0;
    for r in readers {
        frames += r.await?.len();
    }
    Ok(frames as f64 / started.elapsed().as_secs_f64())
}
