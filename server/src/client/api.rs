//! The REST API as the CLI calls it: bearer token, JSON in and out, the server's error message
//! and the exit code it maps to.

use super::ClientError;
use super::credentials::Credentials;
use serde_json::Value;
use std::time::Duration;

pub struct Api {
    pub base: String,
    pub token: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(c: &Credentials) -> Self {
        Self {
            base: c.url.clone(),
            token: c.token.clone(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
        }
    }

    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    pub async fn post(&self, path: &str, body: Option<Value>) -> Result<Value, ClientError> {
        let mut req = self.http.post(format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.json(&body);
        }
        self.send(req).await
    }

    /// `POST` returning the status and body whatever the status (a 4xx body is an answer too,
    /// e.g. validation's list of issues).
    pub async fn post_answer(&self, path: &str, body: &Value) -> Result<(u16, Value), ClientError> {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| ClientError::Unreachable {
                url: self.base.clone(),
                reason: e.to_string(),
            })?;
        let status = res.status().as_u16();
        let body = res.json().await.unwrap_or(Value::Null);
        match status {
            401 | 403 => Err(ClientError::Unauthorised(
                body["error"]["message"]
                    .as_str()
                    .unwrap_or("refused")
                    .to_owned(),
            )),
            _ => Ok((status, body)),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, ClientError> {
        let res =
            req.bearer_auth(&self.token)
                .send()
                .await
                .map_err(|e| ClientError::Unreachable {
                    url: self.base.clone(),
                    reason: e.to_string(),
                })?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let mut message = body["error"]["message"]
            .as_str()
            .unwrap_or(status.canonical_reason().unwrap_or("error"))
            .to_owned();
        // Validation lists every issue; show them all, one a line.
        for issue in body["error"]["issues"].as_array().into_iter().flatten() {
            message.push_str(&format!("\n  {}", super::output::issue_line(issue)));
        }
        Err(match status.as_u16() {
            401 | 403 => ClientError::Unauthorised(message),
            _ => ClientError::Refused(message),
        })
    }

    /// The event stream's URL with `query` (`ws://` for `http://`).
    pub fn stream_url(&self, query: &str) -> String {
        let base = self
            .base
            .replacen("https://", "wss://", 1)
            .replacen("http://", "ws://", 1);
        format!("{base}/api/v1/events/stream{query}")
    }
}
