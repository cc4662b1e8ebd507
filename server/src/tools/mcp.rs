//! MCP servers attached to an agent, through the official SDK (rmcp, client side): connected at
//! the start of an attempt, their tools listed and offered to the model as `<server>__<tool>`,
//! called when the model asks, disconnected when the attempt ends. A stdio server is a command,
//! so it runs in `run_command`'s sandbox (its own uid, no network, the server's files hidden)
//! over that child's pipes; an HTTP server is reached with `http_get`'s client and checks
//! (internal addresses refused, by URL, by DNS and on redirects).

use super::ToolOutput;
use super::command::Commands;
use super::http_get::HttpGet;
use crate::llm::ToolSpec;
use app::domain::agent::McpServer;
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// Separates a server's name from its tool's in the names models see.
pub const SEPARATOR: &str = "__";
/// How long connecting (start, handshake, listing) and one call may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// CPU seconds a stdio server may use over an attempt.
const SERVER_CPU_SECS: u64 = 600;
/// Tools one server may contribute.
const MAX_TOOLS: usize = 64;

/// One connected server and the tools it listed.
pub struct Session {
    name: String,
    client: RunningService<RoleClient, ()>,
    tools: Vec<ToolSpec>,
    /// The stdio server's sandbox, killed with the session.
    _child: Option<tokio::process::Child>,
}

impl Session {
    /// Starts or reaches `server` and lists its tools.
    pub async fn connect(
        server: &McpServer,
        workspace: &Path,
        agent: uuid::Uuid,
        commands: &Commands,
        http: &HttpGet,
    ) -> Result<Self, String> {
        let connecting = async {
            match (&server.command, &server.url) {
                (Some(command), _) => {
                    let mut child = commands
                        .spawn(workspace, agent, command, SERVER_CPU_SECS, Stdio::piped())
                        .await?;
                    let (Some(stdout), Some(stdin)) = (child.stdout.take(), child.stdin.take())
                    else {
                        return Err("the server's pipes could not be opened".to_owned());
                    };
                    let client = ().serve((stdout, stdin)).await.map_err(|e| e.to_string())?;
                    Ok((client, Some(child)))
                }
                (None, Some(url)) => {
                    let client = http.checked_client(url)?;
                    let transport = StreamableHttpClientTransport::with_client(
                        client,
                        StreamableHttpClientTransportConfig::with_uri(url.as_str()),
                    );
                    let client = ().serve(transport).await.map_err(|e| e.to_string())?;
                    Ok((client, None))
                }
                (None, None) => Err("the server has neither a command nor a url".to_owned()),
            }
        };
        let (client, child) = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))??;
        let listed = tokio::time::timeout(CONNECT_TIMEOUT, client.list_all_tools())
            .await
            .map_err(|_| "listing its tools took too long".to_owned())?
            .map_err(|e| format!("listing its tools failed: {e}"))?;
        let tools = listed
            .into_iter()
            .take(MAX_TOOLS)
            .map(|t| ToolSpec {
                name: format!("{}{SEPARATOR}{}", server.name, t.name),
                description: t.description.map(|d| d.into_owned()).unwrap_or_default(),
                input_schema: Value::Object((*t.input_schema).clone()),
            })
            .collect();
        Ok(Self {
            name: server.name.clone(),
            client,
            tools,
            _child: child,
        })
    }

    pub fn tools(&self) -> &[ToolSpec] {
        &self.tools
    }

    /// Whether `name` (as the model sees it) is one of this server's tools.
    pub fn offers(&self, name: &str) -> bool {
        self.tools.iter().any(|t| t.name == name)
    }

    /// Calls the tool the model named `name`; its text content is the answer.
    pub async fn call(&self, name: &str, args: &Value) -> ToolOutput {
        let tool = name
            .strip_prefix(&self.name)
            .and_then(|n| n.strip_prefix(SEPARATOR))
            .unwrap_or(name)
            .to_owned();
        let mut params = CallToolRequestParams::new(tool);
        if let Value::Object(map) = args {
            params = params.with_arguments(map.clone());
        }
        let answered = tokio::time::timeout(CALL_TIMEOUT, self.client.call_tool(params)).await;
        match answered {
            Ok(Ok(result)) => {
                let text: Vec<String> = result
                    .content
                    .iter()
                    .map(|block| match block.as_text() {
                        Some(t) => t.text.clone(),
                        None => serde_json::to_string(block).unwrap_or_default(),
                    })
                    .collect();
                ToolOutput {
                    content: text.join("\n"),
                    is_error: result.is_error.unwrap_or(false),
                }
            }
            Ok(Err(e)) => ToolOutput {
                content: format!("the MCP server '{}' failed the call: {e}", self.name),
                is_error: true,
            },
            Err(_) => ToolOutput {
                content: format!(
                    "the MCP server '{}' did not answer within {} s",
                    self.name,
                    CALL_TIMEOUT.as_secs()
                ),
                is_error: true,
            },
        }
    }

    /// Ends the session (the stdio server's sandbox is killed when the session drops).
    pub async fn close(self) {
        let _ = self.client.cancel().await;
    }
}
