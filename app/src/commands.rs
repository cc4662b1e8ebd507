//! The state-changing operations shared by server functions and the REST API: input parsed,
//! role checked, one transaction, error mapped. Neither transport repeats any of it.

use crate::api::{AppError, ErrorKind};
use crate::auth::require_role;
use crate::db::agents::{self, AgentDbError, NewAgent};
use crate::db::runs::{self, RunDbError};
use crate::domain::account::{Role, User};
use crate::domain::agent::{Agent, AgentState, parse_capabilities};
use crate::domain::ids::{AgentId, NodeId, RunId};
use crate::domain::run::{parse_priority, parse_task_description};
use sqlx::PgPool;

impl From<RunDbError> for AppError {
    fn from(e: RunDbError) -> Self {
        match e {
            RunDbError::NotFound | RunDbError::NodeNotFound => {
                AppError::new(ErrorKind::NotFound, e.to_string())
            }
            RunDbError::AlreadyFinal(_) | RunDbError::NotRetryable(_) => {
                AppError::new(ErrorKind::Conflict, e.to_string())
            }
            RunDbError::Db(db) => db.into(),
        }
    }
}

impl From<AgentDbError> for AppError {
    fn from(e: AgentDbError) -> Self {
        match e {
            AgentDbError::NameTaken(_) | AgentDbError::Illegal(_) => {
                AppError::new(ErrorKind::Conflict, e.to_string())
            }
            AgentDbError::NotFound => AppError::new(ErrorKind::NotFound, e.to_string()),
            AgentDbError::ParentNotFound => AppError::invalid(e),
            AgentDbError::Db(db) => db.into(),
        }
    }
}

/// Submits a task; planning happens asynchronously in the engine.
pub async fn submit_task(
    pool: &PgPool,
    actor: &User,
    description: &str,
    priority: Option<i64>,
) -> Result<RunId, AppError> {
    require_role(actor, Role::Member)?;
    let description = parse_task_description(description).map_err(AppError::invalid)?;
    let priority = parse_priority(priority).map_err(AppError::invalid)?;
    let mut tx = pool.begin().await?;
    let id = runs::submit(&mut tx, &description, priority, Some(actor.id.0)).await?;
    tx.commit().await?;
    Ok(id)
}

pub async fn cancel_task(pool: &PgPool, actor: &User, id: RunId) -> Result<(), AppError> {
    require_role(actor, Role::Member)?;
    let mut tx = pool.begin().await?;
    runs::cancel(&mut tx, id).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn retry_subtask(pool: &PgPool, actor: &User, id: NodeId) -> Result<RunId, AppError> {
    require_role(actor, Role::Member)?;
    let mut tx = pool.begin().await?;
    let run = runs::retry_node(&mut tx, id).await?;
    tx.commit().await?;
    Ok(run)
}

/// What a caller may say when spawning an agent.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct SpawnAgent {
    pub name: String,
    pub capabilities: Vec<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub system_prompt: Option<String>,
    pub parent_id: Option<AgentId>,
}

/// Providers an agent may name. Real providers are added here as they are built.
pub const PROVIDERS: [&str; 1] = ["simulated"];

pub async fn spawn_agent(pool: &PgPool, actor: &User, req: SpawnAgent) -> Result<Agent, AppError> {
    require_role(actor, Role::Member)?;
    let name = req.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(AppError::invalid("agent name must be 1 to 64 characters"));
    }
    let capabilities = parse_capabilities(&req.capabilities).map_err(AppError::invalid)?;
    let provider = req.provider.unwrap_or_else(|| "simulated".into());
    if !PROVIDERS.contains(&provider.as_str()) {
        return Err(AppError::invalid(format!(
            "unknown provider '{provider}' (available: {})",
            PROVIDERS.join(", ")
        )));
    }
    let new = NewAgent {
        name,
        capabilities,
        model: req.model.unwrap_or_else(|| provider.clone()),
        provider,
        system_prompt: req.system_prompt.unwrap_or_default(),
        parent_id: req.parent_id,
    };
    let mut tx = pool.begin().await?;
    let agent = agents::insert(&mut tx, &new).await?;
    tx.commit().await?;
    Ok(agent)
}

/// Pause, resume or terminate.
pub async fn agent_command(
    pool: &PgPool,
    actor: &User,
    id: AgentId,
    to: AgentState,
) -> Result<Agent, AppError> {
    require_role(actor, Role::Member)?;
    if !matches!(
        to,
        AgentState::Paused | AgentState::Idle | AgentState::Terminated
    ) {
        return Err(AppError::invalid(
            "an agent can be paused, resumed or terminated",
        ));
    }
    let mut tx = pool.begin().await?;
    let agent = agents::command(&mut tx, id, to).await?;
    tx.commit().await?;
    Ok(agent)
}
