//! Agents: list and steer.

use super::AppError;
use crate::domain::agent::Agent;
use crate::domain::ids::AgentId;
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

#[server(endpoint = "agents/list", input = GetUrl)]
pub async fn list_agents() -> Result<Vec<Agent>, AppError> {
    use super::ssr::{context, run};
    run(async { Ok(crate::db::agents::list(&context()?.pool).await?) }).await
}

/// `verb` is `pause`, `resume` or `terminate`.
#[server(endpoint = "agents/command")]
pub async fn agent_command(id: AgentId, verb: String) -> Result<Agent, AppError> {
    use super::ssr::{context, current_user, run};
    use crate::domain::agent::AgentState;
    run(async {
        let to = match verb.as_str() {
            "pause" => AgentState::Paused,
            "resume" => AgentState::Idle,
            "terminate" => AgentState::Terminated,
            other => return Err(AppError::invalid(format!("unknown command '{other}'"))),
        };
        Ok(
            crate::commands::agent_command(&context()?.pool, &current_user().await?.into(), id, to)
                .await?,
        )
    })
    .await
}
