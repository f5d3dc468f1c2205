//! The documents every front end prints: names, versions and dates, never a value.

use serde::Serialize;

use crate::entity::org_secrets;
use crate::time::Timestamp;

/// A secret as `secret list` prints it (there is no way to read a value back).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Secret {
    /// Its name, the environment variable a job receives it as.
    pub name: String,
    /// 1 at the first set, one more at each set after.
    pub version: i64,
    /// When it was first set.
    pub created_at: Timestamp,
    /// When it was last set.
    pub updated_at: Timestamp,
}

impl Secret {
    /// The document of a row (the sealed value stays behind).
    pub(crate) fn from_model(m: &org_secrets::Model) -> Secret {
        Secret {
            name: m.name.clone(),
            version: m.version,
            created_at: m.created_at.into(),
            updated_at: m.updated_at.into(),
        }
    }
}

/// An org's secrets, by name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecretList {
    /// Every secret of the org (at most `MAX_SECRETS_PER_ORG`), sorted by name.
    pub items: Vec<Secret>,
}

/// What `secret rekey` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RekeyReport {
    /// Fingerprint of the key the values were sealed under.
    pub from_key_id: String,
    /// Fingerprint of the key they are sealed under now.
    pub to_key_id: String,
    /// Values re-sealed by this run.
    pub rekeyed: u64,
    /// Values already under the new key (an earlier, interrupted run).
    pub already: u64,
    /// Values under neither key, left alone (they stay unreadable until rekeyed from
    /// their own key).
    pub other_key: u64,
}
