//! The templates that ship with Flotilla, kept as export files beside this module.

use super::Export;

/// A built-in template: a stable slug and the workflow it instantiates.
#[derive(Clone, Debug, PartialEq)]
pub struct BuiltinTemplate {
    pub slug: &'static str,
    pub export: Export,
}

const SOURCES: [(&str, &str); 3] = [
    (
        "research-brief",
        include_str!("templates/research-brief.json"),
    ),
    ("code-change", include_str!("templates/code-change.json")),
    (
        "data-pipeline",
        include_str!("templates/data-pipeline.json"),
    ),
];

/// Every built-in template (a test proves each parses and validates).
pub fn builtin_templates() -> Vec<BuiltinTemplate> {
    SOURCES
        .iter()
        .filter_map(|(slug, raw)| {
            let value = serde_json::from_str(raw).ok()?;
            let export = Export::parse(&value).ok()?;
            Some(BuiltinTemplate { slug, export })
        })
        .collect()
}
