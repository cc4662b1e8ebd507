//! What both benchmarks share: a private, durable Postgres for the length of a run.

use server::embedded_pg::{EmbeddedPostgres, StartOptions};

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
