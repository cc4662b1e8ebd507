use crate::api::agents::list_agents;
use crate::api::events::list_events;
use crate::domain::event::{Event, EventFilter};
use crate::domain::ids::{AgentId, RunId};
use crate::ui::components::error_note::ErrorNote;
use crate::ui::components::event_table::{EventRow, EventTable};
use crate::ui::contexts::live::use_live_events;
use leptos::prelude::*;
use leptos_meta::Title;

/// The event history: filters, pages of 50 going back in time, and a live tail: while the
/// newest page is shown, events arriving on the tab's stream that match the filters appear
/// above it as they happen.
#[component]
pub fn EventsPage() -> impl IntoView {
    let (kind, set_kind) = signal(String::new());
    let (severity, set_severity) = signal(String::new());
    let (agent, set_agent) = signal(String::new());
    let (task, set_task) = signal(String::new());
    let (since, set_since) = signal(String::new());
    let (actor, set_actor) = signal(String::new());
    let (before, set_before) = signal(None::<i64>);
    let (follow, set_follow) = signal(true);
    let agents = Resource::new(|| (), |()| list_agents());
    let page = Resource::new(
        move || {
            (
                before.get(),
                kind.get(),
                severity.get(),
                agent.get(),
                task.get(),
                since.get(),
                actor.get(),
            )
        },
        |(b, k, s, a, t, m, who)| {
            list_events(
                b,
                Some(k),
                Some(s),
                Some(a),
                Some(t),
                m.parse().ok(),
                Some(who),
            )
        },
    );
    // The newest event of the loaded page: the tail shows what came after it.
    let head = Memo::new(move |_| {
        page.get()
            .and_then(Result::ok)
            .map(|events| events.first().map_or(0, |e| e.seq))
    });
    let filter = Memo::new(move |_| {
        let id = |s: String| s.trim().parse::<uuid::Uuid>().ok();
        EventFilter::parse(
            Some(kind.get()),
            id(agent.get()).map(AgentId),
            id(task.get()).map(RunId),
            Some(severity.get()),
        )
        .and_then(|f| f.with_actor(Some(actor.get())))
        .ok()
    });
    let live = use_live_events();
    let tail = Memo::new(move |_| -> Vec<Event> {
        let (Some(head), Some(filter)) = (head.get(), filter.get()) else {
            return Vec::new();
        };
        if !follow.get() || before.get().is_some() {
            return Vec::new();
        }
        let mut fresh: Vec<Event> = live
            .since(head)
            .iter()
            .filter(|e| e.kind != "stream.ready" && filter.matches(e))
            .map(|e| Event::clone(e))
            .collect();
        fresh.reverse();
        fresh
    });
    let reset = move || set_before.set(None);
    view! {
        <Title text="Events" />
        <h1>"Events"</h1>
        <form class="inline-form" on:submit=|ev| ev.prevent_default()>
            <TextFilter
                label="Type"
                placeholder="task, subtask.failed, agent…"
                value=kind
                set=set_kind
                reset=set_before
            />
            <Choice label="Severity at least" options=&SEVERITIES set=set_severity reset=set_before />
            <label>
                "Agent"
                <Transition fallback=|| view! { <select disabled=true></select> }>
                    {move || Suspend::new(async move {
                        let list = agents.await.unwrap_or_default();
                        view! {
                            <select on:change=move |ev| {
                                set_agent.set(event_target_value(&ev));
                                reset();
                            }>
                                <option value="">"any"</option>
                                {list
                                    .into_iter()
                                    .map(|a| {
                                        view! { <option value=a.id.to_string()>{a.name}</option> }
                                    })
                                    .collect_view()}
                            </select>
                        }
                    })}
                </Transition>
            </label>
            <TextFilter label="Task id" placeholder="any" value=task set=set_task reset=set_before />
            <TextFilter label="Actor" placeholder="anyone" value=actor set=set_actor reset=set_before />
            <Choice label="Time range" options=&RANGES set=set_since reset=set_before />
            <label class="check">
                <input
                    type="checkbox"
                    prop:checked=follow
                    on:change=move |ev| set_follow.set(event_target_checked(&ev))
                />
                "Live tail"
            </label>
        </form>
        <table class="events live-tail" data-testid="live-tail">
            <tbody>
                <For each=move || tail.get() key=|e| e.seq let:e>
                    <EventRow event=e live=true />
                </For>
            </tbody>
        </table>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(events) => {
                        let oldest = events.last().map(|e| e.seq);
                        let full = events.len() == 50;
                        view! {
                            <EventTable events />
                            <p class="actions">
                                {move || {
                                    before
                                        .get()
                                        .is_some()
                                        .then(|| {
                                            view! {
                                                <button class="secondary" on:click=move |_| set_before.set(None)>
                                                    "Newest"
                                                </button>
                                            }
                                        })
                                }}
                                {(full && oldest.is_some())
                                    .then(|| {
                                        view! {
                                            <button class="secondary" on:click=move |_| set_before.set(oldest)>
                                                "Older"
                                            </button>
                                        }
                                    })}
                            </p>
                        }
                            .into_any()
                    }
                    Err(e) => view! { <ErrorNote error=Signal::stored(Some(e)) /> }.into_any(),
                }
            })}
        </Transition>
    }
}

const SEVERITIES: [(&str, &str); 5] = [
    ("", "any"),
    ("info", "info"),
    ("warning", "warning"),
    ("error", "error"),
    ("critical", "critical"),
];

/// Minutes back, as the server function takes them.
const RANGES: [(&str, &str); 5] = [
    ("", "all"),
    ("15", "last 15 minutes"),
    ("60", "last hour"),
    ("1440", "last 24 hours"),
    ("10080", "last 7 days"),
];

/// A filter picked from fixed choices; changing it goes back to the newest page.
#[component]
fn Choice(
    label: &'static str,
    options: &'static [(&'static str, &'static str)],
    set: WriteSignal<String>,
    reset: WriteSignal<Option<i64>>,
) -> impl IntoView {
    view! {
        <label>
            {label}
            <select on:change=move |ev| {
                set.set(event_target_value(&ev));
                reset.set(None);
            }>
                {options
                    .iter()
                    .map(|(value, text)| view! { <option value=*value>{*text}</option> })
                    .collect_view()}
            </select>
        </label>
    }
}

/// A typed filter, applied when the field changes; it goes back to the newest page.
#[component]
fn TextFilter(
    label: &'static str,
    placeholder: &'static str,
    value: ReadSignal<String>,
    set: WriteSignal<String>,
    reset: WriteSignal<Option<i64>>,
) -> impl IntoView {
    view! {
        <label>
            {label}
            <input
                type="text"
                placeholder=placeholder
                prop:value=value
                on:change=move |ev| {
                    set.set(event_target_value(&ev));
                    reset.set(None);
                }
            />
        </label>
    }
}
