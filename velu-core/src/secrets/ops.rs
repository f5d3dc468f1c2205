//! The org operations on secrets: set, list, delete. Each enters the org through
//! `Principal::enter` with `admin:secrets:manage` (another org's secrets are `not_found`,
//! like a missing org), runs in one transaction and is audited with the name and version
//! only.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::json;

use super::input::{check_name, check_value};
use super::seal::{Binding, seal};
use super::{MAX_SECRETS_PER_ORG, Secret, SecretList};
use crate::admission::{self, Quota};
use crate::audit::{self, Record};
use crate::entity::org_secrets;
use crate::ids::new_id;
use crate::principal::Principal;
use crate::scopes::Scope;
use crate::tenancy::OrgRef;
use crate::time::now;
use crate::{CoreError, CoreResult, Velu};

async fn audited<C: ConnectionTrait>(
    conn: &C,
    who: &Principal,
    row: &org_secrets::Model,
    action: &'static str,
) -> CoreResult<()> {
    audit::record(
        conn,
        who,
        Record {
            org_id: Some(&row.org_id),
            action,
            target_type: "secret",
            target_id: &row.name,
            details: json!({ "name": row.name, "version": row.version }),
        },
    )
    .await
}

async fn find<C: ConnectionTrait>(
    conn: &C,
    org_id: &str,
    name: &str,
) -> CoreResult<Option<org_secrets::Model>> {
    Ok(org_secrets::Entity::find()
        .filter(org_secrets::Column::OrgId.eq(org_id))
        .filter(org_secrets::Column::Name.eq(name))
        .one(conn)
        .await?)
}

/// Sets secret `name` of `org` to `value`: creates it at version 1, or replaces its value
/// with the next version (the previous value is gone). The value is sealed under the
/// platform's secrets key before it reaches the database; no key configured is `config`.
/// Refused: a bad name (`invalid`), an empty, non-UTF-8 or NUL-holding value (`invalid`),
/// more than 64 KiB (`payload_too_large`), more than [`MAX_SECRETS_PER_ORG`] secrets
/// (`quota_exceeded`). Scope: `admin:secrets:manage`.
pub async fn set_secret(
    velu: &Velu,
    who: &Principal,
    org: &OrgRef,
    name: &str,
    value: &[u8],
) -> CoreResult<Secret> {
    // Checked on a read first: a refused caller never takes the write lock.
    who.check_enter(velu.db(), org, Scope::SecretsManage)
        .await?;
    let name = check_name(name)?;
    let value = check_value(value)?;
    let kek = velu.secrets_kek()?;
    let tx = velu.db().write_tx().await?;
    let org = who.enter(&tx, org, Scope::SecretsManage).await?;
    // One writer per org at a time (admission.rs; SQLite's write lock already is):
    // versions and the cap hold under concurrent sets.
    admission::hold(&tx, Quota::Secrets, &[org.id()]).await?;
    let at = now();
    let existing = find(&tx, org.id(), name).await?;
    let version = existing.as_ref().map_or(1, |r| r.version + 1);
    let sealed = seal(
        kek,
        Binding {
            org_id: org.id(),
            name,
            version,
        },
        value.as_bytes(),
    )?;
    let row = match existing {
        Some(row) => {
            let mut active = row.into_active_model();
            active.version = Set(version);
            active.key_id = Set(kek.id().to_owned());
            active.nonce = Set(sealed.nonce);
            active.ciphertext = Set(sealed.ciphertext);
            active.updated_by_type = Set(who.actor.kind.as_str().to_owned());
            active.updated_by_id = Set(who.actor.id.clone());
            active.updated_at = Set(at);
            active.update(&tx).await?
        }
        None => {
            let count = org_secrets::Entity::find()
                .filter(org_secrets::Column::OrgId.eq(org.id()))
                .count(&tx)
                .await?;
            if count >= MAX_SECRETS_PER_ORG {
                return Err(CoreError::QuotaExceeded {
                    what: "secrets per org".into(),
                    limit: MAX_SECRETS_PER_ORG,
                });
            }
            let row = org_secrets::ActiveModel {
                id: Set(new_id()),
                org_id: Set(org.id().to_owned()),
                name: Set(name.to_owned()),
                version: Set(version),
                key_id: Set(kek.id().to_owned()),
                nonce: Set(sealed.nonce),
                ciphertext: Set(sealed.ciphertext),
                updated_by_type: Set(who.actor.kind.as_str().to_owned()),
                updated_by_id: Set(who.actor.id.clone()),
                created_at: Set(at),
                updated_at: Set(at),
            };
            org_secrets::Entity::insert(row)
                .exec_with_returning(&tx)
                .await?
        }
    };
    audited(&tx, who, &row, "secret.set").await?;
    tx.commit().await?;
    Ok(Secret::from_model(&row))
}

/// Lists the org's secrets by name: names, versions and dates, never a value. Scope:
/// `admin:secrets:manage`.
pub async fn list_secrets(velu: &Velu, who: &Principal, org: &OrgRef) -> CoreResult<SecretList> {
    let tx = velu.db().read_tx().await?;
    let org = who.enter(&tx, org, Scope::SecretsManage).await?;
    let rows = org_secrets::Entity::find()
        .filter(org_secrets::Column::OrgId.eq(org.id()))
        .order_by_asc(org_secrets::Column::Name)
        .limit(MAX_SECRETS_PER_ORG)
        .all(&tx)
        .await?;
    tx.commit().await?;
    Ok(SecretList {
        items: rows.iter().map(Secret::from_model).collect(),
    })
}

/// Deletes secret `name` of `org` (`not_found` if it has none); prints it as it was. Jobs
/// of kinds that name it fail with `secret_unavailable` from then on. Scope:
/// `admin:secrets:manage`.
pub async fn delete_secret(
    velu: &Velu,
    who: &Principal,
    org: &OrgRef,
    name: &str,
) -> CoreResult<Secret> {
    who.check_enter(velu.db(), org, Scope::SecretsManage)
        .await?;
    let tx = velu.db().write_tx().await?;
    let org = who.enter(&tx, org, Scope::SecretsManage).await?;
    let not_found = || CoreError::not_found("secret", name);
    let name = check_name(name).map_err(|_| not_found())?;
    let row = find(&tx, org.id(), name).await?.ok_or_else(not_found)?;
    org_secrets::Entity::delete_by_id(row.id.clone())
        .exec(&tx)
        .await?;
    audited(&tx, who, &row, "secret.delete").await?;
    tx.commit().await?;
    Ok(Secret::from_model(&row))
}
