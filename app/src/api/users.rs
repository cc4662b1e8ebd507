//! User administration (admins only).

use super::AppError;
use crate::domain::account::User;
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

#[server(endpoint = "users/list", input = GetUrl)]
pub async fn list_users() -> Result<Vec<User>, AppError> {
    use super::ssr::{context, current_user, run};
    run(async {
        crate::auth::require_role(&current_user().await?, crate::domain::account::Role::Admin)?;
        Ok(crate::db::users::list(&context()?.pool).await?)
    })
    .await
}

#[server(endpoint = "users/create")]
pub async fn create_user(
    username: String,
    password: String,
    role: String,
) -> Result<User, AppError> {
    use super::ssr::{context, current_user, run};
    run(async {
        let me = current_user().await?;
        Ok(
            crate::commands::create_user(&context()?.pool, &me.into(), &username, password, &role)
                .await?,
        )
    })
    .await
}

#[server(endpoint = "users/set-role")]
pub async fn set_user_role(user_id: uuid::Uuid, role: String) -> Result<User, AppError> {
    use super::ssr::{context, current_user, run};
    use crate::domain::account::UserId;
    run(async {
        let me = current_user().await?;
        Ok(
            crate::commands::change_role(&context()?.pool, &me.into(), UserId(user_id), &role)
                .await?,
        )
    })
    .await
}
