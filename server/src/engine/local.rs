//! Hand-off of work to this process's own worker loop, inside the transaction that made the
//! work ready.
//!
//! Without it every step waits for a commit and a NOTIFY round trip three times over
//! (completion → the daemon assigns → a worker claims). With it, the transaction that makes
//! work ready (a completion, a stored plan, the daemon's pass) also assigns it and starts what
//! this process has free slots for, and those nodes go straight to the local worker loop after
//! the commit. Claims stay fenced exactly as before: if the process dies before running them, their
//! leases expire and the daemon re-queues them.

use app::db::queue::ClaimedNode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio::sync::mpsc;

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
