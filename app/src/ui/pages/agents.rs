use crate::api::agents::{AgentCommand, SpawnAgent, list_agent_providers, list_agents};
use crate::domain::agent::{Agent, AgentState};
use crate::ui::components::error_note::ErrorNote;
use crate::ui::components::refresh_button::RefreshButton;
use crate::ui::components::status_badge::StatusBadge;
use crate::ui::contexts::live::use_live_events;
use leptos::prelude::*;
use leptos_meta::Title;

/// The fleet: one card per agent, with its lifecycle buttons.
#[component]
pub fn AgentsPage() -> impl IntoView {
    let command = ServerAction::<AgentCommand>::new();
    let spawn = ServerAction::<SpawnAgent>::new();
    let (refreshes, set_refreshes) = signal(0u32);
    let live = use_live_events().ticks(|e| e.agent_id.is_some());
    let agents = Resource::new(
        move || {
            (
                command.version().get(),
                spawn.version().get(),
                refreshes.get(),
                live.get(),
            )
        },
        |_| list_agents(),
    );
    let providers = Resource::new(|| (), |_| list_agent_providers());
    let error = Signal::derive(move || command.value().get().and_then(Result::err));
    let spawn_error = Signal::derive(move || spawn.value().get().and_then(Result::err));
    view! {
        <Title text="Agents" />
        <h1>"Agents"</h1>
        <ErrorNote error />
        <RefreshButton refreshes=set_refreshes />
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match agents.await {
                    Ok(list) => {
                        view! {
                            <section class="cards">
                                {list
                                    .into_iter()
                                    .map(|a| view! { <AgentCard agent=a command /> })
                                    .collect_view()}
                            </section>
                        }
                            .into_any()
                    }
                    Err(e) => view! { <ErrorNote error=Signal::stored(Some(e)) /> }.into_any(),
                }
            })}
        </Transition>
        <h2>"Spawn an agent"</h2>
        <ActionForm action=spawn attr:class="inline-form" attr:data-testid="spawn-form">
            <label>"Name" <input type="text" name="form[name]" required maxlength="64" /></label>
            <label>
                "Capabilities"
                <input
                    type="text"
                    name="form[capabilities]"
                    required
                    placeholder="data_analysis, code_generation"
                    title=crate::domain::agent::CAPABILITIES.join(", ")
                />
            </label>
            <label>
                "Provider"
                <Transition fallback=|| {
                    view! {
                        <select name="form[provider]" aria-label="Provider">
                            <option value="simulated">"simulated (test model)"</option>
                        </select>
                    }
                }>
                    {move || Suspend::new(async move {
                        let names = providers.await.unwrap_or_else(|_| vec!["simulated".to_owned()]);
                        view! {
                            <select name="form[provider]" aria-label="Provider">
                                {names
                                    .into_iter()
                                    .map(|p| {
                                        let label = if p == "simulated" {
                                            "simulated (test model)".to_owned()
                                        } else {
                                            p.clone()
                                        };
                                        view! { <option value=p>{label}</option> }
                                    })
                                    .collect_view()}
                            </select>
                        }
                    })}
                </Transition>
            </label>
            <label>"Model" <input type="text" name="form[model]" placeholder="the provider's default" /></label>
            <label>"System prompt" <input type="text" name="form[system_prompt]" /></label>
            <label>
                "Tools"
                <input
                    type="text"
                    name="form[tools]"
                    value=crate::domain::agent::default_tools().join(", ")
                    title=crate::domain::agent::TOOLS.join(", ")
                />
            </label>
            <label>"Token cap" <input type="number" name="form[max_tokens]" min="1" /></label>
            <label>"Cost cap (micro-units)" <input type="number" name="form[max_cost_micros]" min="0" /></label>
            <button type="submit">"Spawn"</button>
        </ActionForm>
        <ErrorNote error=spawn_error />
    }
}

#[component]
fn AgentCard(agent: Agent, command: ServerAction<AgentCommand>) -> impl IntoView {
    let id = agent.id;
    let send = move |verb: &'static str| {
        move |_| {
            command.dispatch(AgentCommand {
                id,
                verb: verb.to_owned(),
            });
        }
    };
    let state = agent.state;
    let provider_label = if agent.provider == "simulated" {
        "simulated model (offline demo, not a real LLM)".to_owned()
    } else {
        format!("{} · {}", agent.provider, agent.model)
    };
    let heartbeat = agent
        .last_heartbeat
        .map_or_else(|| "never".to_owned(), clock);
    let cost = if agent.provider == "simulated" {
        "no cost (simulated)".to_owned()
    } else {
        "cost not tracked yet".to_owned()
    };
    view! {
        <article class="card agent" aria-label=format!("Agent {}", agent.name)>
            <h2>
                <a href=format!("/agents/{id}")>{agent.name.clone()}</a>
            </h2>
            <p>
                <StatusBadge status=state.as_str() />
            </p>
            <Health agent=agent.clone() />
            <p class="caps">{agent.capabilities.join(" · ")}</p>
            <p class="muted">{provider_label}</p>
            <p data-testid="current-subtask">
                {match (agent.current_subtask.clone(), agent.current_run) {
                    (Some(what), Some(run)) => {
                        view! {
                            "On: "
                            <a href=format!("/tasks/{run}")>{what}</a>
                        }
                            .into_any()
                    }
                    _ => view! { "No current subtask" }.into_any(),
                }}
            </p>
            <p>
                {format!(
                    "{} done · {} failed · {} tokens · {cost}",
                    agent.tasks_completed,
                    agent.tasks_failed,
                    agent.tokens_used,
                )}
            </p>
            <p class="muted">"Last heartbeat " {heartbeat}</p>
            <p class="buttons">
                {matches!(state, AgentState::Idle | AgentState::Working)
                    .then(|| view! { <button class="secondary" on:click=send("pause")>"Pause"</button> })}
                {matches!(state, AgentState::Paused | AgentState::Error)
                    .then(|| view! { <button class="secondary" on:click=send("resume")>"Resume"</button> })}
                {(state != AgentState::Terminated)
                    .then(|| view! { <button class="danger" on:click=send("terminate")>"Terminate"</button> })}
            </p>
        </article>
    }
}

/// The health monitor's verdict: unresponsive since when, or healthy.
#[component]
pub fn Health(agent: Agent) -> impl IntoView {
    match agent.unresponsive_since {
        Some(since) => view! {
            <p class="health" data-health="unresponsive" data-testid="health">
                {format!("Unresponsive since {}", clock(since))}
            </p>
        }
        .into_any(),
        None => view! {
            <p class="health" data-health="ok" data-testid="health">
                "Responsive"
            </p>
        }
        .into_any(),
    }
}

/// Time of day (UTC), to the second.
pub fn clock(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:02}:{:02}:{:02} UTC", t.hour(), t.minute(), t.second())
}
