//! The `agents` table: the fleet and its lifecycle.

use super::events::{self, NewEvent};
use crate::domain::agent::{Agent, AgentState, DEFAULT_FLEET, IllegalTransition, McpServer};
use crate::domain::event::{EventKind, Severity};
use crate::domain::ids::AgentId;
use sqlx::postgres::PgDatabaseError;
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum AgentDbError {
    #[error("an agent named '{0}' already exists")]
    NameTaken(String),
    #[error("no such agent")]
    NotFound,
    #[error("no such parent agent")]
    ParentNotFound,
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// A validated request for a new agent.
#[derive(Debug, Clone)]
pub struct NewAgent {
    pub name: String,
    pub capabilities: Vec<String>,
    pub provider: String,
    pub model: String,
    pub system_prompt: String,
    pub tools: Vec<String>,
    pub mcp_servers: Vec<McpServer>,
    pub parent_id: Option<AgentId>,
}

struct Row {
    id: Uuid,
    name: String,
    capabilities: Vec<String>,
    provider: String,
    model: String,
    system_prompt: String,
    tools: Vec<String>,
    mcp_servers: serde_json::Value,
    parent_id: Option<Uuid>,
    state: AgentState,
    current_node: Option<Uuid>,
    current_subtask: Option<String>,
    current_run: Option<Uuid>,
    tasks_completed: i64,
    tasks_failed: i64,
    tokens_used: i64,
    busy_ms: i64,
    last_heartbeat: Option<time::OffsetDateTime>,
    unresponsive_since: Option<time::OffsetDateTime>,
    error: Option<String>,
    created_at: time::OffsetDateTime,
}

impl From<Row> for Agent {
    fn from(r: Row) -> Self {
        Agent {
            id: AgentId(r.id),
            name: r.name,
            capabilities: r.capabilities,
            provider: r.provider,
            model: r.model,
            system_prompt: r.system_prompt,
            tools: r.tools,
            mcp_servers: serde_json::from_value(r.mcp_servers).unwrap_or_default(),
            parent_id: r.parent_id.map(AgentId),
            state: r.state,
            current_node: r.current_node.map(crate::domain::ids::NodeId),
            current_subtask: r.current_subtask,
            current_run: r.current_run.map(crate::domain::ids::RunId),
            tasks_completed: r.tasks_completed,
            tasks_failed: r.tasks_failed,
            tokens_used: r.tokens_used,
            busy_ms: r.busy_ms,
            last_heartbeat: r.last_heartbeat,
            unresponsive_since: r.unresponsive_since,
            error: r.error,
            created_at: r.created_at,
        }
    }
}

/// Spawns an agent (straight to idle: a simulated or remote model needs no warm-up) and records
/// the event.
pub async fn insert(conn: &mut PgConnection, new: &NewAgent) -> Result<Agent, AgentDbError> {
    let row = sqlx::query_as!(
        Row,
        r#"insert into agents (id, name, capabilities, provider, model, system_prompt, tools,
                               mcp_servers, parent_id, state, last_heartbeat)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'idle', now())
           returning id, name, capabilities, provider, model, system_prompt, tools, mcp_servers,
                     parent_id,
                     state as "state: AgentState",
                     current_node, null::text as "current_subtask?", null::uuid as "current_run?",
                     tasks_completed, tasks_failed, tokens_used, busy_ms,
                     last_heartbeat, unresponsive_since, error, created_at"#,
        Uuid::new_v4(),
        new.name,
        &new.capabilities,
        new.provider,
        new.model,
        new.system_prompt,
        &new.tools,
        serde_json::to_value(&new.mcp_servers).unwrap_or_default(),
        new.parent_id.map(|p| p.0)
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| match constraint(&e) {
        Some("agents_name_key") => AgentDbError::NameTaken(new.name.clone()),
        Some("agents_parent_id_fkey") => AgentDbError::ParentNotFound,
        _ => AgentDbError::Db(e),
    })?;
    let agent = Agent::from(row);
    events::append(
        conn,
        NewEvent::new(EventKind::AgentSpawned, format!("agent/{}", agent.id))
            .agent(agent.id)
            .data(serde_json::json!({ "name": agent.name, "capabilities": agent.capabilities })),
    )
    .await?;
    Ok(agent)
}

fn constraint(e: &sqlx::Error) -> Option<&str> {
    match e {
        sqlx::Error::Database(d) => d.try_downcast_ref::<PgDatabaseError>()?.constraint(),
        _ => None,
    }
}

pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<Agent>, sqlx::Error> {
    Ok(sqlx::query_as!(
        Row,
        r#"select a.id, a.name, a.capabilities, a.provider, a.model, a.system_prompt,
                  a.tools, a.mcp_servers, a.parent_id, a.state as "state: AgentState", a.current_node,
                  n.description as "current_subtask?", n.run_id as "current_run?",
                  a.tasks_completed, a.tasks_failed, a.tokens_used, a.busy_ms,
                  a.last_heartbeat, a.unresponsive_since, a.error, a.created_at
           from agents a left join nodes n on n.id = a.current_node
           order by a.name"#
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(Agent::from)
    .collect())
}

pub async fn get(db: impl PgExecutor<'_>, id: AgentId) -> Result<Option<Agent>, sqlx::Error> {
    Ok(sqlx::query_as!(
        Row,
        r#"select a.id, a.name, a.capabilities, a.provider, a.model, a.system_prompt,
                  a.tools, a.mcp_servers, a.parent_id, a.state as "state: AgentState", a.current_node,
                  n.description as "current_subtask?", n.run_id as "current_run?",
                  a.tasks_completed, a.tasks_failed, a.tokens_used, a.busy_ms,
                  a.last_heartbeat, a.unresponsive_since, a.error, a.created_at
           from agents a left join nodes n on n.id = a.current_node
           where a.id = $1"#,
        id.0
    )
    .fetch_optional(db)
    .await?
    .map(Agent::from))
}

/// What an edit may change of an agent's model and tools (each field already checked).
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub provider: String,
    pub model: String,
    pub system_prompt: String,
    pub tools: Vec<String>,
    pub mcp_servers: Vec<McpServer>,
}

/// Points an agent at another provider, model, prompt or tool set, from its next step on (the
/// step it may be running keeps what it started with). An agent in `error` because of its old
/// configuration goes back to idle.
pub async fn update_config(
    conn: &mut PgConnection,
    id: AgentId,
    config: &AgentConfig,
) -> Result<Agent, AgentDbError> {
    let before = sqlx::query!(
        r#"select provider, model, tools, mcp_servers, state as "state: AgentState" from agents
           where id = $1 for update"#,
        id.0
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(AgentDbError::NotFound)?;
    if before.state == AgentState::Terminated {
        return Err(AgentDbError::Illegal(IllegalTransition {
            from: "terminated",
            to: "reconfigured",
        }));
    }
    sqlx::query!(
        r#"update agents set provider = $2, model = $3, system_prompt = $4, tools = $5,
               mcp_servers = $6,
               state = case when state = 'error' then 'idle' else state end,
               error = null, updated_at = now()
           where id = $1"#,
        id.0,
        config.provider,
        config.model,
        config.system_prompt,
        &config.tools,
        serde_json::to_value(&config.mcp_servers).unwrap_or_default()
    )
    .execute(&mut *conn)
    .await?;
    events::append(
        conn,
        NewEvent::new(EventKind::AgentReconfigured, format!("agent/{id}"))
            .agent(id)
            .data(serde_json::json!({
                "from": { "provider": before.provider, "model": before.model,
                          "tools": before.tools, "mcp_servers": before.mcp_servers },
                "to": { "provider": config.provider, "model": config.model,
                        "tools": config.tools, "mcp_servers": config.mcp_servers },
            })),
    )
    .await?;
    get(&mut *conn, id).await?.ok_or(AgentDbError::NotFound)
}

/// A user's lifecycle command: pause, resume or terminate. Pausing a working agent lets it
/// finish its current step (the daemon just stops giving it work); terminating cancels its
/// in-flight node, which is re-queued for another agent and whose late completion is refused.
pub async fn command(
    conn: &mut PgConnection,
    id: AgentId,
    to: AgentState,
) -> Result<Agent, AgentDbError> {
    let current = sqlx::query!(
        r#"select state as "state: AgentState", current_node from agents where id = $1 for update"#,
        id.0
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(AgentDbError::NotFound)?;
    let from = current.state;
    from.transition(to)?;
    if to == AgentState::Terminated
        && let Some(node) = current.current_node
    {
        super::queue::release_node(
            conn,
            crate::domain::ids::NodeId(node),
            "agent terminated",
            super::queue::Voided::Cancelled,
        )
        .await?;
    }
    // A paused agent keeps its current node (it finishes the step); others drop it.
    sqlx::query!(
        r#"update agents set state = $2, updated_at = now(),
               -- Leaving the error state (resume) clears its reason.
               error = case when $2 = 'error' then error else null end,
               current_node = case when $2 = 'terminated' then null else current_node end
           where id = $1"#,
        id.0,
        to.as_str()
    )
    .execute(&mut *conn)
    .await?;
    let kind = match to {
        AgentState::Paused => EventKind::AgentPaused,
        AgentState::Idle => EventKind::AgentResumed,
        AgentState::Terminated => EventKind::AgentTerminated,
        _ => EventKind::AgentStateChanged,
    };
    events::append(
        conn,
        NewEvent::new(kind, format!("agent/{id}"))
            .agent(id)
            .severity(if to == AgentState::Terminated {
                Severity::Warning
            } else {
                Severity::Info
            })
            .data(serde_json::json!({ "from": from.as_str(), "to": to.as_str() })),
    )
    .await?;
    get(&mut *conn, id).await?.ok_or(AgentDbError::NotFound)
}

/// Creates the default fleet on `provider`/`model` when there are no agents at all (first
/// start). Concurrent first starts are serialised by an advisory lock.
pub async fn ensure_default_fleet(
    pool: &PgPool,
    provider: &str,
    model: &str,
) -> Result<usize, AgentDbError> {
    let mut tx = pool.begin().await?;
    sqlx::query!("select pg_advisory_xact_lock(hashtext('flotilla.default_fleet'))")
        .execute(&mut *tx)
        .await?;
    let count = sqlx::query_scalar!(r#"select count(*) as "n!" from agents"#)
        .fetch_one(&mut *tx)
        .await?;
    if count > 0 {
        return Ok(0);
    }
    for (name, caps) in DEFAULT_FLEET {
        let new = NewAgent {
            name: name.to_owned(),
            capabilities: caps.iter().map(|c| (*c).to_owned()).collect(),
            provider: provider.to_owned(),
            model: model.to_owned(),
            system_prompt: String::new(),
            tools: crate::domain::agent::default_tools(),
            mcp_servers: Vec::new(),
            parent_id: None,
        };
        insert(&mut tx, &new).await?;
    }
    tx.commit().await?;
    Ok(DEFAULT_FLEET.len())
}
