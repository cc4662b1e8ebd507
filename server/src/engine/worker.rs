//! The agent worker: claims assigned nodes, runs each through its agent's provider with its
//! prerequisites' outputs as context, and reports the outcome, fenced by attempt and lease token.

use super::provider::{CompletionRequest, Purpose};
use super::{Engine, Outcome};
use app::db::queue::{self, ClaimedNode, ReportError};
use backon::{ExponentialBuilder, Retryable};
use std::time::Instant;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

fn execution_prompt(node: &ClaimedNode) -> String {
    let mut prompt = format!("Subtask {}: {}", node.key, node.description);
    for (i, c) in node.context.iter().enumerate() {
        prompt.push_str(&format!("\n\nResult of prerequisite {}:\n{c}", i + 1));
    }
    prompt
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

    /// Runs one claimed node and records the outcome. A refused (stale) report is not an error:
    /// the node was re-queued or cancelled meanwhile and someone else owns it now.
    pub async fn execute(&self, node: ClaimedNode) -> anyhow::Result<()> {
        let started = Instant::now();
        let req = CompletionRequest {
            model: node.model.clone(),
            system: node.system_prompt.clone(),
            prompt: execution_prompt(&node),
            purpose: Purpose::Execute {
                description: node.description.clone(),
                context: node.context.clone(),
                attempt: node.attempt,
            },
        };
        let result = match self.providers.get(&node.provider) {
            Ok(p) => p.complete(&req).await,
            Err(e) => Err(e),
        };
        let busy_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        // A report can lose a deadlock or a connection; the work itself is done, so retry the
        // report (a few times, backing off) rather than let the lease lapse and redo the work.
        let report = || async {
            let mut tx = self.pool.begin().await.map_err(ReportError::Db)?;
            match &result {
                Ok(c) => {
                    let tokens = c.input_tokens + c.output_tokens;
                    queue::complete(&mut tx, &node, &c.text, tokens, busy_ms).await?;
                }
                Err(e) => {
                    queue::fail(&mut tx, &node, &e.to_string(), &self.config.retry, busy_ms)
                        .await?;
                }
            }
            tx.commit().await.map_err(ReportError::Db)
        };
        let reported = report
            .retry(ExponentialBuilder::default().with_max_times(4))
            .when(|e| matches!(e, ReportError::Db(_)))
            .notify(
                |e, after| tracing::warn!(node = %node.id, error = %e, ?after, "retrying report"),
            )
            .await;
        match reported {
            Ok(()) => Ok(()),
            Err(ReportError::Stale) => {
                tracing::warn!(node = %node.id, attempt = node.attempt, "stale report refused");
                Ok(())
            }
            Err(ReportError::Db(e)) => Err(e.into()),
        }
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
            running.spawn(async move { engine.execute(node).await });
        }
        while let Some(done) = running.join_next().await {
            done??;
        }
        Ok(Outcome::Worked)
    }

    /// Keeps up to `slots` nodes in flight. On shutdown, waits `shutdown_grace` for them, then
    /// re-queues what is still running so another process picks it up at once.
    pub(super) async fn worker_loop(self, shutdown: CancellationToken) {
        let mut running: JoinSet<(app::domain::ids::NodeId, anyhow::Result<()>)> = JoinSet::new();
        let mut in_flight = Vec::new();
        while !shutdown.is_cancelled() {
            while let Some(done) = running.try_join_next() {
                record_done(done, &mut in_flight);
            }
            let free = self.config.slots.saturating_sub(running.len());
            let claimed = if free > 0 {
                self.claim(free).await
            } else {
                Ok(Vec::new())
            };
            match claimed {
                Ok(nodes) if !nodes.is_empty() => {
                    for node in nodes {
                        let engine = self.clone();
                        let id = node.id;
                        in_flight.push(id);
                        running.spawn(async move { (id, engine.execute(node).await) });
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "claim failed"),
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.wake.notified() => {}
                Some(done) = running.join_next(), if !running.is_empty() => record_done(done, &mut in_flight),
                () = tokio::time::sleep(std::time::Duration::from_millis(self.config.poll_ms)) => {}
            }
        }
        let drain = async {
            while let Some(done) = running.join_next().await {
                record_done(done, &mut in_flight);
            }
        };
        if tokio::time::timeout(self.config.shutdown_grace, drain)
            .await
            .is_err()
        {
            running.abort_all();
            for node in &in_flight {
                let release = async {
                    let mut conn = self.pool.acquire().await?;
                    queue::release_node(&mut conn, *node, "worker shut down").await
                };
                if let Err(e) = release.await {
                    tracing::warn!(%node, error = %e, "could not re-queue on shutdown; its lease will expire");
                }
            }
        }
    }
}

fn record_done(
    done: Result<(app::domain::ids::NodeId, anyhow::Result<()>), tokio::task::JoinError>,
    in_flight: &mut Vec<app::domain::ids::NodeId>,
) {
    match done {
        Ok((id, res)) => {
            in_flight.retain(|n| *n != id);
            if let Err(e) = res {
                tracing::warn!(node = %id, error = %e, "node execution could not be recorded; its lease will expire");
            }
        }
        Err(e) => tracing::error!(error = %e, "node execution panicked"),
    }
}
