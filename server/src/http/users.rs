//! `/api/v1/users`: account administration (admins only).

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath};
use app::auth::require_role;
use app::commands;
use app::domain::account::Actor;
use app::domain::account::{Role, User, UserId};
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Every account (one page).
#[derive(Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<User>,
    /// Always `null`: accounts fit in one page.
    pub next_cursor: Option<String>,
}

/// Every account (admins only).
#[utoipa::path(get, path = "/users", tag = "users",
    responses((status = 200, description = "The accounts", body = UserPage)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(me): Extension<User>,
) -> Result<Json<UserPage>, ApiError> {
    require_role(&me, Role::Admin)?;
    let items = app::db::users::list(&state.ctx.pool).await?;
    Ok(Json(UserPage {
        items,
        next_cursor: None,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct CreateUser {
    #[schema(schema_with = app::api::schema::username)]
    username: String,
    #[schema(schema_with = app::api::schema::new_password)]
    password: String,
    #[schema(value_type = Role)]
    role: String,
}

/// Creates an account (admins only).
#[utoipa::path(post, path = "/users", tag = "users", request_body = CreateUser,
    responses((status = 201, description = "Created", body = User)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiJson(body): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let user = commands::create_user(
        &state.ctx.pool,
        &me,
        &body.username,
        body.password,
        &body.role,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[derive(Deserialize, ToSchema)]
pub struct SetRole {
    #[schema(value_type = Role)]
    role: String,
}

/// Changes a user's role (admins only; the last admin cannot be demoted).
#[utoipa::path(patch, path = "/users/{id}", tag = "users", request_body = SetRole,
    params(("id" = UserId, Path)),
    responses((status = 200, description = "The user with the new role", body = User)))]
pub async fn set_role(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<SetRole>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(
        commands::change_role(&state.ctx.pool, &me, UserId(id), &body.role).await?,
    ))
}
