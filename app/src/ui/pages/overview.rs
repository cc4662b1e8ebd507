use crate::api::overview::{Overview, get_overview};
use crate::ui::components::error_note::ErrorNote;
use leptos::prelude::*;
use leptos_meta::Title;

/// The landing page: who is here and whether the installation is healthy.
#[component]
pub fn OverviewPage() -> impl IntoView {
    // Bumped by the refresh button; a client-side interaction that only works once hydrated.
    let (checks, set_checks) = signal(0u32);
    let overview = Resource::new(move || checks.get(), |_| get_overview());
    view! {
        <Title text="Overview" />
        <h1>"Overview"</h1>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match overview.await {
                    Ok(o) => view! { <OverviewCards overview=o /> }.into_any(),
                    Err(e) => view! { <ErrorNote error=Signal::stored(Some(e)) /> }.into_any(),
                }
            })}
        </Transition>
        <p class="actions">
            <button on:click=move |_| set_checks.update(|n| *n += 1)>"Check again"</button>
            <span aria-live="polite">
                {move || match checks.get() {
                    0 => String::new(),
                    1 => "Checked again 1 time".to_owned(),
                    n => format!("Checked again {n} times"),
                }}
            </span>
        </p>
    }
}

/// The figures of one overview.
#[component]
fn OverviewCards(overview: Overview) -> impl IntoView {
    let db = overview.database;
    view! {
        <section class="cards">
            <article class="card">
                <h2>"Signed in as"</h2>
                <p class="big" data-testid="signed-in-user">
                    {overview.username}
                </p>
                <p>{overview.role.to_string()}</p>
            </article>
            <article class="card">
                <h2>"Server"</h2>
                <p class="big">"v" {overview.server_version}</p>
                <p>{overview.users} " users"</p>
            </article>
            <article class="card">
                <h2>"Database"</h2>
                <p class="big" data-testid="database-status">
                    {if db.reachable { "Connected" } else { "Unreachable" }}
                </p>
                <p>
                    {db.version.map(|v| format!("PostgreSQL {v}")).unwrap_or_default()}
                    {db.latency_us.map(|us| format!(" · {:.1} ms", us as f64 / 1000.0))}
                </p>
            </article>
        </section>
    }
}
