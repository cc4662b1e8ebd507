//! Every model call the engine makes goes through a [`Meter`]: it times the call, prices its
//! usage and keeps a ledger entry for it, answered or failed, for the caller to record in the
//! transaction that records the outcome.

use super::provider::Handle;
use crate::llm::{ChatRequest, ChatResponse, LlmError};
use app::db::llm_calls::{LlmCall, Purpose};
use app::domain::ids::{AgentId, NodeId, RunId};
use app::domain::usage::Usage;
use std::time::Instant;

pub struct Meter {
    handle: Handle,
    provider: String,
    run_id: RunId,
    node: Option<(NodeId, i32)>,
    agent_id: Option<AgentId>,
    purpose: Purpose,
    pub calls: Vec<LlmCall>,
}

impl Meter {
    pub fn new(handle: Handle, provider: &str, run_id: RunId, purpose: Purpose) -> Self {
        Self {
            handle,
            provider: provider.to_owned(),
            run_id,
            node: None,
            agent_id: None,
            purpose,
            calls: Vec::new(),
        }
    }

    /// Made by `agent` for attempt `attempt` of `node`.
    pub fn for_attempt(mut self, agent: AgentId, node: NodeId, attempt: i32) -> Self {
        self.agent_id = Some(agent);
        self.node = Some((node, attempt));
        self
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// One call, recorded whatever it answers. An empty model name means the provider's
    /// default.
    pub async fn chat(&mut self, req: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let mut req = std::borrow::Cow::Borrowed(req);
        if req.model.is_empty() {
            req.to_mut().model = self.handle.default_model.clone();
        }
        let started = Instant::now();
        let answer = self.handle.model.chat(&req).await;
        let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let usage = answer.as_ref().map(|a| a.usage).unwrap_or_default();
        self.calls.push(LlmCall {
            run_id: self.run_id,
            node: self.node,
            agent_id: self.agent_id,
            purpose: self.purpose,
            provider: self.provider.clone(),
            model: req.model.clone(),
            usage,
            cost_micros: self.handle.prices(&req.model).cost(&usage),
            latency_ms,
            error: answer.as_ref().err().map(ToString::to_string),
        });
        answer
    }

    /// Tokens of every call so far.
    pub fn tokens(&self) -> i64 {
        self.calls
            .iter()
            .fold(Usage::default(), |mut u, c| {
                u.add(&c.usage);
                u
            })
            .total()
    }
}
