//! The delegation daemon: one leader at a time across all processes (a session-level advisory
//! lock on a dedicated connection; if its process dies, the connection closes, the lock is
//! released and another process's daemon takes over). Each pass rescues expired leases and
//! assigns ready nodes to idle capable agents.

use super::{Engine, Outcome};
use app::db::queue;
use sqlx::Connection;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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
        if !housekeeping && !queue::daemon_has_work(&self.pool).await? {
            return Ok(Outcome::Idle);
        }
        let mut tx = self.pool.begin().await?;
        let (rescued, recovered) = if housekeeping {
            (
                queue::rescue_expired(&mut tx).await?,
                queue::recover_agents(&mut tx).await?,
            )
        } else {
            (0, 0)
        };
        // Assignment first: it is on the latency path, finishing runs is not.
        let started = self
            .assign_and_claim(&mut tx, queue::Released::none())
            .await?;
        let finished = app::db::runs::finish_completed(&mut tx).await?;
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
