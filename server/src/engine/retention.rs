//! Retention: old events and samples pruned, raw samples rolled up, one process at a time.

use super::Engine;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

impl Engine {
    /// Prunes events and metric samples past the retention window and rolls raw samples up
    /// into hourly ones, each batch in its own short transaction; one process at a time (a
    /// transaction-scoped advisory lock). Returns how many rows it deleted or replaced.
    pub async fn retention_once(&self) -> anyhow::Result<u64> {
        const BATCH: i64 = 5_000;
        // Enough to catch up on a month of history in one run, bounded so a run ends.
        const MAX_HOURS_PER_RUN: usize = 24 * 31;
        let full = u64::try_from(BATCH).unwrap_or(u64::MAX);
        let days = self.config.retention_days;
        let mut total = 0;
        loop {
            let Some(mut tx) = self.retention_tx().await? else {
                return Ok(total);
            };
            let deleted = app::db::events::prune(&mut *tx, days, BATCH).await?;
            tx.commit().await?;
            total += deleted;
            if deleted < full {
                break;
            }
        }
        loop {
            let Some(mut tx) = self.retention_tx().await? else {
                return Ok(total);
            };
            let deleted = app::db::metrics::prune(&mut tx, days, BATCH).await?;
            tx.commit().await?;
            total += deleted;
            if deleted < full {
                break;
            }
        }
        for _ in 0..MAX_HOURS_PER_RUN {
            let Some(mut tx) = self.retention_tx().await? else {
                break;
            };
            let replaced =
                app::db::metrics::downsample_oldest_hour(&mut tx, self.config.metrics_raw_hours)
                    .await?;
            tx.commit().await?;
            total += replaced;
            if replaced == 0 {
                break;
            }
        }
        Ok(total)
    }

    /// A transaction holding the retention lock, or None when another process holds it.
    async fn retention_tx(
        &self,
    ) -> anyhow::Result<Option<sqlx::Transaction<'static, sqlx::Postgres>>> {
        let mut tx = self.pool.begin().await?;
        let ours: bool =
            sqlx::query_scalar("select pg_try_advisory_xact_lock(hashtext('flotilla.retention'))")
                .fetch_one(&mut *tx)
                .await?;
        Ok(ours.then_some(tx))
    }

    pub(super) async fn retention_loop(self, shutdown: CancellationToken) {
        loop {
            match self.retention_once().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    rows = n,
                    days = self.config.retention_days,
                    "pruned old events and samples, rolled up raw samples"
                ),
                Err(e) => tracing::warn!(error = %e, "retention failed"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(600)) => {}
            }
        }
    }
}
