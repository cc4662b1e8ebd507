//! `/api/v1/providers`: the model providers agents run on (admins only). An API key goes in
//! and is sealed at once; it never comes out — responses say `"api_key_set": true`.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath};
use crate::secrets::MasterKey;
use app::api::ErrorKind;
use app::commands::providers::{
    self as commands, NewProvider, ProviderPatch, ProviderTest, ProviderView,
};
use app::domain::account::Actor;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Serialize, ToSchema)]
pub struct ProviderPage {
    pub items: Vec<ProviderView>,
    /// Always `null`: providers fit in one page.
    pub next_cursor: Option<String>,
}

fn master_key(state: &AppState) -> Result<&MasterKey, ApiError> {
    state.config.engine.master_key.as_ref().ok_or_else(|| {
        ApiError::new(
            ErrorKind::Unavailable,
            "this process has no master key for secrets",
        )
    })
}

/// Every provider (admins only).
#[utoipa::path(get, path = "/providers", tag = "providers",
    responses((status = 200, description = "The providers", body = ProviderPage)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
) -> Result<Json<ProviderPage>, ApiError> {
    Ok(Json(ProviderPage {
        items: commands::list(&state.ctx.pool, &me).await?,
        next_cursor: None,
    }))
}

/// Adds a provider; agents can name it at once (engines pick it up within seconds).
#[utoipa::path(post, path = "/providers", tag = "providers", request_body = NewProvider,
    responses((status = 201, description = "Created", body = ProviderView)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiJson(body): ApiJson<NewProvider>,
) -> Result<(StatusCode, Json<ProviderView>), ApiError> {
    let view = commands::create(&state.ctx.pool, &me, master_key(&state)?, body).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// One provider.
#[utoipa::path(get, path = "/providers/{id}", tag = "providers", params(("id" = Uuid, Path)),
    responses((status = 200, description = "The provider", body = ProviderView)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ProviderView>, ApiError> {
    let row = commands::get(&state.ctx.pool, &me, id).await?;
    Ok(Json(commands::view(&state.ctx.pool, row).await?))
}

/// Changes a provider. A new key is sealed under the next key version.
#[utoipa::path(patch, path = "/providers/{id}", tag = "providers", params(("id" = Uuid, Path)),
    request_body = ProviderPatch,
    responses((status = 200, description = "Changed", body = ProviderView)))]
pub async fn update(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(patch): ApiJson<ProviderPatch>,
) -> Result<Json<ProviderView>, ApiError> {
    let key = master_key(&state)?;
    Ok(Json(
        commands::update(&state.ctx.pool, &me, key, id, patch).await?,
    ))
}

/// Removes a provider; agents on it go to `error` at their next subtask.
#[utoipa::path(delete, path = "/providers/{id}", tag = "providers", params(("id" = Uuid, Path)),
    responses((status = 204, description = "Removed")))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    commands::delete(&state.ctx.pool, &me, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A connection test: one small call of the default model through the provider's client.
/// A provider that fails answers `ok: false` with the reason (the request itself succeeded).
#[utoipa::path(post, path = "/providers/{id}/test", tag = "providers", params(("id" = Uuid, Path)),
    responses((status = 200, description = "What the provider answered", body = ProviderTest)))]
pub async fn test(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ProviderTest>, ApiError> {
    let tester = crate::engine::provider::Tester(master_key(&state)?.clone());
    Ok(Json(
        commands::test(&state.ctx.pool, &me, &tester, id).await?,
    ))
}
