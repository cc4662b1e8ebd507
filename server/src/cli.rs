//! The `flotilla` command line.

use crate::config::Config;
use crate::embedded_pg::{EmbeddedPostgres, StartOptions};
use crate::startup::{Application, Database};
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "flotilla", version, about = "Multi-agent orchestration")]
pub struct Cli {
    #[command(flatten)]
    pub settings: crate::config::Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the web app (the default). Without DATABASE_URL, starts a private Postgres.
    Serve,
    /// Run only the engine (planner, delegation daemon, agent worker) against DATABASE_URL;
    /// start as many as you like, on any machine that reaches the database.
    Worker,
    /// Apply database migrations and exit.
    Migrate,
    /// Run only a private Postgres cluster in the foreground (for tests and development) and
    /// write its base URL to a file; stops the cluster on Ctrl-C or SIGTERM.
    Postgres {
        /// Where the cluster lives.
        #[arg(long)]
        data_dir: PathBuf,
        /// File that receives the `postgres://…` URL of the `postgres` database once ready.
        #[arg(long)]
        url_file: PathBuf,
        /// Disable durability (fsync etc.): throwaway test clusters only.
        #[arg(long)]
        unsafe_fast: bool,
    },
    #[command(flatten)]
    Client(crate::client::ClientCommand),
}

pub async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let db = Database::connect(&config).await?;
            let app = Application::build(config, db).await?;
            app.announce();
            app.run_until_stopped(crate::startup::shutdown_signal())
                .await
        }
        Command::Worker => {
            let db = Database::connect(&config).await?;
            crate::startup::migrate(&db.pool).await?;
            let key =
                crate::secrets::MasterKey::load(config.secret_key.as_ref(), &config.data_dir)?;
            key.verify(&db.pool).await?;
            let engine_config = crate::engine::EngineConfig {
                master_key: Some(key),
                ..config.engine.clone()
            };
            let engine = crate::engine::Engine::register(db.pool.clone(), engine_config).await?;
            tracing::info!(worker = %engine.worker_id, "worker started");
            let stop = tokio_util::sync::CancellationToken::new();
            let handle = engine.spawn(stop.clone());
            crate::startup::shutdown_signal().await;
            stop.cancel();
            let _ = handle.await;
            db.close().await
        }
        Command::Migrate => {
            let db = Database::connect(&config).await?;
            crate::startup::migrate(&db.pool).await?;
            tracing::info!("migrations applied");
            db.close().await
        }
        Command::Client(_) => Ok(()),
        Command::Postgres {
            data_dir,
            url_file,
            unsafe_fast,
        } => {
            let pg = EmbeddedPostgres::start(&data_dir, StartOptions { unsafe_fast }).await?;
            std::fs::write(&url_file, pg.url("postgres").expose_secret())?;
            tracing::info!(port = pg.port(), url_file = %url_file.display(), "postgres ready");
            crate::startup::shutdown_signal().await;
            let _ = std::fs::remove_file(&url_file);
            Ok(pg.stop().await?)
        }
    }
}
