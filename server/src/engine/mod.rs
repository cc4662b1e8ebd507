//! The orchestration engine: planner, delegation daemon and agent worker. Each exposes one step
//! (`plan_once`, `daemon_once`, `work_once`) that tests call directly; [`Engine::spawn`] runs
//! them as supervised loops beside the wake-ups, hand-off, heartbeat, retention and sampling
//! (a module each). Any number of processes may run engines against one database: claims are
//! `FOR UPDATE SKIP LOCKED`, the daemon is a single leader (advisory lock), and leases are kept
//! in database time.

mod advance;
mod agent_loop;
mod aggregator;
mod breakers;
pub mod daemon;
mod handoff;
mod heartbeat;
pub mod local;
pub mod meter;
pub mod planner;
pub mod provider;
pub mod provider_sync;
mod retention;
mod sampling;
mod wake;
pub mod worker;

pub use handoff::Started;
pub use sampling::ProcessSampler;

use crate::supervisor::Supervisor;
use app::domain::ids::WorkerId;
use app::domain::run::RetryPolicy;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use provider::Providers;
use sqlx::PgPool;
use std::sync::Arc;
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
    /// Where agents' workspaces are, one directory each (`<data>/workspaces`).
    pub workspaces_dir: std::path::PathBuf,
    /// Model calls one attempt may make before it fails (`FLOTILLA_AGENT_MAX_STEPS`, 16).
    pub max_steps: usize,
    /// Characters of prerequisites' outputs one call carries; beyond it each is cut with a
    /// marker (`FLOTILLA_CONTEXT_BUDGET`, 32,000).
    pub context_budget: usize,
    /// How long one model call may take (`FLOTILLA_LLM_TIMEOUT_SECS`, 120).
    pub llm_timeout: Duration,
    /// Addresses `http_get` may reach although they are internal (`FLOTILLA_HTTP_GET_ALLOW`).
    pub http_get_allow: Vec<std::net::IpAddr>,
    /// Opens stored providers' API keys; without it only declared providers are used.
    pub master_key: Option<crate::secrets::MasterKey>,
    /// Real providers declared at start (by environment), registered in every engine.
    pub providers: Vec<provider::ProviderConfig>,
    /// The provider and model plans are asked of: the first declared provider, else simulated.
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
            workspaces_dir: std::env::temp_dir().join("flotilla-workspaces"),
            master_key: None,
            http_get_allow: Vec::new(),
            llm_timeout: Duration::from_secs(120),
            max_steps: 16,
            context_budget: 32_000,
            providers: Vec::new(),
            planner_provider: provider::SIMULATED.into(),
            planner_model: provider::SIMULATED.into(),
            shutdown_grace: Duration::from_secs(10),
            retention_days: 30,
            metrics_interval: Duration::from_secs(30),
            metrics_raw_hours: 24,
        }
    }
}

impl EngineConfig {
    /// Declares `providers`; the first one plans (and is what the default fleet uses).
    pub fn with_providers(mut self, providers: Vec<provider::ProviderConfig>) -> Self {
        if let Some(first) = providers.first() {
            self.planner_provider = first.name.clone();
            self.planner_model = first.default_model.clone();
        }
        self.providers = providers;
        self
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
    /// What the agents' tools share: the `http_get` client with its address checks, the
    /// `sql_query` role, the `run_command` sandbox.
    tools: Arc<crate::tools::Services>,
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
        let config_allow = config.http_get_allow.clone();
        let sql_password = config
            .master_key
            .as_ref()
            .map(|k| k.derive_hex("flotilla sql_query database role password"));
        // The workspaces live in the data directory, which commands must not see.
        let data_dir = config.workspaces_dir.parent().map_or_else(
            || config.workspaces_dir.clone(),
            std::path::Path::to_path_buf,
        );
        let providers = Providers::new(config.simulated_latency).with_http(
            crate::llm::HttpSettings {
                timeout: config.llm_timeout,
                ..Default::default()
            },
            Default::default(),
        );
        for p in &config.providers {
            providers
                .register(p)
                .map_err(|e| anyhow::anyhow!("provider {}: {e}", p.name))?;
        }
        let sql = crate::tools::sql::SqlTool::new(pool.clone(), sql_password);
        let engine = Self {
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
            tools: Arc::new(crate::tools::Services {
                http: crate::tools::http_get::HttpGet::new(crate::tools::http_get::Policy {
                    allow: config_allow,
                })
                .map_err(|e| anyhow::anyhow!(e))?,
                sql,
                commands: crate::tools::command::Commands::new(data_dir),
            }),
        };
        // Stored providers are usable from the first claim, not only after the first sync.
        engine.sync_providers(&mut None).await?;
        Ok(engine)
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
            supervised!("providers", shutdown, |e, s| e.provider_loop(s));
            supervised!("planner", shutdown, |e, s| e.planner_loop(s));
            supervised!("aggregator", shutdown, |e, s| e.aggregator_loop(s));
            supervised!("daemon", shutdown, |e, s| e.daemon_loop(s));
            supervised!("advancer", shutdown, |e, s| e.advance_loop(s));
            supervised!("heartbeat", shutdown, |e, s| e.heartbeat_loop(s));
            supervised!("retention", shutdown, |e, s| e.retention_loop(s));
            supervised!("sampler", shutdown, |e, s| e.metrics_loop(s));
            supervised!("breakers", shutdown, |e, s| e.breaker_loop(s));
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
}
