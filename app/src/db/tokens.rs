//! The `api_tokens` table: bearer tokens for scripts. Only a SHA-256 of each secret is stored,
//! so a database leak does not leak usable tokens; a fast hash is fine for 256-bit random input.

use crate::domain::account::{User, UserId};
use rand::Rng;
use sha2::{Digest, Sha256};
use sqlx::PgExecutor;
use uuid::Uuid;

/// A freshly created token: the secret is shown once and never stored.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CreatedToken {
    pub id: Uuid,
    pub name: String,
    pub token: String,
}

const PREFIX: &str = "flt_";

fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

pub async fn create(
    db: impl PgExecutor<'_>,
    user: UserId,
    name: &str,
) -> Result<CreatedToken, sqlx::Error> {
    let secret: String = rand::thread_rng()
        .sample_iter(rand::distributions::Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    let token = format!("{PREFIX}{secret}");
    let id = Uuid::new_v4();
    sqlx::query!(
        "insert into api_tokens (id, user_id, name, token_hash) values ($1, $2, $3, $4)",
        id,
        user.0,
        name,
        digest(&token)
    )
    .execute(db)
    .await?;
    Ok(CreatedToken {
        id,
        name: name.to_owned(),
        token,
    })
}

/// A live token as presented: whose it is, and which.
#[derive(Debug, Clone)]
pub struct TokenUse {
    pub user: User,
    pub id: Uuid,
    pub name: String,
}

/// The user behind a live token, and the token, noting its use.
pub async fn authenticate(
    db: impl PgExecutor<'_>,
    token: &str,
) -> Result<Option<TokenUse>, sqlx::Error> {
    if !token.starts_with(PREFIX) {
        return Ok(None);
    }
    let row = sqlx::query!(
        r#"with hit as (
               update api_tokens set last_used_at = now()
               where token_hash = $1 and revoked_at is null returning id, user_id, name)
           select u.id, u.username, u.role::text as "role!", u.created_at, hit.id as token_id,
                  hit.name as token_name
           from users u join hit on hit.user_id = u.id"#,
        digest(token)
    )
    .fetch_optional(db)
    .await?;
    Ok(row.and_then(|r| {
        let user = User {
            id: UserId(r.id),
            username: r.username,
            role: r.role.parse().ok()?,
            created_at: r.created_at,
        };
        Some(TokenUse {
            user,
            id: r.token_id,
            name: r.token_name,
        })
    }))
}

/// Revokes a token of `user` (admins may revoke anyone's). Returns whether one was revoked.
pub async fn revoke(
    db: impl PgExecutor<'_>,
    id: Uuid,
    user: UserId,
    is_admin: bool,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        r#"update api_tokens set revoked_at = now()
           where id = $1 and revoked_at is null and (user_id = $2 or $3)"#,
        id,
        user.0,
        is_admin
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}
