//! The `events` table: appended in the same transaction as the change it records.

use crate::domain::account::Actor;
use crate::domain::event::{Event, EventFilter, EventKind, EventPosition, Severity};
use crate::domain::ids::{AgentId, NodeId, RunId};
use sqlx::{PgConnection, PgExecutor};

/// The channel engine processes LISTEN on. Payloads are empty: a notification only says
/// "look again", the rows say what changed.
pub const WAKE_CHANNEL: &str = "flotilla_work";

/// The channel on which running work is told to stop, with the [`Stop`] as payload.
pub const STOP_CHANNEL: &str = "flotilla_stop";

/// Running work to stop at once: every node of a run (cancelled), one node (released: its
/// agent terminated, its lease lost), or whatever an agent runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Run(RunId),
    Node(NodeId),
    Agent(AgentId),
}

impl Stop {
    pub fn payload(self) -> String {
        match self {
            Stop::Run(id) => format!("run:{}", id.0),
            Stop::Node(id) => format!("node:{}", id.0),
            Stop::Agent(id) => format!("agent:{}", id.0),
        }
    }

    /// The stop a payload names; None for anything else (it came over the wire).
    pub fn parse(payload: &str) -> Option<Self> {
        let (what, id) = payload.split_once(':')?;
        let id = uuid::Uuid::parse_str(id).ok()?;
        match what {
            "run" => Some(Stop::Run(RunId(id))),
            "node" => Some(Stop::Node(NodeId(id))),
            "agent" => Some(Stop::Agent(AgentId(id))),
            _ => None,
        }
    }
}

/// Asks every engine process, at the caller's commit, to stop the running work `stop` names.
/// The rows already say the work is void; this only makes it stop now rather than when it
/// reports (and spends nothing more meanwhile).
pub async fn request_stop(db: impl PgExecutor<'_>, stop: Stop) -> Result<(), sqlx::Error> {
    sqlx::query!("select pg_notify($1, $2)", STOP_CHANNEL, stop.payload())
        .execute(db)
        .await?;
    Ok(())
}

/// An event about to be recorded.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: EventKind,
    pub severity: Severity,
    pub subject: String,
    pub agent_id: Option<AgentId>,
    pub run_id: Option<RunId>,
    pub node_id: Option<NodeId>,
    pub data: serde_json::Value,
}

impl NewEvent {
    pub fn new(kind: EventKind, subject: String) -> Self {
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
        e.kind.as_str(),
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

/// Which events to list: a page of the history after `after`, in release order.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub after: EventPosition,
    /// Nothing past this position: a reader that must agree with the live streams passes what
    /// the event hub has released.
    pub upto: Option<EventPosition>,
    pub filter: EventFilter,
    pub limit: i64,
}

struct EventRow {
    seq: i64,
    xid: i64,
    kind: String,
    at: time::OffsetDateTime,
    severity: Severity,
    subject: String,
    data: serde_json::Value,
    agent_id: Option<uuid::Uuid>,
    run_id: Option<uuid::Uuid>,
    node_id: Option<uuid::Uuid>,
    actor_id: Option<uuid::Uuid>,
    actor: Option<String>,
    actor_token: Option<String>,
}

impl From<EventRow> for Event {
    fn from(r: EventRow) -> Self {
        Event {
            seq: r.seq,
            xid: r.xid,
            kind: r.kind,
            at: r.at,
            severity: r.severity,
            subject: r.subject,
            data: r.data,
            agent_id: r.agent_id.map(AgentId),
            task_id: r.run_id.map(RunId),
            subtask_id: r.node_id.map(NodeId),
            actor_id: r.actor_id.map(crate::domain::account::UserId),
            actor: r.actor,
            actor_token: r.actor_token,
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

/// The position just after the event `seq`, which is what a client means by `after=seq`: the
/// event's own position, or (if it was pruned) that of the nearest surviving one below it.
pub async fn position_after(
    db: impl PgExecutor<'_>,
    seq: i64,
) -> Result<EventPosition, sqlx::Error> {
    let xid = sqlx::query_scalar!(
        "select xid from events where seq <= $1 order by seq desc limit 1",
        seq
    )
    .fetch_optional(db)
    .await?;
    Ok(EventPosition {
        xid: xid.unwrap_or(0),
        seq,
    })
}

/// The newest position that can be released now (every transaction below it has ended).
pub async fn releasable_head(db: impl PgExecutor<'_>) -> Result<EventPosition, sqlx::Error> {
    let head = sqlx::query!(
        r#"select xid, seq from events
           where xid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
           order by xid desc, seq desc limit 1"#
    )
    .fetch_optional(db)
    .await?;
    Ok(head.map_or_else(EventPosition::default, |h| EventPosition {
        xid: h.xid,
        seq: h.seq,
    }))
}

/// How long the oldest committed event not yet releasable has waited (an open write
/// transaction below it holds it back); None when nothing is held.
pub async fn held_back_secs(db: impl PgExecutor<'_>) -> Result<Option<f64>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select extract(epoch from clock_timestamp() - min(at))::float8 from events
           where xid >= pg_snapshot_xmin(pg_current_snapshot())::text::bigint"#
    )
    .fetch_one(db)
    .await
}

/// Attributes every event the rest of the caller's transaction writes to `actor` (the columns'
/// defaults read these transaction-local settings, so no writer passes an actor along).
pub async fn act_as(conn: &mut PgConnection, actor: &Actor) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"select set_config('flotilla.actor_id', $1, true) as id,
                  set_config('flotilla.actor', $2, true) as name,
                  set_config('flotilla.actor_token', $3, true) as token"#,
        actor.user.id.0.to_string(),
        actor.user.username,
        actor.token.as_deref().unwrap_or_default()
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(())
}

/// Events after `q.after` in release order, only those no later commit can precede (replay,
/// REST paging, the event hub).
pub async fn list(db: impl PgExecutor<'_>, q: &EventQuery) -> Result<Vec<Event>, sqlx::Error> {
    let f = &q.filter;
    Ok(sqlx::query_as!(
        EventRow,
        r#"select seq, xid, type as kind, at, severity as "severity: Severity", subject, data, agent_id, run_id, node_id,
                  actor_id, actor, actor_token
           from events
           where (xid, seq) > ($1, $2)
             and xid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
             and ($8::bigint is null or (xid, seq) <= ($8, $9::bigint))
             and ($3::text is null or type = $3 or type like $3 || '.%')
             and ($4::uuid is null or agent_id = $4)
             and ($5::uuid is null or run_id = $5)
             and (cardinality($6::text[]) = 0 or severity = any($6))
             and ($10::text is null or actor = $10)
           order by xid, seq limit $7"#,
        q.after.xid,
        q.after.seq,
        f.kind,
        f.agent_id.map(|a| a.0),
        f.task_id.map(|r| r.0),
        &severities(f),
        q.limit,
        q.upto.map(|p| p.xid),
        q.upto.map(|p| p.seq),
        f.actor,
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
        r#"select seq, xid, type as kind, at, severity as "severity: Severity", subject, data, agent_id, run_id, node_id,
                  actor_id, actor, actor_token
           from events
           where ($1::bigint is null or seq < $1)
             and ($2::text is null or type = $2 or type like $2 || '.%')
             and ($3::uuid is null or agent_id = $3)
             and ($4::uuid is null or run_id = $4)
             and (cardinality($5::text[]) = 0 or severity = any($5))
             and ($7::timestamptz is null or at >= $7)
             and ($8::text is null or actor = $8)
           order by seq desc limit $6"#,
        before,
        f.kind,
        f.agent_id.map(|a| a.0),
        f.task_id.map(|r| r.0),
        &severities(f),
        limit,
        since,
        f.actor
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_stop_survives_its_payload() {
        let id = uuid::Uuid::new_v4();
        for stop in [
            Stop::Run(RunId(id)),
            Stop::Node(NodeId(id)),
            Stop::Agent(AgentId(id)),
        ] {
            assert_eq!(Stop::parse(&stop.payload()), Some(stop));
        }
    }

    proptest! {
        #[test]
        fn any_payload_parses_to_a_stop_or_nothing(payload in ".{0,60}") {
            if let Some(stop) = Stop::parse(&payload) {
                prop_assert_eq!(Stop::parse(&stop.payload()), Some(stop));
            }
        }
    }
}
