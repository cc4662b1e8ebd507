//! The agent worker: claims assigned nodes, runs each through its agent's provider with its
//! prerequisites' outputs as context, and reports outcomes, fenced by attempt and lease token.
//! In the loop, outcomes are recorded in batches: one transaction (and one commit) for all that
//! finished meanwhile, which is what keeps the engine near the database's commit ceiling.

use super::agent_loop::AttemptError;
use super::meter::Meter;
use super::{Engine, Outcome};
use crate::llm::Message;
use app::db::llm_calls::{self, LlmCall};
use app::db::queue::{self, ClaimedNode, ReportError, Success};
use app::domain::ids::NodeId;
use backon::{ExponentialBuilder, Retryable};
use futures_util::FutureExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The most outcomes one reporting transaction records.
const REPORT_BATCH: usize = 256;

/// Reporting transactions one process keeps in flight at once.
const REPORTERS: usize = 4;

/// How an attempt ended, before it is recorded, with what it did on the way.
#[derive(Debug)]
pub enum Report {
    Done(Success, Trace),
    Failed {
        node: ClaimedNode,
        error: String,
        /// Set when the provider refused the agent's configuration (a bad key, an unknown
        /// model): the agent goes to the `error` state with this reason.
        agent_error: Option<String>,
        /// Retrying cannot help: the subtask fails without another attempt.
        final_: bool,
        busy_ms: i64,
        trace: Trace,
    },
}

/// An attempt's model calls (for the ledger) and its conversation (the transcript).
#[derive(Debug, Default)]
pub struct Trace {
    pub calls: Vec<LlmCall>,
    pub transcript: Vec<Message>,
}

impl Report {
    fn trace(&self) -> (&ClaimedNode, &Trace) {
        match self {
            Report::Done(s, trace) => (&s.node, trace),
            Report::Failed { node, trace, .. } => (node, trace),
        }
    }
}

impl Engine {
    /// Claims up to `limit` assigned nodes for this process.
    pub async fn claim(&self, limit: usize) -> anyhow::Result<Vec<ClaimedNode>> {
        let mut tx = self.pool.begin().await?;
        let claimed = queue::claim_assigned(
            &mut tx,
            self.worker_id,
            i64::try_from(limit).unwrap_or(i64::MAX),
            self.config.lease_secs,
        )
        .await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// Runs one claimed node through its agent's provider. A panic in the step is this
    /// attempt's failure (the retry policy applies), never the loop's.
    pub async fn run_node(&self, node: ClaimedNode) -> Report {
        let started = Instant::now();
        let mut handle = self.providers.get(&node.provider);
        if handle.is_err() {
            // Perhaps added since this engine's last look: read the stored providers again.
            if let Err(e) = self.sync_providers(&mut None).await {
                tracing::warn!(error = %e, "could not read the providers");
            }
            handle = self.providers.get(&node.provider);
        }
        let handle = match handle {
            Ok(handle) => handle,
            // The agent names a provider this process does not know: its configuration.
            Err(e) => {
                return Report::Failed {
                    agent_error: Some(e.to_string()),
                    error: e.to_string(),
                    final_: false,
                    node,
                    busy_ms: 0,
                    trace: Trace::default(),
                };
            }
        };
        let mut meter = Meter::new(
            handle,
            &node.provider,
            node.run_id,
            llm_calls::Purpose::Execute,
        )
        .for_attempt(node.agent_id, node.id, node.attempt)
        .with_budgets(self.pool.clone());
        let mut transcript = Vec::new();
        let result = std::panic::AssertUnwindSafe(self.attempt(&node, &mut meter, &mut transcript))
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| {
                let why = crate::supervisor::panic_message(&*panic);
                tracing::error!(node = %node.id, run = %node.run_id, panic = %why, "a subtask's step panicked");
                Err(AttemptError::from(format!("the agent's step panicked: {why}")))
            });
        let busy_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let tokens = meter.tokens();
        let trace = Trace {
            calls: meter.calls,
            transcript,
        };
        match result {
            Ok(output) => Report::Done(
                Success {
                    tokens,
                    output,
                    node,
                    busy_ms,
                },
                trace,
            ),
            Err(e) => Report::Failed {
                node,
                agent_error: e.agent_config.then(|| e.message.clone()),
                error: e.message,
                final_: e.final_,
                busy_ms,
                trace,
            },
        }
    }

    /// Records outcomes in one transaction. A stale outcome (the node was re-queued or
    /// cancelled meanwhile and belongs to someone else now) is skipped, not an error. The
    /// transaction is retried a few times with backoff: the work is done, and losing a deadlock
    /// or a connection must not make it run again.
    ///
    /// In a running engine the same transaction also assigns what the outcomes made ready and
    /// claims it for this process, so a dependent starts without waiting for the daemon.
    pub async fn report(&self, reports: &[Report]) -> anyhow::Result<()> {
        let onward = self.runs_worker_loop();
        let done: Vec<Success> = reports
            .iter()
            .filter_map(|r| match r {
                Report::Done(s, _) => Some(s.clone()),
                Report::Failed { .. } => None,
            })
            .collect();
        let calls: Vec<LlmCall> = reports
            .iter()
            .flat_map(|r| r.trace().1.calls.clone())
            .collect();
        let transcripts: Vec<app::db::transcripts::NewTranscript> = reports
            .iter()
            .filter_map(|r| {
                let (node, trace) = r.trace();
                (!trace.transcript.is_empty()).then(|| app::db::transcripts::NewTranscript {
                    node: node.id,
                    attempt: node.attempt,
                    agent: node.agent_id,
                    messages: serde_json::to_value(&trace.transcript).unwrap_or_default(),
                })
            })
            .collect();
        let write = || async {
            let mut tx = self.pool.begin().await?;
            // The calls were made (and paid for) whether or not the outcome is still current.
            llm_calls::record(&mut tx, &calls).await?;
            app::db::transcripts::record(&mut tx, &transcripts).await?;
            let completion = queue::complete_many(&mut tx, &done).await?;
            let mut stale = completion.stale;
            for r in reports {
                if let Report::Failed {
                    node,
                    error,
                    agent_error,
                    final_,
                    busy_ms,
                    ..
                } = r
                {
                    let no_retry = app::domain::run::RetryPolicy {
                        max_attempts: 1,
                        ..self.config.retry
                    };
                    let policy = if *final_ {
                        &no_retry
                    } else {
                        &self.config.retry
                    };
                    match queue::fail(&mut tx, node, error, policy, *busy_ms).await {
                        Ok(()) => {}
                        Err(ReportError::Stale) => stale.push(node.id),
                        Err(ReportError::Db(e)) => return Err(e),
                    }
                    if let Some(reason) = agent_error {
                        app::db::agent_state::mark_error(&mut tx, node.agent_id, node.id, reason)
                            .await?;
                    }
                }
            }
            let started = if onward {
                self.assign_and_claim(&mut tx, completion.released).await?
            } else {
                queue::release(&mut tx, completion.released).await?;
                super::Started::none()
            };
            tx.commit().await?;
            Ok::<_, sqlx::Error>((stale, started))
        };
        let (stale, started) = write
            .retry(ExponentialBuilder::default().with_max_times(4))
            .notify(|e, after| tracing::warn!(error = %e, ?after, "retrying a report"))
            .await?;
        // The daemon checks these runs for being finished on its next pass.
        self.finish_hints
            .record(done.iter().map(|s| s.node.run_id.0));
        // Wakes the others even when nothing was assigned: the completions may finish a run
        // (the daemon) and are events to stream.
        self.after_commit(started);
        for node in stale {
            tracing::warn!(%node, "stale report refused");
        }
        Ok(())
    }

    /// Runs one claimed node and records its outcome at once.
    pub async fn execute(&self, node: ClaimedNode) -> anyhow::Result<()> {
        let report = self.run_node(node).await;
        self.report(std::slice::from_ref(&report)).await
    }

    /// Claims what is assigned and runs it all to the end (tests and benchmarks).
    pub async fn work_once(&self) -> anyhow::Result<Outcome> {
        let claimed = self.claim(self.config.slots).await?;
        if claimed.is_empty() {
            return Ok(Outcome::Idle);
        }
        let mut running = JoinSet::new();
        for node in claimed {
            let engine = self.clone();
            running.spawn(async move { engine.run_node(node).await });
        }
        let mut reports = Vec::new();
        while let Some(done) = running.join_next().await {
            reports.push(done?);
        }
        self.report(&reports).await?;
        Ok(Outcome::Worked)
    }

    /// Keeps up to `slots` nodes in flight and sends their outcomes to the reporter. Nodes
    /// come from its own claims and from the daemon and the reporter, which claim for this
    /// process inside the transactions that made them ready (`handed`). A node told to stop (its
    /// task cancelled, its agent terminated) is dropped where it stands: its model call is
    /// aborted, and the canceller has recorded the attempt. On shutdown, waits `shutdown_grace`
    /// for the rest, then re-queues what is still running so another process picks it up.
    pub(super) async fn worker_loop(
        self,
        shutdown: CancellationToken,
        handed: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<ClaimedNode>>>,
        reports: mpsc::UnboundedSender<Report>,
    ) {
        let Some(local) = self.local.get().cloned() else {
            tracing::error!("worker loop started without its slots");
            return;
        };
        // Held for the loop's life; a panicking predecessor's guard is gone with it.
        let mut handed = handed.lock_owned().await;
        let mut running: JoinSet<NodeId> = JoinSet::new();
        let mut in_flight: Vec<NodeId> = Vec::new();
        // Starts a node whose slot is already reserved; the guard gives the slot back.
        let start =
            |node: ClaimedNode, running: &mut JoinSet<NodeId>, in_flight: &mut Vec<NodeId>| {
                let guard = self.running.start(&node, local.slots.clone());
                let (engine, tx) = (self.clone(), reports.clone());
                in_flight.push(node.id);
                running.spawn(async move {
                let id = node.id;
                tokio::select! {
                    report = engine.run_node(node) => {
                        // The reporter outlives every runner; a send fails only at exit,
                        // where the lease expiry re-queues the node.
                        let _ = tx.send(report);
                    }
                    () = guard.stop.cancelled() => {
                        tracing::info!(node = %id, "stopped running work: cancelled or released");
                    }
                }
                drop(guard);
                id
            });
            };
        let mut woken = self.wake.subscribe();
        while !shutdown.is_cancelled() {
            woken.borrow_and_update();
            while let Some(done) = running.try_join_next() {
                forget(done, &mut in_flight);
            }
            while let Ok(node) = handed.try_recv() {
                start(node, &mut running, &mut in_flight);
            }
            let room = local.slots.free();
            if room > 0 && self.claimable.swap(false, Ordering::AcqRel) {
                match self.claim(room).await {
                    Ok(nodes) if !nodes.is_empty() => {
                        if nodes.len() == room {
                            // There may be more than the room it had.
                            self.claimable.store(true, Ordering::Release);
                        }
                        local.slots.take(nodes.len());
                        for node in nodes {
                            start(node, &mut running, &mut in_flight);
                        }
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.claimable.store(true, Ordering::Release);
                        tracing::warn!(error = %e, "claim failed");
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = woken.changed() => {}
                Some(node) = handed.recv() => start(node, &mut running, &mut in_flight),
                Some(done) = running.join_next(), if !running.is_empty() => forget(done, &mut in_flight),
                () = tokio::time::sleep(std::time::Duration::from_millis(self.config.poll_ms)) => {
                    // The fallback: a wake-up may have been lost.
                    self.claimable.store(true, Ordering::Release);
                }
            }
        }
        local.slots.close();
        let drain = async {
            while let Some(done) = running.join_next().await {
                forget(done, &mut in_flight);
            }
        };
        if tokio::time::timeout(self.config.shutdown_grace, drain)
            .await
            .is_err()
        {
            running.abort_all();
        }
        // Claimed for us but never started: back to the queue with the rest.
        handed.close();
        while let Ok(node) = handed.try_recv() {
            in_flight.push(node.id);
        }
        for node in &in_flight {
            let release = async {
                let mut conn = self.pool.acquire().await?;
                queue::release_node(
                    &mut conn,
                    *node,
                    "worker shut down",
                    queue::Voided::Cancelled,
                )
                .await
            };
            if let Err(e) = release.await {
                tracing::warn!(%node, error = %e, "could not re-queue on shutdown; its lease will expire");
            }
        }
    }

    /// Records outcomes as they arrive, in up to [`REPORTERS`] transactions at once: whatever
    /// has queued up while those were busy goes into the next one. One reporting transaction at
    /// a time left the engine waiting on each commit's flush with the CPU partly idle; several
    /// in flight share flushes (group commit), as independent clients do. Runs until every
    /// sender is gone and `stop` (after the worker loop) says so.
    pub(super) async fn reporter(
        self,
        rx: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Report>>>,
        stop: CancellationToken,
    ) {
        let mut rx = rx.lock_owned().await;
        let permits = Arc::new(Semaphore::new(REPORTERS));
        let mut writing = JoinSet::new();
        loop {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let mut batch = Vec::with_capacity(REPORT_BATCH);
            if rx.recv_many(&mut batch, REPORT_BATCH).await == 0 {
                break;
            }
            let engine = self.clone();
            writing.spawn(async move {
                if let Err(e) = engine.report(&batch).await {
                    tracing::error!(error = %e, n = batch.len(), "outcomes could not be recorded; their leases will expire and they will run again");
                }
                drop(permit);
            });
            while let Some(done) = writing.try_join_next() {
                if let Err(e) = done {
                    tracing::error!(error = %e, "recording a batch of outcomes panicked; their leases will expire and they will run again");
                }
            }
        }
        while writing.join_next().await.is_some() {}
        stop.cancelled().await;
    }
}

fn forget(done: Result<NodeId, tokio::task::JoinError>, in_flight: &mut Vec<NodeId>) {
    match done {
        Ok(id) => in_flight.retain(|n| *n != id),
        Err(e) => tracing::error!(error = %e, "node execution panicked"),
    }
}
