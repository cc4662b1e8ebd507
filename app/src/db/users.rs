//! The `users` table.

use crate::domain::account::{Role, User, UserId, Username};
use sqlx::{PgExecutor, postgres::PgDatabaseError};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum UserDbError {
    #[error("a user named '{0}' already exists")]
    UsernameTaken(String),
    #[error("no such user")]
    NotFound,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// A user row including the hash, for the login path only.
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

struct Row {
    id: Uuid,
    username: String,
    role: String,
    created_at: time::OffsetDateTime,
}

impl Row {
    fn into_user(self) -> Result<User, sqlx::Error> {
        let role = self
            .role
            .parse::<Role>()
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        Ok(User {
            id: UserId(self.id),
            username: self.username,
            role,
            created_at: self.created_at,
        })
    }
}

pub async fn insert(
    db: impl PgExecutor<'_>,
    username: &Username,
    password_hash: &str,
    role: Role,
) -> Result<User, UserDbError> {
    let row = sqlx::query_as!(
        Row,
        r#"insert into users (id, username, password_hash, role)
           values ($1, $2, $3, $4::text::user_role)
           returning id, username, role::text as "role!", created_at"#,
        Uuid::new_v4(),
        username.as_str(),
        password_hash,
        role.as_str(),
    )
    .fetch_one(db)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d)
            if d.try_downcast_ref::<PgDatabaseError>()
                .and_then(|p| p.constraint())
                == Some("users_username_key") =>
        {
            UserDbError::UsernameTaken(username.to_string())
        }
        _ => UserDbError::Db(e),
    })?;
    Ok(row.into_user()?)
}

pub async fn get(db: impl PgExecutor<'_>, id: UserId) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as!(
        Row,
        r#"select id, username, role::text as "role!", created_at from users where id = $1"#,
        id.0
    )
    .fetch_optional(db)
    .await?
    .map(Row::into_user)
    .transpose()
}

pub async fn credentials(
    db: impl PgExecutor<'_>,
    username: &str,
) -> Result<Option<Credentials>, sqlx::Error> {
    let row = sqlx::query!(
        r#"select id, username, role::text as "role!", created_at, password_hash
           from users where username = $1"#,
        username
    )
    .fetch_optional(db)
    .await?;
    row.map(|r| {
        let user = Row {
            id: r.id,
            username: r.username,
            role: r.role,
            created_at: r.created_at,
        }
        .into_user()?;
        Ok(Credentials {
            user,
            password_hash: r.password_hash,
        })
    })
    .transpose()
}

pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<User>, sqlx::Error> {
    sqlx::query_as!(
        Row,
        r#"select id, username, role::text as "role!", created_at from users order by username"#
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(Row::into_user)
    .collect()
}

pub async fn set_role(
    db: impl PgExecutor<'_>,
    id: UserId,
    role: Role,
) -> Result<User, UserDbError> {
    sqlx::query_as!(
        Row,
        r#"update users set role = $2::text::user_role, updated_at = now() where id = $1
           returning id, username, role::text as "role!", created_at"#,
        id.0,
        role.as_str()
    )
    .fetch_optional(db)
    .await?
    .ok_or(UserDbError::NotFound)?
    .into_user()
    .map_err(UserDbError::Db)
}

pub async fn count(db: impl PgExecutor<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(r#"select count(*) as "n!" from users"#)
        .fetch_one(db)
        .await
}

pub async fn count_admins(db: impl PgExecutor<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(r#"select count(*) as "n!" from users where role = 'admin'"#)
        .fetch_one(db)
        .await
}
