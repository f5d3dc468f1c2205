//! `apply_event`: the operation behind `POST /v1/billing/events`.
//!
//! In order: a secret must be configured (`config` otherwise: fail closed), the body
//! within [`MAX_BODY_BYTES`] (`payload_too_large`), the signature valid and fresh
//! (`bad_signature`), the body a known event (`invalid`), the org existing (`not_found`).
//! Then, in one write transaction: an event id already stored is a replay (the first
//! receipt again, nothing done; the same id with another body is a `conflict`); else the
//! row is inserted and, unless a later event of the org was applied already, the plan is
//! set through `orgs::set_plan`'s own path, audited with the event id. The primary key on
//! the event id makes concurrent deliveries of one event apply it exactly once.

use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect,
    TransactionTrait,
};
use sha2::{Digest, Sha256};

use super::documents::{EventOutcome, EventReceipt};
use super::event::{BillingEvent, MAX_BODY_BYTES};
use super::secret;
use super::signature::{self, TOLERANCE_SECS};
use crate::db::notify::Change;
use crate::entity::{billing_events, organizations};
use crate::error::is_unique_violation;
use crate::orgs;
use crate::plans::Plan;
use crate::principal::{Actor, ActorType, Principal};
use crate::scopes::{Scope, ScopeSet};
use crate::tenancy::{OrgRef, OrgScope};
use crate::time::now;
use crate::{CoreError, CoreResult, Velu};

/// A delivery as it arrived: the `Velu-Signature` header value (if any) and the body's
/// exact bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedEvent {
    /// The `Velu-Signature` header value; `None` when the header is absent.
    pub signature: Option<String>,
    /// The body, byte for byte as signed.
    pub body: Vec<u8>,
}

/// The principal a billing event acts as: actor `billing` with the event id, allowed to
/// change any org's plan (`admin:orgs:manage`) and nothing else.
pub fn billing_principal(event_id: &str) -> Principal {
    Principal {
        actor: Actor {
            kind: ActorType::Billing,
            id: event_id.to_owned(),
        },
        org_id: None,
        scopes: ScopeSet::parse(&[Scope::OrgsManage.as_str()]).unwrap_or_default(),
        plan: None,
    }
}

/// Verifies a signed billing event and applies it once. See the module documentation for
/// the checks and their errors; docs/billing.md for the contract.
pub async fn apply_event(velu: &Velu, signed: &SignedEvent) -> CoreResult<EventReceipt> {
    let secret = velu
        .settings()
        .billing_secret
        .as_ref()
        .ok_or_else(secret::missing)?;
    if signed.body.len() > MAX_BODY_BYTES {
        return Err(CoreError::PayloadTooLarge {
            size: signed.body.len() as u64,
            limit: MAX_BODY_BYTES as u64,
        });
    }
    let at = now();
    let verified = signature::verify(
        secret,
        signed.signature.as_deref(),
        &signed.body,
        at.timestamp(),
    )?;
    let event = BillingEvent::parse(&signed.body, verified.timestamp + TOLERANCE_SECS)?;
    let digest = body_digest(&signed.body);
    let who = billing_principal(&event.id);
    let tx = velu.db().write_tx().await?;
    match apply_in_tx(&tx, &who, &event, &digest, at).await {
        Ok((receipt, change)) => {
            tx.commit().await?;
            if let Some(change) = change {
                velu.changed(change);
            }
            Ok(receipt)
        }
        // Another delivery of the same id committed first (PostgreSQL: the insert waited
        // for it, then failed); the transaction is spoiled, so read in a new one.
        Err(Lost::Race) => {
            tx.rollback().await?;
            let tx = velu.db().conn().begin().await?;
            let org = who.enter(&tx, &event.org, Scope::OrgsManage).await?;
            let receipt = replay(&tx, &org, &event, &digest).await?;
            tx.commit().await?;
            receipt.ok_or_else(|| reused(&event.id))
        }
        Err(Lost::Error(e)) => Err(e),
    }
}

enum Lost {
    Race,
    Error(CoreError),
}

impl From<CoreError> for Lost {
    fn from(e: CoreError) -> Self {
        Lost::Error(e)
    }
}

impl From<sea_orm::DbErr> for Lost {
    fn from(e: sea_orm::DbErr) -> Self {
        Lost::Error(e.into())
    }
}

async fn apply_in_tx(
    tx: &DatabaseTransaction,
    who: &Principal,
    event: &BillingEvent,
    digest: &str,
    at: DateTime<Utc>,
) -> Result<(EventReceipt, Option<Change>), Lost> {
    let org = who.enter(tx, &event.org, Scope::OrgsManage).await?;
    // One event of an org at a time (PostgreSQL; SQLite's write lock already is), so the
    // "later event applied already" check below cannot race another event of the org.
    let locked = organizations::Entity::find_by_id(org.id().to_owned())
        .lock_exclusive()
        .one(tx)
        .await?
        .ok_or_else(|| CoreError::not_found("organization", org.id()))?;
    let from_plan = Plan::from_stored(&locked.plan)?;
    if let Some(receipt) = replay(tx, &org, event, digest).await? {
        return Ok((receipt, None));
    }
    let created = DateTime::from_timestamp(event.created, 0)
        .ok_or_else(|| CoreError::invalid("created", "out of range"))?;
    let newer_applied = billing_events::Entity::find()
        .filter(billing_events::Column::OrgId.eq(org.id()))
        .filter(billing_events::Column::Outcome.eq(EventOutcome::Applied.as_str()))
        .filter(billing_events::Column::EventCreatedAt.gt(created))
        .select_only()
        .column(billing_events::Column::EventId)
        .into_tuple::<String>()
        .one(tx)
        .await?
        .is_some();
    let outcome = if newer_applied {
        EventOutcome::Superseded
    } else {
        EventOutcome::Applied
    };
    let row = billing_events::ActiveModel {
        event_id: Set(event.id.clone()),
        org_id: Set(org.id().to_owned()),
        event_type: Set(event.kind.as_str().to_owned()),
        plan: Set(event.plan.as_str().to_owned()),
        from_plan: Set(from_plan.as_str().to_owned()),
        outcome: Set(outcome.as_str().to_owned()),
        event_created_at: Set(created),
        body_sha256: Set(digest.to_owned()),
        received_at: Set(at),
    };
    // First, so a concurrent delivery of the same id stops here before changing anything.
    match billing_events::Entity::insert(row)
        .exec_without_returning(tx)
        .await
    {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Err(Lost::Race),
        Err(e) => return Err(e.into()),
    }
    let change = match outcome {
        EventOutcome::Applied => {
            let org_ref = OrgRef::new(org.id());
            Some(
                orgs::set_plan_in_tx(tx, who, &org_ref, event.plan, Some(&event.id))
                    .await?
                    .1,
            )
        }
        EventOutcome::Superseded => None,
    };
    let row = billing_events::Model {
        event_id: event.id.clone(),
        org_id: org.id().to_owned(),
        event_type: event.kind.as_str().to_owned(),
        plan: event.plan.as_str().to_owned(),
        from_plan: from_plan.as_str().to_owned(),
        outcome: outcome.as_str().to_owned(),
        event_created_at: created,
        body_sha256: digest.to_owned(),
        received_at: at,
    };
    Ok((EventReceipt::from_row(row, false)?, change))
}

/// The first receipt of `event` if its id was stored already for this org: `Some` for a
/// replay with the same body, `conflict` for the same id with another body, `None` for a
/// new id.
async fn replay<C: ConnectionTrait>(
    conn: &C,
    org: &OrgScope,
    event: &BillingEvent,
    digest: &str,
) -> CoreResult<Option<EventReceipt>> {
    let Some(row) = billing_events::Entity::find_by_id(event.id.clone())
        .filter(billing_events::Column::OrgId.eq(org.id()))
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    if row.body_sha256 != digest {
        return Err(reused(&event.id));
    }
    EventReceipt::from_row(row, true).map(Some)
}

fn reused(event_id: &str) -> CoreError {
    CoreError::conflict(format!(
        "billing event `{event_id}` was already received with a different body; \
         an event id names one event"
    ))
}

fn body_digest(body: &[u8]) -> String {
    signature::hex(&Sha256::digest(body))
}
