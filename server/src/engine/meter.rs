//! Every model call the engine makes goes through a [`Meter`]: it times the call, prices its
//! usage and keeps a ledger entry for it, answered or failed, for the caller to record in the
//! transaction that records the outcome.

use super::provider::Handle;
use crate::llm::{ChatRequest, ChatResponse, LlmError};
use app::db::budgets::{self, Amount};
use app::db::llm_calls::{LlmCall, Purpose};
use app::domain::ids::{AgentId, NodeId, RunId};
use app::domain::usage::{Prices, Usage};
use sqlx::PgPool;
use std::time::Instant;

pub struct Meter {
    handle: Handle,
    provider: String,
    run_id: RunId,
    node: Option<(NodeId, i32)>,
    agent_id: Option<AgentId>,
    purpose: Purpose,
    /// Where the caps are: calls of real providers reserve against them (the simulated
    /// model's calls are free and never capped).
    budgets: Option<PgPool>,
    pub calls: Vec<LlmCall>,
}

/// The most a call can use: its request's size as tokens (a token per 3 bytes of JSON, more
/// than any tokenizer gives for text) plus all of `max_tokens`, priced with input at the
/// dearest input rate (cache writes cost more than plain input).
pub fn worst_case(req: &ChatRequest, prices: &Prices) -> Amount {
    let bytes = req.system.len()
        + serde_json::to_string(&req.messages).map_or(0, |s| s.len())
        + serde_json::to_string(&req.tools).map_or(0, |s| s.len())
        + req
            .json_schema
            .as_ref()
            .map_or(0, |(_, s)| s.to_string().len());
    let input = i64::try_from(bytes / 3 + 64).unwrap_or(i64::MAX);
    let output = i64::from(req.max_tokens);
    let dearest = Prices {
        input: prices.input.max(prices.cache_write).max(prices.cache_read),
        output: prices.output,
        cache_read: 0,
        cache_write: 0,
    };
    Amount {
        tokens: input.saturating_add(output),
        cost_micros: dearest.cost(&Usage {
            input,
            output,
            ..Usage::default()
        }),
    }
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
            budgets: None,
            calls: Vec::new(),
        }
    }

    /// Reserves each call of a real provider against the task's and agent's caps in `pool`.
    pub fn with_budgets(mut self, pool: PgPool) -> Self {
        if !self.handle.simulated {
            self.budgets = Some(pool);
        }
        self
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
        let prices = self.handle.prices(&req.model);
        let worst = worst_case(&req, &prices);
        if let Some(pool) = &self.budgets {
            match budgets::reserve(pool, self.run_id, self.agent_id, worst).await {
                Ok(Ok(())) => {}
                Ok(Err(refused)) => {
                    let b = refused.budget;
                    return Err(LlmError::OverBudget(format!(
                        "the {} budget has no room for this call (worst case {} tokens, {} \
                         micro-units; spent {} tokens, {} micro-units, {} tokens reserved by \
                         calls in flight; caps {} tokens, {} micro-units)",
                        refused.scope,
                        worst.tokens,
                        worst.cost_micros,
                        b.spent_tokens,
                        b.spent_cost_micros,
                        b.reserved_tokens,
                        b.cap_tokens.map_or("no".into(), |c| c.to_string()),
                        b.cap_cost_micros.map_or("no".into(), |c| c.to_string()),
                    )));
                }
                Err(e) => {
                    return Err(LlmError::Retryable(format!(
                        "the budget could not be checked: {e}"
                    )));
                }
            }
        }
        let started = Instant::now();
        let answer = self.handle.model.chat(&req).await;
        let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let usage = answer.as_ref().map(|a| a.usage).unwrap_or_default();
        let cost_micros = prices.cost(&usage);
        if let Some(pool) = &self.budgets {
            let used = Amount {
                tokens: usage.total(),
                cost_micros,
            };
            if let Err(e) = budgets::settle(pool, self.run_id, self.agent_id, worst, used).await {
                tracing::warn!(run = %self.run_id, error = %e, "a call's reservation could not be settled; it stays reserved");
            }
        }
        if let Ok(a) = &answer
            && !a.rate_limits.is_empty()
        {
            *self
                .handle
                .rate_limits
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(a.rate_limits.clone());
        }
        self.calls.push(LlmCall {
            run_id: self.run_id,
            node: self.node,
            agent_id: self.agent_id,
            purpose: self.purpose,
            provider: self.provider.clone(),
            model: req.model.clone(),
            usage,
            cost_micros,
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
