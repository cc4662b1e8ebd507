//! The orchestration engine: planner, delegation daemon and agent worker. Each exposes one step
//! (`plan_once`, `daemon_once`, `work_once`) that tests call directly; [`Engine::spawn`] adds the
//! loops, wake-ups, heartbeats and shutdown. Any number of processes may run engines against one
//! database: claims are `FOR UPDATE SKIP LOCKED`, the daemon is a single leader (advisory lock),
//! and leases are kept in database time.

pub mod daemon;
pub mod planner;
pub mod provider;
pub mod worker;

use app::db::events::WAKE_CHANNEL;
use app::domain::ids::WorkerId;
use app::domain::run::RetryPolicy;
use provider::Providers;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// What one step did: tests assert it, loops use it to decide whether to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Worked,
    Idle,
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How long a claim lives without a heartbeat (`FLOTILLA_LEASE_SECS`, default 60).
    pub lease_secs: f64,
    /// How often a worker renews its leases (`FLOTILLA_HEARTBEAT_SECS`, default 10).
    pub heartbeat_secs: f64,
    /// Fallback poll when no wake-up arrives (ms).
    pub poll_ms: u64,
    /// Nodes one process runs at once (`FLOTILLA_WORKER_SLOTS`, default 64).
    pub slots: usize,
    /// Nodes the daemon considers per pass.
    pub assign_batch: i64,
    pub retry: RetryPolicy,
    /// Latency of the simulated model (`FLOTILLA_SIM_LATENCY_MS`, default 400).
    pub simulated_latency: Duration,
    pub planner_provider: String,
    pub planner_model: String,
    /// How long shutdown waits for in-flight nodes before re-queueing them.
    pub shutdown_grace: Duration,
    /// Events older than this many days are pruned (`FLOTILLA_RETENTION_DAYS`, default 30).
    pub retention_days: i64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            lease_secs: 60.0,
            heartbeat_secs: 10.0,
            poll_ms: 500,
            slots: 64,
            assign_batch: 256,
            retry: RetryPolicy::default(),
            simulated_latency: Duration::from_millis(400),
            planner_provider: "simulated".into(),
            planner_model: "simulated".into(),
            shutdown_grace: Duration::from_secs(10),
            retention_days: 30,
        }
    }
}

/// One process's engine.
#[derive(Clone)]
pub struct Engine {
    pub pool: PgPool,
    pub config: Arc<EngineConfig>,
    pub worker_id: WorkerId,
    pub providers: Providers,
    wake: Arc<Notify>,
}

impl Engine {
    /// Registers this process as a worker.
    pub async fn register(pool: PgPool, config: EngineConfig) -> anyhow::Result<Self> {
        let worker_id = WorkerId(Uuid::new_v4());
        let hostname = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "unknown".into());
        sqlx::query!(
            "insert into workers (id, hostname, pid) values ($1, $2, $3)",
            worker_id.0,
            hostname,
            i32::try_from(std::process::id()).unwrap_or(0)
        )
        .execute(&pool)
        .await?;
        let providers = Providers::new(config.simulated_latency);
        Ok(Self {
            pool,
            config: Arc::new(config),
            worker_id,
            providers,
            wake: Arc::new(Notify::new()),
        })
    }

    /// Runs the planner, daemon and worker loops until `shutdown`, then drains.
    pub fn spawn(self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tasks = JoinSet::new();
            tasks.spawn(self.clone().listen(shutdown.clone()));
            tasks.spawn(self.clone().planner_loop(shutdown.clone()));
            tasks.spawn(self.clone().daemon_loop(shutdown.clone()));
            tasks.spawn(self.clone().heartbeat_loop(shutdown.clone()));
            tasks.spawn(self.clone().worker_loop(shutdown.clone()));
            tasks.spawn(self.clone().retention_loop(shutdown.clone()));
            while tasks.join_next().await.is_some() {}
            let _ = sqlx::query!(
                "update workers set stopped_at = now() where id = $1",
                self.worker_id.0
            )
            .execute(&self.pool)
            .await;
            tracing::info!(worker = %self.worker_id, "engine stopped");
        })
    }

    /// Forwards database wake-ups to the loops. If the listener drops, loops keep polling.
    async fn listen(self, shutdown: CancellationToken) {
        loop {
            let listener = async {
                let mut l = PgListener::connect_with(&self.pool).await?;
                l.listen(WAKE_CHANNEL).await?;
                loop {
                    l.recv().await?;
                    self.wake.notify_waiters();
                }
                #[allow(unreachable_code)]
                Ok::<(), sqlx::Error>(())
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                res = listener => {
                    if let Err(e) = res {
                        tracing::warn!(error = %e, "wake-up listener lost; polling until it is back");
                    }
                }
            }
            // Whatever was missed while reconnecting is found by the next pass.
            self.wake.notify_waiters();
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Waits for a wake-up, the poll interval, or shutdown; false on shutdown.
    async fn idle_wait(&self, shutdown: &CancellationToken) -> bool {
        tokio::select! {
            () = shutdown.cancelled() => false,
            () = self.wake.notified() => true,
            () = tokio::time::sleep(Duration::from_millis(self.config.poll_ms)) => true,
        }
    }

    /// Repeats `step` while it finds work; waits when idle; backs off on errors.
    async fn run_loop<F, Fut>(&self, name: &'static str, shutdown: &CancellationToken, step: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = anyhow::Result<Outcome>>,
    {
        let mut backoff = Duration::from_millis(100);
        while !shutdown.is_cancelled() {
            match step().await {
                Ok(Outcome::Worked) => backoff = Duration::from_millis(100),
                Ok(Outcome::Idle) => {
                    if !self.idle_wait(shutdown).await {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(loop = name, error = %e, ?backoff, "engine step failed; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    async fn planner_loop(self, shutdown: CancellationToken) {
        self.run_loop("planner", &shutdown, || self.plan_once())
            .await;
    }

    /// Prunes events past the retention window, in batches; one process at a time (a
    /// transaction-scoped advisory lock), returning how many were deleted.
    pub async fn retention_once(&self) -> anyhow::Result<u64> {
        const BATCH: i64 = 5_000;
        let mut total = 0;
        loop {
            let mut tx = self.pool.begin().await?;
            let ours: bool = sqlx::query_scalar(
                "select pg_try_advisory_xact_lock(hashtext('flotilla.retention'))",
            )
            .fetch_one(&mut *tx)
            .await?;
            if !ours {
                return Ok(total);
            }
            let deleted =
                app::db::events::prune(&mut *tx, self.config.retention_days, BATCH).await?;
            tx.commit().await?;
            total += deleted;
            if deleted < u64::try_from(BATCH).unwrap_or(u64::MAX) {
                return Ok(total);
            }
        }
    }

    async fn retention_loop(self, shutdown: CancellationToken) {
        loop {
            match self.retention_once().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    deleted = n,
                    days = self.config.retention_days,
                    "pruned old events"
                ),
                Err(e) => tracing::warn!(error = %e, "event retention failed"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(600)) => {}
            }
        }
    }

    async fn heartbeat_loop(self, shutdown: CancellationToken) {
        let period = Duration::from_secs_f64(self.config.heartbeat_secs);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(period) => {}
            }
            let beat = async {
                let mut conn = self.pool.acquire().await?;
                app::db::queue::heartbeat(&mut conn, self.worker_id, self.config.lease_secs).await
            };
            if let Err(e) = beat.await {
                tracing::warn!(error = %e, "heartbeat failed");
            }
        }
    }
}
