//! Validation rules, one by one, and the shipped templates.

use super::*;
use proptest::prelude::*;
use serde_json::json;

fn def(v: Value) -> Definition {
    serde_json::from_value(v).unwrap()
}

fn agent(key: &str, prompt: &str) -> Value {
    json!({"key": key, "kind": "agent", "capability": "data_analysis", "prompt": prompt})
}

fn codes(d: &Definition) -> Vec<IssueCode> {
    validate(d, &Catalog::standard())
        .into_iter()
        .map(|i| i.code)
        .collect()
}

#[test]
fn a_chain_with_inputs_and_upstream_references_is_valid() {
    let d = def(json!({
        "inputs": [{"name": "topic", "required": true}],
        "nodes": [agent("a", "about {{inputs.topic}}"), agent("b", "refine {{nodes.a.output}}"),
                  agent("c", "finish {{nodes.a.output}} and {{nodes.b.output}}")],
        "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}]
    }));
    assert_eq!(validate(&d, &Catalog::standard()), vec![]);
}

#[test]
fn a_cycle_is_reported_with_its_path_on_a_node() {
    let d = def(json!({
        "nodes": [agent("a", "x"), agent("b", "x"), agent("c", "x"), agent("d", "x")],
        "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}, {"from": "c", "to": "a"},
                  {"from": "c", "to": "d"}]
    }));
    let issues = validate(&d, &Catalog::standard());
    assert_eq!(issues.len(), 1, "{issues:?}");
    let cycle = &issues[0];
    assert_eq!(cycle.code, IssueCode::Cycle);
    assert_eq!(cycle.path.len(), 4);
    assert_eq!(cycle.path.first(), cycle.path.last());
    assert!(matches!(&cycle.target, Target::Node { key } if key == &cycle.path[0]));
    assert!(cycle.message.contains(" → "));
}

#[test]
fn edges_to_nowhere_self_loops_and_repeats_point_at_the_edge() {
    let d = def(json!({
        "nodes": [agent("a", "x"), agent("b", "x")],
        "edges": [{"from": "a", "to": "b"}, {"from": "a", "to": "ghost"}, {"from": "b", "to": "b"},
                  {"from": "a", "to": "b"}]
    }));
    let issues = validate(&d, &Catalog::standard());
    let by_edge: Vec<(usize, IssueCode)> = issues
        .iter()
        .filter_map(|i| match i.target {
            Target::Edge { index, .. } => Some((index, i.code)),
            _ => None,
        })
        .collect();
    assert_eq!(
        by_edge,
        vec![
            (1, IssueCode::DanglingEdge),
            (2, IssueCode::SelfLoop),
            (3, IssueCode::DuplicateEdge)
        ]
    );
}

#[test]
fn keys_capabilities_agents_and_tools_are_checked() {
    let d = def(json!({
        "nodes": [
            {"key": "a", "kind": "agent", "capability": "astrology", "prompt": "x"},
            {"key": "a", "kind": "agent", "agent": "nobody", "prompt": "x"},
            {"key": "has space", "kind": "approval"},
            {"key": "t", "kind": "tool", "tool": "rm_rf"},
            {"key": "both", "kind": "agent", "capability": "data_analysis", "agent": "x", "prompt": "x"},
            {"key": "blank", "kind": "agent", "capability": "data_analysis", "prompt": "  "}
        ],
        "edges": [{"from": "a", "to": "t"}, {"from": "t", "to": "both"}, {"from": "both", "to": "blank"}]
    }));
    let got = codes(&d);
    for want in [
        IssueCode::UnknownCapability,
        IssueCode::DuplicateKey,
        IssueCode::UnknownAgent,
        IssueCode::Key,
        IssueCode::UnknownTool,
        IssueCode::Step,
        IssueCode::Text,
    ] {
        assert!(got.contains(&want), "{want:?} missing from {got:?}");
    }
    let mut catalog = Catalog::standard();
    catalog.agents.push("nobody".into());
    let named =
        def(json!({"nodes": [{"key": "a", "kind": "agent", "agent": "nobody", "prompt": "x"}]}));
    assert_eq!(validate(&named, &catalog), vec![]);
}

#[test]
fn a_node_nothing_connects_is_unreachable() {
    let d = def(json!({
        "nodes": [agent("a", "x"), agent("b", "x"), agent("lonely", "x")],
        "edges": [{"from": "a", "to": "b"}]
    }));
    let issues = validate(&d, &Catalog::standard());
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].code, IssueCode::Unreachable);
    assert_eq!(
        issues[0].target,
        Target::Node {
            key: "lonely".into()
        }
    );
    // One node alone is a workflow, not a forgotten one.
    assert_eq!(codes(&def(json!({"nodes": [agent("a", "x")]}))), vec![]);
}

#[test]
fn references_must_be_declared_and_upstream() {
    let d = def(json!({
        "nodes": [agent("a", "{{inputs.missing}}"), agent("b", "{{nodes.c.output}}"),
                  agent("c", "{{nodes.ghost.output}} {{inputs}}")],
        "edges": [{"from": "a", "to": "b"}, {"from": "a", "to": "c"}]
    }));
    let got = codes(&d);
    assert_eq!(
        got,
        vec![
            IssueCode::UndeclaredReference,
            IssueCode::NotUpstream,
            IssueCode::Template
        ],
        "{:?}",
        validate(&d, &Catalog::standard())
    );
}

#[test]
fn conditions_inputs_and_defaults_are_checked() {
    let d = def(json!({
        "inputs": [{"name": "n", "type": "number", "default": "three"}, {"name": "n", "type": "string"}],
        "nodes": [agent("a", "x"), agent("b", "x")],
        "edges": [{"from": "a", "to": "b", "condition": {"op": "matches", "pattern": "(("}}]
    }));
    assert_eq!(
        codes(&d),
        vec![
            IssueCode::Input,
            IssueCode::DuplicateInput,
            IssueCode::Condition
        ]
    );
}

#[test]
fn sub_workflows_must_exist_not_recurse_and_get_their_inputs() {
    let own = Uuid::from_u128(1);
    let other = Uuid::from_u128(2);
    let mut catalog = Catalog::standard();
    catalog.workflow_id = Some(own);
    catalog.subworkflows.insert(
        (other, 1),
        SubworkflowInfo {
            inputs: vec![serde_json::from_value(json!({"name": "q", "required": true})).unwrap()],
            contains: vec![],
        },
    );
    catalog.subworkflows.insert(
        (other, 2),
        SubworkflowInfo {
            inputs: vec![],
            contains: vec![own],
        },
    );
    let node = |v: i32, inputs: Value| {
        def(
            json!({"nodes": [{"key": "s", "kind": "workflow", "workflow_id": other, "version": v,
                              "inputs": inputs}]}),
        )
    };
    let codes_of = |d: &Definition| -> Vec<IssueCode> {
        validate(d, &catalog).into_iter().map(|i| i.code).collect()
    };
    assert_eq!(codes_of(&node(1, json!({"q": "hello"}))), vec![]);
    assert_eq!(codes_of(&node(1, json!({}))), vec![IssueCode::MissingInput]);
    assert_eq!(
        codes_of(&node(1, json!({"q": "x", "zz": "y"}))),
        vec![IssueCode::Input]
    );
    assert_eq!(codes_of(&node(2, json!({}))), vec![IssueCode::Recursive]);
    assert_eq!(codes_of(&node(3, json!({}))), vec![IssueCode::Subworkflow]);
}

#[test]
fn a_drawn_edge_that_closes_a_cycle_is_named_with_the_path() {
    let d = def(json!({
        "nodes": [agent("a", "x"), agent("b", "x"), agent("c", "x")],
        "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}]
    }));
    assert_eq!(
        would_close_cycle(&d, "c", "a"),
        Some(vec!["c".into(), "a".into(), "b".into(), "c".into()])
    );
    assert_eq!(would_close_cycle(&d, "a", "c"), None);
    assert_eq!(
        would_close_cycle(&d, "b", "b"),
        Some(vec!["b".into(), "b".into()])
    );
}

#[test]
fn a_node_may_reference_every_node_upstream_of_it_and_no_other() {
    let d = def(json!({
        "nodes": [agent("a", "x"), agent("b", "x"), agent("c", "x"), agent("side", "x"), agent("d", "x")],
        "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "d"}, {"from": "c", "to": "d"},
                  {"from": "a", "to": "side"}]
    }));
    assert_eq!(upstream(&d, "d"), vec!["a", "b", "c"]);
    assert_eq!(upstream(&d, "side"), vec!["a"]);
    assert!(upstream(&d, "a").is_empty());
    assert!(upstream(&d, "nowhere").is_empty());
}

#[test]
fn run_inputs_take_defaults_and_refuse_what_is_wrong() {
    let decls: Vec<InputDecl> = serde_json::from_value(json!([
        {"name": "topic", "required": true},
        {"name": "n", "type": "number", "default": 3},
        {"name": "flag", "type": "boolean"}
    ]))
    .unwrap();
    let given = |v: Value| v.as_object().unwrap().clone();
    let ok = check_inputs(&decls, &given(json!({"topic": "tides"}))).unwrap();
    assert_eq!(Value::Object(ok), json!({"topic": "tides", "n": 3}));
    let bad = check_inputs(&decls, &given(json!({"n": "x", "extra": 1}))).unwrap_err();
    let got: Vec<IssueCode> = bad.iter().map(|i| i.code).collect();
    assert_eq!(
        got,
        vec![IssueCode::Input, IssueCode::MissingInput, IssueCode::Input]
    );
}

#[test]
fn exports_of_another_schema_version_are_refused_with_a_reason() {
    let mut v =
        json!({"schema_version": 1, "name": "x", "definition": {"nodes": [agent("a", "x")]}});
    assert!(Export::parse(&v).is_ok());
    v["schema_version"] = json!(7);
    assert!(
        Export::parse(&v)
            .unwrap_err()
            .contains("schema_version 7 is not supported")
    );
    assert!(
        Export::parse(&json!({"name": "x"}))
            .unwrap_err()
            .contains("names its schema_version")
    );
    assert!(Export::parse(&json!({"schema_version": "1"})).is_err());
}

#[test]
fn tags_must_be_names_not_variant_indices() {
    let by_index =
        json!({"nodes": [{"key": "a", "kind": 0, "prompt": "x", "capability": "data_analysis"}]});
    let err = serde_json::from_value::<Definition>(by_index)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`kind` must be a string"), "{err}");
    let op = json!({"nodes": [], "edges": [{"from": "a", "to": "b", "condition": {"op": 0, "value": ""}}]});
    let err = serde_json::from_value::<Definition>(op)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`op` must be a string"), "{err}");
    let fine = json!({"nodes": [agent("a", "x")], "edges": [{"from": "a", "to": "a",
                      "condition": {"op": "equals", "value": "y"}}]});
    assert!(serde_json::from_value::<Definition>(fine).is_ok());
}

#[test]
fn every_builtin_template_parses_and_validates() {
    let templates = builtin_templates();
    assert_eq!(templates.len(), 3);
    for t in templates {
        let issues = validate(&t.export.definition, &Catalog::standard());
        assert_eq!(issues, vec![], "{}", t.slug);
        let round: Export = Export::parse(&serde_json::to_value(&t.export).unwrap()).unwrap();
        assert_eq!(round, t.export);
    }
}

/// A random DAG in edge-list form: edges only from lower to higher index.
fn dag() -> impl Strategy<Value = Definition> {
    (2usize..30).prop_flat_map(|n| {
        proptest::collection::vec((0..n, 0..n), 0..60).prop_map(move |pairs| {
            let nodes = (0..n)
                .map(|i| agent(&format!("n{i}"), "x"))
                .collect::<Vec<_>>();
            let mut edges = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for (a, b) in pairs {
                let (a, b) = (a.min(b), a.max(b));
                if a != b && seen.insert((a, b)) {
                    edges.push(json!({"from": format!("n{a}"), "to": format!("n{b}")}));
                }
            }
            def(json!({"nodes": nodes, "edges": edges}))
        })
    })
}

proptest! {
    #[test]
    fn an_edge_closes_a_cycle_exactly_when_validation_would_find_one(d in dag(), a in 0usize..30, b in 0usize..30) {
        let n = d.nodes.len();
        let (from, to) = (format!("n{}", a % n), format!("n{}", b % n));
        let predicted = would_close_cycle(&d, &from, &to);
        let mut with = d.clone();
        with.edges.push(serde_json::from_value(json!({"from": from, "to": to})).unwrap());
        let found = validate(&with, &Catalog::standard())
            .into_iter()
            .any(|i| matches!(i.code, IssueCode::Cycle | IssueCode::SelfLoop));
        prop_assert_eq!(predicted.is_some(), found);
        if let Some(path) = predicted {
            prop_assert_eq!(path.first(), path.last());
            // Every step of the path is an edge of the graph with the new one added.
            for w in path.windows(2) {
                prop_assert!(with.edges.iter().any(|e| e.from == w[0] && e.to == w[1]) || w[0] == w[1]);
            }
        }
    }

    #[test]
    fn any_json_is_a_definition_or_a_refusal_and_validates_without_panicking(v in arbitrary_json()) {
        if let Ok(d) = serde_json::from_value::<Definition>(v.clone()) {
            let _ = validate(&d, &Catalog::standard());
        }
        let _ = Export::parse(&v);
    }
}

/// Arbitrary JSON leaning towards workflow shapes (kinds, keys), for every parser of it.
pub(crate) fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "\\PC{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("agent"),
            Just("tool"),
            Just("approval"),
            Just("workflow"),
            Just("a")
        ]
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("nodes".to_owned()),
                    Just("edges".to_owned()),
                    Just("key".to_owned()),
                    Just("kind".to_owned()),
                    Just("from".to_owned()),
                    Just("to".to_owned()),
                    Just("prompt".to_owned()),
                    Just("capability".to_owned()),
                    Just("schema_version".to_owned()),
                    "\\PC{0,6}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
