//! What both benchmarks share: a private, durable Postgres for the length of a run.

// Each bench uses a part of this module.
#![allow(dead_code)]

use secrecy::{ExposeSecret, SecretString};
use server::embedded_pg::{EmbeddedPostgres, StartOptions, find_bin_dir};

/// Starts a private cluster (fsync on) in a temporary directory, runs `body` against it, then
/// stops the cluster and removes the directory whatever `body` returned.
pub async fn with_postgres<F, Fut>(name: &str, body: F) -> anyhow::Result<()>
where
    F: FnOnce(EmbeddedPostgres) -> Fut,
    Fut: Future<Output = (EmbeddedPostgres, anyhow::Result<()>)>,
{
    let dir = std::env::temp_dir().join(format!("flotilla-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    // When run as root the cluster belongs to `postgres`, which must reach the directory.
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let pg = EmbeddedPostgres::start(&dir, StartOptions::default()).await?;
    let (pg, result) = body(pg).await;
    pg.stop().await?;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// `pgbench` beside the cluster's binaries, with its tables initialised in a database of
/// their own; returns the binary and that database's URL.
pub async fn pgbench(pg: &EmbeddedPostgres) -> anyhow::Result<(std::path::PathBuf, SecretString)> {
    pg.ensure_database("pgbench").await?;
    let url = pg.url("pgbench");
    let bin = find_bin_dir()
        .map(|d| d.join("pgbench"))
        .filter(|p| p.is_file())
        .ok_or_else(|| anyhow::anyhow!("pgbench not found beside initdb"))?;
    let init = tokio::process::Command::new(&bin)
        .args(["-i", "-s", "1", "-q"])
        .arg(url.expose_secret())
        .output()
        .await?;
    anyhow::ensure!(
        init.status.success(),
        "pgbench -i failed: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    Ok((bin, url))
}

/// A figure from the summary of `pgbench -N` at `clients` connections: the number after
/// `prefix` (e.g. "tps = ", "latency average = ").
pub async fn pgbench_figure(
    pgbench: &std::path::Path,
    url: &str,
    clients: u32,
    secs: u64,
    prefix: &str,
) -> anyhow::Result<f64> {
    let out = tokio::process::Command::new(pgbench)
        .args([
            "-N",
            "-n",
            "-c",
            &clients.to_string(),
            "-j",
            &clients.min(2).to_string(),
            "-T",
            &secs.to_string(),
        ])
        .arg(url)
        .output()
        .await?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no {prefix:?} in pgbench output: {text}"))
}
