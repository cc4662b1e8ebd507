//! A workflow run as REST and the canvas overlay show it: the run and each node's state.

use crate::domain::ids::{AgentId, NodeId, RunId, WorkflowId};
use crate::domain::run::{NodeStatus, RunStatus};
use serde::{Deserialize, Serialize};

/// One node of a run.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunNode {
    pub id: NodeId,
    pub key: String,
    /// The step's kind: `agent`, `tool`, `approval` or `workflow`.
    pub kind: String,
    pub status: NodeStatus,
    /// An approval node whose prerequisites are done, waiting for a person's decision.
    pub waiting_for_approval: bool,
    /// `approved` or `rejected`, once decided.
    pub decision: Option<String>,
    /// The username of who decided.
    pub decided_by: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub decided_at: Option<time::OffsetDateTime>,
    pub decision_comment: Option<String>,
    /// Keys of the nodes it runs after.
    pub depends_on: Vec<String>,
    /// The prompt as sent (rendered from the template once its inputs were known).
    pub prompt: String,
    pub agent_id: Option<AgentId>,
    pub attempt: i32,
    pub output: Option<String>,
    pub error: Option<String>,
    pub tokens: i64,
    /// A sub-workflow node's newest child run.
    #[serde(default)]
    pub child_run: Option<RunId>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<time::OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<time::OffsetDateTime>,
}

/// A run of a workflow version, with its nodes.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunDetail {
    pub id: RunId,
    pub workflow_id: WorkflowId,
    pub workflow_version: i32,
    pub status: RunStatus,
    /// The inputs it ran with, defaults filled in.
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub inputs: serde_json::Value,
    pub result: Option<String>,
    pub error: Option<String>,
    /// The username of who started it.
    pub started_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<time::OffsetDateTime>,
    pub nodes: Vec<RunNode>,
}

/// A run in a workflow's history.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub id: RunId,
    pub workflow_id: WorkflowId,
    pub workflow_version: i32,
    pub status: RunStatus,
    pub nodes_total: i64,
    pub nodes_finished: i64,
    pub started_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<time::OffsetDateTime>,
}
