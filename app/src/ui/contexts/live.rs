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

#[derive(Clone, Copy)]
pub struct LiveEvents {
    /// The latest event received.
    pub latest: ReadSignal<Option<Arc<Event>>>,
    pub connection: ReadSignal<Connection>,
}

impl LiveEvents {
    /// A counter that moves whenever an event for which `concerns` holds arrives: use it as a
    /// resource's source to refetch live.
    pub fn ticks(self, concerns: impl Fn(&Event) -> bool + Send + Sync + 'static) -> Memo<u64> {
        let latest = self.latest;
        Memo::new(move |prev: Option<&u64>| {
            let prev = prev.copied().unwrap_or(0);
            match latest.get() {
                Some(e) if concerns(&e) => prev + 1,
                _ => prev,
            }
        })
    }
}

/// Opens the connection (in the browser) and provides [`LiveEvents`] to the pages below.
pub fn provide_live_events() -> LiveEvents {
    let (latest, set_latest) = signal(None::<Arc<Event>>);
    let (connection, set_connection) = signal(Connection::Connecting);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| browser::connect(set_latest, set_connection, 0, 0));
    #[cfg(not(feature = "hydrate"))]
    let _ = (set_latest, set_connection);
    let live = LiveEvents { latest, connection };
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

    /// Connects, resuming after `after`; on close, reconnects with backoff (`failures` so far).
    pub fn connect(
        set_latest: WriteSignal<Option<Arc<Event>>>,
        set_connection: WriteSignal<Connection>,
        after: i64,
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
        let url = format!("{scheme}://{host}/api/v1/events/stream?after={after}");
        let Ok(ws) = WebSocket::new(&url) else {
            retry(set_latest, set_connection, after, failures);
            return;
        };
        let last = Arc::new(std::sync::atomic::AtomicI64::new(after));
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
                set_latest.set(Some(Arc::new(event)));
            }
        });
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |_: CloseEvent| {
            set_connection.set(Connection::Reconnecting);
            let after = last.load(std::sync::atomic::Ordering::Relaxed);
            retry(set_latest, set_connection, after, failures + 1);
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
        set_latest: WriteSignal<Option<Arc<Event>>>,
        set_connection: WriteSignal<Connection>,
        after: i64,
        failures: u32,
    ) {
        let delay = 250u64.saturating_mul(1 << failures.min(5)).min(5_000);
        set_timeout(
            move || connect(set_latest, set_connection, after, failures),
            std::time::Duration::from_millis(delay),
        );
    }
}
