//! Turning an HTTP exchange with a provider into an [`LlmError`] class, and reading the
//! headers every provider sends about its limits.

use super::LlmError;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use std::collections::BTreeMap;
use std::time::Duration;

/// The longest error body quoted in a reason.
const MAX_QUOTED: usize = 300;

/// A transport failure: timeouts and connection trouble are retryable, the rest fatal.
pub fn transport(e: &reqwest::Error) -> LlmError {
    if e.is_timeout() {
        LlmError::Retryable("the provider did not answer in time".into())
    } else if e.is_connect() || e.is_request() || e.is_body() {
        LlmError::Retryable(format!("cannot reach the provider: {e}"))
    } else {
        LlmError::fatal(format!("the call failed: {e}"))
    }
}

/// An error status with its body: 429 waits, 408/409/5xx/529 retry, 401/403 and an unknown
/// model are the agent's configuration, other 4xx fatal.
pub fn status(status: StatusCode, headers: &HeaderMap, body: &str) -> LlmError {
    let message = error_message(body);
    let reason = format!("the provider answered {status}: {message}");
    match status.as_u16() {
        429 => LlmError::RateLimited {
            retry_after: retry_after(headers),
            reason,
        },
        408 | 409 | 500..=599 => LlmError::Retryable(reason),
        401 | 403 => LlmError::Fatal {
            reason,
            config: true,
        },
        404 => LlmError::Fatal {
            reason,
            // Both providers answer 404 for a model that does not exist.
            config: true,
        },
        _ if message.contains("model") => LlmError::Fatal {
            reason,
            config: true,
        },
        _ => LlmError::fatal(reason),
    }
}

/// The message of either provider's error body (`{"error": {"message": …}}`), or the body's
/// start when it has none.
fn error_message(body: &str) -> String {
    let parsed: Option<String> = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("error").and_then(|e| {
                e.get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_owned)
                    .or_else(|| e.as_str().map(str::to_owned))
            })
        });
    let text = parsed.unwrap_or_else(|| body.trim().to_owned());
    text.chars().take(MAX_QUOTED).collect()
}

/// `retry-after` as seconds (the providers send seconds; an HTTP date is not honoured).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let raw = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let secs: f64 = raw.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

/// The rate-limit headers of a response, by name.
pub fn rate_limits(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .filter(|(name, _)| {
            let n = name.as_str();
            n.starts_with("anthropic-ratelimit-") || n.starts_with("x-ratelimit-")
        })
        .filter_map(|(name, value)| {
            let v = value.to_str().ok()?;
            Some((name.as_str().to_owned(), v.chars().take(100).collect()))
        })
        .collect()
}

/// POSTs `body` and returns a successful answer's text and headers; every failure classified,
/// an error body scrubbed of `secret` first.
pub async fn post_json(
    http: &reqwest::Client,
    url: &str,
    headers: &reqwest::header::HeaderMap,
    body: &serde_json::Value,
    secret: Option<&secrecy::SecretString>,
) -> Result<(String, reqwest::header::HeaderMap), LlmError> {
    let res = http
        .post(url)
        .headers(headers.clone())
        .json(body)
        .send()
        .await
        .map_err(|e| transport(&e))?;
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.map_err(|e| transport(&e))?;
    if !status.is_success() {
        return Err(self::status(status, &headers, &scrub(&text, secret)));
    }
    Ok((text, headers))
}

/// `text` with every occurrence of `secret` replaced: a provider may quote the key it refused
/// in its error body, and error reasons end up in events and on pages.
pub fn scrub(text: &str, secret: Option<&secrecy::SecretString>) -> String {
    use secrecy::ExposeSecret;
    match secret.map(ExposeSecret::expose_secret) {
        Some(s) if !s.is_empty() => text.replace(s, "[api key]"),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn statuses_fall_into_their_classes() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(
            status(StatusCode::TOO_MANY_REQUESTS, &h, "{}"),
            LlmError::RateLimited {
                retry_after: Some(Duration::from_secs(7)),
                reason: "the provider answered 429 Too Many Requests: {}".into()
            }
        );
        let overloaded = StatusCode::from_u16(529).unwrap();
        assert!(matches!(
            status(overloaded, &HeaderMap::new(), ""),
            LlmError::Retryable(_)
        ));
        assert!(matches!(
            status(StatusCode::UNAUTHORIZED, &HeaderMap::new(), ""),
            LlmError::Fatal { config: true, .. }
        ));
        assert!(matches!(
            status(
                StatusCode::BAD_REQUEST,
                &HeaderMap::new(),
                r#"{"error":{"message":"bad"}}"#
            ),
            LlmError::Fatal { config: false, .. }
        ));
    }

    #[test]
    fn a_retry_after_that_is_not_seconds_is_ignored() {
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("-3"));
        assert_eq!(retry_after(&h), None);
    }
}
