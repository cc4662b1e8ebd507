//! A workflow's history: its saved versions (each openable in the editor, each exportable) and
//! its runs (filtered by status, each openable on the canvas with its node states).

use crate::api::workflows::list_runs;
use crate::domain::ids::WorkflowId;
use crate::domain::run::RunStatus;
use crate::domain::workflow::VersionSummary;
use crate::ui::components::error_note::ErrorNote;
use crate::ui::components::status_badge::StatusBadge;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

/// The editor's history menu: versions, export of the version shown, and the runs page.
#[component]
pub fn History(
    workflow: WorkflowId,
    versions: Vec<VersionSummary>,
    shown: RwSignal<i32>,
) -> impl IntoView {
    let export = move || {
        format!(
            "/api/v1/workflows/{workflow}/export?version={}",
            shown.get()
        )
    };
    view! {
        <details class="history" data-testid="history">
            <summary>"History"</summary>
            <ol>
                {versions.into_iter().map(|v| view! {
                    <li>
                        <a href=format!("/workflows/{workflow}?version={}", v.version)
                            data-testid=format!("version-{}", v.version)>
                            {format!("v{}", v.version)}
                        </a>
                        {format!(" {} by {} — {}", v.saved_at.date(),
                            v.saved_by.unwrap_or_else(|| "?".into()),
                            if v.message.is_empty() { "no message".to_owned() } else { v.message })}
                    </li>
                }).collect_view()}
            </ol>
        </details>
        <a href=export download="workflow.json" rel="external" data-testid="export">"Export"</a>
        <a href=format!("/workflows/{workflow}/runs") data-testid="runs-link">"Runs"</a>
    }
}

/// The route's `:id`, as a workflow id.
pub fn workflow_param() -> impl Fn() -> Option<WorkflowId> + Copy + Send + Sync + 'static {
    let params = use_params_map();
    move || {
        params
            .read()
            .get("id")
            .and_then(|s| s.parse::<WorkflowId>().ok())
    }
}

/// `/workflows/:id/runs`: the workflow's runs, newest first, with a status filter.
#[component]
pub fn WorkflowRunsPage() -> impl IntoView {
    let query = use_query_map();
    let id = workflow_param();
    let status = move || query.read().get("status").unwrap_or_default();
    let runs = Resource::new(
        move || (id(), status()),
        |(id, status)| async move {
            match id {
                Some(id) => list_runs(id, status).await,
                None => Err(crate::api::AppError::invalid("not a workflow id")),
            }
        },
    );
    let statuses = [
        RunStatus::InProgress,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ];
    view! {
        <Title text="Workflow runs" />
        <p>{move || id().map(|id| view! { <a href=format!("/workflows/{id}")>"← The workflow"</a> })}</p>
        <h1>"Runs"</h1>
        <form method="get" class="inline-form">
            <label>"Status"
                <select name="status" data-testid="status-filter">
                    <option value="">"any"</option>
                    {statuses.into_iter().map(|s| view! {
                        <option value=s.as_str() selected=move || status() == s.as_str()>
                            {s.as_str().replace('_', " ")}
                        </option>
                    }).collect_view()}
                </select>
            </label>
            <button type="submit" class="secondary">"Filter"</button>
        </form>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match runs.await {
                    Ok(list) if list.is_empty() => view! { <p class="muted">"No runs."</p> }.into_any(),
                    Ok(list) => view! {
                        <table data-testid="runs">
                            <thead><tr>
                                <th>"Started"</th><th>"By"</th><th>"Version"</th>
                                <th>"Status"</th><th>"Nodes done"</th>
                            </tr></thead>
                            <tbody>
                                {list.into_iter().map(|r| view! {
                                    <tr>
                                        <td>
                                            <a href=format!("/workflows/{}?version={}&run={}", r.workflow_id, r.workflow_version, r.id)>
                                                {r.created_at.date().to_string()}{" "}{format!("{:02}:{:02}:{:02}", r.created_at.hour(), r.created_at.minute(), r.created_at.second())}
                                            </a>
                                        </td>
                                        <td>{r.started_by.unwrap_or_default()}</td>
                                        <td>{r.workflow_version}</td>
                                        <td><StatusBadge status=r.status.as_str() /></td>
                                        <td>{format!("{} of {}", r.nodes_finished, r.nodes_total)}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                    Err(e) => view! { <ErrorNote error=Signal::stored(Some(e)) /> }.into_any(),
                }
            })}
        </Transition>
    }
}
