//! OpenAPI schemas for request fields whose rules a type cannot state: each is the validator's
//! rule written as a pattern ([`crate::domain::text::pattern`]), so the document and the
//! server agree on what is accepted.

use crate::domain::agent::{CAPABILITIES, TOOLS};
use crate::domain::text::pattern;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{Object, RefOr, Schema};

/// An optional field: absent and `null` both mean the default.
fn nullable(b: ObjectBuilder) -> Object {
    b.schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .build()
}

fn text(pattern: String, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
}

/// A trimmed one-line field of 1 to `max` characters.
pub fn one_line(max: usize, description: &str) -> ObjectBuilder {
    text(
        pattern::one_line(max),
        &format!("{description} 1 to {max} characters after trimming, no control characters."),
    )
}

pub fn agent_name() -> Object {
    one_line(64, "The agent's name.").build()
}

pub fn model_name() -> Object {
    nullable(one_line(
        crate::commands::MAX_MODEL,
        "The model (default: the provider's name).",
    ))
}

pub fn token_name() -> Object {
    nullable(one_line(100, "What the token is for (default: `script`)."))
}

pub fn system_prompt() -> Object {
    let b = text(
        pattern::prose(),
        "Instructions the agent starts from; line breaks and tabs allowed, no other controls.",
    )
    .max_length(Some(crate::commands::MAX_SYSTEM_PROMPT));
    nullable(b)
}

pub fn task_description() -> Object {
    text(
        pattern::trimmed(10, 5000, pattern::PROSE_CONTROL, false),
        "What to do: 10 to 5000 characters after trimming; line breaks and tabs allowed.",
    )
    .build()
}

pub fn username() -> Object {
    text(
        format!(
            "^[{ws}]*[A-Za-z0-9][A-Za-z0-9._-]{{2,31}}[{ws}]*$",
            ws = pattern::WS
        ),
        "3 to 32 of a-z, 0-9, `.`, `_`, `-`, starting with a letter or digit (stored lowercased).",
    )
    .build()
}

pub fn new_password() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(crate::domain::account::NewPassword::MIN))
        .max_length(Some(crate::domain::account::NewPassword::MAX))
        .description(Some("12 to 128 characters."))
        .build()
}

pub fn provider() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .max_length(Some(64))
        .description(Some(
            "The model provider by name: `simulated` (the default, the built-in offline test \
             model), one declared by environment (`anthropic`, `openai`) or one an admin added \
             under /providers. An unknown name is refused with 422.",
        ))
        .build()
}

pub fn capabilities() -> RefOr<Schema> {
    ArrayBuilder::new()
        .items(text(pattern::one_of(&CAPABILITIES, false), "A capability.").build())
        .min_items(Some(1))
        .description(Some(format!(
            "At least one of: {}.",
            CAPABILITIES.join(", ")
        )))
        .build()
        .into()
}

pub fn tools() -> RefOr<Schema> {
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(text(pattern::one_of(&TOOLS, false), "A tool.").build())
        .description(Some(format!(
            "The tools the agent's model is offered, any of: {} (default: all but \
             `run_command`, which only an admin may give; an empty list gives none).",
            TOOLS.join(", ")
        )))
        .build()
        .into()
}

pub fn workflow_name() -> Object {
    nullable(one_line(
        crate::domain::workflow::MAX_NAME,
        "The workflow's name (default: the template's, or \"Untitled workflow\").",
    ))
}

/// A prose field of a workflow (description, version message).
fn workflow_prose(max: usize, description: &str) -> Object {
    nullable(text(pattern::prose(), description).max_length(Some(max)))
}

pub fn workflow_description() -> Object {
    workflow_prose(
        crate::domain::workflow::MAX_TEXT,
        "What the workflow is for; line breaks and tabs allowed.",
    )
}

pub fn version_message() -> Object {
    workflow_prose(1000, "What changed in this version, for the history.")
}

pub fn decision_comment() -> Object {
    workflow_prose(
        2000,
        "Why, for the run's record; line breaks and tabs allowed.",
    )
}

/// `from_template`: a built-in template's slug or a saved template's id.
pub fn template_ref() -> Object {
    let slugs: Vec<&str> = crate::domain::workflow::builtin_templates()
        .iter()
        .map(|t| t.slug)
        .collect();
    let hex = |n: usize| format!("[0-9a-fA-F]{{{n}}}");
    let uuid = format!("{}-{}-{}-{}-{}", hex(8), hex(4), hex(4), hex(4), hex(12));
    nullable(text(
        format!("^({}|{uuid})$", slugs.join("|")),
        "A built-in template's slug (see `GET /workflow-templates`) or a saved template's id.",
    ))
}

pub fn export_name() -> Object {
    one_line(crate::domain::workflow::MAX_NAME, "The workflow's name.").build()
}

pub fn export_description() -> Object {
    text(
        pattern::prose(),
        "What the workflow is for; line breaks and tabs allowed.",
    )
    .max_length(Some(crate::domain::workflow::MAX_TEXT))
    .build()
}
