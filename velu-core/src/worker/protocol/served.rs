//! Whom a worker key serves (every org, or its own), and the checks every protocol input
//! goes through: a remote worker's words come from outside the platform.

use crate::db::CrossOrg;
use std::time::Duration;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

use super::{DEFAULT_LEASE, LEASE_MS_RANGE, MAX_TOKENS};
use crate::entity::jobs;
use crate::fleet::MAX_ID_LEN;
use crate::jobs::JobStatus;
use crate::plans::Plan;
use crate::principal::Principal;
use crate::scopes::Scope;
use crate::tenancy::OrgRef;
use crate::{CoreError, CoreResult, Velu};

/// Whose jobs a worker key may work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Served {
    /// A platform key: every org's, fairly.
    All,
    /// An org key: only this org's, within its plan as stored now.
    Org {
        /// The org's id.
        id: String,
        /// Its plan.
        plan: Plan,
    },
}

impl Served {
    /// The org an org key serves; `None` for a platform key.
    pub fn org_id(&self) -> Option<&str> {
        match self {
            Served::All => None,
            Served::Org { id, .. } => Some(id),
        }
    }
}

/// Whom `who` serves: `forbidden` without `jobs:work`; an org key enters its own org
/// (the tenancy floor), a platform key serves all.
pub(super) async fn served(velu: &Velu, who: &Principal) -> CoreResult<Served> {
    who.require(Scope::JobsWork)?;
    match &who.org_id {
        None => Ok(Served::All),
        Some(org) => {
            let tx = velu.db().read_tx().await?;
            let entered = who
                .enter(&tx, &OrgRef::new(org.clone()), Scope::JobsWork)
                .await?;
            tx.commit().await?;
            Ok(Served::Org {
                id: entered.id().to_owned(),
                plan: entered.plan()?,
            })
        }
    }
}

/// The tokens among `tokens` of running jobs that `served` may touch: every one for a
/// platform key; for an org key, only its own org's (one query). Another org's token is
/// dropped here, exactly like an unknown one, so it is never renewed, finished or
/// released.
pub(super) async fn own_tokens(
    velu: &Velu,
    served: &Served,
    tokens: &[String],
) -> CoreResult<Vec<String>> {
    let Some(org) = served.org_id() else {
        return Ok(tokens.to_vec());
    };
    if tokens.is_empty() {
        return Ok(Vec::new());
    }
    // The worker side of the queue (its own org filter below).
    let tx = velu.db().cross_org_read_tx(CrossOrg::Queue).await?;
    let rows: Vec<Option<String>> = jobs::Entity::find()
        .select_only()
        .column(jobs::Column::LeaseToken)
        .filter(jobs::Column::OrgId.eq(org))
        .filter(jobs::Column::Status.eq(JobStatus::Running.as_str()))
        .filter(jobs::Column::LeaseToken.is_in(tokens.iter().map(String::as_str)))
        .into_tuple()
        .all(&tx)
        .await?;
    tx.commit().await?;
    Ok(rows.into_iter().flatten().collect())
}

/// A worker id: 1 to [`MAX_ID_LEN`] bytes without control characters.
pub(super) fn worker_id(text: &str) -> CoreResult<&str> {
    bounded_text("worker_id", text, MAX_ID_LEN)
}

/// Text of 1 to `max` bytes without control characters (U+0000 included).
pub(super) fn bounded_text<'a>(field: &str, text: &'a str, max: usize) -> CoreResult<&'a str> {
    if text.is_empty() || text.len() > max {
        return Err(CoreError::invalid(
            field,
            format!("must be 1 to {max} bytes long"),
        ));
    }
    crate::text::plain(field, text)
}

/// The lease a worker asks for, in ms: [`DEFAULT_LEASE`] when none.
pub(super) fn lease(ms: Option<u64>) -> CoreResult<Duration> {
    match ms {
        None => Ok(DEFAULT_LEASE),
        Some(ms) if LEASE_MS_RANGE.contains(&ms) => Ok(Duration::from_millis(ms)),
        Some(_) => Err(CoreError::invalid(
            "lease_ms",
            format!(
                "must be between {} and {}",
                LEASE_MS_RANGE.start(),
                LEASE_MS_RANGE.end()
            ),
        )),
    }
}

/// Lease tokens as a worker sends them: at most [`MAX_TOKENS`], each 1 to 128 bytes of
/// plain text (they are opaque; a wrong one simply matches nothing).
pub(super) fn tokens(tokens: &[String]) -> CoreResult<()> {
    if tokens.len() > MAX_TOKENS {
        return Err(CoreError::invalid(
            "tokens",
            format!("at most {MAX_TOKENS} tokens at once"),
        ));
    }
    for t in tokens {
        bounded_text("tokens", t, 128)?;
    }
    Ok(())
}
