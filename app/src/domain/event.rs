//! Events: the record of every state change, as stored and as pushed to clients.

use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

str_enum!(Severity {
    Debug => "debug",
    Info => "info",
    Warning => "warning",
    Error => "error",
    Critical => "critical",
});

/// Every kind of event the system writes: writers, filters and toasts name kinds through this,
/// never by ad-hoc strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    TaskSubmitted,
    TaskPlanned,
    TaskCompleted,
    TaskFailed,
    TaskCancelled,
    /// The aggregator summarised a completed task (or says why it could not).
    TaskSummarized,
    SubtaskAssigned,
    SubtaskStarted,
    SubtaskCompleted,
    SubtaskFailed,
    SubtaskRetrying,
    SubtaskRetried,
    SubtaskBlocked,
    SubtaskRequeued,
    AgentSpawned,
    AgentPaused,
    AgentResumed,
    AgentTerminated,
    AgentStateChanged,
    AgentUnresponsive,
    AgentRecovered,
    AgentError,
    /// An agent was pointed at another provider, model, prompt or tool set.
    AgentReconfigured,
    WorkflowCreated,
    /// A new version of a workflow was saved.
    WorkflowSaved,
    WorkflowRunStarted,
    /// A workflow node finished without running: none of its incoming edges was active.
    SubtaskSkipped,
    /// An approval node is waiting for a person.
    ApprovalRequested,
    ApprovalDecided,
    /// An engine loop died and was restarted (critical).
    LoopRestarted,
    /// An agent's model asked for a tool (arguments truncated; the transcript has them whole).
    ToolCalled,
    /// What the tool answered (truncated; `is_error` when it refused or failed).
    ToolResult,
    /// An admin added, changed or removed a model provider.
    ProviderCreated,
    ProviderUpdated,
    ProviderDeleted,
    /// A provider's circuit breaker opened, half-opened for a probe, or closed again.
    ProviderBreaker,
    /// The first frame of a live stream: where to resume from (never stored).
    StreamReady,
    /// A marker that records no state change (benchmarks and probes of the pipeline).
    Marker,
}

str_enum!(EventKind {
    TaskSubmitted => "task.submitted",
    TaskPlanned => "task.planned",
    TaskCompleted => "task.completed",
    TaskFailed => "task.failed",
    TaskCancelled => "task.cancelled",
    TaskSummarized => "task.summarized",
    SubtaskAssigned => "subtask.assigned",
    SubtaskStarted => "subtask.started",
    SubtaskCompleted => "subtask.completed",
    SubtaskFailed => "subtask.failed",
    SubtaskRetrying => "subtask.retrying",
    SubtaskRetried => "subtask.retried",
    SubtaskBlocked => "subtask.blocked",
    SubtaskRequeued => "subtask.requeued",
    AgentSpawned => "agent.spawned",
    AgentPaused => "agent.paused",
    AgentResumed => "agent.resumed",
    AgentTerminated => "agent.terminated",
    AgentStateChanged => "agent.state_changed",
    AgentUnresponsive => "agent.unresponsive",
    AgentRecovered => "agent.recovered",
    AgentError => "agent.error",
    AgentReconfigured => "agent.reconfigured",
    WorkflowCreated => "workflow.created",
    WorkflowSaved => "workflow.saved",
    WorkflowRunStarted => "workflow.run_started",
    SubtaskSkipped => "subtask.skipped",
    ApprovalRequested => "approval.requested",
    ApprovalDecided => "approval.decided",
    LoopRestarted => "engine.loop_restarted",
    ToolCalled => "tool.called",
    ToolResult => "tool.result",
    ProviderCreated => "provider.created",
    ProviderUpdated => "provider.updated",
    ProviderDeleted => "provider.deleted",
    ProviderBreaker => "provider.breaker",
    StreamReady => "stream.ready",
    Marker => "marker",
});

/// A stored event, in the shape of the REST contract.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: i64,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: time::OffsetDateTime,
    pub severity: Severity,
    /// What it is about, e.g. `task/<id>`, `agent/<id>`, `subtask/<id>`.
    pub subject: String,
    /// The event's own fields; their shape depends on `type`.
    #[cfg_attr(feature = "ssr", schema(value_type = Object))]
    pub data: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<super::ids::AgentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<super::ids::RunId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtask_id: Option<super::ids::NodeId>,
    /// Who caused it: the acting user's id and username (none for the engine's own events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<super::account::UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The name of the API token the actor used, if they used one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_token: Option<String>,
    /// The transaction that wrote it: events are released in [`EventPosition`] order. Not part
    /// of the REST shape (clients resume by `seq`, which the server maps to a position).
    #[serde(skip)]
    pub xid: i64,
}

impl Event {
    pub fn position(&self) -> EventPosition {
        EventPosition {
            xid: self.xid,
            seq: self.seq,
        }
    }
}

/// Where an event stands in release order: by writing transaction, then by `seq`. Events are
/// released only once every transaction below theirs has ended, so a reader that has seen
/// everything up to a position never finds an event appear before it later.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventPosition {
    pub xid: i64,
    pub seq: i64,
}

/// What a client wants to see of the event stream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFilter {
    /// A type (`task.completed`) or a family (`task` matches `task.*`).
    pub kind: Option<String>,
    pub agent_id: Option<super::ids::AgentId>,
    pub task_id: Option<super::ids::RunId>,
    pub min_severity: Option<Severity>,
    /// Only what this user did (their username).
    pub actor: Option<String>,
}

impl EventFilter {
    /// Builds a filter from query-string values: empty strings mean "any", an unknown
    /// severity is refused with the accepted names.
    pub fn parse(
        kind: Option<String>,
        agent_id: Option<super::ids::AgentId>,
        task_id: Option<super::ids::RunId>,
        severity: Option<String>,
    ) -> Result<Self, String> {
        let min_severity = severity
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().parse::<Severity>())
            .transpose()?;
        let kind = kind.map(|k| k.trim().to_owned()).filter(|k| !k.is_empty());
        if let Some(k) = &kind
            && !EventKind::ALL
                .iter()
                .any(|known| known.as_str() == k || known.as_str().split('.').next() == Some(k))
        {
            return Err(format!(
                "unknown event type '{}' (a type such as task.submitted, or a family such as task)",
                k.chars()
                    .filter(|c| !c.is_control())
                    .take(64)
                    .collect::<String>()
            ));
        }
        Ok(Self {
            kind,
            agent_id,
            task_id,
            min_severity,
            actor: None,
        })
    }

    /// Narrows the filter to what `actor` (a username; empty means anyone) did.
    pub fn with_actor(mut self, actor: Option<String>) -> Result<Self, String> {
        self.actor = match actor.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(a) => Some(super::text::one_line("actor", a, 64)?.to_lowercase()),
        };
        Ok(self)
    }

    pub fn matches(&self, e: &Event) -> bool {
        let kind_ok = self.kind.as_deref().is_none_or(|k| {
            e.kind == k || (e.kind.starts_with(k) && e.kind.as_bytes().get(k.len()) == Some(&b'.'))
        });
        kind_ok
            && self.agent_id.is_none_or(|a| e.agent_id == Some(a))
            && self.task_id.is_none_or(|t| e.task_id == Some(t))
            && self.min_severity.is_none_or(|s| e.severity >= s)
            && self
                .actor
                .as_deref()
                .is_none_or(|a| e.actor.as_deref() == Some(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, severity: Severity) -> Event {
        Event {
            seq: 1,
            kind: kind.into(),
            at: time::OffsetDateTime::UNIX_EPOCH,
            severity,
            subject: "x".into(),
            data: serde_json::json!({}),
            agent_id: None,
            task_id: None,
            subtask_id: None,
            actor_id: None,
            actor: None,
            actor_token: None,
            xid: 0,
        }
    }

    #[test]
    fn a_family_matches_its_types_but_not_lookalikes() {
        let f = EventFilter::parse(Some("task".into()), None, None, None).unwrap();
        assert!(f.matches(&event("task.failed", Severity::Error)));
        assert!(f.matches(&event("task", Severity::Info)));
        assert!(!f.matches(&event("taskforce.created", Severity::Info)));
        assert!(!f.matches(&event("subtask.failed", Severity::Error)));
    }

    #[test]
    fn severity_is_a_minimum_and_unknown_names_are_refused() {
        let f = EventFilter::parse(None, None, None, Some("warning".into())).unwrap();
        assert!(f.matches(&event("a.b", Severity::Critical)));
        assert!(!f.matches(&event("a.b", Severity::Info)));
        assert!(EventFilter::parse(None, None, None, Some("loud".into())).is_err());
        assert_eq!(
            EventFilter::parse(Some(" ".into()), None, None, Some(String::new())),
            Ok(EventFilter::default())
        );
    }
}
