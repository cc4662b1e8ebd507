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
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    username: String,
    password: String,
}

/// Logs in: the response sets the session cookie. Repeated failures lock the account and the
/// address for a while (429 with `Retry-After`).
#[utoipa::path(post, path = "/session", tag = "session", request_body = LoginRequest,
    security(()),
    responses((status = 200, description = "Logged in; the session cookie is set", body = User)))]
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

/// Who the session or token belongs to.
#[utoipa::path(get, path = "/session", tag = "session",
    responses((status = 200, description = "The current user", body = User)))]
pub async fn current(Extension(user): Extension<User>) -> Json<User> {
    Json(user)
}

/// Ends the session (a token stays valid until revoked).
#[utoipa::path(delete, path = "/session", tag = "session",
    responses((status = 204, description = "Logged out")))]
pub async fn logout(session: Session) -> Result<StatusCode, ApiError> {
    auth::end_session(&session).await?;
    Ok(StatusCode::NO_CONTENT)
}
