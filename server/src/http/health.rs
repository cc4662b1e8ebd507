//! Liveness and readiness, for load balancers and orchestrators (no session needed).

use super::AppState;
use super::error::ApiError;
use app::api::ErrorKind;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use std::time::Duration;

/// The process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The process can do its job: the database answers within a second.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let ping = sqlx::query_scalar::<_, i32>("select 1").fetch_one(&state.ctx.pool);
    match tokio::time::timeout(Duration::from_secs(1), ping).await {
        Ok(Ok(_)) => Ok(Json(json!({ "status": "ready", "database": "ok" }))),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database error");
            Err(ApiError::new(
                ErrorKind::Unavailable,
                "database unavailable",
            ))
        }
        Err(_) => Err(ApiError::new(
            ErrorKind::Unavailable,
            "database did not answer within 1 s",
        )),
    }
}
