//! `/api/v1/providers`: the model providers agents run on (admins only). An API key goes in
//! and is sealed at once; it never comes out — responses say `"api_key_set": true`.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath};
use crate::engine::provider::{CheckReport, Providers, check};
use crate::engine::provider_sync::config_from_row;
use crate::secrets::{MasterKey, provider_aad};
use app::api::ErrorKind;
use app::auth::require_role;
use app::db::providers::{ProviderRow, ProviderWrite};
use app::domain::account::{Actor, Role};
use app::domain::provider::{
    JsonFormat, ProviderKind, check_prices, parse_api_key, parse_base_url, parse_model, parse_name,
};
use app::domain::usage::Prices;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

/// A provider as the API shows it: everything but the key.
#[derive(Serialize, ToSchema)]
pub struct ProviderView {
    pub id: Uuid,
    pub name: String,
    pub kind: ProviderKind,
    pub base_url: String,
    pub default_model: String,
    /// Per model, in micro-units per million tokens.
    pub prices: BTreeMap<String, Prices>,
    pub json_format: JsonFormat,
    pub api_key_set: bool,
    /// Its circuit breaker as last reported: `closed`, `open` or `half_open`.
    pub breaker: String,
    /// The newest rate-limit headers it answered with (`anthropic-ratelimit-*`,
    /// `x-ratelimit-*`), by name.
    pub rate_limits: BTreeMap<String, String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub rate_limits_at: Option<time::OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: time::OffsetDateTime,
}

#[derive(Serialize, ToSchema)]
pub struct ProviderPage {
    pub items: Vec<ProviderView>,
    /// Always `null`: providers fit in one page.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProvider {
    #[schema(pattern = "^[a-z][a-z0-9_-]{0,63}$")]
    name: String,
    kind: ProviderKind,
    /// Up to the version path: `https://openrouter.ai/api/v1`, `http://localhost:11434/v1`,
    /// `https://api.anthropic.com`.
    #[schema(max_length = 500)]
    base_url: String,
    /// Sealed at once; never shown again. Optional for a local server.
    #[schema(max_length = 1000)]
    api_key: Option<String>,
    #[schema(min_length = 1, max_length = 200)]
    default_model: String,
    #[serde(default)]
    prices: BTreeMap<String, Prices>,
    #[serde(default)]
    json_format: JsonFormat,
}

/// The fields to change; absent ones stay. `api_key: ""` removes the key.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderPatch {
    name: Option<String>,
    kind: Option<ProviderKind>,
    base_url: Option<String>,
    api_key: Option<String>,
    default_model: Option<String>,
    prices: Option<BTreeMap<String, Prices>>,
    json_format: Option<JsonFormat>,
}

/// What a connection test found: the provider answered (`ok`) or why not.
#[derive(Serialize, ToSchema)]
pub struct ProviderTest {
    pub ok: bool,
    pub report: Option<CheckReport>,
    pub error: Option<String>,
}

fn invalid(reason: String) -> ApiError {
    ApiError::new(ErrorKind::Invalid, reason)
}

fn master_key(state: &AppState) -> Result<&MasterKey, ApiError> {
    state.config.engine.master_key.as_ref().ok_or_else(|| {
        ApiError::new(
            ErrorKind::Unavailable,
            "this process has no master key for secrets",
        )
    })
}

async fn view(pool: &sqlx::PgPool, row: ProviderRow) -> Result<ProviderView, ApiError> {
    let breaker: Option<String> = sqlx::query_scalar!(
        "select data ->> 'state' from events where type = 'provider.breaker' and subject = $1
         order by seq desc limit 1",
        format!("provider/{}", row.name)
    )
    .fetch_optional(pool)
    .await?
    .flatten();
    Ok(ProviderView {
        id: row.id,
        kind: row.kind.parse().unwrap_or(ProviderKind::OpenaiCompatible),
        json_format: row.json_format.parse().unwrap_or_default(),
        prices: serde_json::from_value(row.prices).unwrap_or_default(),
        rate_limits: serde_json::from_value(row.rate_limits).unwrap_or_default(),
        api_key_set: row.api_key_sealed.is_some(),
        breaker: breaker.unwrap_or_else(|| "closed".into()),
        name: row.name,
        base_url: row.base_url,
        default_model: row.default_model,
        rate_limits_at: row.rate_limits_at,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// A write with every field checked and the key (if any) sealed to the row.
struct Checked {
    name: String,
    kind: ProviderKind,
    base_url: String,
    default_model: String,
    prices: BTreeMap<String, Prices>,
    json_format: JsonFormat,
}

impl Checked {
    fn new(
        name: &str,
        kind: ProviderKind,
        base_url: &str,
        default_model: &str,
        prices: BTreeMap<String, Prices>,
        json_format: JsonFormat,
    ) -> Result<Self, ApiError> {
        check_prices(&prices).map_err(invalid)?;
        Ok(Self {
            name: parse_name(name).map_err(invalid)?,
            kind,
            base_url: parse_base_url(base_url).map_err(invalid)?,
            default_model: parse_model(default_model).map_err(invalid)?,
            prices,
            json_format,
        })
    }

    fn write(self, id: Uuid, sealed: Option<Vec<u8>>, key_version: i32) -> ProviderWrite {
        ProviderWrite {
            id,
            name: self.name,
            kind: self.kind.as_str().to_owned(),
            base_url: self.base_url,
            api_key_sealed: sealed,
            key_version,
            default_model: self.default_model,
            prices: serde_json::to_value(self.prices).unwrap_or_default(),
            json_format: self.json_format.as_str().to_owned(),
        }
    }
}

/// Every provider (admins only).
#[utoipa::path(get, path = "/providers", tag = "providers",
    responses((status = 200, description = "The providers", body = ProviderPage)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
) -> Result<Json<ProviderPage>, ApiError> {
    require_role(&me.user, Role::Admin)?;
    let pool = &state.ctx.pool;
    let mut items = Vec::new();
    for row in app::db::providers::list(pool).await? {
        items.push(view(pool, row).await?);
    }
    Ok(Json(ProviderPage {
        items,
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
    require_role(&me.user, Role::Admin)?;
    let checked = Checked::new(
        &body.name,
        body.kind,
        &body.base_url,
        &body.default_model,
        body.prices,
        body.json_format,
    )?;
    let key = body
        .api_key
        .as_deref()
        .map(parse_api_key)
        .transpose()
        .map_err(invalid)?;
    if checked.kind == ProviderKind::Anthropic && key.is_none() {
        return Err(invalid("an anthropic provider needs an api_key".into()));
    }
    let id = Uuid::new_v4();
    let sealed =
        key.map(|k| master_key(&state).map(|m| m.seal(k.as_bytes(), &provider_aad(id, 1))));
    let write = checked.write(id, sealed.transpose()?, 1);
    let mut tx = state.ctx.pool.begin().await?;
    let row = app::db::providers::insert(&mut tx, &write, &me).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(view(&state.ctx.pool, row).await?)))
}

async fn stored(state: &AppState, id: Uuid) -> Result<ProviderRow, ApiError> {
    app::db::providers::get(&state.ctx.pool, id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, "no such provider"))
}

/// One provider.
#[utoipa::path(get, path = "/providers/{id}", tag = "providers", params(("id" = Uuid, Path)),
    responses((status = 200, description = "The provider", body = ProviderView)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ProviderView>, ApiError> {
    require_role(&me.user, Role::Admin)?;
    let row = stored(&state, id).await?;
    Ok(Json(view(&state.ctx.pool, row).await?))
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
    require_role(&me.user, Role::Admin)?;
    let row = stored(&state, id).await?;
    let old_prices: BTreeMap<String, Prices> =
        serde_json::from_value(row.prices.clone()).unwrap_or_default();
    let checked = Checked::new(
        patch.name.as_deref().unwrap_or(&row.name),
        patch
            .kind
            .unwrap_or_else(|| row.kind.parse().unwrap_or(ProviderKind::OpenaiCompatible)),
        patch.base_url.as_deref().unwrap_or(&row.base_url),
        patch.default_model.as_deref().unwrap_or(&row.default_model),
        patch.prices.unwrap_or(old_prices),
        patch
            .json_format
            .unwrap_or_else(|| row.json_format.parse().unwrap_or_default()),
    )?;
    let (sealed, version) = match patch.api_key.as_deref() {
        None => (row.api_key_sealed.clone(), row.key_version),
        Some("") => (None, row.key_version + 1),
        Some(raw) => {
            let key = parse_api_key(raw).map_err(invalid)?;
            let version = row.key_version + 1;
            let sealed = master_key(&state)?.seal(key.as_bytes(), &provider_aad(id, version));
            (Some(sealed), version)
        }
    };
    if checked.kind == ProviderKind::Anthropic && sealed.is_none() {
        return Err(invalid("an anthropic provider needs an api_key".into()));
    }
    let write = checked.write(id, sealed, version);
    let mut tx = state.ctx.pool.begin().await?;
    let row = app::db::providers::update(&mut tx, &write, &me).await?;
    tx.commit().await?;
    Ok(Json(view(&state.ctx.pool, row).await?))
}

/// Removes a provider; agents on it go to `error` at their next subtask.
#[utoipa::path(delete, path = "/providers/{id}", tag = "providers", params(("id" = Uuid, Path)),
    responses((status = 204, description = "Removed")))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(me): Extension<Actor>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    require_role(&me.user, Role::Admin)?;
    let mut tx = state.ctx.pool.begin().await?;
    app::db::providers::delete(&mut tx, id, &me).await?;
    tx.commit().await?;
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
    require_role(&me.user, Role::Admin)?;
    let row = stored(&state, id).await?;
    let config = config_from_row(&row, master_key(&state)?).map_err(invalid)?;
    let result = match Providers::new(std::time::Duration::ZERO).build(&config) {
        Ok(client) => check(client.as_ref(), &config.default_model).await,
        Err(e) => Err(e),
    };
    Ok(Json(match result {
        Ok(report) => ProviderTest {
            ok: true,
            report: Some(report),
            error: None,
        },
        Err(e) => ProviderTest {
            ok: false,
            report: None,
            error: Some(e.to_string()),
        },
    }))
}
