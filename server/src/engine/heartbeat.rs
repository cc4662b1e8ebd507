//! The worker's heartbeat: leases of running nodes renewed, orphaned runners stopped.

use super::Engine;
use app::db::events::Stop;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

impl Engine {
    /// Renews the leases of the nodes running here, and stops those that are no longer ours
    /// (cancelled or released while a stop notification was lost). Returns how many it renewed.
    pub async fn heartbeat_once(&self) -> anyhow::Result<usize> {
        let running = self.running.ids();
        let mut conn = self.pool.acquire().await?;
        let renewed =
            app::db::queue::heartbeat(&mut conn, self.worker_id, self.config.lease_secs, &running)
                .await?;
        // A node just finished may also be missing: stopping a finished runner does nothing.
        for node in running.iter().filter(|n| !renewed.contains(n)) {
            self.running.stop(Stop::Node(*node));
        }
        Ok(renewed.len())
    }

    pub(super) async fn heartbeat_loop(self, shutdown: CancellationToken) {
        let period = Duration::from_secs_f64(self.config.heartbeat_secs);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(period) => {}
            }
            if let Err(e) = self.heartbeat_once().await {
                tracing::warn!(error = %e, "heartbeat failed");
            }
        }
    }
}
