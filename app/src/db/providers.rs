//! Model providers managed by admins. API keys arrive here sealed (the server holds the master
//! key); nothing in this module ever sees one in the clear. Writers take a transaction: the
//! change and its event, attributed to the actor, commit together.

use crate::db::events::{self, NewEvent};
use crate::domain::account::Actor;
use crate::domain::event::EventKind;
use serde_json::{Value, json};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

#[derive(Clone, Debug)]
pub struct ProviderRow {
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    pub base_url: String,
    pub api_key_sealed: Option<Vec<u8>>,
    pub key_version: i32,
    pub default_model: String,
    pub prices: Value,
    pub json_format: String,
    pub rate_limits: Value,
    pub rate_limits_at: Option<time::OffsetDateTime>,
    pub created_at: time::OffsetDateTime,
    pub updated_at: time::OffsetDateTime,
}

/// A provider as stored, its key already sealed under `id` and `key_version`.
#[derive(Clone, Debug)]
pub struct ProviderWrite {
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    pub base_url: String,
    pub api_key_sealed: Option<Vec<u8>>,
    pub key_version: i32,
    pub default_model: String,
    pub prices: Value,
    pub json_format: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderDbError {
    #[error("a provider named '{0}' exists")]
    NameTaken(String),
    #[error("no such provider")]
    NotFound,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<ProviderRow>, sqlx::Error> {
    sqlx::query_as!(ProviderRow, "select * from providers order by name")
        .fetch_all(db)
        .await
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<ProviderRow>, sqlx::Error> {
    sqlx::query_as!(ProviderRow, "select * from providers where id = $1", id)
        .fetch_optional(db)
        .await
}

fn name_taken(e: sqlx::Error, name: &str) -> ProviderDbError {
    match &e {
        sqlx::Error::Database(d) if d.constraint() == Some("providers_name_key") => {
            ProviderDbError::NameTaken(name.to_owned())
        }
        _ => ProviderDbError::Db(e),
    }
}

/// The event of a change: what changed, never the key (only whether one is set).
fn event(kind: EventKind, row: &ProviderRow) -> NewEvent {
    NewEvent::new(kind, format!("provider/{}", row.name)).data(json!({
        "id": row.id, "name": row.name, "kind": row.kind, "base_url": row.base_url,
        "default_model": row.default_model, "api_key_set": row.api_key_sealed.is_some(),
    }))
}

pub async fn insert(
    conn: &mut PgConnection,
    w: &ProviderWrite,
    actor: &Actor,
) -> Result<ProviderRow, ProviderDbError> {
    events::act_as(conn, actor).await?;
    let row = sqlx::query_as!(
        ProviderRow,
        "insert into providers (id, name, kind, base_url, api_key_sealed, key_version,
                                default_model, prices, json_format)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning *",
        w.id,
        w.name,
        w.kind,
        w.base_url,
        w.api_key_sealed,
        w.key_version,
        w.default_model,
        w.prices,
        w.json_format
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| name_taken(e, &w.name))?;
    events::append(conn, event(EventKind::ProviderCreated, &row)).await?;
    Ok(row)
}

pub async fn update(
    conn: &mut PgConnection,
    w: &ProviderWrite,
    actor: &Actor,
) -> Result<ProviderRow, ProviderDbError> {
    events::act_as(conn, actor).await?;
    let row = sqlx::query_as!(
        ProviderRow,
        "update providers set name = $2, kind = $3, base_url = $4, api_key_sealed = $5,
                key_version = $6, default_model = $7, prices = $8, json_format = $9,
                updated_at = now()
         where id = $1 returning *",
        w.id,
        w.name,
        w.kind,
        w.base_url,
        w.api_key_sealed,
        w.key_version,
        w.default_model,
        w.prices,
        w.json_format
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| name_taken(e, &w.name))?
    .ok_or(ProviderDbError::NotFound)?;
    events::append(conn, event(EventKind::ProviderUpdated, &row)).await?;
    Ok(row)
}

pub async fn delete(
    conn: &mut PgConnection,
    id: Uuid,
    actor: &Actor,
) -> Result<(), ProviderDbError> {
    events::act_as(conn, actor).await?;
    let row = sqlx::query_as!(
        ProviderRow,
        "delete from providers where id = $1 returning *",
        id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(ProviderDbError::NotFound)?;
    events::append(conn, event(EventKind::ProviderDeleted, &row)).await?;
    Ok(())
}

/// Changes whenever a provider is added, changed or removed: engines reload when it does.
pub async fn version(db: impl PgExecutor<'_>) -> Result<String, sqlx::Error> {
    let v = sqlx::query_scalar!(
        r#"select count(*)::text || ':' || coalesce(max(updated_at)::text, '') as "v!"
           from providers"#
    )
    .fetch_one(db)
    .await?;
    Ok(v)
}

/// Stores the newest rate-limit headers a provider answered with.
pub async fn store_rate_limits(
    db: impl PgExecutor<'_>,
    name: &str,
    limits: &Value,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update providers set rate_limits = $2, rate_limits_at = now() where name = $1",
        name,
        limits
    )
    .execute(db)
    .await?;
    Ok(())
}
