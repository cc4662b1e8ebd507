//! The Flotilla process: configuration, telemetry, the embedded Postgres, and the HTTP surface.

pub mod bootstrap;
pub mod cli;
pub mod client;
pub mod config;
pub mod embedded_pg;
pub mod engine;
pub mod event_hub;
pub mod http;
pub mod llm;
pub mod secrets;
pub mod startup;
pub mod supervisor;
pub mod telemetry;
pub mod tools;

/// Makes rustls' ring provider the process default, once: reqwest is built without one of its
/// own, and building any client before this panics.
pub fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Fails only when a provider is already installed, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
