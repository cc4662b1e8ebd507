//! Where the CLI keeps its server URL and API token: `$XDG_CONFIG_HOME/flotilla/credentials.json`
//! (else `~/.config/…`), mode 600. `FLOTILLA_URL` and `FLOTILLA_TOKEN` override it.

use super::ClientError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub url: String,
    pub token: String,
}

fn path() -> Result<PathBuf, ClientError> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .ok_or_else(|| ClientError::Usage("set HOME or XDG_CONFIG_HOME".into()))?;
    Ok(base.join("flotilla").join("credentials.json"))
}

/// Saves `c`, readable by the user alone.
pub fn save(c: &Credentials) -> Result<PathBuf, ClientError> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let path = path()?;
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)?;
    f.write_all(
        serde_json::to_string_pretty(c)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    Ok(path)
}

/// The server and token to use: the environment first, then the saved file.
pub fn load() -> Result<Credentials, ClientError> {
    let saved = path()
        .ok()
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice::<Credentials>(&b).ok());
    let url = std::env::var("FLOTILLA_URL")
        .ok()
        .or_else(|| saved.as_ref().map(|s| s.url.clone()));
    let token = std::env::var("FLOTILLA_TOKEN")
        .ok()
        .or_else(|| saved.as_ref().map(|s| s.token.clone()));
    match (url, token) {
        (Some(url), Some(token)) => Ok(Credentials {
            url: url.trim_end_matches('/').to_owned(),
            token,
        }),
        _ => Err(ClientError::Unauthorised(
            "no server and token configured".into(),
        )),
    }
}
