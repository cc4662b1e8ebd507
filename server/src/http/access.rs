//! Open event streams and the credentials they were opened with. A stream outlives the request
//! that authenticated it, so a checker re-validates every open stream's credential every
//! [`CHECK_EVERY`] against the database (three small set-based reads, whatever the number of
//! streams) and closes those whose token was revoked, whose session ended (logout, idle or
//! absolute expiry), or whose user's role changed or account is gone. Reading the database
//! makes it hold across processes: the revocation may have happened anywhere.

use super::guard::AuthVia;
use app::domain::account::{Role, User, UserId};
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How often open streams' credentials are checked.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);

struct Held {
    user: UserId,
    role: Role,
    via: AuthVia,
    close: oneshot::Sender<&'static str>,
}

/// This process's open streams.
#[derive(Default)]
pub struct OpenStreams {
    next: AtomicU64,
    held: Mutex<HashMap<u64, Held>>,
}

/// A stream's place in [`OpenStreams`]; dropping it (the stream ended) takes it out.
pub struct Registration {
    streams: Arc<OpenStreams>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.streams.lock().remove(&self.id);
    }
}

impl OpenStreams {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Held>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a stream opened by `user` via `via`; the receiver yields the reason when its
    /// credential stops being valid.
    pub fn register(
        self: &Arc<Self>,
        user: &User,
        via: AuthVia,
    ) -> (Registration, oneshot::Receiver<&'static str>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (close, closed) = oneshot::channel();
        self.lock().insert(
            id,
            Held {
                user: user.id,
                role: user.role,
                via,
                close,
            },
        );
        let registration = Registration {
            streams: self.clone(),
            id,
        };
        (registration, closed)
    }

    /// Checks every open stream once; returns how many were told to close.
    pub async fn check_once(&self, pool: &PgPool) -> Result<usize, sqlx::Error> {
        let (users, tokens, sessions) = {
            let held = self.lock();
            if held.is_empty() {
                return Ok(0);
            }
            let mut users = HashSet::new();
            let mut tokens = Vec::new();
            let mut sessions = Vec::new();
            for h in held.values() {
                users.insert(h.user.0);
                match &h.via {
                    AuthVia::Token { id, .. } => tokens.push(*id),
                    AuthVia::Session { id, .. } => sessions.push(id.clone()),
                }
            }
            (users.into_iter().collect::<Vec<Uuid>>(), tokens, sessions)
        };
        let roles: HashMap<Uuid, String> =
            sqlx::query_as("select id, role::text from users where id = any($1)")
                .bind(&users)
                .fetch_all(pool)
                .await?
                .into_iter()
                .collect();
        let live_tokens: HashSet<Uuid> = sqlx::query_scalar(
            "select id from api_tokens where id = any($1) and revoked_at is null",
        )
        .bind(&tokens)
        .fetch_all(pool)
        .await?
        .into_iter()
        .collect();
        // The session store's own table (created by the store at startup, not a migration).
        let live_sessions: HashSet<String> = if sessions.is_empty() {
            HashSet::new()
        } else {
            sqlx::query_scalar(
                r#"select id from "tower_sessions"."session"
                   where id = any($1) and expiry_date > now()"#,
            )
            .bind(&sessions)
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect()
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut held = self.lock();
        let ended: Vec<(u64, &'static str)> = held
            .iter()
            .filter_map(|(id, h)| {
                let why = match roles.get(&h.user.0) {
                    None => Some("the account was removed"),
                    Some(role) if role != h.role.as_str() => {
                        Some("the account's role changed; reconnect")
                    }
                    _ => match &h.via {
                        AuthVia::Token { id, .. } if !live_tokens.contains(id) => {
                            Some("the API token was revoked")
                        }
                        AuthVia::Session { id, ends_at }
                            if !live_sessions.contains(id) || now > *ends_at =>
                        {
                            Some("the session ended; log in again")
                        }
                        _ => None,
                    },
                };
                why.map(|w| (*id, w))
            })
            .collect();
        for (id, why) in &ended {
            if let Some(h) = held.remove(id) {
                let _ = h.close.send(why);
            }
        }
        Ok(ended.len())
    }

    /// Checks every [`CHECK_EVERY`] until `stop`.
    pub async fn run(self: Arc<Self>, pool: PgPool, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(CHECK_EVERY) => {}
            }
            match self.check_once(&pool).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(closed = n, "closed event streams whose credentials ended"),
                Err(e) => tracing::warn!(error = %e, "checking event streams' credentials failed"),
            }
        }
    }
}
