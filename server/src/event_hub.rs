//! One shared reader of the event table per process, fanning new events out to every stream.
//!
//! Events get their `seq` at insert but become visible at commit, so a later `seq` can appear
//! before an earlier one. The hub releases events strictly in `seq` order: it holds back
//! everything after a gap until the gap's transaction commits, or for at most [`GAP_PATIENCE`]
//! (a rolled-back transaction leaves a gap that never fills). A client that resumes after the
//! last `seq` it saw therefore misses nothing.

use app::db::events::{EventQuery, WAKE_CHANNEL, list};
use app::domain::event::Event;
use axum::extract::ws::Utf8Bytes;
use prometheus_client::metrics::histogram::Histogram;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

/// How long a gap in `seq` may hold back later events before it is taken as a rollback.
const GAP_PATIENCE: Duration = Duration::from_secs(3);
/// How often the table is read when no notification arrives (a lost NOTIFY, a reconnect).
const POLL: Duration = Duration::from_millis(250);
/// Events one subscriber may fall behind before it is cut off (and must resume).
pub const BUFFER: usize = 4096;

/// An event as released to streams, with its JSON encoded once for every subscriber (with a
/// thousand clients, encoding per client was most of the fan-out's cost).
pub struct Released {
    pub event: Event,
    pub json: Utf8Bytes,
}

#[derive(Clone)]
pub struct EventHub {
    events: broadcast::Sender<Arc<Released>>,
    /// The highest `seq` released so far: every event up to it has been broadcast.
    released: watch::Receiver<i64>,
}

impl EventHub {
    /// Starts the reader; it stops with `shutdown`.
    /// `lag` observes, per event, the time from its commit to its release.
    pub async fn start(
        pool: PgPool,
        shutdown: CancellationToken,
        lag: Histogram,
    ) -> Result<Self, sqlx::Error> {
        let head: i64 = sqlx::query_scalar("select coalesce(max(seq), 0) from events")
            .fetch_one(&pool)
            .await?;
        let (events, _) = broadcast::channel(BUFFER);
        let (released_tx, released) = watch::channel(head);
        let reader = Reader {
            pool,
            events: events.clone(),
            released: released_tx,
            low: head,
            gap_since: None,
            lag,
        };
        tokio::spawn(reader.run(shutdown));
        Ok(Self { events, released })
    }

    /// Subscribes to new events, returning the receiver and the `seq` up to which everything
    /// was released before the subscription: replay up to it from the table, then follow the
    /// receiver, dropping what was already replayed.
    pub fn subscribe(&self) -> (broadcast::Receiver<Arc<Released>>, i64) {
        let rx = self.events.subscribe();
        let released = *self.released.borrow();
        (rx, released)
    }

    /// The `seq` up to which every event has been released: none at or below it can still
    /// appear (a gap that outlived its patience counts as a rolled-back transaction).
    pub fn released(&self) -> i64 {
        *self.released.borrow()
    }

    pub fn subscribers(&self) -> usize {
        self.events.receiver_count()
    }
}

struct Reader {
    pool: PgPool,
    events: broadcast::Sender<Arc<Released>>,
    released: watch::Sender<i64>,
    low: i64,
    gap_since: Option<Instant>,
    lag: Histogram,
}

impl Reader {
    async fn run(mut self, shutdown: CancellationToken) {
        let mut listener: Option<PgListener> = None;
        loop {
            if listener.is_none() {
                listener = connect(&self.pool).await;
            }
            let wait = async {
                match listener.as_mut() {
                    Some(l) => match tokio::time::timeout(POLL, l.recv()).await {
                        Ok(Err(e)) => Err(e),
                        _ => Ok(()),
                    },
                    None => {
                        tokio::time::sleep(POLL).await;
                        Ok(())
                    }
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                res = wait => if let Err(e) = res {
                    tracing::warn!(error = %e, "event listener lost; polling until it reconnects");
                    listener = None;
                },
            }
            if let Err(e) = self.release().await {
                tracing::warn!(error = %e, "reading new events failed");
            }
        }
    }

    /// Broadcasts every event after `low` that has no earlier gap.
    async fn release(&mut self) -> Result<(), sqlx::Error> {
        loop {
            let page = list(
                &self.pool,
                &EventQuery {
                    after: self.low,
                    limit: 1000,
                    ..Default::default()
                },
            )
            .await?;
            let full = page.len() == 1000;
            for e in page {
                if e.seq != self.low + 1 {
                    let since = *self.gap_since.get_or_insert_with(Instant::now);
                    if since.elapsed() < GAP_PATIENCE {
                        return Ok(());
                    }
                    tracing::debug!(
                        from = self.low + 1,
                        to = e.seq - 1,
                        "skipping a gap in event seq"
                    );
                }
                self.gap_since = None;
                self.low = e.seq;
                // Mark it released before sending: a subscriber that reads the mark after
                // subscribing either receives the event or replays it, never neither.
                self.released.send_replace(self.low);
                // No subscribers is fine: the event is in the table for whoever comes later.
                self.lag.observe(
                    (time::OffsetDateTime::now_utc() - e.at)
                        .as_seconds_f64()
                        .max(0.0),
                );
                let json = match serde_json::to_string(&e) {
                    Ok(j) => Utf8Bytes::from(j),
                    Err(err) => {
                        tracing::warn!(seq = e.seq, error = %err, "an event could not be encoded");
                        continue;
                    }
                };
                let _ = self.events.send(Arc::new(Released { event: e, json }));
            }
            if !full {
                return Ok(());
            }
        }
    }
}

async fn connect(pool: &PgPool) -> Option<PgListener> {
    let mut l = PgListener::connect_with(pool).await.ok()?;
    l.listen(WAKE_CHANNEL).await.ok()?;
    Some(l)
}
