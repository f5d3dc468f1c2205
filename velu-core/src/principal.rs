//! Who is acting: the CLI operator or an API key, with its org and scopes.
//!
//! Every operation takes a [`Principal`] and checks it itself, so the CLI and the HTTP
//! facade cannot disagree about who may do what. Actor fields stamped on jobs and audit
//! events come only from here, never from a request body.

use serde::Serialize;

use crate::plans::Plan;
use crate::scopes::{Scope, ScopeSet};
use crate::{CoreError, CoreResult};

/// The actor an org's reader sees in place of the platform's own (the operator's OS user,
/// a platform key's id): on pauses made for every org or by the platform, and on audit
/// records of what the platform did in the org.
pub(crate) const PLATFORM: &str = "platform";

/// The kind of actor recorded on jobs and audit events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorType {
    /// The operator at the CLI (the database credential is the trust boundary).
    Cli,
    /// An API key over HTTP.
    ApiKey,
    /// A schedule enqueuing its periodic job (the id is the schedule's).
    Schedule,
    /// The billing system, through a signed event (the id is the event's).
    Billing,
}

impl ActorType {
    /// `cli`, `api_key`, `schedule` or `billing`.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorType::Cli => "cli",
            ActorType::ApiKey => "api_key",
            ActorType::Schedule => "schedule",
            ActorType::Billing => "billing",
        }
    }
}

/// An actor: its type and id (the OS user for `cli`, the key id for `api_key`, the
/// schedule id for `schedule`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// `cli`, `api_key` or `schedule`.
    pub kind: ActorType,
    /// OS user name, key id or schedule id.
    pub id: String,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Who acts.
    pub actor: Actor,
    /// The org a key belongs to; `None` for the operator and platform keys.
    pub org_id: Option<String>,
    /// What it may do.
    pub scopes: ScopeSet,
    /// The org's plan when the key was verified (for rate limiting only; decisions that
    /// depend on the plan read it from the database).
    pub plan: Option<Plan>,
}

impl Principal {
    /// The CLI operator: every scope, every org, recorded as `cli` + the OS user.
    pub fn operator() -> Principal {
        Principal {
            actor: Actor {
                kind: ActorType::Cli,
                id: os_user(),
            },
            org_id: None,
            scopes: ScopeSet::all(),
            plan: None,
        }
    }

    /// `forbidden` unless the principal holds `scope`.
    pub fn require(&self, scope: Scope) -> CoreResult<()> {
        if self.scopes.contains(scope) {
            Ok(())
        } else {
            Err(CoreError::forbidden(scope))
        }
    }

    /// May this principal address org `org_id` at all? Org keys see only their own org;
    /// the operator and platform keys see every org.
    pub fn can_see_org(&self, org_id: &str) -> bool {
        self.org_id.as_deref().is_none_or(|own| own == org_id)
    }

    /// The key id, for API-key principals.
    pub fn kid(&self) -> Option<&str> {
        match self.actor.kind {
            ActorType::ApiKey => Some(&self.actor.id),
            ActorType::Cli | ActorType::Schedule | ActorType::Billing => None,
        }
    }

    /// The org of the key acting, for an org's own key; `None` for the operator,
    /// platform keys, schedules and billing events. Kept with each audit record and
    /// queue pause (`actor_org_id`), so that how an org reads them never depends on the
    /// key's row still being there.
    pub fn key_org(&self) -> Option<&str> {
        self.kid().and(self.org_id.as_deref())
    }
}

/// The name of the user running this process, for `actor_id` on the CLI.
pub fn os_user() -> String {
    let uid = nix::unistd::getuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => user.name,
        _ => std::env::var("USER").unwrap_or_else(|_| format!("uid:{uid}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scopes::Role;

    fn org_key(org: &str) -> Principal {
        Principal {
            actor: Actor {
                kind: ActorType::ApiKey,
                id: "kid".into(),
            },
            org_id: Some(org.into()),
            scopes: Role::Viewer.scopes(),
            plan: Some(Plan::Base),
        }
    }

    #[test]
    fn org_keys_see_only_their_org() {
        let p = org_key("a");
        assert!(p.can_see_org("a"));
        assert!(!p.can_see_org("b"));
        assert!(Principal::operator().can_see_org("b"));
    }

    #[test]
    fn missing_scope_is_forbidden_and_named() {
        let err = org_key("a").require(Scope::JobsSubmit).unwrap_err();
        assert_eq!(err.code(), "forbidden");
        assert!(err.to_string().contains("jobs:submit"));
        assert!(org_key("a").require(Scope::JobsRead).is_ok());
    }
}
