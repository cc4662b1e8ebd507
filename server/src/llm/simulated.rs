//! The built-in simulated model: deterministic and offline, for tests and the demo, and always
//! labelled as simulated. It answers from the request's [`Purpose`], so its output is a pure
//! function of the input.

use super::{Block, ChatRequest, ChatResponse, LlmError, Model, Purpose, StopReason, Usage};
use app::domain::simulated;
use futures_util::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Simulated {
    pub latency: Duration,
    /// Calls made to it, for the process's figures (and tests that must see none).
    pub calls: AtomicU64,
}

impl Simulated {
    async fn answer(&self, req: &ChatRequest) -> Result<String, LlmError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        match &req.purpose {
            Some(Purpose::Plan {
                description,
                priority,
            }) => serde_json::to_string(&simulated::plan(description, *priority))
                .map_err(|e| LlmError::fatal(e.to_string())),
            Some(Purpose::Execute {
                description,
                context,
                attempt,
            }) => {
                if simulated::hangs(description) {
                    // A model that never answers: only a stop or a timeout ends the call.
                    std::future::pending::<()>().await;
                }
                // The latency models an agent's step; planning is instant either way.
                if !self.latency.is_zero() {
                    tokio::time::sleep(self.latency).await;
                }
                simulated::execute(description, context, *attempt).map_err(LlmError::fatal)
            }
            None => Ok("(simulated model) no answer: this request has no simulated purpose".into()),
        }
    }
}

impl Model for Simulated {
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        Box::pin(async move {
            let text = self.answer(req).await?;
            let prompt: i64 = req
                .messages
                .iter()
                .flat_map(|m| &m.content)
                .map(|b| match b {
                    Block::Text { text } => simulated::tokens(text),
                    _ => 0,
                })
                .sum();
            Ok(ChatResponse {
                usage: Usage {
                    input: simulated::tokens(&req.system) + prompt,
                    output: simulated::tokens(&text),
                    ..Usage::default()
                },
                content: vec![Block::Text { text }],
                stop: StopReason::EndTurn,
                rate_limits: BTreeMap::new(),
            })
        })
    }
}
