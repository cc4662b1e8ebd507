//! `get_state`/`set_state`: key-value state the agents of one task share, in Postgres, each
//! entry with a time to live.

use app::domain::ids::RunId;
use serde_json::Value;
use sqlx::PgPool;

/// Longest key, and the longest and default time an entry lives.
const MAX_KEY: usize = 200;
pub const DEFAULT_TTL_SECS: i64 = 24 * 3600;
const MAX_TTL_SECS: i64 = 7 * 24 * 3600;
/// The largest value, as JSON text.
const MAX_VALUE: usize = 64 * 1024;

fn key(raw: &str) -> Result<&str, String> {
    let ok = !raw.is_empty()
        && raw.len() <= MAX_KEY
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:/".contains(c));
    if ok {
        Ok(raw)
    } else {
        Err(format!(
            "a key is 1 to {MAX_KEY} characters of letters, digits and ._-:/"
        ))
    }
}

pub async fn get(pool: &PgPool, run: RunId, raw_key: &str) -> Result<String, String> {
    let key = key(raw_key)?;
    let value = sqlx::query_scalar!(
        "select value from task_state where run_id = $1 and key = $2 and expires_at > now()",
        run.0,
        key
    )
    .fetch_optional(pool)
    .await
    .map_err(|e| format!("the state could not be read: {e}"))?;
    Ok(match value {
        Some(v) => v.to_string(),
        None => format!("no value for '{key}'"),
    })
}

pub async fn set(
    pool: &PgPool,
    run: RunId,
    raw_key: &str,
    value: &Value,
    ttl_secs: Option<i64>,
) -> Result<String, String> {
    let key = key(raw_key)?;
    let ttl = ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
    if !(1..=MAX_TTL_SECS).contains(&ttl) {
        return Err(format!("ttl_secs must be 1 to {MAX_TTL_SECS}"));
    }
    app::domain::stored_json::check(value)?;
    let size = value.to_string().len();
    if size > MAX_VALUE {
        return Err(format!(
            "the value is {size} bytes of JSON, more than {MAX_VALUE}"
        ));
    }
    sqlx::query!(
        "insert into task_state (run_id, key, value, expires_at)
         values ($1, $2, $3, now() + make_interval(secs => $4))
         on conflict (run_id, key) do update
             set value = excluded.value, expires_at = excluded.expires_at, updated_at = now()",
        run.0,
        key,
        value,
        ttl as f64
    )
    .execute(pool)
    .await
    .map_err(|e| format!("the state could not be written: {e}"))?;
    Ok(format!("set '{key}' for {ttl} s"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        /// Any key a model sends is taken as it is or refused with a reason.
        #[test]
        fn any_key_is_taken_or_refused(raw in "\\PC{0,300}") {
            if let Ok(k) = super::key(&raw) {
                prop_assert_eq!(k, raw.as_str());
                prop_assert!(k.len() <= super::MAX_KEY);
            }
        }
    }
}
