//! Building and running the application; tests build the very same thing on port 0.

use crate::bootstrap::{AdminBootstrap, ensure_admin};
use crate::config::Config;
use crate::embedded_pg::{APP_DATABASE, EmbeddedPostgres, StartOptions};
use crate::engine::Engine;
use crate::http::{self, AppState};
use crate::supervisor::Supervisor;
use anyhow::Context;
use app::api::ssr::ServerContext;
use secrecy::ExposeSecret;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_sessions::ExpiredDeletion;
use tower_sessions_sqlx_store::PostgresStore;

/// The database, and the private cluster behind it when we started one.
pub struct Database {
    pub pool: PgPool,
    embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// `DATABASE_URL` if set; otherwise a private cluster under the data directory.
    pub async fn connect(config: &Config) -> anyhow::Result<Self> {
        let (url, embedded) = match &config.database_url {
            Some(url) => (url.clone(), None),
            None => {
                let pg = EmbeddedPostgres::start(&config.data_dir, StartOptions::default())
                    .await
                    .context("starting the embedded Postgres")?;
                (pg.url(APP_DATABASE), Some(pg))
            }
        };
        // A transaction left open holds back every event stream (see `event_hub`): the app
        // never idles inside one, so one that does is ended by the server.
        let options = url
            .expose_secret()
            .parse::<sqlx::postgres::PgConnectOptions>()
            .context("DATABASE_URL is not a PostgreSQL URL")?
            .options([("idle_in_transaction_session_timeout", "60s")]);
        let pool = PgPoolOptions::new()
            .max_connections(config.db_pool_size)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .context("connecting to the database")?;
        Ok(Self { pool, embedded })
    }

    /// Wraps a pool someone else owns (tests).
    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            pool,
            embedded: None,
        }
    }

    pub async fn close(self) -> anyhow::Result<()> {
        self.pool.close().await;
        if let Some(pg) = self.embedded {
            pg.stop().await?;
        }
        Ok(())
    }
}

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::migrate!("../migrations")
        .run(pool)
        .await
        .context("applying migrations")?;
    PostgresStore::new(pool.clone())
        .migrate()
        .await
        .context("creating the session table")?;
    Ok(())
}

pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    limits: http::serve::ConnectionLimits,
    db: Database,
    store: PostgresStore,
    bootstrap: AdminBootstrap,
    engine: Option<Engine>,
    supervisor: std::sync::Arc<Supervisor>,
    /// Stops the process's background tasks (the event hub) at shutdown.
    background: CancellationToken,
}

impl Application {
    /// Migrates, bootstraps the admin, binds the listener and assembles the routes.
    pub async fn build(mut config: Config, db: Database) -> anyhow::Result<Self> {
        migrate(&db.pool).await?;
        let key = crate::secrets::MasterKey::load(config.secret_key.as_ref(), &config.data_dir)?;
        key.verify(&db.pool).await?;
        config.engine.master_key = Some(key);
        let bootstrap = ensure_admin(&db.pool, &config.bootstrap_admin).await?;
        let (provider, model) = (
            config.engine.planner_provider.as_str(),
            config.engine.planner_model.as_str(),
        );
        let fleet = app::db::agents::ensure_default_fleet(&db.pool, provider, model).await?;
        if fleet > 0 {
            tracing::info!(agents = fleet, provider, model, "created the default fleet");
        }
        let metrics = crate::http::metrics::Metrics::new();
        let supervisor = Supervisor::new(
            db.pool.clone(),
            metrics.loop_restarts.clone(),
            metrics.loop_up.clone(),
        );
        let engine = if config.run_engine {
            Some(
                Engine::register(db.pool.clone(), config.engine.clone())
                    .await?
                    .with_observability(metrics.assignment_latency.clone(), supervisor.clone()),
            )
        } else {
            None
        };
        let listener = TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("binding {}", config.addr))?;
        let store = PostgresStore::new(db.pool.clone());
        let background = CancellationToken::new();
        let (hub, reader) = crate::event_hub::EventHub::new(
            db.pool.clone(),
            metrics.event_lag.clone(),
            metrics.event_hold.clone(),
        )
        .await?;
        tokio::spawn(supervisor.supervise("hub", background.clone(), {
            let stop = background.clone();
            move || reader.clone().run(stop.clone())
        }));
        let streams = std::sync::Arc::new(http::access::OpenStreams::default());
        tokio::spawn(supervisor.supervise("access", background.clone(), {
            let (stop, streams, pool) = (background.clone(), streams.clone(), db.pool.clone());
            move || streams.clone().run(pool.clone(), stop.clone())
        }));
        let key = config
            .engine
            .master_key
            .clone()
            .context("the master key is loaded before the routes")?;
        let state = AppState {
            streams,
            supervisor: supervisor.clone(),
            hub: Some(hub),
            ctx: ServerContext {
                pool: db.pool.clone(),
                login_policy: config.login_policy.clone(),
                sealer: std::sync::Arc::new(key.clone()),
                tester: std::sync::Arc::new(crate::engine::provider::Tester(key.clone())),
                declared_providers: std::sync::Arc::new(
                    config
                        .engine
                        .providers
                        .iter()
                        .map(|p| (p.name.clone(), p.default_model.clone()))
                        .collect(),
                ),
            },
            config: std::sync::Arc::new(config),
            metrics,
        };
        let limits = http::serve::ConnectionLimits {
            per_ip: state.config.max_connections_per_ip,
            trusted_proxies: state.config.trusted_proxies.clone(),
        };
        let router = http::router(state, store.clone(), listener.local_addr()?);
        Ok(Self {
            background,
            engine,
            supervisor,
            listener,
            router,
            limits,
            db,
            store,
            bootstrap,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The process's engine, when it runs one (tests look inside).
    pub fn engine(&self) -> Option<Engine> {
        self.engine.clone()
    }

    /// The supervisor of the process's loops.
    pub fn supervisor(&self) -> std::sync::Arc<Supervisor> {
        self.supervisor.clone()
    }

    pub fn bootstrap(&self) -> &AdminBootstrap {
        &self.bootstrap
    }

    /// Says where we are and, on first start, how to log in.
    pub fn announce(&self) {
        let url = format!("http://127.0.0.1:{}", self.port());
        tracing::info!(%url, "Flotilla is serving");
        match &self.bootstrap {
            AdminBootstrap::Created {
                username,
                generated_password: Some(password),
            } => {
                tracing::warn!(
                    %username, %password,
                    "created the bootstrap admin with a generated password; it is shown only now"
                );
            }
            AdminBootstrap::Created {
                username,
                generated_password: None,
            } => {
                tracing::info!(%username, "created the bootstrap admin from FLOTILLA_ADMIN_PASSWORD");
            }
            AdminBootstrap::Existing => {}
        }
    }

    /// Serves until `shutdown` resolves, lets in-flight requests finish, then closes the
    /// database (stopping an embedded cluster).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let sweeper = tokio::spawn(
            self.store
                .clone()
                .continuously_delete_expired(Duration::from_secs(60)),
        );
        let stop_engine = CancellationToken::new();
        let engine = self.engine.map(|e| e.spawn(stop_engine.clone()));
        let served = http::serve::serve(self.listener, self.router, self.limits, shutdown).await;
        sweeper.abort();
        tracing::info!("shutting down");
        // The engine drains (or re-queues) in-flight work before the database goes away.
        stop_engine.cancel();
        self.background.cancel();
        if let Some(engine) = engine {
            let _ = engine.await;
        }
        self.db.close().await?;
        Ok(served?)
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}
