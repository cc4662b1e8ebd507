//! `flotilla`: parse the command line, load config, start telemetry, run. Everything else is in
//! the library so tests build the very same application.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = server::cli::Cli::parse();
    let config = server::config::Config::from_env()?;
    server::telemetry::init(&config.log);
    server::cli::run(cli, config).await
}
