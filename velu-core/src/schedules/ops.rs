//! The schedule operations: create, list, show, pause, resume, delete. Each enters the org
//! through `Principal::enter` (another org's schedule is `not_found`); mutations need
//! `jobs:submit` and are audited, reads need `jobs:read`.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction,
    EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter,
};
use serde_json::json;

use super::cron::{CronSpec, DEFAULT_TIMEZONE};
use super::{CreateSchedule, Schedule};
use crate::admission::{self, Quota};
use crate::audit::{self, Record};
use crate::entity::schedules;
use crate::ids::{is_uuid, new_id};
use crate::jobs::{SubmitJob, validate_submission};
use crate::pagination::{Page, PageRequest};
use crate::principal::Principal;
use crate::scopes::Scope;
use crate::tenancy::OrgRef;
use crate::time::now;
use crate::{CoreError, CoreResult, Velu};

/// Records a schedule mutation in the audit log.
async fn audited<C: ConnectionTrait>(
    conn: &C,
    who: &Principal,
    row: &schedules::Model,
    action: &'static str,
) -> CoreResult<()> {
    audit::record(
        conn,
        who,
        Record {
            org_id: Some(&row.org_id),
            action,
            target_type: "schedule",
            target_id: &row.id,
            details: json!({ "task": row.task, "cron": row.cron, "timezone": row.timezone }),
        },
    )
    .await
}

/// Finds one of the org's schedules, or `not_found` (also for malformed ids and other
/// orgs' schedules).
async fn find<C: ConnectionTrait>(
    conn: &C,
    org_id: &str,
    id: &str,
) -> CoreResult<schedules::Model> {
    let not_found = || CoreError::not_found("schedule", id);
    if !is_uuid(id) {
        return Err(not_found());
    }
    schedules::Entity::find_by_id(id.to_owned())
        .filter(schedules::Column::OrgId.eq(org_id))
        .one(conn)
        .await?
        .ok_or_else(not_found)
}

/// Creates a schedule in `org`. Needs `jobs:submit`. The task and payload are checked as a
/// submitted job's against the org's plan now (and again at every tick); the cron and time
/// zone must parse and tick at least once; the plan's `schedules` cap applies. The first
/// job is queued at the first tick after now, not at once.
pub async fn create_schedule(
    velu: &Velu,
    who: &Principal,
    org: &OrgRef,
    input: &CreateSchedule,
) -> CoreResult<Schedule> {
    let at = now();
    // The caller and the cron are checked before the write lock: a refused caller, or a
    // cron whose next tick takes a search, never holds up the other writers.
    who.check_enter(velu.db(), org, Scope::JobsSubmit).await?;
    let spec = CronSpec::parse(
        &input.cron,
        input.timezone.as_deref().unwrap_or(DEFAULT_TIMEZONE),
    )?;
    let first = spec
        .next_after(at)
        .ok_or_else(|| CoreError::invalid("cron", "never ticks (e.g. 30 February)"))?;
    let tx = velu.db().write_tx().await?;
    let org = who.enter(&tx, org, Scope::JobsSubmit).await?;
    let plan = org.plan()?;
    let submit = SubmitJob {
        task: input.task.clone(),
        payload: input.payload.clone(),
        ..SubmitJob::default()
    };
    validate_submission(velu, plan, &submit, at)?;
    // Creates for this org take turns from here to their commit (admission.rs), so two
    // at once cannot both take the last slot of the plan's cap.
    admission::hold(&tx, Quota::Schedules, &[org.id()]).await?;
    let count = schedules::Entity::find()
        .filter(schedules::Column::OrgId.eq(org.id()))
        .count(&tx)
        .await?;
    let limit = plan.limits().schedules;
    if count >= u64::from(limit) {
        return Err(CoreError::QuotaExceeded {
            what: format!("schedules on the {plan} plan"),
            limit: u64::from(limit),
        });
    }
    let row = schedules::ActiveModel {
        id: Set(new_id()),
        org_id: Set(org.id().to_owned()),
        task: Set(input.task.clone()),
        cron: Set(input.cron.trim().to_owned()),
        timezone: Set(spec.timezone_name().to_owned()),
        payload: Set(input.payload.clone()),
        paused: Set(false),
        next_run_at: Set(Some(first)),
        last_enqueued_at: Set(None),
        last_job_id: Set(None),
        last_error: Set(None),
        created_by_type: Set(who.actor.kind.as_str().to_owned()),
        created_by_id: Set(who.actor.id.clone()),
        created_at: Set(at),
        updated_at: Set(at),
    };
    let model = schedules::Entity::insert(row)
        .exec_with_returning(&tx)
        .await?;
    audited(&tx, who, &model, "schedule.create").await?;
    tx.commit().await?;
    Ok(Schedule::from_model(model))
}

/// Lists an org's schedules, oldest first. Needs `jobs:read`.
pub async fn list_schedules(
    velu: &Velu,
    who: &Principal,
    org: &OrgRef,
    page: &PageRequest,
) -> CoreResult<Page<Schedule>> {
    let tx = velu.db().read_tx().await?;
    let conn = &tx;
    let org = who.enter(&tx, org, Scope::JobsRead).await?;
    let q = page.validate("schedules", org.id())?;
    let (rows, seen) = super::page::read(conn, org.id(), q.after_one(), q.fetch()).await?;
    Ok(q.finish_seen(rows, seen, |r| vec![r.id.clone()], Schedule::from_model))
}

/// Shows one of the org's schedules. Needs `jobs:read`.
pub async fn show_schedule(
    velu: &Velu,
    who: &Principal,
    org: &OrgRef,
    id: &str,
) -> CoreResult<Schedule> {
    let tx = velu.db().read_tx().await?;
    let conn = &tx;
    let org = who.enter(&tx, org, Scope::JobsRead).await?;
    Ok(Schedule::from_model(find(conn, org.id(), id).await?))
}

/// Starts the write transaction of a mutation: the org (404 if not the caller's), the
/// scope, the schedule (404 if not the org's). The caller is checked on a read first, so
/// a refused one never takes the write lock.
async fn open(
    velu: &Velu,
    who: &Principal,
    org: &OrgRef,
    id: &str,
) -> CoreResult<(DatabaseTransaction, schedules::Model)> {
    who.check_enter(velu.db(), org, Scope::JobsSubmit).await?;
    let tx = velu.db().write_tx().await?;
    let org = who.enter(&tx, org, Scope::JobsSubmit).await?;
    let row = find(&tx, org.id(), id).await?;
    Ok((tx, row))
}

/// Pauses a schedule: it queues nothing until resumed (`next_run_at` becomes `null`).
/// Pausing a paused schedule changes nothing. Needs `jobs:submit`.
pub async fn pause_schedule(
    velu: &Velu,
    who: &Principal,
    org: &OrgRef,
    id: &str,
) -> CoreResult<Schedule> {
    let (tx, row) = open(velu, who, org, id).await?;
    if row.paused {
        tx.commit().await?;
        return Ok(Schedule::from_model(row));
    }
    let mut active = row.into_active_model();
    active.paused = Set(true);
    active.next_run_at = Set(None);
    active.updated_at = Set(now());
    let row = active.update(&tx).await?;
    audited(&tx, who, &row, "schedule.pause").await?;
    tx.commit().await?;
    Ok(Schedule::from_model(row))
}

/// Resumes a paused schedule from its next tick after now: ticks missed while it was
/// paused are not queued. Resuming a running schedule changes nothing. Needs
/// `jobs:submit`.
pub async fn resume_schedule(
    velu: &Velu,
    who: &Principal,
    org: &OrgRef,
    id: &str,
) -> CoreResult<Schedule> {
    let (tx, row) = open(velu, who, org, id).await?;
    if !row.paused {
        tx.commit().await?;
        return Ok(Schedule::from_model(row));
    }
    let at = now();
    let next = CronSpec::parse(&row.cron, &row.timezone)?.next_after(at);
    let mut active = row.into_active_model();
    active.paused = Set(false);
    active.next_run_at = Set(next);
    active.updated_at = Set(at);
    let row = active.update(&tx).await?;
    audited(&tx, who, &row, "schedule.resume").await?;
    tx.commit().await?;
    Ok(Schedule::from_model(row))
}

/// Deletes a schedule (and its tick records); jobs it queued stay. Prints the schedule as
/// it was. Needs `jobs:submit`.
pub async fn delete_schedule(
    velu: &Velu,
    who: &Principal,
    org: &OrgRef,
    id: &str,
) -> CoreResult<Schedule> {
    let (tx, row) = open(velu, who, org, id).await?;
    schedules::Entity::delete_by_id(row.id.clone())
        .exec(&tx)
        .await?;
    audited(&tx, who, &row, "schedule.delete").await?;
    tx.commit().await?;
    Ok(Schedule::from_model(row))
}
