//! The ticker: queues the job of every due schedule, once per tick, from any number of
//! processes at once.
//!
//! [`tick_once`] finds due schedules (unpaused, `next_run_at <= at`, a bounded batch) and
//! handles each in its own write transaction: it takes the schedule row (`FOR UPDATE SKIP
//! LOCKED` on PostgreSQL, so another process's ticker passes over it; SQLite has one
//! writer) and checks it is still due, inserts the `(schedule_id, tick_at)` row of
//! `schedule_ticks` (a conflict means another process handled that tick: nothing more is
//! done), queues the job through the submit path with the schedule as actor, and advances
//! `next_run_at`, all in one commit. A refused enqueue (plan gate, quota, payload over a
//! lowered limit, task gone from the catalog) is recorded in `last_error` and the tick is
//! skipped: it is never retried, so a full queue cannot start a storm. A database failure
//! rolls the transaction back and the tick is tried again on the next pass.
//!
//! Missed ticks (the processes were down): one job for the most recent missed tick, older
//! ones skipped, then on from the next tick after now.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{LockBehavior, LockType, OnConflict};
use sea_orm::{ActiveModelTrait, DatabaseTransaction};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde::Serialize;

use super::cron::CronSpec;
use crate::db::CrossOrg;
use crate::db::notify::Change;
use crate::entity::{schedule_ticks, schedules};
use crate::jobs::{SubmitJob, submit_in_tx, validate_submission};
use crate::principal::{Actor, ActorType, Principal};
use crate::scopes::{Scope, ScopeSet};
use crate::tenancy::OrgRef;
use crate::time::now;
use crate::{CoreError, CoreResult, Velu};

/// Most schedules one pass handles; the rest wait for the next pass.
pub const TICK_BATCH: u64 = 200;
/// How often `serve` and `worker` processes run the ticker unless told otherwise.
pub const DEFAULT_TICK_EVERY: Duration = Duration::from_secs(1);

/// What one pass of the ticker did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TickReport {
    /// Ids of the jobs it queued.
    pub enqueued: Vec<String>,
    /// Schedules whose tick was refused (recorded in their `last_error`).
    pub refused: usize,
    /// Due schedules another process handled first.
    pub taken: usize,
    /// Schedules left for the next pass after a database failure.
    pub failed: usize,
}

/// How one due schedule went.
enum Outcome {
    Enqueued(String),
    Refused,
    Taken,
}

/// One pass at time `at`: handles every schedule due then (up to [`TICK_BATCH`]). Safe to
/// run from any number of processes and tasks at once; each tick queues at most one job.
/// Tests call it with chosen times; the background ticker calls it with the clock.
pub async fn tick_once(velu: &Velu, at: DateTime<Utc>) -> CoreResult<TickReport> {
    let scan = velu
        .db()
        .cross_org_read_tx(CrossOrg::ScheduleTicker)
        .await?;
    let due: Vec<String> = schedules::Entity::find()
        .select_only()
        .column(schedules::Column::Id)
        .filter(schedules::Column::Paused.eq(false))
        .filter(schedules::Column::NextRunAt.lte(at))
        .order_by_asc(schedules::Column::NextRunAt)
        .limit(TICK_BATCH)
        .into_tuple()
        .all(&scan)
        .await?;
    scan.commit().await?;
    let mut report = TickReport::default();
    for id in due {
        match handle(velu, &id, at).await {
            Ok(Outcome::Enqueued(job)) => report.enqueued.push(job),
            Ok(Outcome::Refused) => report.refused += 1,
            Ok(Outcome::Taken) => report.taken += 1,
            Err(e) => {
                tracing::warn!(schedule = %id, error = %e, "schedule tick failed; will retry");
                report.failed += 1;
            }
        }
    }
    Ok(report)
}

/// Errors that mean the database, not the enqueue, failed: the tick is tried again.
fn is_transient(e: &CoreError) -> bool {
    matches!(e, CoreError::Unavailable(_) | CoreError::Internal(_))
}

/// The principal a schedule acts as: its own id, its org, `jobs:submit` only.
fn schedule_principal(row: &schedules::Model) -> CoreResult<Principal> {
    Ok(Principal {
        actor: Actor {
            kind: ActorType::Schedule,
            id: row.id.clone(),
        },
        org_id: Some(row.org_id.clone()),
        scopes: ScopeSet::parse(&[Scope::JobsSubmit.as_str()])?,
        plan: None,
    })
}

async fn handle(velu: &Velu, id: &str, at: DateTime<Utc>) -> CoreResult<Outcome> {
    // The schedule's org is known only once its row is read; the job itself is queued
    // after the tenancy floor entered that org (`enqueue`).
    let tx = velu.db().cross_org_tx(CrossOrg::ScheduleTicker).await?;
    let Some(row) = schedules::Entity::find_by_id(id.to_owned())
        .filter(schedules::Column::Paused.eq(false))
        .filter(schedules::Column::NextRunAt.lte(at))
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .one(&tx)
        .await?
    else {
        // Another process holds it, or has handled it since the scan.
        return Ok(Outcome::Taken);
    };
    let spec = match CronSpec::parse(&row.cron, &row.timezone) {
        Ok(spec) => spec,
        Err(e) => {
            // Stored values were checked at create; a cron this build cannot read stops the
            // schedule rather than failing every pass.
            tracing::error!(schedule = %row.id, error = %e, "stored cron no longer parses");
            finish(&tx, row, None, None, Some(describe(&e)), at).await?;
            tx.commit().await?;
            return Ok(Outcome::Refused);
        }
    };
    let scheduled = row.next_run_at.unwrap_or(at);
    // The most recent tick at or before `at`; older missed ticks are skipped.
    let tick = spec
        .latest_at_or_before(at)
        .map_or(scheduled, |t| t.max(scheduled));
    if tick > scheduled {
        tracing::info!(schedule = %row.id, from = %scheduled, to = %tick, "missed ticks skipped");
    }
    if !claim_tick(&tx, &row.id, tick, at).await? {
        return Ok(Outcome::Taken);
    }
    let next = spec.next_after(at.max(tick));
    let who = schedule_principal(&row)?;
    let queued = enqueue(velu, &tx, &who, &row, at).await;
    let org_id = row.org_id.clone();
    let outcome = match queued {
        Ok(job_id) => {
            schedule_ticks::Entity::update(schedule_ticks::ActiveModel {
                schedule_id: Set(row.id.clone()),
                tick_at: Set(tick),
                job_id: Set(Some(job_id.clone())),
                ..Default::default()
            })
            .exec(&tx)
            .await?;
            finish(&tx, row, next, Some(job_id.clone()), None, at).await?;
            Outcome::Enqueued(job_id)
        }
        Err(e) if is_transient(&e) => return Err(e),
        Err(e) => {
            tracing::info!(schedule = %row.id, error = %e, "scheduled job refused; tick skipped");
            finish(&tx, row, next, None, Some(describe(&e)), at).await?;
            Outcome::Refused
        }
    };
    tx.commit().await?;
    if matches!(outcome, Outcome::Enqueued(_)) {
        // Wake this process's workers at once (others hear the notification).
        velu.changed(Change::Jobs(org_id));
    }
    Ok(outcome)
}

/// `code: message`, as `last_error` keeps it.
fn describe(e: &CoreError) -> String {
    format!("{}: {e}", e.code())
}

/// Inserts the tick's row; false when it exists (another process handled the tick). Older
/// tick rows of the schedule are dropped: `next_run_at` has moved past them, so they can
/// never be claimed again.
async fn claim_tick(
    tx: &DatabaseTransaction,
    schedule_id: &str,
    tick: DateTime<Utc>,
    at: DateTime<Utc>,
) -> CoreResult<bool> {
    let inserted = schedule_ticks::Entity::insert(schedule_ticks::ActiveModel {
        schedule_id: Set(schedule_id.to_owned()),
        tick_at: Set(tick),
        job_id: Set(None),
        created_at: Set(at),
    })
    .on_conflict(
        OnConflict::columns([
            schedule_ticks::Column::ScheduleId,
            schedule_ticks::Column::TickAt,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(tx)
    .await?;
    if inserted == 0 {
        return Ok(false);
    }
    schedule_ticks::Entity::delete_many()
        .filter(schedule_ticks::Column::ScheduleId.eq(schedule_id))
        .filter(schedule_ticks::Column::TickAt.lt(tick))
        .exec(tx)
        .await?;
    Ok(true)
}

/// Queues the schedule's job as a submit would, with the schedule as actor; the org's plan
/// is read now, so a downgrade or a full queue refuses it. After a downgrade to a plan
/// with fewer schedules than the org holds, only its oldest ones (as many as the plan
/// allows) still run: the others' ticks are refused (`quota_exceeded`).
async fn enqueue(
    velu: &Velu,
    tx: &DatabaseTransaction,
    who: &Principal,
    row: &schedules::Model,
    at: DateTime<Utc>,
) -> CoreResult<String> {
    let org = who
        .enter(tx, &OrgRef::new(row.org_id.clone()), Scope::JobsSubmit)
        .await?;
    let plan = org.plan()?;
    let input = SubmitJob {
        task: row.task.clone(),
        payload: row.payload.clone(),
        ..SubmitJob::default()
    };
    // What the job itself is refused for (its task above the plan, say) first, as at create.
    validate_submission(velu, plan, &input, at)?;
    let limit = u64::from(plan.limits().schedules);
    if older_schedules(tx, row, limit).await? >= limit {
        return Err(CoreError::QuotaExceeded {
            what: format!("schedules on the {plan} plan (only the oldest run)"),
            limit,
        });
    }
    let job = submit_in_tx(velu, tx, who, &row.org_id, plan, &input, at).await?;
    Ok(job.id)
}

/// How many of the org's schedules were created before `row` (ties by id), counting no
/// further than `cap`.
async fn older_schedules(
    tx: &DatabaseTransaction,
    row: &schedules::Model,
    cap: u64,
) -> CoreResult<u64> {
    let older = schedules::Entity::find()
        .select_only()
        .column(schedules::Column::Id)
        .filter(schedules::Column::OrgId.eq(row.org_id.as_str()))
        .filter(
            Condition::any()
                .add(schedules::Column::CreatedAt.lt(row.created_at))
                .add(
                    Condition::all()
                        .add(schedules::Column::CreatedAt.eq(row.created_at))
                        .add(schedules::Column::Id.lt(row.id.as_str())),
                ),
        )
        .limit(cap)
        .into_tuple::<String>()
        .all(tx)
        .await?;
    Ok(older.len() as u64)
}

/// Moves the schedule on to `next` and records how its tick went.
async fn finish(
    tx: &DatabaseTransaction,
    row: schedules::Model,
    next: Option<DateTime<Utc>>,
    job_id: Option<String>,
    error: Option<String>,
    at: DateTime<Utc>,
) -> CoreResult<()> {
    let mut active = row.into_active_model();
    active.next_run_at = Set(next);
    if let Some(job) = job_id {
        active.last_job_id = Set(Some(job));
        active.last_enqueued_at = Set(Some(at));
    }
    active.last_error = Set(error);
    active.update(tx).await?;
    Ok(())
}

/// Runs [`tick_once`] every `every` with the clock, for as long as `velu` lives (the task
/// holds a weak reference and is stopped by `Velu::shutdown`). Started by `serve` and
/// `worker` processes; any number may run at once.
pub fn start_ticker(velu: &Velu, every: Duration) {
    let weak = velu.downgrade();
    let every = every.max(Duration::from_millis(100));
    let task = tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let Some(velu) = weak.upgrade() else {
                return;
            };
            if let Err(e) = tick_once(&velu, now()).await {
                tracing::warn!(error = %e, "schedule ticker pass failed; will retry");
            }
        }
    });
    velu.keep_background(task);
}
