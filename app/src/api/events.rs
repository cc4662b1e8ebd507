//! The event history, newest first.

use super::AppError;
use crate::domain::event::Event;
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

/// One page of events older than `before` (or the newest) of a type or family (`kind`) and at
/// least a `severity`. Plain arguments: they travel in the query string.
#[server(endpoint = "events/list", input = GetUrl)]
pub async fn list_events(
    before: Option<i64>,
    kind: Option<String>,
    severity: Option<String>,
) -> Result<Vec<Event>, AppError> {
    use super::ssr::{context, run};
    use crate::domain::event::EventFilter;
    run(async {
        let filter = EventFilter::parse(kind, None, None, severity).map_err(AppError::invalid)?;
        Ok(crate::db::events::list_newest(&context()?.pool, before, &filter, 50).await?)
    })
    .await
}
