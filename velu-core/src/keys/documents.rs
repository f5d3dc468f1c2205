//! Key documents and the inputs of key operations.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::entity::api_keys;
use crate::orgs::Org;
use crate::plans::Plan;
use crate::scopes::ScopeSet;
use crate::tenancy::OrgRef;
use crate::time::Timestamp;

/// Longest grace period of a rotation.
pub const MAX_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Longest key name, in characters.
pub const MAX_KEY_NAME: usize = 100;

/// Where a key lives: in an org, or on the platform (no org).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOwner {
    /// An org's key, by org id or slug.
    Org(OrgRef),
    /// A platform key (managed through the CLI).
    Platform,
}

/// A key's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// Accepted.
    Active,
    /// Revoked; refused.
    Revoked,
    /// Past its expiry; refused.
    Expired,
}

/// An API key as listings print it. Never carries the secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKey {
    /// The public key id (`kid`), part of the key text.
    pub id: String,
    /// The org, or `null` for a platform key.
    pub org_id: Option<String>,
    /// Name, unique among the org's active keys.
    pub name: String,
    /// What it may do.
    pub scopes: ScopeSet,
    /// `active`, `revoked` or `expired`.
    pub status: KeyStatus,
    /// Imported from the earlier system (verified by its sha256 hash).
    pub legacy: bool,
    /// `cli` or `api_key`.
    pub created_by_type: String,
    /// OS user or key id of the creator.
    pub created_by_id: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// When it was revoked.
    pub revoked_at: Option<Timestamp>,
    /// When its secret was last rotated.
    pub rotated_at: Option<Timestamp>,
    /// Until when the secret before the last rotation still works.
    pub grace_until: Option<Timestamp>,
    /// Last successful use (recorded in batches, so up to a minute behind).
    pub last_used_at: Option<Timestamp>,
}

/// A key with its secret, shown once by create, rotate and bootstrap.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IssuedKey {
    /// The key's metadata.
    pub key: ApiKey,
    /// The full key text. Store it now: Velu keeps only a hash.
    pub token: String,
}

/// Input of `key create`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateKey {
    /// Name, unique among the owner's active keys.
    pub name: String,
    /// `viewer`, `builder`, `admin` or `worker`; or give `scopes`.
    pub role: Option<String>,
    /// Explicit scopes; or give `role`.
    pub scopes: Vec<String>,
    /// RFC 3339 expiry, in the future.
    pub expires_at: Option<String>,
}

/// Input of `key rotate`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotateKey {
    /// Seconds the old secret keeps working (0 or absent: none; at most 7 days).
    pub grace_secs: Option<u64>,
}

/// Input of `key import`: a key of the earlier system, by its hash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportKey {
    /// Name for the imported key.
    pub name: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// base64url(sha256(pepper + raw key)), as the earlier system stored it.
    pub hash: String,
}

/// What `whoami` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Whoami {
    /// `cli` or `api_key`.
    pub actor_type: String,
    /// OS user or key id.
    pub actor_id: String,
    /// The key's org, or `null` for the operator and platform keys.
    pub org: Option<Org>,
    /// The org's current plan.
    pub plan: Option<Plan>,
    /// What this principal may do.
    pub scopes: ScopeSet,
}

impl ApiKey {
    pub(crate) fn from_model(m: api_keys::Model, at: DateTime<Utc>) -> ApiKey {
        let status = if m.revoked_at.is_some() {
            KeyStatus::Revoked
        } else if m.expires_at.is_some_and(|e| e <= at) {
            KeyStatus::Expired
        } else {
            KeyStatus::Active
        };
        let grace_until = m.previous_valid_until.filter(|g| *g > at).map(Timestamp);
        ApiKey {
            id: m.kid,
            org_id: m.org_id,
            name: m.name,
            scopes: ScopeSet::from_stored(&m.scopes),
            status,
            legacy: m.legacy,
            created_by_type: m.created_by_type,
            created_by_id: m.created_by_id,
            created_at: m.created_at.into(),
            expires_at: m.expires_at.map(Timestamp),
            revoked_at: m.revoked_at.map(Timestamp),
            rotated_at: m.rotated_at.map(Timestamp),
            grace_until,
            last_used_at: m.last_used_at.map(Timestamp),
        }
    }
}
