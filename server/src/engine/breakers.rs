//! Records every provider circuit-breaker change as a `provider.breaker` event (an opening is
//! an error, so it toasts), in the order the providers reported them.

use super::Engine;
use app::db::events::{self, NewEvent};
use app::domain::event::{EventKind, Severity};
use tokio_util::sync::CancellationToken;

impl Engine {
    pub(super) async fn breaker_loop(self, shutdown: CancellationToken) {
        let changes = self.providers.changes_rx.clone();
        let mut changes = changes.lock().await;
        loop {
            let change = tokio::select! {
                () = shutdown.cancelled() => return,
                c = changes.recv() => match c { Some(c) => c, None => return },
            };
            let severity = match change.state {
                crate::llm::breaker::BreakerState::Open => Severity::Error,
                _ => Severity::Info,
            };
            let event = NewEvent::new(
                EventKind::ProviderBreaker,
                format!("provider/{}", change.provider),
            )
            .severity(severity)
            .data(serde_json::json!({"provider": change.provider, "state": change.state.as_str()}));
            let stored = async {
                let mut conn = self.pool.acquire().await?;
                events::append(&mut conn, event).await
            };
            if let Err(e) = stored.await {
                tracing::warn!(provider = %change.provider, error = %e, "could not record a breaker change");
            }
        }
    }
}
