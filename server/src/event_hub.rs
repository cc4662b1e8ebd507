//! One shared reader of the event table per process, fanning new events out to every stream.
//!
//! Events get their `seq` at insert but become visible at commit, so a later `seq` can appear
//! before an earlier one, however late. The hub releases events in [`EventPosition`] order
//! (writing transaction, then `seq`) and only those below the oldest transaction still running:
//! no event can appear below a released one afterwards, so a client that resumes after the
//! last event it saw misses nothing, with no patience timer and no gap to wait out (a
//! rolled-back transaction leaves nothing behind). An open write transaction holds later events
//! back, visibly: `flotilla_event_hold_seconds`.

use app::db::events::{EventQuery, WAKE_CHANNEL, held_back_secs, list, releasable_head};
use app::domain::event::{Event, EventPosition};
use axum::extract::ws::Utf8Bytes;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

/// How often the table is read when no notification arrives (a lost NOTIFY, a reconnect).
const POLL: Duration = Duration::from_millis(250);
/// How often the held-back figure is refreshed.
const HOLD_EVERY: Duration = Duration::from_secs(1);
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
    /// Everything up to this position has been broadcast.
    released: watch::Receiver<EventPosition>,
}

/// What the hub's reader needs, kept across its restarts.
#[derive(Clone)]
pub struct HubReader {
    pool: PgPool,
    events: broadcast::Sender<Arc<Released>>,
    released: Arc<watch::Sender<EventPosition>>,
    lag: Histogram,
    hold: Gauge<f64, AtomicU64>,
}

impl EventHub {
    /// The hub and its reader; run the reader with [`HubReader::run`] (supervised).
    /// `lag` observes, per event, the time from its commit to its release; `hold` is how long
    /// the oldest committed event has been held back.
    pub async fn new(
        pool: PgPool,
        lag: Histogram,
        hold: Gauge<f64, AtomicU64>,
    ) -> Result<(Self, HubReader), sqlx::Error> {
        let head = releasable_head(&pool).await?;
        let (events, _) = broadcast::channel(BUFFER);
        let (released_tx, released) = watch::channel(head);
        let reader = HubReader {
            pool,
            events: events.clone(),
            released: Arc::new(released_tx),
            lag,
            hold,
        };
        Ok((Self { events, released }, reader))
    }

    /// Subscribes to new events, returning the receiver and the position up to which
    /// everything was released before the subscription: replay up to it from the table, then
    /// follow the receiver, dropping what was already replayed.
    pub fn subscribe(&self) -> (broadcast::Receiver<Arc<Released>>, EventPosition) {
        let rx = self.events.subscribe();
        let released = *self.released.borrow();
        (rx, released)
    }

    /// The position up to which every event has been released: none at or below it can
    /// still appear.
    pub fn released(&self) -> EventPosition {
        *self.released.borrow()
    }

    pub fn subscribers(&self) -> usize {
        self.events.receiver_count()
    }
}

impl HubReader {
    /// Follows the table until `shutdown`, resuming from what was last released.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut low = *self.released.borrow();
        let mut listener: Option<PgListener> = None;
        let mut hold_checked = Instant::now();
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
            if let Err(e) = self.release(&mut low).await {
                tracing::warn!(error = %e, "reading new events failed");
            }
            if hold_checked.elapsed() >= HOLD_EVERY {
                hold_checked = Instant::now();
                match held_back_secs(&self.pool).await {
                    Ok(held) => {
                        self.hold.set(held.unwrap_or(0.0));
                    }
                    Err(e) => tracing::warn!(error = %e, "reading the held-back events failed"),
                }
            }
        }
    }

    /// Broadcasts every releasable event after `low`, in release order.
    async fn release(&self, low: &mut EventPosition) -> Result<(), sqlx::Error> {
        loop {
            let page = list(
                &self.pool,
                &EventQuery {
                    after: *low,
                    limit: 1000,
                    ..Default::default()
                },
            )
            .await?;
            let full = page.len() == 1000;
            for e in page {
                *low = e.position();
                // Mark it released before sending: a subscriber that reads the mark after
                // subscribing either receives the event or replays it, never neither.
                self.released.send_replace(*low);
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
                // No subscribers is fine: the event is in the table for whoever comes later.
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
