//! `flotilla`: parse the command line, load config, start telemetry, run. Everything else is in
//! the library so tests build the very same application.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    server::install_tls_provider();
    let cli = server::cli::Cli::try_parse().unwrap_or_else(|e| {
        if e.get(clap::error::ContextKind::InvalidArg).is_some() {
            eprintln!("{}", server::config::naming_the_variable(&e));
            std::process::exit(2);
        }
        e.exit()
    });
    // Client commands talk to a server; they need none of its configuration.
    if let Some(server::cli::Command::Client(command)) = cli.command {
        std::process::exit(server::client::run(command).await as i32);
    }
    let config = server::config::Config::try_from(cli.settings.clone())?;
    server::telemetry::init(&config.log);
    server::cli::run(cli, config).await
}
