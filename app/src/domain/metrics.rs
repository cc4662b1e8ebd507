//! Time series of resource use: samples as stored, and the per-interval figures charts show.

use super::ids::WorkerId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// An agent's cumulative counters at one moment.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentSample {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub tasks_completed: i64,
    pub tasks_failed: i64,
    pub tokens_used: i64,
    pub busy_ms: i64,
}

/// One engine process's CPU and memory at one moment (an hourly row holds the hour's mean CPU
/// and peak memory).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessSample {
    pub worker_id: WorkerId,
    /// `host:pid`, for legends.
    pub label: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Percent of one core.
    pub cpu_percent: f32,
    pub rss_bytes: i64,
}

/// What an agent did between two consecutive samples.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentInterval {
    /// The end of the interval.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub tokens_per_min: f64,
    pub completed: i64,
    pub failed: i64,
    /// Share of the interval spent running subtasks, 0..=100.
    pub busy_percent: f64,
}

/// Differences between consecutive samples (ordered by time). Counters only grow; a decrease
/// (which would mean a reset) counts as nothing rather than a negative rate.
pub fn agent_intervals(samples: &[AgentSample]) -> Vec<AgentInterval> {
    samples
        .windows(2)
        .filter_map(|w| {
            let (a, b) = (&w[0], &w[1]);
            let ms = (b.at - a.at).whole_milliseconds();
            if ms <= 0 {
                return None;
            }
            let ms = ms as f64;
            let grow = |x: i64, y: i64| y.saturating_sub(x).max(0);
            Some(AgentInterval {
                at: b.at,
                tokens_per_min: grow(a.tokens_used, b.tokens_used) as f64 * 60_000.0 / ms,
                completed: grow(a.tasks_completed, b.tasks_completed),
                failed: grow(a.tasks_failed, b.tasks_failed),
                busy_percent: (grow(a.busy_ms, b.busy_ms) as f64 * 100.0 / ms).min(100.0),
            })
        })
        .collect()
}

/// The engine's figures right now, for the overview.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkFigures {
    pub tasks_active: i64,
    pub ready: i64,
    pub waiting: i64,
    pub running: i64,
    pub completed_last_hour: i64,
    pub failed_last_hour: i64,
}

/// How far back a metrics view looks.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsRange {
    Hour,
    Day,
    Week,
    Month,
}

impl MetricsRange {
    pub const ALL: [MetricsRange; 4] = [Self::Hour, Self::Day, Self::Week, Self::Month];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        }
    }

    pub fn duration(self) -> time::Duration {
        match self {
            Self::Hour => time::Duration::hours(1),
            Self::Day => time::Duration::days(1),
            Self::Week => time::Duration::weeks(1),
            Self::Month => time::Duration::days(30),
        }
    }
}

impl std::str::FromStr for MetricsRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown range '{s}' (use hour, day, week or month)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(secs: i64, done: i64, tokens: i64, busy_ms: i64) -> AgentSample {
        AgentSample {
            at: OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(secs),
            tasks_completed: done,
            tasks_failed: 0,
            tokens_used: tokens,
            busy_ms,
        }
    }

    #[test]
    fn intervals_are_differences_per_elapsed_time() {
        let s = [
            sample(0, 0, 0, 0),
            sample(30, 2, 600, 15_000),
            sample(90, 3, 600, 15_000),
        ];
        let i = agent_intervals(&s);
        assert_eq!(i.len(), 2);
        assert_eq!(i[0].completed, 2);
        assert!((i[0].tokens_per_min - 1200.0).abs() < 1e-9);
        assert!((i[0].busy_percent - 50.0).abs() < 1e-9);
        assert_eq!(i[1].completed, 1);
        assert_eq!(i[1].tokens_per_min, 0.0);
        assert_eq!(i[1].busy_percent, 0.0);
    }

    #[test]
    fn resets_and_clock_ties_never_give_negative_or_infinite_rates() {
        let s = [
            sample(0, 5, 500, 9_000),
            sample(0, 6, 600, 9_000),
            sample(30, 1, 100, 90_000),
        ];
        let i = agent_intervals(&s);
        assert_eq!(i.len(), 1, "a zero-length interval is skipped");
        assert_eq!(i[0].completed, 0);
        assert_eq!(i[0].tokens_per_min, 0.0);
        assert_eq!(
            i[0].busy_percent, 100.0,
            "busy time is capped at the interval"
        );
    }

    #[test]
    fn ranges_parse_by_name() {
        for r in MetricsRange::ALL {
            assert_eq!(r.as_str().parse::<MetricsRange>(), Ok(r));
        }
        assert!("year".parse::<MetricsRange>().is_err());
    }
}
