//! Who may act on which keys: the owner check, and the rule that a principal acts only
//! on keys (and issues only scopes) it holds every scope of.

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
};

use crate::db::{CrossOrg, cross_org};

use super::documents::*;
use super::token;
use crate::entity::{api_keys, organizations};
use crate::principal::Principal;
use crate::scopes::{Role, Scope, ScopeSet};
use crate::{CoreError, CoreResult};

/// Resolves the owner and checks the right to manage its keys; returns the org row.
/// Binds transaction `tx` to the org (the tenancy floor), or, for platform keys (no org),
/// lets it cross orgs ([`CrossOrg::Platform`]).
pub(super) async fn authorize(
    tx: &DatabaseTransaction,
    who: &Principal,
    owner: &KeyOwner,
) -> CoreResult<Option<organizations::Model>> {
    match owner {
        KeyOwner::Org(r) => {
            let org = who.enter(tx, r, Scope::ApiKeysManage).await?;
            Ok(Some(org.into_row()))
        }
        KeyOwner::Platform => {
            who.require(Scope::OrgsManage)?;
            if who.org_id.is_some() {
                return Err(CoreError::forbidden(Scope::OrgsManage));
            }
            cross_org(tx, CrossOrg::Platform).await?;
            Ok(None)
        }
    }
}

pub(super) fn owner_filter(org: &Option<organizations::Model>) -> Condition {
    match org {
        Some(o) => Condition::all().add(api_keys::Column::OrgId.eq(o.id.as_str())),
        None => Condition::all().add(api_keys::Column::OrgId.is_null()),
    }
}

/// The scopes a new key asks for, checked against the owner and the creator.
pub(super) fn requested_scopes(
    who: &Principal,
    platform: bool,
    role: Option<&str>,
    scopes: &[String],
) -> CoreResult<ScopeSet> {
    let set = match (role, scopes.is_empty()) {
        (Some(_), false) => {
            return Err(CoreError::invalid(
                "scopes",
                "give a role or scopes, not both",
            ));
        }
        (Some(r), true) => Role::parse(r)?.scopes(),
        (None, false) => ScopeSet::parse(scopes)?,
        (None, true) => return Err(CoreError::invalid("scopes", "give a role or scopes")),
    };
    if set.is_empty() {
        return Err(CoreError::invalid(
            "scopes",
            "a key needs at least one scope",
        ));
    }
    if !platform && let Some(s) = set.iter().find(|s| s.platform_only()) {
        return Err(CoreError::invalid(
            "scopes",
            format!("`{s}` is only for platform keys"),
        ));
    }
    ensure_holds_all(who, &set)?;
    Ok(set)
}

/// Finds a key of the owner that `who` may act on: `not_found` when the owner has no such
/// key, `forbidden` when the key holds a scope `who` lacks.
pub(super) async fn find_key<C: ConnectionTrait>(
    conn: &C,
    who: &Principal,
    org: &Option<organizations::Model>,
    kid: &str,
) -> CoreResult<api_keys::Model> {
    if !token::is_kid(kid) {
        return Err(CoreError::not_found("api key", kid));
    }
    let model = api_keys::Entity::find_by_id(kid.to_owned())
        .filter(owner_filter(org))
        .one(conn)
        .await?
        .ok_or_else(|| CoreError::not_found("api key", kid))?;
    ensure_holds_all(who, &ScopeSet::from_stored(&model.scopes))?;
    Ok(model)
}

/// A principal may act on a key (or issue one) only when it holds every scope of it.
pub(crate) fn ensure_holds_all(who: &Principal, scopes: &ScopeSet) -> CoreResult<()> {
    match scopes.first_missing_from(&who.scopes) {
        Some(missing) => Err(CoreError::forbidden(missing)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plans::Plan;
    use crate::principal::{Actor, ActorType};

    fn org_admin() -> Principal {
        Principal {
            actor: Actor {
                kind: ActorType::ApiKey,
                id: "k".into(),
            },
            org_id: Some("o".into()),
            scopes: Role::Admin.scopes(),
            plan: Some(Plan::Hero),
        }
    }

    #[test]
    fn a_key_never_grants_more_than_its_creator_holds() {
        let err =
            requested_scopes(&org_admin(), false, None, &["admin:orgs:manage".into()]).unwrap_err();
        assert_eq!(
            err.code(),
            "invalid",
            "platform scopes never go on org keys"
        );
        let viewer = Principal {
            scopes: Role::Viewer.scopes(),
            ..org_admin()
        };
        let err = requested_scopes(&viewer, false, Some("builder"), &[]).unwrap_err();
        assert_eq!(err.code(), "forbidden");
        assert!(err.to_string().contains("jobs:submit"));
        assert!(requested_scopes(&org_admin(), false, Some("builder"), &[]).is_ok());
    }

    #[test]
    fn role_or_scopes_but_not_both() {
        let both = requested_scopes(&org_admin(), false, Some("viewer"), &["jobs:read".into()]);
        assert_eq!(both.unwrap_err().code(), "invalid");
        let neither = requested_scopes(&org_admin(), false, None, &[]);
        assert_eq!(neither.unwrap_err().code(), "invalid");
    }
}
