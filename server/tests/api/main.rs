//! Black-box tests: the real application on port 0 against a fresh database per test.
// Tests fail loudly by design; the no-unwrap rule is for product code.
#![allow(clippy::unwrap_used)]

mod agent_tools;
mod budgets;
mod cli;
mod engine;
mod engine_steps;
mod fake_llm;
mod fuzz_routes;
mod hardening;
mod helpers;
mod http_get;
mod llama;
mod llm_wire;
mod metrics;
mod observability;
mod openapi;
mod pages;
mod processes;
mod providers;
mod real_agents;
mod security;
mod session;
mod state_machines;
mod stream;
mod tasks;
mod users;
mod workflow_runs;
mod workflow_steps;
mod workflows;
