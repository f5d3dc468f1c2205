//! The key-encryption key (KEK): 32 random bytes that seal every org secret, taken like the
//! pepper: `VELU_SECRETS_KEY` (environment only, never a flag), else the file of
//! `--secrets-key-file` / `VELU_SECRETS_KEY_FILE`, else `<home>/secrets.key` when it
//! exists. Never generated: with none, secret operations fail closed (`config`). A key
//! file readable by group or others is refused. The text is the key in base64 (standard
//! or URL-safe, padding optional) or hex: `openssl rand -base64 32`.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

use crate::settings::Settings;
use crate::{CoreError, CoreResult};

/// The environment variable holding the KEK itself (read from the environment only).
pub const KEY_ENV: &str = "VELU_SECRETS_KEY";
/// The environment variable naming a file that holds the KEK.
pub const KEY_FILE_ENV: &str = "VELU_SECRETS_KEY_FILE";
/// The key file looked for in the data directory when nothing else is configured.
pub const DEFAULT_KEY_FILE: &str = "secrets.key";
/// Length of a KEK, in bytes.
pub const KEY_LEN: usize = 32;

/// A key-encryption key and its fingerprint. `Debug` shows the fingerprint only.
#[derive(Clone)]
pub struct Kek {
    key: [u8; KEY_LEN],
    id: String,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kek(id={}, key=<redacted>)", self.id)
    }
}

impl Kek {
    /// A KEK from its text (base64 or hex of 32 bytes); `what` names the source in errors
    /// (never the text).
    pub fn parse(text: &str, what: &str) -> CoreResult<Kek> {
        let text = text.trim();
        let decoded = [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
            .iter()
            .find_map(|e| e.decode(text).ok().filter(|b| b.len() == KEY_LEN))
            .or_else(|| hex(text).filter(|b| b.len() == KEY_LEN));
        let Some(bytes) = decoded else {
            return Err(CoreError::Config(format!(
                "{what}: the secrets key must be {KEY_LEN} random bytes in base64 or hex \
                 (generate one with `openssl rand -base64 32`)"
            )));
        };
        let mut key = [0u8; KEY_LEN];
        key.copy_from_slice(&bytes);
        Ok(Kek::from_bytes(key))
    }

    /// A KEK from raw bytes.
    pub fn from_bytes(key: [u8; KEY_LEN]) -> Kek {
        let digest = Sha256::new()
            .chain_update(b"velu secrets kek id v1\0")
            .chain_update(key)
            .finalize();
        let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Kek { key, id }
    }

    /// Reads a KEK from a file that only its owner may read.
    pub fn from_file(path: &Path) -> CoreResult<Kek> {
        let what = format!("secrets key file {}", path.display());
        let io = |e: std::io::Error| CoreError::Config(format!("{what}: {e}"));
        let meta = std::fs::metadata(path).map_err(io)?;
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(CoreError::Config(format!(
                    "{what}: readable by group or others (mode {:o}); run `chmod 600` on it",
                    mode & 0o777
                )));
            }
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        Kek::parse(&text, &what)
    }

    /// The fingerprint stored with each sealed row: 16 hex digits of a SHA-256 of the key
    /// (it tells keys apart and reveals nothing of them).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key bytes, for the cipher.
    pub(super) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.key
    }
}

fn hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// The KEK these settings name, or the `config` error's text that every secret operation
/// reports while none is usable (kept as text: the handle is built even without one).
pub(crate) fn resolve(settings: &Settings) -> Result<Kek, String> {
    let found = if let Some(text) = &settings.secrets_key {
        Kek::parse(text, KEY_ENV)
    } else if let Some(path) = &settings.secrets_key_file {
        Kek::from_file(path)
    } else {
        let path = settings.home.join(DEFAULT_KEY_FILE);
        if path.exists() {
            Kek::from_file(&path)
        } else {
            return Err(missing());
        }
    };
    found.map_err(|e| {
        e.to_string()
            .trim_start_matches("configuration: ")
            .to_owned()
    })
}

/// The message of a missing KEK.
fn missing() -> String {
    format!(
        "no secrets key: set {KEY_ENV}, or {KEY_FILE_ENV} (or --secrets-key-file) to a file \
         of mode 0600, or put one in <home>/{DEFAULT_KEY_FILE}; generate it with \
         `openssl rand -base64 32` (docs/secrets.md)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn parses_base64_and_hex_and_refuses_short_keys() {
        let b64 = STANDARD.encode([7u8; 32]);
        let a = Kek::parse(&b64, "t").unwrap();
        let b = Kek::parse(&"07".repeat(32), "t").unwrap();
        assert_eq!(a.id(), b.id());
        assert_eq!(a.id().len(), 16);
        for bad in ["", "short", &STANDARD.encode([1u8; 16]), &"zz".repeat(32)] {
            let e = Kek::parse(bad, "t").unwrap_err();
            assert_eq!(e.code(), "config");
            assert!(!e.to_string().contains(bad) || bad.is_empty());
        }
        assert_ne!(Kek::from_bytes([1; 32]).id(), Kek::from_bytes([2; 32]).id());
        assert!(!format!("{a:?}").contains(&b64));
    }

    #[test]
    fn key_files_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, STANDARD.encode([9u8; 32])).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Kek::from_file(&path).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Kek::from_file(&path).is_ok());
    }
}
