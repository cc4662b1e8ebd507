//! Agents: their lifecycle state machine and capabilities.

use serde::{Deserialize, Serialize};

/// `spawning → idle ⇄ working`, `idle|working → paused → idle`, any live state `→ error →
/// idle`, and anything `→ terminated` (final).
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentState {
    Spawning,
    Idle,
    Working,
    Paused,
    Error,
    Terminated,
}

str_enum!(AgentState {
    Spawning => "spawning",
    Idle => "idle",
    Working => "working",
    Paused => "paused",
    Error => "error",
    Terminated => "terminated",
});

impl AgentState {
    /// Whether `self → to` is a legal transition.
    pub fn can_become(self, to: AgentState) -> bool {
        use AgentState::*;
        matches!(
            (self, to),
            (Spawning, Idle)
                | (Idle, Working)
                | (Working, Idle)
                | (Idle | Working, Paused)
                | (Paused, Idle)
                | (Spawning | Idle | Working | Paused, Error)
                | (Error, Idle)
                | (Spawning | Idle | Working | Paused | Error, Terminated)
        )
    }

    /// Checks a transition, naming both ends when it is refused.
    pub fn transition(self, to: AgentState) -> Result<AgentState, IllegalTransition> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(IllegalTransition {
                from: self.as_str(),
                to: to.as_str(),
            })
        }
    }
}

/// A refused state change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot go from {from} to {to}")]
pub struct IllegalTransition {
    pub from: &'static str,
    pub to: &'static str,
}

/// The capabilities the planner assigns and agents advertise.
pub const CAPABILITIES: [&str; 6] = [
    "data_analysis",
    "web_scraping",
    "code_generation",
    "file_processing",
    "database_operations",
    "api_integration",
];

/// The fleet created on first start (seed plan's capability table).
pub const DEFAULT_FLEET: [(&str, [&str; 2]); 5] = [
    ("agent-1", ["data_analysis", "code_generation"]),
    ("agent-2", ["web_scraping", "api_integration"]),
    ("agent-3", ["file_processing", "database_operations"]),
    ("agent-4", ["code_generation", "api_integration"]),
    ("agent-5", ["data_analysis", "database_operations"]),
];

/// Checks a capability list: known names, no duplicates, at least one.
pub fn parse_capabilities(raw: &[String]) -> Result<Vec<String>, String> {
    if raw.is_empty() {
        return Err("an agent needs at least one capability".into());
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for cap in raw {
        let cap = cap.trim().to_owned();
        if !CAPABILITIES.contains(&cap.as_str()) {
            return Err(format!(
                "unknown capability '{cap}' (known: {})",
                CAPABILITIES.join(", ")
            ));
        }
        if !out.contains(&cap) {
            out.push(cap);
        }
    }
    Ok(out)
}

/// The built-in tools an agent's model may be offered (MCP-shaped; see server/src/tools).
pub const TOOLS: [&str; 8] = [
    "read_file",
    "write_file",
    "list_files",
    "get_state",
    "set_state",
    "http_get",
    "sql_query",
    "run_command",
];

/// Runs a shell command: only an admin may give it to an agent.
pub const ADMIN_TOOL: &str = "run_command";

/// What an agent gets when its spawner names no tools: all but the admin's.
pub fn default_tools() -> Vec<String> {
    TOOLS
        .iter()
        .filter(|t| **t != ADMIN_TOOL)
        .map(|t| (*t).to_owned())
        .collect()
}

/// Checks a tool list: known names, no duplicates (empty is allowed: a model without tools).
pub fn parse_tools(raw: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for tool in raw {
        let tool = tool.trim();
        if !TOOLS.contains(&tool) {
            return Err(format!(
                "unknown tool '{}' (known: {})",
                tool.chars().take(64).collect::<String>(),
                TOOLS.join(", ")
            ));
        }
        if !out.iter().any(|t| t == tool) {
            out.push(tool.to_owned());
        }
    }
    Ok(out)
}

/// An MCP server attached to an agent: its tools are offered as `<name>__<tool>`.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServer {
    /// 1 to 32 characters of a-z, 0-9 and `_`, starting with a letter; unique per agent.
    #[cfg_attr(feature = "ssr", schema(pattern = "^[a-z][a-z0-9_]{0,31}$"))]
    pub name: String,
    /// A stdio server: the command (`sh -c`, in the agent's workspace) that starts it, run
    /// under `run_command`'s isolation. Only an admin may attach one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ssr", schema(max_length = 4096))]
    pub command: Option<String>,
    /// A streamable HTTP server, reached through `http_get`'s address checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ssr", schema(max_length = 2000))]
    pub url: Option<String>,
}

/// The most MCP servers one agent may have.
pub const MAX_MCP_SERVERS: usize = 8;

/// Checks attached MCP servers: names, one of `command` or `url` each, sizes.
pub fn parse_mcp_servers(raw: &[McpServer]) -> Result<Vec<McpServer>, String> {
    if raw.len() > MAX_MCP_SERVERS {
        return Err(format!("at most {MAX_MCP_SERVERS} MCP servers"));
    }
    let mut out: Vec<McpServer> = Vec::with_capacity(raw.len());
    for s in raw {
        let name_ok = (1..=32).contains(&s.name.len())
            && s.name.starts_with(|c: char| c.is_ascii_lowercase())
            && s.name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !name_ok {
            return Err(format!(
                "MCP server name '{}' must be 1 to 32 characters of a-z, 0-9 and _, starting \
                 with a letter",
                s.name.chars().take(40).collect::<String>()
            ));
        }
        if out.iter().any(|o| o.name == s.name) {
            return Err(format!("two MCP servers are named '{}'", s.name));
        }
        match (&s.command, &s.url) {
            (Some(c), None) => {
                if c.trim().is_empty() || c.chars().count() > 4096 || c.contains('\0') {
                    return Err(format!(
                        "MCP server '{}': command must be 1 to 4096 characters without NUL",
                        s.name
                    ));
                }
            }
            (None, Some(u)) => {
                let ok = (u.starts_with("http://") || u.starts_with("https://"))
                    && u.chars().count() <= 2000
                    && !u.chars().any(|c| c.is_whitespace() || c.is_control());
                if !ok {
                    return Err(format!(
                        "MCP server '{}': url must be an http:// or https:// URL of at most \
                         2000 characters",
                        s.name
                    ));
                }
            }
            _ => {
                return Err(format!(
                    "MCP server '{}' needs exactly one of command (stdio) or url (HTTP)",
                    s.name
                ));
            }
        }
        out.push(s.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use AgentState::*;

    #[test]
    fn only_the_documented_transitions_are_legal() {
        let legal = [
            (Spawning, Idle),
            (Idle, Working),
            (Working, Idle),
            (Idle, Paused),
            (Working, Paused),
            (Paused, Idle),
            (Idle, Error),
            (Error, Idle),
            (Working, Terminated),
            (Paused, Terminated),
        ];
        for (from, to) in legal {
            assert!(from.can_become(to), "{from} → {to}");
        }
        for &to in AgentState::ALL {
            assert!(!Terminated.can_become(to), "terminated is final ({to})");
        }
        assert!(!Paused.can_become(Working), "a paused agent takes no work");
        assert!(!Spawning.can_become(Working));
        assert_eq!(
            Terminated.transition(Idle),
            Err(IllegalTransition {
                from: "terminated",
                to: "idle"
            })
        );
    }

    #[test]
    fn capabilities_are_checked_and_deduplicated() {
        let caps = parse_capabilities(&[" data_analysis".into(), "data_analysis".into()]);
        assert_eq!(caps, Ok(vec!["data_analysis".to_owned()]));
        // Exact names (surrounding space aside), as the OpenAPI document lists them.
        assert!(parse_capabilities(&["Data_Analysis".into()]).is_err());
        assert!(parse_capabilities(&[]).is_err());
        let err = parse_capabilities(&["telepathy".into()]).unwrap_err();
        assert!(err.contains("telepathy"));
    }
}

/// An agent as every layer sees it.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    pub id: super::ids::AgentId,
    pub name: String,
    pub capabilities: Vec<String>,
    pub provider: String,
    pub model: String,
    pub system_prompt: String,
    /// The tools its model is offered.
    pub tools: Vec<String>,
    /// MCP servers whose tools it is offered too.
    pub mcp_servers: Vec<McpServer>,
    pub parent_id: Option<super::ids::AgentId>,
    pub state: AgentState,
    pub current_node: Option<super::ids::NodeId>,
    /// What the current node is about, and the run it belongs to.
    pub current_subtask: Option<String>,
    pub current_run: Option<super::ids::RunId>,
    pub tasks_completed: i64,
    pub tasks_failed: i64,
    pub tokens_used: i64,
    pub busy_ms: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_heartbeat: Option<time::OffsetDateTime>,
    /// Set while the health monitor considers the agent unresponsive (its work was rescued
    /// after its worker went silent); cleared when it is seen alive again.
    #[serde(with = "time::serde::rfc3339::option")]
    pub unresponsive_since: Option<time::OffsetDateTime>,
    /// Why the agent is in the `error` state: its provider refused its configuration (a bad
    /// key, an unknown model). Resuming clears it.
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
}
