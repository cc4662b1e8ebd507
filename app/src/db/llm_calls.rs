//! The usage ledger: one row per model call, failed ones included, and its roll-ups per
//! subtask, task and agent.

use crate::domain::ids::{AgentId, NodeId, RunId};
use crate::domain::usage::{CallView, Usage, UsageTotals};
use sqlx::PgConnection;
use std::collections::HashMap;

/// What a call was made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Plan,
    Execute,
    Aggregate,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Plan => "plan",
            Purpose::Execute => "execute",
            Purpose::Aggregate => "aggregate",
        }
    }
}

/// One model call, as the ledger records it.
#[derive(Clone, Debug, PartialEq)]
pub struct LlmCall {
    pub run_id: RunId,
    /// The subtask and attempt, for a worker's call.
    pub node: Option<(NodeId, i32)>,
    pub agent_id: Option<AgentId>,
    pub purpose: Purpose,
    pub provider: String,
    pub model: String,
    pub usage: Usage,
    pub cost_micros: i64,
    pub latency_ms: i64,
    pub error: Option<String>,
}

/// Records calls in one statement.
pub async fn record(conn: &mut PgConnection, calls: &[LlmCall]) -> Result<(), sqlx::Error> {
    if calls.is_empty() {
        return Ok(());
    }
    let col = |f: &dyn Fn(&LlmCall) -> i64| calls.iter().map(f).collect::<Vec<i64>>();
    sqlx::query!(
        "insert into llm_calls (run_id, node_id, attempt, agent_id, purpose, provider, model,
                                input_tokens, cache_read_tokens, cache_write_tokens,
                                output_tokens, cost_micros, latency_ms, error)
         select * from unnest($1::uuid[], $2::uuid[], $3::int[], $4::uuid[], $5::text[],
                              $6::text[], $7::text[], $8::int8[], $9::int8[], $10::int8[],
                              $11::int8[], $12::int8[], $13::int8[], $14::text[])",
        &calls.iter().map(|c| c.run_id.0).collect::<Vec<_>>(),
        &calls
            .iter()
            .map(|c| c.node.map(|(n, _)| n.0))
            .collect::<Vec<_>>() as &[Option<uuid::Uuid>],
        &calls
            .iter()
            .map(|c| c.node.map(|(_, a)| a))
            .collect::<Vec<_>>() as &[Option<i32>],
        &calls
            .iter()
            .map(|c| c.agent_id.map(|a| a.0))
            .collect::<Vec<_>>() as &[Option<uuid::Uuid>],
        &calls
            .iter()
            .map(|c| c.purpose.as_str().to_owned())
            .collect::<Vec<_>>(),
        &calls.iter().map(|c| c.provider.clone()).collect::<Vec<_>>(),
        &calls.iter().map(|c| c.model.clone()).collect::<Vec<_>>(),
        &col(&|c| c.usage.input.max(0)),
        &col(&|c| c.usage.cache_read.max(0)),
        &col(&|c| c.usage.cache_write.max(0)),
        &col(&|c| c.usage.output.max(0)),
        &col(&|c| c.cost_micros.max(0)),
        &col(&|c| c.latency_ms.max(0)),
        &calls.iter().map(|c| c.error.clone()).collect::<Vec<_>>() as &[Option<String>],
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

struct TotalsRow {
    calls: i64,
    failed_calls: i64,
    input: i64,
    cache_read: i64,
    cache_write: i64,
    output: i64,
    cost_micros: i64,
    latency_ms: i64,
}

impl From<TotalsRow> for UsageTotals {
    fn from(r: TotalsRow) -> Self {
        UsageTotals {
            calls: r.calls,
            failed_calls: r.failed_calls,
            input: r.input,
            cache_read: r.cache_read,
            cache_write: r.cache_write,
            output: r.output,
            cost_micros: r.cost_micros,
            latency_ms: r.latency_ms,
        }
    }
}

/// A task's totals, and each subtask's (by node; subtasks without calls are absent).
pub async fn run_totals(
    conn: &mut PgConnection,
    run: RunId,
) -> Result<(UsageTotals, HashMap<NodeId, UsageTotals>), sqlx::Error> {
    let rows = sqlx::query!(
        r#"select node_id, count(*) as "calls!", count(error) as "failed_calls!",
                  sum(input_tokens)::int8 as "input!", sum(cache_read_tokens)::int8 as "cache_read!",
                  sum(cache_write_tokens)::int8 as "cache_write!",
                  sum(output_tokens)::int8 as "output!", sum(cost_micros)::int8 as "cost_micros!",
                  sum(latency_ms)::int8 as "latency_ms!"
           from llm_calls where run_id = $1 group by node_id"#,
        run.0
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut total = UsageTotals::default();
    let mut per_node = HashMap::new();
    for r in rows {
        let t = UsageTotals::from(TotalsRow {
            calls: r.calls,
            failed_calls: r.failed_calls,
            input: r.input,
            cache_read: r.cache_read,
            cache_write: r.cache_write,
            output: r.output,
            cost_micros: r.cost_micros,
            latency_ms: r.latency_ms,
        });
        add(&mut total, &t);
        if let Some(node) = r.node_id {
            per_node.insert(NodeId(node), t);
        }
    }
    Ok((total, per_node))
}

fn add(into: &mut UsageTotals, t: &UsageTotals) {
    into.calls += t.calls;
    into.failed_calls += t.failed_calls;
    into.input = into.input.saturating_add(t.input);
    into.cache_read = into.cache_read.saturating_add(t.cache_read);
    into.cache_write = into.cache_write.saturating_add(t.cache_write);
    into.output = into.output.saturating_add(t.output);
    into.cost_micros = into.cost_micros.saturating_add(t.cost_micros);
    into.latency_ms = into.latency_ms.saturating_add(t.latency_ms);
}

/// An agent's totals over every call it made.
pub async fn agent_totals(
    conn: &mut PgConnection,
    agent: AgentId,
) -> Result<UsageTotals, sqlx::Error> {
    let r = sqlx::query_as!(
        TotalsRow,
        r#"select count(*) as "calls!", count(error) as "failed_calls!",
                  coalesce(sum(input_tokens), 0)::int8 as "input!",
                  coalesce(sum(cache_read_tokens), 0)::int8 as "cache_read!",
                  coalesce(sum(cache_write_tokens), 0)::int8 as "cache_write!",
                  coalesce(sum(output_tokens), 0)::int8 as "output!",
                  coalesce(sum(cost_micros), 0)::int8 as "cost_micros!",
                  coalesce(sum(latency_ms), 0)::int8 as "latency_ms!"
           from llm_calls where agent_id = $1"#,
        agent.0
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(r.into())
}

struct CallRow {
    id: i64,
    run_id: uuid::Uuid,
    node_id: Option<uuid::Uuid>,
    attempt: Option<i32>,
    purpose: String,
    provider: String,
    model: String,
    input_tokens: i64,
    cache_read_tokens: i64,
    cache_write_tokens: i64,
    output_tokens: i64,
    cost_micros: i64,
    latency_ms: i64,
    error: Option<String>,
    created_at: time::OffsetDateTime,
}

impl From<CallRow> for CallView {
    fn from(r: CallRow) -> Self {
        CallView {
            id: r.id,
            task_id: RunId(r.run_id),
            subtask_id: r.node_id.map(NodeId),
            attempt: r.attempt,
            purpose: r.purpose,
            provider: r.provider,
            model: r.model,
            usage: Usage {
                input: r.input_tokens,
                cache_read: r.cache_read_tokens,
                cache_write: r.cache_write_tokens,
                output: r.output_tokens,
            },
            cost_micros: r.cost_micros,
            latency_ms: r.latency_ms,
            error: r.error,
            created_at: r.created_at,
        }
    }
}

/// An agent's newest calls, newest first.
pub async fn agent_recent(
    conn: &mut PgConnection,
    agent: AgentId,
    limit: i64,
) -> Result<Vec<CallView>, sqlx::Error> {
    let rows = sqlx::query_as!(
        CallRow,
        "select id, run_id, node_id, attempt, purpose, provider, model, input_tokens,
                cache_read_tokens, cache_write_tokens, output_tokens, cost_micros, latency_ms,
                error, created_at
         from llm_calls where agent_id = $1 order by id desc limit $2",
        agent.0,
        limit
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(CallView::from).collect())
}

/// The calls made for these subtasks' attempts, oldest first.
pub async fn for_nodes(
    conn: &mut PgConnection,
    nodes: &[uuid::Uuid],
) -> Result<Vec<CallView>, sqlx::Error> {
    let rows = sqlx::query_as!(
        CallRow,
        "select id, run_id, node_id, attempt, purpose, provider, model, input_tokens,
                cache_read_tokens, cache_write_tokens, output_tokens, cost_micros, latency_ms,
                error, created_at
         from llm_calls where node_id = any($1) order by id",
        nodes
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(CallView::from).collect())
}

/// Totals of some calls (an attempt's, say).
pub fn totals(calls: &[CallView]) -> UsageTotals {
    let mut t = UsageTotals::default();
    for c in calls {
        add(
            &mut t,
            &UsageTotals {
                calls: 1,
                failed_calls: i64::from(c.error.is_some()),
                input: c.usage.input,
                cache_read: c.usage.cache_read,
                cache_write: c.usage.cache_write,
                output: c.usage.output,
                cost_micros: c.cost_micros,
                latency_ms: c.latency_ms,
            },
        );
    }
    t
}
