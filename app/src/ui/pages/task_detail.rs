use crate::api::tasks::{CancelTask, RetrySubtask, get_task};
use crate::domain::ids::RunId;
use crate::domain::run::{NodeStatus, TaskDetail};
use crate::ui::components::dag_view::DagView;
use crate::ui::components::error_note::ErrorNote;
use crate::ui::components::refresh_button::RefreshButton;
use crate::ui::components::status_badge::StatusBadge;
use crate::ui::components::usage::{BudgetLine, Transcripts, UsageLine};
use crate::ui::contexts::live::use_live_events;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

/// One task: its plan, each subtask's state, agent and output, and the aggregated result.
#[component]
pub fn TaskDetailPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || {
        params
            .read()
            .get("id")
            .and_then(|s| s.parse::<RunId>().ok())
    };
    let cancel = ServerAction::<CancelTask>::new();
    let retry = ServerAction::<RetrySubtask>::new();
    let (refreshes, set_refreshes) = signal(0u32);
    // Every event about this task refetches it: the page follows the run live.
    let live = use_live_events().ticks(move |e| e.task_id.is_some() && e.task_id == id());
    let task = Resource::new(
        move || {
            (
                id(),
                live.get(),
                cancel.version().get(),
                retry.version().get(),
                refreshes.get(),
            )
        },
        |(id, ..)| async move {
            match id {
                Some(id) => get_task(id).await,
                None => Err(crate::api::AppError::invalid("not a task id")),
            }
        },
    );
    let action_error = Signal::derive(move || {
        cancel
            .value()
            .get()
            .and_then(Result::err)
            .or_else(|| retry.value().get().and_then(Result::err))
    });
    view! {
        <Title text="Task" />
        <p>
            <a href="/tasks">"← Tasks"</a>
        </p>
        <ErrorNote error=action_error />
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match task.await {
                    Ok(p) => {
                        view! {
                            <TaskView task=p.task dag=p.dag cancel retry />
                            <h2>"Transcripts"</h2>
                            <Transcripts items=p.transcripts />
                        }
                            .into_any()
                    }
                    Err(e) => view! { <ErrorNote error=Signal::stored(Some(e)) /> }.into_any(),
                }
            })}
        </Transition>
        <RefreshButton refreshes=set_refreshes />
    }
}

#[component]
fn TaskView(
    task: TaskDetail,
    dag: crate::domain::dag_view::DagLayout,
    cancel: ServerAction<CancelTask>,
    retry: ServerAction<RetrySubtask>,
) -> impl IntoView {
    let id = task.id;
    let done = task
        .subtasks
        .iter()
        .filter(|s| s.status == NodeStatus::Completed)
        .count();
    let total = task.subtasks.len();
    let final_ = task.status.is_final();
    let key_of = {
        let subtasks = task.subtasks.clone();
        move |n: &crate::domain::ids::NodeId| {
            subtasks
                .iter()
                .find(|s| &s.id == n)
                .map(|s| s.key.clone())
                .unwrap_or_default()
        }
    };
    view! {
        <h1>"Task"</h1>
        <p class="task-description">{task.description}</p>
        {task
            .submitted_by
            .map(|who| view! { <p class="muted" data-testid="submitted-by">"Submitted by " {who}</p> })}
        <p>
            <StatusBadge status=task.status.as_str() />
            " "
            <progress max=total value=done aria-label="Progress"></progress>
            {format!(" {done}/{total} subtasks")}
            {(!final_)
                .then(|| {
                    view! {
                        <button class="danger" on:click=move |_| { cancel.dispatch(CancelTask { id }); }>
                            "Cancel task"
                        </button>
                    }
                })}
        </p>
        {task
            .plan_note
            .map(|note| view! { <p class="muted">"Planner fell back to one subtask: " {note}</p> })}
        {task.error.map(|e| view! { <p class="error">{e}</p> })}
        <UsageLine usage=task.usage />
        {task.budget.map(|b| view! { <BudgetLine budget=b /> })}
        <DagView
            layout=dag
            nodes=task.subtasks.iter().map(|s| (s.key.clone(), s.status.as_str())).collect()
        />
        <table>
            <thead>
                <tr>
                    <th>"Subtask"</th>
                    <th>"Needs"</th>
                    <th>"After"</th>
                    <th>"Status"</th>
                    <th>"Attempt"</th>
                    <th>"Tokens"</th>
                    <th>"Cost"</th>
                    <th>"Output"</th>
                </tr>
            </thead>
            <tbody>
                {task
                    .subtasks
                    .into_iter()
                    .map(|s| {
                        let retryable = matches!(s.status, NodeStatus::Failed | NodeStatus::Blocked);
                        let after = s.depends_on.iter().map(&key_of).collect::<Vec<_>>().join(", ");
                        let sid = s.id;
                        let key = s.key.clone();
                        view! {
                            <tr data-subtask=key>
                                <td>
                                    <strong>{s.key}</strong>
                                    " "
                                    {s.description}
                                </td>
                                <td>{s.required_capabilities.join(", ")}</td>
                                <td>{after}</td>
                                <td>
                                    <StatusBadge status=s.status.as_str() />
                                    {retryable
                                        .then(|| {
                                            view! {
                                                <button
                                                    class="secondary"
                                                    on:click=move |_| {
                                                        retry.dispatch(RetrySubtask { id: sid });
                                                    }
                                                >
                                                    "Retry"
                                                </button>
                                            }
                                        })}
                                </td>
                                <td>{s.attempt}</td>
                                <td>{s.usage.tokens()}</td>
                                <td>{crate::domain::usage::format_cost(s.usage.cost_micros)}</td>
                                <td class="output">
                                    {s.output.or(s.error).unwrap_or_default()}
                                </td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
        {task
            .summary
            .map(|r| {
                view! {
                    <h2>"Summary"</h2>
                    <pre class="result" data-testid="summary">{r}</pre>
                }
            })}
        {task
            .summary_error
            .map(|e| view! { <p class="muted">"No summary: " {e}</p> })}
        {task
            .result
            .map(|r| {
                view! {
                    <h2>"Result"</h2>
                    <pre class="result">{r}</pre>
                }
            })}
    }
}
