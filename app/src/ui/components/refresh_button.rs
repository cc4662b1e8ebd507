use leptos::prelude::*;

/// A "Refresh" button that bumps a counter; pages put the counter in their resources' sources
/// to refetch on demand (live events refetch on their own).
#[component]
pub fn RefreshButton(
    /// The counter to bump.
    refreshes: WriteSignal<u32>,
) -> impl IntoView {
    view! {
        <p class="actions">
            <button class="secondary" on:click=move |_| refreshes.update(|n| *n += 1)>
                "Refresh"
            </button>
        </p>
    }
}
