//! Model usage for people: calls, the four token counts, cost, a budget's standing, and the
//! transcripts of attempts.

use crate::domain::usage::{Budget, TranscriptView, UsageTotals, format_cost};
use leptos::prelude::*;
use serde_json::Value;

/// One line: calls, tokens by kind, cost.
#[component]
pub fn UsageLine(usage: UsageTotals) -> impl IntoView {
    let failed = (usage.failed_calls > 0).then(|| format!(", {} failed", usage.failed_calls));
    view! {
        <p class="usage" data-testid="usage">
            {format!("{} model calls", usage.calls)}
            {failed}
            {format!(
                " · {} tokens (input {}, cache read {}, cache write {}, output {}) · {}",
                usage.tokens(),
                usage.input,
                usage.cache_read,
                usage.cache_write,
                usage.output,
                format_cost(usage.cost_micros),
            )}
        </p>
    }
}

/// A budget's caps beside what is spent and reserved.
#[component]
pub fn BudgetLine(budget: Budget) -> impl IntoView {
    let tokens = budget
        .cap_tokens
        .map(|cap| format!("{} of {cap} tokens", budget.spent_tokens));
    let cost = budget.cap_cost_micros.map(|cap| {
        format!(
            "{} of {}",
            format_cost(budget.spent_cost_micros),
            format_cost(cap)
        )
    });
    let caps: Vec<String> = tokens.into_iter().chain(cost).collect();
    view! {
        <p class="usage" data-testid="budget">
            "Budget: "
            {caps.join(" · ")}
            {(budget.reserved_tokens > 0)
                .then(|| format!(" ({} tokens reserved by calls in flight)", budget.reserved_tokens))}
        </p>
    }
}

/// One block of a message as text.
fn block_text(block: &Value) -> (String, String) {
    let kind = block["type"].as_str().unwrap_or("?").to_owned();
    let text = match kind.as_str() {
        "text" => block["text"].as_str().unwrap_or_default().to_owned(),
        "tool_call" => format!(
            "{}({})",
            block["name"].as_str().unwrap_or("?"),
            block["arguments"]
        ),
        "tool_result" => {
            let error = if block["is_error"] == Value::Bool(true) {
                "error: "
            } else {
                ""
            };
            format!("{error}{}", block["content"].as_str().unwrap_or_default())
        }
        _ => block.to_string(),
    };
    (kind, text)
}

/// Attempts' conversations, each folded.
#[component]
pub fn Transcripts(items: Vec<TranscriptView>) -> impl IntoView {
    if items.is_empty() {
        return view! { <p class="muted">"No transcripts yet."</p> }.into_any();
    }
    view! {
        <div class="transcripts">
            {items
                .into_iter()
                .map(|t| {
                    let messages = t.messages.as_array().cloned().unwrap_or_default();
                    view! {
                        <details data-testid="transcript">
                            <summary>
                                {format!(
                                    "{} · attempt {} · {} messages · {} calls, {} tokens, {}",
                                    t.subtask_key,
                                    t.attempt,
                                    messages.len(),
                                    t.usage.calls,
                                    t.usage.tokens(),
                                    format_cost(t.usage.cost_micros),
                                )}
                            </summary>
                            <ul class="calls" data-testid="attempt-calls">
                                {t
                                    .calls
                                    .iter()
                                    .map(|c| {
                                        view! {
                                            <li>
                                                {format!(
                                                    "{} on {}: input {}, cache read {}, cache write {}, output {} · {} · {} ms{}",
                                                    c.model,
                                                    c.provider,
                                                    c.usage.input,
                                                    c.usage.cache_read,
                                                    c.usage.cache_write,
                                                    c.usage.output,
                                                    format_cost(c.cost_micros),
                                                    c.latency_ms,
                                                    c.error.as_ref().map(|e| format!(" · failed: {e}")).unwrap_or_default(),
                                                )}
                                            </li>
                                        }
                                    })
                                    .collect_view()}
                            </ul>
                            <ol>
                                {messages
                                    .iter()
                                    .map(|m| {
                                        let role = m["role"].as_str().unwrap_or("?").to_owned();
                                        let blocks = m["content"].as_array().cloned().unwrap_or_default();
                                        view! {
                                            <li class="message">
                                                <strong>{role}</strong>
                                                {blocks
                                                    .iter()
                                                    .map(|b| {
                                                        let (kind, text) = block_text(b);
                                                        view! { <pre class=format!("block {kind}")>{text}</pre> }
                                                    })
                                                    .collect_view()}
                                            </li>
                                        }
                                    })
                                    .collect_view()}
                            </ol>
                        </details>
                    }
                })
                .collect_view()}
        </div>
    }
    .into_any()
}
