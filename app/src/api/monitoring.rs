//! What the dashboards show: an agent's detail with its charts, and the fleet's live figures.

use super::AppError;
use crate::domain::agent::Agent;
use crate::domain::chart::ChartSvg;
use crate::domain::event::Event;
use crate::domain::metrics::{MetricsRange, WorkFigures};
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentDetail {
    pub agent: Agent,
    pub range: MetricsRange,
    pub charts: Vec<ChartSvg>,
    /// The agent's newest events, newest first.
    pub events: Vec<Event>,
    /// Every model call it made, summed.
    pub usage: crate::domain::usage::UsageTotals,
    pub budget: Option<crate::domain::usage::Budget>,
    /// Its newest attempts' conversations.
    pub transcripts: Vec<crate::domain::usage::TranscriptView>,
}

/// `id` and `range` arrive as text so that a malformed one is a clear 422, not a decoding error.
#[server(endpoint = "agents/detail", input = GetUrl)]
pub async fn get_agent_detail(id: String, range: String) -> Result<AgentDetail, AppError> {
    use super::ssr::{context, current_user, run};
    run(async {
        current_user().await?;
        let id = crate::domain::ids::AgentId(
            id.parse()
                .map_err(|_| AppError::invalid(format!("'{id}' is not an agent id")))?,
        );
        let range: MetricsRange = range.parse().map_err(AppError::invalid)?;
        let pool = context()?.pool;
        let agent = crate::db::agents::get(&pool, id)
            .await?
            .ok_or_else(|| AppError::new(super::ErrorKind::NotFound, "no such agent"))?;
        let to = time::OffsetDateTime::now_utc();
        let from = to - range.duration();
        let samples = crate::db::metrics::agent_series(&pool, id, from).await?;
        let filter = crate::domain::event::EventFilter {
            agent_id: Some(id),
            ..Default::default()
        };
        let events = crate::db::events::list_newest(&pool, None, None, &filter, 20).await?;
        let mut conn = pool.acquire().await?;
        Ok(AgentDetail {
            agent,
            range,
            charts: charts::agent(&samples, from, to),
            events,
            usage: crate::db::llm_calls::agent_totals(&mut conn, id).await?,
            budget: crate::db::budgets::get_conn(&mut conn, "agent", id.0).await?,
            transcripts: crate::db::transcripts::for_agent(&mut conn, id, 10).await?,
        })
    })
    .await
}

/// How many agents are in each state (every state listed, zeros included).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FleetCount {
    pub state: crate::domain::agent::AgentState,
    pub count: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    pub fleet: Vec<FleetCount>,
    pub unresponsive: i64,
    pub work: WorkFigures,
    /// Throughput, then each process's CPU and memory, over the last hour.
    pub charts: Vec<ChartSvg>,
    /// The newest events, newest first.
    pub recent: Vec<Event>,
}

#[server(endpoint = "dashboard", input = GetUrl)]
pub async fn get_dashboard() -> Result<Dashboard, AppError> {
    use super::ssr::{context, current_user, run};
    use crate::domain::agent::AgentState;
    run(async {
        current_user().await?;
        let pool = context()?.pool;
        let agents = crate::db::agents::list(&pool).await?;
        let fleet = AgentState::ALL
            .iter()
            .copied()
            .map(|state| FleetCount {
                state,
                count: agents.iter().filter(|a| a.state == state).count() as i64,
            })
            .collect();
        let unresponsive = agents
            .iter()
            .filter(|a| a.unresponsive_since.is_some())
            .count() as i64;
        let work = crate::db::metrics::work_figures(&pool).await?;
        let to = time::OffsetDateTime::now_utc();
        let from = to - time::Duration::hours(1);
        let throughput = crate::db::metrics::throughput(&pool, from).await?;
        let processes = crate::db::metrics::process_series(&pool, from).await?;
        let mut drawn = vec![charts::throughput(&throughput, from, to)];
        drawn.extend(charts::processes(&processes, from, to));
        let recent =
            crate::db::events::list_newest(&pool, None, None, &Default::default(), 10).await?;
        Ok(Dashboard {
            fleet,
            unresponsive,
            work,
            charts: drawn,
            recent,
        })
    })
    .await
}

/// From stored samples to drawn charts.
#[cfg(feature = "ssr")]
pub mod charts {
    use crate::api::chart_draw::draw;
    use crate::domain::chart::{ChartSvg, LineChart, Series};
    use crate::domain::metrics::{AgentSample, ProcessSample, agent_intervals};
    use time::OffsetDateTime;

    fn secs(t: OffsetDateTime) -> f64 {
        t.unix_timestamp() as f64
    }

    fn chart(
        title: &str,
        unit: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
        series: Vec<Series>,
    ) -> ChartSvg {
        draw(&LineChart {
            title: title.to_owned(),
            unit: unit.to_owned(),
            from: secs(from),
            to: secs(to),
            series,
        })
    }

    /// Tokens per minute, subtasks finished per interval, and busy share.
    pub fn agent(
        samples: &[AgentSample],
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Vec<ChartSvg> {
        let intervals = agent_intervals(samples);
        let line = |name: &str, f: &dyn Fn(&crate::domain::metrics::AgentInterval) -> f64| Series {
            name: name.to_owned(),
            points: intervals.iter().map(|i| (secs(i.at), f(i))).collect(),
        };
        vec![
            chart(
                "Tokens per minute",
                "",
                from,
                to,
                vec![line("tokens/min", &|i| i.tokens_per_min)],
            ),
            chart(
                "Subtasks finished",
                "",
                from,
                to,
                vec![
                    line("completed", &|i| i.completed as f64),
                    line("failed", &|i| i.failed as f64),
                ],
            ),
            chart(
                "Busy",
                "%",
                from,
                to,
                vec![line("busy", &|i| i.busy_percent)],
            ),
        ]
    }

    /// Subtasks completed and failed per minute.
    pub fn throughput(
        per_minute: &[(OffsetDateTime, i64, i64)],
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> ChartSvg {
        let line = |name: &str, pick: fn(&(OffsetDateTime, i64, i64)) -> i64| Series {
            name: name.to_owned(),
            points: per_minute
                .iter()
                .map(|m| (secs(m.0), pick(m) as f64))
                .collect(),
        };
        chart(
            "Subtasks per minute",
            "",
            from,
            to,
            vec![line("completed", |m| m.1), line("failed", |m| m.2)],
        )
    }

    /// CPU and resident memory, one line per engine process.
    pub fn processes(
        samples: &[ProcessSample],
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> [ChartSvg; 2] {
        let mut labels: Vec<&str> = samples.iter().map(|s| s.label.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        let per = |f: fn(&ProcessSample) -> f64| {
            labels
                .iter()
                .map(|l| Series {
                    name: (*l).to_owned(),
                    points: samples
                        .iter()
                        .filter(|s| s.label == *l)
                        .map(|s| (secs(s.at), f(s)))
                        .collect(),
                })
                .collect()
        };
        [
            chart(
                "Process CPU",
                "%",
                from,
                to,
                per(|s| f64::from(s.cpu_percent)),
            ),
            chart(
                "Process memory",
                "MiB",
                from,
                to,
                per(|s| s.rss_bytes as f64 / 1_048_576.0),
            ),
        ]
    }
}
