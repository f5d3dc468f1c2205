//! The registry's writes: register (upsert within its owner), beat, stopped, prune. Rows
//! are keyed by (owner, id): an org's id, or `''` for the platform, and the worker's id.

use crate::admission::{self, Quota};
use crate::db::CrossOrg;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter};

use super::documents::{WorkerInfo, stale_at};
use super::input::{self, WorkerRegistration};
use super::{MAX_WORKERS_PER_ORG, PRUNE_EVERY, PRUNE_STOPPED_AFTER, PRUNE_UNSEEN_AFTER};
use crate::entity::workers::{self, Column};
use crate::{CoreError, CoreResult, Velu};

/// Registers a worker, or re-registers one of the same owner (a restart: `started_at`
/// moves, `stopped_at` clears). Ids are per owner (each org, and the platform, has its
/// own): another owner's worker of the same id is another worker, untouched. An org
/// already holding [`MAX_WORKERS_PER_ORG`] rows is `quota_exceeded`. Prunes first.
pub async fn register(velu: &Velu, reg: &WorkerRegistration) -> CoreResult<WorkerInfo> {
    let v = reg.validate()?;
    prune(velu, v.at).await?;
    let owner = owner_key(reg.org_id.as_deref());
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
    let updated = workers::Entity::update_many()
        .set(fields.clone())
        .filter(Column::Owner.eq(owner))
        .filter(Column::Id.eq(reg.id.as_str()))
        .exec(conn)
        .await?;
    if updated.rows_affected == 0 {
        if let Some(org) = &reg.org_id {
            // Registrations for this org take turns to the commit (admission.rs).
            admission::hold(conn, Quota::Workers, &[org.as_str()]).await?;
            // Not this id: a registration of it that got in first (while this one waited
            // its turn) is the row this one replaces, not one more.
            let held = workers::Entity::find()
                .filter(Column::Owner.eq(org.as_str()))
                .filter(Column::Id.ne(reg.id.as_str()))
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
            owner: Set(owner.to_owned()),
            id: Set(reg.id.clone()),
            org_id: Set(reg.org_id.clone()),
            ..fields
        };
        // Two platform workers registering one id at once: the second updates the row
        // the first inserted (an org's registrations already took turns above).
        workers::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([Column::Owner, Column::Id])
                    .update_columns(REGISTERED)
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
    }
    let row = workers::Entity::find_by_id((owner.to_owned(), reg.id.clone()))
        .one(conn)
        .await?
        .ok_or_else(|| CoreError::not_found("worker", reg.id.as_str()))?;
    tx.commit().await?;
    WorkerInfo::from_model(row, v.at)
}

/// The columns a registration sets on a row that is already there.
const REGISTERED: [Column; 11] = [
    Column::Host,
    Column::Version,
    Column::Kinds,
    Column::Remote,
    Column::Concurrency,
    Column::HeartbeatSecs,
    Column::RunningJobs,
    Column::StartedAt,
    Column::LastSeenAt,
    Column::StaleAt,
    Column::StoppedAt,
];

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
    let owner = owner_key(checked_org(org_id)?);
    let at = at.trunc_subsecs(6);
    let tx = velu.db().cross_org_tx(CrossOrg::Fleet).await?;
    let conn = &tx;
    let not_found = || CoreError::not_found("worker", worker_id);
    let row = workers::Entity::find_by_id((owner.to_owned(), worker_id.to_owned()))
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
        .filter(Column::Owner.eq(owner))
        .filter(Column::Id.eq(worker_id))
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
    let owner = owner_key(checked_org(org_id)?);
    let at = at.trunc_subsecs(6);
    let tx = velu.db().cross_org_tx(CrossOrg::Fleet).await?;
    let conn = &tx;
    let done = workers::Entity::update_many()
        .col_expr(Column::StoppedAt, Expr::value(at))
        .col_expr(Column::LastSeenAt, Expr::value(at))
        .col_expr(Column::RunningJobs, Expr::value(0))
        .filter(Column::Owner.eq(owner))
        .filter(Column::Id.eq(worker_id))
        .filter(Column::StoppedAt.is_null())
        .exec(conn)
        .await?;
    if done.rows_affected > 0 {
        tx.commit().await?;
        return Ok(());
    }
    let exists = workers::Entity::find_by_id((owner.to_owned(), worker_id.to_owned()))
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

/// The `owner` of the rows of `org_id`: that org's id, or `''` for the platform (`None`).
fn owner_key(org_id: Option<&str>) -> &str {
    org_id.unwrap_or("")
}

/// An owner as a caller gave it, checked before it reaches a query (an empty org id
/// would name the platform's rows).
fn checked_org(org_id: Option<&str>) -> CoreResult<Option<&str>> {
    if let Some(org) = org_id
        && (org.is_empty() || org.len() > 36 || org.chars().any(char::is_control))
    {
        return Err(CoreError::invalid("org_id", "not an org id"));
    }
    Ok(org_id)
}
