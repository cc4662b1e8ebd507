//! OpenAI-compatible Chat Completions (`POST {base}/chat/completions`): one client for OpenAI,
//! OpenRouter, Ollama, vLLM and llama.cpp's server. Tolerates the quirks compatible servers
//! have: `content` null, a string or an array of parts; tool arguments a JSON string or an
//! object; `usage` absent.

use super::{
    Block, ChatRequest, ChatResponse, HttpSettings, LlmError, Model, Role, StopReason, ToolChoice,
    Usage, classify,
};
use futures_util::future::BoxFuture;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Clone, Debug)]
pub struct OpenAiConfig {
    /// Up to and including the version path: `https://openrouter.ai/api/v1`,
    /// `http://localhost:11434/v1`.
    pub base_url: String,
    pub api_key: Option<secrecy::SecretString>,
    pub extra_headers: Vec<(String, String)>,
    pub json_format: JsonFormat,
}

/// How a server is asked for JSON under a schema.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum JsonFormat {
    /// `{"type": "json_schema", "json_schema": {...}}`: OpenAI, OpenRouter, vLLM, Ollama.
    #[default]
    #[value(name = "json_schema")]
    JsonSchema,
    /// `{"type": "json_object", "schema": {...}}`: llama.cpp's Python server (llama-cpp-python).
    #[value(name = "json_object")]
    JsonObject,
}

#[derive(Debug)]
pub struct OpenAi {
    http: reqwest::Client,
    url: String,
    headers: HeaderMap,
    json_format: JsonFormat,
    /// Scrubbed from error bodies.
    secret: Option<secrecy::SecretString>,
}

impl OpenAi {
    pub fn new(config: &OpenAiConfig, settings: &HttpSettings) -> Result<Self, LlmError> {
        let mut headers = HeaderMap::new();
        for (name, value) in &config.extra_headers {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|e| LlmError::fatal(format!("header name '{name}': {e}")))?;
            let value = HeaderValue::try_from(value.as_str())
                .map_err(|e| LlmError::fatal(format!("header {name}: {e}")))?;
            headers.insert(name, value);
        }
        if let Some(key) = &config.api_key {
            let mut value = HeaderValue::try_from(format!(
                "Bearer {}",
                secrecy::ExposeSecret::expose_secret(key)
            ))
            .map_err(|_| LlmError::Fatal {
                reason: "the API key is not a valid header value".into(),
                config: true,
            })?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        Ok(Self {
            http: settings.client()?,
            url: format!("{}/chat/completions", config.base_url.trim_end_matches('/')),
            headers,
            json_format: config.json_format,
            secret: config.api_key.clone(),
        })
    }
}

/// The request body, as the Chat Completions reference documents it.
pub fn body(req: &ChatRequest, json_format: JsonFormat) -> Value {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if !req.system.is_empty() {
        messages.push(json!({"role": "system", "content": req.system}));
    }
    for m in &req.messages {
        let mut texts = Vec::new();
        let mut calls = Vec::new();
        for b in &m.content {
            match b {
                Block::Text { text } => texts.push(text.as_str()),
                Block::ToolCall {
                    id,
                    name,
                    arguments,
                } => calls.push(json!({
                    "id": id,
                    "type": "function",
                    "function": {"name": name, "arguments": match arguments {
                        Value::String(raw) => raw.clone(),
                        other => other.to_string(),
                    }},
                })),
                // Each result is a message of its own with the `tool` role.
                Block::ToolResult {
                    call_id, content, ..
                } => messages.push(json!({
                    "role": "tool",
                    "tool_call_id": call_id,
                    "content": content,
                })),
            }
        }
        let role = match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        if !calls.is_empty() {
            // An empty string, not null: OpenAI takes either, llama-cpp-python only a string.
            let content = json!(texts.join("\n"));
            messages.push(json!({"role": role, "content": content, "tool_calls": calls}));
        } else if !texts.is_empty() {
            messages.push(json!({"role": role, "content": texts.join("\n")}));
        }
    }
    let mut body = json!({
        "model": req.model,
        "messages": messages,
        "max_tokens": req.max_tokens,
    });
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.input_schema,
                }})
            })
            .collect();
        body["tool_choice"] = match &req.tool_choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::Any => json!("required"),
            ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
        };
    }
    if let Some((name, schema)) = &req.json_schema {
        body["response_format"] = match json_format {
            JsonFormat::JsonSchema => json!({
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": true},
            }),
            JsonFormat::JsonObject => json!({"type": "json_object", "schema": schema}),
        };
    }
    body
}

#[derive(Deserialize)]
struct Reply {
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<ReplyUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ReplyMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ReplyMessage {
    #[serde(default)]
    content: Value,
    #[serde(default)]
    tool_calls: Vec<ReplyCall>,
}

#[derive(Deserialize)]
struct ReplyCall {
    id: String,
    function: ReplyFunction,
}

#[derive(Deserialize)]
struct ReplyFunction {
    name: String,
    #[serde(default)]
    arguments: Value,
}

#[derive(Deserialize)]
struct ReplyUsage {
    #[serde(default)]
    prompt_tokens: i64,
    #[serde(default)]
    completion_tokens: i64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<i64>,
}

/// Reads a response body into the seam's terms.
pub fn parse(raw: &str) -> Result<(Vec<Block>, StopReason, Usage), LlmError> {
    let reply: Reply = serde_json::from_str(raw)
        .map_err(|e| LlmError::fatal(format!("the provider's answer is not a completion: {e}")))?;
    let Some(choice) = reply.choices.into_iter().next() else {
        return Err(LlmError::fatal("the provider's answer has no choices"));
    };
    let mut content = Vec::new();
    match choice.message.content {
        Value::String(text) if !text.is_empty() => content.push(Block::Text { text }),
        Value::Array(parts) => {
            for p in parts {
                if let Some(text) = p.get("text").and_then(Value::as_str) {
                    content.push(Block::Text {
                        text: text.to_owned(),
                    });
                }
            }
        }
        _ => {}
    }
    for call in choice.message.tool_calls {
        let arguments = match call.function.arguments {
            Value::String(s) if s.trim().is_empty() => json!({}),
            // Arguments that are not JSON stay the model's text: the tool loop answers the call
            // with the error, and the model may correct itself.
            Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
            Value::Null => json!({}),
            other => other,
        };
        content.push(Block::ToolCall {
            id: call.id,
            name: call.function.name,
            arguments,
        });
    }
    let has_calls = content.iter().any(|b| matches!(b, Block::ToolCall { .. }));
    let stop = match choice.finish_reason.as_deref() {
        Some("tool_calls" | "function_call") => StopReason::ToolUse,
        Some("length") => StopReason::MaxTokens,
        // Some servers say "stop" even when they called a tool.
        _ if has_calls => StopReason::ToolUse,
        Some("stop") | None => StopReason::EndTurn,
        Some(other) => StopReason::Other(other.to_owned()),
    };
    let usage = reply.usage.map_or_else(Usage::default, |u| {
        // `prompt_tokens` includes the cached tokens: split them out.
        let cached = u
            .prompt_tokens_details
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0)
            .clamp(0, u.prompt_tokens.max(0));
        Usage {
            input: u.prompt_tokens.max(0) - cached,
            cache_read: cached,
            cache_write: 0,
            output: u.completion_tokens.max(0),
        }
    });
    Ok((content, stop, usage))
}

impl Model for OpenAi {
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        Box::pin(async move {
            let (text, headers) = classify::post_json(
                &self.http,
                &self.url,
                &self.headers,
                &body(req, self.json_format),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_arguments_that_are_not_json_reach_the_loop_as_the_models_text() {
        let raw = json!({"choices": [{"message": {"role": "assistant", "content": null,
            "tool_calls": [{"id": "c1", "type": "function",
                            "function": {"name": "http_get", "arguments": "{\"url\": \"a\nb"}}]},
            "finish_reason": "tool_calls"}]});
        let (content, _, _) = parse(&raw.to_string()).unwrap();
        assert_eq!(
            content,
            [Block::ToolCall {
                id: "c1".into(),
                name: "http_get".into(),
                arguments: Value::String("{\"url\": \"a\nb".into()),
            }]
        );
        // Sent back as the model wrote it, not re-quoted.
        let mut req = ChatRequest::new("m", "", "x".into());
        req.messages.push(crate::llm::Message {
            role: Role::Assistant,
            content,
        });
        let sent = body(&req, JsonFormat::JsonSchema);
        assert_eq!(
            sent["messages"][1]["tool_calls"][0]["function"]["arguments"],
            "{\"url\": \"a\nb"
        );
    }
}
