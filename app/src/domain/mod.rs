//! Pure domain types and rules: everything here compiles for both the server and the browser,
//! does no I/O, and is unit- and property-tested natively.

pub mod account;
pub mod agent;
pub mod dag_view;
pub mod delegation;
pub mod event;
pub mod ids;
pub mod metrics;
pub mod plan;
pub mod run;
pub mod simulated;
