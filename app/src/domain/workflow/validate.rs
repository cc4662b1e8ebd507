//! The one validation of a workflow, run by the editor (WASM) as the author draws and by the
//! server before a save is marked ready or a run starts. Every issue names the input, node or
//! edge it is about, so the editor can mark it and REST can list it.

use super::template::{Reference, references};
use super::{
    Definition, InputDecl, MAX_EDGES, MAX_INPUTS, MAX_KEY, MAX_NODES, MAX_TEXT, Node, Step, TOOLS,
};
use crate::domain::text::allowed_in_prose;
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use uuid::Uuid;

/// What an issue is about.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    Workflow,
    Input {
        name: String,
    },
    Node {
        key: String,
    },
    /// The edge at `index` in the definition's list.
    Edge {
        index: usize,
        from: String,
        to: String,
    },
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueCode {
    Empty,
    TooLarge,
    Key,
    DuplicateKey,
    Text,
    Input,
    DuplicateInput,
    Step,
    UnknownCapability,
    UnknownAgent,
    UnknownTool,
    Template,
    UndeclaredReference,
    NotUpstream,
    DanglingEdge,
    SelfLoop,
    DuplicateEdge,
    Cycle,
    Unreachable,
    Condition,
    Subworkflow,
    Recursive,
    MissingInput,
}

/// One reason a workflow is not ready.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    pub target: Target,
    pub code: IssueCode,
    pub message: String,
    /// For a cycle: its node keys in edge order, the first repeated at the end.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<String>,
}

impl Issue {
    fn new(target: Target, code: IssueCode, message: impl Into<String>) -> Self {
        Self {
            target,
            code,
            message: message.into(),
            path: Vec::new(),
        }
    }
}

/// A workflow version another one may run as a step: its inputs and every workflow it runs,
/// directly or not (so containment is one lookup).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SubworkflowInfo {
    pub inputs: Vec<InputDecl>,
    pub contains: Vec<Uuid>,
}

/// What a workflow may name: the fleet's capabilities and agents, the tools, and the
/// sub-workflow versions it references (looked up by the caller).
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub capabilities: Vec<String>,
    pub agents: Vec<String>,
    pub tools: Vec<String>,
    /// The workflow being validated, when it is stored: it may not run itself.
    pub workflow_id: Option<Uuid>,
    pub subworkflows: HashMap<(Uuid, i32), SubworkflowInfo>,
}

impl Catalog {
    /// The built-in capabilities and tools, no agents and no sub-workflows.
    pub fn standard() -> Self {
        Self {
            capabilities: crate::domain::agent::CAPABILITIES
                .iter()
                .map(|c| (*c).to_owned())
                .collect(),
            tools: TOOLS.iter().map(|t| (*t).to_owned()).collect(),
            ..Self::default()
        }
    }
}

/// Why `name` cannot be a node key or an input name: non-empty, at most [`MAX_KEY`], ASCII
/// letters, digits, `_` and `-` (templates split references at dots).
fn key_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("is empty".into());
    }
    if name.chars().count() > MAX_KEY {
        return Some(format!("is longer than {MAX_KEY} characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Some("may hold only ASCII letters, digits, '_' and '-'".into());
    }
    None
}

/// A key as it can be shown in a message, whatever it holds.
fn shown(key: &str) -> String {
    key.chars()
        .take(MAX_KEY)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

fn text_problem(text: &str) -> Option<String> {
    if text.chars().count() > MAX_TEXT {
        return Some(format!("is longer than {MAX_TEXT} characters"));
    }
    if !text.chars().all(allowed_in_prose) {
        return Some("contains a control character".into());
    }
    None
}

/// Checks a definition against every rule; an empty list means it is ready to run.
pub fn validate(def: &Definition, catalog: &Catalog) -> Vec<Issue> {
    let mut issues = Vec::new();
    if def.nodes.is_empty() {
        issues.push(Issue::new(
            Target::Workflow,
            IssueCode::Empty,
            "a workflow needs at least one node",
        ));
    }
    for (what, n, max) in [
        ("nodes", def.nodes.len(), MAX_NODES),
        ("edges", def.edges.len(), MAX_EDGES),
        ("inputs", def.inputs.len(), MAX_INPUTS),
    ] {
        if n > max {
            issues.push(Issue::new(
                Target::Workflow,
                IssueCode::TooLarge,
                format!("a workflow may have at most {max} {what}, this one has {n}"),
            ));
        }
    }
    if !issues.is_empty() {
        return issues;
    }
    let inputs = check_input_decls(&def.inputs, &mut issues);
    let index = check_node_keys(&def.nodes, &mut issues);
    for node in &def.nodes {
        check_step(node, catalog, &mut issues);
    }
    let graph = check_edges(def, &index, &mut issues);
    let acyclic = check_cycles(def, &graph, &mut issues);
    check_connected(def, &graph, &mut issues);
    check_templates(def, &index, &inputs, &graph, acyclic, &mut issues);
    issues
}

fn check_input_decls<'a>(decls: &'a [InputDecl], issues: &mut Vec<Issue>) -> HashSet<&'a str> {
    let mut names = HashSet::with_capacity(decls.len());
    for d in decls {
        let target = || Target::Input {
            name: shown(&d.name),
        };
        if let Some(why) = key_problem(&d.name) {
            issues.push(Issue::new(
                target(),
                IssueCode::Key,
                format!("the input name {why}"),
            ));
            continue;
        }
        if !names.insert(d.name.as_str()) {
            issues.push(Issue::new(
                target(),
                IssueCode::DuplicateInput,
                format!("input '{}' is declared twice", d.name),
            ));
        }
        if let Some(default) = &d.default
            && !d.ty.admits(default)
        {
            issues.push(Issue::new(
                target(),
                IssueCode::Input,
                format!(
                    "the default of input '{}' is not a {}",
                    d.name,
                    d.ty.as_str()
                ),
            ));
        }
        if let Some(why) = text_problem(&d.description) {
            issues.push(Issue::new(
                target(),
                IssueCode::Text,
                format!("the description {why}"),
            ));
        }
    }
    names
}

fn check_node_keys<'a>(nodes: &'a [Node], issues: &mut Vec<Issue>) -> HashMap<&'a str, usize> {
    let mut index = HashMap::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        let target = Target::Node { key: shown(&n.key) };
        if let Some(why) = key_problem(&n.key) {
            issues.push(Issue::new(
                target,
                IssueCode::Key,
                format!("the node key {why}"),
            ));
            continue;
        }
        if index.insert(n.key.as_str(), i).is_some() {
            issues.push(Issue::new(
                target,
                IssueCode::DuplicateKey,
                format!("node key '{}' is used twice", n.key),
            ));
        }
    }
    index
}

fn check_step(node: &Node, catalog: &Catalog, issues: &mut Vec<Issue>) {
    let target = || Target::Node {
        key: shown(&node.key),
    };
    let mut push = |code, message: String| issues.push(Issue::new(target(), code, message));
    match &node.step {
        Step::Agent {
            capability,
            agent,
            prompt,
        } => {
            match (capability, agent) {
                (Some(_), Some(_)) | (None, None) => push(
                    IssueCode::Step,
                    "an agent step names a capability or an agent (exactly one)".into(),
                ),
                (Some(c), None) if !catalog.capabilities.contains(c) => push(
                    IssueCode::UnknownCapability,
                    format!("no agent can have capability '{}'", shown(c)),
                ),
                (None, Some(a)) if !catalog.agents.contains(a) => push(
                    IssueCode::UnknownAgent,
                    format!("there is no agent named '{}'", shown(a)),
                ),
                _ => {}
            }
            if prompt.trim().is_empty() {
                push(IssueCode::Text, "an agent step needs a prompt".into());
            }
        }
        Step::Tool { tool, arguments } => {
            if !catalog.tools.contains(tool) {
                push(
                    IssueCode::UnknownTool,
                    format!(
                        "there is no tool '{}' (tools: {})",
                        shown(tool),
                        catalog.tools.join(", ")
                    ),
                );
            }
            if Value::Object(arguments.clone()).to_string().chars().count() > MAX_TEXT {
                push(
                    IssueCode::Text,
                    format!("the arguments are longer than {MAX_TEXT} characters"),
                );
            }
        }
        Step::Approval { .. } => {}
        Step::Workflow {
            workflow_id,
            version,
            inputs,
        } => match catalog.subworkflows.get(&(*workflow_id, *version)) {
            None => push(
                IssueCode::Subworkflow,
                format!("workflow {workflow_id} has no version {version}"),
            ),
            Some(info) => {
                let own = catalog.workflow_id;
                if own == Some(*workflow_id) || own.is_some_and(|o| info.contains.contains(&o)) {
                    push(
                        IssueCode::Recursive,
                        "a workflow cannot run itself, directly or through another".into(),
                    );
                }
                for name in inputs.keys() {
                    if !info.inputs.iter().any(|d| &d.name == name) {
                        push(
                            IssueCode::Input,
                            format!("the sub-workflow declares no input '{}'", shown(name)),
                        );
                    }
                }
                for d in &info.inputs {
                    if d.required && d.default.is_none() && !inputs.contains_key(&d.name) {
                        push(
                            IssueCode::MissingInput,
                            format!("the sub-workflow needs input '{}'", d.name),
                        );
                    }
                }
            }
        },
    }
    for (field, text) in node.step.templates() {
        if let Some(why) = text_problem(text) {
            push(IssueCode::Text, format!("{field} {why}"));
        }
    }
}

/// The graph of the edges whose ends exist (one vertex per node, in definition order).
fn check_edges(
    def: &Definition,
    index: &HashMap<&str, usize>,
    issues: &mut Vec<Issue>,
) -> DiGraph<(), ()> {
    let mut graph = DiGraph::with_capacity(def.nodes.len(), def.edges.len());
    for _ in &def.nodes {
        graph.add_node(());
    }
    let mut seen = HashSet::with_capacity(def.edges.len());
    for (i, e) in def.edges.iter().enumerate() {
        let target = || Target::Edge {
            index: i,
            from: shown(&e.from),
            to: shown(&e.to),
        };
        let (Some(&from), Some(&to)) = (index.get(e.from.as_str()), index.get(e.to.as_str()))
        else {
            let missing = if index.contains_key(e.from.as_str()) {
                &e.to
            } else {
                &e.from
            };
            issues.push(Issue::new(
                target(),
                IssueCode::DanglingEdge,
                format!("the edge ends at '{}', which is not a node", shown(missing)),
            ));
            continue;
        };
        if from == to {
            issues.push(Issue::new(
                target(),
                IssueCode::SelfLoop,
                format!("node '{}' cannot depend on itself", e.from),
            ));
            continue;
        }
        if !seen.insert((from, to)) {
            issues.push(Issue::new(
                target(),
                IssueCode::DuplicateEdge,
                format!("'{}' → '{}' is drawn twice", e.from, e.to),
            ));
            continue;
        }
        if let Some(c) = &e.condition
            && let Err(why) = c.check()
        {
            issues.push(Issue::new(target(), IssueCode::Condition, why));
        }
        graph.add_edge(NodeIndex::new(from), NodeIndex::new(to), ());
    }
    graph
}

/// Reports each cycle with its path; true when there is none.
fn check_cycles(def: &Definition, graph: &DiGraph<(), ()>, issues: &mut Vec<Issue>) -> bool {
    let mut acyclic = true;
    for component in tarjan_scc(graph).into_iter().filter(|c| c.len() > 1) {
        acyclic = false;
        let path = crate::domain::plan::walk_cycle(graph, &component);
        let keys: Vec<String> = path
            .iter()
            .map(|n| def.nodes[n.index()].key.clone())
            .collect();
        let mut issue = Issue::new(
            Target::Node {
                key: keys[0].clone(),
            },
            IssueCode::Cycle,
            format!("these nodes form a cycle: {}", keys.join(" → ")),
        );
        issue.path = keys;
        issues.push(issue);
    }
    acyclic
}

/// In a workflow of several nodes, a node no edge touches can never be reached from the rest:
/// almost always a forgotten connection.
fn check_connected(def: &Definition, graph: &DiGraph<(), ()>, issues: &mut Vec<Issue>) {
    if def.nodes.len() < 2 {
        return;
    }
    for (i, n) in def.nodes.iter().enumerate() {
        let v = NodeIndex::new(i);
        if graph.neighbors_undirected(v).next().is_none() {
            issues.push(Issue::new(
                Target::Node { key: shown(&n.key) },
                IssueCode::Unreachable,
                format!(
                    "node '{}' is not connected to the rest of the workflow",
                    shown(&n.key)
                ),
            ));
        }
    }
}

fn check_templates(
    def: &Definition,
    index: &HashMap<&str, usize>,
    inputs: &HashSet<&str>,
    graph: &DiGraph<(), ()>,
    acyclic: bool,
    issues: &mut Vec<Issue>,
) {
    for (i, node) in def.nodes.iter().enumerate() {
        let target = || Target::Node {
            key: shown(&node.key),
        };
        for (field, text) in node.step.templates() {
            let refs = match references(text) {
                Ok(refs) => refs,
                Err(why) => {
                    issues.push(Issue::new(
                        target(),
                        IssueCode::Template,
                        format!("{field}: {why}"),
                    ));
                    continue;
                }
            };
            for r in refs {
                match r {
                    Reference::Input(name) if !inputs.contains(name.as_str()) => {
                        issues.push(Issue::new(
                            target(),
                            IssueCode::UndeclaredReference,
                            format!(
                                "{field} reads input '{}', which is not declared",
                                shown(&name)
                            ),
                        ));
                    }
                    Reference::NodeOutput(key) => match index.get(key.as_str()) {
                        None => issues.push(Issue::new(
                            target(),
                            IssueCode::UndeclaredReference,
                            format!("{field} reads node '{}', which does not exist", shown(&key)),
                        )),
                        Some(&from) if acyclic && !is_upstream(graph, from, i) => {
                            issues.push(Issue::new(
                                target(),
                                IssueCode::NotUpstream,
                                format!(
                                    "{field} reads the output of '{key}', which does not run \
                                     before this node (connect it upstream)"
                                ),
                            ))
                        }
                        Some(_) => {}
                    },
                    Reference::Input(_) => {}
                }
            }
        }
    }
}

/// Whether `from` runs before `to`: a path of edges leads from one to the other.
fn is_upstream(graph: &DiGraph<(), ()>, from: usize, to: usize) -> bool {
    let (from, to) = (NodeIndex::new(from), NodeIndex::new(to));
    if graph.find_edge(from, to).is_some() {
        return true;
    }
    // Backwards from `to`: the common case (a direct parent) is answered above.
    let mut seen = HashSet::new();
    let mut queue = VecDeque::from([to]);
    while let Some(v) = queue.pop_front() {
        for p in graph.neighbors_directed(v, petgraph::Direction::Incoming) {
            if p == from {
                return true;
            }
            if seen.insert(p) {
                queue.push_back(p);
            }
        }
    }
    false
}

/// The cycle that an edge `from → to` would close, as the keys `from → to → … → from`, or
/// `None` when the edge is acyclic. The editor asks this while an edge is being drawn.
pub fn would_close_cycle(def: &Definition, from: &str, to: &str) -> Option<Vec<String>> {
    if from == to {
        return Some(vec![from.to_owned(), to.to_owned()]);
    }
    let mut out: HashMap<&str, Vec<&str>> = HashMap::new();
    for e in &def.edges {
        out.entry(e.from.as_str()).or_default().push(e.to.as_str());
    }
    // Breadth-first from `to`, remembering each node's parent, until `from` is found.
    let mut parent: HashMap<&str, &str> = HashMap::new();
    let mut queue = VecDeque::from([to]);
    while let Some(v) = queue.pop_front() {
        for &next in out.get(v).map(Vec::as_slice).unwrap_or_default() {
            if next == to || parent.contains_key(next) {
                continue;
            }
            parent.insert(next, v);
            if next == from {
                let mut path = vec![from.to_owned()];
                let mut at = from;
                while at != to {
                    at = parent[at];
                    path.push(at.to_owned());
                }
                path.push(from.to_owned());
                path.reverse();
                // Reversed, the walk reads from → to → … → from.
                return Some(path);
            }
            queue.push_back(next);
        }
    }
    None
}

/// The keys of the nodes `key` runs after, directly or not, in the definition's order: the
/// nodes its templates may reference as `{{nodes.<key>.output}}`.
pub fn upstream(def: &Definition, key: &str) -> Vec<String> {
    let mut into: HashMap<&str, Vec<&str>> = HashMap::new();
    for e in &def.edges {
        into.entry(e.to.as_str()).or_default().push(e.from.as_str());
    }
    let mut seen: HashSet<&str> = HashSet::new();
    let mut queue = VecDeque::from([key]);
    while let Some(v) = queue.pop_front() {
        for &p in into.get(v).map(Vec::as_slice).unwrap_or_default() {
            if p != key && seen.insert(p) {
                queue.push_back(p);
            }
        }
    }
    def.nodes
        .iter()
        .filter(|n| seen.contains(n.key.as_str()))
        .map(|n| n.key.clone())
        .collect()
}

/// A run's inputs checked against the declarations: unknown names and wrong types refused,
/// defaults filled in, required ones demanded. Returns the complete input map.
pub fn check_inputs(
    decls: &[InputDecl],
    given: &Map<String, Value>,
) -> Result<Map<String, Value>, Vec<Issue>> {
    let mut issues = Vec::new();
    for name in given.keys() {
        if !decls.iter().any(|d| &d.name == name) {
            issues.push(Issue::new(
                Target::Input { name: shown(name) },
                IssueCode::Input,
                format!("the workflow declares no input '{}'", shown(name)),
            ));
        }
    }
    let mut out = Map::new();
    for d in decls {
        let target = || Target::Input {
            name: d.name.clone(),
        };
        match given.get(&d.name).or(d.default.as_ref()) {
            Some(v) if !d.ty.admits(v) => issues.push(Issue::new(
                target(),
                IssueCode::Input,
                format!("input '{}' must be a {}", d.name, d.ty.as_str()),
            )),
            Some(v) => {
                out.insert(d.name.clone(), v.clone());
            }
            None if d.required => issues.push(Issue::new(
                target(),
                IssueCode::MissingInput,
                format!("input '{}' is required", d.name),
            )),
            None => {}
        }
    }
    if issues.is_empty() {
        Ok(out)
    } else {
        Err(issues)
    }
}
