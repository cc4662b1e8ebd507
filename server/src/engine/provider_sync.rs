//! Providers admins manage live in the database. Each engine registers them at start and
//! again whenever the set changes (checked every few seconds), and stores the rate-limit
//! figures its calls saw.

use super::Engine;
use super::provider::{Endpoint, ProviderConfig};
use crate::llm::openai::{JsonFormat, OpenAiConfig};
use crate::secrets::{MasterKey, provider_aad};
use app::db::providers::ProviderRow;
use app::domain::provider::ProviderKind;
use app::domain::usage::Prices;
use secrecy::SecretString;
use std::collections::HashMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often an engine looks for changed providers.
const SYNC_EVERY: Duration = Duration::from_secs(3);

/// The client configuration of a stored provider, its key opened with `key`.
pub fn config_from_row(row: &ProviderRow, key: &MasterKey) -> Result<ProviderConfig, String> {
    let api_key = row
        .api_key_sealed
        .as_ref()
        .map(|sealed| {
            key.open(sealed, &provider_aad(row.id, row.key_version))
                .map_err(|e| e.to_string())
                .and_then(|p| String::from_utf8(p).map_err(|_| "the key is not text".to_owned()))
        })
        .transpose()?;
    let prices: HashMap<String, Prices> =
        serde_json::from_value(row.prices.clone()).map_err(|e| format!("prices: {e}"))?;
    let kind: ProviderKind = row.kind.parse()?;
    let endpoint = match kind {
        ProviderKind::Anthropic => Endpoint::Anthropic {
            base_url: row.base_url.clone(),
            api_key: SecretString::from(api_key.ok_or("an Anthropic provider needs an API key")?),
        },
        ProviderKind::OpenaiCompatible => Endpoint::OpenAi(OpenAiConfig {
            base_url: row.base_url.clone(),
            api_key: api_key.map(SecretString::from),
            extra_headers: Vec::new(),
            json_format: match row.json_format.as_str() {
                "json_object" => JsonFormat::JsonObject,
                _ => JsonFormat::JsonSchema,
            },
        }),
    };
    Ok(ProviderConfig {
        name: row.name.clone(),
        endpoint,
        default_model: row.default_model.clone(),
        prices,
    })
}

impl Engine {
    /// Registers the stored providers if they changed since `seen` (a version string).
    pub async fn sync_providers(&self, seen: &mut Option<String>) -> anyhow::Result<()> {
        let Some(key) = &self.config.master_key else {
            return Ok(());
        };
        let version = app::db::providers::version(&self.pool).await?;
        if seen.as_deref() == Some(version.as_str()) {
            return Ok(());
        }
        let rows = app::db::providers::list(&self.pool).await?;
        let mut configs = Vec::with_capacity(rows.len());
        for row in &rows {
            match config_from_row(row, key) {
                Ok(c) => configs.push(c),
                Err(e) => {
                    tracing::error!(provider = %row.name, error = %e, "a stored provider cannot be used")
                }
            }
        }
        for (name, e) in self.providers.replace_managed(&configs) {
            tracing::error!(provider = %name, error = %e, "a stored provider cannot be used");
        }
        *seen = Some(version);
        Ok(())
    }

    pub(super) async fn provider_loop(self, shutdown: CancellationToken) {
        let mut seen = None;
        loop {
            if let Err(e) = self.sync_providers(&mut seen).await {
                tracing::warn!(error = %e, "could not read the providers");
            }
            for (name, limits) in self.providers.take_rate_limits() {
                let limits = serde_json::to_value(limits).unwrap_or_default();
                if let Err(e) =
                    app::db::providers::store_rate_limits(&self.pool, &name, &limits).await
                {
                    tracing::warn!(provider = %name, error = %e, "could not store rate limits");
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(SYNC_EVERY) => {}
            }
        }
    }
}
