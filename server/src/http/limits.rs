//! Request bodies, refused before any handler reads them, in the JSON error shape: too large
//! (413, with the limit), of unknown length (411), or not in the encoding the route reads (415:
//! JSON for the REST API, form encoding for server functions).

use super::error::ApiError;
use app::api::ErrorKind;
use axum::extract::Request;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: u64 = 1024 * 1024;

pub async fn body_limits(req: Request, next: Next) -> Response {
    match check(&req) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

fn check(req: &Request) -> Result<(), ApiError> {
    let headers = req.headers();
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if length.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(ApiError::new(
            ErrorKind::TooLarge,
            format!("the request body is over the limit of {MAX_BODY_BYTES} bytes"),
        ));
    }
    if length.is_none() && headers.contains_key(header::TRANSFER_ENCODING) {
        return Err(ApiError::new(
            ErrorKind::LengthRequired,
            "send the request body with a Content-Length",
        ));
    }
    let writes = matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH);
    if !writes || length.unwrap_or(0) == 0 {
        return Ok(());
    }
    let path = req.uri().path();
    let expected = if path.starts_with("/api/v1/") || app::api::JSON_SERVER_FNS.contains(&path) {
        "application/json"
    } else if path.starts_with("/api/") {
        "application/x-www-form-urlencoded"
    } else {
        return Ok(());
    };
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if media_type.as_deref() == Some(expected) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            format!("send the body as {expected}"),
        ))
    }
}
