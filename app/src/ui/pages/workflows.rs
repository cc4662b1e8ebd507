use crate::api::workflows::{CreateWorkflow, ImportWorkflow, list_workflows};
use crate::domain::workflow::{WorkflowState, builtin_templates};
use crate::ui::components::error_note::ErrorNote;
use leptos::prelude::*;
use leptos_meta::Title;

/// The saved workflows, and new ones from a template or from scratch.
#[component]
pub fn WorkflowsPage() -> impl IntoView {
    let create = ServerAction::<CreateWorkflow>::new();
    let import = ServerAction::<ImportWorkflow>::new();
    let workflows = Resource::new(move || create.version().get(), |_| list_workflows());
    let error = Signal::derive(move || create.value().get().and_then(Result::err));
    let import_error = Signal::derive(move || import.value().get().and_then(Result::err));
    let templates = builtin_templates();
    view! {
        <Title text="Workflows" />
        <h1>"Workflows"</h1>
        <ActionForm action=create attr:class="inline-form">
            <label>
                "Start from"
                <select name="template" data-testid="template">
                    <option value="">"An empty canvas"</option>
                    {templates
                        .into_iter()
                        .map(|t| view! { <option value=t.slug>{t.export.name}</option> })
                        .collect_view()}
                </select>
            </label>
            <button type="submit">"New workflow"</button>
        </ActionForm>
        <ErrorNote error />
        <details class="import" data-testid="import">
            <summary>"Import an export file"</summary>
            <ActionForm action=import>
                <label>
                    "The export's JSON"
                    <textarea name="export" rows="6" data-testid="import-text" required></textarea>
                </label>
                <button type="submit">"Import"</button>
            </ActionForm>
            <ErrorNote error=import_error />
        </details>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match workflows.await {
                    Ok(list) if list.is_empty() => {
                        view! { <p class="muted">"No workflows yet."</p> }.into_any()
                    }
                    Ok(list) => {
                        view! {
                            <table>
                                <thead>
                                    <tr>
                                        <th>"Name"</th>
                                        <th>"State"</th>
                                        <th>"Version"</th>
                                        <th>"Nodes"</th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {list
                                        .into_iter()
                                        .map(|w| {
                                            let state = match w.state {
                                                WorkflowState::Ready => "ready",
                                                WorkflowState::Draft => "draft",
                                            };
                                            view! {
                                                <tr>
                                                    <td>
                                                        <a href=format!("/workflows/{}", w.id)>{w.name}</a>
                                                    </td>
                                                    <td>{state}</td>
                                                    <td>{w.version}</td>
                                                    <td>{w.nodes}</td>
                                                </tr>
                                            }
                                        })
                                        .collect_view()}
                                </tbody>
                            </table>
                        }
                            .into_any()
                    }
                    Err(e) => view! { <ErrorNote error=Signal::stored(Some(e)) /> }.into_any(),
                }
            })}
        </Transition>
    }
}
