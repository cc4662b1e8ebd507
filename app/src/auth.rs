//! Authentication: argon2id hashing, throttled login with a constant-time path, and what a
//! session stores. Used by both the login server function and the REST session endpoint.

use crate::db::{login_attempts, users};
use crate::domain::account::{NewPassword, Role, User, UserId};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use sqlx::PgPool;
use std::net::IpAddr;
use std::sync::OnceLock;
use tower_sessions::Session;

/// Session keys: the user, and when they logged in (for the absolute lifetime).
const SESSION_USER: &str = "user_id";
const SESSION_LOGIN_AT: &str = "login_at";

/// Limits that make online guessing slow. Counted in Postgres, so they hold across processes.
#[derive(Clone, Debug)]
pub struct LoginPolicy {
    pub max_failures_per_account: i64,
    pub max_failures_per_ip: i64,
    pub window_secs: i64,
    /// A session lives at most this long after login, however active.
    pub absolute_lifetime_secs: i64,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        Self {
            max_failures_per_account: 5,
            max_failures_per_ip: 20,
            window_secs: 15 * 60,
            absolute_lifetime_secs: 12 * 60 * 60,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("wrong username or password")]
    BadCredentials,
    #[error("too many failed logins; try again in a few minutes")]
    Throttled,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("session store failed: {0}")]
    Session(#[from] tower_sessions::session::Error),
    #[error("password hashing failed: {0}")]
    Hash(argon2::password_hash::Error),
}

fn hasher() -> Argon2<'static> {
    // OWASP's argon2id floor (19 MiB, 2 passes, 1 lane) keeps a login under ~50 ms on 2 cores.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_password(password: &NewPassword) -> Result<String, LoginError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    hasher()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(LoginError::Hash)
}

fn verify(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            hasher()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash of nothing in particular, verified against when the username is unknown so that the
/// answer takes as long as for a real account (no user enumeration by timing). It is a constant
/// derived once per process, which is why a static is acceptable here.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        NewPassword::parse("flotilla-timing-equaliser".into())
            .ok()
            .and_then(|p| hash_password(&p).ok())
            .unwrap_or_default()
    })
}

/// Checks a username and password, counting the attempt. Unknown users and wrong passwords are
/// indistinguishable to the caller, in answer and in time.
pub async fn authenticate(
    pool: &PgPool,
    policy: &LoginPolicy,
    username: &str,
    password: &str,
    ip: Option<IpAddr>,
) -> Result<User, LoginError> {
    let username = username.trim().to_lowercase();
    let recent = login_attempts::recent_failures(pool, &username, ip, policy.window_secs).await?;
    if recent.for_username >= policy.max_failures_per_account
        || recent.for_ip >= policy.max_failures_per_ip
    {
        tracing::warn!(%username, ?ip, "login throttled");
        return Err(LoginError::Throttled);
    }
    let creds = users::credentials(pool, &username).await?;
    let hash = creds
        .as_ref()
        .map_or_else(|| dummy_hash().to_owned(), |c| c.password_hash.clone());
    let password = password.to_owned();
    // Hashing is CPU-bound: keep it off the async workers.
    let ok = tokio::task::spawn_blocking(move || verify(&password, &hash))
        .await
        .unwrap_or(false);
    let user = creds.filter(|_| ok).map(|c| c.user);
    login_attempts::record(pool, &username, ip, user.is_some()).await?;
    if rand::random::<u8>() == 0 {
        login_attempts::prune(pool, policy.window_secs).await?;
    }
    user.ok_or(LoginError::BadCredentials)
}

/// Starts an authenticated session: a fresh session id (no fixation), the user and the time.
pub async fn start_session(session: &Session, user: &User) -> Result<(), LoginError> {
    session.cycle_id().await?;
    session.insert(SESSION_USER, user.id).await?;
    session
        .insert(
            SESSION_LOGIN_AT,
            time::OffsetDateTime::now_utc().unix_timestamp(),
        )
        .await?;
    Ok(())
}

/// The user behind a session, if it is authenticated and inside its absolute lifetime. An
/// expired session is deleted on the spot.
pub async fn session_user(
    pool: &PgPool,
    policy: &LoginPolicy,
    session: &Session,
) -> Result<Option<User>, LoginError> {
    let Some(id) = session.get::<UserId>(SESSION_USER).await? else {
        return Ok(None);
    };
    let login_at = session.get::<i64>(SESSION_LOGIN_AT).await?.unwrap_or(0);
    let age = time::OffsetDateTime::now_utc().unix_timestamp() - login_at;
    if age > policy.absolute_lifetime_secs {
        session.flush().await?;
        return Ok(None);
    }
    let user = users::get(pool, id).await?;
    if user.is_none() {
        session.flush().await?;
    }
    Ok(user)
}

/// Ends the session server-side: a replayed cookie finds nothing.
pub async fn end_session(session: &Session) -> Result<(), LoginError> {
    session.flush().await?;
    Ok(())
}

/// Refused: the actor's role is below what the operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this needs the {needs} role")]
pub struct Forbidden {
    pub needs: Role,
}

/// `actor` if their role is at least `min`.
pub fn require_role(actor: &User, min: Role) -> Result<(), Forbidden> {
    if actor.role >= min {
        Ok(())
    } else {
        Err(Forbidden { needs: min })
    }
}
