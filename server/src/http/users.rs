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
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

pub async fn list(
    State(state): State<AppState>,
    Extension(me): Extension<User>,
) -> Result<Json<Value>, ApiError> {
    require_role(&me, Role::Admin)?;
    let users = app::db::users::list(&state.ctx.pool).await?;
    Ok(Json(json!({ "items": users, "next_cursor": null })))
}

#[derive(Deserialize)]
pub struct CreateUser {
    username: String,
    password: String,
    role: String,
}

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

#[derive(Deserialize)]
pub struct SetRole {
    role: String,
}

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
