//! DAG runs — a task's plan is one kind, a workflow run the other — and their nodes.

use serde::{Deserialize, Serialize};

/// `pending → in_progress → completed | failed | cancelled`.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Pending,
    InProgress,
    Completed,
    Failed,
    Cancelled,
}

/// `queued → assigned → running → completed | failed | blocked | cancelled`; a lost lease or a
/// retry sends `assigned|running → queued`, and a retried `failed|blocked` node is `queued` again.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    Queued,
    Assigned,
    Running,
    Completed,
    Failed,
    Blocked,
    Cancelled,
    /// A workflow node whose incoming edges are all inactive (conditions false, or their
    /// sources skipped): finished without running.
    Skipped,
}

str_enum!(RunStatus {
    Pending => "pending",
    InProgress => "in_progress",
    Completed => "completed",
    Failed => "failed",
    Cancelled => "cancelled",
});

str_enum!(NodeStatus {
    Queued => "queued",
    Assigned => "assigned",
    Running => "running",
    Completed => "completed",
    Failed => "failed",
    Blocked => "blocked",
    Cancelled => "cancelled",
    Skipped => "skipped",
});

impl RunStatus {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled
        )
    }

    pub fn can_become(self, to: RunStatus) -> bool {
        use RunStatus::*;
        matches!(
            (self, to),
            (Pending, InProgress | Failed | Cancelled)
                | (InProgress, Completed | Failed | Cancelled)
                // Retrying a failed subtask reopens its task.
                | (Failed, InProgress)
        )
    }
}

impl NodeStatus {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            NodeStatus::Completed
                | NodeStatus::Failed
                | NodeStatus::Blocked
                | NodeStatus::Cancelled
                | NodeStatus::Skipped
        )
    }

    pub fn can_become(self, to: NodeStatus) -> bool {
        use NodeStatus::*;
        matches!(
            (self, to),
            // Assigned and started by one statement when the assigning process runs it.
            (Queued, Assigned | Running | Blocked | Cancelled | Skipped)
                // An approval node is decided without ever being assigned.
                | (Queued, Completed)
                | (Assigned, Running | Queued | Cancelled)
                | (Running, Completed | Failed | Queued | Cancelled)
                | (Failed | Blocked, Queued)
                | (Queued | Assigned, Failed)
        )
    }
}

/// How a failed attempt is retried: `max_attempts` in all, waiting `base_ms · 2^(n-1)` before
/// attempt `n + 1`, capped at `max_backoff_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub max_attempts: i32,
    pub base_ms: i64,
    pub max_backoff_ms: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_ms: 500,
            max_backoff_ms: 30_000,
        }
    }
}

impl RetryPolicy {
    /// After attempt `attempt` (1-based) failed: wait this long before the next, or `None`
    /// when attempts are used up.
    pub fn backoff_after(&self, attempt: i32) -> Option<i64> {
        if attempt >= self.max_attempts {
            return None;
        }
        let exp = u32::try_from(attempt.saturating_sub(1))
            .unwrap_or(0)
            .min(30);
        Some(
            self.base_ms
                .saturating_mul(1_i64 << exp)
                .min(self.max_backoff_ms),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_description_with_a_nul_is_refused_before_it_reaches_postgres() {
        assert!(parse_task_description("count the \u{0} rows please").is_err());
        assert!(parse_task_description("line one\n\tline two").is_ok());
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for s in NodeStatus::ALL {
            assert_eq!(s.as_str().parse::<NodeStatus>(), Ok(*s));
        }
        for s in RunStatus::ALL {
            assert_eq!(s.as_str().parse::<RunStatus>(), Ok(*s));
        }
    }

    #[test]
    fn a_completed_node_never_changes_again() {
        for to in NodeStatus::ALL {
            assert!(!NodeStatus::Completed.can_become(*to), "{to}");
        }
        assert!(!RunStatus::Completed.can_become(RunStatus::InProgress));
        assert!(
            NodeStatus::Running.can_become(NodeStatus::Queued),
            "a lost lease re-queues"
        );
    }

    #[test]
    fn retries_back_off_exponentially_then_stop() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff_after(1), Some(500));
        assert_eq!(p.backoff_after(2), Some(1000));
        assert_eq!(p.backoff_after(3), None);
        let long = RetryPolicy {
            max_attempts: 40,
            base_ms: 1000,
            max_backoff_ms: 30_000,
        };
        assert_eq!(long.backoff_after(39), Some(30_000));
    }
}

/// A task in lists.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskSummary {
    pub id: super::ids::RunId,
    pub description: String,
    pub priority: i16,
    pub status: RunStatus,
    pub subtasks_total: i64,
    pub subtasks_completed: i64,
    /// The username of who submitted it (none for tasks whose submitter is gone).
    pub submitted_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
}

/// A task with its subtasks, as the REST contract shows it.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskDetail {
    pub id: super::ids::RunId,
    pub description: String,
    pub priority: i16,
    pub status: RunStatus,
    pub planned_by: Option<String>,
    pub plan_note: Option<String>,
    pub result: Option<String>,
    pub error: Option<String>,
    /// The aggregator's summary of the subtasks' outputs (when the planner runs on a real
    /// model), or why there is none.
    pub summary: Option<String>,
    pub summary_error: Option<String>,
    /// The username of who submitted it.
    pub submitted_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<time::OffsetDateTime>,
    /// Every model call made for the task (planning, subtasks' attempts, failed ones too).
    pub usage: super::usage::UsageTotals,
    /// The task's caps and where it stands, when it has caps.
    pub budget: Option<super::usage::Budget>,
    pub subtasks: Vec<SubtaskView>,
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubtaskView {
    pub id: super::ids::NodeId,
    pub key: String,
    pub description: String,
    pub required_capabilities: Vec<String>,
    pub depends_on: Vec<super::ids::NodeId>,
    pub priority: i16,
    pub status: NodeStatus,
    pub agent_id: Option<super::ids::AgentId>,
    pub attempt: i32,
    pub output: Option<String>,
    pub error: Option<String>,
    /// The subtask's model calls over all its attempts.
    pub usage: super::usage::UsageTotals,
}

/// Description rules for a submitted task: 10..=5000 characters after trimming, no control
/// characters but line breaks and tabs (Postgres refuses NUL in text).
pub fn parse_task_description(raw: &str) -> Result<String, String> {
    let d = raw.trim();
    let n = d.chars().count();
    if !(10..=5000).contains(&n) {
        return Err(format!(
            "description must be 10 to 5000 characters (got {n})"
        ));
    }
    if !d.chars().all(super::text::allowed_in_prose) {
        return Err(
            "description must not contain control characters (line breaks and tabs are fine)"
                .into(),
        );
    }
    Ok(d.to_owned())
}

pub fn parse_priority(raw: Option<i64>) -> Result<i16, String> {
    match raw {
        None => Ok(5),
        Some(p) if (0..=10).contains(&p) => Ok(i16::try_from(p).unwrap_or(5)),
        Some(p) => Err(format!("priority must be 0 to 10 (got {p})")),
    }
}
