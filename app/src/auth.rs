//! Authentication: argon2id hashing, throttled login with a constant-time path, and what a
//! session stores. Used by both the login server function and the REST session endpoint.

use crate::db::login_attempts::{self, RecentFailures};
use crate::db::users;
use crate::domain::account::{NewPassword, Role, User, UserId, Username};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use sqlx::PgPool;
use std::net::IpAddr;
use std::sync::OnceLock;
use tower_sessions::Session;

/// Session keys: the user, and when they logged in (for the absolute lifetime).
const SESSION_USER: &str = "user_id";
const SESSION_LOGIN_AT: &str = "login_at";

/// Limits that make online guessing slow without letting anyone lock a user out: failures are
/// counted per account *and address*, so guessing from one address never blocks the right
/// password from another, and past a limit each further try waits twice as long as the last
/// (OWASP's growing delays, not a hard lockout). Counted in Postgres, so they hold across
/// processes.
#[derive(Clone, Debug)]
pub struct LoginPolicy {
    /// Failures of one account from one address before delays start.
    pub max_failures_per_account: i64,
    /// Failures from one address, any account, before delays start.
    pub max_failures_per_ip: i64,
    /// How long failures are remembered, seconds; also the longest delay for an account.
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
    #[error("too many failed logins; try again in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
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
    // A name no account can have is counted under one key (it may hold NUL, or be huge) and
    // answered like any unknown user.
    let valid = Username::parse(username).ok();
    let username = valid
        .as_ref()
        .map_or(INVALID_USERNAME, |u| u.as_str())
        .to_owned();
    let recent = login_attempts::recent_failures(pool, &username, ip, policy.window_secs).await?;
    if let Some(retry_after_secs) = retry_after(policy, &recent) {
        tracing::warn!(%username, ?ip, retry_after_secs, "login throttled");
        return Err(LoginError::Throttled { retry_after_secs });
    }
    let creds = match valid {
        Some(_) => users::credentials(pool, &username).await?,
        None => None,
    };
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

/// The key failures with an impossible username are counted under.
const INVALID_USERNAME: &str = "(invalid username)";

/// How long until another try is allowed, if it must wait: past a limit, each failure doubles
/// the wait after it, up to `window_secs` for an account from one address and a minute for an
/// address (so a shared address is slowed, never shut out for long).
pub fn retry_after(policy: &LoginPolicy, recent: &RecentFailures) -> Option<u64> {
    let wait = |failures: i64, limit: i64, cap: f64, ago: Option<f64>| -> f64 {
        if failures < limit {
            return 0.0;
        }
        let delay = 2f64.powi(i32::try_from((failures - limit).min(30)).unwrap_or(30));
        (delay.min(cap) - ago.unwrap_or(0.0)).max(0.0)
    };
    let window = f64::from(i32::try_from(policy.window_secs).unwrap_or(i32::MAX));
    let secs = wait(
        recent.pair,
        policy.max_failures_per_account,
        window,
        recent.pair_last_ago_secs,
    )
    .max(wait(
        recent.ip,
        policy.max_failures_per_ip,
        60.0,
        recent.ip_last_ago_secs,
    ));
    // Whole seconds, rounded up: `Retry-After` takes an integer.
    (secs > 0.0).then(|| secs.ceil() as u64)
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

/// When the session's absolute lifetime ends (unix seconds), for holders that outlive a
/// request (event streams).
pub async fn session_ends_at(policy: &LoginPolicy, session: &Session) -> Result<i64, LoginError> {
    let login_at = session.get::<i64>(SESSION_LOGIN_AT).await?.unwrap_or(0);
    Ok(login_at.saturating_add(policy.absolute_lifetime_secs))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn failures(pair: i64, ip: i64, ago: f64) -> RecentFailures {
        RecentFailures {
            pair,
            pair_last_ago_secs: Some(ago),
            ip,
            ip_last_ago_secs: Some(ago),
        }
    }

    #[test]
    fn delays_start_at_the_limit_and_double_with_each_failure() {
        let p = LoginPolicy::default();
        assert_eq!(retry_after(&p, &failures(4, 4, 0.0)), None);
        assert_eq!(retry_after(&p, &failures(5, 5, 0.0)), Some(1));
        assert_eq!(retry_after(&p, &failures(7, 7, 0.0)), Some(4));
        assert_eq!(retry_after(&p, &failures(7, 7, 3.5)), Some(1));
        assert_eq!(retry_after(&p, &failures(7, 7, 4.0)), None);
    }

    #[test]
    fn waits_are_capped_by_the_window_and_the_minute() {
        let p = LoginPolicy::default();
        let window = u64::try_from(p.window_secs).unwrap();
        assert_eq!(retry_after(&p, &failures(1_000, 0, 0.0)), Some(window));
        assert_eq!(retry_after(&p, &failures(0, 1_000, 0.0)), Some(60));
    }
}
