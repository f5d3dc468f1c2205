//! The audit log: one event per mutation, written in the mutation's own transaction.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::Serialize;
use serde_json::Value;

use crate::entity::audit_events;
use crate::ids::new_id;
use crate::pagination::{Page, PageRequest};
use crate::principal::{ActorType, PLATFORM, Principal};
use crate::scopes::Scope;
use crate::tenancy::OrgRef;
use crate::time::{Timestamp, now};
use crate::{CoreResult, Velu};

/// One audited action.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    /// Event id (UUIDv7, so ids sort by time).
    pub id: String,
    /// The org concerned, if any.
    pub org_id: Option<String>,
    /// `cli`, `api_key`, `schedule` or `billing`; `platform` for what the platform did
    /// (the operator, a platform key), as an org's key reads it.
    pub actor_type: String,
    /// OS user, key id, schedule id or billing event id; `platform` as above.
    pub actor_id: String,
    /// What happened, e.g. `key.revoke`.
    pub action: String,
    /// The kind of thing acted on: `org`, `api_key`, `job`.
    pub target_type: String,
    /// Its id.
    pub target_id: String,
    /// Non-secret details.
    pub details: Value,
    /// When.
    pub created_at: Timestamp,
}

/// What a mutation records.
pub(crate) struct Record<'a> {
    pub org_id: Option<&'a str>,
    pub action: &'static str,
    pub target_type: &'static str,
    pub target_id: &'a str,
    pub details: Value,
}

/// Writes one audit event of `who`'s with `conn` (the mutation's transaction).
pub(crate) async fn record<C: ConnectionTrait>(
    conn: &C,
    who: &Principal,
    rec: Record<'_>,
) -> CoreResult<()> {
    audit_events::Entity::insert(audit_events::ActiveModel {
        id: Set(new_id()),
        org_id: Set(rec.org_id.map(str::to_owned)),
        actor_type: Set(who.actor.kind.as_str().to_owned()),
        actor_id: Set(who.actor.id.clone()),
        actor_org_id: Set(who.key_org().map(str::to_owned)),
        action: Set(rec.action.to_owned()),
        target_type: Set(rec.target_type.to_owned()),
        target_id: Set(rec.target_id.to_owned()),
        details: Set(rec.details),
        created_at: Set(now()),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// Records many actions in one `INSERT` (a grouped submit: one per job), at `at`.
pub(crate) async fn record_many<C: ConnectionTrait>(
    conn: &C,
    records: impl IntoIterator<Item = (&Principal, Record<'_>)>,
    at: chrono::DateTime<chrono::Utc>,
) -> CoreResult<()> {
    let models: Vec<audit_events::ActiveModel> = records
        .into_iter()
        .map(|(who, rec)| audit_events::ActiveModel {
            id: Set(new_id()),
            org_id: Set(rec.org_id.map(str::to_owned)),
            actor_type: Set(who.actor.kind.as_str().to_owned()),
            actor_id: Set(who.actor.id.clone()),
            actor_org_id: Set(who.key_org().map(str::to_owned)),
            action: Set(rec.action.to_owned()),
            target_type: Set(rec.target_type.to_owned()),
            target_id: Set(rec.target_id.to_owned()),
            details: Set(rec.details),
            created_at: Set(at),
        })
        .collect();
    if models.is_empty() {
        return Ok(());
    }
    audit_events::Entity::insert_many(models)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Lists an org's audit events, newest first. Needs `audit:read`.
pub async fn list_audit(
    velu: &Velu,
    who: &Principal,
    org: &OrgRef,
    page: &PageRequest,
) -> CoreResult<Page<AuditEvent>> {
    let tx = velu.db().read_tx().await?;
    let org = who.enter_to_page(&tx, org, Scope::AuditRead).await?;
    let q = page.validate("audit", org.id())?;
    let mut select = audit_events::Entity::find()
        .filter(audit_events::Column::OrgId.eq(org.id()))
        .order_by_desc(audit_events::Column::Id)
        .limit(q.fetch());
    if let Some(after) = q.after_one() {
        select = select.filter(audit_events::Column::Id.lt(after));
    }
    let mut rows = select.all(&tx).await?;
    if who.org_id.is_some() {
        as_the_org_sees_them(org.id(), &mut rows);
    }
    tx.commit().await?;
    Ok(q.finish(rows, |r| vec![r.id.clone()], to_event))
}

/// Audit records as one of org `org_id`'s keys reads them: what the platform did in the
/// org (the operator at the CLI, whose id is an OS user of the platform's hosts, or a
/// platform key) reads as actor `platform`, as its pauses do (`pause.rs`); the org's own
/// keys, schedules and billing events keep their ids. A key is the org's own when the
/// record says so (`actor_org_id`, written with it), whether or not its row is still
/// there; a key record that names no org (none is known) reads as the platform's.
fn as_the_org_sees_them(org_id: &str, rows: &mut [audit_events::Model]) {
    for row in rows {
        if is_platform(&row.actor_type, row.actor_org_id.as_deref(), org_id) {
            row.actor_type = PLATFORM.to_owned();
            row.actor_id = PLATFORM.to_owned();
        }
    }
}

/// Whether an actor of type `actor_type` whose key belongs to `actor_org` acted for the
/// platform in org `org_id` (see [`as_the_org_sees_them`]): the operator, and any key
/// that is not one of the org's own.
pub(crate) fn is_platform(actor_type: &str, actor_org: Option<&str>, org_id: &str) -> bool {
    actor_type == ActorType::Cli.as_str()
        || (actor_type == ActorType::ApiKey.as_str() && actor_org != Some(org_id))
}

fn to_event(m: audit_events::Model) -> AuditEvent {
    AuditEvent {
        id: m.id,
        org_id: m.org_id,
        actor_type: m.actor_type,
        actor_id: m.actor_id,
        action: m.action,
        target_type: m.target_type,
        target_id: m.target_id,
        details: m.details,
        created_at: m.created_at.into(),
    }
}
