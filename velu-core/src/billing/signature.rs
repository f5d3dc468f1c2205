//! The signature of a billing event: `Velu-Signature: t=<unix seconds>,v1=<hex>`.
//!
//! `v1` is HMAC-SHA256, keyed with the billing secret, over the bytes of
//! `<t> + "." + <body>` (the body exactly as sent), in lower-case hex. During a rotation
//! of the secret the sender may put two `v1` values (one per secret it signs with); the
//! signature holds when any of them matches. Everything here is pure (no database), so
//! `velu-cli billing sign`/`verify` run the very code the server runs.

use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;

use super::secret::BillingSecret;
use crate::{CoreError, CoreResult};

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "Velu-Signature";

/// How far `t` may lie from the receiver's clock, in either direction, in seconds.
pub const TOLERANCE_SECS: i64 = 300;

/// Longest header value accepted, in bytes.
pub const MAX_HEADER_BYTES: usize = 512;

/// Most `v1` values one header may carry (current and next secret during a rotation).
pub const MAX_V1_VALUES: usize = 2;

/// Why a signature was refused: a closed set, named in the error's detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureFault {
    /// No `Velu-Signature` header.
    Missing,
    /// The header is not `t=<unix>,v1=<64 hex>` (at most two `v1`).
    Malformed,
    /// No `v1` matches the body and timestamp under the secret.
    Mismatch,
    /// `t` is older than the tolerance window.
    Stale,
    /// `t` is further in the future than the tolerance window.
    Future,
}

impl SignatureFault {
    /// `missing`, `malformed`, `mismatch`, `stale` or `future`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureFault::Missing => "missing",
            SignatureFault::Malformed => "malformed",
            SignatureFault::Mismatch => "mismatch",
            SignatureFault::Stale => "stale",
            SignatureFault::Future => "future",
        }
    }

    fn error(self, detail: impl std::fmt::Display) -> CoreError {
        CoreError::BadSignature {
            reason: format!("{}: {detail}", self.as_str()),
        }
    }
}

/// A signature that held, as `billing verify` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// Always `true` (a refused signature is an error).
    pub valid: bool,
    /// The header's `t`.
    pub timestamp: i64,
    /// How old `t` was at verification, in seconds (negative: ahead of this clock).
    pub age_seconds: i64,
}

/// A header value made by [`sign`], as `billing sign` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signed {
    /// The `Velu-Signature` value: `t=<timestamp>,v1=<hex>`.
    pub signature: String,
    /// The `t` it carries.
    pub timestamp: i64,
}

/// The parts of a header value.
struct Parts {
    t: i64,
    v1: Vec<[u8; 32]>,
}

fn mac(secret: &BillingSecret, t: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.bytes())
        .expect("HMAC takes keys of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

pub(super) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

fn unhex32(text: &str) -> Option<[u8; 32]> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// Signs `body` at time `t`: the `Velu-Signature` value the billing system sends.
pub fn sign(secret: &BillingSecret, t: i64, body: &[u8]) -> Signed {
    let digest = mac(secret, t, body).finalize().into_bytes();
    Signed {
        signature: format!("t={t},v1={}", hex(&digest)),
        timestamp: t,
    }
}

fn parse(header: &str) -> CoreResult<Parts> {
    let malformed = |why: &str| SignatureFault::Malformed.error(why);
    if header.len() > MAX_HEADER_BYTES {
        return Err(malformed("longer than 512 bytes"));
    }
    let mut t = None;
    let mut v1 = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            return Err(malformed("expected t=<unix seconds>,v1=<hex>"));
        };
        match key {
            "t" => {
                let ok = !value.is_empty()
                    && value.len() <= 12
                    && value.bytes().all(|b| b.is_ascii_digit());
                if t.is_some() || !ok {
                    return Err(malformed("one t, in whole unix seconds"));
                }
                t = value.parse::<i64>().ok();
            }
            "v1" => {
                let digest = unhex32(value).ok_or_else(|| malformed("v1 is 64 hex digits"))?;
                if v1.len() == MAX_V1_VALUES {
                    return Err(malformed("at most two v1 values"));
                }
                v1.push(digest);
            }
            // Other schemes are for other receivers (forward compatible), as long as the
            // header stays within its size bound.
            _ => {}
        }
    }
    match t {
        Some(t) if !v1.is_empty() => Ok(Parts { t, v1 }),
        Some(_) => Err(malformed("no v1 value")),
        None => Err(malformed("no t value")),
    }
}

/// Checks `header` (the `Velu-Signature` value, `None` when absent) against `body` at
/// time `now` (unix seconds): the signature first (`mismatch`), then the window
/// (`stale`, `future`). Every refusal is `bad_signature` naming its [`SignatureFault`].
/// The comparison is constant-time.
pub fn verify(
    secret: &BillingSecret,
    header: Option<&str>,
    body: &[u8],
    now: i64,
) -> CoreResult<Verified> {
    let header = header.ok_or_else(|| {
        SignatureFault::Missing.error(format_args!("send the {SIGNATURE_HEADER} header"))
    })?;
    let parts = parse(header)?;
    let base = mac(secret, parts.t, body);
    // Every candidate is checked (no early exit), each in constant time.
    let matched = parts
        .v1
        .iter()
        .map(|v| base.clone().verify_slice(v).is_ok())
        .fold(false, |any, ok| any | ok);
    if !matched {
        return Err(
            SignatureFault::Mismatch.error("no v1 matches HMAC-SHA256(secret, t + \".\" + body)")
        );
    }
    let age = now.saturating_sub(parts.t);
    if age > TOLERANCE_SECS {
        return Err(SignatureFault::Stale.error(format_args!(
            "t is {age} s old; the window is {TOLERANCE_SECS} s"
        )));
    }
    if age < -TOLERANCE_SECS {
        return Err(SignatureFault::Future.error(format_args!(
            "t is {} s ahead of this server's clock; the window is {TOLERANCE_SECS} s",
            -age
        )));
    }
    Ok(Verified {
        valid: true,
        timestamp: parts.t,
        age_seconds: age,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(c: char) -> BillingSecret {
        BillingSecret::new(&c.to_string().repeat(40)).unwrap()
    }

    fn reason(e: CoreError) -> String {
        assert_eq!(e.code(), "bad_signature");
        e.to_string()
    }

    #[test]
    fn a_signature_verifies_once_inside_the_window() {
        let s = secret('a');
        let body = br#"{"id":"evt_1"}"#;
        let signed = sign(&s, 1_000, body);
        assert!(signed.signature.starts_with("t=1000,v1="));
        assert_eq!(signed.signature.len(), "t=1000,v1=".len() + 64);
        let ok = verify(&s, Some(&signed.signature), body, 1_010).unwrap();
        assert_eq!((ok.timestamp, ok.age_seconds), (1_000, 10));
        assert!(verify(&s, Some(&signed.signature), body, 1_300).is_ok());
        assert!(verify(&s, Some(&signed.signature), body, 700).is_ok());
        let stale = verify(&s, Some(&signed.signature), body, 1_301).unwrap_err();
        assert!(reason(stale).contains("stale"));
        let future = verify(&s, Some(&signed.signature), body, 699).unwrap_err();
        assert!(reason(future).contains("future"));
    }

    #[test]
    fn wrong_secret_body_or_time_is_a_mismatch() {
        let body = b"{}";
        let signed = sign(&secret('a'), 1_000, body);
        for (s, b, header) in [
            (secret('b'), &body[..], signed.signature.clone()),
            (secret('a'), &b"{} "[..], signed.signature.clone()),
            (
                secret('a'),
                &body[..],
                signed.signature.replace("t=1000", "t=1001"),
            ),
        ] {
            let e = verify(&s, Some(&header), b, 1_000).unwrap_err();
            assert!(reason(e).contains("mismatch"));
        }
        // A stale forgery is still a mismatch: the window is only checked once signed.
        let e = verify(&secret('b'), Some(&signed.signature), body, 99_999).unwrap_err();
        assert!(reason(e).contains("mismatch"));
    }

    #[test]
    fn two_v1_values_cover_a_rotation() {
        let body = b"{}";
        let old = sign(&secret('a'), 5, body).signature;
        let new = sign(&secret('b'), 5, body).signature;
        let both = format!("{old},v1={}", &new["t=5,v1=".len()..]);
        assert!(verify(&secret('a'), Some(&both), body, 5).is_ok());
        assert!(verify(&secret('b'), Some(&both), body, 5).is_ok());
        assert!(verify(&secret('c'), Some(&both), body, 5).is_err());
        let three = format!("{both},v1={}", "0".repeat(64));
        assert!(
            reason(verify(&secret('a'), Some(&three), body, 5).unwrap_err()).contains("malformed")
        );
    }

    #[test]
    fn malformed_headers_are_named() {
        let s = secret('a');
        let v = "0".repeat(64);
        for bad in [
            String::new(),
            "t=1".into(),
            format!("v1={v}"),
            format!("t=,v1={v}"),
            format!("t=-5,v1={v}"),
            format!("t=1,t=1,v1={v}"),
            format!("t=1e3,v1={v}"),
            "t=1,v1=zz".into(),
            format!("t=1,v1={}", "0".repeat(63)),
            format!("t=1,v1={v}0"),
            format!("t=1\0,v1={v}"),
            format!("t=١,v1={v}"),
            format!("t=1,v1={v},x={}", "y".repeat(600)),
            format!("t=9999999999999,v1={v}"),
            "garbage".into(),
        ] {
            let e = verify(&s, Some(&bad), b"{}", 1).unwrap_err();
            assert!(reason(e).contains("malformed"), "{bad:?}");
        }
        let e = verify(&s, None, b"{}", 1).unwrap_err();
        assert!(reason(e).contains("missing"));
        // Unknown schemes are ignored; spaces after commas are fine.
        let signed = sign(&s, 1, b"{}").signature;
        assert!(verify(&s, Some(&format!("{signed}, v0=abc")), b"{}", 1).is_ok());
        assert!(verify(&s, Some(&signed.replace(',', ", ")), b"{}", 1).is_ok());
    }
}
