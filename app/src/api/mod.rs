//! Thin server functions, one per file, and the error type they share with the browser.

pub mod agents;
#[cfg(feature = "ssr")]
pub mod chart_draw;
pub mod error;
pub mod events;
pub mod login;
pub mod logout;
pub mod monitoring;
pub mod overview;
pub mod providers;
#[cfg(feature = "ssr")]
pub mod schema;
#[cfg(feature = "ssr")]
pub mod ssr;
pub mod tasks;
pub mod users;
pub mod whoami;
pub mod workflows;

pub use error::{AppError, ErrorKind};

/// Server functions whose arguments are nested data (a workflow graph), sent as JSON; every
/// other server function takes form encoding.
pub const JSON_SERVER_FNS: &[&str] = &["/api/workflows/save"];
