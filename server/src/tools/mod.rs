//! The tools an agent's model may call, in MCP's shape (`name`, `description`, `inputSchema`;
//! results as text with `isError`): files in the agent's workspace, the task's shared state,
//! public web pages, read-only SQL over the engine's views and (when an admin allows it) shell
//! commands. A tool never fails the attempt: whatever it is asked, it answers, an error
//! included, and the model reads the answer. An agent is offered, and may call, only the tools
//! it was given.

pub mod command;
pub mod http_get;
pub mod mcp;
pub mod sql;
pub mod state;
pub mod workspace;

use crate::llm::ToolSpec;
use app::domain::ids::{AgentId, RunId};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::path::PathBuf;
use std::sync::Arc;
use workspace::Workspace;

/// What a tool answered.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolOutput {
    pub content: String,
    pub is_error: bool,
}

impl ToolOutput {
    fn from(result: Result<String, String>) -> Self {
        match result {
            Ok(content) => ToolOutput {
                content,
                is_error: false,
            },
            Err(content) => ToolOutput {
                content,
                is_error: true,
            },
        }
    }
}

/// The tools of `allowed`, as offered to a model.
pub fn specs_for(allowed: &[String]) -> Vec<ToolSpec> {
    specs()
        .into_iter()
        .filter(|s| allowed.contains(&s.name))
        .collect()
}

/// The built-in tools, as offered to a model.
pub fn specs() -> Vec<ToolSpec> {
    let spec = |name: &str, description: &str, schema: Value| ToolSpec {
        name: name.into(),
        description: description.into(),
        input_schema: schema,
    };
    let path = json!({"type": "string", "description": "A path relative to your workspace"});
    vec![
        spec(
            "read_file",
            "Read a text file from your workspace.",
            json!({"type": "object", "properties": {"path": path}, "required": ["path"]}),
        ),
        spec(
            "write_file",
            "Write a text file in your workspace (parent directories are created).",
            json!({"type": "object",
                   "properties": {"path": path, "content": {"type": "string"}},
                   "required": ["path", "content"]}),
        ),
        spec(
            "list_files",
            "List a directory of your workspace (the workspace itself when path is empty).",
            json!({"type": "object", "properties": {"path": path}}),
        ),
        spec(
            "http_get",
            "Fetch a public web page over http or https (internal addresses are refused).",
            json!({"type": "object", "properties": {"url": {"type": "string"}},
                   "required": ["url"]}),
        ),
        spec(
            "get_state",
            "Read a value the agents of this task share.",
            json!({"type": "object", "properties": {"key": {"type": "string"}},
                   "required": ["key"]}),
        ),
        spec(
            "set_state",
            "Store a value (any JSON) the agents of this task share, for ttl_secs (default a day).",
            json!({"type": "object",
                   "properties": {"key": {"type": "string"}, "value": {},
                                  "ttl_secs": {"type": "integer", "minimum": 1}},
                   "required": ["key", "value"]}),
        ),
        spec(
            "sql_query",
            "Run one read-only SQL statement (PostgreSQL) over the views agent_views.tasks, \
             agent_views.subtasks, agent_views.agents and agent_views.events; answers the rows \
             as JSON (at most 100).",
            json!({"type": "object", "properties": {"query": {"type": "string"}},
                   "required": ["query"]}),
        ),
        spec(
            "run_command",
            "Run a shell command (sh -c) in your workspace, without network, as a user of \
             your own; answers its exit code, stdout and stderr.",
            json!({"type": "object",
                   "properties": {"command": {"type": "string"},
                                  "timeout_secs": {"type": "integer", "minimum": 1,
                                                   "maximum": command::MAX_TIMEOUT_SECS}},
                   "required": ["command"]}),
        ),
    ]
}

/// What every agent's tools share in one process.
pub struct Services {
    pub http: http_get::HttpGet,
    pub sql: sql::SqlTool,
    pub commands: command::Commands,
}

/// One agent's tools for one attempt. The workspace is opened on the first file tool call.
pub struct Toolbox {
    pool: PgPool,
    run: RunId,
    agent: AgentId,
    root: PathBuf,
    workspace: Option<Arc<Workspace>>,
    services: Arc<Services>,
    allowed: Vec<String>,
    /// The attempt's connected MCP servers.
    mcp: Vec<mcp::Session>,
}

impl Toolbox {
    /// `workspaces` holds every agent's workspace; this agent's is `<workspaces>/<agent>`.
    pub fn new(
        pool: PgPool,
        run: RunId,
        workspaces: &std::path::Path,
        agent: AgentId,
        services: Arc<Services>,
        allowed: Vec<String>,
    ) -> Self {
        Self {
            pool,
            run,
            agent,
            root: workspaces.join(agent.to_string()),
            workspace: None,
            services,
            allowed,
            mcp: Vec::new(),
        }
    }

    /// Connects the agent's MCP servers and answers their tools to offer; a server that cannot
    /// be reached is left out, with the reason in `failures`.
    pub async fn connect_mcp(
        &mut self,
        servers: &[app::domain::agent::McpServer],
    ) -> (Vec<ToolSpec>, Vec<String>) {
        let mut failures = Vec::new();
        if !servers.is_empty() {
            // A stdio server starts in the workspace: it must exist first.
            if let Err(e) = self.on_files(|_| Ok(String::new())).await {
                failures.push(e);
                return (Vec::new(), failures);
            }
        }
        for server in servers {
            let s = &self.services;
            match mcp::Session::connect(server, &self.root, self.agent.0, &s.commands, &s.http)
                .await
            {
                Ok(session) => self.mcp.push(session),
                Err(e) => failures.push(format!("MCP server '{}': {e}", server.name)),
            }
        }
        let specs = self
            .mcp
            .iter()
            .flat_map(|s| s.tools().iter().cloned())
            .collect();
        (specs, failures)
    }

    /// Disconnects the MCP servers (a stdio server's sandbox is killed).
    pub async fn close(&mut self) {
        for session in self.mcp.drain(..) {
            session.close().await;
        }
    }

    pub async fn call(&mut self, name: &str, args: &Value) -> ToolOutput {
        if !args.is_object() {
            return ToolOutput::from(Err(format!(
                "the arguments of {name} must be a JSON object matching its inputSchema; got {}",
                truncate(&args.to_string(), 200)
            )));
        }
        if let Some(session) = self.mcp.iter().find(|s| s.offers(name)) {
            return session.call(name, args).await;
        }
        if !self.allowed.iter().any(|t| t == name) {
            let known = specs().iter().any(|s| s.name == name);
            return ToolOutput::from(Err(if known {
                format!("you were not given the tool '{name}'")
            } else {
                format!("there is no tool '{}'", truncate(name, 100))
            }));
        }
        let text = |field: &str| args.get(field).and_then(Value::as_str);
        ToolOutput::from(match name {
            "read_file" | "write_file" | "list_files" => {
                let path = text("path").unwrap_or_default().to_owned();
                let content = text("content").map(str::to_owned);
                if name == "write_file" && content.is_none() {
                    Err("write_file needs a string `content`".to_owned())
                } else if name != "list_files" && path.is_empty() {
                    Err(format!("{name} needs a string `path`"))
                } else {
                    let read = name == "read_file";
                    self.on_files(move |ws| match content {
                        Some(c) => ws.write_file(&path, &c),
                        None if read => ws.read_file(&path),
                        None => ws.list_files(&path),
                    })
                    .await
                }
            }
            "http_get" => match text("url") {
                Some(url) => self.services.http.get(url).await,
                None => Err("http_get needs a string `url`".into()),
            },
            "get_state" => match text("key") {
                Some(key) => state::get(&self.pool, self.run, key).await,
                None => Err("get_state needs a string `key`".into()),
            },
            "set_state" => match (text("key"), args.get("value")) {
                (Some(key), Some(value)) => {
                    let ttl = args.get("ttl_secs").and_then(Value::as_i64);
                    state::set(&self.pool, self.run, key, value, ttl).await
                }
                _ => Err("set_state needs a string `key` and a `value`".into()),
            },
            "sql_query" => match text("query") {
                Some(query) => self.services.sql.query(query).await,
                None => Err("sql_query needs a string `query`".into()),
            },
            "run_command" => match text("command") {
                Some(command) => self.run_command(command, args.get("timeout_secs")).await,
                None => Err("run_command needs a string `command`".into()),
            },
            other => Err(format!("there is no tool '{}'", truncate(other, 100))),
        })
    }

    async fn run_command(
        &mut self,
        command: &str,
        timeout: Option<&Value>,
    ) -> Result<String, String> {
        let timeout = match timeout {
            None => command::DEFAULT_TIMEOUT,
            Some(v) => match v.as_u64() {
                Some(secs @ 1..=command::MAX_TIMEOUT_SECS) => std::time::Duration::from_secs(secs),
                _ => {
                    return Err(format!(
                        "timeout_secs must be an integer from 1 to {}",
                        command::MAX_TIMEOUT_SECS
                    ));
                }
            },
        };
        // The workspace exists (with its layout) before it is handed to the command's user.
        self.on_files(|_| Ok(String::new())).await?;
        let outcome = self
            .services
            .commands
            .run(&self.root, self.agent.0, command, timeout)
            .await?;
        if outcome.exit_code == Some(0) {
            Ok(outcome.render())
        } else {
            Err(outcome.render())
        }
    }

    /// Runs a file operation off the async threads (the filesystem calls block).
    async fn on_files(
        &mut self,
        op: impl FnOnce(&Workspace) -> Result<String, String> + Send + 'static,
    ) -> Result<String, String> {
        let ws = match &self.workspace {
            Some(ws) => ws.clone(),
            None => {
                let root = self.root.clone();
                let opened = tokio::task::spawn_blocking(move || Workspace::open(&root))
                    .await
                    .map_err(|e| format!("the workspace could not be opened: {e}"))?
                    .map_err(|e| format!("the workspace could not be opened: {}", e.kind()))?;
                let ws = Arc::new(opened);
                self.workspace = Some(ws.clone());
                ws
            }
        };
        tokio::task::spawn_blocking(move || op(&ws))
            .await
            .map_err(|e| format!("the tool failed: {e}"))?
    }
}

/// At most `max` characters of `text`, with a marker saying how much was cut.
pub fn truncate(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max).collect();
    format!("{kept}… [{} more characters]", count - max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Whatever a model asks of a tool — any name, any JSON arguments — the tool answers,
        /// an error included, and never panics.
        #[test]
        fn any_tool_call_gets_an_answer(
            name in prop_oneof![
                Just("read_file".to_owned()), Just("write_file".to_owned()),
                Just("list_files".to_owned()), Just("get_state".to_owned()),
                Just("set_state".to_owned()), Just("http_get".to_owned()),
                Just("sql_query".to_owned()), Just("run_command".to_owned()), any::<String>(),
            ],
            args in crate::llm::tests::arbitrary_json(),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                // Nothing listens on port 1: the state tools answer with the database error.
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .acquire_timeout(std::time::Duration::from_millis(200))
                    .connect_lazy("postgres://nobody@127.0.0.1:1/none")
                    .unwrap();
                let root = std::env::temp_dir().join(format!("flotilla-tb-{}", uuid::Uuid::new_v4()));
                let services = Arc::new(Services {
                    http: http_get::HttpGet::new(http_get::Policy::default()).unwrap(),
                    sql: sql::SqlTool::new(pool.clone(), None),
                    commands: command::Commands::new(root.clone()),
                });
                let allowed = app::domain::agent::default_tools();
                let mut tb = Toolbox::new(pool, RunId(uuid::Uuid::nil()), &root, AgentId(uuid::Uuid::nil()), services, allowed);
                let _ = tb.call(&name, &args).await;
                let _ = std::fs::remove_dir_all(&root);
            });
        }
    }
}
