//! Hand-off: what an assigning transaction started for this process reaches its worker loop
//! once the transaction has committed.

use super::{Engine, local};

impl Engine {
    /// In the caller's transaction: assigns ready nodes to idle capable agents and, when this
    /// process runs a worker loop with free slots, starts as many of them as it has room for
    /// in the same statement. Pass the result to [`Engine::after_commit`] once the transaction
    /// has committed. What is assigned but not started here is claimed by a worker loop (this
    /// one's or another process's) once woken.
    ///
    /// `released` are the dependents the same transaction's completions made ready.
    pub(crate) async fn assign_and_claim(
        &self,
        conn: &mut sqlx::PgConnection,
        released: app::db::queue::Released,
    ) -> Result<Started, sqlx::Error> {
        let local = self.local.get().cloned();
        let mut reserved = 0;
        let mut reserve = |want: usize| {
            reserved = local.as_ref().map_or(0, |l| l.slots.reserve(want));
            reserved
        };
        let here = local.as_ref().map(|_| app::db::queue::RunHere {
            worker: self.worker_id,
            reserve: &mut reserve,
        });
        let assigned = app::db::queue::assign_ready(
            &mut *conn,
            self.config.assign_batch,
            self.config.lease_secs,
            here,
            released,
            &self.capabilities,
        )
        .await;
        let (assigned, claim) = match (assigned, local) {
            (Ok(a), Some(local)) => (a.waited, local::LocalClaim::new(local, reserved, a.started)),
            (Ok(a), None) => (a.waited, local::LocalClaim::none()),
            (Err(e), local) => {
                if let Some(local) = local {
                    local.slots.release(reserved);
                }
                return Err(e);
            }
        };
        Ok(Started {
            waited: assigned,
            claim,
        })
    }

    /// Once the transaction that assigned has committed: hands what it started here to the
    /// worker loop, records how long each node waited, and wakes this process's loops and
    /// (coalesced) the others.
    pub fn after_commit(&self, started: Started) {
        let left_unclaimed = started.waited.len() > started.claim.nodes.len();
        started.claim.hand_off();
        for secs in &started.waited {
            self.assignment_latency.observe(*secs);
        }
        self.work_changed(left_unclaimed);
    }
}

/// What a transaction assigned, and started for this process, to act on once it has
/// committed ([`Engine::after_commit`]). Dropped instead (the transaction failed), the
/// reserved slots are given back and nothing runs here.
#[must_use]
pub struct Started {
    /// Per assigned node, how long it had waited since it became ready (seconds).
    waited: Vec<f64>,
    claim: local::LocalClaim,
}

impl Started {
    pub fn none() -> Self {
        Self {
            waited: Vec::new(),
            claim: local::LocalClaim::none(),
        }
    }

    /// How many nodes were assigned.
    pub fn assigned(&self) -> usize {
        self.waited.len()
    }
}
