//! Creating keys: new v1 keys, and keys imported from the earlier system.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter,
};
use serde_json::json;

use super::access::*;
use super::checks::*;
use super::documents::*;
use super::hashing::{KeyHasher, validate_legacy_digest};
use super::token;
use crate::audit::{self, Record};
use crate::entity::api_keys;
use crate::error::is_unique_violation;
use crate::principal::Principal;
use crate::scopes::ScopeSet;
use crate::time::{self, now};
use crate::{CoreError, CoreResult, Velu};

/// A row for a new key.
pub(crate) struct NewKey<'a> {
    pub org_id: Option<&'a str>,
    pub name: &'a str,
    pub scopes: &'a ScopeSet,
    pub secret_hash: String,
    pub legacy: bool,
    pub expires_at: Option<DateTime<Utc>>,
}

pub(crate) async fn insert_key<C: ConnectionTrait>(
    conn: &C,
    who: &Principal,
    kid: &str,
    new: NewKey<'_>,
) -> CoreResult<api_keys::Model> {
    let at = now();
    let model = api_keys::ActiveModel {
        kid: Set(kid.to_owned()),
        org_id: Set(new.org_id.map(str::to_owned)),
        name: Set(new.name.to_owned()),
        scopes: Set(new.scopes.to_stored()),
        secret_hash: Set(new.secret_hash),
        previous_secret_hash: Set(None),
        previous_valid_until: Set(None),
        legacy: Set(new.legacy),
        created_by_type: Set(who.actor.kind.as_str().to_owned()),
        created_by_id: Set(who.actor.id.clone()),
        created_at: Set(at),
        updated_at: Set(at),
        expires_at: Set(new.expires_at),
        revoked_at: Set(None),
        rotated_at: Set(None),
        last_used_at: Set(None),
    };
    // `ensure_name_free` answered before a concurrent create of the same name committed:
    // the unique index of active names (`ux_api_keys_active_name`) has the last word.
    let model = model.insert(conn).await.map_err(|e| {
        if is_unique_violation(&e) {
            name_taken(new.name)
        } else {
            e.into()
        }
    })?;
    audit::record(
        conn,
        who,
        Record {
            org_id: new.org_id,
            action: if new.legacy { "key.import" } else { "key.create" },
            target_type: "api_key",
            target_id: kid,
            details: json!({ "name": model.name, "scopes": new.scopes, "expires_at": model.expires_at.map(|t| time::format(&t)) }),
        },
    )
    .await?;
    Ok(model)
}

/// Creates a key and returns it with its secret (shown once).
pub async fn create_key(
    velu: &Velu,
    who: &Principal,
    owner: &KeyOwner,
    input: &CreateKey,
) -> CoreResult<IssuedKey> {
    let at = now();
    let name = validate_key_name(&input.name)?;
    let expires_at = parse_expiry(input.expires_at.as_deref(), at)?;
    // Cheap checks before the expensive hash.
    let org = authorize(&velu.db().read_tx().await?, who, owner).await?;
    let scopes = requested_scopes(who, org.is_none(), input.role.as_deref(), &input.scopes)?;
    super::lifetime::check_new_key(super::lifetime::caller_expiry(velu, who).await?, expires_at)?;
    let (kid, secret) = (token::new_kid(), token::new_secret());
    let secret_hash = velu.hash_secret(&secret)?;

    let tx = velu.db().write_tx().await?;
    let org = authorize(&tx, who, owner).await?;
    ensure_name_free(&tx, &org, &name).await?;
    if let Some(o) = &org {
        ensure_key_quota(&tx, o, at).await?;
    }
    let new = NewKey {
        org_id: org.as_ref().map(|o| o.id.as_str()),
        name: &name,
        scopes: &scopes,
        secret_hash,
        legacy: false,
        expires_at,
    };
    let model = insert_key(&tx, who, &kid, new).await?;
    tx.commit().await?;
    Ok(IssuedKey {
        key: ApiKey::from_model(model, at),
        token: token::format(&kid, &secret),
    })
}

/// Imports a key of the earlier system by its `sha256(pepper + raw)` hash, so its clients
/// keep working. It is marked legacy and can be rotated into the v1 format.
pub async fn import_key(
    velu: &Velu,
    who: &Principal,
    owner: &KeyOwner,
    input: &ImportKey,
) -> CoreResult<ApiKey> {
    let name = validate_key_name(&input.name)?;
    let digest = input.hash.trim().trim_end_matches('=').to_owned();
    validate_legacy_digest(&digest)?;
    super::lifetime::refuse_if_expiring(velu, who, "import a key (imported keys never expire)")
        .await?;
    let tx = velu.db().write_tx().await?;
    let org = authorize(&tx, who, owner).await?;
    let scopes = requested_scopes(who, org.is_none(), None, &input.scopes)?;
    ensure_name_free(&tx, &org, &name).await?;
    let at = now();
    if let Some(o) = &org {
        ensure_key_quota(&tx, o, at).await?;
    }
    let stored = KeyHasher::legacy_stored(&digest);
    let duplicate = api_keys::Entity::find()
        .filter(api_keys::Column::SecretHash.eq(stored.as_str()))
        .filter(api_keys::Column::RevokedAt.is_null())
        .count(&tx)
        .await?;
    if duplicate > 0 {
        return Err(CoreError::conflict("this legacy key is already imported"));
    }
    let new = NewKey {
        org_id: org.as_ref().map(|o| o.id.as_str()),
        name: &name,
        scopes: &scopes,
        secret_hash: stored,
        legacy: true,
        expires_at: None,
    };
    let model = insert_key(&tx, who, &token::new_kid(), new).await?;
    tx.commit().await?;
    Ok(ApiKey::from_model(model, at))
}
