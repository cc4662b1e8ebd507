//! `GET /api/v1/events/stream?after=<seq>`: the live event stream over a WebSocket.
//!
//! Subscribe first, then replay from the table, then follow the hub, dropping anything at or
//! below the last `seq` sent: a client that reconnects with the last `seq` it saw misses
//! nothing and sees nothing twice. A client that falls [`BUFFER`] events behind, or does not
//! take a frame within [`SEND_TIMEOUT`], is disconnected rather than allowed to slow the
//! others; it resumes where it stopped.

use super::AppState;
use super::error::ApiError;
use super::extract::ApiQuery;
use crate::event_hub::BUFFER;
use app::api::ErrorKind;
use app::db::events::{EventQuery, list};
use app::domain::event::{Event, EventFilter, Severity};
use app::domain::ids::{AgentId, RunId};
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// The largest message a client may send (it has nothing to say beyond pings).
pub const MAX_MESSAGE: usize = 64 * 1024;
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
pub struct StreamQuery {
    after: Option<i64>,
    #[serde(rename = "type")]
    kind: Option<String>,
    agent_id: Option<AgentId>,
    task_id: Option<RunId>,
    severity: Option<String>,
}

pub async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<StreamQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    // Browsers always send Origin on a WebSocket handshake; a page elsewhere must not ride on
    // the user's cookie. Checked here because the guard only checks state-changing methods.
    // `same_origin` also refuses `Origin: null` (sandboxed frames, file pages).
    if !super::guard::same_origin(&headers, state.config.public_url.as_deref()) {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "cross-origin WebSocket refused",
        ));
    }
    let filter = EventFilter::parse(q.kind, q.agent_id, q.task_id, q.severity)
        .map_err(|e| ApiError::new(ErrorKind::Invalid, e))?;
    let after = q.after.map(|a| a.max(0));
    Ok(ws
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| serve(socket, state, after, filter)))
}

/// With `after`, replays from there; without, starts from now and first sends a
/// `stream.ready` marker whose `seq` is where to resume from if the connection drops.
async fn serve(mut socket: WebSocket, state: AppState, after: Option<i64>, filter: EventFilter) {
    let Some(hub) = state.hub.clone() else {
        let _ = close(&mut socket, close_code::AGAIN, "event stream unavailable").await;
        return;
    };
    let (mut rx, released) = hub.subscribe();
    let after = match after {
        Some(after) => after,
        None => {
            let ready = Event {
                seq: released,
                kind: "stream.ready".into(),
                at: time::OffsetDateTime::now_utc(),
                severity: Severity::Debug,
                subject: "stream".into(),
                data: serde_json::json!({}),
                agent_id: None,
                task_id: None,
                subtask_id: None,
            };
            if !send(&mut socket, &ready).await {
                return;
            }
            released
        }
    };
    // Replay what was released before we subscribed; the receiver has everything after.
    let mut last = after;
    while last < released {
        let query = EventQuery {
            after: last,
            filter: filter.clone(),
            limit: 500,
        };
        let page = match list(&state.ctx.pool, &query).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "event replay failed");
                let _ = close(&mut socket, close_code::ERROR, "replay failed; reconnect").await;
                return;
            }
        };
        for e in page.iter().take_while(|e| e.seq <= released) {
            if !send(&mut socket, e).await {
                return;
            }
        }
        match page.last() {
            Some(e) if page.len() == 500 && e.seq < released => last = e.seq,
            _ => break,
        }
    }
    let mut high = released.max(after);
    loop {
        tokio::select! {
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | None => return,
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    // The only error a well-behaved peer can cause is an oversize message.
                    tracing::debug!(error = %e, "closing an event stream");
                    let _ = close(&mut socket, close_code::SIZE, "message too big").await;
                    return;
                }
            },
            ev = rx.recv() => match ev {
                Ok(e) => {
                    if e.seq <= high {
                        continue;
                    }
                    high = e.seq;
                    if filter.matches(&e) && !send(&mut socket, &e).await {
                        return;
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    let reason = format!("too slow (more than {BUFFER} events behind); resume with after={high}");
                    let _ = close(&mut socket, close_code::POLICY, &reason).await;
                    return;
                }
                Err(RecvError::Closed) => {
                    let _ = close(&mut socket, close_code::AWAY, "server shutting down").await;
                    return;
                }
            },
        }
    }
}

/// Sends one event; false when the client is gone or too slow to take it.
async fn send(socket: &mut WebSocket, e: &Event) -> bool {
    let Ok(text) = serde_json::to_string(e) else {
        return false;
    };
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(text.into()))).await,
        Ok(Ok(()))
    )
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) -> Result<(), axum::Error> {
    socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.to_owned().into(),
        })))
        .await
}
