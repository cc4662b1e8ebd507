//! Each attempt's conversation with its model, whole: messages, tool calls and results.

use crate::domain::ids::{AgentId, NodeId, RunId};
use crate::domain::usage::TranscriptView;
use sqlx::PgConnection;

#[derive(Clone, Debug)]
pub struct NewTranscript {
    pub node: NodeId,
    pub attempt: i32,
    pub agent: AgentId,
    pub messages: serde_json::Value,
}

/// Records transcripts in one statement; an attempt's second report (a retried transaction
/// that did commit) changes nothing.
pub async fn record(conn: &mut PgConnection, all: &[NewTranscript]) -> Result<(), sqlx::Error> {
    if all.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "insert into transcripts (node_id, attempt, agent_id, messages)
         select * from unnest($1::uuid[], $2::int[], $3::uuid[], $4::jsonb[])
         on conflict (node_id, attempt) do nothing",
        &all.iter().map(|t| t.node.0).collect::<Vec<_>>(),
        &all.iter().map(|t| t.attempt).collect::<Vec<_>>(),
        &all.iter().map(|t| t.agent.0).collect::<Vec<_>>(),
        &all.iter().map(|t| t.messages.clone()).collect::<Vec<_>>(),
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

struct Row {
    node_id: uuid::Uuid,
    key: String,
    run_id: uuid::Uuid,
    attempt: i32,
    agent_id: Option<uuid::Uuid>,
    messages: serde_json::Value,
    created_at: time::OffsetDateTime,
}

impl From<Row> for TranscriptView {
    fn from(r: Row) -> Self {
        TranscriptView {
            subtask_id: NodeId(r.node_id),
            subtask_key: r.key,
            task_id: RunId(r.run_id),
            attempt: r.attempt,
            agent_id: r.agent_id.map(AgentId),
            messages: r.messages,
            calls: Vec::new(),
            usage: Default::default(),
            created_at: r.created_at,
        }
    }
}

/// A task's transcripts, by subtask and attempt.
pub async fn for_run(
    conn: &mut PgConnection,
    run: RunId,
) -> Result<Vec<TranscriptView>, sqlx::Error> {
    let rows = sqlx::query_as!(
        Row,
        "select t.node_id, n.key, n.run_id, t.attempt, t.agent_id, t.messages, t.created_at
         from transcripts t join nodes n on n.id = t.node_id
         where n.run_id = $1 order by n.position, t.attempt",
        run.0
    )
    .fetch_all(&mut *conn)
    .await?;
    with_calls(conn, rows.into_iter().map(TranscriptView::from).collect()).await
}

/// An agent's newest transcripts, newest first.
pub async fn for_agent(
    conn: &mut PgConnection,
    agent: AgentId,
    limit: i64,
) -> Result<Vec<TranscriptView>, sqlx::Error> {
    let rows = sqlx::query_as!(
        Row,
        "select t.node_id, n.key, n.run_id, t.attempt, t.agent_id, t.messages, t.created_at
         from transcripts t join nodes n on n.id = t.node_id
         where t.agent_id = $1 order by t.created_at desc limit $2",
        agent.0,
        limit
    )
    .fetch_all(&mut *conn)
    .await?;
    with_calls(conn, rows.into_iter().map(TranscriptView::from).collect()).await
}

/// Each transcript with its attempt's calls and their totals.
async fn with_calls(
    conn: &mut PgConnection,
    mut items: Vec<TranscriptView>,
) -> Result<Vec<TranscriptView>, sqlx::Error> {
    let nodes: Vec<uuid::Uuid> = items.iter().map(|t| t.subtask_id.0).collect();
    let calls = super::llm_calls::for_nodes(conn, &nodes).await?;
    for t in &mut items {
        t.calls = calls
            .iter()
            .filter(|c| c.subtask_id == Some(t.subtask_id) && c.attempt == Some(t.attempt))
            .cloned()
            .collect();
        t.usage = super::llm_calls::totals(&t.calls);
    }
    Ok(items)
}
