use crate::api::login::Login;
use crate::ui::components::error_note::ErrorNote;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// The only page reachable without a session.
#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    // Pre-filled only with what the login would accept anyway.
    let next = move || crate::api::login::safe_next(use_query_map().read().get("next").as_deref());
    let error = Signal::derive(move || login.value().get().and_then(Result::err));
    view! {
        <Title text="Log in" />
        <main class="login">
            <h1>"Flotilla"</h1>
            <ActionForm action=login>
                <label>
                    "Username" <input type="text" name="username" autocomplete="username" required />
                </label>
                <label>
                    "Password"
                    <input type="password" name="password" autocomplete="current-password" required />
                </label>
                <input type="hidden" name="next" value=next />
                <button type="submit" disabled=move || login.pending().get()>
                    "Log in"
                </button>
            </ActionForm>
            <ErrorNote error />
        </main>
    }
}
