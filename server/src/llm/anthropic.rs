//! Anthropic Messages (`POST {base}/v1/messages`, `anthropic-version: 2023-06-01`). A JSON
//! schema is asked for by forcing a tool whose input schema it is: the answer is that tool
//! call's input.

use super::{
    Block, ChatRequest, ChatResponse, HttpSettings, LlmError, Model, Role, StopReason, ToolChoice,
    Usage, classify,
};
use futures_util::future::BoxFuture;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};

pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
const VERSION: &str = "2023-06-01";

#[derive(Debug)]
pub struct Anthropic {
    http: reqwest::Client,
    url: String,
    headers: HeaderMap,
    /// Scrubbed from error bodies.
    secret: Option<secrecy::SecretString>,
}

impl Anthropic {
    pub fn new(base_url: &str, api_key: &str, settings: &HttpSettings) -> Result<Self, LlmError> {
        let mut headers = HeaderMap::new();
        let mut key = HeaderValue::try_from(api_key).map_err(|_| LlmError::Fatal {
            reason: "the API key is not a valid header value".into(),
            config: true,
        })?;
        key.set_sensitive(true);
        headers.insert("x-api-key", key);
        headers.insert("anthropic-version", HeaderValue::from_static(VERSION));
        Ok(Self {
            http: settings.client()?,
            url: format!("{}/v1/messages", base_url.trim_end_matches('/')),
            headers,
            secret: Some(secrecy::SecretString::from(api_key)),
        })
    }
}

/// The request body, as the Messages reference documents it.
pub fn body(req: &ChatRequest) -> Value {
    let messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| {
            let content: Vec<Value> = m
                .content
                .iter()
                .map(|b| match b {
                    Block::Text { text } => json!({"type": "text", "text": text}),
                    Block::ToolCall {
                        id,
                        name,
                        arguments,
                    } => json!({"type": "tool_use", "id": id, "name": name, "input": arguments}),
                    Block::ToolResult {
                        call_id,
                        content,
                        is_error,
                    } => json!({
                        "type": "tool_result",
                        "tool_use_id": call_id,
                        "content": content,
                        "is_error": is_error,
                    }),
                })
                .collect();
            let role = match m.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            json!({"role": role, "content": content})
        })
        .collect();
    let mut body = json!({
        "model": req.model,
        "max_tokens": req.max_tokens,
        "messages": messages,
    });
    if !req.system.is_empty() {
        body["system"] = json!(req.system);
    }
    let mut tools: Vec<Value> = req
        .tools
        .iter()
        .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}))
        .collect();
    let mut choice = match &req.tool_choice {
        ToolChoice::Auto => json!({"type": "auto"}),
        ToolChoice::Any => json!({"type": "any"}),
        ToolChoice::Tool(name) => json!({"type": "tool", "name": name}),
    };
    if let Some((name, schema)) = &req.json_schema {
        tools.push(json!({
            "name": name,
            "description": "Give the answer as this tool's input.",
            "input_schema": schema,
        }));
        choice = json!({"type": "tool", "name": name});
    }
    if !tools.is_empty() {
        body["tools"] = Value::Array(tools);
        body["tool_choice"] = choice;
    }
    body
}

#[derive(Deserialize)]
struct Reply {
    content: Vec<Value>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<ReplyUsage>,
}

#[derive(Deserialize)]
struct ReplyUsage {
    #[serde(default)]
    input_tokens: i64,
    #[serde(default)]
    output_tokens: i64,
    #[serde(default)]
    cache_creation_input_tokens: Option<i64>,
    #[serde(default)]
    cache_read_input_tokens: Option<i64>,
}

/// Reads a response body into the seam's terms; unknown block types (thinking) are skipped.
pub fn parse(raw: &str) -> Result<(Vec<Block>, StopReason, Usage), LlmError> {
    let reply: Reply = serde_json::from_str(raw)
        .map_err(|e| LlmError::fatal(format!("the provider's answer is not a message: {e}")))?;
    let mut content = Vec::new();
    for block in reply.content {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => content.push(Block::Text {
                text: block
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            }),
            Some("tool_use") => {
                let field = |k: &str| block.get(k).and_then(Value::as_str).map(str::to_owned);
                let (Some(id), Some(name)) = (field("id"), field("name")) else {
                    return Err(LlmError::fatal("a tool_use block without id or name"));
                };
                content.push(Block::ToolCall {
                    id,
                    name,
                    arguments: block.get("input").cloned().unwrap_or_else(|| json!({})),
                });
            }
            _ => {}
        }
    }
    let stop = match reply.stop_reason.as_deref() {
        Some("end_turn" | "stop_sequence") | None => StopReason::EndTurn,
        Some("tool_use") => StopReason::ToolUse,
        Some("max_tokens") => StopReason::MaxTokens,
        Some(other) => StopReason::Other(other.to_owned()),
    };
    // `input_tokens` excludes the cached tokens already.
    let usage = reply.usage.map_or_else(Usage::default, |u| Usage {
        input: u.input_tokens.max(0),
        cache_read: u.cache_read_input_tokens.unwrap_or(0).max(0),
        cache_write: u.cache_creation_input_tokens.unwrap_or(0).max(0),
        output: u.output_tokens.max(0),
    });
    Ok((content, stop, usage))
}

impl Model for Anthropic {
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        Box::pin(async move {
            let (text, headers) = classify::post_json(
                &self.http,
                &self.url,
                &self.headers,
                &body(req),
                self.secret.as_ref(),
            )
            .await?;
            let (content, stop, usage) = parse(&text)?;
            Ok(ChatResponse {
                content,
                stop,
                usage,
                rate_limits: classify::rate_limits(&headers),
            })
        })
    }
}
