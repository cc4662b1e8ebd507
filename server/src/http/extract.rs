//! Extractors whose rejections are [`ApiError`]s, so malformed bodies, query strings and path
//! ids get the same error shape (and a 4xx) as every other failure.

use super::error::ApiError;
use app::api::ErrorKind;
use app::api::error::plain_message;
use axum::extract::FromRequest;
use axum::extract::FromRequestParts;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};

#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError::new(ErrorKind::Invalid, plain_message(&rejection.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::new(ErrorKind::Invalid, plain_message(&rejection.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::new(ErrorKind::Invalid, plain_message(&rejection.body_text()))
    }
}

/// A list's `limit`: `default` when absent, refused with a reason outside `1..=max`.
pub fn page_limit(limit: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::new(
            ErrorKind::Invalid,
            format!("limit must be 1 to {max}"),
        ))
    }
}

pub use app::domain::number::integral;

/// A `cursor` query parameter as the time it stands for (pages ordered by a timestamp).
pub fn time_cursor(cursor: Option<&str>) -> Result<Option<time::OffsetDateTime>, ApiError> {
    cursor
        .map(|c| time::OffsetDateTime::parse(c, &time::format_description::well_known::Rfc3339))
        .transpose()
        .map_err(|_| ApiError::new(ErrorKind::Invalid, "cursor is not one this API returned"))
}

/// The `next_cursor` of a page of `limit` items ordered by `at`: the last item's time, or none
/// when the page was not full (it is the last).
pub fn next_time_cursor<T>(
    items: &[T],
    limit: i64,
    at: impl Fn(&T) -> time::OffsetDateTime,
) -> Option<String> {
    (items.len() == usize::try_from(limit).unwrap_or(usize::MAX))
        .then(|| items.last())
        .flatten()
        .and_then(|t| {
            at(t)
                .format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
}
