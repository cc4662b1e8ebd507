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

/// The process can serve: the database answers within a second. The body also shows each
/// engine loop's health; a loop down (restarting after a panic) does not fail readiness, or a
/// poison input could take every replica's UI down and nobody could cancel it.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let ping = sqlx::query_scalar::<_, i32>("select 1").fetch_one(&state.ctx.pool);
    match tokio::time::timeout(Duration::from_secs(1), ping).await {
        Ok(Ok(_)) => {
            let loops = state.supervisor.health();
            let degraded = loops.values().any(|l| !l.up);
            Ok(Json(json!({
                "status": "ready",
                "database": "ok",
                "loops_degraded": degraded,
                "loops": loops,
            })))
        }
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
