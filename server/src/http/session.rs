//! `/api/v1/session`: log in, see who you are, log out — for scripts and tests.

use super::AppState;
use super::error::ApiError;
use super::extract::ApiJson;
use app::auth;
use app::domain::account::User;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use std::net::SocketAddr;
use tower_sessions::Session;

#[derive(Deserialize)]
pub struct LoginRequest {
    username: String,
    password: String,
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Json<User>, ApiError> {
    let ctx = &state.ctx;
    let user = auth::authenticate(
        &ctx.pool,
        &ctx.login_policy,
        &body.username,
        &body.password,
        Some(peer.ip()),
    )
    .await?;
    auth::start_session(&session, &user).await?;
    Ok(Json(user))
}

pub async fn current(Extension(user): Extension<User>) -> Json<User> {
    Json(user)
}

pub async fn logout(session: Session) -> Result<StatusCode, ApiError> {
    auth::end_session(&session).await?;
    Ok(StatusCode::NO_CONTENT)
}
