use crate::api::monitoring::{Dashboard, get_dashboard};
use crate::api::overview::{Overview, get_overview};
use crate::ui::components::charts::Chart;
use crate::ui::components::error_note::ErrorNote;
use crate::ui::components::event_table::EventTable;
use crate::ui::contexts::live::use_live_events;
use leptos::prelude::*;
use leptos_meta::Title;
use std::time::Duration;

/// The landing page: who is here and whether the installation is healthy.
#[component]
pub fn OverviewPage() -> impl IntoView {
    // Bumped by the refresh button; a client-side interaction that only works once hydrated.
    let (checks, set_checks) = signal(0u32);
    let overview = Resource::new(move || checks.get(), |_| get_overview());
    view! {
        <Title text="Overview" />
        <h1>"Overview"</h1>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match overview.await {
                    Ok(o) => view! { <OverviewCards overview=o /> }.into_any(),
                    Err(e) => view! { <ErrorNote error=Signal::stored(Some(e)) /> }.into_any(),
                }
            })}
        </Transition>
        <LiveDashboard />
        <p class="actions">
            <button on:click=move |_| set_checks.update(|n| *n += 1)>"Check again"</button>
            <span aria-live="polite">
                {move || match checks.get() {
                    0 => String::new(),
                    1 => "Checked again 1 time".to_owned(),
                    n => format!("Checked again {n} times"),
                }}
            </span>
        </p>
    }
}

/// The figures of one overview.
#[component]
fn OverviewCards(overview: Overview) -> impl IntoView {
    let db = overview.database;
    view! {
        <section class="cards">
            <article class="card">
                <h2>"Signed in as"</h2>
                <p class="big" data-testid="signed-in-user">
                    {overview.username}
                </p>
                <p>{overview.role.to_string()}</p>
            </article>
            <article class="card">
                <h2>"Server"</h2>
                <p class="big">"v" {overview.server_version}</p>
                <p>{overview.users.map(|n| format!("{n} users"))}</p>
            </article>
            <article class="card">
                <h2>"Database"</h2>
                <p class="big" data-testid="database-status">
                    {if db.reachable { "Connected" } else { "Unreachable" }}
                </p>
                <p>
                    {db.version.map(|v| format!("PostgreSQL {v}")).unwrap_or_default()}
                    {db.latency_us.map(|us| format!(" · {:.1} ms", us as f64 / 1000.0))}
                </p>
            </article>
        </section>
    }
}

/// The fleet and its work, refreshed as events arrive (at most once a second).
#[component]
fn LiveDashboard() -> impl IntoView {
    let live = use_live_events().throttled_ticks(Duration::from_secs(1), |_| true);
    let dashboard = Resource::new(move || live.get(), |_| get_dashboard());
    view! {
        <Transition fallback=|| view! { <p>"Loading the fleet…"</p> }>
            {move || Suspend::new(async move {
                match dashboard.await {
                    Ok(d) => view! { <DashboardView d /> }.into_any(),
                    Err(e) => view! { <ErrorNote error=Signal::stored(Some(e)) /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn DashboardView(d: Dashboard) -> impl IntoView {
    let w = d.work;
    let figure = |label: &'static str, value: String, id: &'static str| {
        view! {
            <div class="figure">
                <span class="value" data-testid=id>
                    {value}
                </span>
                <span class="label">{label}</span>
            </div>
        }
    };
    view! {
        <h2>"Fleet"</h2>
        <section class="figures" aria-label="Fleet by state">
            {d
                .fleet
                .into_iter()
                .map(|f| {
                    view! {
                        <div class="figure">
                            <span class="value" data-testid=format!("fleet-{}", f.state)>
                                {f.count}
                            </span>
                            <span class="label">{f.state.to_string()}</span>
                        </div>
                    }
                })
                .collect_view()}
            {figure("unresponsive", d.unresponsive.to_string(), "fleet-unresponsive")}
        </section>
        <h2>"Work"</h2>
        <section class="figures" aria-label="Work">
            {figure("active tasks", w.tasks_active.to_string(), "work-active")}
            {figure("running subtasks", w.running.to_string(), "work-running")}
            {figure("ready, waiting for an agent", w.ready.to_string(), "work-ready")}
            {figure("waiting on prerequisites", w.waiting.to_string(), "work-waiting")}
            {figure("completed in the last hour", w.completed_last_hour.to_string(), "work-completed")}
            {figure("failed in the last hour", w.failed_last_hour.to_string(), "work-failed")}
        </section>
        <section class="charts">
            {d.charts.into_iter().map(|chart| view! { <Chart chart /> }).collect_view()}
        </section>
        <h2>"Recent events"</h2>
        <EventTable events=d.recent />
        <p>
            <a href="/events">"All events"</a>
        </p>
    }
}
