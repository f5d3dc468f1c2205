//! Steering jobs: cancel and retry, each audited.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ConnectionTrait, DatabaseTransaction, EntityTrait,
    IntoActiveModel,
};
use serde_json::json;

use super::read::{find_job, job_detail};
use super::submit::{queue_room, quota};
use super::{JobDetail, JobError};
use crate::audit::{self, Record};
use crate::db::notify::{self, Change};
use crate::entity::{jobs, organizations};
use crate::plans::Plan;
use crate::orgs::{OrgRef, resolve_org};
use crate::principal::Principal;
use crate::scopes::Scope;
use crate::time::now;
use crate::{CoreError, CoreResult, Velu};

async fn audited<C: ConnectionTrait>(
    conn: &C,
    who: &Principal,
    job: &jobs::Model,
    action: &'static str,
    from: &str,
) -> CoreResult<()> {
    audit::record(
        conn,
        &who.actor,
        Record {
            org_id: Some(&job.org_id),
            action,
            target_type: "job",
            target_id: &job.id,
            details: json!({ "task": job.task, "from": from, "to": job.status }),
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
) -> CoreResult<(DatabaseTransaction, jobs::Model)> {
    let tx = velu.db().write_tx().await?;
    let org = resolve_org(&tx, who, org).await?;
    who.require(Scope::JobsSubmit)?;
    let job = find_job(&tx, &org.id, id).await?;
    Ok((tx, job))
}

/// Cancels a job: a queued job at once; a running job is stopped by its worker within a
/// heartbeat and ends `cancelled`. Cancelling a cancelled job changes nothing; a finished
/// job is a `conflict`. Needs `jobs:submit`.
pub async fn cancel_job(
    velu: &Velu,
    who: &Principal,
    org: &OrgRef,
    id: &str,
) -> CoreResult<JobDetail> {
    let (tx, job) = open_job(velu, who, org, id).await?;
    let from = job.status.clone();
    let at = now();
    let mut active = job.clone().into_active_model();
    match from.as_str() {
        "cancelled" => {
            tx.commit().await?;
            return job_detail(velu.db().conn(), job).await;
        }
        "succeeded" | "failed" => {
            return Err(CoreError::conflict(format!("job `{id}` already {from}")));
        }
        "queued" => {
            // Who cancelled is in the audit log.
            let error = JobError::new("cancelled", "cancelled before it ran");
            active.status = Set("cancelled".into());
            active.error = Set(Some(
                serde_json::to_value(error).map_err(CoreError::internal)?,
            ));
            active.finished_at = Set(Some(at));
        }
        _ => {
            // Running: the owner sees the flag at its next heartbeat.
            active.cancel_requested = Set(true);
        }
    }
    active.updated_at = Set(at);
    let job = active.update(&tx).await?;
    audited(&tx, who, &job, "job.cancel", &from).await?;
    tx.commit().await?;
    job_detail(velu.db().conn(), job).await
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
    let (tx, job) = open_job(velu, who, org, id).await?;
    let from = job.status.clone();
    if from != "failed" && from != "cancelled" {
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
    let org = organizations::Entity::find_by_id(job.org_id.clone())
        .one(&tx)
        .await?
        .ok_or_else(|| CoreError::not_found("job", id))?;
    let plan = Plan::from_stored(&org.plan)?;
    if queue_room(&tx, &job.org_id, plan).await? == 0 {
        return Err(quota(plan));
    }
    let at = now();
    let mut active = job.clone().into_active_model();
    active.status = Set("queued".into());
    active.max_attempts = Set(job.attempts.saturating_add(budget));
    active.run_at = Set(at);
    active.result = Set(None);
    active.finished_at = Set(None);
    active.cancel_requested = Set(false);
    active.updated_at = Set(at);
    let job = active.update(&tx).await?;
    audited(&tx, who, &job, "job.retry", &from).await?;
    let change = Change::Jobs(job.org_id.clone());
    notify::send(&tx, &change).await?;
    tx.commit().await?;
    velu.changed(change);
    job_detail(velu.db().conn(), job).await
}
