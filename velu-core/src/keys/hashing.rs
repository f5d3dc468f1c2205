//! Hashing key secrets: argon2id with the pepper as its secret, plus the earlier system's
//! `sha256(pepper + raw)` for imported keys.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::pepper::Pepper;
use crate::{CoreError, CoreResult};

/// Prefix of a stored legacy hash.
pub const LEGACY_PREFIX: &str = "legacy-sha256$";

/// OWASP's argon2id parameters: 19 MiB, two passes, one lane.
fn params() -> Params {
    Params::new(19 * 1024, 2, 1, None).expect("static argon2 parameters are valid")
}

/// Hashes and verifies key secrets with one pepper.
#[derive(Clone, Debug)]
pub struct KeyHasher {
    pepper: Pepper,
}

impl KeyHasher {
    /// A hasher for `pepper`.
    pub fn new(pepper: Pepper) -> KeyHasher {
        KeyHasher { pepper }
    }

    fn argon(&self) -> CoreResult<Argon2<'_>> {
        Argon2::new_with_secret(
            self.pepper.bytes(),
            Algorithm::Argon2id,
            Version::V0x13,
            params(),
        )
        .map_err(|e| CoreError::Config(format!("pepper unusable by argon2: {e}")))
    }

    /// The PHC string to store for `secret` (random salt). Costs ~19 MiB and tens of ms.
    pub fn hash(&self, secret: &str) -> CoreResult<String> {
        let hash = self
            .argon()?
            .hash_password(secret.as_bytes())
            .map_err(|e| CoreError::internal(format!("argon2: {e}")))?;
        Ok(hash.to_string())
    }

    /// Checks `secret` against a stored hash (argon2 PHC or legacy). Constant time in the
    /// comparison; a malformed stored hash never matches.
    pub fn verify(&self, secret: &str, stored: &str) -> bool {
        if let Some(legacy) = stored.strip_prefix(LEGACY_PREFIX) {
            let ours = self.legacy_digest(secret);
            return ours.as_bytes().ct_eq(legacy.as_bytes()).into();
        }
        match self.argon() {
            Ok(argon) => argon.verify_password(secret.as_bytes(), stored).is_ok(),
            Err(_) => false,
        }
    }

    /// A fast keyed digest of a secret, for the in-process verification cache: equal
    /// only for the same secret under the same pepper.
    pub fn cache_digest(&self, secret: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"velu-cache\0");
        h.update(self.pepper.bytes());
        h.update(b"\0");
        h.update(secret.as_bytes());
        h.finalize().into()
    }

    /// The earlier system's hash: base64url(sha256(pepper ++ raw.trim())), unpadded.
    pub fn legacy_digest(&self, raw: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.pepper.bytes());
        h.update(raw.trim().as_bytes());
        URL_SAFE_NO_PAD.encode(h.finalize())
    }

    /// The stored form of a legacy hash.
    pub fn legacy_stored(digest: &str) -> String {
        format!("{LEGACY_PREFIX}{digest}")
    }
}

/// Checks that an imported legacy hash is base64url of 32 bytes.
pub fn validate_legacy_digest(digest: &str) -> CoreResult<()> {
    match URL_SAFE_NO_PAD.decode(digest.trim_end_matches('=')) {
        Ok(bytes) if bytes.len() == 32 => Ok(()),
        _ => Err(CoreError::invalid(
            "hash",
            "expected the earlier system's sha256 hash: 43 base64url characters",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher(p: &str) -> KeyHasher {
        KeyHasher::new(Pepper::new(p.as_bytes()))
    }

    #[test]
    fn argon2id_with_owasp_parameters_and_pepper() {
        let h = hasher("pepper-one-0123456789");
        let stored = h.hash("s3cret").unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(h.verify("s3cret", &stored));
        assert!(!h.verify("s3creT", &stored));
        assert!(
            !hasher("pepper-two-0123456789").verify("s3cret", &stored),
            "pepper matters"
        );
        assert!(!h.verify("s3cret", "garbage"));
    }

    #[test]
    fn legacy_hash_matches_the_earlier_system() {
        // base64url(sha256("pep" + "velu_abc")) computed independently with Python:
        // base64.urlsafe_b64encode(hashlib.sha256(b"pepvelu_abc").digest()).rstrip(b"=")
        let h = hasher("pep");
        let digest = h.legacy_digest("  velu_abc \n");
        assert_eq!(digest, "dWXNI2B0z5iIemSU6lzlCx-hdPAKTCXvjd6ovi5COUE");
        assert!(h.verify("velu_abc", &KeyHasher::legacy_stored(&digest)));
        assert!(validate_legacy_digest(&digest).is_ok());
        assert!(validate_legacy_digest("short").is_err());
    }
}
