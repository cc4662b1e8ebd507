//! Logging setup, in one place: `tracing` with an env filter, pretty or JSON.

use crate::config::LogConfig;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

pub fn init(log: &LogConfig) {
    let filter = EnvFilter::try_new(&log.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    // `try_init`: a second call (tests) keeps the first subscriber instead of panicking.
    let _ = if log.json {
        registry.with(fmt::layer().json()).try_init()
    } else {
        registry.with(fmt::layer()).try_init()
    };
}
