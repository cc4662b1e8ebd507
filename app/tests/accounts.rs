//! Accounts against a real Postgres: a fresh database per test.
#![cfg(feature = "ssr")]
// Tests fail loudly by design; the no-unwrap rule is for product code.
#![allow(clippy::unwrap_used)]

use app::auth::{self, LoginError, LoginPolicy};
use app::db::users::{self, UserDbError};
use app::domain::account::{NewPassword, Role, Username};
use sqlx::PgPool;
use std::net::{IpAddr, Ipv4Addr};

const IP: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));

async fn add_user(pool: &PgPool, name: &str, role: Role) -> app::domain::account::User {
    let hash =
        auth::hash_password(&NewPassword::parse("a long enough password".into()).unwrap()).unwrap();
    users::insert(pool, &Username::parse(name).unwrap(), &hash, role)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn passwords_are_stored_as_argon2id_hashes(pool: PgPool) {
    add_user(&pool, "alice", Role::Member).await;
    let hash: String =
        sqlx::query_scalar("select password_hash from users where username = 'alice'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("a long enough password"));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_taken_username_is_a_conflict_not_a_crash(pool: PgPool) {
    add_user(&pool, "alice", Role::Member).await;
    let hash = "irrelevant";
    let again = users::insert(
        &pool,
        &Username::parse("ALICE").unwrap(),
        hash,
        Role::Viewer,
    )
    .await;
    assert!(matches!(again, Err(UserDbError::UsernameTaken(name)) if name == "alice"));
}

#[sqlx::test(migrations = "../migrations")]
async fn roles_change_and_listing_is_by_name(pool: PgPool) {
    let bob = add_user(&pool, "bob", Role::Member).await;
    add_user(&pool, "alice", Role::Admin).await;
    let bob = users::set_role(&pool, bob.id, Role::Viewer).await.unwrap();
    assert_eq!(bob.role, Role::Viewer);
    let names: Vec<_> = users::list(&pool)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(users::count_admins(&pool).await.unwrap(), 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn authenticate_accepts_the_right_password_in_any_username_case(pool: PgPool) {
    add_user(&pool, "alice", Role::Member).await;
    let policy = LoginPolicy::default();
    let user = auth::authenticate(&pool, &policy, " Alice ", "a long enough password", IP)
        .await
        .unwrap();
    assert_eq!(user.username, "alice");
    let wrong = auth::authenticate(&pool, &policy, "alice", "nope", IP).await;
    assert!(matches!(wrong, Err(LoginError::BadCredentials)));
    let unknown = auth::authenticate(&pool, &policy, "nobody", "nope", IP).await;
    assert!(matches!(unknown, Err(LoginError::BadCredentials)));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_success_resets_the_account_count_but_not_the_address_count(pool: PgPool) {
    add_user(&pool, "alice", Role::Member).await;
    let policy = LoginPolicy {
        max_failures_per_account: 2,
        max_failures_per_ip: 3,
        ..Default::default()
    };
    for _ in 0..1 {
        let _ = auth::authenticate(&pool, &policy, "alice", "nope", IP).await;
    }
    auth::authenticate(&pool, &policy, "alice", "a long enough password", IP)
        .await
        .unwrap();
    let failures = app::db::login_attempts::recent_failures(&pool, "alice", IP, 900)
        .await
        .unwrap();
    assert_eq!(failures.pair, 0);
    assert_eq!(failures.ip, 1);
    for _ in 0..2 {
        let _ = auth::authenticate(&pool, &policy, "bob", "nope", IP).await;
    }
    let throttled = auth::authenticate(&pool, &policy, "alice", "a long enough password", IP).await;
    assert!(
        matches!(throttled, Err(LoginError::Throttled { .. })),
        "3 failures from one address"
    );
    let elsewhere = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)));
    auth::authenticate(&pool, &policy, "alice", "a long enough password", elsewhere)
        .await
        .expect("another address is not throttled");
}

#[sqlx::test(migrations = "../migrations")]
async fn old_attempts_are_pruned(pool: PgPool) {
    app::db::login_attempts::record(&pool, "alice", IP, false)
        .await
        .unwrap();
    sqlx::query("update login_attempts set at = now() - interval '1 hour'")
        .execute(&pool)
        .await
        .unwrap();
    app::db::login_attempts::record(&pool, "alice", IP, false)
        .await
        .unwrap();
    assert_eq!(app::db::login_attempts::prune(&pool, 900).await.unwrap(), 1);
    let left = app::db::login_attempts::recent_failures(&pool, "alice", IP, 900)
        .await
        .unwrap();
    assert_eq!(left.pair, 1);
}
