//! Following the event stream: events arrive in order on a channel; after a dropped connection
//! the follower reconnects with `after=<last seq>`, so nothing is missed and nothing repeats.

use super::ClientError;
use super::api::Api;
use futures_util::StreamExt;
use serde_json::Value;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// How many reconnects in a row may fail before the server counts as unreachable.
const MAX_RECONNECTS: u32 = 20;

/// Starts following the stream with `filter` (`&type=…&task_id=…`), from after `after` or from
/// now (the first item is then the `stream.ready` marker). Ends when the receiver is dropped.
pub fn spawn(
    api: &Api,
    filter: String,
    after: Option<i64>,
) -> mpsc::Receiver<Result<Value, ClientError>> {
    let (tx, rx) = mpsc::channel(256);
    let base = api.stream_url("");
    let token = api.token.clone();
    tokio::spawn(async move {
        let mut after = after;
        let mut failures = 0;
        loop {
            let query = match after {
                Some(a) => format!("?after={a}{filter}"),
                None => format!("?{}", filter.trim_start_matches('&')),
            };
            let mut req = match format!("{base}{query}").into_client_request() {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.send(Err(ClientError::Usage(e.to_string()))).await;
                    return;
                }
            };
            if let Ok(v) = format!("Bearer {token}").parse() {
                req.headers_mut().insert("authorization", v);
            }
            let mut ws = match tokio_tungstenite::connect_async(req).await {
                Ok((ws, _)) => {
                    failures = 0;
                    ws
                }
                Err(e) => {
                    let refused = matches!(
                        &e,
                        tokio_tungstenite::tungstenite::Error::Http(r)
                            if matches!(r.status().as_u16(), 401 | 403)
                    );
                    failures += 1;
                    if refused || failures > MAX_RECONNECTS {
                        let err = if refused {
                            ClientError::Unauthorised("the event stream refused the token".into())
                        } else {
                            ClientError::Unreachable {
                                url: base.clone(),
                                reason: e.to_string(),
                            }
                        };
                        let _ = tx.send(Err(err)).await;
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
            };
            while let Some(msg) = ws.next().await {
                let Ok(Message::Text(text)) = msg else {
                    if matches!(msg, Ok(Message::Close(_)) | Err(_)) {
                        break;
                    }
                    continue;
                };
                let Ok(event) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                if let Some(seq) = event["seq"].as_i64() {
                    after = Some(seq);
                }
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            // Dropped (server restart, too slow, network): resume where we were.
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    rx
}
