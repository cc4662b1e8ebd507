//! The providers this process can call, by the name agents refer to: the built-in `simulated`
//! model and the real ones (Anthropic, OpenAI-compatible), each behind its retries and circuit
//! breaker.

use crate::llm::resilient::{BreakerChange, Resilient, RetryPolicy};
use crate::llm::simulated::Simulated;
use crate::llm::{HttpSettings, LlmError, Model, anthropic, openai};
use app::domain::usage::Prices;
use secrecy::{ExposeSecret, SecretString};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;

pub const SIMULATED: &str = "simulated";

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("unknown provider '{0}'")]
    Unknown(String),
}

/// How to reach a real provider.
#[derive(Clone, Debug)]
pub enum Endpoint {
    Anthropic {
        base_url: String,
        api_key: SecretString,
    },
    OpenAi(openai::OpenAiConfig),
}

/// A real provider as configured.
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    pub name: String,
    pub endpoint: Endpoint,
    pub default_model: String,
    /// Prices by model; a model not listed costs nothing (a local server).
    pub prices: HashMap<String, Prices>,
}

/// A provider ready to call.
#[derive(Clone, Debug)]
pub struct Handle {
    pub model: Arc<dyn Model>,
    pub default_model: String,
    pub prices: HashMap<String, Prices>,
    pub simulated: bool,
    /// The newest rate-limit headers a call saw, not yet stored.
    pub rate_limits: Arc<std::sync::Mutex<Option<BTreeMap<String, String>>>>,
}

impl Handle {
    pub fn prices(&self, model: &str) -> Prices {
        self.prices.get(model).copied().unwrap_or_default()
    }
}

/// Real providers by name, each with the resilient wrapper that owns its breaker.
type Registry = HashMap<String, (Handle, Arc<Resilient>)>;

#[derive(Debug, Clone)]
pub struct Providers {
    simulated: Arc<Simulated>,
    real: Arc<RwLock<Registry>>,
    http: HttpSettings,
    retry: RetryPolicy,
    changes: mpsc::UnboundedSender<BreakerChange>,
    /// The names registered from the database (the rest came from the environment).
    managed: Arc<std::sync::Mutex<HashSet<String>>>,
    /// Read by the engine's `breakers` loop, which records each change as an event.
    pub(super) changes_rx: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<BreakerChange>>>,
}

impl Providers {
    pub fn new(simulated_latency: Duration) -> Self {
        let (changes, rx) = mpsc::unbounded_channel();
        Self {
            simulated: Arc::new(Simulated {
                latency: simulated_latency,
                ..Simulated::default()
            }),
            real: Arc::default(),
            http: HttpSettings::default(),
            retry: RetryPolicy::default(),
            changes,
            managed: Arc::default(),
            changes_rx: Arc::new(tokio::sync::Mutex::new(rx)),
        }
    }

    pub fn with_http(mut self, http: HttpSettings, retry: RetryPolicy) -> Self {
        self.http = http;
        self.retry = retry;
        self
    }

    /// Calls made to the simulated model so far.
    pub fn simulated_calls(&self) -> u64 {
        self.simulated.calls.load(Ordering::Relaxed)
    }

    /// Builds the client for `config` without registering it (a connection test).
    pub fn build(&self, config: &ProviderConfig) -> Result<Arc<dyn Model>, LlmError> {
        Ok(match &config.endpoint {
            Endpoint::Anthropic { base_url, api_key } => Arc::new(anthropic::Anthropic::new(
                base_url,
                api_key.expose_secret(),
                &self.http,
            )?),
            Endpoint::OpenAi(c) => Arc::new(openai::OpenAi::new(c, &self.http)?),
        })
    }

    /// Adds or replaces a real provider; its breaker starts closed.
    pub fn register(&self, config: &ProviderConfig) -> Result<(), LlmError> {
        let client = self.build(config)?;
        let resilient = Arc::new(Resilient::new(
            config.name.clone(),
            client,
            self.retry,
            Some(self.changes.clone()),
        ));
        let handle = Handle {
            model: resilient.clone(),
            default_model: config.default_model.clone(),
            prices: config.prices.clone(),
            simulated: false,
            rate_limits: Arc::default(),
        };
        self.write()
            .insert(config.name.clone(), (handle, resilient));
        Ok(())
    }

    pub fn remove(&self, name: &str) {
        self.write().remove(name);
    }

    /// Makes the database's providers the managed set: each registered anew (with a closed
    /// breaker), and managed ones no longer there removed. Called when the set changed.
    /// Returns the names that failed to register, with the reason.
    pub fn replace_managed(&self, configs: &[ProviderConfig]) -> Vec<(String, String)> {
        let mut failed = Vec::new();
        let mut managed = self
            .managed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now: HashSet<String> = configs.iter().map(|c| c.name.clone()).collect();
        for gone in managed.difference(&now) {
            self.remove(gone);
        }
        for config in configs {
            if let Err(e) = self.register(config) {
                failed.push((config.name.clone(), e.to_string()));
            }
        }
        *managed = now;
        failed
    }

    /// The managed providers' rate-limit headers seen since the last call, by name.
    pub fn take_rate_limits(&self) -> Vec<(String, BTreeMap<String, String>)> {
        let managed = self
            .managed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let real = self
            .real
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        managed
            .iter()
            .filter_map(|name| {
                let (handle, _) = real.get(name)?;
                let taken = handle
                    .rate_limits
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take()?;
                Some((name.clone(), taken))
            })
            .collect()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.real
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A real provider's breaker state, by name.
    pub fn breaker(&self, name: &str) -> Option<crate::llm::breaker::BreakerState> {
        let real = self
            .real
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        real.get(name).map(|(_, r)| r.breaker.state())
    }

    pub fn get(&self, name: &str) -> Result<Handle, ProviderError> {
        if name == SIMULATED {
            return Ok(Handle {
                model: self.simulated.clone(),
                default_model: "simulated".into(),
                prices: HashMap::new(),
                simulated: true,
                rate_limits: Arc::default(),
            });
        }
        let real = self
            .real
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        real.get(name)
            .map(|(h, _)| h.clone())
            .ok_or_else(|| ProviderError::Unknown(name.to_owned()))
    }
}

pub use app::domain::provider::CheckReport;

/// A provider's connection test: one small call of `model`, classified like any other.
pub async fn check(client: &dyn Model, model: &str) -> Result<CheckReport, LlmError> {
    let mut req =
        crate::llm::ChatRequest::new(model, "", "Reply with the single word OK.".to_owned());
    req.max_tokens = 16;
    let started = std::time::Instant::now();
    let answer = client.chat(&req).await?;
    Ok(CheckReport {
        model: model.to_owned(),
        latency_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        usage: answer.usage,
        reply: crate::tools::truncate(&answer.text(), 200),
    })
}

/// Connection tests of stored providers, for REST and the providers page: a fresh client with
/// a short deadline and no retries, so a test answers within seconds or says why.
pub struct Tester(pub crate::secrets::MasterKey);

impl app::commands::providers::Tester for Tester {
    fn test(&self, row: app::db::providers::ProviderRow) -> app::commands::providers::TestFuture {
        use app::domain::provider::ProviderTest;
        let key = self.0.clone();
        Box::pin(async move {
            let config = super::provider_sync::config_from_row(&row, &key)?;
            let quick = crate::llm::HttpSettings {
                timeout: std::time::Duration::from_secs(30),
                connect_timeout: std::time::Duration::from_secs(3),
            };
            let providers =
                Providers::new(std::time::Duration::ZERO).with_http(quick, Default::default());
            let result = match providers.build(&config) {
                Ok(client) => check(client.as_ref(), &config.default_model).await,
                Err(e) => Err(e),
            };
            Ok(match result {
                Ok(report) => ProviderTest {
                    ok: true,
                    report: Some(report),
                    error: None,
                },
                Err(e) => ProviderTest {
                    ok: false,
                    report: None,
                    error: Some(e.to_string()),
                },
            })
        })
    }
}
