//! Wake-ups between processes: LISTEN for work and stop requests, and the coalesced NOTIFY
//! sent after commits.

use super::Engine;
use app::db::events::{STOP_CHANNEL, Stop, WAKE_CHANNEL};
use sqlx::postgres::PgListener;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

impl Engine {
    /// Forwards database wake-ups to the loops. If the listener drops, loops keep polling.
    pub(super) async fn listen(self, shutdown: CancellationToken) {
        loop {
            let listener = async {
                let mut l = PgListener::connect_with(&self.pool).await?;
                l.listen_all([WAKE_CHANNEL, STOP_CHANNEL]).await?;
                loop {
                    let n = l.recv().await?;
                    if n.channel() == STOP_CHANNEL {
                        if let Some(stop) = Stop::parse(n.payload()) {
                            let stopped = self.running.stop(stop);
                            if stopped > 0 {
                                tracing::info!(?stop, stopped, "stopping running work");
                            }
                        }
                        continue;
                    }
                    if n.process_id() == self.notifier_pid.load(Ordering::Relaxed) {
                        continue;
                    }
                    self.finish_hints.foreign_wake();
                    self.claimable.store(true, Ordering::Release);
                    self.wake.send_modify(|n| *n = n.wrapping_add(1));
                }
                #[allow(unreachable_code)]
                Ok::<(), sqlx::Error>(())
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                res = listener => {
                    if let Err(e) = res {
                        tracing::warn!(error = %e, "wake-up listener lost; polling until it is back");
                    }
                }
            }
            // Whatever was missed while reconnecting is found by the next pass.
            self.finish_hints.foreign_wake();
            self.claimable.store(true, Ordering::Release);
            self.wake.send_modify(|n| *n = n.wrapping_add(1));
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// After a commit that assigned or finished work (`left_unclaimed`: it assigned nodes it
    /// did not start here): wakes this process's loops at once and asks for one NOTIFY to the
    /// others. The hot transactions send none themselves: a transaction that NOTIFYs holds a
    /// database-wide lock from its commit until the commit is flushed, so those commits went
    /// one flush at a time instead of sharing flushes.
    pub(crate) fn work_changed(&self, left_unclaimed: bool) {
        if left_unclaimed {
            self.claimable.store(true, Ordering::Release);
        }
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
        self.notify.notify_one();
    }

    /// Sends the NOTIFYs [`Engine::work_changed`] asks for, one at a time, each in its own
    /// transaction on a dedicated connection whose commits do not wait for the flush (a lost
    /// wake-up costs one poll interval, nothing else). Whatever is asked while one is on its
    /// way is folded into the next.
    pub(super) async fn notifier(self, shutdown: CancellationToken) {
        let options = (*self.pool.connect_options())
            .clone()
            .options([("synchronous_commit", "off")]);
        let mut conn: Option<sqlx::PgConnection> = None;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.notify.notified() => {}
            }
            if conn.is_none() {
                let connected = async {
                    let mut c: sqlx::PgConnection =
                        sqlx::Connection::connect_with(&options).await?;
                    let pid: i32 = sqlx::query_scalar("select pg_backend_pid()")
                        .fetch_one(&mut c)
                        .await?;
                    Ok::<_, sqlx::Error>((c, pid))
                };
                match connected.await {
                    Ok((c, pid)) => {
                        self.notifier_pid
                            .store(u32::try_from(pid).unwrap_or(0), Ordering::Relaxed);
                        conn = Some(c);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "notifier: no connection; others poll meanwhile");
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                        self.notify.notify_one();
                        continue;
                    }
                }
            }
            if let Some(c) = conn.as_mut()
                && let Err(e) = app::db::events::wake(&mut *c).await
            {
                tracing::warn!(error = %e, "notifier: NOTIFY failed; reconnecting");
                conn = None;
            }
        }
    }
}
