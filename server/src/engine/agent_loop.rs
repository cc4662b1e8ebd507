//! One attempt of a subtask: the agent's model is called with the subtask and its
//! prerequisites' outputs (within the context budget), may call tools, and goes on until it
//! answers or the step limit is reached. Each tool call and result is an event (truncated); the
//! whole conversation is the attempt's transcript.

use super::Engine;
use super::meter::Meter;
use crate::llm::{Block, ChatRequest, LlmError, Message, Purpose, Role};
use crate::tools::{self, Toolbox};
use app::db::events::{self, NewEvent};
use app::db::queue::{ClaimedNode, ToolCall};
use app::domain::event::{EventKind, Severity};
use serde_json::{Value, json};

const EXECUTE_PROMPT: &str = include_str!("../../prompts/execute.txt");

/// How much of a tool's arguments or result an event carries.
const EVENT_TEXT: usize = 500;

/// Why an attempt failed.
#[derive(Debug)]
pub struct AttemptError {
    pub message: String,
    /// The provider refused the agent's configuration: the agent goes to `error`.
    pub agent_config: bool,
    /// Retrying cannot help (the step limit was reached): the subtask fails now.
    pub final_: bool,
}

impl From<LlmError> for AttemptError {
    fn from(e: LlmError) -> Self {
        AttemptError {
            agent_config: matches!(e, LlmError::Fatal { config: true, .. }),
            // Another attempt would meet the same cap.
            final_: matches!(e, LlmError::OverBudget(_)),
            message: e.to_string(),
        }
    }
}

impl From<String> for AttemptError {
    fn from(message: String) -> Self {
        AttemptError {
            message,
            agent_config: false,
            final_: false,
        }
    }
}

/// The subtask and its prerequisites' outputs, each cut to its share of `budget` characters.
pub fn execution_prompt(node: &ClaimedNode, budget: usize) -> String {
    let mut prompt = EXECUTE_PROMPT
        .trim_end()
        .replace("{key}", &node.key)
        .replace("{description}", &node.description);
    let share = budget / node.context.len().max(1);
    for (i, c) in node.context.iter().enumerate() {
        prompt.push_str(&format!(
            "\n\nResult of prerequisite {}:\n{}",
            i + 1,
            tools::truncate(c, share)
        ));
    }
    prompt
}

impl Engine {
    /// Runs the attempt to its answer. `transcript` holds the conversation so far, whatever
    /// happens.
    pub(super) async fn attempt(
        &self,
        node: &ClaimedNode,
        meter: &mut Meter,
        transcript: &mut Vec<Message>,
    ) -> Result<String, AttemptError> {
        if let Some(call) = &node.tool_call {
            return self.tool_step(node, call, transcript).await;
        }
        let mut req = ChatRequest::new(
            node.model.clone(),
            node.system_prompt.clone(),
            execution_prompt(node, self.config.context_budget),
        );
        req.purpose = Some(Purpose::Execute {
            description: node.description.clone(),
            context: node.context.clone(),
            attempt: node.attempt,
        });
        let mut toolbox = self.toolbox(node, node.tools.clone());
        // The simulated model calls no tools; a real one gets the agent's and its MCP servers'.
        let simulated = meter.handle().simulated;
        if !simulated {
            req.tools = tools::specs_for(&node.tools);
            let (extra, failures) = toolbox.connect_mcp(&node.mcp_servers).await;
            req.tools.extend(extra);
            for reason in failures {
                self.tool_event(
                    node,
                    EventKind::ToolResult,
                    json!({"tool": "mcp", "is_error": true, "result": reason}),
                )
                .await;
            }
        }
        let with_tools = !req.tools.is_empty();
        let answer = self
            .steps(node, meter, transcript, &mut req, &mut toolbox, with_tools)
            .await;
        toolbox.close().await;
        answer
    }

    /// The model's steps until it answers (calling tools when it has some) or the step limit.
    async fn steps(
        &self,
        node: &ClaimedNode,
        meter: &mut Meter,
        transcript: &mut Vec<Message>,
        req: &mut ChatRequest,
        toolbox: &mut Toolbox,
        with_tools: bool,
    ) -> Result<String, AttemptError> {
        *transcript = req.messages.clone();
        for _ in 0..self.config.max_steps {
            let answer = meter.chat(req).await?;
            let message = Message {
                role: Role::Assistant,
                content: answer.content.clone(),
            };
            transcript.push(message.clone());
            let calls: Vec<(String, String, Value)> = answer
                .tool_calls()
                .map(|(id, name, args)| (id.to_owned(), name.to_owned(), args.clone()))
                .collect();
            if calls.is_empty() || !with_tools {
                return Ok(answer.text());
            }
            req.messages.push(message);
            let mut results = Vec::with_capacity(calls.len());
            for (id, name, args) in calls {
                self.tool_event(
                    node,
                    EventKind::ToolCalled,
                    json!({
                        "tool": name, "call_id": id,
                        "arguments": tools::truncate(&args.to_string(), EVENT_TEXT),
                    }),
                )
                .await;
                let out = toolbox.call(&name, &args).await;
                self.tool_event(
                    node,
                    EventKind::ToolResult,
                    json!({
                        "tool": name, "call_id": id, "is_error": out.is_error,
                        "result": tools::truncate(&out.content, EVENT_TEXT),
                    }),
                )
                .await;
                results.push(Block::ToolResult {
                    call_id: id,
                    content: out.content,
                    is_error: out.is_error,
                });
            }
            let results = Message {
                role: Role::User,
                content: results,
            };
            transcript.push(results.clone());
            req.messages.push(results);
        }
        Err(AttemptError {
            message: format!(
                "the agent made {} model calls without answering (the step limit)",
                self.config.max_steps
            ),
            agent_config: false,
            final_: true,
        })
    }

    /// The node's agent's tools for this attempt, `allowed` among them.
    fn toolbox(&self, node: &ClaimedNode, allowed: Vec<String>) -> Toolbox {
        Toolbox::new(
            self.pool.clone(),
            node.run_id,
            &self.config.workspaces_dir,
            node.agent_id,
            self.tools.clone(),
            allowed,
        )
    }

    /// A workflow's tool step: its one call, made with the assigned agent's workspace and only
    /// that tool (the run's start checked who may call it). The tool's answer is the output; an
    /// error answer fails the attempt and the retry policy applies.
    async fn tool_step(
        &self,
        node: &ClaimedNode,
        call: &ToolCall,
        transcript: &mut Vec<Message>,
    ) -> Result<String, AttemptError> {
        let mut toolbox = self.toolbox(node, vec![call.tool.clone()]);
        let args = Value::Object(call.arguments.clone());
        let id = format!("step-{}", node.key);
        self.tool_event(
            node,
            EventKind::ToolCalled,
            json!({
                "tool": call.tool, "call_id": id,
                "arguments": tools::truncate(&args.to_string(), EVENT_TEXT),
            }),
        )
        .await;
        let out = toolbox.call(&call.tool, &args).await;
        toolbox.close().await;
        self.tool_event(
            node,
            EventKind::ToolResult,
            json!({
                "tool": call.tool, "call_id": id, "is_error": out.is_error,
                "result": tools::truncate(&out.content, EVENT_TEXT),
            }),
        )
        .await;
        transcript.push(Message {
            role: Role::Assistant,
            content: vec![Block::ToolCall {
                id: id.clone(),
                name: call.tool.clone(),
                arguments: args,
            }],
        });
        transcript.push(Message {
            role: Role::User,
            content: vec![Block::ToolResult {
                call_id: id,
                content: out.content.clone(),
                is_error: out.is_error,
            }],
        });
        if out.is_error {
            Err(AttemptError::from(format!(
                "{} answered an error: {}",
                call.tool,
                tools::truncate(&out.content, EVENT_TEXT)
            )))
        } else {
            Ok(out.content)
        }
    }

    /// Records a tool call or result. A lost event loses no work: the transcript has it.
    async fn tool_event(&self, node: &ClaimedNode, kind: EventKind, data: Value) {
        let severity = if data.get("is_error") == Some(&Value::Bool(true)) {
            Severity::Warning
        } else {
            Severity::Info
        };
        let event = NewEvent::new(kind, format!("subtask/{}", node.id))
            .severity(severity)
            .agent(node.agent_id)
            .run(node.run_id)
            .node(node.id)
            .data(data);
        let stored = async {
            let mut conn = self.pool.acquire().await?;
            events::append(&mut conn, event).await
        };
        if let Err(e) = stored.await {
            tracing::warn!(node = %node.id, error = %e, "could not record a tool event");
        }
    }
}
