//! The delegation daemon: one leader at a time across all processes (a session-level advisory
//! lock on a dedicated connection; if its process dies, the connection closes, the lock is
//! released and another process's daemon takes over). Each pass rescues expired leases and
//! assigns ready nodes to idle capable agents.

use super::{Engine, Outcome};
use app::db::queue;
use sqlx::Connection;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The advisory lock key that makes a daemon the leader ("flotilla" in ASCII, as a number).
const LEADER_LOCK: i64 = 0x666c_6f74_696c_6c61;

impl Engine {
    /// One daemon pass (the caller must be the leader, or a test).
    pub async fn daemon_once(&self) -> anyhow::Result<Outcome> {
        let mut tx = self.pool.begin().await?;
        let rescued = queue::rescue_expired(&mut tx).await?;
        let recovered = queue::recover_agents(&mut tx).await?;
        let finished = app::db::runs::finish_completed(&mut tx).await?;
        let waited =
            queue::assign_ready(&mut tx, self.config.assign_batch, self.config.lease_secs).await?;
        tx.commit().await?;
        for secs in &waited {
            self.metrics.assignment_latency.observe(*secs);
        }
        let assigned = waited.len();
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
                    let lead = self.run_loop("daemon", &shutdown, || self.daemon_once());
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
