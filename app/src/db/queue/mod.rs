//! The work queue over `nodes`, one module per job: assignment (the daemon), claims and
//! heartbeats (workers), reports of finished attempts (fenced by attempt and lease token), and
//! leases and rescue. All lease time is the database's `now()`, so clocks of engine machines
//! never matter. Agent rows change through [`super::agent_state`], except inside the batched
//! statements of assignment and completion, which move an agent with its node in one round trip.

mod assign;
mod claim;
mod report;
mod rescue;

pub use assign::{AgentCapabilities, Assigned, RunHere, assign_ready, daemon_has_work};
pub use claim::{claim_assigned, heartbeat};
pub use report::{Completion, Released, ReportError, Success, complete_many, fail, release};
pub use rescue::{ReleasedNode, Voided, release_node, rescue_expired};

use crate::domain::ids::{AgentId, NodeId, RunId};
use uuid::Uuid;

/// A node handed to this worker to execute, with what it needs.
#[derive(Debug, Clone)]
pub struct ClaimedNode {
    pub id: NodeId,
    pub run_id: RunId,
    pub key: String,
    pub description: String,
    pub agent_id: AgentId,
    pub attempt: i32,
    pub lease_token: Uuid,
    pub provider: String,
    pub model: String,
    pub system_prompt: String,
    /// The tools the agent's model is offered.
    pub tools: Vec<String>,
    /// MCP servers whose tools it is offered too.
    pub mcp_servers: Vec<crate::domain::agent::McpServer>,
    /// Outputs of the node's prerequisites, in plan order.
    pub context: Vec<String>,
    /// A workflow's tool step: the one call to make instead of asking the model.
    pub tool_call: Option<ToolCall>,
}

/// A tool step's call, its arguments rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub tool: String,
    pub arguments: serde_json::Map<String, serde_json::Value>,
}

impl ToolCall {
    /// The call of a node's step, if it is a tool step.
    fn of(step: Option<serde_json::Value>) -> Option<Self> {
        match serde_json::from_value(step?).ok()? {
            crate::domain::workflow::Step::Tool { tool, arguments } => {
                Some(ToolCall { tool, arguments })
            }
            _ => None,
        }
    }
}

/// A node as an assignment or a claim starts it.
struct StartRow {
    id: Uuid,
    run_id: Uuid,
    key: String,
    description: String,
    agent_id: Uuid,
    attempt: i32,
    lease_token: Uuid,
    provider: String,
    model: String,
    system_prompt: String,
    tools: Vec<String>,
    mcp_servers: serde_json::Value,
    context: Vec<String>,
    step: Option<serde_json::Value>,
    here: bool,
    waited: f64,
}

impl From<StartRow> for ClaimedNode {
    fn from(r: StartRow) -> Self {
        ClaimedNode {
            id: NodeId(r.id),
            run_id: RunId(r.run_id),
            key: r.key,
            description: r.description,
            agent_id: AgentId(r.agent_id),
            attempt: r.attempt,
            lease_token: r.lease_token,
            provider: r.provider,
            model: r.model,
            system_prompt: r.system_prompt,
            tools: r.tools,
            mcp_servers: serde_json::from_value(r.mcp_servers).unwrap_or_default(),
            context: r.context,
            tool_call: ToolCall::of(r.step),
        }
    }
}
