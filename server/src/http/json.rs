//! A JSON body extractor whose rejections are [`ApiError`]s, so malformed input gets the same
//! error shape (and a 4xx) as every other failure.

use super::error::ApiError;
use app::api::ErrorKind;
use axum::extract::FromRequest;
use axum::extract::rejection::JsonRejection;

#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError::new(ErrorKind::Invalid, rejection.body_text())
    }
}
