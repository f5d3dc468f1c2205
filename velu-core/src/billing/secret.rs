//! The billing secret: the key the billing system signs its events with (HMAC-SHA256).
//!
//! Taken like the pepper: `VELU_BILLING_SECRET`, else the file named by
//! `VELU_BILLING_SECRET_FILE`, which must be readable by its owner only (mode 0600 or
//! stricter: a secret others can read is refused, never used). Nothing is generated: with
//! no secret, `POST /v1/billing/events` refuses every event (fail closed).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::{CoreError, CoreResult};

/// The variable holding the billing secret (environment only: a flag would show it in the
/// process list).
pub const SECRET_ENV: &str = "VELU_BILLING_SECRET";

/// The variable naming a file that holds the billing secret (a mounted secret).
pub const SECRET_FILE_ENV: &str = "VELU_BILLING_SECRET_FILE";

/// Shortest secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// Longest secret accepted, in bytes (a file is read only up to a bound).
pub const MAX_SECRET_BYTES: usize = 1024;

/// The secret's bytes. `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct BillingSecret(Vec<u8>);

impl std::fmt::Debug for BillingSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BillingSecret(<redacted>)")
    }
}

impl BillingSecret {
    /// Checks and wraps secret text (surrounding white space is dropped).
    pub fn new(text: &str) -> CoreResult<BillingSecret> {
        let text = text.trim();
        if text.len() < MIN_SECRET_BYTES {
            return Err(CoreError::Config(format!(
                "the billing secret must be at least {MIN_SECRET_BYTES} bytes \
                 (generate one with `openssl rand -base64 48`)"
            )));
        }
        if text.len() > MAX_SECRET_BYTES {
            return Err(CoreError::Config(format!(
                "the billing secret must be at most {MAX_SECRET_BYTES} bytes"
            )));
        }
        Ok(BillingSecret(text.as_bytes().to_vec()))
    }

    /// The bytes the HMAC is keyed with.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Reads a secret file: it must exist, be a regular file readable by its owner only,
    /// and hold a secret of acceptable length.
    pub fn from_file(path: &Path) -> CoreResult<BillingSecret> {
        let io = |e: &dyn std::fmt::Display| {
            CoreError::Config(format!("billing secret file {}: {e}", path.display()))
        };
        let meta = std::fs::metadata(path).map_err(|e| io(&e))?;
        if !meta.is_file() {
            return Err(io(&"not a regular file"));
        }
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(io(&"readable by others than its owner; make it mode 0600"));
        }
        if meta.len() > MAX_SECRET_BYTES as u64 + 2 {
            return Err(io(&format!("larger than {MAX_SECRET_BYTES} bytes")));
        }
        let text = std::fs::read_to_string(path).map_err(|e| io(&e))?;
        BillingSecret::new(&text)
    }

    /// The secret of this process: [`SECRET_ENV`], else the file of [`SECRET_FILE_ENV`],
    /// else none (`Ok(None)`: billing events are then refused).
    pub fn from_env() -> CoreResult<Option<BillingSecret>> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if let Some(text) = var(SECRET_ENV) {
            return BillingSecret::new(&text).map(Some);
        }
        match var(SECRET_FILE_ENV) {
            Some(path) => BillingSecret::from_file(Path::new(&path)).map(Some),
            None => Ok(None),
        }
    }
}

/// The error for an event that arrives while no secret is configured.
pub fn missing() -> CoreError {
    CoreError::Config(format!(
        "billing events are not accepted: no billing secret ({SECRET_ENV} or {SECRET_FILE_ENV})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn short_secrets_are_refused_and_debug_redacts() {
        assert_eq!(BillingSecret::new("short").unwrap_err().code(), "config");
        let s = BillingSecret::new(&format!("  {GOOD}\n")).unwrap();
        assert_eq!(s.bytes(), GOOD.as_bytes());
        assert!(!format!("{s:?}").contains(GOOD));
    }

    #[test]
    fn files_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("billing.secret");
        std::fs::write(&path, GOOD).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = BillingSecret::from_file(&path).unwrap_err();
        assert_eq!(err.code(), "config");
        assert!(err.to_string().contains("0600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            BillingSecret::from_file(&path).unwrap().bytes(),
            GOOD.as_bytes()
        );
        assert_eq!(
            BillingSecret::from_file(&dir.path().join("none"))
                .unwrap_err()
                .code(),
            "config"
        );
        assert_eq!(
            BillingSecret::from_file(dir.path()).unwrap_err().code(),
            "config"
        );
    }
}
