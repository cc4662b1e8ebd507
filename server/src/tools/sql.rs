//! `sql_query`: one read-only statement over the engine's state, run on a connection of its
//! own database role. The role may log in and read the views of `agent_views` and nothing else:
//! what keeps an agent from accounts, tokens, keys, files and writes is Postgres's privilege
//! system and a READ ONLY transaction with a statement timeout, never a check of the SQL text.
//! The role is made (or its password and grants renewed) by the server at start, one per
//! database, with a password derived from the master key so every process of an installation
//! derives the same one.

use futures_util::TryStreamExt;
use serde_json::{Map, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{Column, PgPool, Row, TypeInfo};
use std::time::Duration;

/// The schema whose views the role reads (migrations/…_agent_tools.sql).
const VIEWS: &str = "agent_views";
/// Rows one answer carries; a longer result says it was cut.
const MAX_ROWS: usize = 100;
/// How long one statement may run.
const STATEMENT_TIMEOUT_MS: u32 = 3_000;
/// Characters of one answer.
const MAX_ANSWER: usize = 20_000;

/// The tool: its role is set up on the first call (and again after a failed setup).
pub struct SqlTool {
    admin: PgPool,
    /// Derived from the master key; without one, the tool is unavailable.
    password: Option<String>,
    pool: tokio::sync::OnceCell<PgPool>,
}

impl SqlTool {
    pub fn new(admin: PgPool, password: Option<String>) -> Self {
        Self {
            admin,
            password,
            pool: tokio::sync::OnceCell::new(),
        }
    }

    async fn pool(&self) -> Result<&PgPool, String> {
        let password = self
            .password
            .as_deref()
            .ok_or("sql_query is unavailable: this process has no master key to derive its role's password")?;
        self.pool
            .get_or_try_init(|| provision(&self.admin, password))
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "sql_query: its database role could not be set up");
                format!(
                    "sql_query is unavailable on this server: its read-only database role could \
                     not be set up ({e})"
                )
            })
    }

    /// Runs `sql` as the role and answers its rows as JSON (at most [`MAX_ROWS`]).
    pub async fn query(&self, sql: &str) -> Result<String, String> {
        let pool = self.pool().await?;
        let sql = sql.trim().trim_end_matches(';');
        if sql.is_empty() {
            return Err("sql_query needs a `query`: one SQL statement".into());
        }
        let answer = run(pool, sql).await.map_err(|e| match e {
            sqlx::Error::Database(d) => format!("the query was refused: {}", d.message()),
            other => format!("the query failed: {other}"),
        })?;
        Ok(super::truncate(&answer?, MAX_ANSWER))
    }
}

async fn run(pool: &PgPool, sql: &str) -> Result<Result<String, String>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("set transaction read only")
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!(
        "set local statement_timeout = {STATEMENT_TIMEOUT_MS}"
    ))
    .execute(&mut *tx)
    .await?;
    let mut rows = Vec::new();
    let mut more = false;
    {
        // One statement: the extended protocol refuses several.
        let mut stream = sqlx::query(sql).persistent(false).fetch(&mut *tx);
        while let Some(row) = stream.try_next().await? {
            if rows.len() == MAX_ROWS {
                more = true;
                break;
            }
            rows.push(row);
        }
    }
    tx.rollback().await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        match to_json(row) {
            Ok(v) => out.push(v),
            Err(e) => return Ok(Err(e)),
        }
    }
    let mut text = Value::Array(out).to_string();
    if more {
        text.push_str(&format!(
            "\n[only the first {MAX_ROWS} rows; add a LIMIT or a filter]"
        ));
    }
    Ok(Ok(text))
}

/// A row as a JSON object, column by column; a type without a JSON form asks for a cast.
fn to_json(row: &PgRow) -> Result<Value, String> {
    let mut obj = Map::new();
    for (i, col) in row.columns().iter().enumerate() {
        let ty = col.type_info().name().to_ascii_uppercase();
        let value = column(row, i, &ty).map_err(|_| {
            format!(
                "column '{}' has type {ty}, which has no JSON form here; cast it (`{}::text`)",
                col.name(),
                col.name()
            )
        })?;
        obj.insert(col.name().to_owned(), value);
    }
    Ok(Value::Object(obj))
}

fn column(row: &PgRow, i: usize, ty: &str) -> Result<Value, sqlx::Error> {
    fn json<T: serde::Serialize>(v: Option<T>) -> Value {
        serde_json::to_value(v).unwrap_or(Value::Null)
    }
    Ok(match ty {
        "TEXT" | "VARCHAR" | "NAME" | "BPCHAR" | "CHAR" => {
            json(row.try_get::<Option<String>, _>(i)?)
        }
        "INT2" => json(row.try_get::<Option<i16>, _>(i)?),
        "INT4" => json(row.try_get::<Option<i32>, _>(i)?),
        "INT8" => json(row.try_get::<Option<i64>, _>(i)?),
        "FLOAT4" => json(row.try_get::<Option<f32>, _>(i)?),
        "FLOAT8" => json(row.try_get::<Option<f64>, _>(i)?),
        "BOOL" => json(row.try_get::<Option<bool>, _>(i)?),
        "UUID" => json(row.try_get::<Option<uuid::Uuid>, _>(i)?),
        "JSON" | "JSONB" => json(row.try_get::<Option<Value>, _>(i)?),
        "TEXT[]" | "VARCHAR[]" | "NAME[]" => json(row.try_get::<Option<Vec<String>>, _>(i)?),
        "INT4[]" => json(row.try_get::<Option<Vec<i32>>, _>(i)?),
        "INT8[]" => json(row.try_get::<Option<Vec<i64>>, _>(i)?),
        "UUID[]" => json(row.try_get::<Option<Vec<uuid::Uuid>>, _>(i)?),
        "TIMESTAMPTZ" => json(
            row.try_get::<Option<time::OffsetDateTime>, _>(i)?
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                }),
        ),
        "VOID" => Value::Null,
        _ => return Err(sqlx::Error::ColumnNotFound(ty.to_owned())),
    })
}

/// The role of this database: one per database, so installations sharing a cluster never
/// share a password or read each other's views.
async fn role_name(admin: &PgPool) -> Result<String, sqlx::Error> {
    let oid: i64 =
        sqlx::query_scalar("select oid::int8 from pg_database where datname = current_database()")
            .fetch_one(admin)
            .await?;
    Ok(format!("flotilla_sql_{oid}"))
}

async fn provision(admin: &PgPool, password: &str) -> Result<PgPool, String> {
    // Quoted into DDL below, which takes no bind parameters: hex only.
    if password.is_empty() || !password.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("the derived password is not hex".into());
    }
    let role = role_name(admin).await.map_err(|e| e.to_string())?;
    // Several processes (or tests) may start at once: a concurrent CREATE or GRANT fails with
    // a duplicate or "tuple concurrently updated", and the next try sees the other's work.
    let mut tries = 0;
    loop {
        match setup(admin, &role, password).await {
            Ok(()) => break,
            Err(e) if tries < 5 => {
                tries += 1;
                tracing::debug!(error = %e, "retrying the sql_query role setup");
                tokio::time::sleep(Duration::from_millis(50 * tries)).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    let options: PgConnectOptions = admin
        .connect_options()
        .as_ref()
        .clone()
        .username(&role)
        .password(password)
        .application_name("flotilla-sql-tool")
        .options([("default_transaction_read_only", "on")]);
    PgPoolOptions::new()
        .max_connections(4)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(|e| format!("connecting as {role}: {e}"))
}

async fn setup(admin: &PgPool, role: &str, password: &str) -> Result<(), sqlx::Error> {
    let mut tx = admin.begin().await?;
    let exists: bool =
        sqlx::query_scalar("select exists (select from pg_roles where rolname = $1)")
            .bind(role)
            .fetch_one(&mut *tx)
            .await?;
    if !exists {
        sqlx::query(&format!("create role {role} login"))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(&format!(
        "alter role {role} with login nosuperuser nocreatedb nocreaterole noreplication \
         nobypassrls noinherit connection limit 16 password '{password}'"
    ))
    .execute(&mut *tx)
    .await?;
    for grant in [
        format!("grant usage on schema {VIEWS} to {role}"),
        format!("grant select on all tables in schema {VIEWS} to {role}"),
    ] {
        sqlx::query(&grant).execute(&mut *tx).await?;
    }
    tx.commit().await
}
