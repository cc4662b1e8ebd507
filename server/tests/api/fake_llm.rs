//! A local HTTP server speaking a provider's wire format from scripted replies, recording
//! every request it receives (path, headers, body) for the tests to assert on.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// One scripted reply.
#[derive(Clone)]
pub enum Reply {
    /// A status, extra headers and a body.
    Body(u16, Vec<(&'static str, String)>, String),
    /// Never answers.
    Hang,
    /// Answers with the reply after a pause.
    Slow(u64, Box<Reply>),
}

impl Reply {
    /// A 200 with a fixture file's body.
    pub fn fixture(name: &str) -> Self {
        Reply::Body(200, Vec::new(), fixture(name))
    }
}

pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/llm/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Clone)]
pub struct Fake {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Serves `replies` in order, the last one again for every request after.
pub async fn start(replies: Vec<Reply>) -> Fake {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    let handler = move |uri: Uri, headers: HeaderMap, body: Bytes| {
        let (log, replies) = (log.clone(), replies.clone());
        async move {
            let n = {
                let mut log = log.lock().unwrap();
                log.push(Seen {
                    path: uri.path().to_owned(),
                    headers,
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                });
                log.len() - 1
            };
            let mut reply = replies[n.min(replies.len() - 1)].clone();
            if let Reply::Slow(ms, inner) = reply {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                reply = *inner;
            }
            match reply {
                Reply::Hang | Reply::Slow(..) => {
                    std::future::pending::<()>().await;
                    unreachable!()
                }
                Reply::Body(status, extra, body) => {
                    let mut res: Response = (
                        StatusCode::from_u16(status).unwrap(),
                        [("content-type", "application/json")],
                        body,
                    )
                        .into_response();
                    for (k, v) in extra {
                        res.headers_mut().insert(k, v.parse().unwrap());
                    }
                    res
                }
            }
        }
    };
    let app = Router::new().fallback(handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Fake { url, seen }
}
