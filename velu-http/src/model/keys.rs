//! API keys and whoami.

use poem_openapi::{Enum, Object};
use velu_core::keys;
use velu_core::scopes::{Role, Scope, ScopeSet};

use super::common::{Text, ts, ts_opt};
use super::mirror::mirror;
use super::orgs::Org;
use super::plans::PlanName;

/// A scope (the set is closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename = "Scope")]
pub enum ScopeName {
    /// Read the org's jobs.
    #[oai(rename = "jobs:read")]
    JobsRead,
    /// Submit, cancel and retry jobs.
    #[oai(rename = "jobs:submit")]
    JobsSubmit,
    /// Manage the org's API keys.
    #[oai(rename = "admin:api_keys:manage")]
    ApiKeysManage,
    /// Read the org's audit log.
    #[oai(rename = "audit:read")]
    AuditRead,
    /// Manage organizations (platform keys only).
    #[oai(rename = "admin:orgs:manage")]
    OrgsManage,
    /// Run jobs as a worker (a platform key: every org; an org key: its own).
    #[oai(rename = "jobs:work")]
    JobsWork,
    /// Pause, resume and show the org's queue.
    #[oai(rename = "admin:queue:manage")]
    QueueManage,
    /// Set, list and delete the org's secrets (values are never read back).
    #[oai(rename = "admin:secrets:manage")]
    SecretsManage,
    /// Read the org's usage report (platform keys: every org's).
    #[oai(rename = "usage:read")]
    UsageRead,
}

impl From<Scope> for ScopeName {
    fn from(s: Scope) -> Self {
        match s {
            Scope::JobsRead => ScopeName::JobsRead,
            Scope::JobsSubmit => ScopeName::JobsSubmit,
            Scope::ApiKeysManage => ScopeName::ApiKeysManage,
            Scope::AuditRead => ScopeName::AuditRead,
            Scope::OrgsManage => ScopeName::OrgsManage,
            Scope::JobsWork => ScopeName::JobsWork,
            Scope::QueueManage => ScopeName::QueueManage,
            Scope::SecretsManage => ScopeName::SecretsManage,
            Scope::UsageRead => ScopeName::UsageRead,
        }
    }
}

impl ScopeName {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeName::JobsRead => Scope::JobsRead.as_str(),
            ScopeName::JobsSubmit => Scope::JobsSubmit.as_str(),
            ScopeName::ApiKeysManage => Scope::ApiKeysManage.as_str(),
            ScopeName::AuditRead => Scope::AuditRead.as_str(),
            ScopeName::OrgsManage => Scope::OrgsManage.as_str(),
            ScopeName::JobsWork => Scope::JobsWork.as_str(),
            ScopeName::QueueManage => Scope::QueueManage.as_str(),
            ScopeName::SecretsManage => Scope::SecretsManage.as_str(),
            ScopeName::UsageRead => Scope::UsageRead.as_str(),
        }
    }
}

/// A scope an org key may hold (`admin:orgs:manage` is for platform keys, which only the
/// operator's CLI makes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename = "OrgScope")]
pub enum OrgScopeName {
    /// Read the org's jobs.
    #[oai(rename = "jobs:read")]
    JobsRead,
    /// Submit, cancel and retry jobs.
    #[oai(rename = "jobs:submit")]
    JobsSubmit,
    /// Manage the org's API keys.
    #[oai(rename = "admin:api_keys:manage")]
    ApiKeysManage,
    /// Read the org's audit log.
    #[oai(rename = "audit:read")]
    AuditRead,
    /// Run the org's own jobs as a remote worker (docs/workers.md).
    #[oai(rename = "jobs:work")]
    JobsWork,
    /// Pause, resume and show the org's queue.
    #[oai(rename = "admin:queue:manage")]
    QueueManage,
    /// Set, list and delete the org's secrets (values are never read back).
    #[oai(rename = "admin:secrets:manage")]
    SecretsManage,
    /// Read the org's usage report.
    #[oai(rename = "usage:read")]
    UsageRead,
}

impl OrgScopeName {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrgScopeName::JobsRead => Scope::JobsRead.as_str(),
            OrgScopeName::JobsSubmit => Scope::JobsSubmit.as_str(),
            OrgScopeName::ApiKeysManage => Scope::ApiKeysManage.as_str(),
            OrgScopeName::AuditRead => Scope::AuditRead.as_str(),
            OrgScopeName::QueueManage => Scope::QueueManage.as_str(),
            OrgScopeName::JobsWork => Scope::JobsWork.as_str(),
            OrgScopeName::SecretsManage => Scope::SecretsManage.as_str(),
            OrgScopeName::UsageRead => Scope::UsageRead.as_str(),
        }
    }
}

/// A role: a named set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase", rename = "Role")]
pub enum RoleName {
    /// `jobs:read`.
    Viewer,
    /// Viewer plus `jobs:submit`.
    Builder,
    /// Builder plus `admin:api_keys:manage`, `audit:read`, `admin:queue:manage`,
    /// `admin:secrets:manage`, `usage:read`.
    Admin,
    /// `jobs:work`: a remote worker of the org's own jobs.
    Worker,
}

impl RoleName {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RoleName::Viewer => Role::Viewer.as_str(),
            RoleName::Builder => Role::Builder.as_str(),
            RoleName::Admin => Role::Admin.as_str(),
            RoleName::Worker => Role::Worker.as_str(),
        }
    }
}

/// Scopes in the order the CLI prints them (sorted by name).
pub fn scope_names(set: &ScopeSet) -> Vec<ScopeName> {
    let mut v: Vec<ScopeName> = set.iter().map(Into::into).collect();
    v.sort_by_key(|s| s.as_str());
    v
}

/// A key's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum KeyStatus {
    /// Accepted.
    Active,
    /// Revoked.
    Revoked,
    /// Past its expiry.
    Expired,
}

impl From<keys::KeyStatus> for KeyStatus {
    fn from(s: keys::KeyStatus) -> Self {
        match s {
            keys::KeyStatus::Active => KeyStatus::Active,
            keys::KeyStatus::Revoked => KeyStatus::Revoked,
            keys::KeyStatus::Expired => KeyStatus::Expired,
        }
    }
}

mirror! {
    /// An API key, without its secret.
    pub struct ApiKey from keys::ApiKey {
        /// Public key id (`kid`), part of the key text.
        pub id: String,
        /// The org, or `null` for a platform key.
        #[oai(nullable)]
        pub org_id: Option<String>,
        /// Name.
        pub name: String,
        /// Scopes.
        pub scopes: Vec<ScopeName> = |s| scope_names(&s),
        /// `active`, `revoked` or `expired`.
        pub status: KeyStatus,
        /// Imported from the earlier system.
        pub legacy: bool,
        /// `cli` or `api_key`.
        pub created_by_type: String,
        /// OS user or key id of the creator.
        pub created_by_id: String,
        /// RFC 3339 UTC.
        pub created_at: String = |t| ts(t),
        /// RFC 3339 UTC, or `null`.
        #[oai(nullable)]
        pub expires_at: Option<String> = |t| ts_opt(t),
        /// RFC 3339 UTC, or `null`.
        #[oai(nullable)]
        pub revoked_at: Option<String> = |t| ts_opt(t),
        /// RFC 3339 UTC, or `null`.
        #[oai(nullable)]
        pub rotated_at: Option<String> = |t| ts_opt(t),
        /// Until when the previous secret still works.
        #[oai(nullable)]
        pub grace_until: Option<String> = |t| ts_opt(t),
        /// Last successful use (written in batches).
        #[oai(nullable)]
        pub last_used_at: Option<String> = |t| ts_opt(t),
    }
}

mirror! {
    /// A key with its secret: shown once.
    pub struct IssuedKey from keys::IssuedKey {
        /// The key.
        pub key: ApiKey,
        /// The full key text. Store it now: Velu keeps only a hash.
        pub token: String,
    }
}

/// Body of `POST /v1/orgs/{org}/keys`.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct CreateKey {
    /// Name, unique among the org's active keys: at most 100 letters, digits, spaces,
    /// `-`, `_` or `.` (trimmed, not blank).
    #[oai(validator(
        max_length = 100,
        pattern = r"^[A-Za-z0-9 ._-]*[A-Za-z0-9._-][A-Za-z0-9 ._-]*$"
    ))]
    pub name: Text,
    /// A role; give exactly one of `role` and `scopes`.
    #[oai(nullable)]
    pub role: Option<RoleName>,
    /// Explicit scopes; give exactly one of `role` and `scopes`. Never more than the
    /// calling key holds (`forbidden`).
    #[oai(nullable, default)]
    pub scopes: Vec<OrgScopeName>,
    /// RFC 3339 expiry, in the future and at most 3653 days away.
    #[oai(nullable)]
    pub expires_at: Option<Text>,
}

impl From<CreateKey> for keys::CreateKey {
    fn from(b: CreateKey) -> Self {
        keys::CreateKey {
            name: b.name.0,
            role: b.role.map(|r| r.as_str().to_owned()),
            scopes: b.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            expires_at: b.expires_at.map(String::from),
        }
    }
}

mirror! {
    /// Who the calling key is.
    pub struct Whoami from keys::Whoami {
        /// `api_key` (or `cli` on the command line).
        pub actor_type: String,
        /// The key id.
        pub actor_id: String,
        /// The key's org (`null` for platform keys).
        #[oai(nullable)]
        pub org: Option<Org> = |o| o.map(Into::into),
        /// The org's current plan (`null` for platform keys).
        #[oai(nullable)]
        pub plan: Option<PlanName> = |p| p.map(Into::into),
        /// The key's scopes.
        pub scopes: Vec<ScopeName> = |s| scope_names(&s),
    }
}
