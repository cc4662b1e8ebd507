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
pub mod startup;
pub mod supervisor;
pub mod telemetry;
