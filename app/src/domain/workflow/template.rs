//! Prompt and argument templates: `{{inputs.<name>}}` and `{{nodes.<key>.output}}`, nothing
//! else. Validation reads the references; a run renders them with the values it has.

use serde_json::{Map, Value};
use std::collections::HashMap;

/// What one `{{…}}` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    Input(String),
    NodeOutput(String),
}

/// The `{{…}}` spans of a template: byte ranges of the whole span and what each names.
fn spans(text: &str) -> Result<Vec<(usize, usize, Reference)>, String> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(open) = text[from..].find("{{").map(|i| from + i) {
        let Some(close) = text[open + 2..].find("}}").map(|i| open + 2 + i) else {
            return Err("a '{{' is never closed with '}}'".into());
        };
        let inner = text[open + 2..close].trim();
        let parts: Vec<&str> = inner.split('.').collect();
        let reference = match parts.as_slice() {
            ["inputs", name] if !name.is_empty() => Reference::Input((*name).to_owned()),
            ["nodes", key, "output"] if !key.is_empty() => Reference::NodeOutput((*key).to_owned()),
            _ => {
                let shown: String = inner.chars().take(80).collect();
                return Err(format!(
                    "'{{{{{shown}}}}}' is not a reference (use {{{{inputs.<name>}}}} or \
                     {{{{nodes.<key>.output}}}})"
                ));
            }
        };
        out.push((open, close + 2, reference));
        from = close + 2;
    }
    Ok(out)
}

/// The references of a template, in order, or why it does not parse.
pub fn references(text: &str) -> Result<Vec<Reference>, String> {
    Ok(spans(text)?.into_iter().map(|(_, _, r)| r).collect())
}

/// The template with each reference replaced: a string input as itself, any other input as
/// JSON, a node's output as its text. A reference without a value (which validation and input
/// checks rule out) renders empty; a template that does not parse is returned as written.
pub fn render(
    text: &str,
    inputs: &Map<String, Value>,
    outputs: &HashMap<String, String>,
) -> String {
    let Ok(spans) = spans(text) else {
        return text.to_owned();
    };
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end, reference) in spans {
        out.push_str(&text[at..start]);
        match reference {
            Reference::Input(name) => match inputs.get(&name) {
                Some(Value::String(s)) => out.push_str(s),
                Some(other) => out.push_str(&other.to_string()),
                None => {}
            },
            Reference::NodeOutput(key) => {
                if let Some(o) = outputs.get(&key) {
                    out.push_str(o);
                }
            }
        }
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

/// `map` with each string value rendered as a template (tool arguments, sub-workflow inputs:
/// only top-level strings are templates, see [`super::Step::templates`]).
pub fn render_strings(
    map: &Map<String, Value>,
    inputs: &Map<String, Value>,
    outputs: &HashMap<String, String>,
) -> Map<String, Value> {
    map.iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => Value::String(render(s, inputs, outputs)),
                other => other.clone(),
            };
            (k.clone(), v)
        })
        .collect()
}

/// The template with each `{{nodes.<old>.output}}` naming a key in `renamed` rewritten to the
/// new key, in one pass (so a chain of renames never applies twice).
pub fn rename_nodes(text: &str, renamed: &HashMap<String, String>) -> String {
    let Ok(spans) = spans(text) else {
        return text.to_owned();
    };
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end, reference) in spans {
        if let Reference::NodeOutput(key) = reference
            && let Some(new) = renamed.get(&key)
        {
            out.push_str(&text[at..start]);
            out.push_str(&format!("{{{{nodes.{new}.output}}}}"));
            at = end;
        }
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn references_are_read_in_order() {
        let refs =
            references("Summarise {{ inputs.topic }} using {{nodes.fetch.output}}.").unwrap();
        assert_eq!(
            refs,
            vec![
                Reference::Input("topic".into()),
                Reference::NodeOutput("fetch".into())
            ]
        );
        assert_eq!(references("no references at all"), Ok(vec![]));
    }

    #[test]
    fn malformed_references_are_refused_with_a_reason() {
        assert!(
            references("{{inputs.topic")
                .unwrap_err()
                .contains("never closed")
        );
        for bad in [
            "{{secrets.key}}",
            "{{nodes.a}}",
            "{{inputs.}}",
            "{{}}",
            "{{nodes.a.error}}",
        ] {
            assert!(
                references(bad).unwrap_err().contains("not a reference"),
                "{bad}"
            );
        }
    }

    #[test]
    fn render_fills_inputs_and_outputs() {
        let inputs = json!({"topic": "tides", "n": 3})
            .as_object()
            .unwrap()
            .clone();
        let outputs = HashMap::from([("a".to_owned(), "the answer".to_owned())]);
        assert_eq!(
            render(
                "{{inputs.topic}} x{{inputs.n}}: {{ nodes.a.output }}!",
                &inputs,
                &outputs
            ),
            "tides x3: the answer!"
        );
    }

    #[test]
    fn renames_apply_once_each() {
        let renamed = HashMap::from([
            ("a".to_owned(), "b".to_owned()),
            ("b".to_owned(), "c".to_owned()),
        ]);
        assert_eq!(
            rename_nodes(
                "{{nodes.a.output}} {{ nodes.b.output }} {{inputs.a}}",
                &renamed
            ),
            "{{nodes.b.output}} {{nodes.c.output}} {{inputs.a}}"
        );
    }

    proptest! {
        #[test]
        fn any_text_parses_or_is_refused_never_panics(text in "\\PC{0,60}") {
            let _ = references(&text);
            let _ = render(&text, &Map::new(), &HashMap::new());
        }

        /// Tool arguments and sub-workflow inputs from any JSON, rendered with any outputs
        /// (model text): every key stays, only strings change.
        #[test]
        fn any_arguments_render_keeping_their_shape(
            args in super::super::tests::arbitrary_json(),
            output in "\\PC{0,40}",
        ) {
            let Value::Object(args) = args else { return Ok(()) };
            let outputs = HashMap::from([("a".to_owned(), output)]);
            let out = render_strings(&args, &Map::new(), &outputs);
            prop_assert_eq!(out.len(), args.len());
            for (k, v) in &args {
                prop_assert_eq!(out[k].is_string(), v.is_string());
                if !v.is_string() {
                    prop_assert_eq!(&out[k], v);
                }
            }
        }

        #[test]
        fn text_without_braces_renders_as_itself(text in "[^{}]{0,60}") {
            prop_assert_eq!(render(&text, &Map::new(), &HashMap::new()), text);
        }
    }
}
