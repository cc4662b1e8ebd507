//! The state-changing operations shared by server functions and the REST API: input parsed,
//! role checked, one transaction attributed to the actor (every event it writes names them),
//! error mapped. Neither transport repeats any of it.

use crate::auth::{Forbidden, LoginError, hash_password, require_role};
use crate::db::agents::{self, AgentDbError, NewAgent};
use crate::db::events;
use crate::db::runs::{self, RunDbError};
use crate::db::users::{self, UserDbError};
use crate::domain::account::{Actor, CredentialError, NewPassword, Role, User, UserId, Username};
use crate::domain::agent::{
    ADMIN_TOOL, Agent, AgentState, McpServer, default_tools, parse_capabilities, parse_mcp_servers,
    parse_tools,
};
use crate::domain::ids::{AgentId, NodeId, RunId};
use crate::domain::run::{parse_priority, parse_task_description};
use crate::domain::text;
use sqlx::PgPool;

pub mod providers;
pub mod workflows;

/// Why a command was refused; the transports map each to their status and shape.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// A field of the input is unacceptable: which one, and why (the reason names it too).
    #[error("{reason}")]
    Invalid { field: &'static str, reason: String },
    /// A credential or role refused; its message names the field.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    #[error("{0}")]
    Conflict(&'static str),
    #[error(transparent)]
    Run(#[from] RunDbError),
    #[error(transparent)]
    Agent(#[from] AgentDbError),
    #[error(transparent)]
    User(#[from] UserDbError),
    #[error(transparent)]
    Workflow(#[from] crate::db::workflows::WorkflowDbError),
    #[error(transparent)]
    Provider(#[from] crate::db::providers::ProviderDbError),
    #[error(transparent)]
    Decision(#[from] crate::db::workflow_runs::DecisionError),
    /// The workflow (or a run's inputs) broke rules: every issue, each naming what it is about.
    #[error("{}", issues_message(.0))]
    Issues(Vec<crate::domain::workflow::Issue>),
    /// Hashing a password failed (not the caller's doing).
    #[error(transparent)]
    Hash(#[from] LoginError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

fn issues_message(issues: &[crate::domain::workflow::Issue]) -> String {
    match issues {
        [one] => one.message.clone(),
        [first, rest @ ..] => format!("{} (and {} more issues)", first.message, rest.len()),
        [] => "the workflow is not valid".into(),
    }
}

/// `field` refused for `reason`.
fn invalid(field: &'static str) -> impl FnOnce(String) -> CommandError {
    move |reason| CommandError::Invalid { field, reason }
}

/// Caps on what a task's or agent's model calls may use; `None` is uncapped.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Caps {
    /// Tokens of every kind, summed over the calls.
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 1000000000000000.0))]
    #[serde(default, deserialize_with = "crate::domain::number::integral")]
    pub max_tokens: Option<i64>,
    /// Cost in micro-units (millionths of the prices' currency).
    #[cfg_attr(feature = "ssr", schema(minimum = 0, maximum = 1000000000000000.0))]
    #[serde(default, deserialize_with = "crate::domain::number::integral")]
    pub max_cost_micros: Option<i64>,
}

/// The largest cap (10^15 tokens or micro-units): beyond any real budget, and far from the
/// sums' overflow.
pub const MAX_CAP: i64 = 1_000_000_000_000_000;

impl Caps {
    fn check(&self) -> Result<(), CommandError> {
        if self.max_tokens.is_some_and(|t| !(1..=MAX_CAP).contains(&t)) {
            return Err(invalid("max_tokens")(format!(
                "max_tokens must be 1 to {MAX_CAP}"
            )));
        }
        if self
            .max_cost_micros
            .is_some_and(|c| !(0..=MAX_CAP).contains(&c))
        {
            return Err(invalid("max_cost_micros")(format!(
                "max_cost_micros must be 0 to {MAX_CAP}"
            )));
        }
        Ok(())
    }

    fn any(&self) -> bool {
        self.max_tokens.is_some() || self.max_cost_micros.is_some()
    }
}

/// Submits a task; planning happens asynchronously in the engine.
pub async fn submit_task(
    pool: &PgPool,
    actor: &Actor,
    description: &str,
    priority: Option<i64>,
    caps: Caps,
) -> Result<RunId, CommandError> {
    require_role(actor, Role::Member)?;
    let description = parse_task_description(description).map_err(invalid("description"))?;
    let priority = parse_priority(priority).map_err(invalid("priority"))?;
    caps.check()?;
    let mut tx = pool.begin().await?;
    events::act_as(&mut tx, actor).await?;
    let id = runs::submit(&mut tx, &description, priority, Some(actor.id.0)).await?;
    // In the submitting transaction: the planner's first call already meets the cap.
    if caps.any() {
        crate::db::budgets::set_cap(&mut tx, "task", id.0, caps.max_tokens, caps.max_cost_micros)
            .await?;
    }
    tx.commit().await?;
    Ok(id)
}

pub async fn cancel_task(pool: &PgPool, actor: &Actor, id: RunId) -> Result<(), CommandError> {
    require_role(actor, Role::Member)?;
    let mut tx = pool.begin().await?;
    events::act_as(&mut tx, actor).await?;
    runs::cancel(&mut tx, id).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn retry_subtask(
    pool: &PgPool,
    actor: &Actor,
    id: NodeId,
) -> Result<RunId, CommandError> {
    require_role(actor, Role::Member)?;
    let mut tx = pool.begin().await?;
    events::act_as(&mut tx, actor).await?;
    let run = runs::retry_node(&mut tx, id).await?;
    tx.commit().await?;
    Ok(run)
}

/// What a caller may say when spawning an agent.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct SpawnAgent {
    #[cfg_attr(feature = "ssr", schema(schema_with = crate::api::schema::agent_name))]
    pub name: String,
    #[cfg_attr(feature = "ssr", schema(schema_with = crate::api::schema::capabilities))]
    pub capabilities: Vec<String>,
    #[cfg_attr(feature = "ssr", schema(schema_with = crate::api::schema::provider))]
    pub provider: Option<String>,
    #[cfg_attr(feature = "ssr", schema(schema_with = crate::api::schema::model_name))]
    pub model: Option<String>,
    #[cfg_attr(feature = "ssr", schema(schema_with = crate::api::schema::system_prompt))]
    pub system_prompt: Option<String>,
    /// The tools its model is offered (default: all but `run_command`, which only an admin
    /// may give).
    #[cfg_attr(feature = "ssr", schema(schema_with = crate::api::schema::tools))]
    pub tools: Option<Vec<String>>,
    /// MCP servers whose tools the agent is offered too (a stdio one only by an admin).
    pub mcp_servers: Option<Vec<McpServer>>,
    /// The agent that spawned this one, if any.
    pub parent_id: Option<AgentId>,
    /// Caps on the agent's model calls.
    #[serde(default, deserialize_with = "crate::domain::number::object")]
    pub budget: Caps,
}

/// Longest model name and system prompt an agent may have, in characters.
pub const MAX_MODEL: usize = 200;
pub const MAX_SYSTEM_PROMPT: usize = 20_000;

/// The default model of a provider an agent may name: `simulated`, one declared by environment
/// (`declared`: name and default model) or one an admin stored; 422 naming the others if not.
async fn provider_default_model(
    pool: &PgPool,
    provider: &str,
    declared: &[(String, String)],
) -> Result<String, CommandError> {
    if provider == crate::domain::provider::RESERVED {
        return Ok(provider.to_owned());
    }
    if let Some((_, model)) = declared.iter().find(|(n, _)| n == provider) {
        return Ok(model.clone());
    }
    let stored = sqlx::query_scalar!(
        "select default_model from providers where name = $1",
        provider
    )
    .fetch_optional(pool)
    .await?;
    if let Some(model) = stored {
        return Ok(model);
    }
    let mut known: Vec<String> = vec![crate::domain::provider::RESERVED.into()];
    known.extend(declared.iter().map(|(n, _)| n.clone()));
    known.extend(
        sqlx::query_scalar!("select name from providers order by name")
            .fetch_all(pool)
            .await?,
    );
    Err(invalid("provider")(format!(
        "unknown provider '{}' (available: {})",
        provider.chars().take(64).collect::<String>(),
        known.join(", ")
    )))
}

/// A checked tool list; only an admin may give an agent `run_command`.
fn checked_tools(actor: &Actor, raw: &[String]) -> Result<Vec<String>, CommandError> {
    let tools = parse_tools(raw).map_err(invalid("tools"))?;
    if tools.iter().any(|t| t == ADMIN_TOOL) {
        require_role(actor, Role::Admin)?;
    }
    Ok(tools)
}

/// Checked MCP servers; only an admin may attach a stdio one (it is a command).
fn checked_mcp(actor: &Actor, raw: &[McpServer]) -> Result<Vec<McpServer>, CommandError> {
    let servers = parse_mcp_servers(raw).map_err(invalid("mcp_servers"))?;
    if servers.iter().any(|s| s.command.is_some()) {
        require_role(actor, Role::Admin)?;
    }
    Ok(servers)
}

/// Spawns an agent on `simulated`, a provider declared by environment (`declared`: name and
/// default model) or one an admin stored; without a model, the provider's default.
pub async fn spawn_agent(
    pool: &PgPool,
    actor: &Actor,
    req: SpawnAgent,
    declared: &[(String, String)],
) -> Result<Agent, CommandError> {
    require_role(actor, Role::Member)?;
    let name = text::one_line("name", &req.name, 64).map_err(invalid("name"))?;
    let capabilities = parse_capabilities(&req.capabilities).map_err(invalid("capabilities"))?;
    let tools = match &req.tools {
        Some(raw) => checked_tools(actor, raw)?,
        None => default_tools(),
    };
    let mcp_servers = checked_mcp(actor, req.mcp_servers.as_deref().unwrap_or_default())?;
    let provider = req
        .provider
        .unwrap_or_else(|| crate::domain::provider::RESERVED.into());
    let default_model = provider_default_model(pool, &provider, declared).await?;
    let model = match req.model {
        Some(m) => text::one_line("model", &m, MAX_MODEL).map_err(invalid("model"))?,
        None => default_model,
    };
    let system_prompt = text::prose(
        "system_prompt",
        req.system_prompt.as_deref().unwrap_or_default(),
        MAX_SYSTEM_PROMPT,
    )
    .map_err(invalid("system_prompt"))?;
    let new = NewAgent {
        name,
        capabilities,
        model,
        provider,
        system_prompt,
        tools,
        mcp_servers,
        parent_id: req.parent_id,
    };
    req.budget.check()?;
    let mut tx = pool.begin().await?;
    events::act_as(&mut tx, actor).await?;
    let agent = agents::insert(&mut tx, &new).await?;
    if req.budget.any() {
        crate::db::budgets::set_cap(
            &mut tx,
            "agent",
            agent.id.0,
            req.budget.max_tokens,
            req.budget.max_cost_micros,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(agent)
}

/// What an edit of an agent may change; absent fields stay.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigureAgent {
    /// Another provider (its default model unless `model` is given too).
    #[cfg_attr(feature = "ssr", schema(schema_with = crate::api::schema::provider))]
    pub provider: Option<String>,
    #[cfg_attr(feature = "ssr", schema(schema_with = crate::api::schema::model_name))]
    pub model: Option<String>,
    #[cfg_attr(feature = "ssr", schema(schema_with = crate::api::schema::system_prompt))]
    pub system_prompt: Option<String>,
    #[cfg_attr(feature = "ssr", schema(schema_with = crate::api::schema::tools))]
    pub tools: Option<Vec<String>>,
    /// Replaces the attached MCP servers (a stdio one only by an admin).
    pub mcp_servers: Option<Vec<McpServer>>,
}

/// Changes an agent's provider, model, prompt or tools, from its next step on.
pub async fn configure_agent(
    pool: &PgPool,
    actor: &Actor,
    id: AgentId,
    req: ConfigureAgent,
    declared: &[(String, String)],
) -> Result<Agent, CommandError> {
    require_role(actor, Role::Member)?;
    let current = agents::get(pool, id)
        .await?
        .ok_or(agents::AgentDbError::NotFound)?;
    let (provider, default_model) = match req.provider {
        Some(p) => {
            let model = provider_default_model(pool, &p, declared).await?;
            (p, model)
        }
        None => (current.provider.clone(), current.model.clone()),
    };
    let model = match req.model {
        Some(m) => text::one_line("model", &m, MAX_MODEL).map_err(invalid("model"))?,
        None => default_model,
    };
    let system_prompt = match req.system_prompt {
        Some(p) => {
            text::prose("system_prompt", &p, MAX_SYSTEM_PROMPT).map_err(invalid("system_prompt"))?
        }
        None => current.system_prompt,
    };
    let tools = match &req.tools {
        Some(raw) => checked_tools(actor, raw)?,
        None => current.tools,
    };
    let mcp_servers = match &req.mcp_servers {
        Some(raw) => checked_mcp(actor, raw)?,
        None => current.mcp_servers,
    };
    let config = agents::AgentConfig {
        provider,
        model,
        system_prompt,
        tools,
        mcp_servers,
    };
    let mut tx = pool.begin().await?;
    events::act_as(&mut tx, actor).await?;
    let agent = agents::update_config(&mut tx, id, &config).await?;
    tx.commit().await?;
    Ok(agent)
}

/// Pause, resume or terminate.
pub async fn agent_command(
    pool: &PgPool,
    actor: &Actor,
    id: AgentId,
    to: AgentState,
) -> Result<Agent, CommandError> {
    require_role(actor, Role::Member)?;
    if !matches!(
        to,
        AgentState::Paused | AgentState::Idle | AgentState::Terminated
    ) {
        return Err(invalid("state")(
            "an agent can be paused, resumed or terminated".into(),
        ));
    }
    let mut tx = pool.begin().await?;
    events::act_as(&mut tx, actor).await?;
    let agent = agents::command(&mut tx, id, to).await?;
    tx.commit().await?;
    Ok(agent)
}

/// Creates an account (admins only), validating every field.
pub async fn create_user(
    pool: &PgPool,
    actor: &Actor,
    username: &str,
    password: String,
    role: &str,
) -> Result<User, CommandError> {
    require_role(actor, Role::Admin)?;
    let username = Username::parse(username)?;
    let password = NewPassword::parse(password)?;
    let role = role.parse::<Role>()?;
    let hash = hash_password(&password)?;
    Ok(users::insert(pool, &username, &hash, role).await?)
}

/// Changes a user's role (admins only). An admin cannot demote themself, so an installation
/// always keeps at least the admin who is acting.
pub async fn change_role(
    pool: &PgPool,
    actor: &Actor,
    target: UserId,
    role: &str,
) -> Result<User, CommandError> {
    require_role(actor, Role::Admin)?;
    let role = role.parse::<Role>()?;
    if actor.id == target && role != Role::Admin {
        return Err(CommandError::Conflict(
            "you cannot remove your own admin role; ask another admin",
        ));
    }
    Ok(users::set_role(pool, target, role).await?)
}
