//! Hand-off of work to this process's own worker loop, inside the transaction that made the
//! work ready.
//!
//! Without it every step waits for a commit and a NOTIFY round trip three times over
//! (completion → the daemon assigns → a worker claims). With it, the transaction that makes
//! work ready (a completion, a stored plan, the daemon's pass) also assigns it and starts what
//! this process has free slots for, and those nodes go straight to the local worker loop after
//! the commit. Claims stay fenced exactly as before: if the process dies before running them, their
//! leases expire and the daemon re-queues them.

use app::db::events::Stop;
use app::db::queue::ClaimedNode;
use app::domain::ids::{AgentId, NodeId, RunId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The worker loop's capacity, shared by everything that starts nodes in this process.
#[derive(Debug)]
pub struct Slots {
    max: usize,
    used: AtomicUsize,
    closed: AtomicBool,
}

impl Slots {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            used: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        }
    }

    /// Reserves up to `want` free slots; returns how many it got (none once closed).
    pub fn reserve(&self, want: usize) -> usize {
        if self.closed.load(Ordering::Acquire) {
            return 0;
        }
        let mut got = 0;
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                got = self.max.saturating_sub(used).min(want);
                (got > 0).then_some(used + got)
            });
        got
    }

    /// Free slots right now, without reserving them.
    pub fn free(&self) -> usize {
        self.max.saturating_sub(self.used())
    }

    /// Counts `n` nodes that are already running as taking slots, even past the limit: the
    /// worker loop claims without holding a reservation, so that it never blocks the
    /// transactions that claim for it on the latency path (their reservation would find every
    /// slot held for the length of the loop's query). The overshoot is bounded by one batch.
    pub fn take(&self, n: usize) {
        self.used.fetch_add(n, Ordering::AcqRel);
    }

    pub fn release(&self, n: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(n))
            });
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// No more reservations (shutdown).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }
}

/// This process's worker loop, as seen by the daemon and the reporter.
#[derive(Clone, Debug)]
pub struct Local {
    pub slots: Arc<Slots>,
    pub handoff: mpsc::UnboundedSender<ClaimedNode>,
}

/// The nodes this process is running right now, each with the token that stops it. The
/// heartbeat renews the leases of these and no others, so a node whose runner is gone (a
/// panic, an abort) is not kept alive: its lease expires and it is rescued. A cancel or a
/// terminate reaches a node through here.
#[derive(Debug, Default)]
pub struct Running(Mutex<HashMap<NodeId, Runner>>);

#[derive(Debug)]
struct Runner {
    run: RunId,
    agent: AgentId,
    stop: CancellationToken,
}

impl Running {
    /// Registers a node about to run; the guard unregisters it and frees its slot when the
    /// runner ends, however it ends.
    pub fn start(self: &Arc<Self>, node: &ClaimedNode, slots: Arc<Slots>) -> RunGuard {
        let stop = CancellationToken::new();
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(
            node.id,
            Runner {
                run: node.run_id,
                agent: node.agent_id,
                stop: stop.clone(),
            },
        );
        RunGuard {
            running: self.clone(),
            node: node.id,
            slots,
            stop,
        }
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect()
    }

    /// Stops the nodes `stop` names; returns how many were running here.
    pub fn stop(&self, stop: Stop) -> usize {
        let running = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut n = 0;
        for (id, r) in running.iter() {
            let hit = match stop {
                Stop::Run(run) => r.run == run,
                Stop::Node(node) => *id == node,
                Stop::Agent(agent) => r.agent == agent,
            };
            if hit {
                r.stop.cancel();
                n += 1;
            }
        }
        n
    }
}

/// A running node's registration and slot, given back on drop.
pub struct RunGuard {
    running: Arc<Running>,
    node: NodeId,
    slots: Arc<Slots>,
    /// Cancelled when the node must stop (its task cancelled, its agent terminated).
    pub stop: CancellationToken,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        self.running
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.node);
        self.slots.release(1);
    }
}

/// Slots reserved for a claim in an open transaction. Hand the nodes over once the transaction
/// has committed; dropped without [`LocalClaim::hand_off`] (the transaction failed), the slots
/// are given back and the nodes are not run here.
#[must_use]
pub struct LocalClaim {
    local: Option<Local>,
    reserved: usize,
    pub nodes: Vec<ClaimedNode>,
}

impl LocalClaim {
    pub fn none() -> Self {
        Self {
            local: None,
            reserved: 0,
            nodes: Vec::new(),
        }
    }

    pub fn new(local: Local, reserved: usize, nodes: Vec<ClaimedNode>) -> Self {
        // Slots not filled are returned at once.
        local.slots.release(reserved.saturating_sub(nodes.len()));
        let reserved = nodes.len();
        Self {
            local: Some(local),
            reserved,
            nodes,
        }
    }

    /// Sends the claimed nodes to the worker loop, which now owns their slots.
    pub fn hand_off(mut self) {
        let Some(local) = self.local.take() else {
            return;
        };
        for node in std::mem::take(&mut self.nodes) {
            if local.handoff.send(node).is_err() {
                // The loop has stopped (shutdown): the lease expires and the daemon re-queues.
                local.slots.release(1);
            }
        }
        self.reserved = 0;
    }
}

impl Drop for LocalClaim {
    fn drop(&mut self) {
        if let Some(local) = &self.local {
            local.slots.release(self.reserved);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_never_exceed_the_slots_and_stop_after_close() {
        let slots = Slots::new(4);
        assert_eq!(slots.reserve(3), 3);
        assert_eq!(slots.reserve(3), 1);
        assert_eq!(slots.reserve(1), 0);
        slots.release(2);
        assert_eq!(slots.used(), 2);
        slots.close();
        assert_eq!(slots.reserve(1), 0);
        slots.release(10);
        assert_eq!(slots.used(), 0, "never below zero");
    }

    fn claimed(run: u128, agent: u128) -> ClaimedNode {
        ClaimedNode {
            id: NodeId(uuid::Uuid::new_v4()),
            run_id: RunId(uuid::Uuid::from_u128(run)),
            key: "s1".into(),
            description: "d".into(),
            agent_id: AgentId(uuid::Uuid::from_u128(agent)),
            attempt: 1,
            lease_token: uuid::Uuid::nil(),
            provider: "simulated".into(),
            model: "simulated".into(),
            system_prompt: String::new(),
            tools: vec![],
            mcp_servers: vec![],
            context: vec![],
            tool_call: None,
        }
    }

    #[test]
    fn a_runner_gives_back_its_slot_and_registration_however_it_ends() {
        let slots = Arc::new(Slots::new(2));
        let running = Arc::new(Running::default());
        slots.take(1);
        let node = claimed(1, 1);
        let guard = running.start(&node, slots.clone());
        assert_eq!(running.ids(), [node.id]);
        let panicked = std::thread::spawn(move || {
            let _guard = guard;
            panic!("a runner panics");
        })
        .join();
        assert!(panicked.is_err());
        assert!(running.ids().is_empty());
        assert_eq!(slots.used(), 0);
    }

    #[test]
    fn a_stop_reaches_the_nodes_of_its_run_node_or_agent_only() {
        let slots = Arc::new(Slots::new(8));
        let running = Arc::new(Running::default());
        let (a, b, c) = (claimed(1, 10), claimed(1, 11), claimed(2, 12));
        let (ga, gb, gc) = (
            running.start(&a, slots.clone()),
            running.start(&b, slots.clone()),
            running.start(&c, slots.clone()),
        );
        assert_eq!(running.stop(Stop::Run(a.run_id)), 2);
        assert!(ga.stop.is_cancelled() && gb.stop.is_cancelled() && !gc.stop.is_cancelled());
        assert_eq!(running.stop(Stop::Agent(c.agent_id)), 1);
        assert!(gc.stop.is_cancelled());
        assert_eq!(running.stop(Stop::Node(NodeId(uuid::Uuid::nil()))), 0);
    }

    #[test]
    fn an_unfinished_claim_gives_its_slots_back() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let local = Local {
            slots: Arc::new(Slots::new(8)),
            handoff: tx,
        };
        let got = local.slots.reserve(8);
        let claim = LocalClaim::new(local.clone(), got, Vec::new());
        assert_eq!(local.slots.used(), 0, "nothing claimed: all returned");
        drop(claim);
        assert_eq!(local.slots.used(), 0);
    }
}
