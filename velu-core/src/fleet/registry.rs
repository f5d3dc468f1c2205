//! The registry's writes: register (upsert, never across owners), beat, stopped, prune.

use crate::admission::{self, Quota};
use crate::db::CrossOrg;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter};

use super::documents::{WorkerInfo, stale_at};
use super::input::{self, WorkerRegistration};
use super::{MAX_WORKERS_PER_ORG, PRUNE_EVERY, PRUNE_STOPPED_AFTER, PRUNE_UNSEEN_AFTER};
use crate::entity::workers::{self, Column};
use crate::error::is_unique_violation;
use crate::{CoreError, CoreResult, Velu};

/// Registers a worker, or re-registers one of the same owner (a restart: `started_at`
/// moves, `stopped_at` clears). An id held by another owner (another org, or the
/// platform for an org's worker and the reverse) is a `conflict` until its row is pruned;
/// an org already holding [`MAX_WORKERS_PER_ORG`] rows is `quota_exceeded`. Prunes first.
pub async fn register(velu: &Velu, reg: &WorkerRegistration) -> CoreResult<WorkerInfo> {
    let v = reg.validate()?;
    prune(velu, v.at).await?;
    let tx = velu.db().cross_org_tx(CrossOrg::Fleet).await?;
    let conn = &tx;
    let fields = workers::ActiveModel {
        host: Set(reg.host.clone()),
        version: Set(reg.version.clone()),
        kinds: Set(serde_json::to_value(&v.kinds).expect("a list of strings serializes")),
        remote: Set(reg.remote),
        concurrency: Set(v.concurrency),
        heartbeat_secs: Set(v.heartbeat_secs),
        running_jobs: Set(0),
        started_at: Set(v.at),
        last_seen_at: Set(v.at),
        stale_at: Set(stale_at(v.at, v.heartbeat_secs)),
        stopped_at: Set(None),
        ..Default::default()
    };
    // Update in place only a row of the same owner; then insert, which the primary key
    // refuses for an id someone else holds (also when two register it at once).
    let updated = workers::Entity::update_many()
        .set(fields.clone())
        .filter(Column::Id.eq(reg.id.as_str()))
        .filter(owned_by(reg.org_id.as_deref()))
        .exec(conn)
        .await?;
    if updated.rows_affected == 0 {
        if let Some(org) = &reg.org_id {
            // Registrations for this org take turns to the commit (admission.rs).
            admission::hold(conn, Quota::Workers, &[org.as_str()]).await?;
            let held = workers::Entity::find()
                .filter(Column::OrgId.eq(org.as_str()))
                .count(conn)
                .await?;
            if held >= MAX_WORKERS_PER_ORG {
                return Err(CoreError::QuotaExceeded {
                    what: "registered workers of the org".into(),
                    limit: MAX_WORKERS_PER_ORG,
                });
            }
        }
        let row = workers::ActiveModel {
            id: Set(reg.id.clone()),
            org_id: Set(reg.org_id.clone()),
            ..fields
        };
        match workers::Entity::insert(row)
            .exec_without_returning(conn)
            .await
        {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(CoreError::conflict(format!(
                    "worker id `{}` is registered by another owner; choose another id",
                    reg.id
                )));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let row = workers::Entity::find_by_id(reg.id.clone())
        .filter(owned_by(reg.org_id.as_deref()))
        .one(conn)
        .await?
        .ok_or_else(|| CoreError::not_found("worker", reg.id.as_str()))?;
    tx.commit().await?;
    WorkerInfo::from_model(row, v.at)
}

/// Records a heartbeat of worker `worker_id` of owner `org_id` (`None`: the platform),
/// running `running_jobs` jobs, at `at`. `not_found` unless a running (not stopped)
/// registration of that id belongs to that owner: the worker should register again.
pub async fn beat(
    velu: &Velu,
    worker_id: &str,
    org_id: Option<&str>,
    running_jobs: u32,
    at: DateTime<Utc>,
) -> CoreResult<()> {
    input::worker_id(worker_id)?;
    let running = input::count("running_jobs", running_jobs)?;
    let owner = owned_by(checked_org(org_id)?);
    let at = at.trunc_subsecs(6);
    let tx = velu.db().cross_org_tx(CrossOrg::Fleet).await?;
    let conn = &tx;
    let not_found = || CoreError::not_found("worker", worker_id);
    let row = workers::Entity::find_by_id(worker_id.to_owned())
        .filter(owner.clone())
        .filter(Column::StoppedAt.is_null())
        .one(conn)
        .await?
        .ok_or_else(not_found)?;
    let done = workers::Entity::update_many()
        .col_expr(Column::LastSeenAt, Expr::value(at))
        .col_expr(
            Column::StaleAt,
            Expr::value(stale_at(at, row.heartbeat_secs)),
        )
        .col_expr(Column::RunningJobs, Expr::value(running))
        .filter(Column::Id.eq(worker_id))
        .filter(owner)
        .filter(Column::StoppedAt.is_null())
        .exec(conn)
        .await?;
    if done.rows_affected == 0 {
        return Err(not_found());
    }
    tx.commit().await?;
    prune_now_and_then(velu, at).await;
    Ok(())
}

/// When this process last pruned from a beat, in Unix seconds.
static LAST_PRUNE: AtomicI64 = AtomicI64::new(0);

/// Prunes at most once per [`PRUNE_EVERY`] per process, from beats (so a fleet of only
/// remote workers, whose beats the server records, is pruned too). A failure is logged.
async fn prune_now_and_then(velu: &Velu, at: DateTime<Utc>) {
    let last = LAST_PRUNE.load(Ordering::Relaxed);
    let due = at.timestamp() - last >= PRUNE_EVERY.num_seconds();
    if due
        && LAST_PRUNE
            .compare_exchange(last, at.timestamp(), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        && let Err(e) = prune(velu, at).await
    {
        tracing::warn!(error = %e, "pruning the fleet registry failed");
    }
}

/// Marks worker `worker_id` of owner `org_id` stopped at `at` (a clean shutdown). Stopping
/// a stopped worker is fine; an unknown id (or another owner's) is `not_found`.
pub async fn stopped(
    velu: &Velu,
    worker_id: &str,
    org_id: Option<&str>,
    at: DateTime<Utc>,
) -> CoreResult<()> {
    input::worker_id(worker_id)?;
    let owner = owned_by(checked_org(org_id)?);
    let at = at.trunc_subsecs(6);
    let tx = velu.db().cross_org_tx(CrossOrg::Fleet).await?;
    let conn = &tx;
    let done = workers::Entity::update_many()
        .col_expr(Column::StoppedAt, Expr::value(at))
        .col_expr(Column::LastSeenAt, Expr::value(at))
        .col_expr(Column::RunningJobs, Expr::value(0))
        .filter(Column::Id.eq(worker_id))
        .filter(owner.clone())
        .filter(Column::StoppedAt.is_null())
        .exec(conn)
        .await?;
    if done.rows_affected > 0 {
        tx.commit().await?;
        return Ok(());
    }
    let exists = workers::Entity::find_by_id(worker_id.to_owned())
        .filter(owner)
        .one(conn)
        .await?
        .is_some();
    if exists {
        Ok(())
    } else {
        Err(CoreError::not_found("worker", worker_id))
    }
}

/// Deletes the rows of workers not seen for [`PRUNE_UNSEEN_AFTER`] before `at`, and of
/// workers stopped [`PRUNE_STOPPED_AFTER`] before `at`. Returns how many went.
pub async fn prune(velu: &Velu, at: DateTime<Utc>) -> CoreResult<u64> {
    let tx = velu.db().cross_org_tx(CrossOrg::Fleet).await?;
    let gone = workers::Entity::delete_many()
        .filter(
            Condition::any()
                .add(Column::LastSeenAt.lt(at - PRUNE_UNSEEN_AFTER))
                .add(Column::StoppedAt.lt(at - PRUNE_STOPPED_AFTER)),
        )
        .exec(&tx)
        .await?;
    tx.commit().await?;
    Ok(gone.rows_affected)
}

/// The rows of owner `org_id`: that org's, or the platform's (`org_id IS NULL`).
fn owned_by(org_id: Option<&str>) -> SimpleExpr {
    match org_id {
        Some(org) => Column::OrgId.eq(org),
        None => Column::OrgId.is_null(),
    }
}

/// An owner as a caller gave it, checked before it reaches a query.
fn checked_org(org_id: Option<&str>) -> CoreResult<Option<&str>> {
    if let Some(org) = org_id
        && (org.len() > 36 || org.chars().any(char::is_control))
    {
        return Err(CoreError::invalid("org_id", "not an org id"));
    }
    Ok(org_id)
}
