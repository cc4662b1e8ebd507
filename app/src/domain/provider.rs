//! Model providers as admins configure them: the rules for each field.

use super::usage::Prices;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// The Anthropic Messages API.
    Anthropic,
    /// OpenAI Chat Completions and the servers that speak it (OpenRouter, Ollama, vLLM,
    /// llama.cpp).
    OpenaiCompatible,
}

str_enum!(ProviderKind {
    Anthropic => "anthropic",
    OpenaiCompatible => "openai_compatible",
});

/// How an OpenAI-compatible server is asked for JSON under a schema.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonFormat {
    /// `response_format: {"type": "json_schema", ...}` (OpenAI, OpenRouter, vLLM, Ollama).
    #[default]
    JsonSchema,
    /// `response_format: {"type": "json_object", "schema": ...}` (llama-cpp-python).
    JsonObject,
}

str_enum!(JsonFormat {
    JsonSchema => "json_schema",
    JsonObject => "json_object",
});

/// A provider as the API and the page show it: everything but the key.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProviderView {
    pub id: uuid::Uuid,
    pub name: String,
    pub kind: ProviderKind,
    pub base_url: String,
    pub default_model: String,
    /// Per model, in micro-units per million tokens.
    pub prices: BTreeMap<String, Prices>,
    pub json_format: JsonFormat,
    pub api_key_set: bool,
    /// Its circuit breaker as last reported: `closed`, `open` or `half_open`.
    pub breaker: String,
    /// The newest rate-limit headers it answered with (`anthropic-ratelimit-*`,
    /// `x-ratelimit-*`), by name.
    pub rate_limits: BTreeMap<String, String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub rate_limits_at: Option<time::OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: time::OffsetDateTime,
}

/// What a provider's connection test saw.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    pub model: String,
    pub latency_ms: i64,
    pub usage: super::usage::Usage,
    /// The start of what the model answered.
    pub reply: String,
}

/// What a connection test found: the provider answered (`ok`) or why not.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProviderTest {
    pub ok: bool,
    pub report: Option<CheckReport>,
    pub error: Option<String>,
}

/// The name agents refer to a provider by.
pub const RESERVED: &str = "simulated";
const MAX_NAME: usize = 64;
const MAX_URL: usize = 500;
const MAX_MODEL: usize = 200;
const MAX_KEY: usize = 1000;
const MAX_PRICED_MODELS: usize = 100;

pub fn parse_name(raw: &str) -> Result<String, String> {
    let ok = (1..=MAX_NAME).contains(&raw.len())
        && raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && raw.starts_with(|c: char| c.is_ascii_lowercase());
    if !ok {
        return Err(format!(
            "name must be 1 to {MAX_NAME} characters of a-z, 0-9, - and _, starting with a letter"
        ));
    }
    if raw == RESERVED {
        return Err(format!("'{RESERVED}' is the built-in test model's name"));
    }
    Ok(raw.to_owned())
}

/// An http(s) URL up to the API's version path; kept without a trailing slash. The same rule
/// as the documented pattern `^https?://[A-Za-z0-9.:\[\]-]+(/[A-Za-z0-9._~%/-]*)?$`.
pub fn parse_base_url(raw: &str) -> Result<String, String> {
    let rest = raw
        .strip_prefix("https://")
        .or_else(|| raw.strip_prefix("http://"));
    let ok = rest.is_some_and(|r| {
        let (host, path) = r.split_at(r.find('/').unwrap_or(r.len()));
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']' | '-'))
            && path.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '%' | '/' | '-')
            })
    });
    if raw.len() > MAX_URL || !ok {
        return Err(format!(
            "base_url must be an http:// or https:// URL of at most {MAX_URL} characters: a host \
             (letters, digits, '.', ':', '-', brackets) and a path of letters, digits and \
             ._~%/- (no credentials, query or fragment)"
        ));
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

/// A model name: visible ASCII, as the document's pattern says.
pub fn parse_model(raw: &str) -> Result<String, String> {
    if !(1..=MAX_MODEL).contains(&raw.len()) || !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "a model name is 1 to {MAX_MODEL} visible ASCII characters (no spaces)"
        ));
    }
    Ok(raw.to_owned())
}

/// An API key: it goes into a header, so visible ASCII only.
pub fn parse_api_key(raw: &str) -> Result<String, String> {
    if !(1..=MAX_KEY).contains(&raw.len()) || !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "api_key must be 1 to {MAX_KEY} visible ASCII characters"
        ));
    }
    Ok(raw.to_owned())
}

pub fn check_prices(prices: &BTreeMap<String, Prices>) -> Result<(), String> {
    if prices.len() > MAX_PRICED_MODELS {
        return Err(format!("prices name at most {MAX_PRICED_MODELS} models"));
    }
    for (model, p) in prices {
        parse_model(model).map_err(|e| format!("prices: {e}"))?;
        p.check().map_err(|e| format!("prices of {model}: {e}"))?;
    }
    Ok(())
}

/// The associated data binding a provider's sealed key to its row and key version.
pub fn provider_aad(id: uuid::Uuid, key_version: i32) -> Vec<u8> {
    format!("flotilla:provider:{id}:v{key_version}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fields_are_checked_with_reasons() {
        assert!(parse_name("openrouter").is_ok());
        assert!(parse_name("simulated").unwrap_err().contains("built-in"));
        for bad in ["", "Open", "a b", "-x", &"a".repeat(65)] {
            assert!(parse_name(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_base_url("http://localhost:11434/v1/").unwrap(),
            "http://localhost:11434/v1"
        );
        for bad in [
            "ftp://x",
            "https://",
            "https://u:p@host",
            "https://h/v1?x=1",
            "x",
            "https://a b",
            // Schemathesis: the documented pattern refuses the `*`, so must the server.
            "http://[E00/9sC0-f9eKA.BD*",
        ] {
            assert!(parse_base_url(bad).is_err(), "{bad}");
        }
        assert!(parse_api_key("sk-abc").is_ok());
        assert!(parse_api_key("sk abc").is_err());
        assert!(parse_api_key("sk\r\nx").is_err());
        let mut prices = BTreeMap::new();
        prices.insert(
            "m".to_owned(),
            Prices {
                input: -1,
                ..Prices::default()
            },
        );
        assert!(check_prices(&prices).unwrap_err().contains("prices of m"));
    }

    proptest! {
        /// Whatever text arrives, each rule answers with a value or a reason, never a panic.
        #[test]
        fn any_text_is_a_value_or_a_reason(raw in "\\PC{0,80}", bytes in ".{0,40}") {
            for s in [&raw, &bytes] {
                let _ = parse_name(s);
                let _ = parse_model(s);
                let _ = parse_api_key(s);
                if let Ok(url) = parse_base_url(s) {
                    prop_assert!(url.starts_with("http"));
                }
            }
        }
    }
}
