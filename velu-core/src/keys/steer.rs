//! Changing a key: revoke, and rotate (with an optional grace period).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter,
};
use serde_json::json;

use super::access::*;
use super::documents::*;
use super::token;
use crate::audit::{self, Record};
use crate::db::notify::{self, Change};
use crate::entity::api_keys::{self, Column};
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
    // Checked on a read first: a refused caller never takes the write lock.
    authorize(&velu.db().read_tx().await?, who, owner).await?;
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
        who,
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
    let limit = super::lifetime::caller_expiry(velu, who).await?;
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
    super::lifetime::check_rotation(limit, kid, model.expires_at)?;
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
/// Only over the rotation `model` was read with: a rotation (or revocation) that
/// committed since (two at once, on PostgreSQL) makes this one a `conflict`, rather than
/// this one's write keeping a stale previous secret and losing the other's new one. A
/// first use that rewrote the hash of the same secret (argon2id to HMAC) meanwhile is no
/// rotation: this one goes through, its previous secret read in the older form, which
/// still verifies.
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
    let (previous, until) = if grace.is_zero() {
        (None, None)
    } else {
        let until = at + chrono::Duration::from_std(grace).expect("grace is bounded");
        (Some(old_hash.clone()), Some(until))
    };
    let rotated_as_read = match model.rotated_at {
        Some(t) => Column::RotatedAt.eq(t),
        None => Column::RotatedAt.is_null(),
    };
    let done = api_keys::Entity::update_many()
        .col_expr(Column::SecretHash, Expr::value(secret_hash))
        .col_expr(Column::PreviousSecretHash, Expr::value(previous))
        .col_expr(Column::PreviousValidUntil, Expr::value(until))
        .col_expr(Column::Legacy, Expr::value(false))
        .col_expr(Column::RotatedAt, Expr::value(Some(at)))
        .col_expr(Column::UpdatedAt, Expr::value(at))
        .filter(Column::Kid.eq(kid.as_str()))
        .filter(rotated_as_read)
        .filter(Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    if done.rows_affected == 0 {
        return Err(CoreError::conflict(format!(
            "key `{kid}` was rotated or revoked at the same moment by another request; \
             show it and rotate again if still needed"
        )));
    }
    let model = api_keys::Entity::find_by_id(kid.clone())
        .one(conn)
        .await?
        .ok_or_else(|| CoreError::internal("a key just rotated is gone"))?;
    audit::record(
        conn,
        who,
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
