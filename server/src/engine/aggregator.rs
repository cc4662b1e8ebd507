//! The aggregator: when the planner runs on a real model, a completed task's subtask outputs
//! are summarised by one more call of that model. The task is complete before (its `result`
//! is the concatenation); the summary follows, or the reason it could not be made. With the
//! simulated planner nothing is summarised: the concatenation is the result.

use super::meter::Meter;
use super::{Engine, Outcome};
use crate::llm::ChatRequest;
use app::db::llm_calls::{self, Purpose};
use app::db::runs;
use futures_util::FutureExt;

const SYSTEM: &str = include_str!("../../prompts/aggregate_system.txt");
const PROMPT: &str = include_str!("../../prompts/aggregate.txt");

impl Engine {
    /// Whether completed tasks are left for a summary: the planner's provider is a real one.
    pub(super) fn summarizes(&self) -> bool {
        self.providers
            .get(&self.config.planner_provider)
            .is_ok_and(|h| !h.simulated)
    }

    /// Summarises one completed task, if one is waiting. Whatever the model does, the task
    /// gets a summary or a reason, and the loop goes on.
    pub async fn summarize_once(&self) -> anyhow::Result<Outcome> {
        // Nothing is ever left for a summary then: no query on every wake-up.
        if !self.summarizes() {
            return Ok(Outcome::Idle);
        }
        let claim = {
            let mut conn = self.pool.acquire().await?;
            runs::claim_for_summary(&mut conn, self.config.lease_secs).await?
        };
        let Some(claim) = claim else {
            return Ok(Outcome::Idle);
        };
        let (summary, calls) = match self.providers.get(&self.config.planner_provider) {
            Ok(handle) => {
                let mut meter = Meter::new(
                    handle,
                    &self.config.planner_provider,
                    claim.id,
                    Purpose::Aggregate,
                )
                .with_budgets(self.pool.clone());
                let mut req = ChatRequest::new(
                    self.config.planner_model.clone(),
                    SYSTEM.trim(),
                    PROMPT
                        .trim_end()
                        .replace("{task}", &claim.description)
                        .replace(
                            "{results}",
                            &crate::tools::truncate(&claim.result, self.config.context_budget),
                        ),
                );
                req.max_tokens = 1024;
                let answer = std::panic::AssertUnwindSafe(meter.chat(&req))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|panic| {
                        Err(crate::llm::LlmError::fatal(format!(
                            "the aggregator panicked: {}",
                            crate::supervisor::panic_message(&*panic)
                        )))
                    });
                (
                    answer.map(|a| a.text()).map_err(|e| e.to_string()),
                    meter.calls,
                )
            }
            Err(e) => (Err(e.to_string()), Vec::new()),
        };
        let mut tx = self.pool.begin().await?;
        llm_calls::record(&mut tx, &calls).await?;
        runs::store_summary(
            &mut tx,
            claim.id,
            summary.as_deref().map_err(String::as_str),
        )
        .await?;
        tx.commit().await?;
        Ok(Outcome::Worked)
    }

    pub(super) async fn aggregator_loop(self, shutdown: tokio_util::sync::CancellationToken) {
        self.run_loop("aggregator", &shutdown, || self.summarize_once())
            .await;
    }
}
