//! The model seam: one chat call with roles, tools, tool calls and results, and usage, behind
//! [`Model`], implemented by the Anthropic Messages client, the OpenAI-compatible Chat
//! Completions client (OpenRouter, Ollama, vLLM, llama.cpp) and the simulated model. Errors are
//! classified ([`LlmError`]) so the engine knows to retry, wait or fail.

pub mod anthropic;
pub mod breaker;
mod classify;
pub mod openai;
pub mod resilient;
pub mod simulated;

pub use app::domain::usage::Usage;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
}

/// One piece of a message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Text {
        text: String,
    },
    /// The model asks for a tool; `arguments` is the JSON object it gave.
    ToolCall {
        id: String,
        name: String,
        arguments: Value,
    },
    /// What a tool answered to the call `call_id`.
    ToolResult {
        call_id: String,
        content: String,
        is_error: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: Vec<Block>,
}

impl Message {
    pub fn user(text: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: vec![Block::Text { text: text.into() }],
        }
    }
}

/// A tool the model may call, in MCP's shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    #[serde(rename = "inputSchema")]
    pub input_schema: Value,
}

/// Whether and which tool the model must call.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum ToolChoice {
    #[default]
    Auto,
    /// Some tool, the model picks which.
    Any,
    Tool(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub system: String,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
    pub tool_choice: ToolChoice,
    /// Ask for JSON matching this schema (named), where the provider can constrain it.
    pub json_schema: Option<(String, Value)>,
    pub max_tokens: u32,
    /// What the call is for, structured; only the simulated model reads it (real models read
    /// the messages).
    pub purpose: Option<Purpose>,
}

/// What a call is for, for the simulated model.
#[derive(Debug, Clone, PartialEq)]
pub enum Purpose {
    Plan {
        description: String,
        priority: i16,
    },
    Execute {
        description: String,
        context: Vec<String>,
        attempt: i32,
    },
}

impl ChatRequest {
    pub fn new(model: impl Into<String>, system: impl Into<String>, prompt: String) -> Self {
        Self {
            model: model.into(),
            system: system.into(),
            messages: vec![Message::user(prompt)],
            tools: Vec::new(),
            tool_choice: ToolChoice::Auto,
            json_schema: None,
            max_tokens: 1024,
            purpose: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    ToolUse,
    MaxTokens,
    Other(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChatResponse {
    /// Text and tool calls, in the order the model gave them.
    pub content: Vec<Block>,
    pub stop: StopReason,
    pub usage: Usage,
    /// The provider's rate-limit headers on this answer (`anthropic-ratelimit-*`,
    /// `x-ratelimit-*`), by name.
    pub rate_limits: BTreeMap<String, String>,
}

impl ChatResponse {
    /// The answer's text blocks, joined.
    pub fn text(&self) -> String {
        let texts: Vec<&str> = self
            .content
            .iter()
            .filter_map(|b| match b {
                Block::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        texts.join("\n")
    }

    pub fn tool_calls(&self) -> impl Iterator<Item = (&str, &str, &Value)> {
        self.content.iter().filter_map(|b| match b {
            Block::ToolCall {
                id,
                name,
                arguments,
            } => Some((id.as_str(), name.as_str(), arguments)),
            _ => None,
        })
    }
}

/// Why a call failed, by what the caller should do about it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum LlmError {
    /// Worth trying again soon: 5xx, 529 overloaded, timeouts, connection resets.
    #[error("{0}")]
    Retryable(String),
    /// The provider asked us to slow down, for `retry_after` when it said.
    #[error("rate limited: {reason}")]
    RateLimited {
        retry_after: Option<Duration>,
        reason: String,
    },
    /// Trying again will not help. `config` marks errors about the agent's configuration (a
    /// bad key, an unknown model), which put the agent in the `error` state.
    #[error("{reason}")]
    Fatal { reason: String, config: bool },
    /// Not made: a budget cap has no room for the call's worst case.
    #[error("{0}")]
    OverBudget(String),
}

impl LlmError {
    pub fn fatal(reason: impl Into<String>) -> Self {
        LlmError::Fatal {
            reason: reason.into(),
            config: false,
        }
    }

    /// Whether it counts towards opening a provider's circuit breaker (4xx never does).
    pub fn trips_breaker(&self) -> bool {
        matches!(self, LlmError::Retryable(_))
    }
}

/// A model provider: one chat call.
pub trait Model: Send + Sync + std::fmt::Debug {
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse, LlmError>>;
}

/// How the HTTP clients connect: every call has a deadline.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl HttpSettings {
    fn client(&self) -> Result<reqwest::Client, LlmError> {
        crate::install_tls_provider();
        reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .no_proxy()
            .build()
            .map_err(|e| LlmError::fatal(format!("cannot build the HTTP client: {e}")))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;
    use serde_json::Value;

    /// Any JSON value with arbitrary Unicode, nested a few levels, its keys often the ones the
    /// providers' formats and the tools use, so the parsers get past their first checks.
    pub(crate) fn arbitrary_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::from),
        ];
        let key = prop_oneof![
            Just("choices".to_owned()),
            Just("message".to_owned()),
            Just("content".to_owned()),
            Just("tool_calls".to_owned()),
            Just("function".to_owned()),
            Just("arguments".to_owned()),
            Just("usage".to_owned()),
            Just("type".to_owned()),
            Just("text".to_owned()),
            Just("input".to_owned()),
            Just("path".to_owned()),
            Just("error".to_owned()),
            any::<String>(),
        ];
        leaf.prop_recursive(4, 64, 8, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                proptest::collection::hash_map(key.clone(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever a provider answers — arbitrary Unicode, arbitrary JSON, any status — each
        /// client's parser and the error classifier give an answer or a classified error,
        /// never a panic.
        #[test]
        fn any_provider_answer_is_parsed_or_classified(
            text in "\\PC{0,200}",
            json in arbitrary_json(),
            code in 100u16..600,
        ) {
            let body = json.to_string();
            for raw in [text.as_str(), body.as_str()] {
                let _ = super::openai::parse(raw);
                let _ = super::anthropic::parse(raw);
                if let Ok(status) = reqwest::StatusCode::from_u16(code) {
                    let _ = super::classify::status(status, &reqwest::header::HeaderMap::new(), raw);
                }
            }
        }
    }
}
