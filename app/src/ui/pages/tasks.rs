use crate::api::tasks::{SubmitTask, list_tasks};
use crate::domain::run::TaskSummary;
use crate::ui::components::error_note::ErrorNote;
use crate::ui::components::refresh_button::RefreshButton;
use crate::ui::components::status_badge::StatusBadge;
use crate::ui::contexts::live::use_live_events;
use leptos::prelude::*;
use leptos_meta::Title;

/// Submit a task and see the latest ones.
#[component]
pub fn TasksPage() -> impl IntoView {
    let submit = ServerAction::<SubmitTask>::new();
    let (refreshes, set_refreshes) = signal(0u32);
    let live = use_live_events().ticks(|e| e.kind.starts_with("task."));
    let tasks = Resource::new(
        move || (submit.version().get(), refreshes.get(), live.get()),
        |_| list_tasks(),
    );
    let error = Signal::derive(move || submit.value().get().and_then(Result::err));
    view! {
        <Title text="Tasks" />
        <h1>"Tasks"</h1>
        <ActionForm action=submit attr:class="task-form">
            <label>
                "Describe the work"
                <textarea
                    name="description"
                    rows="3"
                    minlength="10"
                    maxlength="5000"
                    required
                    placeholder="Scrape the pricing website. Query the sales database, then analyse the trends."
                ></textarea>
            </label>
            <label class="narrow">
                "Priority (0–10)" <input type="number" name="priority" min="0" max="10" value="5" />
            </label>
            <label class="narrow">
                "Token cap" <input type="number" name="max_tokens" min="1" placeholder="none" />
            </label>
            <label class="narrow">
                "Cost cap (micro-units)"
                <input type="number" name="max_cost_micros" min="0" placeholder="none" />
            </label>
            <button type="submit">"Submit task"</button>
        </ActionForm>
        <ErrorNote error />
        <RefreshButton refreshes=set_refreshes />
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match tasks.await {
                    Ok(list) if list.is_empty() => {
                        view! { <p class="muted">"No tasks yet."</p> }.into_any()
                    }
                    Ok(list) => view! { <TaskTable tasks=list /> }.into_any(),
                    Err(e) => view! { <ErrorNote error=Signal::stored(Some(e)) /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn TaskTable(tasks: Vec<TaskSummary>) -> impl IntoView {
    view! {
        <table>
            <thead>
                <tr>
                    <th>"Task"</th>
                    <th>"Status"</th>
                    <th>"Subtasks"</th>
                    <th>"Priority"</th>
                    <th>"Submitted by"</th>
                </tr>
            </thead>
            <tbody>
                {tasks
                    .into_iter()
                    .map(|t| {
                        let href = format!("/tasks/{}", t.id);
                        view! {
                            <tr>
                                <td>
                                    <a href=href>{t.description}</a>
                                </td>
                                <td>
                                    <StatusBadge status=t.status.as_str() />
                                </td>
                                <td>{format!("{}/{}", t.subtasks_completed, t.subtasks_total)}</td>
                                <td>{t.priority}</td>
                                <td class="muted">{t.submitted_by.unwrap_or_default()}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}
