use crate::api::AppError;
use leptos::prelude::*;

/// Shows an error from a server function as an alert, or nothing.
#[component]
pub fn ErrorNote(
    /// The latest error, if any.
    #[prop(into)]
    error: Signal<Option<AppError>>,
) -> impl IntoView {
    move || {
        error.get().map(|e| {
            view! {
                <p class="error" role="alert">
                    {e.message}
                </p>
            }
        })
    }
}
