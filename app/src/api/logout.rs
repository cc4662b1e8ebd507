use super::AppError;
use leptos::prelude::*;

/// Ends the session server-side and returns to the login page.
#[server(endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    use super::ssr::{run, session};
    run(async {
        crate::auth::end_session(&session().await?).await?;
        leptos_axum::redirect("/login");
        Ok(())
    })
    .await
}
