//! Model providers, as admins add, change and remove them (REST and the providers page). An API
//! key goes in and is sealed at once by the server's [`Sealer`]; it never comes out.

use super::{CommandError, invalid};
use crate::auth::require_role;
use crate::db::providers::{self, ProviderRow, ProviderWrite};
use crate::domain::account::{Actor, Role};
use crate::domain::provider::{
    JsonFormat, ProviderKind, check_prices, parse_api_key, parse_base_url, parse_model, parse_name,
    provider_aad,
};
pub use crate::domain::provider::{ProviderTest, ProviderView};
use crate::domain::usage::Prices;
use serde::Deserialize;
use sqlx::PgPool;
use std::collections::BTreeMap;
use uuid::Uuid;

/// Seals a secret under the process's master key (the server implements it).
pub trait Sealer: Send + Sync {
    fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8>;
}

/// What a test future answers: the test, or why the stored provider is unusable (its key does
/// not open here), in which case nothing was sent.
pub type TestFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<ProviderTest, String>> + Send>>;

/// Makes one small call of a stored provider's default model (the server implements it: the
/// model clients live there).
pub trait Tester: Send + Sync {
    fn test(&self, row: ProviderRow) -> TestFuture;
}

/// An admin's connection test of provider `id`.
pub async fn test(
    pool: &PgPool,
    actor: &Actor,
    tester: &dyn Tester,
    id: Uuid,
) -> Result<ProviderTest, CommandError> {
    let row = get(pool, actor, id).await?;
    tester.test(row).await.map_err(invalid("api_key"))
}

#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProvider {
    #[cfg_attr(feature = "ssr", schema(pattern = "^[a-z][a-z0-9_-]{0,63}$"))]
    pub name: String,
    pub kind: ProviderKind,
    /// Up to the version path: `https://openrouter.ai/api/v1`, `http://localhost:11434/v1`,
    /// `https://api.anthropic.com`.
    #[cfg_attr(
        feature = "ssr",
        schema(
            max_length = 500,
            pattern = "^https?://[A-Za-z0-9.:\\[\\]-]+(/[A-Za-z0-9._~%/-]*)?$"
        )
    )]
    pub base_url: String,
    /// Sealed at once; never shown again. Optional for a local server; an `anthropic` provider
    /// needs one.
    #[cfg_attr(
        feature = "ssr",
        schema(min_length = 1, max_length = 1000, pattern = "^[!-~]+$")
    )]
    pub api_key: Option<String>,
    #[cfg_attr(
        feature = "ssr",
        schema(min_length = 1, max_length = 200, pattern = "^[!-~]+$")
    )]
    pub default_model: String,
    #[serde(default, deserialize_with = "crate::domain::number::object_map")]
    pub prices: BTreeMap<String, Prices>,
    #[serde(default)]
    pub json_format: JsonFormat,
}

/// The fields to change; absent ones stay. `api_key: ""` removes the key.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderPatch {
    pub name: Option<String>,
    pub kind: Option<ProviderKind>,
    pub base_url: Option<String>,
    pub api_key: Option<String>,
    pub default_model: Option<String>,
    #[serde(default, deserialize_with = "crate::domain::number::object_map_opt")]
    pub prices: Option<BTreeMap<String, Prices>>,
    pub json_format: Option<JsonFormat>,
}

pub async fn view(pool: &PgPool, row: ProviderRow) -> Result<ProviderView, sqlx::Error> {
    let breaker: Option<String> = sqlx::query_scalar!(
        "select data ->> 'state' from events where type = 'provider.breaker' and subject = $1
         order by seq desc limit 1",
        format!("provider/{}", row.name)
    )
    .fetch_optional(pool)
    .await?
    .flatten();
    Ok(ProviderView {
        id: row.id,
        kind: row.kind.parse().unwrap_or(ProviderKind::OpenaiCompatible),
        json_format: row.json_format.parse().unwrap_or_default(),
        prices: serde_json::from_value(row.prices).unwrap_or_default(),
        rate_limits: serde_json::from_value(row.rate_limits).unwrap_or_default(),
        api_key_set: row.api_key_sealed.is_some(),
        breaker: breaker.unwrap_or_else(|| "closed".into()),
        name: row.name,
        base_url: row.base_url,
        default_model: row.default_model,
        rate_limits_at: row.rate_limits_at,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

pub async fn list(pool: &PgPool, actor: &Actor) -> Result<Vec<ProviderView>, CommandError> {
    require_role(actor, Role::Admin)?;
    let mut out = Vec::new();
    for row in providers::list(pool).await? {
        out.push(view(pool, row).await?);
    }
    Ok(out)
}

pub async fn get(pool: &PgPool, actor: &Actor, id: Uuid) -> Result<ProviderRow, CommandError> {
    require_role(actor, Role::Admin)?;
    Ok(providers::get(pool, id)
        .await?
        .ok_or(providers::ProviderDbError::NotFound)?)
}

/// Every field checked: the write without its key.
struct Checked {
    name: String,
    kind: ProviderKind,
    base_url: String,
    default_model: String,
    prices: BTreeMap<String, Prices>,
    json_format: JsonFormat,
}

impl Checked {
    fn new(
        name: &str,
        kind: ProviderKind,
        base_url: &str,
        default_model: &str,
        prices: BTreeMap<String, Prices>,
        json_format: JsonFormat,
    ) -> Result<Self, CommandError> {
        check_prices(&prices).map_err(invalid("prices"))?;
        Ok(Self {
            name: parse_name(name).map_err(invalid("name"))?,
            kind,
            base_url: parse_base_url(base_url).map_err(invalid("base_url"))?,
            default_model: parse_model(default_model).map_err(invalid("default_model"))?,
            prices,
            json_format,
        })
    }

    fn write(self, id: Uuid, sealed: Option<Vec<u8>>, key_version: i32) -> ProviderWrite {
        ProviderWrite {
            id,
            name: self.name,
            kind: self.kind.as_str().to_owned(),
            base_url: self.base_url,
            api_key_sealed: sealed,
            key_version,
            default_model: self.default_model,
            prices: serde_json::to_value(self.prices).unwrap_or_default(),
            json_format: self.json_format.as_str().to_owned(),
        }
    }
}

fn needs_key() -> CommandError {
    invalid("api_key")("an anthropic provider needs an api_key".into())
}

pub async fn create(
    pool: &PgPool,
    actor: &Actor,
    sealer: &dyn Sealer,
    body: NewProvider,
) -> Result<ProviderView, CommandError> {
    require_role(actor, Role::Admin)?;
    let checked = Checked::new(
        &body.name,
        body.kind,
        &body.base_url,
        &body.default_model,
        body.prices,
        body.json_format,
    )?;
    let key = body
        .api_key
        .as_deref()
        .map(parse_api_key)
        .transpose()
        .map_err(invalid("api_key"))?;
    if checked.kind == ProviderKind::Anthropic && key.is_none() {
        return Err(needs_key());
    }
    let id = Uuid::new_v4();
    let sealed = key.map(|k| sealer.seal(k.as_bytes(), &provider_aad(id, 1)));
    let mut tx = pool.begin().await?;
    let row = providers::insert(&mut tx, &checked.write(id, sealed, 1), actor).await?;
    tx.commit().await?;
    Ok(view(pool, row).await?)
}

/// Changes a provider; a new key is sealed under the next key version.
pub async fn update(
    pool: &PgPool,
    actor: &Actor,
    sealer: &dyn Sealer,
    id: Uuid,
    patch: ProviderPatch,
) -> Result<ProviderView, CommandError> {
    let row = get(pool, actor, id).await?;
    let old_prices: BTreeMap<String, Prices> =
        serde_json::from_value(row.prices.clone()).unwrap_or_default();
    let checked = Checked::new(
        patch.name.as_deref().unwrap_or(&row.name),
        patch
            .kind
            .unwrap_or_else(|| row.kind.parse().unwrap_or(ProviderKind::OpenaiCompatible)),
        patch.base_url.as_deref().unwrap_or(&row.base_url),
        patch.default_model.as_deref().unwrap_or(&row.default_model),
        patch.prices.unwrap_or(old_prices),
        patch
            .json_format
            .unwrap_or_else(|| row.json_format.parse().unwrap_or_default()),
    )?;
    let (sealed, version) = match patch.api_key.as_deref() {
        None => (row.api_key_sealed.clone(), row.key_version),
        Some("") => (None, row.key_version + 1),
        Some(raw) => {
            let key = parse_api_key(raw).map_err(invalid("api_key"))?;
            let version = row.key_version + 1;
            (
                Some(sealer.seal(key.as_bytes(), &provider_aad(id, version))),
                version,
            )
        }
    };
    if checked.kind == ProviderKind::Anthropic && sealed.is_none() {
        return Err(needs_key());
    }
    let mut tx = pool.begin().await?;
    let row = providers::update(&mut tx, &checked.write(id, sealed, version), actor).await?;
    tx.commit().await?;
    Ok(view(pool, row).await?)
}

pub async fn delete(pool: &PgPool, actor: &Actor, id: Uuid) -> Result<(), CommandError> {
    require_role(actor, Role::Admin)?;
    let mut tx = pool.begin().await?;
    providers::delete(&mut tx, id, actor).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The pattern and length bounds the OpenAPI document gives a field of [`NewProvider`].
    fn documented(field: &str) -> (regex::Regex, usize, usize) {
        let schema = serde_json::to_value(<NewProvider as utoipa::PartialSchema>::schema())
            .expect("schema serialises");
        let f = &schema["properties"][field];
        let pattern = f["pattern"].as_str().expect("a pattern");
        let bound = |k: &str, d: usize| f[k].as_u64().map_or(d, |n| n as usize);
        (
            regex::Regex::new(pattern).expect("the pattern compiles"),
            bound("minLength", 0),
            bound("maxLength", usize::MAX),
        )
    }

    fn agrees(field: &str, accepts: impl Fn(&str) -> bool, s: &str) -> Result<(), TestCaseError> {
        let (re, min, max) = documented(field);
        let promised = re.is_match(s) && (min..=max).contains(&s.chars().count());
        prop_assert_eq!(promised, accepts(s), "{} {:?}", field, s);
        Ok(())
    }

    /// Near misses: URL-ish pieces and the characters the rules turn on.
    fn urlish() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("http://".to_owned()),
            Just("https://".to_owned()),
            Just("/".to_owned()),
            Just("[".to_owned()),
            "[a-z0-9.:%~_-]{1,6}",
            any::<char>().prop_map(String::from),
            Just("@".to_owned()),
            Just("*".to_owned()),
            Just("\n".to_owned()),
        ];
        proptest::collection::vec(piece, 0..8).prop_map(|v| v.concat())
    }

    proptest! {
        /// What the document promises is exactly what the server accepts, so the fuzzer's
        /// invalid bodies are refused and its valid ones taken.
        #[test]
        fn provider_fields_accept_exactly_their_documented_patterns(
            s in urlish(),
            valid in "https?://[A-Za-z0-9.:\\[\\]-]{1,20}(/[A-Za-z0-9._~%/-]{0,20})?",
            text in "\\PC{0,12}",
        ) {
            for s in [&s, &valid, &text] {
                agrees("base_url", |s| parse_base_url(s).is_ok(), s)?;
                agrees("default_model", |s| parse_model(s).is_ok(), s)?;
                agrees("api_key", |s| parse_api_key(s).is_ok(), s)?;
                agrees("name", |s| parse_name(s).is_ok() || s == "simulated", s)?;
            }
        }
    }
}
