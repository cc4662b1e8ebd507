//! The WASM bundle, its script and the stylesheet: served from a content-hashed directory
//! (`pkg/<hash>/`, named by `pkg/BUILD`, written by `.ci/build`), precompressed (brotli, gzip)
//! when the browser accepts it, and cacheable for good — a new build is a new directory.

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use std::path::Path;
use tower_http::services::ServeDir;

/// A year, immutable: hashed names never change content.
const FOREVER: &str = "public, max-age=31536000, immutable";

/// The directory the pages link the bundle from, relative to the site root: `pkg/<hash>` for
/// a built site, `pkg` where no build has named one.
pub fn pkg_dir(site_root: &Path) -> String {
    std::fs::read_to_string(site_root.join("pkg").join("BUILD"))
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
        .map_or_else(|| "pkg".to_owned(), |h| format!("pkg/{h}"))
}

/// `/pkg/…` from the site root's `pkg/`.
pub fn service(site_root: &Path) -> Router {
    Router::new()
        .fallback_service(
            ServeDir::new(site_root.join("pkg"))
                .precompressed_br()
                .precompressed_gzip(),
        )
        .layer(axum::middleware::from_fn(cache_forever))
}

async fn cache_forever(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    if response.status().is_success() {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(FOREVER));
    }
    response
}
