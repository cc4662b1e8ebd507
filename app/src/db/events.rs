//! The `events` table: appended in the same transaction as the change it records.

use crate::domain::event::{Event, EventFilter, Severity};
use crate::domain::ids::{AgentId, NodeId, RunId};
use sqlx::{PgConnection, PgExecutor};

/// The channel engine processes LISTEN on. Payloads are empty: a notification only says
/// "look again", the rows say what changed.
pub const WAKE_CHANNEL: &str = "flotilla_work";

/// An event about to be recorded.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: &'static str,
    pub severity: Severity,
    pub subject: String,
    pub agent_id: Option<AgentId>,
    pub run_id: Option<RunId>,
    pub node_id: Option<NodeId>,
    pub data: serde_json::Value,
}

impl NewEvent {
    pub fn new(kind: &'static str, subject: String) -> Self {
        Self {
            kind,
            severity: Severity::Info,
            subject,
            agent_id: None,
            run_id: None,
            node_id: None,
            data: serde_json::Value::Object(Default::default()),
        }
    }
    pub fn severity(mut self, s: Severity) -> Self {
        self.severity = s;
        self
    }
    pub fn agent(mut self, id: AgentId) -> Self {
        self.agent_id = Some(id);
        self
    }
    pub fn run(mut self, id: RunId) -> Self {
        self.run_id = Some(id);
        self
    }
    pub fn node(mut self, id: NodeId) -> Self {
        self.node_id = Some(id);
        self
    }
    pub fn data(mut self, data: serde_json::Value) -> Self {
        self.data = data;
        self
    }
}

/// Appends an event in the caller's transaction and asks for a wake-up at its commit (of the
/// event streams and the engines). Postgres folds identical notifications of one transaction
/// into one, so a transaction costs one NOTIFY however many events it appends.
pub async fn append(conn: &mut PgConnection, e: NewEvent) -> Result<i64, sqlx::Error> {
    // One round trip for both: appends sit on paths people wait on (a submission, a pause).
    sqlx::query_scalar!(
        r#"with e as (
               insert into events (type, severity, subject, agent_id, run_id, node_id, data)
               values ($1, $2, $3, $4, $5, $6, $7) returning seq)
           select e.seq from e cross join (select pg_notify($8, '')) as wake"#,
        e.kind,
        e.severity.as_str(),
        e.subject,
        e.agent_id.map(|a| a.0),
        e.run_id.map(|r| r.0),
        e.node_id.map(|n| n.0),
        e.data,
        WAKE_CHANNEL
    )
    .fetch_one(&mut *conn)
    .await
}

/// Tells every listening engine process to look for work now. Postgres delivers it at commit
/// and folds identical notifications of one transaction into one.
pub async fn wake(db: impl PgExecutor<'_>) -> Result<(), sqlx::Error> {
    sqlx::query!("select pg_notify($1, '')", WAKE_CHANNEL)
        .execute(db)
        .await?;
    Ok(())
}

/// Which events to list: a page of the history after `after`.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub after: i64,
    /// Nothing past this `seq`: a reader that must not skip events passes the highest `seq`
    /// below which every event is visible (later ones may still have gaps that fill).
    pub upto: Option<i64>,
    pub filter: EventFilter,
    pub limit: i64,
}

struct EventRow {
    seq: i64,
    kind: String,
    at: time::OffsetDateTime,
    severity: String,
    subject: String,
    data: serde_json::Value,
    agent_id: Option<uuid::Uuid>,
    run_id: Option<uuid::Uuid>,
    node_id: Option<uuid::Uuid>,
}

impl From<EventRow> for Event {
    fn from(r: EventRow) -> Self {
        Event {
            seq: r.seq,
            kind: r.kind,
            at: r.at,
            severity: r.severity.parse().unwrap_or(Severity::Info),
            subject: r.subject,
            data: r.data,
            agent_id: r.agent_id.map(AgentId),
            task_id: r.run_id.map(RunId),
            subtask_id: r.node_id.map(NodeId),
        }
    }
}

/// The severities at or above the filter's minimum (empty: all).
fn severities(f: &EventFilter) -> Vec<String> {
    match f.min_severity {
        None => Vec::new(),
        Some(min) => ["debug", "info", "warning", "error", "critical"]
            .into_iter()
            .filter(|s| s.parse::<Severity>().is_ok_and(|v| v >= min))
            .map(str::to_owned)
            .collect(),
    }
}

/// Events after `q.after`, oldest first (replay, REST paging).
pub async fn list(db: impl PgExecutor<'_>, q: &EventQuery) -> Result<Vec<Event>, sqlx::Error> {
    let f = &q.filter;
    Ok(sqlx::query_as!(
        EventRow,
        r#"select seq, type as kind, at, severity, subject, data, agent_id, run_id, node_id
           from events
           where seq > $1 and ($7::bigint is null or seq <= $7)
             and ($2::text is null or type = $2 or type like $2 || '.%')
             and ($3::uuid is null or agent_id = $3)
             and ($4::uuid is null or run_id = $4)
             and (cardinality($5::text[]) = 0 or severity = any($5))
           order by seq limit $6"#,
        q.after,
        f.kind,
        f.agent_id.map(|a| a.0),
        f.task_id.map(|r| r.0),
        &severities(f),
        q.limit,
        q.upto
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(Event::from)
    .collect())
}

/// Events before `before` (or the newest) and not older than `since`, newest first (the
/// history page).
pub async fn list_newest(
    db: impl PgExecutor<'_>,
    before: Option<i64>,
    since: Option<time::OffsetDateTime>,
    f: &EventFilter,
    limit: i64,
) -> Result<Vec<Event>, sqlx::Error> {
    Ok(sqlx::query_as!(
        EventRow,
        r#"select seq, type as kind, at, severity, subject, data, agent_id, run_id, node_id
           from events
           where ($1::bigint is null or seq < $1)
             and ($2::text is null or type = $2 or type like $2 || '.%')
             and ($3::uuid is null or agent_id = $3)
             and ($4::uuid is null or run_id = $4)
             and (cardinality($5::text[]) = 0 or severity = any($5))
             and ($7::timestamptz is null or at >= $7)
           order by seq desc limit $6"#,
        before,
        f.kind,
        f.agent_id.map(|a| a.0),
        f.task_id.map(|r| r.0),
        &severities(f),
        limit,
        since
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(Event::from)
    .collect())
}

/// Deletes up to `batch` events older than `keep_days`; returns how many. Callers loop until
/// it returns less than `batch`, one short transaction per batch, so pruning never holds long
/// locks or bloats one huge transaction.
pub async fn prune(
    db: impl PgExecutor<'_>,
    keep_days: i64,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query!(
        r#"delete from events where seq in (
               select seq from events
               where at < now() - make_interval(days => $1::int)
               order by seq limit $2)"#,
        i32::try_from(keep_days).unwrap_or(i32::MAX),
        batch
    )
    .execute(db)
    .await?
    .rows_affected())
}
