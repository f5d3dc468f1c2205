//! Steering jobs: cancel and retry, each audited.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ConnectionTrait, DatabaseTransaction, IntoActiveModel,
};
use serde_json::json;

use super::read::{find_job, job_detail};
use super::submit::{queue_room, quota};
use super::{JobDetail, JobError, JobErrorCode, JobStatus};
use crate::audit::{self, Record};
use crate::db::events;
use crate::db::notify::{self, Change};
use crate::entity::jobs;
use crate::events::{EventKind, QueuedVia};
use crate::principal::Principal;
use crate::scopes::Scope;
use crate::tenancy::{OrgRef, OrgScope};
use crate::time::now;
use crate::{CoreError, CoreResult, Velu};

/// Records a steer in the audit log: the task and the status before and after.
async fn audited<C: ConnectionTrait>(
    conn: &C,
    who: &Principal,
    job: &jobs::Model,
    action: &'static str,
    from: JobStatus,
) -> CoreResult<()> {
    audit::record(
        conn,
        who,
        Record {
            org_id: Some(&job.org_id),
            action,
            target_type: "job",
            target_id: &job.id,
            details: json!({ "task": job.task, "from": from.as_str(), "to": job.status }),
        },
    )
    .await
}

/// The event of a steer, written after the job's row was updated (so locked) in `conn`:
/// `(kind, status)`, and `via` for `queued`. An `ended` cancel carries its error code.
async fn steer_event<C: ConnectionTrait>(
    conn: &C,
    job: &jobs::Model,
    (kind, status): (EventKind, Option<JobStatus>),
    via: Option<QueuedVia>,
) -> CoreResult<()> {
    let code = (status == Some(JobStatus::Cancelled)).then_some(JobErrorCode::Cancelled.as_str());
    events::insert_one(
        conn,
        &events::NewEvent {
            job_id: &job.id,
            org_id: &job.org_id,
            kind,
            at: job.updated_at,
            status,
            error_code: code,
            detail: via.map(QueuedVia::as_str),
        },
    )
    .await
}

/// Starts the write transaction of a steer: the org (404 if not the caller's), the scope,
/// the job (404 if not the org's).
async fn open_job(
    velu: &Velu,
    who: &Principal,
    org: &OrgRef,
    id: &str,
) -> CoreResult<(DatabaseTransaction, OrgScope, jobs::Model)> {
    // Checked on a read first: a refused caller never takes the write lock.
    who.check_enter(velu.db(), org, Scope::JobsSubmit).await?;
    let tx = velu.db().write_tx().await?;
    let org = who.enter(&tx, org, Scope::JobsSubmit).await?;
    let job = find_job(&tx, org.id(), id).await?;
    Ok((tx, org, job))
}

/// Cancels a job: a queued job at once; a running job is stopped by its worker within a
/// heartbeat and ends `cancelled`. Cancelling a cancelled job, or a running one already
/// asked, changes nothing (no event, no audit record); a finished
/// job is a `conflict`. Needs `jobs:submit`.
pub async fn cancel_job(
    velu: &Velu,
    who: &Principal,
    org: &OrgRef,
    id: &str,
) -> CoreResult<JobDetail> {
    let (tx, _, job) = open_job(velu, who, org, id).await?;
    let from = JobStatus::from_stored(&job.status)?;
    let at = now();
    let mut active = job.clone().into_active_model();
    // Asked again (cancelled already, or a cancel its worker has yet to see): nothing to
    // write, so a loop of cancels costs the job's stream and the audit log nothing.
    let asked_already = from == JobStatus::Running && job.cancel_requested;
    match from {
        _ if asked_already => {
            let detail = job_detail(&tx, who, job).await?;
            tx.commit().await?;
            return Ok(detail);
        }
        JobStatus::Cancelled => {
            let detail = job_detail(&tx, who, job).await?;
            tx.commit().await?;
            return Ok(detail);
        }
        JobStatus::Succeeded | JobStatus::Failed => {
            return Err(CoreError::conflict(format!("job `{id}` already {from}")));
        }
        JobStatus::Queued => {
            // Who cancelled is in the audit log.
            let error = JobError::new(JobErrorCode::Cancelled, "cancelled before it ran");
            active.status = Set(JobStatus::Cancelled.as_str().to_owned());
            active.error = Set(Some(
                serde_json::to_value(error).map_err(CoreError::internal)?,
            ));
            active.finished_at = Set(Some(at));
        }
        JobStatus::Running => {
            // The owner sees the flag at its next heartbeat.
            active.cancel_requested = Set(true);
        }
    }
    active.updated_at = Set(at);
    let job = active.update(&tx).await?;
    let event = match from {
        JobStatus::Queued => (EventKind::Ended, Some(JobStatus::Cancelled)),
        _ => (EventKind::CancelRequested, None),
    };
    steer_event(&tx, &job, event, None).await?;
    audited(&tx, who, &job, "job.cancel", from).await?;
    let detail = job_detail(&tx, who, job).await?;
    tx.commit().await?;
    Ok(detail)
}

/// Puts a failed or cancelled job back in the queue with a fresh budget of attempts: the
/// task kind's `max_attempts` (so the budget never grows from retry to retry). The org's
/// queued-jobs quota applies as to a submit. Anything else is a `conflict`. Needs
/// `jobs:submit`.
pub async fn retry_job(
    velu: &Velu,
    who: &Principal,
    org: &OrgRef,
    id: &str,
) -> CoreResult<JobDetail> {
    let (tx, org, job) = open_job(velu, who, org, id).await?;
    let from = JobStatus::from_stored(&job.status)?;
    if !matches!(from, JobStatus::Failed | JobStatus::Cancelled) {
        return Err(CoreError::conflict(format!(
            "job `{id}` is {from}; only failed or cancelled jobs can be retried"
        )));
    }
    let kind = velu.tasks().get(&job.task).ok_or_else(|| {
        CoreError::conflict(format!(
            "job `{id}` is of task `{}`, which this catalog no longer has",
            job.task
        ))
    })?;
    let budget = i32::try_from(kind.max_attempts).unwrap_or(i32::MAX).max(1);
    let plan = org.plan()?;
    if queue_room(&tx, &job.org_id, plan).await? == 0 {
        return Err(quota(plan));
    }
    let at = now();
    let mut active = job.clone().into_active_model();
    active.status = Set(JobStatus::Queued.as_str().to_owned());
    active.max_attempts = Set(job.attempts.saturating_add(budget));
    active.run_at = Set(at);
    active.result = Set(None);
    active.finished_at = Set(None);
    active.cancel_requested = Set(false);
    active.updated_at = Set(at);
    let job = active.update(&tx).await?;
    steer_event(&tx, &job, (EventKind::Queued, None), Some(QueuedVia::Retry)).await?;
    audited(&tx, who, &job, "job.retry", from).await?;
    let change = Change::Jobs(job.org_id.clone());
    notify::send(&tx, &change).await?;
    let detail = job_detail(&tx, who, job).await?;
    tx.commit().await?;
    velu.changed(change);
    Ok(detail)
}
