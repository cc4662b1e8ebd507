//! Queries, one module per aggregate. Functions take `&mut PgConnection` or an executor so the
//! caller decides the transaction.

pub mod agent_state;
pub mod agents;
pub mod budgets;
pub mod events;
pub mod llm_calls;
pub mod login_attempts;
pub mod metrics;
pub mod providers;
pub mod queue;
pub mod runs;
pub mod subworkflows;
pub mod tokens;
pub mod transcripts;
pub mod users;
pub mod workflow_runs;
pub mod workflows;

pub use sqlx::PgPool;
