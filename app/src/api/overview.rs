use super::AppError;
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

/// What the overview page shows about the installation itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    pub username: String,
    pub role: crate::domain::account::Role,
    pub server_version: String,
    pub database: DatabaseStatus,
    /// How many accounts exist: admins only.
    pub users: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatabaseStatus {
    pub reachable: bool,
    /// `server_version` as Postgres reports it: admins only (a build number helps an attacker
    /// more than a viewer).
    pub version: Option<String>,
    /// Round trip of a trivial query, in microseconds.
    pub latency_us: Option<u64>,
}

#[server(endpoint = "overview", input = GetUrl)]
pub async fn get_overview() -> Result<Overview, AppError> {
    use super::ssr::{context, current_user, run};
    run(async {
        let user = current_user().await?;
        let ctx = context()?;
        let started = std::time::Instant::now();
        let version: Result<String, _> =
            sqlx::query_scalar!(r#"select current_setting('server_version') as "v!""#)
                .fetch_one(&ctx.pool)
                .await;
        let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let database = match version {
            Ok(v) => DatabaseStatus {
                reachable: true,
                version: Some(v),
                latency_us: Some(latency_us),
            },
            Err(e) => {
                tracing::warn!(error = %e, "database check failed");
                DatabaseStatus {
                    reachable: false,
                    version: None,
                    latency_us: None,
                }
            }
        };
        let admin = user.role == crate::domain::account::Role::Admin;
        let database = DatabaseStatus {
            version: database.version.filter(|_| admin),
            ..database
        };
        let users = if database.reachable && admin {
            Some(crate::db::users::count(&ctx.pool).await?)
        } else {
            None
        };
        Ok(Overview {
            username: user.username,
            role: user.role,
            server_version: env!("CARGO_PKG_VERSION").to_owned(),
            database,
            users,
        })
    })
    .await
}
