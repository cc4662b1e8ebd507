//! The orchestration engine: planner, delegation daemon and agent worker. Each exposes one step
//! (`plan_once`, `daemon_once`, `work_once`) that tests call directly; [`Engine::spawn`] adds the
//! loops, wake-ups, heartbeats and shutdown. Any number of processes may run engines against one
//! database: claims are `FOR UPDATE SKIP LOCKED`, the daemon is a single leader (advisory lock),
//! and leases are kept in database time.

pub mod daemon;
pub mod local;
pub mod planner;
pub mod provider;
pub mod worker;

use crate::supervisor::Supervisor;
use app::db::events::{STOP_CHANNEL, Stop, WAKE_CHANNEL};
use app::domain::ids::WorkerId;
use app::domain::run::RetryPolicy;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use provider::Providers;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;
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
    /// Nodes one process runs at once (`FLOTILLA_WORKER_SLOTS`, default 256).
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
    /// Events and metric samples older than this many days are pruned
    /// (`FLOTILLA_RETENTION_DAYS`, default 30).
    pub retention_days: i64,
    /// How often resource samples are taken (`FLOTILLA_METRICS_SECS`, default 30).
    pub metrics_interval: Duration,
    /// Raw samples older than this many hours are rolled up into hourly ones.
    pub metrics_raw_hours: i64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            lease_secs: 60.0,
            heartbeat_secs: 10.0,
            poll_ms: 500,
            slots: 256,
            assign_batch: 256,
            retry: RetryPolicy::default(),
            simulated_latency: Duration::from_millis(400),
            planner_provider: "simulated".into(),
            planner_model: "simulated".into(),
            shutdown_grace: Duration::from_secs(10),
            retention_days: 30,
            metrics_interval: Duration::from_secs(30),
            metrics_raw_hours: 24,
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
    /// Time from a node becoming ready to its assignment (a metric of the process).
    assignment_latency: Histogram,
    /// Supervises this engine's loops and keeps their health.
    pub supervisor: Arc<Supervisor>,
    /// The nodes this process runs right now (what the heartbeat renews and a stop reaches).
    running: Arc<local::Running>,
    /// Bumped on every database wake-up. Each loop keeps its own receiver and marks what it has
    /// seen before a step, so a wake-up that lands while it works is not lost (a `Notify` only
    /// wakes whoever is waiting at that instant, which left loops asleep until the next poll).
    wake: Arc<watch::Sender<u64>>,
    /// Asks the notifier for one NOTIFY to the other processes; requests made while one is on
    /// its way fold into the next (see [`Engine::work_changed`]).
    notify: Arc<tokio::sync::Notify>,
    /// The backend of the notifier's connection: the listener ignores what this process sent
    /// itself (its loops were woken directly).
    notifier_pid: Arc<std::sync::atomic::AtomicU32>,
    /// Set when nodes may be assigned but not yet claimed (another process's NOTIFY, or an
    /// assignment here that had no room to start them); the worker loop claims only then, or
    /// on its poll, instead of on every wake-up.
    claimable: Arc<std::sync::atomic::AtomicBool>,
    /// This process's worker loop, once [`Engine::spawn`] started it: the daemon and the
    /// reporter hand it work they claim in their own transactions.
    local: Arc<std::sync::OnceLock<local::Local>>,
    /// Agents' capabilities, read once per agent (they never change).
    capabilities: Arc<app::db::queue::AgentCapabilities>,
    /// Runs the daemon checks for being finished (see [`daemon::FinishHints`]).
    finish_hints: Arc<daemon::FinishHints>,
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
            supervisor: Supervisor::new(pool.clone(), Family::default(), Family::default()),
            pool,
            config: Arc::new(config),
            worker_id,
            providers,
            assignment_latency: Histogram::new(std::iter::empty()),
            running: Arc::default(),
            wake: Arc::new(watch::channel(0).0),
            notify: Arc::new(tokio::sync::Notify::new()),
            notifier_pid: Arc::new(std::sync::atomic::AtomicU32::new(0)),
            claimable: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            local: Arc::new(std::sync::OnceLock::new()),
            capabilities: Arc::default(),
            finish_hints: Arc::default(),
        })
    }

    /// Reports into the process's metric and supervisor instead of private ones.
    pub fn with_observability(
        mut self,
        assignment_latency: Histogram,
        supervisor: Arc<Supervisor>,
    ) -> Self {
        self.assignment_latency = assignment_latency;
        self.supervisor = supervisor;
        self
    }

    /// Runs the engine's loops, each supervised, until `shutdown`, then drains: the reporter
    /// stops last, once the worker loop has handed it every outcome.
    pub fn spawn(self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let (handoff, handed) = tokio::sync::mpsc::unbounded_channel();
        let _ = self.local.set(local::Local {
            slots: Arc::new(local::Slots::new(self.config.slots)),
            handoff,
        });
        let handed = Arc::new(tokio::sync::Mutex::new(handed));
        let (reports, reported) = tokio::sync::mpsc::unbounded_channel();
        let reported = Arc::new(tokio::sync::Mutex::new(reported));
        tokio::spawn(async move {
            let sup = self.supervisor.clone();
            let mut tasks = JoinSet::new();
            macro_rules! supervised {
                ($name:literal, $stop:expr, |$e:ident, $s:ident| $body:expr) => {{
                    let (engine, stop) = (self.clone(), $stop.clone());
                    tasks.spawn(sup.supervise($name, stop.clone(), move || {
                        let ($e, $s) = (engine.clone(), stop.clone());
                        $body
                    }));
                }};
            }
            supervised!("listener", shutdown, |e, s| e.listen(s));
            supervised!("notifier", shutdown, |e, s| e.notifier(s));
            supervised!("planner", shutdown, |e, s| e.planner_loop(s));
            supervised!("daemon", shutdown, |e, s| e.daemon_loop(s));
            supervised!("heartbeat", shutdown, |e, s| e.heartbeat_loop(s));
            supervised!("retention", shutdown, |e, s| e.retention_loop(s));
            supervised!("sampler", shutdown, |e, s| e.metrics_loop(s));
            {
                let (handed, reports) = (handed.clone(), reports.clone());
                supervised!("worker", shutdown, |e, s| e.worker_loop(
                    s,
                    handed.clone(),
                    reports.clone()
                ));
            }
            drop(reports);
            let reporter_stop = CancellationToken::new();
            let mut reporter = JoinSet::new();
            reporter.spawn(sup.supervise("reporter", reporter_stop.clone(), {
                let engine = self.clone();
                let stop = reporter_stop.clone();
                move || engine.clone().reporter(reported.clone(), stop.clone())
            }));
            while tasks.join_next().await.is_some() {}
            reporter_stop.cancel();
            while reporter.join_next().await.is_some() {}
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
                l.listen_all([WAKE_CHANNEL, STOP_CHANNEL]).await?;
                loop {
                    let n = l.recv().await?;
                    if n.channel() == STOP_CHANNEL {
                        if let Some(stop) = Stop::parse(n.payload()) {
                            let stopped = self.running.stop(stop);
                            if stopped > 0 {
                                tracing::info!(?stop, stopped, "stopping running work");
                            }
                        }
                        continue;
                    }
                    if n.process_id() == self.notifier_pid.load(Ordering::Relaxed) {
                        continue;
                    }
                    self.finish_hints.foreign_wake();
                    self.claimable.store(true, Ordering::Release);
                    self.wake.send_modify(|n| *n = n.wrapping_add(1));
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
            self.finish_hints.foreign_wake();
            self.claimable.store(true, Ordering::Release);
            self.wake.send_modify(|n| *n = n.wrapping_add(1));
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// After a commit that assigned or finished work (`left_unclaimed`: it assigned nodes it
    /// did not start here): wakes this process's loops at once and asks for one NOTIFY to the
    /// others. The hot transactions send none themselves: a transaction that NOTIFYs holds a
    /// database-wide lock from its commit until the commit is flushed, so those commits went
    /// one flush at a time instead of sharing flushes.
    pub(crate) fn work_changed(&self, left_unclaimed: bool) {
        if left_unclaimed {
            self.claimable.store(true, Ordering::Release);
        }
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
        self.notify.notify_one();
    }

    /// Sends the NOTIFYs [`Engine::work_changed`] asks for, one at a time, each in its own
    /// transaction on a dedicated connection whose commits do not wait for the flush (a lost
    /// wake-up costs one poll interval, nothing else). Whatever is asked while one is on its
    /// way is folded into the next.
    async fn notifier(self, shutdown: CancellationToken) {
        let options = (*self.pool.connect_options())
            .clone()
            .options([("synchronous_commit", "off")]);
        let mut conn: Option<sqlx::PgConnection> = None;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.notify.notified() => {}
            }
            if conn.is_none() {
                let connected = async {
                    let mut c: sqlx::PgConnection =
                        sqlx::Connection::connect_with(&options).await?;
                    let pid: i32 = sqlx::query_scalar("select pg_backend_pid()")
                        .fetch_one(&mut c)
                        .await?;
                    Ok::<_, sqlx::Error>((c, pid))
                };
                match connected.await {
                    Ok((c, pid)) => {
                        self.notifier_pid
                            .store(u32::try_from(pid).unwrap_or(0), Ordering::Relaxed);
                        conn = Some(c);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "notifier: no connection; others poll meanwhile");
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                        self.notify.notify_one();
                        continue;
                    }
                }
            }
            if let Some(c) = conn.as_mut()
                && let Err(e) = app::db::events::wake(&mut *c).await
            {
                tracing::warn!(error = %e, "notifier: NOTIFY failed; reconnecting");
                conn = None;
            }
        }
    }

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

    /// Stores a validated plan for a pending run in the caller's transaction and, when this
    /// process runs a worker loop, starts what is ready in the same transaction (a submission
    /// then waits for no other process). None if the run was no longer pending. Pass the result
    /// to [`Engine::after_commit`] once committed.
    pub async fn store_plan(
        &self,
        conn: &mut sqlx::PgConnection,
        run: app::domain::ids::RunId,
        plan: &app::domain::plan::ValidatedPlan,
        planned_by: &str,
        note: Option<&str>,
    ) -> Result<Option<Started>, sqlx::Error> {
        if !app::db::runs::store_plan(&mut *conn, run, plan, planned_by, note).await? {
            return Ok(None);
        }
        if !self.runs_worker_loop() {
            return Ok(Some(Started::none()));
        }
        self.assign_and_claim(conn, app::db::queue::Released::none())
            .await
            .map(Some)
    }

    /// How many nodes this process is running right now.
    pub fn running_nodes(&self) -> usize {
        self.running.ids().len()
    }

    /// Whether a worker loop runs in this process (so completions assign onward at once).
    pub(crate) fn runs_worker_loop(&self) -> bool {
        self.local.get().is_some()
    }

    /// Waits for a wake-up not yet seen by `woken`, the poll interval, or shutdown; false on
    /// shutdown.
    async fn idle_wait(
        &self,
        woken: &mut watch::Receiver<u64>,
        shutdown: &CancellationToken,
    ) -> bool {
        tokio::select! {
            () = shutdown.cancelled() => false,
            _ = woken.changed() => true,
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
        let mut woken = self.wake.subscribe();
        while !shutdown.is_cancelled() {
            woken.borrow_and_update();
            match step().await {
                Ok(Outcome::Worked) => backoff = Duration::from_millis(100),
                Ok(Outcome::Idle) => {
                    if !self.idle_wait(&mut woken, shutdown).await {
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

    /// Samples this process's CPU and memory, and the agents' counters (one process per tick
    /// does the agents: a transaction-scoped advisory lock).
    async fn metrics_loop(self, shutdown: CancellationToken) {
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

    async fn retention_loop(self, shutdown: CancellationToken) {
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

    async fn heartbeat_loop(self, shutdown: CancellationToken) {
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
