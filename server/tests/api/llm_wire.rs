//! The real provider clients over real HTTP against local servers speaking the documented
//! wire formats, the replies verbatim from the providers' documentation (fixtures/llm).

use crate::fake_llm::{self, Reply, fixture};
use serde_json::json;
use server::llm::anthropic::Anthropic;
use server::llm::openai::{OpenAi, OpenAiConfig};
use server::llm::resilient::{Resilient, RetryPolicy};
use server::llm::{
    Block, ChatRequest, HttpSettings, LlmError, Message, Model, Role, StopReason, ToolChoice,
    ToolSpec, Usage,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn weather_tool() -> ToolSpec {
    ToolSpec {
        name: "get_weather".into(),
        description: "The weather in a place".into(),
        input_schema: json!({"type": "object", "properties": {"location": {"type": "string"}}}),
    }
}

/// A conversation with one finished tool round, so both directions of tools are on the wire.
fn tool_round() -> ChatRequest {
    let mut req = ChatRequest::new("m-1", "Be brief.", "Weather in SF?".into());
    req.messages.push(Message {
        role: Role::Assistant,
        content: vec![Block::ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: json!({"location": "SF"}),
        }],
    });
    req.messages.push(Message {
        role: Role::User,
        content: vec![Block::ToolResult {
            call_id: "call_1".into(),
            content: "15 degrees".into(),
            is_error: false,
        }],
    });
    req.tools = vec![weather_tool()];
    req.max_tokens = 300;
    req
}

fn openai(url: &str, settings: &HttpSettings) -> OpenAi {
    OpenAi::new(
        &OpenAiConfig {
            base_url: format!("{url}/v1"),
            api_key: Some(secrecy::SecretString::from("sk-test")),
            extra_headers: vec![("HTTP-Referer".into(), "https://flotilla.test".into())],
            json_format: Default::default(),
        },
        settings,
    )
    .unwrap()
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        tries: 3,
        min_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    }
}

#[tokio::test]
async fn openai_sends_the_documented_request_and_reads_tool_calls_and_usage() {
    let fake = fake_llm::start(vec![Reply::Body(
        200,
        vec![
            ("x-ratelimit-remaining-requests", "59".into()),
            ("x-ratelimit-limit-tokens", "150000".into()),
        ],
        fixture("openai_tool_calls.json"),
    )])
    .await;
    let client = openai(&fake.url, &HttpSettings::default());
    let answer = client.chat(&tool_round()).await.unwrap();

    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(seen[0].headers["authorization"], "Bearer sk-test");
    assert_eq!(seen[0].headers["http-referer"], "https://flotilla.test");
    assert_eq!(
        seen[0].body,
        json!({
            "model": "m-1",
            "max_tokens": 300,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Weather in SF?"},
                {"role": "assistant", "content": "", "tool_calls": [{
                    "id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"location\":\"SF\"}"},
                }]},
                {"role": "tool", "tool_call_id": "call_1", "content": "15 degrees"},
            ],
            "tools": [{"type": "function", "function": {
                "name": "get_weather",
                "description": "The weather in a place",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
            }}],
            "tool_choice": "auto",
        })
    );
    assert_eq!(answer.stop, StopReason::ToolUse);
    let calls: Vec<_> = answer.tool_calls().collect();
    assert_eq!(
        calls,
        vec![(
            "call_abc123",
            "get_current_weather",
            &json!({"location": "Boston, MA"})
        )]
    );
    assert_eq!(
        answer.usage,
        Usage {
            input: 82,
            cache_read: 0,
            cache_write: 0,
            output: 17
        }
    );
    assert_eq!(answer.rate_limits["x-ratelimit-remaining-requests"], "59");
    assert_eq!(answer.rate_limits["x-ratelimit-limit-tokens"], "150000");
}

#[tokio::test]
async fn openai_cached_tokens_are_split_out_of_prompt_tokens() {
    let fake = fake_llm::start(vec![Reply::fixture("openai_cached.json")]).await;
    let mut req = ChatRequest::new("m", "", "hi".into());
    req.json_schema = Some(("plan".into(), json!({"type": "object"})));
    req.tools = vec![weather_tool()];
    req.tool_choice = ToolChoice::Tool("get_weather".into());
    let answer = openai(&fake.url, &HttpSettings::default())
        .chat(&req)
        .await
        .unwrap();
    // prompt_tokens 2006 include the 1920 cached ones.
    assert_eq!(
        answer.usage,
        Usage {
            input: 86,
            cache_read: 1920,
            cache_write: 0,
            output: 300
        }
    );
    assert!(answer.text().starts_with("The image shows"));
    let body = &fake.seen()[0].body;
    assert_eq!(body["messages"], json!([{"role": "user", "content": "hi"}]));
    assert_eq!(
        body["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "plan", "schema": {"type": "object"}, "strict": true}})
    );
    assert_eq!(
        body["tool_choice"],
        json!({"type": "function", "function": {"name": "get_weather"}})
    );
}

#[tokio::test]
async fn anthropic_sends_the_documented_request_and_reads_tool_use_and_cache_usage() {
    let fake = fake_llm::start(vec![
        Reply::Body(
            200,
            vec![("anthropic-ratelimit-requests-remaining", "49".into())],
            fixture("anthropic_tool_use.json"),
        ),
        Reply::fixture("anthropic_cached.json"),
    ])
    .await;
    let client = Anthropic::new(&fake.url, "sk-ant-test", &HttpSettings::default()).unwrap();
    let answer = client.chat(&tool_round()).await.unwrap();
    let seen = fake.seen();
    assert_eq!(seen[0].path, "/v1/messages");
    assert_eq!(seen[0].headers["x-api-key"], "sk-ant-test");
    assert_eq!(seen[0].headers["anthropic-version"], "2023-06-01");
    assert!(seen[0].headers.get("authorization").is_none());
    assert_eq!(
        seen[0].body,
        json!({
            "model": "m-1",
            "max_tokens": 300,
            "system": "Be brief.",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Weather in SF?"}]},
                {"role": "assistant", "content": [{
                    "type": "tool_use", "id": "call_1", "name": "get_weather",
                    "input": {"location": "SF"},
                }]},
                {"role": "user", "content": [{
                    "type": "tool_result", "tool_use_id": "call_1",
                    "content": "15 degrees", "is_error": false,
                }]},
            ],
            "tools": [{
                "name": "get_weather",
                "description": "The weather in a place",
                "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}},
            }],
            "tool_choice": {"type": "auto"},
        })
    );
    assert_eq!(answer.stop, StopReason::ToolUse);
    assert_eq!(
        answer.tool_calls().collect::<Vec<_>>(),
        vec![(
            "toolu_01A09q90qw90lq917835lq9",
            "get_weather",
            &json!({"location": "San Francisco, CA", "unit": "celsius"})
        )]
    );
    assert!(answer.text().starts_with("<thinking>"));
    assert_eq!(
        answer.rate_limits["anthropic-ratelimit-requests-remaining"],
        "49"
    );

    // A JSON schema is a forced tool; cache writes and reads are their own counts.
    let mut req = ChatRequest::new("m", "", "plan it".into());
    req.json_schema = Some(("submit_plan".into(), json!({"type": "object"})));
    let answer = client.chat(&req).await.unwrap();
    assert_eq!(
        answer.usage,
        Usage {
            input: 21,
            cache_read: 0,
            cache_write: 188_086,
            output: 393
        }
    );
    let body = &fake.seen()[1].body;
    assert_eq!(
        body["tool_choice"],
        json!({"type": "tool", "name": "submit_plan"})
    );
    assert_eq!(body["tools"][0]["input_schema"], json!({"type": "object"}));
    assert!(body.get("system").is_none());
}

#[tokio::test]
async fn a_429_waits_for_its_retry_after_and_the_call_is_retried_in_place() {
    let fake = fake_llm::start(vec![
        Reply::Body(
            429,
            vec![("retry-after", "1".into())],
            fixture("openai_rate_limit.json"),
        ),
        Reply::fixture("openai_cached.json"),
    ])
    .await;
    let model = Resilient::new(
        "p",
        Arc::new(openai(&fake.url, &HttpSettings::default())),
        fast_retries(),
        None,
    );
    let started = Instant::now();
    let answer = model
        .chat(&ChatRequest::new("m", "", "x".into()))
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "retry-after honoured"
    );
    assert_eq!(answer.usage.output, 300);
    assert_eq!(fake.seen().len(), 2);
}

#[tokio::test]
async fn overloaded_and_server_errors_are_retried_three_times_then_reported_retryable() {
    for (status, body) in [
        (529, fixture("anthropic_overloaded.json")),
        (500, "{}".to_owned()),
    ] {
        let fake = fake_llm::start(vec![Reply::Body(status, Vec::new(), body)]).await;
        let client = Anthropic::new(&fake.url, "k", &HttpSettings::default()).unwrap();
        let model = Resilient::new("p", Arc::new(client), fast_retries(), None);
        let err = model
            .chat(&ChatRequest::new("m", "", "x".into()))
            .await
            .unwrap_err();
        assert!(matches!(err, LlmError::Retryable(_)), "{status}: {err:?}");
        assert_eq!(fake.seen().len(), 3, "{status}");
        if status == 529 {
            assert!(err.to_string().contains("Overloaded"), "{err}");
        }
    }
}

#[tokio::test]
async fn fatal_answers_are_not_retried_and_config_errors_say_so() {
    let cases = [
        (
            Reply::Body(401, Vec::new(), fixture("openai_bad_key.json")),
            true,
        ),
        (
            Reply::Body(404, Vec::new(), fixture("anthropic_not_found.json")),
            true,
        ),
        (
            Reply::Body(200, Vec::new(), "{\"choices\": [".into()),
            false,
        ),
        (
            Reply::Body(200, Vec::new(), "<html>oops</html>".into()),
            false,
        ),
    ];
    for (reply, config_error) in cases {
        let fake = fake_llm::start(vec![reply]).await;
        let model = Resilient::new(
            "p",
            Arc::new(openai(&fake.url, &HttpSettings::default())),
            fast_retries(),
            None,
        );
        let err = model
            .chat(&ChatRequest::new("m", "", "x".into()))
            .await
            .unwrap_err();
        match err {
            LlmError::Fatal { config, ref reason } => {
                assert_eq!(config, config_error, "{reason}");
                assert!(!reason.contains("sk-test"), "{reason}");
            }
            other => panic!("expected fatal, got {other:?}"),
        }
        assert_eq!(fake.seen().len(), 1, "never retried");
    }
}

#[tokio::test]
async fn a_response_that_never_comes_times_out_as_retryable() {
    let fake = fake_llm::start(vec![Reply::Hang]).await;
    let settings = HttpSettings {
        timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_millis(300),
    };
    let model = Resilient::new(
        "p",
        Arc::new(openai(&fake.url, &settings)),
        RetryPolicy {
            tries: 2,
            ..fast_retries()
        },
        None,
    );
    let err = model
        .chat(&ChatRequest::new("m", "", "x".into()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LlmError::Retryable(r) if r.contains("in time")),
        "{err:?}"
    );
    assert_eq!(fake.seen().len(), 2);
}
