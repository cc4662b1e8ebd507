//! A plan: the subtasks of a task and their dependencies, checked as a DAG with petgraph.
//! The same rules apply to any run's graph, whether a planner or a person drew it.

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graphmap::DiGraphMap;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The most nodes one run may have; keeps a runaway planner from flooding the queue.
pub const MAX_NODES: usize = 500;

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
    #[error("subtask key '{0}' is used twice")]
    DuplicateKey(String),
    #[error("subtask '{0}' has an empty description")]
    EmptyDescription(String),
    #[error("subtask '{0}' depends on itself")]
    SelfDependency(String),
    #[error("subtask '{from}' depends on unknown subtask '{missing}'")]
    UnknownDependency { from: String, missing: String },
    #[error("subtask '{key}' needs unknown capability '{capability}'")]
    UnknownCapability { key: String, capability: String },
    #[error("subtask '{0}' has a priority outside 0..=10")]
    Priority(String),
    #[error("dependencies form a cycle: {}", .0.join(" → "))]
    Cycle(Vec<String>),
}

/// A plan that passed every rule; `order` is a topological order of the subtask indices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatedPlan {
    pub subtasks: Vec<SubtaskDraft>,
    pub order: Vec<usize>,
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
            if index.insert(s.key.as_str(), i).is_some() {
                return Err(PlanError::DuplicateKey(s.key.clone()));
            }
            if s.description.trim().is_empty() {
                return Err(PlanError::EmptyDescription(s.key.clone()));
            }
            if !(0..=10).contains(&s.priority) {
                return Err(PlanError::Priority(s.key.clone()));
            }
            if let Some(cap) = s
                .required_capabilities
                .iter()
                .find(|c| !known_capabilities.contains(&c.as_str()))
            {
                return Err(PlanError::UnknownCapability {
                    key: s.key.clone(),
                    capability: cap.clone(),
                });
            }
        }
        let mut graph: DiGraphMap<usize, ()> = DiGraphMap::with_capacity(n, n);
        for i in 0..n {
            graph.add_node(i);
        }
        for (i, s) in draft.subtasks.iter().enumerate() {
            for dep in &s.depends_on {
                if dep == &s.key {
                    return Err(PlanError::SelfDependency(s.key.clone()));
                }
                let &d = index
                    .get(dep.as_str())
                    .ok_or_else(|| PlanError::UnknownDependency {
                        from: s.key.clone(),
                        missing: dep.clone(),
                    })?;
                graph.add_edge(d, i, ());
            }
        }
        let order = match toposort(&graph, None) {
            Ok(order) => order,
            Err(_) => return Err(PlanError::Cycle(cycle_path(&graph, &draft.subtasks))),
        };
        Ok(Self {
            subtasks: draft.subtasks,
            order,
        })
    }

    /// Indices of the subtasks `i` depends on.
    pub fn dependencies(&self, i: usize) -> Vec<usize> {
        self.subtasks[i]
            .depends_on
            .iter()
            .filter_map(|d| self.subtasks.iter().position(|s| &s.key == d))
            .collect()
    }
}

/// One concrete cycle, as keys in dependency order with the first repeated at the end.
fn cycle_path(graph: &DiGraphMap<usize, ()>, subtasks: &[SubtaskDraft]) -> Vec<String> {
    // A strongly connected component with more than one node contains a cycle; walk it.
    let Some(component) = tarjan_scc(graph).into_iter().find(|c| c.len() > 1) else {
        return Vec::new();
    };
    let start = component[0];
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
    path.into_iter().map(|i| subtasks[i].key.clone()).collect()
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
                for d in plan.dependencies(i) {
                    prop_assert!(seen[d], "dependency ran after its dependent");
                }
                seen[i] = true;
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
