//! Events: the record of every state change, as stored and as pushed to clients.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Debug => "debug",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Severity::Debug,
            Severity::Info,
            Severity::Warning,
            Severity::Error,
            Severity::Critical,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
        .ok_or_else(|| format!("unknown severity '{s}' (debug, info, warning, error, critical)"))
    }
}

/// A stored event, in the shape of the REST contract.
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
    pub data: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<super::ids::AgentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<super::ids::RunId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtask_id: Option<super::ids::NodeId>,
}

/// What a client wants to see of the event stream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFilter {
    /// A type (`task.completed`) or a family (`task` matches `task.*`).
    pub kind: Option<String>,
    pub agent_id: Option<super::ids::AgentId>,
    pub task_id: Option<super::ids::RunId>,
    pub min_severity: Option<Severity>,
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
        Ok(Self {
            kind: kind.map(|k| k.trim().to_owned()).filter(|k| !k.is_empty()),
            agent_id,
            task_id,
            min_severity,
        })
    }

    pub fn matches(&self, e: &Event) -> bool {
        let kind_ok = self.kind.as_deref().is_none_or(|k| {
            e.kind == k || (e.kind.starts_with(k) && e.kind.as_bytes().get(k.len()) == Some(&b'.'))
        });
        kind_ok
            && self.agent_id.is_none_or(|a| e.agent_id == Some(a))
            && self.task_id.is_none_or(|t| e.task_id == Some(t))
            && self.min_severity.is_none_or(|s| e.severity >= s)
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
