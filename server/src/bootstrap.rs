//! First start: the bootstrap admin.

use crate::config::BootstrapAdmin;
use anyhow::Context;
use app::domain::account::{NewPassword, Role, Username};
use rand::Rng;
use secrecy::ExposeSecret;
use sqlx::PgPool;

/// What [`ensure_admin`] did; a generated password is returned so the caller can show it once.
#[derive(Debug, PartialEq, Eq)]
pub enum AdminBootstrap {
    /// Users already exist: nothing to do.
    Existing,
    Created {
        username: String,
        generated_password: Option<String>,
    },
}

/// Creates the bootstrap admin if the database has no users yet. The password comes from the
/// config, or is generated. Concurrent first starts are serialised by a transaction-scoped
/// advisory lock, so exactly one admin is created.
pub async fn ensure_admin(pool: &PgPool, admin: &BootstrapAdmin) -> anyhow::Result<AdminBootstrap> {
    let mut tx = pool.begin().await?;
    sqlx::query("select pg_advisory_xact_lock(hashtext('flotilla.bootstrap_admin'))")
        .execute(&mut *tx)
        .await?;
    if app::db::users::count(&mut *tx).await? > 0 {
        return Ok(AdminBootstrap::Existing);
    }
    let username = Username::parse(&admin.username).context("FLOTILLA_ADMIN_USERNAME")?;
    let (password, generated) = match &admin.password {
        Some(p) => (p.expose_secret().to_owned(), None),
        None => {
            let p: String = rand::thread_rng()
                .sample_iter(rand::distributions::Alphanumeric)
                .take(20)
                .map(char::from)
                .collect();
            (p.clone(), Some(p))
        }
    };
    let password = NewPassword::parse(password).context("FLOTILLA_ADMIN_PASSWORD")?;
    let hash = app::auth::hash_password(&password)?;
    app::db::users::insert(&mut *tx, &username, &hash, Role::Admin).await?;
    tx.commit().await?;
    Ok(AdminBootstrap::Created {
        username: username.to_string(),
        generated_password: generated,
    })
}
