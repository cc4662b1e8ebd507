//! The tab's one live connection to the event stream, shared by every page.
//!
//! In the browser it opens `/api/v1/events/stream`, reconnects with backoff and resumes after
//! the last `seq` it saw, so nothing is missed across drops. Pages read [`LiveEvents`] and
//! refetch what an event concerns. On the server (rendering) it is inert.

use crate::domain::event::Event;
use leptos::prelude::*;
use std::sync::Arc;

/// Whether the stream is up, for the indicator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connection {
    Connecting,
    Live,
    Reconnecting,
}

/// How many recent events the tab keeps. Effects run after a burst, not per event, so readers
/// look through the recent ones instead of only the latest.
pub const RECENT: usize = 500;

#[derive(Clone, Copy)]
pub struct LiveEvents {
    /// The most recent events, oldest first, at most [`RECENT`].
    pub recent: ReadSignal<Vec<Arc<Event>>>,
    pub connection: ReadSignal<Connection>,
}

impl LiveEvents {
    /// The `seq` of the newest event for which `concerns` holds: it moves whenever such an event
    /// arrives, even inside a burst, so use it as a resource's source to refetch live.
    pub fn ticks(self, concerns: impl Fn(&Event) -> bool + Send + Sync + 'static) -> Memo<i64> {
        let recent = self.recent;
        Memo::new(move |prev: Option<&i64>| {
            let newest = recent.with(|r| r.iter().rev().find(|e| concerns(e)).map(|e| e.seq));
            newest.unwrap_or_else(|| prev.copied().unwrap_or(0))
        })
    }

    /// Like [`ticks`](Self::ticks), but moving at most once per `every`: for views that
    /// re-read aggregates (dashboards, charts), so a burst of events costs one refetch, not one
    /// per event. The first change goes through at once; later ones wait out the period.
    pub fn throttled_ticks(
        self,
        every: std::time::Duration,
        concerns: impl Fn(&Event) -> bool + Send + Sync + 'static,
    ) -> ReadSignal<i64> {
        let ticks = self.ticks(concerns);
        let (out, set_out) = signal(ticks.get_untracked());
        #[cfg(feature = "hydrate")]
        {
            let pending = StoredValue::new(false);
            let last_fired = StoredValue::new(0.0_f64);
            Effect::new(move |_| {
                let now = ticks.get();
                if pending.get_value() || now == out.get_untracked() {
                    return;
                }
                let since = now_ms() - last_fired.get_value();
                let wait = (every.as_secs_f64() * 1000.0 - since).max(0.0);
                pending.set_value(true);
                set_timeout(
                    move || {
                        pending.set_value(false);
                        last_fired.set_value(now_ms());
                        set_out.set(ticks.get_untracked());
                    },
                    std::time::Duration::from_millis(wait as u64),
                );
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (set_out, every);
        out
    }

    /// Events newer than `after`, oldest first.
    pub fn since(self, after: i64) -> Vec<Arc<Event>> {
        self.recent
            .with(|r| r.iter().filter(|e| e.seq > after).cloned().collect())
    }
}

/// Opens the connection (in the browser) and provides [`LiveEvents`] to the pages below.
pub fn provide_live_events() -> LiveEvents {
    let (recent, set_recent) = signal(Vec::<Arc<Event>>::new());
    let (connection, set_connection) = signal(Connection::Connecting);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| browser::connect(set_recent, set_connection, None, 0));
    #[cfg(not(feature = "hydrate"))]
    let _ = (set_recent, set_connection);
    let live = LiveEvents { recent, connection };
    provide_context(live);
    live
}

pub fn use_live_events() -> LiveEvents {
    expect_context::<LiveEvents>()
}

#[cfg(feature = "hydrate")]
mod browser {
    use super::{Connection, Event};
    use leptos::prelude::*;
    use std::sync::Arc;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    use web_sys::{CloseEvent, MessageEvent, WebSocket};

    /// Connects, resuming after `after` (from now when `None`); on close, reconnects with
    /// backoff (`failures` so far) after the last `seq` seen.
    pub fn connect(
        set_recent: WriteSignal<Vec<Arc<Event>>>,
        set_connection: WriteSignal<Connection>,
        after: Option<i64>,
        failures: u32,
    ) {
        let Some(location) = web_sys::window().map(|w| w.location()) else {
            return;
        };
        let scheme = if location.protocol().ok().as_deref() == Some("https:") {
            "wss"
        } else {
            "ws"
        };
        let host = location.host().unwrap_or_default();
        let url = match after {
            Some(after) => format!("{scheme}://{host}/api/v1/events/stream?after={after}"),
            None => format!("{scheme}://{host}/api/v1/events/stream"),
        };
        let Ok(ws) = WebSocket::new(&url) else {
            retry(set_recent, set_connection, after, failures);
            return;
        };
        // -1: nothing seen yet (a fresh stream starts with a `stream.ready` marker).
        let last = Arc::new(std::sync::atomic::AtomicI64::new(after.unwrap_or(-1)));
        let on_open = Closure::<dyn FnMut()>::new(move || set_connection.set(Connection::Live));
        let seen = last.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |m: MessageEvent| {
            let Some(text) = m.data().as_string() else {
                return;
            };
            let Ok(event) = serde_json::from_str::<Event>(&text) else {
                return;
            };
            // The server never repeats a seq on one connection; this guards reconnect overlap.
            if event.seq > seen.load(std::sync::atomic::Ordering::Relaxed) {
                seen.store(event.seq, std::sync::atomic::Ordering::Relaxed);
                if event.kind != "stream.ready" {
                    set_recent.update(|r| {
                        r.push(Arc::new(event));
                        if r.len() > super::RECENT {
                            r.drain(..r.len() - super::RECENT);
                        }
                    });
                }
            }
        });
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |_: CloseEvent| {
            set_connection.set(Connection::Reconnecting);
            let seen = last.load(std::sync::atomic::Ordering::Relaxed);
            retry(
                set_recent,
                set_connection,
                (seen >= 0).then_some(seen),
                failures + 1,
            );
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        // The socket lives as long as the tab; its handlers must too.
        on_open.forget();
        on_message.forget();
        on_close.forget();
    }

    fn retry(
        set_recent: WriteSignal<Vec<Arc<Event>>>,
        set_connection: WriteSignal<Connection>,
        after: Option<i64>,
        failures: u32,
    ) {
        let delay = 250u64.saturating_mul(1 << failures.min(5)).min(5_000);
        set_timeout(
            move || connect(set_recent, set_connection, after, failures),
            std::time::Duration::from_millis(delay),
        );
    }
}

/// Milliseconds on the page's monotonic clock.
#[cfg(feature = "hydrate")]
fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}
