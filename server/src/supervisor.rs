//! Supervision of the process's long-running loops (planner, daemon, worker, reporter,
//! heartbeat, listener, notifier, event hub, retention, sampler). A loop that panics or ends on
//! its own is logged, counted (`flotilla_loop_restarts_total`, `flotilla_loop_up`), raised as a
//! critical `engine.loop_restarted` event and restarted with backoff; its health is in the
//! `/readyz` body. Items a loop meets are its own business: a poison item fails itself inside
//! the step, and this is the net under that.

use app::db::events::{self, NewEvent};
use app::domain::event::{EventKind, Severity};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use serde::Serialize;
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LoopLabel {
    pub r#loop: String,
}

/// One loop's health, as `/readyz` shows it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LoopHealth {
    pub up: bool,
    pub restarts: u64,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_restart_at: Option<time::OffsetDateTime>,
}

/// The loops of one process and their health.
pub struct Supervisor {
    pool: PgPool,
    health: Mutex<BTreeMap<&'static str, LoopHealth>>,
    restarts: Family<LoopLabel, Counter>,
    up: Family<LoopLabel, Gauge>,
    /// Fault injection: notifying one makes that loop panic where it stands.
    kill: Mutex<HashMap<&'static str, Arc<Notify>>>,
}

/// A loop that ran this long before dying starts again without the accumulated backoff.
const STABLE: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Supervisor {
    /// `restarts` and `up` are the process's metric families to report into.
    pub fn new(
        pool: PgPool,
        restarts: Family<LoopLabel, Counter>,
        up: Family<LoopLabel, Gauge>,
    ) -> Arc<Self> {
        Arc::new(Self {
            pool,
            health: Mutex::default(),
            restarts,
            up,
            kill: Mutex::default(),
        })
    }

    /// Runs `make()`'s loop until `shutdown`, restarting it whenever it panics or returns
    /// before `shutdown`. The returned future is the supervisor; spawn it.
    pub fn supervise<F, Fut>(
        self: &Arc<Self>,
        name: &'static str,
        shutdown: CancellationToken,
        make: F,
    ) -> impl Future<Output = ()> + Send + 'static
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let this = self.clone();
        let kill = this.kill_switch(name);
        this.set_up(name, true);
        async move {
            let mut backoff = Duration::from_millis(200);
            loop {
                this.set_up(name, true);
                let started = Instant::now();
                let body = make();
                let kill = kill.clone();
                let run = tokio::spawn(async move {
                    tokio::select! {
                        () = body => {}
                        () = kill.notified() => panic!("injected fault in the {name} loop"),
                    }
                });
                let result = run.await;
                if shutdown.is_cancelled() {
                    this.set_up(name, false);
                    return;
                }
                let why = match result {
                    Ok(()) => "the loop stopped by itself".to_owned(),
                    Err(e) if e.is_panic() => panic_message(&*e.into_panic()),
                    Err(e) => e.to_string(),
                };
                if started.elapsed() >= STABLE {
                    backoff = Duration::from_millis(200);
                }
                this.restarted(name, &why, backoff).await;
                tokio::select! {
                    () = shutdown.cancelled() => {
                        this.set_up(name, false);
                        return;
                    }
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }

    fn kill_switch(&self, name: &'static str) -> Arc<Notify> {
        self.kill
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name)
            .or_default()
            .clone()
    }

    /// Makes the named loop panic (fault injection for tests); false for an unknown loop.
    #[doc(hidden)]
    pub fn inject_panic(&self, name: &str) -> bool {
        let kill = self.kill.lock().unwrap_or_else(|e| e.into_inner());
        match kill.get(name) {
            Some(k) => {
                k.notify_one();
                true
            }
            None => false,
        }
    }

    fn set_up(&self, name: &'static str, up: bool) {
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name)
            .or_default()
            .up = up;
        self.up
            .get_or_create(&LoopLabel {
                r#loop: name.to_owned(),
            })
            .set(i64::from(up));
    }

    async fn restarted(&self, name: &'static str, why: &str, backoff: Duration) {
        self.set_up(name, false);
        let restarts = {
            let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
            let h = health.entry(name).or_default();
            h.restarts += 1;
            h.last_error = Some(why.to_owned());
            h.last_restart_at = Some(time::OffsetDateTime::now_utc());
            h.restarts
        };
        self.restarts
            .get_or_create(&LoopLabel {
                r#loop: name.to_owned(),
            })
            .inc();
        tracing::error!(%name, error = %why, restarts, ?backoff, "engine loop died; restarting it");
        let event = async {
            let mut conn = self.pool.acquire().await?;
            events::append(
                &mut conn,
                NewEvent::new(EventKind::LoopRestarted, format!("loop/{name}"))
                    .severity(Severity::Critical)
                    .data(serde_json::json!({
                        "loop": name, "error": why, "restarts": restarts,
                        "backoff_ms": u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                    })),
            )
            .await
        };
        if let Err(e) = event.await {
            tracing::warn!(%name, error = %e, "could not record the loop's restart as an event");
        }
    }

    /// Every loop's health, by name.
    pub fn health(&self) -> BTreeMap<&'static str, LoopHealth> {
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The message of a caught panic (`panic!` with a string, or a formatted one).
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}
