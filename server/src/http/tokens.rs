//! `/api/v1/tokens`: bearer tokens for scripts, created from a logged-in session.

use super::AppState;
use super::error::ApiError;
use super::extract::ApiPath;
use app::api::ErrorKind;
use app::db::tokens::CreatedToken;
use app::domain::account::{Role, User};
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use uuid::Uuid;

#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct Create {
    #[schema(schema_with = app::api::schema::token_name)]
    name: Option<String>,
}

/// Creates an API token for the logged-in user (from a session, not from another token). The
/// secret is in this response only; the body is optional.
#[utoipa::path(post, path = "/tokens", tag = "tokens",
    request_body(content = Create, description = "Optional"),
    responses((status = 201, description = "Created: `token` is shown this once", body = CreatedToken)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(me): Extension<User>,
    Extension(via): Extension<super::guard::AuthVia>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    if !matches!(via, super::guard::AuthVia::Session { .. }) {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "tokens are created from a logged-in session",
        ));
    }
    // The body is optional: `curl -X POST` with no JSON gets a token named "script".
    let create: Create = if body.is_empty() {
        Create::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                ErrorKind::Invalid,
                format!(
                    "invalid JSON body: {}",
                    app::api::error::plain_message(&e.to_string())
                ),
            )
        })?
    };
    let name = app::domain::text::one_line("name", create.name.as_deref().unwrap_or("script"), 100)
        .map_err(|e| ApiError::new(ErrorKind::Invalid, e))?;
    let token = app::db::tokens::create(&state.ctx.pool, me.id, name.trim()).await?;
    Ok((StatusCode::CREATED, Json(token)))
}

/// Revokes a token (your own; admins any).
#[utoipa::path(delete, path = "/tokens/{id}", tag = "tokens", params(("id" = Uuid, Path)),
    responses((status = 204, description = "Revoked")))]
pub async fn revoke(
    State(state): State<AppState>,
    Extension(me): Extension<User>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    if app::db::tokens::revoke(&state.ctx.pool, id, me.id, me.role == Role::Admin).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(ErrorKind::NotFound, "no such token"))
    }
}
