//! The event history, newest first.

use super::AppError;
use crate::domain::event::Event;
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

/// One page of events older than `before` (or the newest) of a type or family (`kind`), at
/// least a `severity`, about an agent or a task, and not older than `since_minutes`. Plain text
/// arguments: they travel in the query string, and a malformed one is a clear 422.
#[server(endpoint = "events/list", input = GetUrl)]
pub async fn list_events(
    before: Option<i64>,
    kind: Option<String>,
    severity: Option<String>,
    agent_id: Option<String>,
    task_id: Option<String>,
    since_minutes: Option<i64>,
    actor: Option<String>,
) -> Result<Vec<Event>, AppError> {
    use super::ssr::{context, current_user, run};
    use crate::domain::event::EventFilter;
    use crate::domain::ids::{AgentId, RunId};
    run(async {
        current_user().await?;
        let uuid = |what: &str, v: Option<String>| {
            v.map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<uuid::Uuid>()
                        .map_err(|_| AppError::invalid(format!("'{s}' is not a {what} id")))
                })
                .transpose()
        };
        let agent = uuid("agent", agent_id)?.map(AgentId);
        let task = uuid("task", task_id)?.map(RunId);
        let since = match since_minutes {
            None => None,
            Some(m) if (1..=60 * 24 * 366).contains(&m) => {
                Some(time::OffsetDateTime::now_utc() - time::Duration::minutes(m))
            }
            Some(m) => {
                return Err(AppError::invalid(format!(
                    "since_minutes must be between 1 and a year, got {m}"
                )));
            }
        };
        let filter = EventFilter::parse(kind, agent, task, severity)
            .and_then(|f| f.with_actor(actor))
            .map_err(AppError::invalid)?;
        Ok(crate::db::events::list_newest(&context()?.pool, before, since, &filter, 50).await?)
    })
    .await
}
