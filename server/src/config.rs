//! One typed configuration, loaded once in `main`: defaults, then `FLOTILLA_*` environment or
//! the matching flags, parsed by clap.

use crate::engine::EngineConfig;
use crate::engine::provider::{Endpoint, ProviderConfig};
use crate::llm::openai::{JsonFormat, OpenAiConfig};
use anyhow::bail;
use app::auth::LoginPolicy;
use app::domain::run::RetryPolicy;
use app::domain::usage::Prices;
use secrecy::SecretString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen (`FLOTILLA_ADDR`, default 127.0.0.1:3000; port 0 picks a free one).
    pub addr: SocketAddr,
    /// The origin browsers use to reach us (`FLOTILLA_PUBLIC_URL`); sets cookie `Secure` when
    /// https and is an accepted `Origin` for state-changing requests.
    pub public_url: Option<String>,
    /// `DATABASE_URL`; when absent, a private cluster is started under `data_dir`.
    pub database_url: Option<SecretString>,
    /// State kept on disk (`FLOTILLA_DATA_DIR`, default `./.flotilla`).
    pub data_dir: PathBuf,
    /// Built site: `pkg/` with the WASM bundle and CSS, plus public assets
    /// (`FLOTILLA_SITE_ROOT`, default `target/site`).
    pub site_root: PathBuf,
    pub log: LogConfig,
    pub bootstrap_admin: BootstrapAdmin,
    pub login_policy: LoginPolicy,
    /// Idle session lifetime in seconds (`FLOTILLA_SESSION_IDLE_SECS`, default 1800).
    pub session_idle_secs: i64,
    /// The master key sealing secrets at rest (`FLOTILLA_SECRET_KEY`, 64 hex characters); when
    /// unset, one is generated into `data_dir/secret.key`.
    pub secret_key: Option<SecretString>,
    /// Bearer token `/metrics` requires, when set (`FLOTILLA_METRICS_TOKEN`).
    pub metrics_token: Option<SecretString>,
    /// Addresses of reverse proxies whose `X-Forwarded-For` names the client
    /// (`FLOTILLA_TRUSTED_PROXIES`, comma-separated); from anyone else it is ignored.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Open connections one client address may hold (`FLOTILLA_MAX_CONNECTIONS_PER_IP`).
    pub max_connections_per_ip: usize,
    /// Database connections (`FLOTILLA_DB_POOL`, default 16).
    pub db_pool_size: u32,
    /// Whether `serve` also runs the engine (`FLOTILLA_ENGINE=off` for a web-only process).
    pub run_engine: bool,
    pub engine: EngineConfig,
}

#[derive(Clone, Debug)]
pub struct LogConfig {
    /// `FLOTILLA_LOG_FORMAT=json` for machine-readable logs; pretty otherwise.
    pub json: bool,
    /// `RUST_LOG`-style filter (`FLOTILLA_LOG`, default `info`).
    pub filter: String,
}

#[derive(Clone, Debug)]
pub struct BootstrapAdmin {
    /// `FLOTILLA_ADMIN_USERNAME`, default `admin`.
    pub username: String,
    /// `FLOTILLA_ADMIN_PASSWORD`; generated and printed once when unset.
    pub password: Option<SecretString>,
}

/// Every setting, as a flag or its `FLOTILLA_*` environment variable (clap reads both and
/// reports a bad value with its name); [`Config`] is built from it.
#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "Settings (each also read from its environment variable)")]
pub struct Settings {
    /// Where to listen; port 0 picks a free one.
    #[arg(long, env = "FLOTILLA_ADDR", default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// The origin browsers use to reach us; https makes cookies Secure.
    #[arg(long, env = "FLOTILLA_PUBLIC_URL", value_parser = public_url)]
    public_url: Option<String>,
    /// Postgres to use; without it a private cluster is started under the data dir.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// State kept on disk.
    #[arg(long, env = "FLOTILLA_DATA_DIR", default_value = ".flotilla")]
    data_dir: PathBuf,
    /// The built site: `pkg/` (WASM bundle, CSS) and public assets.
    #[arg(long, env = "FLOTILLA_SITE_ROOT", default_value = "target/site")]
    site_root: PathBuf,
    /// Log lines as JSON or for people.
    #[arg(
        long,
        env = "FLOTILLA_LOG_FORMAT",
        value_enum,
        ignore_case = true,
        default_value = "pretty"
    )]
    log_format: LogFormat,
    /// `RUST_LOG`-style filter.
    #[arg(long, env = "FLOTILLA_LOG", default_value = "info")]
    log: String,
    /// The admin created when there are no users.
    #[arg(long, env = "FLOTILLA_ADMIN_USERNAME", default_value = "admin")]
    admin_username: String,
    /// Their password; generated and printed once when unset.
    #[arg(long, env = "FLOTILLA_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
    /// Failed logins of one account (from one address) before it is throttled.
    #[arg(long, env = "FLOTILLA_LOGIN_MAX_FAILURES", default_value_t = LoginPolicy::default().max_failures_per_account)]
    login_max_failures: i64,
    /// Failed logins from one address, any account, before it is throttled.
    #[arg(long, env = "FLOTILLA_LOGIN_MAX_FAILURES_PER_IP", default_value_t = LoginPolicy::default().max_failures_per_ip)]
    login_max_failures_per_ip: i64,
    /// The window failed logins are counted in, seconds.
    #[arg(long, env = "FLOTILLA_LOGIN_WINDOW_SECS", default_value_t = LoginPolicy::default().window_secs)]
    login_window_secs: i64,
    /// A session lives at most this long after login, seconds.
    #[arg(long, env = "FLOTILLA_SESSION_ABSOLUTE_SECS", default_value_t = LoginPolicy::default().absolute_lifetime_secs)]
    session_absolute_secs: i64,
    /// An idle session expires after this many seconds.
    #[arg(long, env = "FLOTILLA_SESSION_IDLE_SECS", default_value_t = 1800, value_parser = clap::value_parser!(i64).range(1..))]
    session_idle_secs: i64,
    /// The master key for secrets at rest, 64 hex characters (`openssl rand -hex 32`); unset,
    /// one is generated into the data directory. Every process on one database needs the same.
    #[arg(long, env = "FLOTILLA_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    /// Bearer token `/metrics` requires (unset: open, for a scraper on a private network).
    #[arg(long, env = "FLOTILLA_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// Reverse proxies (comma-separated addresses) whose X-Forwarded-For names the client.
    #[arg(long, env = "FLOTILLA_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<std::net::IpAddr>,
    /// Open connections one client address may hold.
    #[arg(long, env = "FLOTILLA_MAX_CONNECTIONS_PER_IP", default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections_per_ip: u32,
    /// Database connections.
    #[arg(long, env = "FLOTILLA_DB_POOL", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    db_pool: u32,
    /// Whether `serve` also runs the engine (off: a web-only process).
    #[arg(long, env = "FLOTILLA_ENGINE", default_value = "on", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set)]
    engine: bool,
    /// A claimed node's lease, seconds.
    #[arg(long, env = "FLOTILLA_LEASE_SECS", default_value_t = EngineConfig::default().lease_secs, value_parser = positive)]
    lease_secs: f64,
    /// How often a worker renews its leases, seconds (shorter than the lease).
    #[arg(long, env = "FLOTILLA_HEARTBEAT_SECS", default_value_t = EngineConfig::default().heartbeat_secs, value_parser = positive)]
    heartbeat_secs: f64,
    /// Nodes one worker runs at once.
    #[arg(long, env = "FLOTILLA_WORKER_SLOTS", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    worker_slots: u32,
    /// The simulated provider's answer time, milliseconds.
    #[arg(long, env = "FLOTILLA_SIM_LATENCY_MS", default_value_t = 400)]
    sim_latency_ms: u64,
    /// Attempts a subtask gets in all.
    #[arg(long, env = "FLOTILLA_RETRY_MAX_ATTEMPTS", default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..))]
    retry_max_attempts: i32,
    /// The first retry's backoff, milliseconds (doubling after).
    #[arg(long, env = "FLOTILLA_RETRY_BASE_MS", default_value_t = EngineConfig::default().retry.base_ms, value_parser = clap::value_parser!(i64).range(0..))]
    retry_base_ms: i64,
    /// Events and samples older than this are pruned, days.
    #[arg(long, env = "FLOTILLA_RETENTION_DAYS", default_value_t = EngineConfig::default().retention_days, value_parser = clap::value_parser!(i64).range(1..))]
    retention_days: i64,
    /// How often metric samples are taken, seconds.
    #[arg(long, env = "FLOTILLA_METRICS_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    metrics_secs: u64,
    /// Model calls one subtask attempt may make (tool steps included) before it fails.
    #[arg(long, env = "FLOTILLA_AGENT_MAX_STEPS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    agent_max_steps: u32,
    /// Characters of prerequisites' outputs passed to one call; each is cut with a marker
    /// beyond its share.
    #[arg(long, env = "FLOTILLA_CONTEXT_BUDGET", default_value_t = 32_000, value_parser = clap::value_parser!(u32).range(100..))]
    context_budget: u32,
    /// How long one model call may take, seconds (retries of it get as long again).
    #[arg(long, env = "FLOTILLA_LLM_TIMEOUT_SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600))]
    llm_timeout_secs: u64,
    /// Internal addresses the agents' http_get may reach anyway (comma-separated), e.g. an
    /// intranet service; everything internal else is refused.
    #[arg(long, env = "FLOTILLA_HTTP_GET_ALLOW", value_delimiter = ',')]
    http_get_allow: Vec<std::net::IpAddr>,
    #[command(flatten)]
    models: ModelSettings,
}

/// Providers declared by environment, for the zero-setup start: with one set, the default
/// fleet and the planner use it; with none, everything runs on the simulated model.
#[derive(clap::Args, Clone, Debug)]
pub struct ModelSettings {
    /// An Anthropic API key: declares the provider `anthropic`.
    #[arg(long, env = "ANTHROPIC_API_KEY", hide_env_values = true)]
    anthropic_api_key: Option<String>,
    /// Where the Anthropic Messages API is.
    #[arg(long, env = "ANTHROPIC_BASE_URL", default_value = "https://api.anthropic.com", value_parser = public_url)]
    anthropic_base_url: String,
    /// The model agents and the planner use on `anthropic`.
    #[arg(
        long,
        env = "FLOTILLA_ANTHROPIC_MODEL",
        default_value = "claude-sonnet-4-5"
    )]
    anthropic_model: String,
    /// Its prices per million tokens: input,output[,cache_read,cache_write].
    #[arg(long, env = "FLOTILLA_ANTHROPIC_PRICES", default_value = "3,15,0.30,3.75", value_parser = prices)]
    anthropic_prices: Prices,
    /// An OpenAI-compatible server up to its version path (OpenRouter, Ollama, vLLM,
    /// llama.cpp): declares the provider `openai`.
    #[arg(long, env = "OPENAI_BASE_URL", value_parser = public_url)]
    openai_base_url: Option<String>,
    /// Its API key (a local server may need none); alone, it means api.openai.com.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    openai_api_key: Option<String>,
    /// The model agents and the planner use on `openai`.
    #[arg(long, env = "FLOTILLA_OPENAI_MODEL", default_value = "gpt-4o-mini")]
    openai_model: String,
    /// How it is asked for JSON under a schema: json_schema (OpenAI, OpenRouter, vLLM, Ollama)
    /// or json_object (llama.cpp's Python server).
    #[arg(
        long,
        env = "FLOTILLA_OPENAI_JSON_FORMAT",
        value_enum,
        default_value = "json_schema"
    )]
    openai_json_format: JsonFormat,
    /// Its prices per million tokens: input,output[,cache_read,cache_write] (default: free, as a
    /// local server is).
    #[arg(long, env = "FLOTILLA_OPENAI_PRICES", default_value = "0,0", value_parser = prices)]
    openai_prices: Prices,
}

fn prices(raw: &str) -> Result<Prices, String> {
    Prices::parse_list(raw)
}

impl ModelSettings {
    /// The providers these settings declare, Anthropic first.
    fn providers(self) -> Vec<ProviderConfig> {
        let mut out = Vec::new();
        if let Some(key) = self.anthropic_api_key.filter(|k| !k.is_empty()) {
            out.push(ProviderConfig {
                name: "anthropic".into(),
                endpoint: Endpoint::Anthropic {
                    base_url: self.anthropic_base_url,
                    api_key: SecretString::from(key),
                },
                prices: [(self.anthropic_model.clone(), self.anthropic_prices)].into(),
                default_model: self.anthropic_model,
            });
        }
        let key = self.openai_api_key.filter(|k| !k.is_empty());
        let base = match (self.openai_base_url, &key) {
            (Some(base), _) => Some(base),
            (None, Some(_)) => Some("https://api.openai.com/v1".to_owned()),
            (None, None) => None,
        };
        if let Some(base_url) = base {
            out.push(ProviderConfig {
                name: "openai".into(),
                endpoint: Endpoint::OpenAi(OpenAiConfig {
                    base_url,
                    api_key: key.map(SecretString::from),
                    extra_headers: Vec::new(),
                    json_format: self.openai_json_format,
                }),
                prices: [(self.openai_model.clone(), self.openai_prices)].into(),
                default_model: self.openai_model,
            });
        }
        out
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    Pretty,
    Json,
}

fn public_url(raw: &str) -> Result<String, String> {
    if raw.starts_with("http://") || raw.starts_with("https://") {
        Ok(raw.trim_end_matches('/').to_owned())
    } else {
        Err(format!("must start with http:// or https://, got '{raw}'"))
    }
}

fn positive(raw: &str) -> Result<f64, String> {
    raw.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && *x > 0.0)
        .ok_or_else(|| format!("must be a positive number, got '{raw}'"))
}

/// Settings alone, for building a config without the rest of the command line.
#[derive(clap::Parser, Debug)]
struct SettingsOnly {
    #[command(flatten)]
    settings: Settings,
}

/// Clap's message for a refused value, with the environment variable it may have come from
/// (clap names only the flag).
pub fn naming_the_variable(e: &clap::Error) -> String {
    use clap::CommandFactory;
    use clap::error::{ContextKind, ContextValue};
    let text = e.render().to_string();
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return text;
    };
    let long = arg
        .trim_start_matches("--")
        .split([' ', '='])
        .next()
        .unwrap_or_default();
    let env = SettingsOnly::command()
        .get_arguments()
        .find(|a| a.get_long() == Some(long))
        .and_then(|a| a.get_env().and_then(|v| v.to_str()).map(str::to_owned));
    match env {
        Some(env) => {
            let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
            format!("{first} (set by {env} or --{long})\n{rest}")
        }
        None => text,
    }
}

impl TryFrom<Settings> for Config {
    type Error = anyhow::Error;

    fn try_from(s: Settings) -> anyhow::Result<Self> {
        let defaults = EngineConfig::default();
        let engine = EngineConfig {
            lease_secs: s.lease_secs,
            heartbeat_secs: s.heartbeat_secs,
            slots: usize::try_from(s.worker_slots)?,
            simulated_latency: Duration::from_millis(s.sim_latency_ms),
            retry: RetryPolicy {
                max_attempts: s.retry_max_attempts,
                base_ms: s.retry_base_ms,
                ..defaults.retry
            },
            retention_days: s.retention_days,
            metrics_interval: Duration::from_secs(s.metrics_secs),
            workspaces_dir: s.data_dir.join("workspaces"),
            max_steps: usize::try_from(s.agent_max_steps)?,
            context_budget: usize::try_from(s.context_budget)?,
            http_get_allow: s.http_get_allow,
            llm_timeout: Duration::from_secs(s.llm_timeout_secs),
            ..defaults
        }
        .with_providers(s.models.providers());
        if engine.heartbeat_secs >= engine.lease_secs {
            bail!("FLOTILLA_HEARTBEAT_SECS must be shorter than FLOTILLA_LEASE_SECS");
        }
        Ok(Self {
            addr: s.addr,
            public_url: s.public_url,
            database_url: s.database_url.map(SecretString::from),
            data_dir: s.data_dir,
            site_root: s.site_root,
            log: LogConfig {
                json: s.log_format == LogFormat::Json,
                filter: s.log,
            },
            bootstrap_admin: BootstrapAdmin {
                username: s.admin_username,
                password: s.admin_password.map(SecretString::from),
            },
            login_policy: LoginPolicy {
                max_failures_per_account: s.login_max_failures,
                max_failures_per_ip: s.login_max_failures_per_ip,
                window_secs: s.login_window_secs,
                absolute_lifetime_secs: s.session_absolute_secs,
            },
            session_idle_secs: s.session_idle_secs,
            secret_key: s.secret_key.map(SecretString::from),
            metrics_token: s.metrics_token.map(SecretString::from),
            trusted_proxies: s.trusted_proxies,
            max_connections_per_ip: usize::try_from(s.max_connections_per_ip)?,
            db_pool_size: s.db_pool,
            run_engine: s.engine,
            engine,
        })
    }
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Builds the config from any lookup of the environment variables' names, so tests need
    /// not touch the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        use clap::{CommandFactory, FromArgMatches};
        let command = SettingsOnly::command();
        let mut args = vec!["flotilla".to_owned()];
        for arg in command.get_arguments() {
            let (Some(env), Some(long)) = (arg.get_env(), arg.get_long()) else {
                continue;
            };
            if let Some(value) = env.to_str().and_then(&get).filter(|v| !v.is_empty()) {
                args.push(format!("--{long}={value}"));
            }
        }
        // Every value comes through `get`: the process environment must not leak in.
        let matches = command
            .mut_args(|a| a.env(None::<&'static str>))
            .try_get_matches_from(args)
            .map_err(|e| anyhow::anyhow!("{}", naming_the_variable(&e)))?;
        let settings = SettingsOnly::from_arg_matches(&matches)
            .map_err(|e| anyhow::anyhow!("{}", naming_the_variable(&e)))?
            .settings;
        settings.try_into()
    }

    /// Whether cookies must carry `Secure`.
    pub fn is_tls(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> anyhow::Result<Config> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_need_no_environment() {
        let c = config(&[]).unwrap();
        assert_eq!(c.addr.port(), 3000);
        assert!(c.database_url.is_none());
        assert_eq!(c.session_idle_secs, 1800);
        assert_eq!(c.login_policy.absolute_lifetime_secs, 12 * 3600);
        assert!(!c.is_tls());
    }

    #[test]
    fn bad_values_are_reported_with_the_variable_name() {
        let err = config(&[("FLOTILLA_LOGIN_MAX_FAILURES", "many")]).unwrap_err();
        assert!(err.to_string().contains("FLOTILLA_LOGIN_MAX_FAILURES"));
        assert!(config(&[("FLOTILLA_PUBLIC_URL", "example.com")]).is_err());
        assert!(config(&[("FLOTILLA_ADDR", "nowhere")]).is_err());
    }

    #[test]
    fn an_https_public_url_makes_cookies_secure() {
        let c = config(&[("FLOTILLA_PUBLIC_URL", "https://flotilla.example/")]).unwrap();
        assert!(c.is_tls());
        assert_eq!(c.public_url.as_deref(), Some("https://flotilla.example"));
    }
}
