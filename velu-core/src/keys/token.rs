//! The API key format: `velu_k1_<kid>_<secret><checksum>`.
//!
//! * `kid`: 16 random base62 characters, public; the indexed lookup handle, shown in
//!   listings, logs and the audit trail.
//! * `secret`: 43 base62 characters from the OS RNG (256 bits).
//! * `checksum`: CRC32 of everything before it, as 6 base62 characters, so a mistyped or
//!   made-up key is refused before any database or hashing work (as GitHub tokens do).
//!
//! The `velu_k1_` prefix lets secret scanners find leaked keys. Keys are printed once and
//! never stored: [`Token`] has no `Debug` that shows the secret.

use rand::TryRngCore;
use rand::distr::{Alphanumeric, SampleString};
use rand::rngs::OsRng;

/// Every v1 key starts with this.
pub const PREFIX: &str = "velu_k1_";
/// Length of the key id.
pub const KID_LEN: usize = 16;
/// Length of the secret.
pub const SECRET_LEN: usize = 43;
const CHECKSUM_LEN: usize = 6;
/// Total length of a v1 key.
pub const TOKEN_LEN: usize = PREFIX.len() + KID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A parsed v1 key: its public id and its secret.
pub struct Token {
    /// The public key id.
    pub kid: String,
    /// The secret part (never logged).
    pub secret: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("kid", &self.kid)
            .field("secret", &"<redacted>")
            .finish()
    }
}

fn random_base62(len: usize) -> String {
    Alphanumeric.sample_string(&mut OsRng.unwrap_err(), len)
}

/// A fresh random key id.
pub fn new_kid() -> String {
    random_base62(KID_LEN)
}

/// A fresh random secret.
pub fn new_secret() -> String {
    random_base62(SECRET_LEN)
}

/// The full key text for `kid` and `secret`.
pub fn format(kid: &str, secret: &str) -> String {
    let body = format!("{PREFIX}{kid}_{secret}");
    let sum = checksum(&body);
    body + &sum
}

fn checksum(body: &str) -> String {
    let mut n = crc32fast::hash(body.as_bytes());
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).expect("base62 is ASCII")
}

/// Parses a v1 key, checking length, alphabet and checksum. `None` for anything else,
/// including text that is not ASCII (never a panic: slicing below is by byte).
pub fn parse(text: &str) -> Option<Token> {
    if text.len() != TOKEN_LEN || !text.is_ascii() || !text.starts_with(PREFIX) {
        return None;
    }
    let rest = &text[PREFIX.len()..];
    let (kid, rest) = rest.split_at(KID_LEN);
    let rest = rest.strip_prefix('_')?;
    let (secret, sum) = rest.split_at(SECRET_LEN);
    let base62 = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
    if !base62(kid) || !base62(secret) || !base62(sum) {
        return None;
    }
    let body = &text[..text.len() - CHECKSUM_LEN];
    if checksum(body) != sum {
        return None;
    }
    Some(Token {
        kid: kid.to_owned(),
        secret: secret.to_owned(),
    })
}

/// True when `text` has the form of a key id (what [`new_kid`] makes), so a lookup by a
/// malformed id is `not_found` without touching storage.
pub fn is_kid(text: &str) -> bool {
    text.len() == KID_LEN && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// True when `text` looks like a key of the v1 format (for routing to the legacy path).
pub fn is_v1(text: &str) -> bool {
    text.starts_with(PREFIX)
}

/// A short, safe rendering of a key for logs: prefix, kid and nothing secret.
pub fn mask(kid: &str) -> String {
    format!("{PREFIX}{kid}_…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let (kid, secret) = (new_kid(), new_secret());
        let text = format(&kid, &secret);
        assert_eq!(text.len(), TOKEN_LEN);
        let t = parse(&text).expect("valid key parses");
        assert_eq!(
            (t.kid.as_str(), t.secret.as_str()),
            (kid.as_str(), secret.as_str())
        );
        assert!(
            !format!("{t:?}").contains(&secret),
            "Debug hides the secret"
        );
    }

    #[test]
    fn any_single_typo_is_caught_by_the_checksum() {
        let text = format(&new_kid(), &new_secret());
        for i in PREFIX.len()..text.len() {
            let mut bytes = text.clone().into_bytes();
            if bytes[i] == b'_' {
                continue;
            }
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(bytes).unwrap();
            assert!(parse(&typo).is_none(), "typo at {i} accepted");
        }
    }

    #[test]
    fn malformed_keys_are_refused() {
        let good = format(&new_kid(), &new_secret());
        for bad in [
            "",
            "velu_k1_",
            &good[..good.len() - 1],
            &format!("{good}x"),
            &good.replace("velu_k1_", "velu_k2_"),
            &format!("velu_k1_{}", "!".repeat(TOKEN_LEN - PREFIX.len())),
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
        // Non-ASCII of the right byte length, at every position: refused, never a panic.
        for i in PREFIX.len()..good.len() - 1 {
            let bad = format!("{}é{}", &good[..i], &good[i + 2..]);
            assert_eq!(bad.len(), TOKEN_LEN);
            assert!(parse(&bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn secrets_are_random() {
        assert_ne!(new_secret(), new_secret());
        assert_eq!(new_secret().len(), SECRET_LEN);
        assert!(new_kid().bytes().all(|b| b.is_ascii_alphanumeric()));
    }
}
