//! Workflows: stored, versioned DAG definitions a person draws. This module holds the
//! definition as saved and exported (schema version [`SCHEMA_VERSION`]); [`validate`] holds the
//! one set of rules the browser and the server both run.

mod builtin;
mod condition;
pub mod editor;
mod runs;
mod stored;
mod template;
mod validate;

#[cfg(test)]
pub(crate) mod tests;

pub use builtin::{BuiltinTemplate, builtin_templates};
pub use condition::{Condition, JsonPath, OPS, Test};
pub use runs::{RunDetail, RunNode, RunSummary};
pub use stored::{VersionSummary, WorkflowDetail, WorkflowState, WorkflowSummary};
pub use template::{Reference, references, rename_nodes, render, render_strings};
pub use validate::{
    Catalog, Issue, IssueCode, SubworkflowInfo, Target, check_inputs, upstream, validate,
    would_close_cycle,
};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// The export format this build writes and reads; an import naming another is refused.
pub const SCHEMA_VERSION: u32 = 1;
/// The most nodes a workflow may have (the editor is built for 500; validation is measured at
/// 10,000).
pub const MAX_NODES: usize = 10_000;
/// The most edges a workflow may have.
pub const MAX_EDGES: usize = 20_000;
/// The most declared inputs.
pub const MAX_INPUTS: usize = 64;
/// The longest node key, input name or capability, in characters.
pub const MAX_KEY: usize = 64;
/// The longest workflow name, in characters.
pub const MAX_NAME: usize = 200;
/// The longest prompt template, description or templated argument, in characters.
pub const MAX_TEXT: usize = 20_000;
/// The tools a tool step may call (the agent tool loop's set, MCP-shaped).
pub use super::agent::TOOLS;

/// A workflow as stored in one version: everything needed to run or redraw it.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    #[serde(default)]
    pub inputs: Vec<InputDecl>,
    #[serde(default)]
    pub nodes: Vec<Node>,
    #[serde(default)]
    pub edges: Vec<Edge>,
}

/// A declared input: runs supply it (or take its default) and templates read it as
/// `{{inputs.<name>}}`.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputDecl {
    pub name: String,
    #[serde(rename = "type", default)]
    pub ty: InputType,
    /// A run must supply it when it has no default.
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputType {
    #[default]
    String,
    Number,
    Boolean,
    Json,
}

impl InputType {
    /// Whether a JSON value is of this type.
    pub fn admits(self, value: &Value) -> bool {
        match self {
            InputType::String => value.is_string(),
            InputType::Number => value.is_number(),
            InputType::Boolean => value.is_boolean(),
            InputType::Json => true,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InputType::String => "string",
            InputType::Number => "number",
            InputType::Boolean => "boolean",
            InputType::Json => "json",
        }
    }
}

/// Where a node sits on the canvas (canvas units, not pixels).
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub x: f64,
    pub y: f64,
}

/// One node of the graph: a key unique in the workflow, its place on the canvas and its step.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "NodeIn")]
pub struct Node {
    pub key: String,
    #[serde(default)]
    pub position: Position,
    #[serde(flatten)]
    pub step: Step,
}

/// A node as read, before its step's tag is checked.
#[derive(Deserialize)]
struct NodeIn {
    key: String,
    #[serde(default)]
    position: Position,
    #[serde(flatten)]
    step: Map<String, Value>,
}

/// serde reads an internally tagged enum's tag as the variant's index when it is a number
/// (`"kind": 0` would be an agent step); here a tag must be its name.
fn named_tag(fields: &Map<String, Value>, tag: &str) -> Result<(), String> {
    match fields.get(tag) {
        Some(Value::String(_)) => Ok(()),
        Some(_) => Err(format!("`{tag}` must be a string")),
        None => Err(format!("missing field `{tag}`")),
    }
}

impl TryFrom<NodeIn> for Node {
    type Error = String;

    fn try_from(n: NodeIn) -> Result<Self, String> {
        named_tag(&n.step, "kind")?;
        let step = serde_json::from_value(Value::Object(n.step)).map_err(|e| e.to_string())?;
        Ok(Node {
            key: n.key,
            position: n.position,
            step,
        })
    }
}

/// What a node does, by `kind`.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    /// An agent answers a prompt: any idle agent with `capability`, or the agent named `agent`.
    Agent {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        capability: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
        prompt: String,
    },
    /// One tool call; string arguments are templates.
    Tool {
        tool: String,
        #[serde(default)]
        arguments: Map<String, Value>,
    },
    /// Waits for a person to approve or reject; `prompt` tells them what they decide.
    Approval {
        #[serde(default)]
        prompt: String,
    },
    /// Runs a pinned version of another workflow; each of its inputs is a template here.
    Workflow {
        workflow_id: Uuid,
        #[serde(deserialize_with = "crate::domain::number::integral_i32")]
        version: i32,
        #[serde(default)]
        inputs: Map<String, Value>,
    },
}

impl Step {
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Agent { .. } => "agent",
            Step::Tool { .. } => "tool",
            Step::Approval { .. } => "approval",
            Step::Workflow { .. } => "workflow",
        }
    }

    /// The template texts of this step, with the field each sits in.
    pub fn templates(&self) -> Vec<(String, &str)> {
        match self {
            Step::Agent { prompt, .. } | Step::Approval { prompt } => {
                vec![("prompt".to_owned(), prompt.as_str())]
            }
            Step::Tool { arguments: map, .. } => map
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (format!("arguments.{k}"), s)))
                .collect(),
            Step::Workflow { inputs: map, .. } => map
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (format!("inputs.{k}"), s)))
                .collect(),
        }
    }
}

/// A dependency: `to` runs after `from` and, with a condition, only when `from`'s output
/// satisfies it (otherwise the edge is inactive, see [`validate`]).
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "EdgeIn")]
pub struct Edge {
    pub from: String,
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
}

/// An edge as read, before its condition's tag is checked.
#[derive(Deserialize)]
struct EdgeIn {
    from: String,
    to: String,
    #[serde(default)]
    condition: Option<Map<String, Value>>,
}

impl TryFrom<EdgeIn> for Edge {
    type Error = String;

    fn try_from(e: EdgeIn) -> Result<Self, String> {
        let condition = match e.condition {
            None => None,
            Some(c) => {
                named_tag(&c, "op")?;
                Some(serde_json::from_value(Value::Object(c)).map_err(|e| e.to_string())?)
            }
        };
        Ok(Edge {
            from: e.from,
            to: e.to,
            condition,
        })
    }
}

/// A workflow as exported: the definition with its name and the format's version.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Export {
    /// The format's version; this build reads 1.
    #[cfg_attr(feature = "ssr", schema(minimum = 1, maximum = 1))]
    #[serde(deserialize_with = "crate::domain::number::integral_u32")]
    pub schema_version: u32,
    #[cfg_attr(feature = "ssr", schema(schema_with = crate::api::schema::export_name))]
    pub name: String,
    #[serde(default)]
    #[cfg_attr(feature = "ssr", schema(schema_with = crate::api::schema::export_description))]
    pub description: String,
    pub definition: Definition,
}

impl Export {
    /// Reads an export, refusing a format version this build does not know before anything
    /// else is looked at.
    pub fn parse(raw: &Value) -> Result<Self, String> {
        let whole = |v: &Value| v.as_f64().filter(|f| f.fract() == 0.0);
        match raw.get("schema_version").map(whole) {
            None => return Err("an export names its schema_version".into()),
            Some(Some(v)) if v == f64::from(SCHEMA_VERSION) => {}
            Some(Some(v)) => {
                return Err(format!(
                    "schema_version {v} is not supported (this Flotilla reads {SCHEMA_VERSION})"
                ));
            }
            Some(None) => return Err("schema_version must be a whole number".into()),
        }
        serde_json::from_value(raw.clone()).map_err(|e| format!("not a workflow export: {e}"))
    }
}
