//! `org bootstrap`: an org and its viewer, builder and admin keys, in one transaction.
//!
//! Running it again for an existing slug is a `conflict` that changes nothing, unless
//! `rotate` is set: then the three keys are re-issued (an active key of that name gets a
//! new secret; a missing or revoked one is replaced by a new key). The org itself is left
//! as it is on a rotate.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::Serialize;
use serde_json::json;

use crate::audit::{self, Record};
use crate::db::notify::{self, Change};
use crate::entity::{api_keys, organizations};
use crate::keys::{ApiKey, IssuedKey, NewKey, apply_rotation, ensure_holds_all, insert_key, token};
use crate::orgs::{CreateOrg, Org, insert_org, validate_name, validate_slug};
use crate::plans::Plan;
use crate::principal::Principal;
use crate::scopes::{Role, Scope};
use crate::time::now;
use crate::{CoreError, CoreResult, Velu};

/// Input of `org bootstrap`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootstrapOrg {
    /// Org name.
    pub name: String,
    /// Org slug.
    pub slug: String,
    /// Plan name; `None` means `base`.
    pub plan: Option<String>,
    /// Re-issue the keys of an existing org instead of refusing.
    pub rotate: bool,
}

/// The three keys of a bootstrap, with their secrets (shown once).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BootstrapKeys {
    /// `jobs:read`.
    pub viewer: IssuedKey,
    /// `jobs:read`, `jobs:submit`.
    pub builder: IssuedKey,
    /// Builder plus `admin:api_keys:manage`, `audit:read`, `admin:queue:manage`,
    /// `admin:secrets:manage`, `usage:read`.
    pub admin: IssuedKey,
}

/// What `org bootstrap` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bootstrap {
    /// The org.
    pub org: Org,
    /// Its keys.
    pub keys: BootstrapKeys,
    /// True when the org existed and its keys were re-issued.
    pub rotated: bool,
}

/// Creates an org with its three keys, or re-issues the keys with `rotate`.
/// Needs `admin:orgs:manage`.
pub async fn bootstrap_org(
    velu: &Velu,
    who: &Principal,
    input: &BootstrapOrg,
) -> CoreResult<Bootstrap> {
    who.require(Scope::OrgsManage)?;
    // It issues (or re-issues) the admin key: only a principal holding every scope of
    // the three roles may, so a narrow platform key cannot mint itself an org admin.
    ensure_holds_all(who, &Role::Admin.scopes())?;
    // Its keys never expire: a key that does may not issue (or re-issue) them.
    crate::keys::refuse_if_expiring(velu, who, "bootstrap an org (its keys never expire)").await?;
    validate_name(&input.name)?;
    validate_slug(&input.slug)?;
    if let Some(p) = &input.plan {
        Plan::parse_field("plan", p)?;
    }
    // Hash the three secrets before taking the write lock.
    let mut fresh = Vec::with_capacity(3);
    for role in Role::BOOTSTRAP {
        let secret = token::new_secret();
        let hash = velu.hash_secret(&secret)?;
        fresh.push((role, secret, hash));
    }

    // A platform operation: the org may not exist yet.
    let tx = velu
        .db()
        .cross_org_tx(crate::db::CrossOrg::Platform)
        .await?;
    let existing = organizations::Entity::find()
        .filter(organizations::Column::Slug.eq(input.slug.as_str()))
        .one(&tx)
        .await?;
    let at = now();
    let (org, rotated) = match existing {
        Some(_) if !input.rotate => {
            return Err(CoreError::conflict(format!(
                "an organization with slug `{}` already exists; pass --rotate to re-issue \
                 its viewer, builder and admin keys",
                input.slug
            )));
        }
        Some(model) => (Org::from_model(model)?, true),
        None => {
            let create = CreateOrg {
                name: input.name.clone(),
                slug: input.slug.clone(),
                plan: input.plan.clone(),
            };
            (insert_org(&tx, who, &create).await?, false)
        }
    };

    let mut issued = Vec::with_capacity(3);
    let mut changes = Vec::new();
    for (role, secret, hash) in fresh {
        let name = role.as_str();
        let current = api_keys::Entity::find()
            .filter(api_keys::Column::OrgId.eq(org.id.as_str()))
            .filter(api_keys::Column::Name.eq(name))
            .filter(api_keys::Column::RevokedAt.is_null())
            .one(&tx)
            .await?;
        let model = match current {
            Some(model) if model.expires_at.is_none_or(|e| e > at) => {
                changes.push(Change::Key(model.kid.clone()));
                apply_rotation(&tx, who, model, hash, std::time::Duration::ZERO, at).await?
            }
            _ => {
                let scopes = role.scopes();
                let new = NewKey {
                    org_id: Some(&org.id),
                    name,
                    scopes: &scopes,
                    secret_hash: hash,
                    legacy: false,
                    expires_at: None,
                };
                insert_key(&tx, who, &token::new_kid(), new).await?
            }
        };
        let kid = model.kid.clone();
        issued.push(IssuedKey {
            key: ApiKey::from_model(model, at),
            token: token::format(&kid, &secret),
        });
    }
    audit::record(
        &tx,
        who,
        Record {
            org_id: Some(&org.id),
            action: "org.bootstrap",
            target_type: "org",
            target_id: &org.id,
            details: json!({
                "rotated": rotated,
                "keys": issued.iter().map(|k| &k.key.id).collect::<Vec<_>>(),
            }),
        },
    )
    .await?;
    for change in &changes {
        notify::send(&tx, change).await?;
    }
    tx.commit().await?;
    for change in changes {
        velu.changed(change);
    }
    let mut keys = issued.into_iter();
    let mut next = || keys.next().expect("three keys were issued");
    Ok(Bootstrap {
        org,
        keys: BootstrapKeys {
            viewer: next(),
            builder: next(),
            admin: next(),
        },
        rotated,
    })
}
