//! Sealing and opening one value: XChaCha20-Poly1305 under the KEK, a random 24-byte nonce
//! per seal, and associated data binding the org id, the name and the version, so a row
//! copied to another org or name (or an older version replayed) does not open.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use super::Kek;
use crate::{CoreError, CoreResult};

/// Length of a nonce, in bytes.
pub(super) const NONCE_LEN: usize = 24;

/// A sealed value as stored.
pub(crate) struct Sealed {
    /// The random nonce.
    pub nonce: Vec<u8>,
    /// Ciphertext and tag.
    pub ciphertext: Vec<u8>,
}

/// Where a value belongs: what the associated data binds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Binding<'a> {
    /// The org's id.
    pub org_id: &'a str,
    /// The secret's name.
    pub name: &'a str,
    /// Its version.
    pub version: i64,
}

impl Binding<'_> {
    fn aad(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(32 + self.org_id.len() + self.name.len());
        aad.extend_from_slice(b"velu org secret v1\0");
        aad.extend_from_slice(self.org_id.as_bytes());
        aad.push(0);
        aad.extend_from_slice(self.name.as_bytes());
        aad.push(0);
        aad.extend_from_slice(&self.version.to_be_bytes());
        aad
    }
}

fn cipher(kek: &Kek) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(kek.bytes().into())
}

/// Seals `value` for `at` under `kek` with a fresh random nonce.
pub(crate) fn seal(kek: &Kek, at: Binding<'_>, value: &[u8]) -> CoreResult<Sealed> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::TryRngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut nonce)
        .map_err(|e| CoreError::Config(format!("OS random generator: {e}")))?;
    let aad = at.aad();
    let ciphertext = cipher(kek)
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: value,
                aad: &aad,
            },
        )
        .map_err(|_| CoreError::internal("sealing a secret failed"))?;
    Ok(Sealed {
        nonce: nonce.to_vec(),
        ciphertext,
    })
}

/// Opens a sealed value of `at`; `None` when it does not authenticate (another key, or a
/// row moved to another org, name or version, or altered).
pub(crate) fn open(kek: &Kek, at: Binding<'_>, sealed: &Sealed) -> Option<Vec<u8>> {
    let nonce: [u8; NONCE_LEN] = sealed.nonce.as_slice().try_into().ok()?;
    let aad = at.aad();
    cipher(kek)
        .decrypt(
            &XNonce::from(nonce),
            Payload {
                msg: &sealed.ciphertext,
                aad: &aad,
            },
        )
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: Binding<'static> = Binding {
        org_id: "org-a",
        name: "TOKEN",
        version: 1,
    };

    #[test]
    fn round_trips_and_binds_org_name_version_and_key() {
        let kek = Kek::from_bytes([3; 32]);
        let sealed = seal(&kek, AT, b"hunter2").unwrap();
        assert!(!sealed.ciphertext.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(open(&kek, AT, &sealed).unwrap(), b"hunter2");
        for other in [
            Binding {
                org_id: "org-b",
                ..AT
            },
            Binding {
                name: "OTHER",
                ..AT
            },
            Binding { version: 2, ..AT },
        ] {
            assert!(open(&kek, other, &sealed).is_none(), "{other:?}");
        }
        assert!(open(&Kek::from_bytes([4; 32]), AT, &sealed).is_none());
        let again = seal(&kek, AT, b"hunter2").unwrap();
        assert_ne!(again.nonce, sealed.nonce, "a fresh nonce per seal");
        let mut bent = again;
        bent.ciphertext[0] ^= 1;
        assert!(open(&kek, AT, &bent).is_none());
    }
}
