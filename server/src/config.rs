//! One typed configuration, loaded once in `main`: defaults, then `FLOTILLA_*` environment.

use anyhow::{Context, bail};
use app::auth::LoginPolicy;
use secrecy::SecretString;
use std::net::SocketAddr;
use std::path::PathBuf;

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
    /// Database connections (`FLOTILLA_DB_POOL`, default 16).
    pub db_pool_size: u32,
    /// Whether `serve` also runs the engine (`FLOTILLA_ENGINE=off` for a web-only process).
    pub run_engine: bool,
    pub engine: crate::engine::EngineConfig,
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

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Builds the config from any key lookup, so tests need not touch the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let parse_num = |key: &str, default: i64| -> anyhow::Result<i64> {
            get(key).map_or(Ok(default), |v| {
                v.parse()
                    .with_context(|| format!("{key} must be a whole number, got '{v}'"))
            })
        };
        let addr = get("FLOTILLA_ADDR")
            .unwrap_or_else(|| "127.0.0.1:3000".into())
            .parse()
            .context("FLOTILLA_ADDR must be host:port, e.g. 127.0.0.1:3000")?;
        let public_url = get("FLOTILLA_PUBLIC_URL").map(|u| u.trim_end_matches('/').to_owned());
        if let Some(url) = &public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            bail!("FLOTILLA_PUBLIC_URL must start with http:// or https://, got '{url}'");
        }
        let parse_f64 = |key: &str, default: f64| -> anyhow::Result<f64> {
            get(key).map_or(Ok(default), |v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x > 0.0)
                    .with_context(|| format!("{key} must be a positive number, got '{v}'"))
            })
        };
        let engine_defaults = crate::engine::EngineConfig::default();
        let engine = crate::engine::EngineConfig {
            lease_secs: parse_f64("FLOTILLA_LEASE_SECS", engine_defaults.lease_secs)?,
            heartbeat_secs: parse_f64("FLOTILLA_HEARTBEAT_SECS", engine_defaults.heartbeat_secs)?,
            slots: usize::try_from(parse_num("FLOTILLA_WORKER_SLOTS", 256)?)
                .ok()
                .filter(|n| *n > 0)
                .context("FLOTILLA_WORKER_SLOTS must be a positive whole number")?,
            simulated_latency: std::time::Duration::from_millis(
                u64::try_from(parse_num("FLOTILLA_SIM_LATENCY_MS", 400)?)
                    .context("FLOTILLA_SIM_LATENCY_MS must not be negative")?,
            ),
            retry: app::domain::run::RetryPolicy {
                max_attempts: i32::try_from(parse_num("FLOTILLA_RETRY_MAX_ATTEMPTS", 3)?)
                    .ok()
                    .filter(|n| *n >= 1)
                    .context("FLOTILLA_RETRY_MAX_ATTEMPTS must be at least 1")?,
                base_ms: parse_num("FLOTILLA_RETRY_BASE_MS", engine_defaults.retry.base_ms)?,
                ..engine_defaults.retry
            },
            retention_days: parse_num("FLOTILLA_RETENTION_DAYS", engine_defaults.retention_days)?
                .max(1),
            metrics_interval: std::time::Duration::from_secs(
                u64::try_from(parse_num("FLOTILLA_METRICS_SECS", 30)?)
                    .ok()
                    .filter(|n| *n > 0)
                    .context("FLOTILLA_METRICS_SECS must be a positive whole number")?,
            ),
            ..engine_defaults
        };
        if engine.heartbeat_secs >= engine.lease_secs {
            bail!("FLOTILLA_HEARTBEAT_SECS must be shorter than FLOTILLA_LEASE_SECS");
        }
        let defaults = LoginPolicy::default();
        let session_idle_secs = parse_num("FLOTILLA_SESSION_IDLE_SECS", 30 * 60)?;
        if session_idle_secs <= 0 {
            bail!("FLOTILLA_SESSION_IDLE_SECS must be positive");
        }
        Ok(Self {
            addr,
            public_url,
            database_url: get("DATABASE_URL")
                .filter(|u| !u.is_empty())
                .map(SecretString::from),
            data_dir: get("FLOTILLA_DATA_DIR")
                .map_or_else(|| PathBuf::from(".flotilla"), PathBuf::from),
            site_root: get("FLOTILLA_SITE_ROOT")
                .map_or_else(|| PathBuf::from("target/site"), PathBuf::from),
            log: LogConfig {
                json: get("FLOTILLA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json")),
                filter: get("FLOTILLA_LOG").unwrap_or_else(|| "info".into()),
            },
            bootstrap_admin: BootstrapAdmin {
                username: get("FLOTILLA_ADMIN_USERNAME").unwrap_or_else(|| "admin".into()),
                password: get("FLOTILLA_ADMIN_PASSWORD")
                    .filter(|p| !p.is_empty())
                    .map(SecretString::from),
            },
            login_policy: LoginPolicy {
                max_failures_per_account: parse_num(
                    "FLOTILLA_LOGIN_MAX_FAILURES",
                    defaults.max_failures_per_account,
                )?,
                max_failures_per_ip: parse_num(
                    "FLOTILLA_LOGIN_MAX_FAILURES_PER_IP",
                    defaults.max_failures_per_ip,
                )?,
                window_secs: parse_num("FLOTILLA_LOGIN_WINDOW_SECS", defaults.window_secs)?,
                absolute_lifetime_secs: parse_num(
                    "FLOTILLA_SESSION_ABSOLUTE_SECS",
                    defaults.absolute_lifetime_secs,
                )?,
            },
            session_idle_secs,
            db_pool_size: u32::try_from(parse_num("FLOTILLA_DB_POOL", 16)?)
                .context("FLOTILLA_DB_POOL out of range")?,
            run_engine: !get("FLOTILLA_ENGINE")
                .is_some_and(|v| v == "off" || v == "0" || v == "false"),
            engine,
        })
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
