//! A plan: the subtasks of a task and their dependencies, checked as a DAG with petgraph.
//! The same rules apply to any run's graph, whether a planner or a person drew it.

use super::text::allowed_in_prose;
use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graphmap::DiGraphMap;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The most nodes one run may have (SPEC 3.6 asks for at least 100); keeps a runaway planner
/// from flooding the queue. Stated to the model in [`plan_schema`].
pub const MAX_NODES: usize = 500;
/// The longest subtask description, in characters (as long as a task's own description, which
/// a fallback plan copies).
pub const MAX_DESCRIPTION: usize = 5000;
/// The longest key or capability name, in characters.
pub const MAX_NAME: usize = 64;
/// The most capabilities one subtask may list. Dependencies are bounded by [`MAX_NODES`]
/// alone: a join over every other subtask (summarise them all) is a plan a model will send.
pub const MAX_LIST: usize = 32;

/// A subtask as a planner (or a person) writes it: `key` names it inside the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubtaskDraft {
    pub key: String,
    pub description: String,
    #[serde(default)]
    pub required_capabilities: Vec<String>,
    #[serde(default)]
    pub depends_on: Vec<String>,
    #[serde(default)]
    pub priority: i16,
}

/// Raw planner output, before any rule is checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanDraft {
    pub subtasks: Vec<SubtaskDraft>,
}

/// Why a plan was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("a plan needs at least one subtask")]
    Empty,
    #[error("a plan may have at most {MAX_NODES} subtasks, this one has {0}")]
    TooLarge(usize),
    #[error("a subtask has an empty key")]
    EmptyKey,
    #[error("subtask key '{0}' is used twice")]
    DuplicateKey(String),
    #[error("subtask '{0}' has an empty description")]
    EmptyDescription(String),
    #[error("subtask '{key}': {field} is too long (at most {max} characters)")]
    TooLong {
        key: String,
        field: &'static str,
        max: usize,
    },
    #[error("subtask '{key}': {field} lists more than {limit} entries")]
    TooMany {
        key: String,
        field: &'static str,
        limit: usize,
    },
    #[error("subtask '{key}': {field} contains a control character")]
    ControlCharacter { key: String, field: &'static str },
    #[error("subtask '{0}' depends on itself")]
    SelfDependency(String),
    #[error("subtask '{from}' lists dependency '{on}' twice")]
    DuplicateDependency { from: String, on: String },
    #[error("subtask '{from}' depends on unknown subtask '{missing}'")]
    UnknownDependency { from: String, missing: String },
    #[error("subtask '{key}' needs unknown capability '{capability}'")]
    UnknownCapability { key: String, capability: String },
    #[error("subtask '{key}' lists capability '{capability}' twice")]
    DuplicateCapability { key: String, capability: String },
    #[error("subtask '{0}' has a priority outside 0..=10")]
    Priority(String),
    #[error("dependencies form a cycle: {}", .0.join(" → "))]
    Cycle(Vec<String>),
}

/// A plan that passed every rule. Its fields are private: the only ways to one are
/// [`ValidatedPlan::parse`] and [`ValidatedPlan::fallback`], so storing it cannot fail on its
/// shape (unique keys, unique edges to existing nodes, no NUL or over-long text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatedPlan {
    subtasks: Vec<SubtaskDraft>,
    /// A topological order of the subtask indices.
    order: Vec<usize>,
    /// Per subtask, the indices of the subtasks it depends on (distinct).
    deps: Vec<Vec<usize>>,
}

/// Some key to name a subtask by in an error, even an unprintable one.
fn shown(key: &str) -> String {
    key.chars()
        .take(MAX_NAME)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// A name (key, capability): non-blank, short, no control characters.
fn check_name(key: &str, field: &'static str, value: &str) -> Result<(), PlanError> {
    if value.chars().count() > MAX_NAME {
        return Err(PlanError::TooLong {
            key: shown(key),
            field,
            max: MAX_NAME,
        });
    }
    if value.chars().any(char::is_control) {
        return Err(PlanError::ControlCharacter {
            key: shown(key),
            field,
        });
    }
    Ok(())
}

impl ValidatedPlan {
    /// Checks keys, descriptions, capabilities (against `known_capabilities`), priorities,
    /// dependencies and acyclicity. A cycle is reported with its path, first node repeated.
    pub fn parse(draft: PlanDraft, known_capabilities: &[&str]) -> Result<Self, PlanError> {
        let n = draft.subtasks.len();
        if n == 0 {
            return Err(PlanError::Empty);
        }
        if n > MAX_NODES {
            return Err(PlanError::TooLarge(n));
        }
        let mut index: HashMap<&str, usize> = HashMap::with_capacity(n);
        for (i, s) in draft.subtasks.iter().enumerate() {
            if s.key.trim().is_empty() {
                return Err(PlanError::EmptyKey);
            }
            check_name(&s.key, "key", &s.key)?;
            if index.insert(s.key.as_str(), i).is_some() {
                return Err(PlanError::DuplicateKey(s.key.clone()));
            }
            if s.description.trim().is_empty() {
                return Err(PlanError::EmptyDescription(s.key.clone()));
            }
            if s.description.chars().count() > MAX_DESCRIPTION {
                return Err(PlanError::TooLong {
                    key: s.key.clone(),
                    field: "description",
                    max: MAX_DESCRIPTION,
                });
            }
            if !s.description.chars().all(allowed_in_prose) {
                return Err(PlanError::ControlCharacter {
                    key: s.key.clone(),
                    field: "description",
                });
            }
            if !(0..=10).contains(&s.priority) {
                return Err(PlanError::Priority(s.key.clone()));
            }
            for (field, list, limit) in [
                ("required_capabilities", &s.required_capabilities, MAX_LIST),
                ("depends_on", &s.depends_on, MAX_NODES),
            ] {
                if list.len() > limit {
                    return Err(PlanError::TooMany {
                        key: s.key.clone(),
                        field,
                        limit,
                    });
                }
            }
            for (j, cap) in s.required_capabilities.iter().enumerate() {
                if !known_capabilities.contains(&cap.as_str()) {
                    check_name(&s.key, "required_capabilities", cap)?;
                    return Err(PlanError::UnknownCapability {
                        key: s.key.clone(),
                        capability: cap.clone(),
                    });
                }
                if s.required_capabilities[..j].contains(cap) {
                    return Err(PlanError::DuplicateCapability {
                        key: s.key.clone(),
                        capability: cap.clone(),
                    });
                }
            }
        }
        let mut graph: DiGraphMap<usize, ()> = DiGraphMap::with_capacity(n, n);
        for i in 0..n {
            graph.add_node(i);
        }
        let mut deps = Vec::with_capacity(n);
        for (i, s) in draft.subtasks.iter().enumerate() {
            let mut mine: Vec<usize> = Vec::with_capacity(s.depends_on.len());
            for dep in &s.depends_on {
                if dep == &s.key {
                    return Err(PlanError::SelfDependency(s.key.clone()));
                }
                let Some(&d) = index.get(dep.as_str()) else {
                    return Err(PlanError::UnknownDependency {
                        from: s.key.clone(),
                        missing: shown(dep),
                    });
                };
                if mine.contains(&d) {
                    return Err(PlanError::DuplicateDependency {
                        from: s.key.clone(),
                        on: dep.clone(),
                    });
                }
                mine.push(d);
                graph.add_edge(d, i, ());
            }
            deps.push(mine);
        }
        let order = match toposort(&graph, None) {
            Ok(order) => order,
            Err(_) => return Err(PlanError::Cycle(cycle_path(&graph, &draft.subtasks))),
        };
        Ok(Self {
            subtasks: draft.subtasks,
            order,
            deps,
        })
    }

    /// The one-subtask plan a task falls back to when planning fails: the task's text (control
    /// characters dropped, cut to [`MAX_DESCRIPTION`]) under one capability.
    pub fn fallback(description: &str, capability: &str, priority: i16) -> Self {
        let mut text: String = description
            .chars()
            .filter(|c| allowed_in_prose(*c))
            .take(MAX_DESCRIPTION)
            .collect();
        if text.trim().is_empty() {
            text = "(the task has no readable description)".into();
        }
        let capability: String = capability
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_NAME)
            .collect();
        Self {
            subtasks: vec![SubtaskDraft {
                key: "s1".into(),
                description: text,
                required_capabilities: vec![capability],
                depends_on: vec![],
                priority: priority.clamp(0, 10),
            }],
            order: vec![0],
            deps: vec![vec![]],
        }
    }

    pub fn subtasks(&self) -> &[SubtaskDraft] {
        &self.subtasks
    }

    /// A topological order of the subtask indices: dependencies first.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// Indices of the subtasks `i` depends on, each once.
    pub fn dependencies(&self, i: usize) -> &[usize] {
        &self.deps[i]
    }
}

/// The JSON schema of a plan, as a planner model is asked to answer (response format or a
/// forced tool call). It states the limits [`ValidatedPlan::parse`] enforces.
pub fn plan_schema(capabilities: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["subtasks"],
        "properties": {
            "subtasks": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_NODES,
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["key", "description", "required_capabilities", "depends_on"],
                    "properties": {
                        "key": { "type": "string", "minLength": 1, "maxLength": MAX_NAME },
                        "description": {
                            "type": "string", "minLength": 1, "maxLength": MAX_DESCRIPTION
                        },
                        "required_capabilities": {
                            "type": "array", "uniqueItems": true, "maxItems": MAX_LIST,
                            "items": { "enum": capabilities }
                        },
                        "depends_on": {
                            "type": "array", "uniqueItems": true, "maxItems": MAX_NODES,
                            "items": { "type": "string" }
                        },
                        "priority": { "type": "integer", "minimum": 0, "maximum": 10 }
                    }
                }
            }
        }
    })
}

/// The plan's schema as a model is asked to answer under it: every property required and no
/// length or count bounds, the subset OpenAI's strict mode takes and grammar-constrained
/// servers (llama.cpp) compile without blowing up (a `maxLength` of 5000 becomes 5000 grammar
/// rules). [`ValidatedPlan::parse`] enforces the bounds [`plan_schema`] states.
pub fn plan_request_schema(capabilities: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["subtasks"],
        "properties": {
            "subtasks": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["key", "description", "required_capabilities", "depends_on",
                                 "priority"],
                    "properties": {
                        "key": { "type": "string" },
                        "description": { "type": "string" },
                        "required_capabilities": {
                            "type": "array", "items": { "enum": capabilities }
                        },
                        "depends_on": { "type": "array", "items": { "type": "string" } },
                        "priority": { "type": "integer" }
                    }
                }
            }
        }
    })
}

/// One concrete cycle, as keys in dependency order with the first repeated at the end.
fn cycle_path(graph: &DiGraphMap<usize, ()>, subtasks: &[SubtaskDraft]) -> Vec<String> {
    // A strongly connected component with more than one node contains a cycle; walk it.
    let Some(component) = tarjan_scc(graph).into_iter().find(|c| c.len() > 1) else {
        return Vec::new();
    };
    walk_cycle(graph, &component)
        .into_iter()
        .map(|i| subtasks[i].key.clone())
        .collect()
}

/// One cycle inside a strongly connected component (of more than one node): its nodes in edge
/// order, the first repeated at the end. Any petgraph graph; plans and workflows share it.
pub(crate) fn walk_cycle<G>(graph: G, component: &[G::NodeId]) -> Vec<G::NodeId>
where
    G: petgraph::visit::IntoNeighbors,
    G::NodeId: PartialEq + Copy,
{
    let Some(&start) = component.first() else {
        return Vec::new();
    };
    let mut path = vec![start];
    let mut current = start;
    while let Some(next) = graph.neighbors(current).find(|n| component.contains(n)) {
        if let Some(pos) = path.iter().position(|&p| p == next) {
            path.drain(..pos);
            path.push(next);
            break;
        }
        path.push(next);
        current = next;
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::agent::CAPABILITIES;
    use proptest::prelude::*;

    fn sub(key: &str, deps: &[&str]) -> SubtaskDraft {
        SubtaskDraft {
            key: key.into(),
            description: format!("do {key}"),
            required_capabilities: vec!["data_analysis".into()],
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            priority: 0,
        }
    }

    fn parse(subs: Vec<SubtaskDraft>) -> Result<ValidatedPlan, PlanError> {
        ValidatedPlan::parse(PlanDraft { subtasks: subs }, &CAPABILITIES)
    }

    #[test]
    fn a_diamond_is_ordered_dependencies_first() {
        let plan = parse(vec![
            sub("d", &["b", "c"]),
            sub("b", &["a"]),
            sub("c", &["a"]),
            sub("a", &[]),
        ])
        .unwrap();
        let pos = |k: &str| {
            let i = plan.subtasks.iter().position(|s| s.key == k).unwrap();
            plan.order.iter().position(|&o| o == i).unwrap()
        };
        assert!(pos("a") < pos("b") && pos("a") < pos("c"));
        assert!(pos("b") < pos("d") && pos("c") < pos("d"));
    }

    #[test]
    fn a_join_over_a_hundred_subtasks_is_a_plan() {
        let keys: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
        let mut subs: Vec<SubtaskDraft> = keys.iter().map(|k| sub(k, &[])).collect();
        let all: Vec<&str> = keys.iter().map(String::as_str).collect();
        subs.push(sub("bottom", &all));
        let plan = parse(subs).unwrap();
        assert_eq!(plan.dependencies(100).len(), 100);
    }

    #[test]
    fn a_cycle_is_refused_with_its_path() {
        let err = parse(vec![
            sub("a", &["c"]),
            sub("b", &["a"]),
            sub("c", &["b"]),
            sub("x", &[]),
        ])
        .unwrap_err();
        let PlanError::Cycle(path) = &err else {
            panic!("{err}")
        };
        assert_eq!(path.len(), 4, "{path:?}");
        assert_eq!(path.first(), path.last());
        assert!(err.to_string().starts_with("dependencies form a cycle: "));
    }

    #[test]
    fn self_unknown_and_duplicate_references_are_refused_by_name() {
        assert_eq!(
            parse(vec![sub("a", &["a"])]),
            Err(PlanError::SelfDependency("a".into()))
        );
        assert_eq!(
            parse(vec![sub("a", &["zz"])]),
            Err(PlanError::UnknownDependency {
                from: "a".into(),
                missing: "zz".into()
            })
        );
        assert_eq!(
            parse(vec![sub("a", &[]), sub("a", &[])]),
            Err(PlanError::DuplicateKey("a".into()))
        );
        assert_eq!(parse(vec![]), Err(PlanError::Empty));
        let mut odd = sub("a", &[]);
        odd.required_capabilities = vec!["telepathy".into()];
        assert!(matches!(
            parse(vec![odd]),
            Err(PlanError::UnknownCapability { .. })
        ));
    }

    #[test]
    fn a_repeated_dependency_is_refused_not_left_to_the_database() {
        assert_eq!(
            parse(vec![sub("s1", &[]), sub("s2", &["s1", "s1"])]),
            Err(PlanError::DuplicateDependency {
                from: "s2".into(),
                on: "s1".into()
            })
        );
    }

    #[test]
    fn keys_text_and_lists_are_bounded_and_free_of_control_characters() {
        assert_eq!(parse(vec![sub(" ", &[])]), Err(PlanError::EmptyKey));
        assert!(matches!(
            parse(vec![sub(&"k".repeat(MAX_NAME + 1), &[])]),
            Err(PlanError::TooLong { field: "key", .. })
        ));
        assert!(matches!(
            parse(vec![sub("a\u{0}b", &[])]),
            Err(PlanError::ControlCharacter { field: "key", .. })
        ));
        let mut nul = sub("a", &[]);
        nul.description = "nul \u{0} inside".into();
        assert!(matches!(
            parse(vec![nul]),
            Err(PlanError::ControlCharacter {
                field: "description",
                ..
            })
        ));
        let mut lines = sub("a", &[]);
        lines.description = "line one\n\tline two".into();
        assert!(parse(vec![lines]).is_ok());
        let mut long = sub("a", &[]);
        long.description = "x".repeat(MAX_DESCRIPTION + 1);
        assert!(matches!(
            parse(vec![long]),
            Err(PlanError::TooLong {
                field: "description",
                ..
            })
        ));
        let mut twice = sub("a", &[]);
        twice.required_capabilities = vec!["data_analysis".into(), "data_analysis".into()];
        assert!(matches!(
            parse(vec![twice]),
            Err(PlanError::DuplicateCapability { .. })
        ));
        let many: Vec<SubtaskDraft> = (0..=MAX_NODES)
            .map(|i| sub(&format!("n{i}"), &[]))
            .collect();
        assert_eq!(parse(many), Err(PlanError::TooLarge(MAX_NODES + 1)));
        let hundred: Vec<SubtaskDraft> = (0..100).map(|i| sub(&format!("n{i}"), &[])).collect();
        assert!(parse(hundred).is_ok(), "SPEC 3.6: at least 100 subtasks");
    }

    #[test]
    fn the_fallback_is_storable_whatever_the_task_said() {
        let plan =
            ValidatedPlan::fallback(&format!("\u{0}{}", "é".repeat(9000)), "data_analysis", 42);
        let s = &plan.subtasks()[0];
        assert_eq!(s.description.chars().count(), MAX_DESCRIPTION);
        assert!(s.description.chars().all(allowed_in_prose));
        assert_eq!(s.priority, 10);
        assert!(
            !ValidatedPlan::fallback("\u{1}\u{2}", "data_analysis", 0).subtasks()[0]
                .description
                .trim()
                .is_empty()
        );
    }

    #[test]
    fn the_schema_states_the_limits() {
        let schema = plan_schema(&CAPABILITIES);
        assert_eq!(schema["properties"]["subtasks"]["maxItems"], MAX_NODES);
        const { assert!(MAX_NODES >= 100) };
    }

    /// Any JSON value, with arbitrary Unicode strings, nested a few levels.
    fn arbitrary_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            any::<String>().prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::from),
                proptest::collection::hash_map(
                    prop_oneof![
                        Just("subtasks".to_owned()),
                        Just("key".to_owned()),
                        Just("description".to_owned()),
                        Just("depends_on".to_owned()),
                        any::<String>()
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Random DAGs: edges only go from lower to higher index, then keys are shuffled.
    fn random_dag() -> impl Strategy<Value = Vec<SubtaskDraft>> {
        (1usize..60).prop_flat_map(|n| {
            proptest::collection::vec(
                proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
                n,
            )
            .prop_map(move |deps| {
                (0..n)
                    .map(|i| {
                        let ds: Vec<String> = if i == 0 {
                            vec![]
                        } else {
                            let mut d: Vec<String> = deps[i]
                                .iter()
                                .map(|ix| format!("n{}", ix.index(i)))
                                .collect();
                            d.sort();
                            d.dedup();
                            d
                        };
                        let mut s = sub(&format!("n{i}"), &[]);
                        s.depends_on = ds;
                        s
                    })
                    .rev()
                    .collect()
            })
        })
    }

    proptest! {
        #[test]
        fn every_random_dag_is_accepted_in_dependency_order(subs in random_dag()) {
            let plan = parse(subs).unwrap();
            prop_assert_eq!(plan.order.len(), plan.subtasks.len());
            let mut seen = vec![false; plan.subtasks.len()];
            for &i in &plan.order {
                for &d in plan.dependencies(i) {
                    prop_assert!(seen[d], "dependency ran after its dependent");
                }
                seen[i] = true;
            }
        }

        /// Arbitrary JSON and arbitrary Unicode in every field: never a panic, and whatever is
        /// accepted keeps the invariants storage relies on.
        #[test]
        fn arbitrary_plans_are_accepted_whole_or_refused_with_a_reason(
            subs in proptest::collection::vec(
                (
                    prop_oneof![Just("s1".to_owned()), Just("s2".to_owned()), ".{0,70}"],
                    ".{0,40}",
                    proptest::collection::vec(
                        prop_oneof![Just("data_analysis".to_owned()), ".{0,8}"], 0..3),
                    proptest::collection::vec(
                        prop_oneof![Just("s1".to_owned()), Just("s2".to_owned()), ".{0,4}"], 0..4),
                    -2i16..13,
                ),
                0..6,
            )
        ) {
            let subtasks: Vec<SubtaskDraft> = subs
                .into_iter()
                .map(|(key, description, caps, deps, priority)| SubtaskDraft {
                    key, description, required_capabilities: caps, depends_on: deps, priority,
                })
                .collect();
            match parse(subtasks) {
                Ok(plan) => {
                    let mut keys: Vec<&str> = plan.subtasks().iter().map(|s| s.key.as_str()).collect();
                    keys.sort_unstable();
                    keys.dedup();
                    prop_assert_eq!(keys.len(), plan.subtasks().len());
                    for (i, s) in plan.subtasks().iter().enumerate() {
                        prop_assert!(!s.key.contains('\0') && !s.description.contains('\0'));
                        let mut d = plan.dependencies(i).to_vec();
                        d.sort_unstable();
                        d.dedup();
                        prop_assert_eq!(d.len(), plan.dependencies(i).len());
                        prop_assert!(!d.contains(&i));
                    }
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }

        #[test]
        fn arbitrary_json_never_panics_the_parser(json in arbitrary_json()) {
            if let Ok(draft) = serde_json::from_value::<PlanDraft>(json) {
                let _ = parse(draft.subtasks);
            }
        }

        #[test]
        fn a_back_edge_in_a_random_dag_is_always_reported_as_a_cycle(subs in random_dag()) {
            let mut subs = subs;
            // Find a node with a dependency and make that dependency depend on it: a cycle.
            let Some(i) = subs.iter().position(|s| !s.depends_on.is_empty()) else { return Ok(()); };
            let key = subs[i].key.clone();
            let dep = subs[i].depends_on[0].clone();
            let j = subs.iter().position(|s| s.key == dep).unwrap();
            subs[j].depends_on.push(key);
            let err = parse(subs).unwrap_err();
            let PlanError::Cycle(path) = err else { panic!("expected a cycle") };
            prop_assert!(path.len() >= 3);
            prop_assert_eq!(path.first(), path.last());
        }
    }
}
