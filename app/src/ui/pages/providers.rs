use crate::api::providers::{CreateProvider, DeleteProvider, TestProvider, list_providers};
use crate::domain::provider::{JsonFormat, ProviderKind, ProviderView};
use crate::domain::usage::format_cost;
use crate::ui::components::error_note::ErrorNote;
use leptos::prelude::*;
use leptos_meta::Title;

/// Admins add and remove the model providers agents run on. A key is write-only: the page
/// shows whether one is set, never the key.
#[component]
pub fn ProvidersPage() -> impl IntoView {
    let create = ServerAction::<CreateProvider>::new();
    let delete = ServerAction::<DeleteProvider>::new();
    let test = ServerAction::<TestProvider>::new();
    let providers = Resource::new(
        move || (create.version().get(), delete.version().get()),
        |_| list_providers(),
    );
    let create_error = Signal::derive(move || create.value().get().and_then(Result::err));
    let delete_error = Signal::derive(move || delete.value().get().and_then(Result::err));
    view! {
        <Title text="Providers" />
        <h1>"Model providers"</h1>
        <p class="muted">
            "Agents without one of these run on the simulated model: the built-in test model, no real LLM."
        </p>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match providers.await {
                    Ok(list) => view! { <ProviderTable providers=list delete test /> }.into_any(),
                    Err(e) => view! { <ErrorNote error=Signal::stored(Some(e)) /> }.into_any(),
                }
            })}
        </Transition>
        <ErrorNote error=delete_error />
        <TestResult test />
        <h2>"Add a provider"</h2>
        <ActionForm action=create attr:class="inline-form" attr:data-testid="provider-form">
            <label>"Name" <input type="text" name="name" required pattern="[a-z][a-z0-9_-]*" /></label>
            <label>
                "Kind"
                <select name="kind" aria-label="Kind">
                    {ProviderKind::ALL
                        .iter()
                        .map(|k| view! { <option value=k.as_str()>{k.as_str()}</option> })
                        .collect_view()}
                </select>
            </label>
            <label>"Base URL" <input type="url" name="base_url" required placeholder="https://openrouter.ai/api/v1" /></label>
            <label>"API key" <input type="password" name="api_key" autocomplete="off" /></label>
            <label>"Default model" <input type="text" name="default_model" required /></label>
            <label>
                "Prices per M tokens"
                <input type="text" name="prices" placeholder="input,output[,cache read,cache write]" />
            </label>
            <label>
                "JSON format"
                <select name="json_format" aria-label="JSON format">
                    {JsonFormat::ALL
                        .iter()
                        .map(|f| view! { <option value=f.as_str()>{f.as_str()}</option> })
                        .collect_view()}
                </select>
            </label>
            <button type="submit">"Add"</button>
        </ActionForm>
        <ErrorNote error=create_error />
    }
}

#[component]
fn ProviderTable(
    providers: Vec<ProviderView>,
    delete: ServerAction<DeleteProvider>,
    test: ServerAction<TestProvider>,
) -> impl IntoView {
    if providers.is_empty() {
        return view! { <p class="muted">"No providers stored yet."</p> }.into_any();
    }
    view! {
        <table data-testid="providers">
            <thead>
                <tr>
                    <th>"Name"</th>
                    <th>"Kind"</th>
                    <th>"Base URL"</th>
                    <th>"Default model"</th>
                    <th>"Key"</th>
                    <th>"Prices (in / out per M)"</th>
                    <th>"Breaker"</th>
                    <th>"Rate limits"</th>
                    <th></th>
                </tr>
            </thead>
            <tbody>
                {providers
                    .into_iter()
                    .map(|p| {
                        let id = p.id;
                        let name = p.name.clone();
                        let prices = p
                            .prices
                            .iter()
                            .map(|(m, pr)| {
                                format!("{m}: {} / {}", format_cost(pr.input), format_cost(pr.output))
                            })
                            .collect::<Vec<_>>()
                            .join("; ");
                        let limits = p
                            .rate_limits
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(", ");
                        view! {
                            <tr data-provider=name>
                                <td>{p.name}</td>
                                <td>{p.kind.as_str()}</td>
                                <td>{p.base_url}</td>
                                <td>{p.default_model}</td>
                                <td>{if p.api_key_set { "set" } else { "none" }}</td>
                                <td>{prices}</td>
                                <td>{p.breaker}</td>
                                <td class="muted">{limits}</td>
                                <td>
                                    <button
                                        data-testid="test-provider"
                                        on:click=move |_| {
                                            test.dispatch(TestProvider { id });
                                        }
                                    >
                                        "Test"
                                    </button>
                                    " "
                                    <button
                                        class="danger"
                                        on:click=move |_| {
                                            delete.dispatch(DeleteProvider { id });
                                        }
                                    >
                                        "Remove"
                                    </button>
                                </td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

/// The last connection test's outcome: the model's reply and figures, or why it failed.
#[component]
fn TestResult(test: ServerAction<TestProvider>) -> impl IntoView {
    move || {
        let pending = test.pending().get();
        match test.value().get() {
            _ if pending => Some(view! { <p class="muted">"Testing…"</p> }.into_any()),
            Some(Ok(t)) => Some(match (t.ok, t.report, t.error) {
                (true, Some(r), _) => view! {
                    <p class="ok" data-testid="test-result">
                        {format!(
                            "{} answered in {} ms ({} tokens in, {} out): {}",
                            r.model,
                            r.latency_ms,
                            r.usage.input,
                            r.usage.output,
                            r.reply,
                        )}
                    </p>
                }
                .into_any(),
                (_, _, e) => view! {
                    <p class="error" data-testid="test-result">
                        {format!("The test failed: {}", e.unwrap_or_default())}
                    </p>
                }
                .into_any(),
            }),
            Some(Err(e)) => Some(view! { <ErrorNote error=Signal::stored(Some(e)) /> }.into_any()),
            None => None,
        }
    }
}
