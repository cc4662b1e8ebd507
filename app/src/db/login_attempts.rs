//! The `login_attempts` table: the memory behind login rate limiting.

use sqlx::PgExecutor;
use std::net::IpAddr;

/// Failed attempts inside the window: of this account from this address (since its last
/// success from there), and of this address for any account; with how long ago the last was.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RecentFailures {
    pub pair: i64,
    pub pair_last_ago_secs: Option<f64>,
    pub ip: i64,
    pub ip_last_ago_secs: Option<f64>,
}

pub async fn record(
    db: impl PgExecutor<'_>,
    username: &str,
    ip: Option<IpAddr>,
    succeeded: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into login_attempts (username, client_ip, succeeded) values ($1, $2, $3)",
        username,
        ip.map(|ip| ip.to_string()),
        succeeded
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Failures inside the window. A success resets its pair's count (but not the address's, so
/// one valid account cannot be used to keep guessing others from the same address).
pub async fn recent_failures(
    db: impl PgExecutor<'_>,
    username: &str,
    ip: Option<IpAddr>,
    window_secs: i64,
) -> Result<RecentFailures, sqlx::Error> {
    let row = sqlx::query!(
        r#"with since as (select now() - make_interval(secs => $3::bigint::float8) as t),
           pair as (
               select at from login_attempts, since
               where username = $1 and client_ip is not distinct from $2 and not succeeded
                 and at > since.t
                 and at > coalesce((select max(at) from login_attempts
                                    where username = $1 and client_ip is not distinct from $2
                                      and succeeded), '-infinity')),
           addr as (
               select at from login_attempts, since
               where $2::text is not null and client_ip = $2 and not succeeded and at > since.t)
           select (select count(*) from pair) as "pair!",
                  (select extract(epoch from now() - max(at))::float8 from pair) as pair_ago,
                  (select count(*) from addr) as "ip!",
                  (select extract(epoch from now() - max(at))::float8 from addr) as ip_ago"#,
        username,
        ip.map(|ip| ip.to_string()),
        window_secs
    )
    .fetch_one(db)
    .await?;
    Ok(RecentFailures {
        pair: row.pair,
        pair_last_ago_secs: row.pair_ago,
        ip: row.ip,
        ip_last_ago_secs: row.ip_ago,
    })
}

/// Drops attempts older than the window; called from the login path now and then.
pub async fn prune(db: impl PgExecutor<'_>, window_secs: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query!(
        "delete from login_attempts where at < now() - make_interval(secs => $1::bigint::float8)",
        window_secs
    )
    .execute(db)
    .await?
    .rows_affected())
}
