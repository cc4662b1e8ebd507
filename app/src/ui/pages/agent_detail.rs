use crate::api::agents::ConfigureAgent;
use crate::api::monitoring::get_agent_detail;
use crate::domain::agent::Agent;
use crate::domain::metrics::MetricsRange;
use crate::ui::components::charts::Chart;
use crate::ui::components::error_note::ErrorNote;
use crate::ui::components::event_table::EventTable;
use crate::ui::components::status_badge::StatusBadge;
use crate::ui::components::usage::{BudgetLine, Transcripts, UsageLine};
use crate::ui::contexts::live::use_live_events;
use crate::ui::pages::agents::{Health, clock};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use std::time::Duration;

/// One agent: its state and health, its counters as charts over a chosen range, and its
/// latest events; refreshed live (at most once a second) as events about it arrive.
#[component]
pub fn AgentDetailPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let range = move || query.read().get("range").unwrap_or_else(|| "hour".into());
    let live = use_live_events().throttled_ticks(Duration::from_secs(1), move |e| {
        e.agent_id.is_some_and(|a| a.to_string() == id())
    });
    let detail = Resource::new(
        move || (id(), range(), live.get()),
        |(id, range, _)| get_agent_detail(id, range),
    );
    view! {
        <Title text="Agent" />
        <p>
            <a href="/agents">"← Agents"</a>
        </p>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Ok(d) => {
                        let a = d.agent.clone();
                        let heartbeat = a.last_heartbeat.map_or_else(|| "never".to_owned(), clock);
                        view! {
                            <h1>{a.name.clone()}</h1>
                            <p>
                                <StatusBadge status=a.state.as_str() />
                                " "
                                {a.capabilities.join(" · ")}
                            </p>
                            <Health agent=a.clone() />
                            <p data-testid="agent-model">
                                "Model: "
                                {if a.provider == "simulated" {
                                    "simulated (the built-in test model, no real model)".to_owned()
                                } else {
                                    format!("{} on {}", a.model, a.provider)
                                }}
                            </p>
                            <p data-testid="agent-tools">
                                "Tools: "
                                {if a.tools.is_empty() { "none".to_owned() } else { a.tools.join(", ") }}
                            </p>
                            {(!a.mcp_servers.is_empty()).then(|| {
                                let servers: Vec<String> = a
                                    .mcp_servers
                                    .iter()
                                    .map(|s| match (&s.command, &s.url) {
                                        (Some(c), _) => format!("{} (stdio: {c})", s.name),
                                        (_, Some(u)) => format!("{} ({u})", s.name),
                                        _ => s.name.clone(),
                                    })
                                    .collect();
                                view! { <p data-testid="agent-mcp">"MCP servers: " {servers.join(", ")}</p> }
                            })}
                            {a.error.clone().map(|e| view! { <p class="error" data-testid="agent-error">{e}</p> })}
                            <ConfigureForm agent=a.clone() />
                            <UsageLine usage=d.usage />
                            {d.budget.clone().map(|b| view! { <BudgetLine budget=b /> })}
                            <p class="muted">
                                {format!(
                                    "{} done · {} failed · {} tokens · busy {:.1} s · last heartbeat {heartbeat}",
                                    a.tasks_completed,
                                    a.tasks_failed,
                                    a.tokens_used,
                                    a.busy_ms as f64 / 1000.0,
                                )}
                            </p>
                            <nav class="range-picker" aria-label="Range">
                                {MetricsRange::ALL
                                    .into_iter()
                                    .map(|r| {
                                        view! {
                                            <a
                                                href=format!("?range={}", r.as_str())
                                                aria-current=(r == d.range).to_string()
                                            >
                                                {format!("Last {}", r.as_str())}
                                            </a>
                                        }
                                    })
                                    .collect_view()}
                            </nav>
                            <section class="charts">
                                {d
                                    .charts
                                    .into_iter()
                                    .map(|chart| view! { <Chart chart /> })
                                    .collect_view()}
                            </section>
                            <h2>"Latest events"</h2>
                            <EventTable events=d.events />
                            <h2>"Recent transcripts"</h2>
                            <Transcripts items=d.transcripts />
                        }
                            .into_any()
                    }
                    Err(e) => view! { <ErrorNote error=Signal::stored(Some(e)) /> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// Another provider, model, prompt or tool set for the agent, from its next step on.
#[component]
fn ConfigureForm(agent: Agent) -> impl IntoView {
    let configure = ServerAction::<ConfigureAgent>::new();
    let error = Signal::derive(move || configure.value().get().and_then(Result::err));
    view! {
        <details class="configure">
            <summary>"Change provider, model or tools"</summary>
            <ActionForm action=configure attr:class="inline-form" attr:data-testid="configure-form">
                <input type="hidden" name="id" value=agent.id.to_string() />
                <label>"Provider" <input type="text" name="provider" required value=agent.provider /></label>
                <label>
                    "Model"
                    <input type="text" name="model" value=agent.model placeholder="the provider's default" />
                </label>
                <label>"System prompt" <input type="text" name="system_prompt" value=agent.system_prompt /></label>
                <label>
                    "Tools"
                    <input
                        type="text"
                        name="tools"
                        value=agent.tools.join(", ")
                        title=crate::domain::agent::TOOLS.join(", ")
                    />
                </label>
                <button type="submit">"Save"</button>
            </ActionForm>
            <ErrorNote error />
        </details>
    }
}
