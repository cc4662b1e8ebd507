//! The WebSocket event stream with a real client (tokio-tungstenite).

use crate::helpers::*;
use app::db::events::{self, NewEvent};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn token(app: &TestApp) -> String {
    let admin = app.admin().await;
    let created = app.create_token(&admin, "script").await;
    created["token"].as_str().unwrap().to_owned()
}

pub async fn connect(app: &TestApp, query: &str, headers: &[(&str, &str)]) -> Result<Ws, WsError> {
    let url = format!(
        "{}/api/v1/events/stream{query}",
        app.base.replace("http://", "ws://")
    );
    let mut req = url.into_client_request().unwrap();
    for (k, v) in headers {
        let name = reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap();
        req.headers_mut().insert(name, v.parse().unwrap());
    }
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

/// The next event's `seq`, or `None` when the server closed the stream.
async fn next_seq(ws: &mut Ws) -> Option<i64> {
    loop {
        match tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("an event within 20 s")?
        {
            Ok(Message::Text(t)) => {
                let e: Value = serde_json::from_str(&t).unwrap();
                for field in ["seq", "type", "at", "severity", "subject", "data"] {
                    assert!(!e[field].is_null(), "{field} missing in {e}");
                }
                return e["seq"].as_i64();
            }
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

async fn produce(pool: PgPool, writers: usize, per_writer: usize, payload: usize) {
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let pool = pool.clone();
        tasks.spawn(async move {
            for i in 0..per_writer {
                let mut tx = pool.begin().await.unwrap();
                let e = NewEvent::new(app::domain::event::EventKind::Marker, format!("writer/{w}"))
                    .data(json!({ "i": i, "pad": "x".repeat(payload) }));
                events::append(&mut tx, e).await.unwrap();
                tx.commit().await.unwrap();
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// Every event's `seq`, in release order (writing transaction, then seq).
async fn all_seqs(pool: &PgPool) -> Vec<i64> {
    sqlx::query_scalar("select seq from events order by xid, seq")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = false)]
async fn a_client_that_reconnects_misses_nothing_and_sees_nothing_twice(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), &[("FLOTILLA_ENGINE", "off")]).await;
    let auth = format!("Bearer {}", token(&app).await);
    let mut ws = connect(&app, "?after=0", &[("authorization", &auth)])
        .await
        .unwrap();
    let producer = tokio::spawn(produce(pool.clone(), 8, 40, 10));
    let mut seen = Vec::new();
    while seen.len() < 120 {
        seen.push(next_seq(&mut ws).await.expect("stream open"));
    }
    ws.close(None).await.unwrap();
    let last = *seen.last().unwrap();
    let mut ws = connect(&app, &format!("?after={last}"), &[("authorization", &auth)])
        .await
        .unwrap();
    producer.await.unwrap();
    let expected = all_seqs(&pool).await;
    while seen.len() < expected.len() {
        seen.push(next_seq(&mut ws).await.expect("stream open"));
    }
    assert_eq!(seen, expected, "every event once, in release order");
}

#[sqlx::test(migrations = false)]
async fn the_stream_refuses_strangers_and_foreign_pages(pool: PgPool) {
    let app = spawn_app_with(pool, &[("FLOTILLA_ENGINE", "off")]).await;
    let status = |r: Result<Ws, WsError>| match r {
        Err(WsError::Http(res)) => res.status().as_u16(),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => 101,
    };
    assert_eq!(status(connect(&app, "", &[]).await), 401);
    let auth = format!("Bearer {}", token(&app).await);
    let foreign = [
        ("authorization", auth.as_str()),
        ("origin", "http://evil.example"),
    ];
    assert_eq!(status(connect(&app, "", &foreign).await), 403);
    let null = [("authorization", auth.as_str()), ("origin", "null")];
    assert_eq!(status(connect(&app, "", &null).await), 403);
    let own = app.base.clone();
    let same = [("authorization", auth.as_str()), ("origin", own.as_str())];
    assert_eq!(status(connect(&app, "", &same).await), 101);
    assert_eq!(status(connect(&app, "?after=x", &same).await), 422);
}

#[sqlx::test(migrations = false)]
async fn an_oversize_message_closes_the_stream_with_1009(pool: PgPool) {
    let app = spawn_app_with(pool, &[("FLOTILLA_ENGINE", "off")]).await;
    let auth = format!("Bearer {}", token(&app).await);
    let mut ws = connect(&app, "", &[("authorization", &auth)])
        .await
        .unwrap();
    ws.send(Message::Text("x".repeat(70 * 1024).into()))
        .await
        .unwrap();
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Close(frame))) => break frame.map(|f| f.code),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break None,
        }
    };
    assert_eq!(code, Some(CloseCode::Size));
}

#[sqlx::test(migrations = false)]
async fn a_stalled_client_does_not_delay_the_others(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), &[("FLOTILLA_ENGINE", "off")]).await;
    let auth = format!("Bearer {}", token(&app).await);
    let start = *all_seqs(&pool).await.last().unwrap();
    // The stalled client connects and then never reads.
    let mut stalled = connect(
        &app,
        &format!("?after={start}"),
        &[("authorization", &auth)],
    )
    .await
    .unwrap();
    let mut live = connect(
        &app,
        &format!("?after={start}"),
        &[("authorization", &auth)],
    )
    .await
    .unwrap();
    let producer = tokio::spawn(produce(pool.clone(), 4, 1500, 2000));
    let mut got = 0;
    while got < 6000 {
        next_seq(&mut live)
            .await
            .expect("the live client keeps receiving");
        got += 1;
    }
    producer.await.unwrap();
    // The stalled client was cut off (it gets what was buffered, then the close).
    let mut closed = false;
    for _ in 0..10_000 {
        if next_seq(&mut stalled).await.is_none() {
            closed = true;
            break;
        }
    }
    assert!(closed, "the stalled client was disconnected");
}
