//! The workflow advancer: decides each gated workflow node once its prerequisites are done —
//! skip it (no active incoming edge), wait for a person (approval), render its prompt (or a tool
//! step's arguments) from the run's inputs and upstream outputs and open it for the daemon, or
//! start a sub-workflow's child run. One node per transaction; a node that cannot be decided
//! fails itself, never the loop.

use super::{Engine, Outcome};
use app::db::subworkflows;
use app::db::workflow_runs::{self as wr, Gated};
use app::domain::ids::WorkflowId;
use app::domain::stored_json;
use app::domain::workflow::{Step, render_strings};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Nodes decided per pass before the loop yields.
const PER_PASS: usize = 100;

enum Decided {
    Opened,
    Settled,
}

impl Engine {
    /// Decides up to [`PER_PASS`] gated nodes; wakes the daemon when it opened any.
    pub async fn advance_once(&self) -> anyhow::Result<Outcome> {
        let mut worked = false;
        let mut opened = false;
        for _ in 0..PER_PASS {
            let mut tx = self.pool.begin().await?;
            let Some(g) = wr::next_gated(&mut tx).await? else {
                break;
            };
            match decide(&mut tx, &g).await {
                Ok(d) => {
                    tx.commit().await?;
                    opened |= matches!(d, Decided::Opened);
                }
                Err(e) => {
                    drop(tx);
                    tracing::warn!(node = %g.id, error = %e, "could not decide a workflow node");
                    let mut tx = self.pool.begin().await?;
                    let why = "the engine could not start this node (see the server log)";
                    wr::fail_node(&mut tx, g.id, g.run_id, why).await?;
                    tx.commit().await?;
                }
            }
            worked = true;
        }
        if opened {
            self.work_changed(false);
        }
        Ok(if worked {
            Outcome::Worked
        } else {
            Outcome::Idle
        })
    }

    pub(super) async fn advance_loop(self, shutdown: CancellationToken) {
        self.run_loop("advancer", &shutdown, || self.advance_once())
            .await;
    }
}

async fn decide(tx: &mut sqlx::PgConnection, g: &Gated) -> anyhow::Result<Decided> {
    let Some(step) = g
        .step
        .clone()
        .and_then(|v| serde_json::from_value::<Step>(v).ok())
    else {
        wr::fail_node(tx, g.id, g.run_id, "the node's step could not be read").await?;
        return Ok(Decided::Settled);
    };
    if !wr::is_active(tx, g.id).await? {
        wr::skip(tx, g).await?;
        return Ok(Decided::Settled);
    }
    let inputs = g
        .inputs
        .as_ref()
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let outputs = wr::outputs(tx, g.run_id).await?;
    let prompt = wr::rendered_prompt(&step, &inputs, &outputs);
    match step {
        Step::Approval { .. } => {
            wr::request_approval(tx, g, &prompt).await?;
            Ok(Decided::Settled)
        }
        Step::Agent { .. } => {
            wr::open(tx, g, &prompt).await?;
            Ok(Decided::Opened)
        }
        Step::Tool { tool, arguments } => {
            let arguments = render_strings(&arguments, &inputs, &outputs);
            // Upstream outputs are model text: a NUL rendered in cannot be stored in jsonb.
            if let Err(why) = stored_json::check(&Value::Object(arguments.clone())) {
                let why = format!("the rendered arguments cannot be stored: {why}");
                wr::fail_node(tx, g.id, g.run_id, &why).await?;
                return Ok(Decided::Settled);
            }
            wr::open_tool(tx, g, &tool, &arguments).await?;
            Ok(Decided::Opened)
        }
        Step::Workflow {
            workflow_id,
            version,
            inputs: mapped,
        } => {
            let mapped = render_strings(&mapped, &inputs, &outputs);
            let id = WorkflowId(workflow_id);
            match subworkflows::start_child(tx, g, id, version, &mapped).await? {
                Ok(_) => Ok(Decided::Opened),
                Err(why) => {
                    wr::fail_node(tx, g.id, g.run_id, &why).await?;
                    Ok(Decided::Settled)
                }
            }
        }
    }
}
