//! Workflows as stored and listed: a name over a line of immutable versions.

use super::{Definition, Issue};
use crate::domain::ids::WorkflowId;
use serde::{Deserialize, Serialize};

/// Whether the newest version passed validation when it was saved. A draft can be saved and
/// edited but not run; a run re-validates in any case (agents come and go).
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowState {
    Draft,
    Ready,
}

impl WorkflowState {
    pub fn of(issues: &[Issue]) -> Self {
        Self::ready_if(issues.is_empty())
    }

    pub fn ready_if(ready: bool) -> Self {
        if ready {
            WorkflowState::Ready
        } else {
            WorkflowState::Draft
        }
    }
}

/// A workflow in lists.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowSummary {
    pub id: WorkflowId,
    pub name: String,
    pub description: String,
    pub is_template: bool,
    /// The newest version's state.
    pub state: WorkflowState,
    /// The newest version.
    pub version: i32,
    pub nodes: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: time::OffsetDateTime,
}

/// A workflow with one of its versions (the newest, unless a version was asked for).
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowDetail {
    pub id: WorkflowId,
    pub name: String,
    pub description: String,
    pub is_template: bool,
    /// The newest version: a save names it as its base.
    pub latest_version: i32,
    /// The version shown here.
    pub version: i32,
    pub state: WorkflowState,
    pub message: String,
    pub definition: Definition,
    /// Why the version shown is a draft (empty when ready).
    pub issues: Vec<Issue>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    /// When the version shown was saved.
    #[serde(with = "time::serde::rfc3339")]
    pub saved_at: time::OffsetDateTime,
}

/// One saved version, in a workflow's history.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersionSummary {
    pub version: i32,
    pub state: WorkflowState,
    pub message: String,
    /// The username of who saved it.
    pub saved_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub saved_at: time::OffsetDateTime,
}
