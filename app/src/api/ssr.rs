//! What every server function needs on the server: its context, the caller, and error mapping.

use super::{AppError, ErrorKind};
use crate::auth::LoginPolicy;
use crate::domain::account::User;
use axum::Extension;
use leptos::prelude::*;
use sqlx::PgPool;
use tower_sessions::Session;

/// Provided by the server to every render and server function.
#[derive(Clone)]
pub struct ServerContext {
    pub pool: PgPool,
    pub login_policy: LoginPolicy,
    /// Providers declared by environment: name and default model.
    pub declared_providers: std::sync::Arc<Vec<(String, String)>>,
    /// Seals provider API keys under the master key.
    pub sealer: std::sync::Arc<dyn crate::commands::providers::Sealer>,
    /// Connection tests of stored providers (the model clients are the server's).
    pub tester: std::sync::Arc<dyn crate::commands::providers::Tester>,
}

pub fn context() -> Result<ServerContext, AppError> {
    use_context::<ServerContext>().ok_or_else(|| AppError::internal("ServerContext not provided"))
}

pub async fn session() -> Result<Session, AppError> {
    leptos_axum::extract::<Session>()
        .await
        .map_err(|e| AppError::internal(format!("no session layer: {e}")))
}

/// The authenticated caller, put in the request by the server's auth middleware.
pub async fn current_user() -> Result<User, AppError> {
    leptos_axum::extract::<Extension<User>>()
        .await
        .map(|Extension(user)| user)
        .map_err(|_| AppError::unauthenticated())
}

/// Sets the response status from the error's kind, so a server function's failure is a 4xx
/// (or 503/500) on the wire as well as in its body.
pub fn fail(err: impl Into<AppError>) -> AppError {
    let err = err.into();
    if let Some(opts) = use_context::<leptos_axum::ResponseOptions>()
        && let Ok(status) = axum::http::StatusCode::from_u16(err.kind.status())
    {
        opts.set_status(status);
        if let Some(secs) = err.retry_after_secs {
            opts.insert_header(axum::http::header::RETRY_AFTER, secs.into());
        }
    }
    if err.kind == ErrorKind::Internal {
        tracing::debug!(message = %err.message, "server function failed");
    }
    err
}

/// Runs a server function's body and maps its error through [`fail`].
pub async fn run<T>(
    body: impl std::future::Future<Output = Result<T, AppError>>,
) -> Result<T, AppError> {
    body.await.map_err(fail)
}

/// A whole number a form posts as text; blank is `None`.
pub fn form_number(field: &str, raw: &str) -> Result<Option<i64>, AppError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse()
        .map(Some)
        .map_err(|_| AppError::invalid(format!("{field} must be a whole number")))
}
