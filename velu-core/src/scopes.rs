//! The closed set of scopes an API key can hold, and the roles that name common sets.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Serialize, Serializer};

use crate::{CoreError, CoreResult};

/// One permission. The set is closed: anything else is refused as `invalid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Read the org's jobs.
    JobsRead,
    /// Submit, cancel and retry the org's jobs.
    JobsSubmit,
    /// Create, list, revoke and rotate the org's API keys.
    ApiKeysManage,
    /// Read the org's audit log.
    AuditRead,
    /// Create organizations and change plans (platform keys only).
    OrgsManage,
    /// Run jobs as a worker: a platform key for every org, an org key (role `worker`)
    /// for its own org only.
    JobsWork,
    /// Pause, resume and show the org's queue.
    QueueManage,
    /// Set, list and delete the org's secrets (values are write-only: never read back).
    SecretsManage,
    /// Read the org's usage report (`usage`; platform keys: every org's).
    UsageRead,
}

impl Scope {
    /// Every scope, in a stable order.
    pub const ALL: [Scope; 9] = [
        Scope::JobsRead,
        Scope::JobsSubmit,
        Scope::ApiKeysManage,
        Scope::AuditRead,
        Scope::OrgsManage,
        Scope::JobsWork,
        Scope::QueueManage,
        Scope::SecretsManage,
        Scope::UsageRead,
    ];

    /// The wire name, e.g. `jobs:read`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::JobsRead => "jobs:read",
            Scope::JobsSubmit => "jobs:submit",
            Scope::ApiKeysManage => "admin:api_keys:manage",
            Scope::AuditRead => "audit:read",
            Scope::OrgsManage => "admin:orgs:manage",
            Scope::JobsWork => "jobs:work",
            Scope::QueueManage => "admin:queue:manage",
            Scope::SecretsManage => "admin:secrets:manage",
            Scope::UsageRead => "usage:read",
        }
    }

    /// True for scopes that only platform keys (keys with no org) may hold.
    pub fn platform_only(self) -> bool {
        matches!(self, Scope::OrgsManage)
    }

    /// Parses a wire name; unknown names are `invalid` on field `scopes`.
    pub fn parse(text: &str) -> CoreResult<Scope> {
        Scope::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| {
                let known: Vec<_> = Scope::ALL.iter().map(|s| s.as_str()).collect();
                CoreError::invalid(
                    "scopes",
                    format!("unknown scope `{text}`; known scopes: {}", known.join(", ")),
                )
            })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A shorthand for a set of org scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `jobs:read`.
    Viewer,
    /// Viewer plus `jobs:submit`.
    Builder,
    /// Builder plus `admin:api_keys:manage`, `audit:read`, `admin:queue:manage`,
    /// `admin:secrets:manage` and `usage:read`.
    Admin,
    /// `jobs:work` only: a remote worker of the org's own (bring your own compute). Not
    /// part of the others: an admin mints one only if it holds `jobs:work` itself.
    Worker,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Builder, Role::Admin, Role::Worker];

    /// The roles `org bootstrap` issues a key for, in order (never `worker`: an org gets
    /// a worker key only when someone holding `jobs:work` makes one).
    pub const BOOTSTRAP: [Role; 3] = [Role::Viewer, Role::Builder, Role::Admin];

    /// `viewer`, `builder`, `admin` (also the bootstrap key names) or `worker`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Builder => "builder",
            Role::Admin => "admin",
            Role::Worker => "worker",
        }
    }

    /// The scopes the role stands for.
    pub fn scopes(self) -> ScopeSet {
        let list: &[Scope] = match self {
            Role::Viewer => &[Scope::JobsRead],
            Role::Builder => &[Scope::JobsRead, Scope::JobsSubmit],
            Role::Admin => &[
                Scope::JobsRead,
                Scope::JobsSubmit,
                Scope::ApiKeysManage,
                Scope::AuditRead,
                Scope::QueueManage,
                Scope::SecretsManage,
                Scope::UsageRead,
            ],
            Role::Worker => &[Scope::JobsWork],
        };
        ScopeSet(list.iter().copied().collect())
    }

    /// Parses a role name for field `role`.
    pub fn parse(text: &str) -> CoreResult<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == text)
            .ok_or_else(|| {
                CoreError::invalid(
                    "role",
                    format!("unknown role `{text}`; expected viewer, builder, admin or worker"),
                )
            })
    }
}

/// A set of scopes; prints as a sorted list of wire names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeSet(BTreeSet<Scope>);

impl ScopeSet {
    /// Every scope (the CLI operator's rights).
    pub fn all() -> ScopeSet {
        ScopeSet(Scope::ALL.into_iter().collect())
    }

    /// Parses wire names (duplicates are fine; unknown names are `invalid`).
    pub fn parse<S: AsRef<str>>(names: &[S]) -> CoreResult<ScopeSet> {
        names
            .iter()
            .map(|n| Scope::parse(n.as_ref().trim()))
            .collect::<CoreResult<BTreeSet<_>>>()
            .map(ScopeSet)
    }

    /// Parses the space-separated form stored in the database.
    pub(crate) fn from_stored(text: &str) -> ScopeSet {
        ScopeSet(
            text.split_whitespace()
                .filter_map(|s| Scope::parse(s).ok())
                .collect(),
        )
    }

    /// The space-separated form stored in the database.
    pub(crate) fn to_stored(&self) -> String {
        self.names().join(" ")
    }

    /// Does the set hold `scope`?
    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    /// Is every scope of `self` also in `other`?
    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The first scope of `self` missing from `other`.
    pub fn first_missing_from(&self, other: &ScopeSet) -> Option<Scope> {
        self.0.difference(&other.0).next().copied()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes, in order.
    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }

    /// Sorted wire names.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.0.iter().map(|s| s.as_str()).collect();
        names.sort_unstable();
        names
    }
}

impl Serialize for ScopeSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.names())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_nest() {
        assert!(Role::Viewer.scopes().is_subset(&Role::Builder.scopes()));
        assert!(Role::Builder.scopes().is_subset(&Role::Admin.scopes()));
        assert!(
            Role::ALL
                .iter()
                .all(|r| r.scopes().iter().all(|s| !s.platform_only()))
        );
        assert!(
            !Role::Admin.scopes().contains(Scope::JobsWork),
            "an org admin is no worker unless given jobs:work"
        );
    }

    #[test]
    fn the_set_is_closed() {
        let err = ScopeSet::parse(&["jobs:read", "bogus:scope"]).unwrap_err();
        assert_eq!(err.code(), "invalid");
        assert!(err.to_string().contains("bogus:scope"));
        let ok = ScopeSet::parse(&["jobs:submit", "jobs:read", "jobs:read"]).unwrap();
        assert_eq!(ok.names(), vec!["jobs:read", "jobs:submit"]);
    }

    #[test]
    fn stored_form_round_trips() {
        let set = Role::Admin.scopes();
        assert_eq!(ScopeSet::from_stored(&set.to_stored()), set);
    }
}
