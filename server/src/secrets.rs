//! Secrets at rest: provider API keys sealed with XChaCha20-Poly1305 under a master key from
//! `FLOTILLA_SECRET_KEY` (64 hex characters) or, on a single machine, generated once into the
//! data directory (`secret.key`, mode 600). Each sealed value is `nonce || ciphertext`, with a
//! random 24-byte nonce; the caller's associated data (a row's id and key version) binds it to
//! its row. A key-check value in the database makes a process with another master key refuse to
//! start.

use anyhow::{Context, bail};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use std::path::Path;

const NONCE: usize = 24;
const KEY_CHECK_PLAINTEXT: &[u8] = b"flotilla master key check";
const KEY_CHECK_AAD: &[u8] = b"flotilla:key-check";

#[derive(Clone)]
pub struct MasterKey(XChaCha20Poly1305);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "the sealed value does not open under this key and row (another master key, or copied from another row)"
)]
pub struct OpenError;

impl MasterKey {
    /// A secret for `label`, the same in every process holding this key: the keystream of a
    /// nonce no sealing uses (sealing draws random ones), over the label.
    pub fn derive_hex(&self, label: &str) -> String {
        let nonce = XNonce::default();
        let out = self
            .0
            .encrypt(
                &nonce,
                Payload {
                    msg: label.as_bytes(),
                    aad: b"flotilla:derive",
                },
            )
            .unwrap_or_default();
        to_hex(&out[..out.len().min(32)])
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(XChaCha20Poly1305::new(&bytes.into()))
    }

    /// The configured key, else the one in `data_dir/secret.key`, generated there on first use.
    pub fn load(configured: Option<&SecretString>, data_dir: &Path) -> anyhow::Result<Self> {
        if let Some(hex) = configured {
            return parse_hex(hex.expose_secret())
                .map(Self::from_bytes)
                .context("FLOTILLA_SECRET_KEY must be 64 hex characters (32 bytes), e.g. from `openssl rand -hex 32`");
        }
        let path = data_dir.join("secret.key");
        match std::fs::read_to_string(&path) {
            Ok(text) => parse_hex(text.trim())
                .map(Self::from_bytes)
                .with_context(|| format!("{} is not a 64-hex-character key", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut bytes);
                write_private(&path, &to_hex(&bytes))
                    .with_context(|| format!("writing the master key to {}", path.display()))?;
                tracing::info!(path = %path.display(), "generated the master key for secrets at rest");
                Ok(Self::from_bytes(bytes))
            }
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .0
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            // Encryption fails only for messages beyond 256 GiB.
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(sealed);
        out
    }

    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < NONCE {
            return Err(OpenError);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE);
        let nonce: [u8; NONCE] = nonce.try_into().map_err(|_| OpenError)?;
        self.0
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| OpenError)
    }

    /// Records the key-check value on first use; afterwards, refuses a key that cannot open it.
    pub async fn verify(&self, pool: &PgPool) -> anyhow::Result<()> {
        let sealed = self.seal(KEY_CHECK_PLAINTEXT, KEY_CHECK_AAD);
        sqlx::query!(
            "insert into secret_key_check (id, sealed) values (1, $1) on conflict (id) do nothing",
            sealed
        )
        .execute(pool)
        .await?;
        let stored = sqlx::query_scalar!("select sealed from secret_key_check where id = 1")
            .fetch_one(pool)
            .await?;
        match self.open(&stored, KEY_CHECK_AAD) {
            Ok(p) if p == KEY_CHECK_PLAINTEXT => Ok(()),
            _ => bail!(
                "this database's secrets were sealed under another master key: give this process \
                 the same FLOTILLA_SECRET_KEY (or data directory secret.key) as the others"
            ),
        }
    }
}

pub use app::domain::provider::provider_aad;

impl app::commands::providers::Sealer for MasterKey {
    fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        MasterKey::seal(self, plaintext, aad)
    }
}

fn parse_hex(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates `path` readable by its owner only, failing if it exists (two first starts race).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_its_row() {
        let key = MasterKey::from_bytes([7; 32]);
        let row = uuid::Uuid::new_v4();
        let sealed = key.seal(b"sk-secret", &provider_aad(row, 1));
        assert!(!sealed.windows(9).any(|w| w == b"sk-secret"));
        assert_eq!(
            key.open(&sealed, &provider_aad(row, 1)).unwrap(),
            b"sk-secret"
        );
        let other_row = uuid::Uuid::new_v4();
        assert_eq!(
            key.open(&sealed, &provider_aad(other_row, 1)),
            Err(OpenError)
        );
        assert_eq!(key.open(&sealed, &provider_aad(row, 2)), Err(OpenError));
        assert_eq!(
            MasterKey::from_bytes([8; 32]).open(&sealed, &provider_aad(row, 1)),
            Err(OpenError)
        );
        assert_eq!(
            key.open(&sealed[..10], &provider_aad(row, 1)),
            Err(OpenError)
        );
        // Two seals of one value differ (random nonces).
        assert_ne!(sealed, key.seal(b"sk-secret", &provider_aad(row, 1)));
    }

    #[test]
    fn keys_are_parsed_as_64_hex_characters() {
        let hex = "00ff".repeat(16);
        assert_eq!(parse_hex(&hex).unwrap()[1], 0xff);
        for bad in ["", "00", &"zz".repeat(32), &"0".repeat(63), &"é".repeat(32)] {
            assert!(parse_hex(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_generated_key_is_private_and_stable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("flotilla-key-{}", uuid::Uuid::new_v4()));
        let a = MasterKey::load(None, &dir).unwrap();
        let b = MasterKey::load(None, &dir).unwrap();
        let mode = std::fs::metadata(dir.join("secret.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let sealed = a.seal(b"x", b"ad");
        assert_eq!(b.open(&sealed, b"ad").unwrap(), b"x");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
