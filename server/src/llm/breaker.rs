//! A circuit breaker per provider: after [`TRIP_AFTER`] consecutive retryable failures it
//! opens for [`OPEN_FOR`], then lets one probe through (half-open); the probe's success closes
//! it, its failure opens it again. Refusals (4xx) never count. Time is tokio's, so tests pause it.

use serde::Serialize;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

pub const TRIP_AFTER: u32 = 5;
pub const OPEN_FOR: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
enum Inner {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is out; everyone else waits for its outcome.
    HalfOpen,
}

#[derive(Debug)]
pub struct Breaker {
    inner: Mutex<Inner>,
}

impl Default for Breaker {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner::Closed { failures: 0 }),
        }
    }
}

/// What the breaker says about a call about to be made.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead; `changed` is set when this call is the half-open probe.
    Go { changed: Option<BreakerState> },
    /// Refused for about this long.
    Wait(Duration),
}

impl Breaker {
    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen => BreakerState::HalfOpen,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding it left a valid state: every write is one assignment.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn admit(&self) -> Admission {
        let mut inner = self.lock();
        match *inner {
            Inner::Closed { .. } => Admission::Go { changed: None },
            Inner::Open { until } => {
                let now = Instant::now();
                if now >= until {
                    *inner = Inner::HalfOpen;
                    Admission::Go {
                        changed: Some(BreakerState::HalfOpen),
                    }
                } else {
                    Admission::Wait(until - now)
                }
            }
            // The probe's outcome decides; until then, ask again shortly.
            Inner::HalfOpen => Admission::Wait(Duration::from_secs(1)),
        }
    }

    /// Records a call's outcome; returns the new state when it changed.
    pub fn record(&self, ok: bool, counts: bool) -> Option<BreakerState> {
        let mut inner = self.lock();
        match (&*inner, ok) {
            (Inner::Closed { .. }, true) => {
                *inner = Inner::Closed { failures: 0 };
                None
            }
            (Inner::HalfOpen, true) => {
                *inner = Inner::Closed { failures: 0 };
                Some(BreakerState::Closed)
            }
            // A refusal (4xx) says nothing about the provider's health.
            (_, false) if !counts => {
                if matches!(*inner, Inner::HalfOpen) {
                    *inner = Inner::Closed { failures: 0 };
                    return Some(BreakerState::Closed);
                }
                None
            }
            (Inner::Closed { failures }, false) => {
                let failures = failures + 1;
                if failures >= TRIP_AFTER {
                    *inner = Inner::Open {
                        until: Instant::now() + OPEN_FOR,
                    };
                    Some(BreakerState::Open)
                } else {
                    *inner = Inner::Closed { failures };
                    None
                }
            }
            (Inner::HalfOpen, false) => {
                *inner = Inner::Open {
                    until: Instant::now() + OPEN_FOR,
                };
                Some(BreakerState::Open)
            }
            // An outcome of a call admitted before it opened.
            (Inner::Open { .. }, _) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn five_failures_open_it_for_a_minute_then_one_probe_decides() {
        let b = Breaker::default();
        for _ in 0..TRIP_AFTER - 1 {
            assert_eq!(b.admit(), Admission::Go { changed: None });
            assert_eq!(b.record(false, true), None);
        }
        assert_eq!(b.record(false, true), Some(BreakerState::Open));
        assert_eq!(b.admit(), Admission::Wait(OPEN_FOR));
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(b.admit(), Admission::Wait(Duration::from_secs(1)));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            b.admit(),
            Admission::Go {
                changed: Some(BreakerState::HalfOpen)
            }
        );
        // Only the probe goes while half-open.
        assert!(matches!(b.admit(), Admission::Wait(_)));
        assert_eq!(b.record(false, true), Some(BreakerState::Open));
        tokio::time::advance(OPEN_FOR).await;
        assert!(matches!(b.admit(), Admission::Go { changed: Some(_) }));
        assert_eq!(b.record(true, true), Some(BreakerState::Closed));
        assert_eq!(b.admit(), Admission::Go { changed: None });
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_never_trip_it_and_a_success_resets_the_count() {
        let b = Breaker::default();
        for _ in 0..20 {
            assert_eq!(b.record(false, false), None);
        }
        for _ in 0..TRIP_AFTER - 1 {
            b.record(false, true);
        }
        b.record(true, true);
        for _ in 0..TRIP_AFTER - 1 {
            assert_eq!(b.record(false, true), None);
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
