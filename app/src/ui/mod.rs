//! The user interface: the HTML shell, the router and the pages.

pub mod components;
pub mod contexts;
pub mod dom;
pub mod pages;

use components::layout::Layout;
use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::{
    components::{ParentRoute, Route, Router, Routes},
    path,
};
use pages::{
    agent_detail::AgentDetailPage, agents::AgentsPage, events::EventsPage, login::LoginPage,
    not_found::NotFound, overview::OverviewPage, providers::ProvidersPage,
    task_detail::TaskDetailPage, tasks::TasksPage, users::UsersPage,
    workflow_editor::WorkflowEditorPage, workflow_history::WorkflowRunsPage,
    workflows::WorkflowsPage,
};

/// The document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    set_content_security_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" href="/favicon.ico" />
                <link rel="stylesheet" href=format!("/{}/flotilla.css", options.site_pkg_dir) />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The page's policy: scripts only with this response's nonce (the hydration scripts carry it;
/// what they load is trusted through `'strict-dynamic'`) plus WebAssembly compilation; styles
/// only from our stylesheet, so no inline style attribute either (the workflow editor places
/// nodes through SVG attributes); never framed.
#[cfg(feature = "ssr")]
fn set_content_security_policy() {
    use leptos::nonce::use_nonce;
    let (Some(nonce), Some(response)) =
        (use_nonce(), use_context::<leptos_axum::ResponseOptions>())
    else {
        return;
    };
    let policy = format!(
        "default-src 'self'; script-src 'nonce-{nonce}' 'strict-dynamic' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    if let Ok(value) = axum::http::HeaderValue::from_str(&policy) {
        response.insert_header(axum::http::header::CONTENT_SECURITY_POLICY, value);
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title formatter=|page: String| format!("{page} · Flotilla") />
        <Router>
            <Routes fallback=NotFound>
                <Route path=path!("/login") view=LoginPage />
                <ParentRoute path=path!("") view=Layout>
                    <Route path=path!("") view=OverviewPage />
                    <Route path=path!("tasks") view=TasksPage />
                    <Route path=path!("tasks/:id") view=TaskDetailPage />
                    <Route path=path!("agents") view=AgentsPage />
                    <Route path=path!("agents/:id") view=AgentDetailPage />
                    <Route path=path!("workflows") view=WorkflowsPage />
                    <Route path=path!("workflows/:id") view=WorkflowEditorPage />
                    <Route path=path!("workflows/:id/runs") view=WorkflowRunsPage />
                    <Route path=path!("events") view=EventsPage />
                    <Route path=path!("users") view=UsersPage />
                    <Route path=path!("providers") view=ProvidersPage />
                </ParentRoute>
            </Routes>
        </Router>
    }
}
