//! Organizations, bootstrap and audit events.

use poem_openapi::Object;
use poem_openapi::types::Any;
use velu_core::{audit, bootstrap, orgs};

use super::common::{Text, ts};
use super::keys::IssuedKey;
use super::plans::PlanName;

/// An organization.
#[derive(Debug, Object)]
pub struct Org {
    /// UUIDv7.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Unique handle.
    pub slug: String,
    /// Plan tier.
    pub plan: PlanName,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC.
    pub updated_at: String,
}

impl From<orgs::Org> for Org {
    fn from(o: orgs::Org) -> Self {
        Org {
            id: o.id,
            name: o.name,
            slug: o.slug,
            plan: o.plan.into(),
            created_at: ts(o.created_at),
            updated_at: ts(o.updated_at),
        }
    }
}

/// Body of `POST /v1/orgs`.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct CreateOrg {
    /// Display name: at most 200 characters, no control characters, not blank (trimmed).
    #[oai(validator(
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\u0000-\u001F\u007F-\u009F]*$"
    ))]
    pub name: Text,
    /// Lower-case letters, digits and hyphens, 2 to 63 long, not starting with a hyphen;
    /// refused, never rewritten. Route words (`bootstrap`, `new`, `batch`, ...) are
    /// reserved.
    #[oai(validator(pattern = r"^[a-z0-9][a-z0-9-]{1,62}$"))]
    pub slug: Text,
    /// Plan [default: base].
    #[oai(nullable)]
    pub plan: Option<PlanName>,
}

impl From<CreateOrg> for orgs::CreateOrg {
    fn from(b: CreateOrg) -> Self {
        orgs::CreateOrg {
            name: b.name.0,
            slug: b.slug.0,
            plan: b.plan.map(|p| p.as_str().to_owned()),
        }
    }
}

/// Body of `PUT /v1/orgs/{org}/plan`.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct SetPlan {
    /// The new plan.
    pub plan: PlanName,
}

/// Body of `POST /v1/orgs/bootstrap`.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct BootstrapOrg {
    /// Display name: at most 200 characters, no control characters, not blank (trimmed).
    #[oai(validator(
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\u0000-\u001F\u007F-\u009F]*$"
    ))]
    pub name: Text,
    /// Unique slug, as for `POST /v1/orgs`.
    #[oai(validator(pattern = r"^[a-z0-9][a-z0-9-]{1,62}$"))]
    pub slug: Text,
    /// Plan [default: base].
    #[oai(nullable)]
    pub plan: Option<PlanName>,
    /// Re-issue the three keys if the org exists [default: false].
    #[oai(nullable, default)]
    pub rotate: bool,
}

impl From<BootstrapOrg> for bootstrap::BootstrapOrg {
    fn from(b: BootstrapOrg) -> Self {
        bootstrap::BootstrapOrg {
            name: b.name.0,
            slug: b.slug.0,
            plan: b.plan.map(|p| p.as_str().to_owned()),
            rotate: b.rotate,
        }
    }
}

/// The viewer, builder and admin keys, each with its secret (shown once).
#[derive(Debug, Object)]
pub struct BootstrapKeys {
    /// `jobs:read`.
    pub viewer: IssuedKey,
    /// Viewer plus `jobs:submit`.
    pub builder: IssuedKey,
    /// Builder plus `admin:api_keys:manage`, `audit:read`.
    pub admin: IssuedKey,
}

/// The result of a bootstrap.
#[derive(Debug, Object)]
pub struct Bootstrap {
    /// The org.
    pub org: Org,
    /// Its keys.
    pub keys: BootstrapKeys,
    /// True when the org existed and its keys were re-issued.
    pub rotated: bool,
}

impl From<bootstrap::Bootstrap> for Bootstrap {
    fn from(b: bootstrap::Bootstrap) -> Self {
        Bootstrap {
            org: b.org.into(),
            keys: BootstrapKeys {
                viewer: b.keys.viewer.into(),
                builder: b.keys.builder.into(),
                admin: b.keys.admin.into(),
            },
            rotated: b.rotated,
        }
    }
}

/// One audited action.
#[derive(Debug, Object)]
pub struct AuditEvent {
    /// Event id (UUIDv7).
    pub id: String,
    /// The org concerned.
    #[oai(nullable)]
    pub org_id: Option<String>,
    /// `cli` or `api_key`.
    pub actor_type: String,
    /// OS user or key id.
    pub actor_id: String,
    /// What happened, e.g. `key.revoke`.
    pub action: String,
    /// `org`, `api_key` or `job`.
    pub target_type: String,
    /// Its id.
    pub target_id: String,
    /// Non-secret details.
    pub details: Any<serde_json::Value>,
    /// RFC 3339 UTC.
    pub created_at: String,
}

impl From<audit::AuditEvent> for AuditEvent {
    fn from(e: audit::AuditEvent) -> Self {
        AuditEvent {
            id: e.id,
            org_id: e.org_id,
            actor_type: e.actor_type,
            actor_id: e.actor_id,
            action: e.action,
            target_type: e.target_type,
            target_id: e.target_id,
            details: Any(e.details),
            created_at: ts(e.created_at),
        }
    }
}
