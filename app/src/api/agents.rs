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

/// The providers an agent may be spawned on, by name: the simulated model, those declared by
/// environment, and those admins stored.
#[server(endpoint = "agents/providers", input = GetUrl)]
pub async fn list_agent_providers() -> Result<Vec<String>, AppError> {
    use super::ssr::{context, run};
    run(async {
        let ctx = context()?;
        let mut names = vec![crate::domain::provider::RESERVED.to_owned()];
        names.extend(ctx.declared_providers.iter().map(|(n, _)| n.clone()));
        for row in crate::db::providers::list(&ctx.pool).await? {
            if !names.contains(&row.name) {
                names.push(row.name);
            }
        }
        Ok(names)
    })
    .await
}

/// The agents page's spawn form as it posts (`form[name]`, …): text fields, empty optional
/// ones meaning "the default".
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct SpawnForm {
    pub name: String,
    /// Comma-separated: a plain form posts one field.
    pub capabilities: String,
    #[serde(default)]
    pub provider: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub system_prompt: String,
    /// Comma-separated; empty gives the agent no tools, absent the default ones.
    #[serde(default)]
    pub tools: Option<String>,
    #[serde(default)]
    pub max_tokens: String,
    #[serde(default)]
    pub max_cost_micros: String,
}

/// Spawns an agent from the agents page's form.
#[server(endpoint = "agents/spawn")]
pub async fn spawn_agent(form: SpawnForm) -> Result<Agent, AppError> {
    use super::ssr::{context, current_user, form_number, run};
    run(async {
        let ctx = context()?;
        let blank = |s: String| (!s.trim().is_empty()).then_some(s);
        let req = crate::commands::SpawnAgent {
            capabilities: split_list(&form.capabilities),
            provider: blank(form.provider),
            model: blank(form.model),
            system_prompt: blank(form.system_prompt),
            tools: form.tools.as_deref().map(split_list),
            mcp_servers: None,
            parent_id: None,
            budget: crate::commands::Caps {
                max_tokens: form_number("max_tokens", &form.max_tokens)?,
                max_cost_micros: form_number("max_cost_micros", &form.max_cost_micros)?,
            },
            name: form.name,
        };
        Ok(crate::commands::spawn_agent(
            &ctx.pool,
            &current_user().await?.into(),
            req,
            &ctx.declared_providers,
        )
        .await?)
    })
    .await
}

/// A list a form posts as one field, comma- or space-separated.
#[cfg(feature = "ssr")]
fn split_list(raw: &str) -> Vec<String> {
    raw.split([',', ' '])
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Changes an agent's provider, model, system prompt and tools from its page's form. An empty
/// model means the provider's default.
#[server(endpoint = "agents/configure")]
pub async fn configure_agent(
    id: AgentId,
    provider: String,
    model: String,
    system_prompt: String,
    tools: String,
) -> Result<Agent, AppError> {
    use super::ssr::{context, current_user, run};
    run(async {
        let ctx = context()?;
        let req = crate::commands::ConfigureAgent {
            provider: Some(provider),
            model: (!model.trim().is_empty()).then_some(model),
            system_prompt: Some(system_prompt),
            tools: Some(split_list(&tools)),
            mcp_servers: None,
        };
        Ok(crate::commands::configure_agent(
            &ctx.pool,
            &current_user().await?.into(),
            id,
            req,
            &ctx.declared_providers,
        )
        .await?)
    })
    .await
}
