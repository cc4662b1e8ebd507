//! Conditions on edges: a test of the upstream node's output. The syntax is checked when a
//! workflow is validated; at run time a test that cannot apply (output not JSON, path absent)
//! is false, never an error.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The longest pattern or path, in characters.
pub const MAX_PATTERN: usize = 1000;

/// A test of the upstream output, optionally negated (`negate: true` makes an "else" branch).
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    #[serde(flatten)]
    pub test: Test,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub negate: bool,
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Test {
    /// The output, trimmed, is exactly `value`.
    Equals { value: String },
    /// The output contains `value`.
    Contains { value: String },
    /// The output matches the regular expression `pattern` (Rust `regex` syntax).
    Matches { pattern: String },
    /// The output is JSON and the value at `path` (`$.a.b[0]`) equals `equals`.
    JsonPath { path: String, equals: Value },
}

impl Condition {
    /// Why this condition cannot be evaluated, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        match &self.test {
            Test::Equals { .. } | Test::Contains { .. } => Ok(()),
            Test::Matches { pattern } => {
                if pattern.chars().count() > MAX_PATTERN {
                    return Err(format!(
                        "the pattern is longer than {MAX_PATTERN} characters"
                    ));
                }
                regex_lite::Regex::new(pattern)
                    .map(|_| ())
                    .map_err(|e| format!("the pattern is not a regular expression: {e}"))
            }
            Test::JsonPath { path, .. } => JsonPath::parse(path).map(|_| ()),
        }
    }

    /// Whether `output` satisfies the condition.
    pub fn holds(&self, output: &str) -> bool {
        let hit = match &self.test {
            Test::Equals { value } => output.trim() == value,
            Test::Contains { value } => output.contains(value.as_str()),
            Test::Matches { pattern } => {
                regex_lite::Regex::new(pattern).is_ok_and(|re| re.is_match(output))
            }
            Test::JsonPath { path, equals } => {
                match (JsonPath::parse(path), serde_json::from_str::<Value>(output)) {
                    (Ok(path), Ok(doc)) => path.lookup(&doc) == Some(equals),
                    _ => false,
                }
            }
        };
        hit != self.negate
    }
}

/// The operators a condition may use, by name (the editor's choices).
pub const OPS: [&str; 4] = ["equals", "contains", "matches", "json_path"];

impl Condition {
    /// A condition from the editor's fields: the operator (empty for none), its text (value,
    /// pattern or path), the JSON a path's value must equal, and the negation. Checked like
    /// a saved one.
    pub fn from_parts(
        op: &str,
        text: &str,
        equals: &str,
        negate: bool,
    ) -> Result<Option<Condition>, String> {
        let text = text.to_owned();
        let test = match op {
            "" => return Ok(None),
            "equals" => Test::Equals { value: text },
            "contains" => Test::Contains { value: text },
            "matches" => Test::Matches { pattern: text },
            "json_path" => Test::JsonPath {
                path: text,
                equals: serde_json::from_str(equals)
                    .map_err(|e| format!("the value to equal is not JSON: {e}"))?,
            },
            other => return Err(format!("there is no operator '{other}'")),
        };
        let c = Condition { test, negate };
        c.check()?;
        Ok(Some(c))
    }

    /// The editor's fields of this condition (see [`Condition::from_parts`]).
    pub fn parts(&self) -> (&'static str, String, String) {
        match &self.test {
            Test::Equals { value } => ("equals", value.clone(), String::new()),
            Test::Contains { value } => ("contains", value.clone(), String::new()),
            Test::Matches { pattern } => ("matches", pattern.clone(), String::new()),
            Test::JsonPath { path, equals } => ("json_path", path.clone(), equals.to_string()),
        }
    }
}

/// A parsed JSON path: `$` followed by `.name`, `["name"]` or `[index]` steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonPath(Vec<Segment>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Field(String),
    Index(usize),
}

impl JsonPath {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.chars().count() > MAX_PATTERN {
            return Err(format!("the path is longer than {MAX_PATTERN} characters"));
        }
        let bad = |why: &str| Err(format!("'{raw}' is not a JSON path ($.a.b[0]): {why}"));
        let Some(mut rest) = raw.strip_prefix('$') else {
            return bad("it must start with $");
        };
        let mut segments = Vec::new();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('.') {
                let end = after.find(['.', '[']).unwrap_or(after.len());
                let name = &after[..end];
                if name.is_empty() {
                    return bad("a '.' must be followed by a field name");
                }
                segments.push(Segment::Field(name.to_owned()));
                rest = &after[end..];
            } else if let Some(after) = rest.strip_prefix("[\"") {
                let Some(end) = after.find("\"]") else {
                    return bad("a [\" has no closing \"]");
                };
                segments.push(Segment::Field(after[..end].to_owned()));
                rest = &after[end + 2..];
            } else if let Some(after) = rest.strip_prefix('[') {
                let Some(end) = after.find(']') else {
                    return bad("a [ has no closing ]");
                };
                let Ok(index) = after[..end].parse::<usize>() else {
                    return bad("an index must be a whole number");
                };
                segments.push(Segment::Index(index));
                rest = &after[end + 1..];
            } else {
                return bad("expected '.' or '[' after a step");
            }
        }
        Ok(Self(segments))
    }

    pub fn lookup<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        self.0.iter().try_fold(doc, |v, s| match s {
            Segment::Field(name) => v.get(name.as_str()),
            Segment::Index(i) => v.get(*i),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn cond(v: Value) -> Condition {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn each_test_holds_on_what_it_names() {
        assert!(cond(json!({"op": "equals", "value": "yes"})).holds("  yes\n"));
        assert!(!cond(json!({"op": "equals", "value": "yes"})).holds("yes!"));
        assert!(cond(json!({"op": "contains", "value": "urgent"})).holds("very urgent"));
        assert!(cond(json!({"op": "matches", "pattern": "^score: [0-9]+$"})).holds("score: 42"));
        let path = json!({"op": "json_path", "path": "$.review[\"verdict\"]", "equals": "ok"});
        assert!(cond(path.clone()).holds(r#"{"review": {"verdict": "ok"}}"#));
        assert!(!cond(path).holds("not json"));
        let index = json!({"op": "json_path", "path": "$.items[1].n", "equals": 2});
        assert!(cond(index).holds(r#"{"items": [{"n": 1}, {"n": 2}]}"#));
    }

    #[test]
    fn negate_makes_the_else_branch() {
        let c = cond(json!({"op": "contains", "value": "x", "negate": true}));
        assert!(c.holds("abc"));
        assert!(!c.holds("xyz"));
    }

    #[test]
    fn the_editors_fields_round_trip_and_bad_ones_are_named() {
        for (op, text, equals, negate) in [
            ("equals", "yes", "", false),
            ("contains", "tide", "", true),
            ("matches", "^a+$", "", false),
            ("json_path", "$.score", "3", false),
        ] {
            let c = Condition::from_parts(op, text, equals, negate)
                .unwrap()
                .unwrap();
            let (op2, text2, equals2) = c.parts();
            assert_eq!(
                Condition::from_parts(op2, &text2, &equals2, c.negate).unwrap(),
                Some(c)
            );
        }
        assert_eq!(Condition::from_parts("", "x", "", true), Ok(None));
        let err = Condition::from_parts("matches", "(", "", false).unwrap_err();
        assert!(err.contains("regular expression"), "{err}");
        let err = Condition::from_parts("json_path", "$.a", "not json", false).unwrap_err();
        assert!(err.contains("not JSON"), "{err}");
        let err = Condition::from_parts("json_path", "a.b", "1", false).unwrap_err();
        assert!(!err.is_empty());
        assert!(Condition::from_parts("like", "x", "", false).is_err());
    }

    #[test]
    fn bad_syntax_is_named() {
        let bad = cond(json!({"op": "matches", "pattern": "(unclosed"}));
        assert!(
            bad.check()
                .unwrap_err()
                .contains("not a regular expression")
        );
        for path in ["a.b", "$.", "$[x]", "$[1", "$..a", "$a"] {
            let c = cond(json!({"op": "json_path", "path": path, "equals": 1}));
            assert!(c.check().is_err(), "{path}");
        }
        assert!(JsonPath::parse("$").is_ok());
    }

    proptest! {
        /// The editor's fields are a person's typing: any text is a condition or a reason, and
        /// a condition made from them gives the same fields back.
        #[test]
        fn any_editor_fields_make_a_condition_or_a_reason(
            op in prop_oneof![
                Just(String::new()), Just("equals".to_owned()), Just("contains".to_owned()),
                Just("matches".to_owned()), Just("json_path".to_owned()), "\\PC{0,8}",
            ],
            text in "\\PC{0,40}",
            equals in "\\PC{0,20}",
            negate in any::<bool>(),
        ) {
            if let Ok(Some(c)) = Condition::from_parts(&op, &text, &equals, negate) {
                let (op2, text2, equals2) = c.parts();
                prop_assert_eq!(Condition::from_parts(op2, &text2, &equals2, c.negate), Ok(Some(c)));
            }
        }

        #[test]
        fn any_text_is_a_verdict_never_a_panic(pattern in "\\PC{0,40}", output in "\\PC{0,80}") {
            let c = Condition { test: Test::Matches { pattern: pattern.clone() }, negate: false };
            let _ = c.check();
            let _ = c.holds(&output);
            let p = Condition { test: Test::JsonPath { path: pattern, equals: json!(1) }, negate: false };
            let _ = p.check();
            let _ = p.holds(&output);
        }
    }
}
