//! `GET /api/v1/events/stream?after=<seq>`: the live event stream over a WebSocket.
//!
//! Subscribe first, then replay from the table, then follow the hub, dropping anything at or
//! below the last position sent (events go in release order, see [`crate::event_hub`]): a
//! client that reconnects with the last `seq` it saw misses nothing and sees nothing twice. A client that falls [`BUFFER`] events behind, or does not
//! take a frame within [`SEND_TIMEOUT`], is disconnected rather than allowed to slow the
//! others; it resumes where it stopped.

use super::AppState;
use super::access::Registration;
use super::error::ApiError;
use super::extract::ApiQuery;
use super::guard::AuthVia;
use crate::event_hub::BUFFER;
use app::api::ErrorKind;
use app::db::events::{EventQuery, list, position_after};
use app::domain::account::User;
use app::domain::event::{Event, EventFilter, EventKind, Severity};
use app::domain::ids::{AgentId, RunId};
use axum::Extension;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::oneshot;

/// The largest message a client may send (it has nothing to say beyond pings).
pub const MAX_MESSAGE: usize = 64 * 1024;
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Replay what was released after this `seq` first (the last one a client saw).
    after: Option<i64>,
    #[serde(rename = "type")]
    #[param(rename = "type", schema_with = super::events::type_filter)]
    kind: Option<String>,
    agent_id: Option<AgentId>,
    /// A task is one kind of run; `run_id` names the same filter for workflow runs.
    #[serde(alias = "run_id")]
    task_id: Option<RunId>,
    #[param(schema_with = super::events::severity_filter)]
    severity: Option<String>,
    #[param(schema_with = super::events::actor_filter)]
    actor: Option<String>,
}

/// The live event stream, a WebSocket: each text frame is one event (the shape of `GET
/// /events` items), in release order. Reconnect with `after` = the last `seq` seen to resume
/// with nothing missed and nothing twice. The server closes with 1008 (policy) when the
/// session or token ends or the client falls too far behind, 1001 when it shuts down.
#[utoipa::path(get, path = "/events/stream", tag = "events", params(StreamQuery),
    responses((status = 101, description = "Switching to the WebSocket protocol")))]
pub async fn stream(
    State(state): State<AppState>,
    Extension(user): Extension<User>,
    Extension(via): Extension<AuthVia>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<StreamQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let ws = ws.map_err(|_| {
        ApiError::new(
            ErrorKind::Invalid,
            "this route is a WebSocket: open it with an upgrade request",
        )
    })?;
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
        .and_then(|f| f.with_actor(q.actor))
        .map_err(|e| ApiError::new(ErrorKind::Invalid, e))?;
    let after = q.after.map(|a| a.max(0));
    let held = state.streams.register(&user, via);
    Ok(ws
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| serve(socket, state, after, filter, held)))
}

/// With `after`, replays from there; without, starts from now and first sends a
/// `stream.ready` marker whose `seq` is where to resume from if the connection drops.
/// The stream closes (policy violation, with the reason) when its credential ends: `held`.
async fn serve(
    mut socket: WebSocket,
    state: AppState,
    after: Option<i64>,
    filter: EventFilter,
    held: (Registration, oneshot::Receiver<&'static str>),
) {
    let (_registration, mut revoked) = held;
    let Some(hub) = state.hub.clone() else {
        let _ = close(&mut socket, close_code::AGAIN, "event stream unavailable").await;
        return;
    };
    let (mut rx, released) = hub.subscribe();
    let after = match after {
        Some(after) => match position_after(&state.ctx.pool, after).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "event replay failed");
                let _ = close(&mut socket, close_code::ERROR, "replay failed; reconnect").await;
                return;
            }
        },
        None => {
            let ready = Event {
                seq: released.seq,
                xid: released.xid,
                kind: EventKind::StreamReady.as_str().into(),
                at: time::OffsetDateTime::now_utc(),
                severity: Severity::Debug,
                subject: "stream".into(),
                data: serde_json::json!({}),
                agent_id: None,
                task_id: None,
                subtask_id: None,
                actor_id: None,
                actor: None,
                actor_token: None,
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
            upto: Some(released),
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
        for e in &page {
            if !send(&mut socket, e).await {
                return;
            }
        }
        match page.last() {
            Some(e) if page.len() == 500 && e.position() < released => last = e.position(),
            _ => break,
        }
    }
    let mut high = released.max(after);
    // From here on the socket is split: a reader task only watches for the client closing or
    // misbehaving, so the sending loop wakes for events alone (polling both halves on every
    // event cost a third of the fan-out time with a thousand clients).
    let (mut sink, mut stream) = socket.split();
    let (gone_tx, mut gone) = tokio::sync::oneshot::channel::<Option<(u16, &'static str)>>();
    let reader = tokio::spawn(async move {
        let why = loop {
            match stream.next().await {
                Some(Ok(Message::Close(_))) | None => break None,
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    // The only error a well-behaved peer can cause is an oversize message.
                    tracing::debug!(error = %e, "closing an event stream");
                    break Some((close_code::SIZE, "message too big"));
                }
            }
        };
        let _ = gone_tx.send(why);
    });
    let closing = loop {
        tokio::select! {
            biased;
            ev = rx.recv() => match ev {
                Ok(r) => {
                    if r.event.position() <= high {
                        continue;
                    }
                    high = r.event.position();
                    if filter.matches(&r.event) && !send_text(&mut sink, r.json.clone()).await {
                        break None;
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    let reason = format!("too slow (more than {BUFFER} events behind); resume with after={}", high.seq);
                    break Some((close_code::POLICY, reason));
                }
                Err(RecvError::Closed) => break Some((close_code::AWAY, "server shutting down".to_owned())),
            },
            why = &mut gone => break why.ok().flatten().map(|(code, reason)| (code, reason.to_owned())),
            why = &mut revoked => match why {
                Ok(reason) => break Some((close_code::POLICY, reason.to_owned())),
                // The registry went away: the server is shutting down.
                Err(_) => break Some((close_code::AWAY, "server shutting down".to_owned())),
            },
        }
    };
    reader.abort();
    if let Some((code, reason)) = closing {
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })))
            .await;
    }
}

/// Sends one event; false when the client is gone or too slow to take it.
async fn send(socket: &mut WebSocket, e: &Event) -> bool {
    match serde_json::to_string(e) {
        Ok(text) => send_text(socket, text.into()).await,
        Err(_) => false,
    }
}

/// Sends one encoded event, within [`SEND_TIMEOUT`].
async fn send_text(
    socket: &mut (impl futures_util::Sink<Message, Error = axum::Error> + Unpin),
    text: Utf8Bytes,
) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(text))).await,
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
