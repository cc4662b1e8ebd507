use crate::api::logout::Logout;
use crate::api::whoami::whoami;
use crate::domain::account::Role;
use crate::ui::components::toasts::Toasts;
use crate::ui::contexts::live::{Connection, provide_live_events};
use leptos::prelude::*;
use leptos_router::components::{A, Outlet};

/// The frame of every logged-in page: navigation, the current user and logout.
#[component]
pub fn Layout() -> impl IntoView {
    let me = Resource::new(|| (), |_| whoami());
    let live = provide_live_events();
    let logout = ServerAction::<Logout>::new();
    view! {
        <header class="topbar">
            <a class="brand" href="/">
                "Flotilla"
            </a>
            <nav aria-label="Main">
                <A href="/" exact=true>
                    "Overview"
                </A>
                <A href="/tasks">"Tasks"</A>
                <A href="/agents">"Agents"</A>
                <A href="/workflows">"Workflows"</A>
                <A href="/events">"Events"</A>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        me.await
                            .ok()
                            .filter(|u| u.role == Role::Admin)
                            .map(|_| {
                                view! {
                                    <A href="/users">"Users"</A>
                                    <A href="/providers">"Providers"</A>
                                }
                            })
                    })}
                </Transition>
            </nav>
            <div class="who">
                <span class="live" role="status" data-connection=move || format!("{:?}", live.connection.get())>
                    {move || match live.connection.get() {
                        Connection::Live => "● Live",
                        Connection::Connecting => "○ Connecting…",
                        Connection::Reconnecting => "○ Reconnecting…",
                    }}
                </span>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        me.await
                            .ok()
                            .map(|u| {
                                view! {
                                    <span class="user">{u.username}</span>
                                    <span class="role">{u.role.to_string()}</span>
                                }
                            })
                    })}
                </Transition>
                <ActionForm action=logout>
                    <button type="submit">"Log out"</button>
                </ActionForm>
            </div>
        </header>
        <main>
            <Outlet />
        </main>
        <Toasts />
    }
}
