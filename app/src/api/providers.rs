//! The providers page: admins list, add and remove model providers. Writes go through the same
//! commands as REST; the key is sealed on the server and never sent back.

use super::AppError;
use crate::domain::provider::ProviderView;
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

#[server(endpoint = "providers/list", input = GetUrl)]
pub async fn list_providers() -> Result<Vec<ProviderView>, AppError> {
    use super::ssr::{context, current_user, run};
    run(async {
        let me = current_user().await?;
        Ok(crate::commands::providers::list(&context()?.pool, &me.into()).await?)
    })
    .await
}

/// From the page's form: empty optional fields mean none; prices are per million tokens.
#[server(endpoint = "providers/create")]
pub async fn create_provider(
    name: String,
    kind: String,
    base_url: String,
    api_key: String,
    default_model: String,
    // `input,output[,cache_read,cache_write]` per million tokens, as the variables take them.
    prices: String,
    json_format: String,
) -> Result<ProviderView, AppError> {
    use super::ssr::{context, current_user, run};
    use crate::domain::usage::Prices;
    run(async {
        let ctx = context()?;
        let me = current_user().await?;
        let prices = if prices.trim().is_empty() {
            Prices::default()
        } else {
            Prices::parse_list(&prices).map_err(|e| AppError::invalid(e).with_field("prices"))?
        };
        let body = crate::commands::providers::NewProvider {
            kind: kind
                .parse()
                .map_err(|e: String| AppError::invalid(e).with_field("kind"))?,
            json_format: json_format
                .parse()
                .map_err(|e: String| AppError::invalid(e).with_field("json_format"))?,
            api_key: (!api_key.is_empty()).then_some(api_key),
            prices: if prices == Prices::default() {
                Default::default()
            } else {
                [(default_model.clone(), prices)].into()
            },
            name,
            base_url,
            default_model,
        };
        Ok(crate::commands::providers::create(&ctx.pool, &me.into(), &*ctx.sealer, body).await?)
    })
    .await
}

#[server(endpoint = "providers/delete")]
pub async fn delete_provider(id: uuid::Uuid) -> Result<(), AppError> {
    use super::ssr::{context, current_user, run};
    run(async {
        let me = current_user().await?;
        Ok(crate::commands::providers::delete(&context()?.pool, &me.into(), id).await?)
    })
    .await
}

/// The providers page's connection test: one small call of the default model.
#[server(endpoint = "providers/test")]
pub async fn test_provider(
    id: uuid::Uuid,
) -> Result<crate::domain::provider::ProviderTest, AppError> {
    use super::ssr::{context, current_user, run};
    run(async {
        let ctx = context()?;
        let me = current_user().await?;
        Ok(crate::commands::providers::test(&ctx.pool, &me.into(), &*ctx.tester, id).await?)
    })
    .await
}
