use crate::api::events::list_events;
use crate::domain::event::Event;
use crate::ui::components::error_note::ErrorNote;
use leptos::prelude::*;
use leptos_meta::Title;

/// The event history: filters, and pages of 50 going back in time. New events show up when the
/// filter changes or on "Newest"; a live tail is still to come.
#[component]
pub fn EventsPage() -> impl IntoView {
    let (kind, set_kind) = signal(String::new());
    let (severity, set_severity) = signal(String::new());
    let (before, set_before) = signal(None::<i64>);
    let page = Resource::new(
        move || (before.get(), kind.get(), severity.get()),
        |(b, k, s)| list_events(b, Some(k), Some(s)),
    );
    view! {
        <Title text="Events" />
        <h1>"Events"</h1>
        <form class="inline-form" on:submit=|ev| ev.prevent_default()>
            <label>
                "Type"
                <input
                    type="text"
                    placeholder="task, subtask.failed, agent…"
                    prop:value=kind
                    on:change=move |ev| {
                        set_kind.set(event_target_value(&ev));
                        set_before.set(None);
                    }
                />
            </label>
            <label>
                "Severity at least"
                <select on:change=move |ev| {
                    set_severity.set(event_target_value(&ev));
                    set_before.set(None);
                }>
                    <option value="">"any"</option>
                    <option value="info">"info"</option>
                    <option value="warning">"warning"</option>
                    <option value="error">"error"</option>
                    <option value="critical">"critical"</option>
                </select>
            </label>
        </form>
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

/// Rows of events, newest first.
#[component]
fn EventTable(events: Vec<Event>) -> impl IntoView {
    view! {
        <table>
            <tbody>
                {events
                    .into_iter()
                    .map(|e| {
                        let at = e.at.time().to_string();
                        view! {
                            <tr data-seq=e.seq>
                                <td class="muted">{e.seq}</td>
                                <td class="muted">{at}</td>
                                <td>
                                    <span class="badge" data-status=e.severity.as_str()>
                                        {e.severity.as_str()}
                                    </span>
                                </td>
                                <td>{e.kind}</td>
                                <td>{e.subject}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}
