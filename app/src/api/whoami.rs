use super::AppError;
use crate::domain::account::User;
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

/// The logged-in user.
#[server(endpoint = "whoami", input = GetUrl)]
pub async fn whoami() -> Result<User, AppError> {
    super::ssr::run(super::ssr::current_user()).await
}
