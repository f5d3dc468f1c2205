//! Key operations: create, list, show, revoke, rotate, import, whoami.
//!
//! Org keys are managed by principals holding `admin:api_keys:manage` on that org; platform
//! keys (no org) by principals holding `admin:orgs:manage`, in practice the CLI operator.
//! Least privilege on every key operation: a key never grants a scope its creator lacks,
//! and a principal may show, rotate or revoke a key only when it holds every scope of that
//! key (otherwise `forbidden`), so a key manager cannot take over a stronger key. Secrets
//! are returned once, by create and rotate, and stored only as keyed hashes.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;
use serde_json::json;

use super::hashing::{KeyHasher, validate_legacy_digest};
use super::token;
use crate::audit::{self, Record};
use crate::db::notify::{self, Change};
use crate::entity::{api_keys, organizations};
use crate::orgs::{Org, current_plan};
use crate::pagination::{Page, PageRequest};
use crate::plans::Plan;
use crate::principal::Principal;
use crate::scopes::{Role, Scope, ScopeSet};
use crate::tenancy::OrgRef;
use crate::time::{self, Timestamp, now};
use crate::{CoreError, CoreResult, Velu};

/// Longest grace period of a rotation.
pub const MAX_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Longest key name, in characters.
pub const MAX_KEY_NAME: usize = 100;

/// Where a key lives: in an org, or on the platform (no org).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOwner {
    /// An org's key, by org id or slug.
    Org(OrgRef),
    /// A platform key (managed through the CLI).
    Platform,
}

/// A key's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// Accepted.
    Active,
    /// Revoked; refused.
    Revoked,
    /// Past its expiry; refused.
    Expired,
}

/// An API key as listings print it. Never carries the secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKey {
    /// The public key id (`kid`), part of the key text.
    pub id: String,
    /// The org, or `null` for a platform key.
    pub org_id: Option<String>,
    /// Name, unique among the org's active keys.
    pub name: String,
    /// What it may do.
    pub scopes: ScopeSet,
    /// `active`, `revoked` or `expired`.
    pub status: KeyStatus,
    /// Imported from the earlier system (verified by its sha256 hash).
    pub legacy: bool,
    /// `cli` or `api_key`.
    pub created_by_type: String,
    /// OS user or key id of the creator.
    pub created_by_id: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// When it was revoked.
    pub revoked_at: Option<Timestamp>,
    /// When its secret was last rotated.
    pub rotated_at: Option<Timestamp>,
    /// Until when the secret before the last rotation still works.
    pub grace_until: Option<Timestamp>,
    /// Last successful use (recorded in batches, so up to a minute behind).
    pub last_used_at: Option<Timestamp>,
}

/// A key with its secret, shown once by create, rotate and bootstrap.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IssuedKey {
    /// The key's metadata.
    pub key: ApiKey,
    /// The full key text. Store it now: Velu keeps only a hash.
    pub token: String,
}

/// Input of `key create`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateKey {
    /// Name, unique among the owner's active keys.
    pub name: String,
    /// `viewer`, `builder` or `admin`; or give `scopes`.
    pub role: Option<String>,
    /// Explicit scopes; or give `role`.
    pub scopes: Vec<String>,
    /// RFC 3339 expiry, in the future.
    pub expires_at: Option<String>,
}

/// Input of `key rotate`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotateKey {
    /// Seconds the old secret keeps working (0 or absent: none; at most 7 days).
    pub grace_secs: Option<u64>,
}

/// Input of `key import`: a key of the earlier system, by its hash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportKey {
    /// Name for the imported key.
    pub name: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// base64url(sha256(pepper + raw key)), as the earlier system stored it.
    pub hash: String,
}

/// What `whoami` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Whoami {
    /// `cli` or `api_key`.
    pub actor_type: String,
    /// OS user or key id.
    pub actor_id: String,
    /// The key's org, or `null` for the operator and platform keys.
    pub org: Option<Org>,
    /// The org's current plan.
    pub plan: Option<Plan>,
    /// What this principal may do.
    pub scopes: ScopeSet,
}

impl ApiKey {
    pub(crate) fn from_model(m: api_keys::Model, at: DateTime<Utc>) -> ApiKey {
        let status = if m.revoked_at.is_some() {
            KeyStatus::Revoked
        } else if m.expires_at.is_some_and(|e| e <= at) {
            KeyStatus::Expired
        } else {
            KeyStatus::Active
        };
        let grace_until = m.previous_valid_until.filter(|g| *g > at).map(Timestamp);
        ApiKey {
            id: m.kid,
            org_id: m.org_id,
            name: m.name,
            scopes: ScopeSet::from_stored(&m.scopes),
            status,
            legacy: m.legacy,
            created_by_type: m.created_by_type,
            created_by_id: m.created_by_id,
            created_at: m.created_at.into(),
            expires_at: m.expires_at.map(Timestamp),
            revoked_at: m.revoked_at.map(Timestamp),
            rotated_at: m.rotated_at.map(Timestamp),
            grace_until,
            last_used_at: m.last_used_at.map(Timestamp),
        }
    }
}

/// Resolves the owner and checks the right to manage its keys; returns the org row.
async fn authorize<C: ConnectionTrait>(
    conn: &C,
    who: &Principal,
    owner: &KeyOwner,
) -> CoreResult<Option<organizations::Model>> {
    match owner {
        KeyOwner::Org(r) => {
            let org = who.enter(conn, r, Scope::ApiKeysManage).await?;
            Ok(Some(org.into_row()))
        }
        KeyOwner::Platform => {
            who.require(Scope::OrgsManage)?;
            if who.org_id.is_some() {
                return Err(CoreError::forbidden(Scope::OrgsManage));
            }
            Ok(None)
        }
    }
}

fn owner_filter(org: &Option<organizations::Model>) -> Condition {
    match org {
        Some(o) => Condition::all().add(api_keys::Column::OrgId.eq(o.id.as_str())),
        None => Condition::all().add(api_keys::Column::OrgId.is_null()),
    }
}

/// Validates and trims a key name.
fn validate_key_name(name: &str) -> CoreResult<String> {
    let name = name.trim();
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' ');
    if name.is_empty() || name.chars().count() > MAX_KEY_NAME || !name.chars().all(ok_char) {
        return Err(CoreError::invalid(
            "name",
            format!("1 to {MAX_KEY_NAME} characters: letters, digits, space, '-', '_', '.'"),
        ));
    }
    Ok(name.to_owned())
}

/// The scopes a new key asks for, checked against the owner and the creator.
fn requested_scopes(
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

fn parse_expiry(text: Option<&str>, at: DateTime<Utc>) -> CoreResult<Option<DateTime<Utc>>> {
    let Some(text) = text else { return Ok(None) };
    let t = time::parse_within("expires_at", text, at, time::KEY_EXPIRY_HORIZON)?;
    if t <= at {
        return Err(CoreError::invalid("expires_at", "must be in the future"));
    }
    Ok(Some(t))
}

async fn ensure_name_free<C: ConnectionTrait>(
    conn: &C,
    org: &Option<organizations::Model>,
    name: &str,
) -> CoreResult<()> {
    let taken = api_keys::Entity::find()
        .filter(owner_filter(org))
        .filter(api_keys::Column::Name.eq(name))
        .filter(api_keys::Column::RevokedAt.is_null())
        .count(conn)
        .await?;
    if taken > 0 {
        return Err(CoreError::conflict(format!(
            "an active key named `{name}` already exists"
        )));
    }
    Ok(())
}

async fn ensure_key_quota<C: ConnectionTrait>(
    conn: &C,
    org: &organizations::Model,
    at: DateTime<Utc>,
) -> CoreResult<()> {
    let plan = current_plan(conn, &org.id).await?;
    let limit = plan.limits().api_keys;
    let active = api_keys::Entity::find()
        .filter(api_keys::Column::OrgId.eq(org.id.as_str()))
        .filter(api_keys::Column::RevokedAt.is_null())
        .filter(
            Condition::any()
                .add(api_keys::Column::ExpiresAt.is_null())
                .add(api_keys::Column::ExpiresAt.gt(at)),
        )
        .count(conn)
        .await?;
    if active >= u64::from(limit) {
        return Err(CoreError::QuotaExceeded {
            what: format!("active API keys on the {plan} plan"),
            limit: u64::from(limit),
        });
    }
    Ok(())
}

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
    let model = model.insert(conn).await?;
    audit::record(
        conn,
        &who.actor,
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
    let org = authorize(velu.db().conn(), who, owner).await?;
    let scopes = requested_scopes(who, org.is_none(), input.role.as_deref(), &input.scopes)?;
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

/// Lists keys, oldest first. Never returns secrets.
pub async fn list_keys(
    velu: &Velu,
    who: &Principal,
    owner: &KeyOwner,
    page: &PageRequest,
) -> CoreResult<Page<ApiKey>> {
    let conn = velu.db().conn();
    let org = authorize(conn, who, owner).await?;
    let owner_text = org.as_ref().map_or("platform", |o| o.id.as_str());
    let q = page.validate("keys", owner_text)?;
    let mut select = api_keys::Entity::find()
        .filter(owner_filter(&org))
        .order_by_asc(api_keys::Column::CreatedAt)
        .order_by_asc(api_keys::Column::Kid)
        .limit(q.fetch());
    if let Some([at, kid]) = q.after.as_deref() {
        let at = time::parse("cursor", at)?;
        select = select.filter(
            Condition::any()
                .add(api_keys::Column::CreatedAt.gt(at))
                .add(
                    Condition::all()
                        .add(api_keys::Column::CreatedAt.eq(at))
                        .add(api_keys::Column::Kid.gt(kid.as_str())),
                ),
        );
    }
    let rows = select.all(conn).await?;
    let at = now();
    Ok(q.finish(
        rows,
        |r| vec![time::format(&r.created_at), r.kid.clone()],
        |m| ApiKey::from_model(m, at),
    ))
}

/// Finds a key of the owner that `who` may act on: `not_found` when the owner has no such
/// key, `forbidden` when the key holds a scope `who` lacks.
async fn find_key<C: ConnectionTrait>(
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

/// Shows one key by id.
pub async fn show_key(
    velu: &Velu,
    who: &Principal,
    owner: &KeyOwner,
    kid: &str,
) -> CoreResult<ApiKey> {
    let conn = velu.db().conn();
    let org = authorize(conn, who, owner).await?;
    let model = find_key(conn, who, &org, kid).await?;
    Ok(ApiKey::from_model(model, now()))
}

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
    authorize(velu.db().conn(), who, owner).await?;
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

/// Describes the calling principal: its org, plan (read fresh) and scopes.
pub async fn whoami(velu: &Velu, who: &Principal) -> CoreResult<Whoami> {
    let org = match &who.org_id {
        Some(id) => organizations::Entity::find_by_id(id.clone())
            .one(velu.db().conn())
            .await?
            .map(Org::from_model)
            .transpose()?,
        None => None,
    };
    Ok(Whoami {
        actor_type: who.actor.kind.as_str().to_owned(),
        actor_id: who.actor.id.clone(),
        plan: org.as_ref().map(|o| o.plan),
        org,
        scopes: who.scopes.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[test]
    fn key_names_are_checked() {
        assert_eq!(validate_key_name(" ci deploy ").unwrap(), "ci deploy");
        assert!(validate_key_name("").is_err());
        assert!(validate_key_name("bad/name").is_err());
        assert!(validate_key_name(&"x".repeat(101)).is_err());
    }
}
