//! Flotilla's application crate, shared by the server (feature `ssr`) and the browser (`hydrate`).
//!
//! - [`domain`]: pure types and rules, no I/O; compiles to WASM too.
//! - [`db`]: sqlx queries (server only), one module per aggregate; callers own the transaction.
//! - [`auth`]: password hashing, login throttling and the session contract (server only).
//! - [`api`]: thin `#[server]` functions and the error type they share with the browser.
//! - [`ui`]: pages and components.

pub mod api;
#[cfg(feature = "ssr")]
pub mod auth;
#[cfg(feature = "ssr")]
pub mod commands;
#[cfg(feature = "ssr")]
pub mod db;
pub mod domain;
pub mod ui;
