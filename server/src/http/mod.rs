//! The HTTP surface: pages and server functions (Leptos), the REST API, health, and the guard
//! in front of all of them.

pub mod access;
pub mod agents;
pub mod assets;
pub mod error;
pub mod events;
pub mod extract;
pub mod guard;
pub mod headers;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod providers;
pub mod runs;
pub mod serve;
pub mod session;
pub mod stream;
pub mod tasks;
pub mod tokens;
pub mod users;
pub mod workflows;

use crate::config::Config;
use app::api::ssr::ServerContext;
use app::ui::{App, shell};
use axum::Router;
use axum::routing::get;
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use std::net::SocketAddr;
use std::sync::Arc;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::PostgresStore;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub ctx: ServerContext,
    pub config: Arc<Config>,
    /// The process's shared event reader, for WebSocket streams.
    pub hub: Option<crate::event_hub::EventHub>,
    pub metrics: Arc<metrics::Metrics>,
    /// Open event streams, closed when their credentials end.
    pub streams: Arc<access::OpenStreams>,
    /// The health of this process's loops (for `/readyz`).
    pub supervisor: Arc<crate::supervisor::Supervisor>,
}

/// How long a client may take to send a request body.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The session cookie's name; over TLS it carries the `__Host-` prefix, which browsers accept
/// only with `Secure`, `Path=/` and no `Domain` (so no subdomain can set or shadow it).
pub fn session_cookie(tls: bool) -> &'static str {
    if tls {
        "__Host-flotilla_session"
    } else {
        "flotilla_session"
    }
}

pub fn router(state: AppState, store: PostgresStore, local_addr: SocketAddr) -> Router {
    let config = &state.config;
    let leptos_options = LeptosOptions::builder()
        .output_name("flotilla")
        .site_root(config.site_root.to_string_lossy().into_owned())
        .site_pkg_dir(assets::pkg_dir(&config.site_root))
        .site_addr(local_addr)
        .build();
    let pages = Router::new()
        .leptos_routes_with_context(
            &leptos_options,
            generate_route_list(App),
            {
                let ctx = state.ctx.clone();
                move || provide_context(ctx.clone())
            },
            {
                let options = leptos_options.clone();
                move || shell(options.clone())
            },
        )
        .fallback(leptos_axum::file_and_error_handler(shell))
        .with_state(leptos_options);

    let (api, _) = openapi::routes().split_for_parts();
    let api = api
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed);

    let sessions = SessionManagerLayer::new(store)
        .with_name(session_cookie(config.is_tls()))
        .with_path("/")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.is_tls())
        .with_expiry(Expiry::OnInactivity(time::Duration::seconds(
            config.session_idle_secs,
        )));

    Router::new()
        .nest_service("/pkg", assets::service(&config.site_root))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::scrape))
        .nest(openapi::PREFIX, api)
        .with_state(state.clone())
        .merge(pages)
        .layer(axum::middleware::from_fn(error::server_fn_status))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track_http,
        ))
        .layer(sessions)
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            BODY_TIMEOUT,
        ))
        .layer(axum::middleware::from_fn(limits::body_limits))
        .layer(axum::middleware::from_fn_with_state(
            config.is_tls(),
            headers::security_headers,
        ))
        .layer(TraceLayer::new_for_http())
}
