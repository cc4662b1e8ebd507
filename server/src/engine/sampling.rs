//! Sampling: this process's CPU and memory and the agents' counters, on a fixed tick.

use super::Engine;
use tokio_util::sync::CancellationToken;

impl Engine {
    /// Samples this process's CPU and memory, and the agents' counters (one process per tick
    /// does the agents: a transaction-scoped advisory lock).
    pub(super) async fn metrics_loop(self, shutdown: CancellationToken) {
        let mut sampler = ProcessSampler::new();
        let mut tick = tokio::time::interval(self.config.metrics_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.sample_once(&mut sampler).await {
                tracing::warn!(error = %e, "taking metric samples failed");
            }
        }
    }

    /// One round of samples; returns how many agent samples were written.
    pub async fn sample_once(&self, sampler: &mut ProcessSampler) -> anyhow::Result<u64> {
        let (cpu, rss) = sampler.sample();
        app::db::metrics::record_process(&self.pool, self.worker_id, cpu, rss).await?;
        let mut tx = self.pool.begin().await?;
        let ours: bool = sqlx::query_scalar(
            "select pg_try_advisory_xact_lock(hashtext('flotilla.agent_samples'))",
        )
        .fetch_one(&mut *tx)
        .await?;
        let written = if ours {
            app::db::metrics::record_agents(&mut *tx).await?
        } else {
            0
        };
        tx.commit().await?;
        Ok(written)
    }
}

/// This process's CPU and memory, via sysinfo. CPU use is measured between two refreshes, so
/// the sampler keeps its state from one sample to the next (the first reads 0).
pub struct ProcessSampler {
    /// None where sysinfo cannot read processes (samples then read zero).
    system: Option<sysinfo::System>,
    pid: Option<sysinfo::Pid>,
}

impl ProcessSampler {
    pub fn new() -> Self {
        Self {
            system: sysinfo::System::new()
                .inspect_err(|e| tracing::warn!(error = %e, "process metrics unavailable"))
                .ok(),
            pid: sysinfo::get_current_pid().ok(),
        }
    }

    /// (percent of one core, resident bytes).
    pub fn sample(&mut self) -> (f32, i64) {
        let (Some(system), Some(pid)) = (self.system.as_mut(), self.pid) else {
            return (0.0, 0);
        };
        system.refresh_processes_specifics(
            sysinfo::ProcessesToUpdate::Some(&[pid]),
            false,
            sysinfo::ProcessRefreshKind::nothing()
                .with_cpu()
                .with_memory(),
        );
        system.process(pid).map_or((0.0, 0), |p| {
            (p.cpu_usage(), i64::try_from(p.memory()).unwrap_or(i64::MAX))
        })
    }
}

impl Default for ProcessSampler {
    fn default() -> Self {
        Self::new()
    }
}
