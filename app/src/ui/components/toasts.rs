use crate::domain::event::{Event, EventKind};
use crate::ui::contexts::live::use_live_events;
use leptos::prelude::*;

/// What a toast says about an event of a kind that deserves one wherever the user is: those
/// that need someone to act (a failure, an unresponsive agent, a dead engine loop).
pub fn toast_text(e: &Event) -> Option<String> {
    let what = match e.kind.parse::<EventKind>().ok()? {
        EventKind::AgentError => "Agent error",
        EventKind::AgentUnresponsive => "Agent unresponsive",
        EventKind::SubtaskFailed => "Subtask failed",
        EventKind::TaskFailed => "Task failed",
        EventKind::LoopRestarted => "Engine loop restarted",
        EventKind::ProviderBreaker
            if e.data.get("state").and_then(|v| v.as_str()) == Some("open") =>
        {
            "Provider circuit breaker open"
        }
        _ => return None,
    };
    let detail = e
        .data
        .get("error")
        .and_then(|v| v.as_str())
        .unwrap_or(&e.subject);
    Some(format!("{what}: {detail}"))
}

/// Toasts for critical events from the live stream; each fades after 10 s or on dismiss.
#[component]
pub fn Toasts() -> impl IntoView {
    let live = use_live_events();
    let (toasts, set_toasts) = signal(Vec::<(i64, String)>::new());
    // Toast only what arrives from now on, not what the tab had buffered before this mounted.
    let shown = StoredValue::new(
        live.recent
            .with_untracked(|r| r.last().map_or(0, |e| e.seq)),
    );
    Effect::new(move |_| {
        let recent = live.recent.get();
        // Toast only what arrives from now on, not what was buffered before this mounted.
        let after = shown
            .get_value()
            .min(recent.last().map_or(0, |e| e.seq - 1));
        for e in recent.iter().filter(|e| e.seq > after) {
            shown.set_value(e.seq);
            let Some(text) = toast_text(e) else { continue };
            let seq = e.seq;
            set_toasts.update(|t| t.push((seq, text)));
            set_timeout(
                move || set_toasts.update(|t| t.retain(|(s, _)| *s != seq)),
                std::time::Duration::from_secs(10),
            );
        }
    });
    view! {
        <div class="toasts" aria-live="assertive">
            <For each=move || toasts.get() key=|(seq, _)| *seq let:toast>
                <div class="toast" role="alert">
                    <span>{toast.1.clone()}</span>
                    <button
                        class="secondary"
                        aria-label="Dismiss"
                        on:click=move |_| set_toasts.update(|t| t.retain(|(s, _)| *s != toast.0))
                    >
                        "×"
                    </button>
                </div>
            </For>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, data: serde_json::Value) -> Event {
        Event {
            seq: 1,
            kind: kind.into(),
            at: time::OffsetDateTime::UNIX_EPOCH,
            severity: crate::domain::event::Severity::Error,
            subject: "task/1".into(),
            data,
            agent_id: None,
            task_id: None,
            subtask_id: None,
            actor_id: None,
            actor: None,
            actor_token: None,
            xid: 0,
        }
    }

    #[test]
    fn only_critical_events_become_toasts_and_carry_the_error() {
        assert_eq!(
            toast_text(&event(
                "task.failed",
                serde_json::json!({ "error": "subtask s1 failed" })
            )),
            Some("Task failed: subtask s1 failed".into())
        );
        assert_eq!(
            toast_text(&event("subtask.completed", serde_json::json!({}))),
            None
        );
        assert_eq!(
            toast_text(&event("agent.unresponsive", serde_json::json!({}))),
            Some("Agent unresponsive: task/1".into())
        );
    }
}
