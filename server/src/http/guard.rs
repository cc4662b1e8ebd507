//! The one gate in front of everything: cross-site request refusal, then authentication, then
//! the read-only rule for viewers. Handlers behind it find the caller as `Extension<User>`.

use super::AppState;
use super::error::ApiError;
use app::api::ErrorKind;
use app::auth;
use app::domain::account::{Actor, User};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

pub async fn guard(
    State(state): State<AppState>,
    session: Session,
    mut req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let writes = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);

    if writes && !same_origin(req.headers(), state.config.public_url.as_deref()) {
        tracing::warn!(%method, %path, "refused a cross-site state-changing request");
        return ApiError::new(ErrorKind::Forbidden, "cross-site request refused").into_response();
    }
    if is_public(&method, &path) {
        return next.run(req).await;
    }
    let (user, via) = match authenticate(&state, &session, req.headers()).await {
        Ok(Some(found)) => found,
        Ok(None) if is_api(&path) => {
            return ApiError::new(ErrorKind::Unauthenticated, "log in first").into_response();
        }
        Ok(None) => return Redirect::to(&login_url(&path)).into_response(),
        Err(e) => return e.into_response(),
    };
    if writes && !user.role.can_write() && !is_logout(&method, &path) {
        return ApiError::new(ErrorKind::Forbidden, "viewers have read-only access")
            .into_response();
    }
    let token = match &via {
        AuthVia::Token { name, .. } => Some(name.clone()),
        AuthVia::Session { .. } => None,
    };
    req.extensions_mut().insert(Actor {
        user: user.clone(),
        token,
    });
    req.extensions_mut().insert(user);
    req.extensions_mut().insert(via);
    next.run(req).await
}

/// How the caller proved who they are: what must stay valid for an open stream to stay open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthVia {
    /// The session's id, and when its absolute lifetime ends (unix seconds).
    Session { id: String, ends_at: i64 },
    /// The API token: its id, and its name (events name it).
    Token { id: uuid::Uuid, name: String },
}

/// A bearer token if one is presented (a wrong one is refused even with a session cookie),
/// otherwise the session.
async fn authenticate(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
) -> Result<Option<(User, AuthVia)>, ApiError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorKind::Unauthenticated,
                    "use Authorization: Bearer <token>",
                )
            })?;
        return match app::db::tokens::authenticate(&state.ctx.pool, token).await? {
            Some(t) => Ok(Some((
                t.user,
                AuthVia::Token {
                    id: t.id,
                    name: t.name,
                },
            ))),
            None => Err(ApiError::new(
                ErrorKind::Unauthenticated,
                "unknown or revoked API token",
            )),
        };
    }
    let policy = &state.ctx.login_policy;
    let Some(user) = auth::session_user(&state.ctx.pool, policy, session).await? else {
        return Ok(None);
    };
    let via = AuthVia::Session {
        id: session.id().map(|id| id.to_string()).unwrap_or_default(),
        ends_at: auth::session_ends_at(policy, session).await?,
    };
    Ok(Some((user, via)))
}

/// Browsers send `Origin` on every state-changing request, and `Sec-Fetch-Site` on modern ones.
/// A request without `Origin` is not from a browser page (curl, scripts), so it cannot be a
/// forged cross-site request riding on the user's cookie. Scheme, host and port must all match:
/// without a public URL this server speaks plain HTTP, so only `http://<Host>` is ours (behind
/// a TLS proxy, set `FLOTILLA_PUBLIC_URL`).
pub(super) fn same_origin(headers: &HeaderMap, public_url: Option<&str>) -> bool {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    match public_url {
        Some(public) => origin == public,
        None => headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|host| origin.strip_prefix("http://") == Some(host)),
    }
}

/// What needs no session: the login page and its call, static assets, health.
fn is_public(method: &Method, path: &str) -> bool {
    match (method, path) {
        (&Method::POST, "/api/v1/session" | "/api/login") => true,
        (&Method::GET, "/api/v1/openapi.json") => true,
        // `/metrics` is for the Prometheus scraper, like the probes; it shows counts, no content.
        (_, "/login" | "/healthz" | "/readyz" | "/metrics" | "/favicon.ico" | "/robots.txt") => {
            true
        }
        (_, p) => p.starts_with("/pkg/"),
    }
}

/// Logging out is allowed to everyone, viewers included.
fn is_logout(method: &Method, path: &str) -> bool {
    matches!(
        (method, path),
        (&Method::DELETE, "/api/v1/session") | (&Method::POST, "/api/logout")
    )
}

fn is_api(path: &str) -> bool {
    path.starts_with("/api/")
}

/// `/login?next=<path>`, with the path percent-encoded.
fn login_url(path: &str) -> String {
    let mut encoded = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("/login?next={encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn origin_must_match_the_host_or_the_public_url() {
        let host = ("host", "127.0.0.1:3000");
        assert!(same_origin(&headers(&[host]), None));
        assert!(same_origin(
            &headers(&[host, ("origin", "http://127.0.0.1:3000")]),
            None
        ));
        assert!(!same_origin(
            &headers(&[host, ("origin", "http://evil.example")]),
            None
        ));
        assert!(!same_origin(&headers(&[host, ("origin", "null")]), None));
        assert!(
            !same_origin(
                &headers(&[host, ("origin", "https://127.0.0.1:3000")]),
                None
            ),
            "the scheme counts"
        );
        let public = Some("https://flotilla.example");
        assert!(same_origin(
            &headers(&[("origin", "https://flotilla.example")]),
            public
        ));
        assert!(!same_origin(
            &headers(&[host, ("origin", "http://127.0.0.1:3000")]),
            public
        ));
    }

    #[test]
    fn cross_site_fetch_metadata_is_refused_even_without_origin() {
        assert!(!same_origin(
            &headers(&[("sec-fetch-site", "cross-site")]),
            None
        ));
        assert!(same_origin(
            &headers(&[("sec-fetch-site", "same-origin")]),
            None
        ));
    }

    #[test]
    fn only_login_assets_and_health_are_public() {
        assert!(is_public(&Method::GET, "/login"));
        assert!(is_public(&Method::GET, "/pkg/flotilla.wasm"));
        assert!(is_public(&Method::POST, "/api/v1/session"));
        assert!(!is_public(&Method::GET, "/api/v1/session"));
        assert!(!is_public(&Method::GET, "/"));
        assert!(!is_public(&Method::GET, "/users"));
        assert!(!is_public(&Method::POST, "/api/users/create"));
    }

    #[test]
    fn the_login_redirect_keeps_the_page_encoded() {
        assert_eq!(login_url("/users"), "/login?next=/users");
        assert_eq!(login_url("/a b&c"), "/login?next=/a%20b%26c");
    }
}
