//! A provider's calls made resilient: the failed call is retried in place (exponential backoff
//! with jitter, honouring `retry-after`), and a circuit breaker per provider stops calling a
//! provider that keeps failing. Only retryable and rate-limited failures are tried again.

use super::breaker::{Admission, Breaker, BreakerState};
use super::{ChatRequest, ChatResponse, LlmError, Model};
use backon::{ExponentialBuilder, Retryable};
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub tries: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            tries: 3,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// A breaker's state change, for the engine to record as an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BreakerChange {
    pub provider: String,
    pub state: BreakerState,
}

#[derive(Debug, Clone)]
pub struct Resilient {
    pub provider: String,
    model: Arc<dyn Model>,
    pub breaker: Arc<Breaker>,
    policy: RetryPolicy,
    changes: Option<mpsc::UnboundedSender<BreakerChange>>,
}

impl Resilient {
    pub fn new(
        provider: impl Into<String>,
        model: Arc<dyn Model>,
        policy: RetryPolicy,
        changes: Option<mpsc::UnboundedSender<BreakerChange>>,
    ) -> Self {
        Self {
            provider: provider.into(),
            model,
            breaker: Arc::default(),
            policy,
            changes,
        }
    }

    fn changed(&self, state: Option<BreakerState>) {
        if let (Some(state), Some(tx)) = (state, &self.changes) {
            tracing::info!(provider = %self.provider, state = state.as_str(), "circuit breaker changed");
            // The engine outlives its providers; a closed channel means it is shutting down.
            let _ = tx.send(BreakerChange {
                provider: self.provider.clone(),
                state,
            });
        }
    }

    async fn once(&self, req: &ChatRequest) -> Result<ChatResponse, LlmError> {
        match self.breaker.admit() {
            Admission::Wait(left) => Err(LlmError::RateLimited {
                retry_after: Some(left),
                reason: format!(
                    "the circuit breaker of provider '{}' is open after repeated failures",
                    self.provider
                ),
            }),
            Admission::Go { changed } => {
                self.changed(changed);
                let result = self.model.chat(req).await;
                let counts = result.as_ref().err().is_none_or(LlmError::trips_breaker);
                self.changed(self.breaker.record(result.is_ok(), counts));
                result
            }
        }
    }
}

impl Model for Resilient {
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        Box::pin(async move {
            let backoff = ExponentialBuilder::default()
                .with_min_delay(self.policy.min_delay)
                .with_max_delay(self.policy.max_delay)
                .with_max_times(self.policy.tries.saturating_sub(1))
                .with_jitter();
            (|| self.once(req))
                .retry(backoff)
                .when(|e| !matches!(e, LlmError::Fatal { .. }))
                // A retry-after replaces the backoff's delay; an exhausted backoff stays so.
                .adjust(|e, delay| match e {
                    LlmError::RateLimited {
                        retry_after: Some(after),
                        ..
                    } => delay.map(|_| *after),
                    _ => delay,
                })
                .notify(|e, after| {
                    tracing::warn!(provider = %self.provider, error = %e, ?after, "retrying a model call");
                })
                .await
        })
    }
}
