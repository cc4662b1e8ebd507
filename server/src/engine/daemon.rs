//! The delegation daemon: one leader at a time across all processes (a session-level advisory
//! lock on a dedicated connection; if its process dies, the connection closes, the lock is
//! released and another process's daemon takes over). Each pass rescues expired leases and
//! assigns ready nodes to idle capable agents.

use super::{Engine, Outcome};
use app::db::{agent_state, queue};
use sqlx::Connection;
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Which runs a daemon pass checks for being finished. Checking every running run on every
/// pass read each one's open nodes (dead index entries and all) a hundred times a second
/// under load; a pass now checks the runs this process recorded completions for since the
/// last one, and all runs on housekeeping or after another process's wake-up (its completions
/// are not known here).
#[derive(Debug)]
pub(super) struct FinishHints {
    /// Hints are kept only while this process leads: another leader is woken by NOTIFY.
    leading: AtomicBool,
    /// Another process woke this one (or the wake-up listener reconnected).
    foreign: AtomicBool,
    runs: Mutex<HashSet<Uuid>>,
}

/// More hinted runs than this and the next pass checks them all instead.
const MAX_HINTS: usize = 10_000;

impl Default for FinishHints {
    fn default() -> Self {
        Self {
            leading: AtomicBool::new(false),
            // The first pass checks everything.
            foreign: AtomicBool::new(true),
            runs: Mutex::default(),
        }
    }
}

impl FinishHints {
    /// After a commit that recorded completions of these runs' nodes.
    pub(super) fn record(&self, runs: impl IntoIterator<Item = Uuid>) {
        if !self.leading.load(Ordering::Acquire) {
            return;
        }
        let mut hinted = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        hinted.extend(runs);
        if hinted.len() > MAX_HINTS {
            hinted.clear();
            self.foreign.store(true, Ordering::Release);
        }
    }

    pub(super) fn foreign_wake(&self) {
        self.foreign.store(true, Ordering::Release);
    }

    /// The runs the next pass checks: `None` for all of them.
    fn take(&self, all: bool) -> Option<Vec<Uuid>> {
        let hinted: Vec<Uuid> = self
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        let foreign = self.foreign.swap(false, Ordering::AcqRel);
        if foreign || all { None } else { Some(hinted) }
    }

    fn set_leading(&self, leading: bool) {
        self.leading.store(leading, Ordering::Release);
        if !leading {
            self.runs.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
        self.foreign.store(true, Ordering::Release);
    }
}

/// How often the leader rescues expired leases and clears recovered agents.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// The advisory lock key that makes a daemon the leader ("flotilla" in ASCII, as a number).
const LEADER_LOCK: i64 = 0x666c_6f74_696c_6c61;

impl Engine {
    /// One full daemon pass (the caller must be the leader, or a test).
    pub async fn daemon_once(&self) -> anyhow::Result<Outcome> {
        self.daemon_pass(true).await
    }

    /// A pass: assign ready work and finish completed runs; with `housekeeping`, first rescue
    /// expired leases and clear recovered agents. Leases last a minute, so the loop does the
    /// housekeeping about once a second rather than in every pass on the latency path.
    async fn daemon_pass(&self, housekeeping: bool) -> anyhow::Result<Outcome> {
        // Hints a failed pass drops are covered by the next housekeeping pass, which checks all.
        let among = match self.finish_hints.take(housekeeping) {
            Some(hinted) => hinted,
            None => app::db::runs::in_progress(&self.pool).await?,
        };
        if !housekeeping && !queue::daemon_has_work(&self.pool, &among).await? {
            return Ok(Outcome::Idle);
        }
        let mut tx = self.pool.begin().await?;
        let (rescued, recovered) = if housekeeping {
            (
                queue::rescue_expired(&mut tx, &self.config.retry).await?,
                agent_state::recover_agents(&mut tx).await?,
            )
        } else {
            (0, 0)
        };
        // Assignment first: it is on the latency path, finishing runs is not.
        let started = self
            .assign_and_claim(&mut tx, queue::Released::none())
            .await?;
        let finished = app::db::runs::finish_completed(&mut tx, &among, self.summarizes()).await?;
        tx.commit().await?;
        let assigned = started.assigned();
        if assigned > 0 {
            self.after_commit(started);
        }
        if recovered > 0 {
            tracing::info!(recovered, "agents seen alive again");
        }
        if rescued > 0 {
            tracing::warn!(rescued, "re-queued work whose lease expired");
        }
        tracing::debug!(finished, assigned, "daemon pass");
        Ok(if assigned > 0 {
            Outcome::Worked
        } else {
            Outcome::Idle
        })
    }

    pub(super) async fn daemon_loop(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let mut leader = match self.pool.acquire().await {
                Ok(c) => c.detach(),
                Err(e) => {
                    tracing::warn!(error = %e, "daemon: no connection");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let got: Result<bool, _> =
                sqlx::query_scalar!("select pg_try_advisory_lock($1) as \"got!\"", LEADER_LOCK)
                    .fetch_one(&mut leader)
                    .await;
            match got {
                Ok(true) => {
                    tracing::info!(worker = %self.worker_id, "this process leads delegation");
                    self.finish_hints.set_leading(true);
                    // Lead until shutdown or until the lock connection fails.
                    let last_housekeeping = std::sync::Mutex::new(None::<std::time::Instant>);
                    let pass = || {
                        let due = last_housekeeping.lock().map_or(true, |mut last| {
                            let due = last.is_none_or(|t| t.elapsed() >= HOUSEKEEPING);
                            if due {
                                *last = Some(std::time::Instant::now());
                            }
                            due
                        });
                        self.daemon_pass(due)
                    };
                    let lead = self.run_loop("daemon", &shutdown, pass);
                    tokio::select! {
                        () = lead => {}
                        () = watch_connection(&mut leader) => {
                            tracing::warn!("lost the leader connection; stepping down");
                        }
                    }
                    self.finish_hints.set_leading(false);
                    let _ = leader.close().await;
                }
                Ok(false) => {
                    let _ = leader.close().await;
                    // Someone else leads; check again later in case they die.
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs_f64(self.config.heartbeat_secs.min(5.0))) => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "daemon: leader election failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// Returns when the connection holding the leader lock stops answering.
async fn watch_connection(conn: &mut sqlx::PgConnection) {
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        if conn.ping().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn a_pass_checks_the_hinted_runs_and_all_of_them_when_it_cannot_know() {
        let hints = FinishHints::default();
        hints.record([run(1)]);
        assert_eq!(hints.take(false), None, "the first pass checks everything");
        hints.record([run(1)]);
        assert_eq!(hints.take(false), Some(vec![]), "not leading: nothing kept");

        hints.set_leading(true);
        assert_eq!(hints.take(false), None, "a new leader checks everything");
        hints.record([run(2), run(2)]);
        assert_eq!(hints.take(false), Some(vec![run(2)]));
        assert_eq!(hints.take(false), Some(vec![]), "taken once");

        hints.record([run(3)]);
        hints.foreign_wake();
        assert_eq!(hints.take(false), None, "another process's completions");
        hints.record([run(4)]);
        assert_eq!(hints.take(true), None, "housekeeping checks everything");
        assert_eq!(hints.take(false), Some(vec![]), "and took the hints");

        hints.record((0..=MAX_HINTS as u128).map(run));
        assert_eq!(hints.take(false), None, "too many to keep");

        hints.set_leading(false);
        hints.record([run(5)]);
        assert_eq!(
            hints.take(false),
            None,
            "stepping down: the next leader checks all"
        );
        assert_eq!(hints.take(false), Some(vec![]));
    }
}
