use crate::domain::event::Event;
use leptos::prelude::*;

/// Rows of events, in the order given (pages pass newest first).
#[component]
pub fn EventTable(
    events: Vec<Event>,
    /// Marks rows that arrived live, so they flash in.
    #[prop(optional)]
    live: bool,
) -> impl IntoView {
    view! {
        <table class="events">
            <tbody>
                {events.into_iter().map(|e| view! { <EventRow event=e live /> }).collect_view()}
            </tbody>
        </table>
    }
}

#[component]
pub fn EventRow(event: Event, #[prop(optional)] live: bool) -> impl IntoView {
    let e = event;
    let t = e.at.time();
    let at = format!(
        "{:02}:{:02}:{:02}.{:03}",
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    );
    let time_title = e.at.to_string();
    view! {
        <tr data-seq=e.seq class:live-row=live>
            <td class="muted">{e.seq}</td>
            <td class="muted" title=time_title>
                {at}
            </td>
            <td>
                <span class="badge" data-status=e.severity.as_str()>
                    {e.severity.as_str()}
                </span>
            </td>
            <td>{e.kind}</td>
            <td>{e.subject}</td>
            <td class="muted" data-testid="actor">
                {match (e.actor, e.actor_token) {
                    (Some(who), Some(token)) => format!("{who} (token {token})"),
                    (Some(who), None) => who,
                    (None, _) => String::new(),
                }}
            </td>
        </tr>
    }
}
