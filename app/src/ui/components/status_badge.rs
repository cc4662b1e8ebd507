use leptos::prelude::*;

/// A state or status as a coloured pill; the colour comes from `data-status` in the CSS.
#[component]
pub fn StatusBadge(
    /// The state's name, e.g. `running` or `paused`.
    status: &'static str,
) -> impl IntoView {
    view! {
        <span class="badge" data-status=status>
            {status.replace('_', " ")}
        </span>
    }
}
