//! The LLM provider seam. Today only the built-in `simulated` provider exists (deterministic,
//! offline, always labelled as simulated); real providers (Anthropic Messages, OpenAI-compatible
//! Chat Completions) join as variants behind the same call.

use app::domain::simulated;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What a call is for. Real models read only `system` and `prompt`; the simulated model
/// answers from the structured purpose so its output is a pure function of the input.
#[derive(Debug, Clone)]
pub enum Purpose {
    Plan {
        description: String,
        priority: i16,
    },
    Execute {
        description: String,
        context: Vec<String>,
        attempt: i32,
    },
}

#[derive(Debug, Clone)]
pub struct CompletionRequest {
    pub model: String,
    pub system: String,
    pub prompt: String,
    pub purpose: Purpose,
}

#[derive(Debug, Clone)]
pub struct Completion {
    pub text: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("unknown provider '{0}'")]
    Unknown(String),
    #[error("the model failed: {0}")]
    Model(String),
}

/// One configured provider.
#[derive(Debug, Clone)]
pub enum Provider {
    Simulated {
        latency: Duration,
        /// Calls made to it, for the process's figures (and tests that must see none).
        calls: Arc<AtomicU64>,
    },
}

impl Provider {
    pub async fn complete(&self, req: &CompletionRequest) -> Result<Completion, ProviderError> {
        match self {
            Provider::Simulated { latency, calls } => {
                calls.fetch_add(1, Ordering::Relaxed);
                if let Purpose::Execute { description, .. } = &req.purpose {
                    if simulated::hangs(description) {
                        // A model that never answers: only a stop or a timeout ends the call.
                        std::future::pending::<()>().await;
                    }
                    // The latency models an agent's step; planning text is instant either way.
                    if !latency.is_zero() {
                        tokio::time::sleep(*latency).await;
                    }
                }
                let text = match &req.purpose {
                    Purpose::Plan {
                        description,
                        priority,
                    } => serde_json::to_string(&simulated::plan(description, *priority))
                        .map_err(|e| ProviderError::Model(e.to_string()))?,
                    Purpose::Execute {
                        description,
                        context,
                        attempt,
                    } => simulated::execute(description, context, *attempt)
                        .map_err(ProviderError::Model)?,
                };
                Ok(Completion {
                    input_tokens: simulated::tokens(&req.system) + simulated::tokens(&req.prompt),
                    output_tokens: simulated::tokens(&text),
                    text,
                })
            }
        }
    }
}

/// The providers this process can call, by the name agents refer to.
#[derive(Debug, Clone)]
pub struct Providers {
    simulated: Provider,
}

impl Providers {
    pub fn new(simulated_latency: Duration) -> Self {
        Self {
            simulated: Provider::Simulated {
                latency: simulated_latency,
                calls: Arc::default(),
            },
        }
    }

    /// Calls made to the simulated model so far.
    pub fn simulated_calls(&self) -> u64 {
        match &self.simulated {
            Provider::Simulated { calls, .. } => calls.load(Ordering::Relaxed),
        }
    }

    pub fn get(&self, name: &str) -> Result<&Provider, ProviderError> {
        match name {
            "simulated" => Ok(&self.simulated),
            other => Err(ProviderError::Unknown(other.to_owned())),
        }
    }
}
