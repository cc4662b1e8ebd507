//! The delegation policy: which ready node goes to which idle agent. Pure, so it is tested
//! without a database; the daemon only loads candidates, calls [`assign`], and persists.

use super::ids::{AgentId, NodeId};

/// A node whose dependencies are done, waiting for an agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadyNode {
    pub id: NodeId,
    pub required_capabilities: Vec<String>,
    /// 0..=10, higher first.
    pub priority: i16,
    /// When it became ready (ms since epoch): older first within a priority.
    pub ready_at_ms: i64,
    /// An agent this node is reserved for (e.g. by a workflow); others may steal it only
    /// when that agent is not idle.
    pub reserved_for: Option<AgentId>,
}

/// An agent that could take work now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdleAgent {
    pub id: AgentId,
    pub capabilities: Vec<String>,
}

impl IdleAgent {
    pub fn covers(&self, required: &[String]) -> bool {
        required.iter().all(|r| self.capabilities.contains(r))
    }
}

/// Pairs nodes with agents: highest priority first, oldest first within a priority; each
/// node goes to an idle agent whose capabilities cover it — its reserved agent if that one is
/// idle, otherwise any capable agent (work stealing) — preferring the least capable fitting
/// agent so generalists stay free for work only they can do. Each agent gets at most one node.
pub fn assign(ready: &[ReadyNode], idle: &[IdleAgent]) -> Vec<(NodeId, AgentId)> {
    let mut order: Vec<&ReadyNode> = ready.iter().collect();
    order.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.ready_at_ms.cmp(&b.ready_at_ms))
    });
    let mut free: Vec<&IdleAgent> = idle.iter().collect();
    free.sort_by_key(|a| (a.capabilities.len(), a.id));
    let mut out = Vec::new();
    for node in order {
        if free.is_empty() {
            break;
        }
        let reserved = node.reserved_for.and_then(|r| {
            free.iter()
                .position(|a| a.id == r && a.covers(&node.required_capabilities))
        });
        let pick = reserved.or_else(|| {
            free.iter()
                .position(|a| a.covers(&node.required_capabilities))
        });
        if let Some(i) = pick {
            out.push((node.id, free.remove(i).id));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn node(n: u128, caps: &[&str], priority: i16, at: i64) -> ReadyNode {
        ReadyNode {
            id: NodeId(Uuid::from_u128(n)),
            required_capabilities: caps.iter().map(|c| c.to_string()).collect(),
            priority,
            ready_at_ms: at,
            reserved_for: None,
        }
    }

    fn agent(n: u128, caps: &[&str]) -> IdleAgent {
        IdleAgent {
            id: AgentId(Uuid::from_u128(n)),
            capabilities: caps.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn higher_priority_then_older_work_goes_first() {
        let ready = [
            node(1, &["a"], 1, 10),
            node(2, &["a"], 5, 30),
            node(3, &["a"], 5, 20),
        ];
        let got = assign(&ready, &[agent(100, &["a"])]);
        assert_eq!(
            got,
            vec![(NodeId(Uuid::from_u128(3)), AgentId(Uuid::from_u128(100)))]
        );
    }

    #[test]
    fn only_agents_covering_every_required_capability_are_chosen() {
        let ready = [node(1, &["a", "b"], 0, 0)];
        assert!(assign(&ready, &[agent(100, &["a"]), agent(101, &["b"])]).is_empty());
        let got = assign(&ready, &[agent(100, &["a"]), agent(101, &["b", "a"])]);
        assert_eq!(got[0].1, AgentId(Uuid::from_u128(101)));
    }

    #[test]
    fn reserved_work_is_stolen_by_a_capable_idle_agent_when_its_owner_is_busy() {
        let mut n = node(1, &["a"], 0, 0);
        n.reserved_for = Some(AgentId(Uuid::from_u128(999)));
        let got = assign(std::slice::from_ref(&n), &[agent(100, &["a"])]);
        assert_eq!(got, vec![(n.id, AgentId(Uuid::from_u128(100)))]);
        let got = assign(&[n.clone()], &[agent(100, &["a"]), agent(999, &["a", "b"])]);
        assert_eq!(
            got[0].1,
            AgentId(Uuid::from_u128(999)),
            "the owner gets it when idle"
        );
    }

    proptest! {
        #[test]
        fn assignments_are_capable_and_one_per_node_and_agent(
            nodes in proptest::collection::vec((0usize..3, 0i16..3, 0i64..5), 0..20),
            agents in proptest::collection::vec(0usize..3, 0..10),
        ) {
            let caps = ["a", "b", "c"];
            let ready: Vec<_> = nodes.iter().enumerate()
                .map(|(i, &(c, p, t))| node(i as u128, &[caps[c]], p, t)).collect();
            let idle: Vec<_> = agents.iter().enumerate()
                .map(|(i, &c)| agent(1000 + i as u128, &[caps[c], caps[(c + 1) % 3]])).collect();
            let got = assign(&ready, &idle);
            let mut ns: Vec<_> = got.iter().map(|p| p.0).collect();
            let mut as_: Vec<_> = got.iter().map(|p| p.1).collect();
            ns.sort(); ns.dedup(); as_.sort(); as_.dedup();
            prop_assert_eq!(ns.len(), got.len());
            prop_assert_eq!(as_.len(), got.len());
            for (n, a) in &got {
                let n = ready.iter().find(|r| r.id == *n).unwrap();
                let a = idle.iter().find(|x| x.id == *a).unwrap();
                prop_assert!(a.covers(&n.required_capabilities));
            }
            // Work conserving: no unassigned node has a free capable agent left.
            for r in ready.iter().filter(|r| !got.iter().any(|g| g.0 == r.id)) {
                let left = idle.iter().filter(|a| !got.iter().any(|g| g.1 == a.id));
                for a in left {
                    prop_assert!(!a.covers(&r.required_capabilities));
                }
            }
        }
    }
}
