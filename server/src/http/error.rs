//! `ApiError`: the REST boundary. Every failure is `{"error": {"code", "message"}}` with the
//! status of its kind; internal causes were logged where they happened and are not repeated.

use app::api::{AppError, ErrorKind};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug)]
pub struct ApiError(pub AppError);

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self(AppError::new(kind, message))
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        Self(e)
    }
}

impl From<app::auth::LoginError> for ApiError {
    fn from(e: app::auth::LoginError) -> Self {
        Self(e.into())
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({ "error": { "code": self.0.kind.code(), "message": self.0.message } });
        (status, Json(body)).into_response()
    }
}

pub async fn not_found() -> ApiError {
    ApiError::new(ErrorKind::NotFound, "no such API route")
}
