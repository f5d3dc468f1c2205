//! Changing a key: revoke, and rotate (with an optional grace period).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, IntoActiveModel};
use serde_json::json;

use super::access::*;
use super::documents::*;
use super::token;
use crate::audit::{self, Record};
use crate::db::notify::{self, Change};
use crate::entity::api_keys;
use crate::principal::Principal;
use crate::time::now;
use crate::{CoreError, CoreResult, Velu};

/// Revokes a key. Idempotent: revoking a revoked key changes nothing and succeeds. The
/// key is refused at once on this node and within moments on every other node.
pub async fn revoke_key(
    velu: &Velu,
    who: &Principal,
    owner: &KeyOwner,
    kid: &str,
) -> CoreResult<ApiKey> {
    let tx = velu.db().write_tx().await?;
    let org = authorize(&tx, who, owner).await?;
    let model = find_key(&tx, who, &org, kid).await?;
    let at = now();
    if model.revoked_at.is_some() {
        tx.commit().await?;
        return Ok(ApiKey::from_model(model, at));
    }
    let org_id = model.org_id.clone();
    let mut active = model.into_active_model();
    active.revoked_at = Set(Some(at));
    active.previous_secret_hash = Set(None);
    active.previous_valid_until = Set(None);
    active.updated_at = Set(at);
    let model = active.update(&tx).await?;
    audit::record(
        &tx,
        &who.actor,
        Record {
            org_id: org_id.as_deref(),
            action: "key.revoke",
            target_type: "api_key",
            target_id: kid,
            details: json!({ "name": model.name }),
        },
    )
    .await?;
    let change = Change::Key(kid.to_owned());
    notify::send(&tx, &change).await?;
    tx.commit().await?;
    velu.changed(change);
    Ok(ApiKey::from_model(model, at))
}

/// Gives a key a new secret, keeping its id. With a grace period the old secret keeps
/// working until it ends; without one it stops at once. Legacy keys become v1 keys.
pub async fn rotate_key(
    velu: &Velu,
    who: &Principal,
    owner: &KeyOwner,
    kid: &str,
    input: &RotateKey,
) -> CoreResult<IssuedKey> {
    let grace = Duration::from_secs(input.grace_secs.unwrap_or(0));
    if grace > MAX_GRACE {
        return Err(CoreError::invalid(
            "grace",
            format!("at most {} seconds (7 days)", MAX_GRACE.as_secs()),
        ));
    }
    authorize(&velu.db().read_tx().await?, who, owner).await?;
    let secret = token::new_secret();
    let secret_hash = velu.hash_secret(&secret)?;

    let tx = velu.db().write_tx().await?;
    let org = authorize(&tx, who, owner).await?;
    let model = find_key(&tx, who, &org, kid).await?;
    let at = now();
    if model.revoked_at.is_some() {
        return Err(CoreError::conflict(format!(
            "key `{kid}` is revoked; create a new key instead"
        )));
    }
    if model.expires_at.is_some_and(|e| e <= at) {
        return Err(CoreError::conflict(format!(
            "key `{kid}` has expired; create a new key instead"
        )));
    }
    let model = apply_rotation(&tx, who, model, secret_hash, grace, at).await?;
    let change = Change::Key(kid.to_owned());
    notify::send(&tx, &change).await?;
    tx.commit().await?;
    velu.changed(change);
    Ok(IssuedKey {
        key: ApiKey::from_model(model, at),
        token: token::format(kid, &secret),
    })
}

/// Stores a new secret hash on `model` (inside the caller's transaction), with audit.
pub(crate) async fn apply_rotation<C: ConnectionTrait>(
    conn: &C,
    who: &Principal,
    model: api_keys::Model,
    secret_hash: String,
    grace: Duration,
    at: DateTime<Utc>,
) -> CoreResult<api_keys::Model> {
    let was_legacy = model.legacy;
    let old_hash = model.secret_hash.clone();
    let kid = model.kid.clone();
    let org_id = model.org_id.clone();
    let mut active = model.into_active_model();
    active.secret_hash = Set(secret_hash);
    if grace.is_zero() {
        active.previous_secret_hash = Set(None);
        active.previous_valid_until = Set(None);
    } else {
        let until = at + chrono::Duration::from_std(grace).expect("grace is bounded");
        active.previous_secret_hash = Set(Some(old_hash));
        active.previous_valid_until = Set(Some(until));
    }
    active.legacy = Set(false);
    active.rotated_at = Set(Some(at));
    active.updated_at = Set(at);
    let model = active.update(conn).await?;
    audit::record(
        conn,
        &who.actor,
        Record {
            org_id: org_id.as_deref(),
            action: "key.rotate",
            target_type: "api_key",
            target_id: &kid,
            details: json!({ "grace_secs": grace.as_secs(), "was_legacy": was_legacy }),
        },
    )
    .await?;
    Ok(model)
}
