//! `ApiError`: the REST boundary. Every failure is `{"error": {"code", "message"}}` with the
//! status of its kind; internal causes were logged where they happened and are not repeated.

use app::api::{AppError, ErrorKind};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

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

/// Every error the shared layers return reaches REST through the same mapping as server
/// functions ([`AppError`]'s conversions).
macro_rules! via_app_error {
    ($($ty:ty),*) => {$(
        impl From<$ty> for ApiError {
            fn from(e: $ty) -> Self {
                Self(e.into())
            }
        }
    )*};
}

via_app_error!(
    app::auth::LoginError,
    app::auth::Forbidden,
    app::commands::CommandError,
    sqlx::Error
);

/// A workflow lookup fails the way a workflow command does.
impl From<app::db::workflows::WorkflowDbError> for ApiError {
    fn from(e: app::db::workflows::WorkflowDbError) -> Self {
        Self(app::commands::CommandError::from(e).into())
    }
}

/// The body of every error response.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable; the HTTP status follows from it.
    pub code: ErrorKind,
    /// Why, for a person.
    pub message: String,
    /// The input field refused, when one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For a workflow refused by validation: every issue found.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub issues: Vec<app::domain::workflow::Issue>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.0.kind,
                message: self.0.message,
                field: self.0.field,
                issues: self.0.issues,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = self.0.retry_after_secs {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

pub async fn not_found() -> ApiError {
    ApiError::new(ErrorKind::NotFound, "no such API route")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorKind::MethodNotAllowed,
        "this route does not take that method",
    )
}

/// Gives a server function's refusal the status of its kind when it failed before its body ran.
///
/// Arguments that do not decode (a missing field, a malformed id) are refused by the server
/// function layer itself, as an [`AppError`] of kind `invalid`, but with status 500: the body,
/// which sets the status of every other refusal, never ran. Only such 500s are read back
/// (small, and rare); every other response passes untouched.
pub async fn server_fn_status(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let is_server_fn =
        request.uri().path().starts_with("/api/") && !request.uri().path().starts_with("/api/v1/");
    let response = next.run(request).await;
    if !is_server_fn || response.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
    };
    if let Ok(err) = serde_json::from_slice::<AppError>(&bytes)
        && err.kind != ErrorKind::Internal
        && let Ok(status) = StatusCode::from_u16(err.kind.status())
    {
        parts.status = status;
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

impl From<app::db::providers::ProviderDbError> for ApiError {
    fn from(e: app::db::providers::ProviderDbError) -> Self {
        use app::db::providers::ProviderDbError as E;
        match e {
            E::NameTaken(_) => ApiError::new(ErrorKind::Conflict, e.to_string()),
            E::NotFound => ApiError::new(ErrorKind::NotFound, "no such provider"),
            E::Db(e) => e.into(),
        }
    }
}
