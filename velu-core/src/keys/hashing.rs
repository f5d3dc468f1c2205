//! Hashing key secrets.
//!
//! * v1 keys are stored as `hmac-sha256$<base64url>`: HMAC-SHA256 keyed with the pepper.
//!   A v1 secret is 256 random bits, so a slow hash buys nothing against guessing (it
//!   protects low-entropy passwords, not random tokens); the pepper, kept out of the
//!   database, makes a stolen table useless. Verifying costs a microsecond and no memory,
//!   so a flood of wrong secrets cannot exhaust the server (see docs/security.md).
//! * Keys issued before that are argon2id PHC strings (19 MiB, t=2, pepper as secret).
//!   They still verify, through a bounded gate in `auth/`, and are rewritten to the HMAC
//!   form on their first successful use.
//! * Keys imported from the earlier system are `legacy-sha256$<base64url>`, its own
//!   `sha256(pepper + raw)`.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::pepper::Pepper;
use crate::{CoreError, CoreResult};

/// Prefix of a stored legacy hash.
pub const LEGACY_PREFIX: &str = "legacy-sha256$";
/// Prefix of a stored v1 hash (HMAC-SHA256 with the pepper).
pub const HMAC_PREFIX: &str = "hmac-sha256$";

/// Is verifying against this stored hash expensive (argon2id, ~19 MiB and tens of ms)?
pub fn is_slow(stored: &str) -> bool {
    !stored.starts_with(HMAC_PREFIX) && !stored.starts_with(LEGACY_PREFIX)
}

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

    /// The form stored for a new v1 secret: `hmac-sha256$<base64url>`.
    pub fn hash(&self, secret: &str) -> String {
        format!("{HMAC_PREFIX}{}", URL_SAFE_NO_PAD.encode(self.mac(secret)))
    }

    fn mac(&self, secret: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.pepper.bytes())
            .expect("HMAC takes a key of any length");
        mac.update(b"velu-k1\0");
        mac.update(secret.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The argon2id PHC string for `secret` (random salt), the form keys had before the
    /// HMAC form. Costs ~19 MiB and tens of ms; kept to verify and test such keys.
    pub fn hash_argon2id(&self, secret: &str) -> CoreResult<String> {
        let hash = self
            .argon()?
            .hash_password(secret.as_bytes())
            .map_err(|e| CoreError::internal(format!("argon2: {e}")))?;
        Ok(hash.to_string())
    }

    /// Checks `secret` against a stored hash (argon2 PHC or legacy). Constant time in the
    /// comparison; a malformed stored hash never matches.
    pub fn verify(&self, secret: &str, stored: &str) -> bool {
        if let Some(b64) = stored.strip_prefix(HMAC_PREFIX) {
            let Ok(expected) = URL_SAFE_NO_PAD.decode(b64) else {
                return false;
            };
            return self.mac(secret).ct_eq(expected.as_slice()).into();
        }
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
    fn v1_hashes_are_hmac_sha256_with_the_pepper() {
        let h = hasher("pepper-one-0123456789");
        let stored = h.hash("s3cret");
        assert!(stored.starts_with(HMAC_PREFIX), "{stored}");
        assert!(!is_slow(&stored));
        assert_eq!(stored, h.hash("s3cret"), "deterministic: no salt needed");
        assert!(h.verify("s3cret", &stored));
        assert!(!h.verify("s3creT", &stored));
        assert!(!h.verify("", &stored));
        assert!(!hasher("pepper-two-0123456789").verify("s3cret", &stored));
        assert!(!h.verify("s3cret", "hmac-sha256$not*base64"));
        assert!(
            !h.verify("s3cret", "hmac-sha256$"),
            "a truncated hash never matches"
        );
    }

    #[test]
    fn argon2id_with_owasp_parameters_and_pepper() {
        let h = hasher("pepper-one-0123456789");
        let stored = h.hash_argon2id("s3cret").unwrap();
        assert!(is_slow(&stored));
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
