//! Submitting jobs: every check has its own error code, and tenancy and the actor come
//! only from the principal.

use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde::Serialize;
use serde_json::{Value, json};

use super::input::SubmitJob;
use super::{Job, JobStatus};
use crate::audit::{self, Record};
use crate::db::batch::{NewJobRow, Stamp, insert_jobs};
use crate::db::events;
use crate::db::notify::{self, Change};
use crate::entity::jobs;
use crate::error::is_unique_violation;
use crate::events::{EventKind, QueuedVia};
use crate::ids::new_id;
use crate::plans::Plan;
use crate::principal::{ActorType, Principal};
use crate::queue;
use crate::scopes::Scope;
use crate::tasks::{MAX_ATTEMPTS_LIMIT, TaskKind};
use crate::tenancy::OrgRef;
use crate::time::{self, now};
use crate::usage;
use crate::{CoreError, CoreResult, Velu};

/// Most jobs in one batch.
pub const MAX_BATCH: usize = 50_000;
/// Priorities range from -100 to 100 (higher first).
const PRIORITY_RANGE: std::ops::RangeInclusive<i32> = -100..=100;
/// Longest idempotency key.
const MAX_IDEMPOTENCY_KEY: usize = 200;

/// A submitted job, and whether it was created now or found by its idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    /// The job.
    pub job: Job,
    /// False when an earlier job with the same idempotency key was returned.
    pub created: bool,
    /// True when a pause holds the new job (its org's queue or its task kind is paused:
    /// it waits for a resume). Not looked up for an earlier job.
    pub queue_paused: bool,
}

/// What a single submit prints: the job, plus `queue_paused: true` when a pause holds it
/// (the field is left out otherwise).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubmittedJob {
    /// The job.
    #[serde(flatten)]
    pub job: Job,
    /// `true` when a pause holds the job; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_paused: Option<bool>,
}

impl Submitted {
    /// The document a submit prints.
    pub fn document(self) -> SubmittedJob {
        SubmittedJob {
            job: self.job,
            queue_paused: self.queue_paused.then_some(true),
        }
    }
}

/// What a batch submit prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchSubmitted {
    /// How many jobs were queued.
    pub count: usize,
    /// Their ids, in input order.
    pub ids: Vec<String>,
    /// `true` when a pause holds some of them (the org's queue, or one of their task
    /// kinds, is paused); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_paused: Option<bool>,
}

/// A submission that passed every check, ready to insert.
pub(super) struct Checked {
    pub task: String,
    pub payload: Value,
    pub priority: i32,
    pub run_at: chrono::DateTime<chrono::Utc>,
    pub max_attempts: i32,
    pub idempotency_key: Option<String>,
}

/// Checks one submission against the catalog and the org's current plan.
pub(super) fn check(
    velu: &Velu,
    plan: Plan,
    input: &SubmitJob,
    at: chrono::DateTime<chrono::Utc>,
) -> CoreResult<Checked> {
    let kind: &TaskKind = velu.tasks().get(&input.task).ok_or_else(|| {
        CoreError::invalid(
            "task",
            format!("unknown task `{}`; see `velu-cli task list`", input.task),
        )
    })?;
    if plan < kind.min_plan {
        return Err(CoreError::UpgradeRequired {
            plan: kind.min_plan.to_string(),
            what: format!("task `{}`", kind.name),
        });
    }
    let Value::Object(map) = &input.payload else {
        return Err(CoreError::invalid("payload", "must be a JSON object"));
    };
    crate::text::no_nul_in_json("payload", &input.payload)?;
    if let Some(key) = map.keys().find(|k| k.starts_with('_')) {
        return Err(CoreError::invalid(
            "payload",
            format!("top-level key `{key}` is reserved (keys starting with `_` are Velu's)"),
        ));
    }
    let size = serde_json::to_vec(&input.payload)
        .map_err(CoreError::internal)?
        .len() as u64;
    let limit = plan.limits().payload_bytes;
    if size > limit {
        return Err(CoreError::PayloadTooLarge { size, limit });
    }
    let priority = input.priority.unwrap_or(0);
    if !PRIORITY_RANGE.contains(&priority) {
        return Err(CoreError::invalid(
            "priority",
            "must be between -100 and 100",
        ));
    }
    let run_at = match &input.run_at {
        Some(t) => time::parse_within("run_at", t, at, time::RUN_AT_HORIZON)?.max(at),
        None => at,
    };
    let max_attempts = input.max_attempts.unwrap_or(kind.max_attempts);
    if !(1..=MAX_ATTEMPTS_LIMIT).contains(&max_attempts) {
        return Err(CoreError::invalid(
            "max_attempts",
            format!("must be between 1 and {MAX_ATTEMPTS_LIMIT}"),
        ));
    }
    let idempotency_key = match &input.idempotency_key {
        Some(k)
            if k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY || k.chars().any(char::is_control) =>
        {
            return Err(CoreError::invalid(
                "idempotency_key",
                format!("1 to {MAX_IDEMPOTENCY_KEY} printable characters"),
            ));
        }
        other => other.clone(),
    };
    Ok(Checked {
        task: kind.name.clone(),
        payload: input.payload.clone(),
        priority,
        run_at,
        max_attempts: max_attempts as i32,
        idempotency_key,
    })
}

/// How many more jobs the org may queue: its plan's quota minus what is queued, read from
/// the org's `job_counts` rows (a few counter rows, however long the backlog). Takes the
/// org's admission lock first (`admission.rs`): the answer holds until `conn` commits.
pub(super) async fn queue_room<C: ConnectionTrait>(
    conn: &C,
    org_id: &str,
    plan: Plan,
) -> CoreResult<u64> {
    let limit = plan.limits().queued_jobs;
    crate::admission::hold(conn, crate::admission::Quota::QueuedJobs, &[org_id]).await?;
    let queued = super::counts::queued(conn, org_id).await?;
    Ok(limit.saturating_sub(queued))
}

fn row(
    c: Checked,
    org_id: &str,
    who: &Principal,
    at: chrono::DateTime<chrono::Utc>,
) -> jobs::ActiveModel {
    jobs::ActiveModel {
        id: Set(new_id()),
        org_id: Set(org_id.to_owned()),
        task: Set(c.task),
        status: Set(JobStatus::Queued.as_str().to_owned()),
        payload: Set(c.payload),
        result: Set(None),
        error: Set(None),
        priority: Set(c.priority),
        attempts: Set(0),
        max_attempts: Set(c.max_attempts),
        run_at: Set(c.run_at),
        actor_type: Set(who.actor.kind.as_str().to_owned()),
        actor_id: Set(who.actor.id.clone()),
        idempotency_key: Set(c.idempotency_key),
        cancel_requested: Set(false),
        lease_owner: Set(None),
        lease_token: Set(None),
        lease_expires_at: Set(None),
        created_at: Set(at),
        updated_at: Set(at),
        started_at: Set(None),
        finished_at: Set(None),
        lease_started_at: Set(None),
    }
}

async fn find_by_key<C: ConnectionTrait>(
    conn: &C,
    org_id: &str,
    key: &str,
) -> CoreResult<Option<jobs::Model>> {
    Ok(jobs::Entity::find()
        .filter(jobs::Column::OrgId.eq(org_id))
        .filter(jobs::Column::IdempotencyKey.eq(key))
        .one(conn)
        .await?)
}

/// Submits one job to `org`. Needs `jobs:submit`; the plan is read from the database.
///
/// Concurrent submits share transactions and commits (`jobs/group.rs`), each with its own
/// checks, result and error; a submit with an idempotency key is written alone, so the
/// race for its key is decided by the unique index as before.
pub async fn submit_job(
    velu: &Velu,
    who: &Principal,
    org: &OrgRef,
    input: &SubmitJob,
) -> CoreResult<Submitted> {
    if input.idempotency_key.is_some() {
        return submit_alone(velu, who, org, input).await;
    }
    velu.submits().submit(velu, who, org, input).await
}

/// [`submit_job`] in a transaction of its own.
pub(super) async fn submit_alone(
    velu: &Velu,
    who: &Principal,
    org: &OrgRef,
    input: &SubmitJob,
) -> CoreResult<Submitted> {
    let at = now();
    let tx = velu.db().write_tx().await?;
    let org = who.enter(&tx, org, Scope::JobsSubmit).await?;
    let plan = org.plan()?;
    let org = org.into_row();
    let checked = check(velu, plan, input, at)?;
    if let Some(key) = &checked.idempotency_key
        && let Some(existing) = find_by_key(&tx, &org.id, key).await?
    {
        tx.commit().await?;
        return Ok(Submitted {
            job: Job::from_model(existing)?,
            created: false,
            queue_paused: false,
        });
    }
    if queue_room(&tx, &org.id, plan).await? == 0 {
        return Err(quota(plan));
    }
    let key = checked.idempotency_key.clone();
    let model = match jobs::Entity::insert(row(checked, &org.id, who, at))
        .exec_with_returning(&tx)
        .await
    {
        Ok(m) => m,
        Err(e) if is_unique_violation(&e) && key.is_some() => {
            // Another submit with the same key won the race: return its job.
            drop(tx);
            let again = velu.db().read_tx().await?;
            who.enter(&again, &OrgRef::new(org.id.clone()), Scope::JobsSubmit)
                .await?;
            let existing = find_by_key(&again, &org.id, key.as_deref().unwrap_or_default())
                .await?
                .ok_or_else(|| CoreError::internal(e))?;
            return Ok(Submitted {
                job: Job::from_model(existing)?,
                created: false,
                queue_paused: false,
            });
        }
        Err(e) => return Err(e.into()),
    };
    audit::record(
        &tx,
        who,
        Record {
            org_id: Some(&org.id),
            action: "job.submit",
            target_type: "job",
            target_id: &model.id,
            details: json!({ "task": model.task }),
        },
    )
    .await?;
    // Accepted all the same: a pause holds jobs, it does not refuse them.
    let queue_paused = queue::is_held(&tx, &org.id, &[model.task.as_str()]).await?;
    queued_event(&tx, &model, QueuedVia::Submit).await?;
    usage::record_submitted(&tx, &org.id, at, [model.task.as_str()]).await?;
    let change = Change::Jobs(org.id.clone());
    notify::send(&tx, &change).await?;
    tx.commit().await?;
    velu.changed(change);
    Ok(Submitted {
        job: Job::from_model(model)?,
        created: true,
        queue_paused,
    })
}

/// Checks a submission as [`submit_job`] would for an org on `plan` (task, plan gate,
/// payload rules and size), without queuing anything: what a schedule is held to when it
/// is created.
pub(crate) fn validate_submission(
    velu: &Velu,
    plan: Plan,
    input: &SubmitJob,
    at: chrono::DateTime<chrono::Utc>,
) -> CoreResult<()> {
    check(velu, plan, input, at).map(|_| ())
}

/// Queues one job inside the caller's write transaction `tx`, for `who` (already entered
/// into `org_id` with `jobs:submit`, on `plan` as stored now): the checks of
/// [`submit_job`], the queued-jobs quota, the audit event and the wake-up notification.
/// The caller commits, then calls `velu.changed(Change::Jobs(..))`.
/// The schedule ticker's path, so a scheduled job passes exactly the gates of a submit.
pub(crate) async fn submit_in_tx<C: ConnectionTrait>(
    velu: &Velu,
    tx: &C,
    who: &Principal,
    org_id: &str,
    plan: Plan,
    input: &SubmitJob,
    at: chrono::DateTime<chrono::Utc>,
) -> CoreResult<jobs::Model> {
    let checked = check(velu, plan, input, at)?;
    if queue_room(tx, org_id, plan).await? == 0 {
        return Err(quota(plan));
    }
    let model = jobs::Entity::insert(row(checked, org_id, who, at))
        .exec_with_returning(tx)
        .await?;
    audit::record(
        tx,
        who,
        Record {
            org_id: Some(org_id),
            action: "job.submit",
            target_type: "job",
            target_id: &model.id,
            details: json!({ "task": model.task }),
        },
    )
    .await?;
    usage::record_submitted(tx, org_id, at, [model.task.as_str()]).await?;
    let via = match who.actor.kind {
        ActorType::Schedule => QueuedVia::Schedule,
        _ => QueuedVia::Submit,
    };
    queued_event(tx, &model, via).await?;
    notify::send(tx, &Change::Jobs(org_id.to_owned())).await?;
    Ok(model)
}

/// The `queued` event of a job just inserted (one `INSERT`, in the submit's transaction).
async fn queued_event<C: ConnectionTrait>(
    conn: &C,
    model: &jobs::Model,
    via: QueuedVia,
) -> CoreResult<()> {
    events::insert_one(
        conn,
        &events::NewEvent {
            job_id: &model.id,
            org_id: &model.org_id,
            kind: EventKind::Queued,
            at: model.created_at,
            status: None,
            error_code: None,
            detail: Some(via.as_str()),
        },
    )
    .await
}

pub(super) fn quota(plan: Plan) -> CoreError {
    CoreError::QuotaExceeded {
        what: format!("queued jobs on the {plan} plan"),
        limit: plan.limits().queued_jobs,
    }
}

/// Inserts checked jobs, queued, for `org_id` and the acting principal (the statement is
/// `db::batch::insert_jobs`: one JSON parameter per chunk).
async fn insert_rows<C: ConnectionTrait>(
    conn: &C,
    org_id: &str,
    who: &Principal,
    at: chrono::DateTime<chrono::Utc>,
    rows: Vec<Checked>,
) -> CoreResult<Vec<String>> {
    let jobs: Vec<NewJobRow> = rows
        .into_iter()
        .map(|c| NewJobRow {
            id: new_id(),
            task: c.task,
            payload: c.payload,
            priority: c.priority,
            max_attempts: c.max_attempts,
            run_at: c.run_at,
        })
        .collect();
    let ids: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
    let stamp = Stamp {
        org_id,
        status: JobStatus::Queued.as_str(),
        actor_type: who.actor.kind.as_str(),
        actor_id: &who.actor.id,
        at,
    };
    insert_jobs(conn, &stamp, &jobs).await?;
    events::insert_queued_batch(conn, org_id, &ids, QueuedVia::Batch.as_str(), at).await?;
    Ok(ids)
}

/// Submits many jobs to `org` in one transaction: all or none. Every job passes the same
/// checks as [`submit_job`]; idempotency keys are not taken in batches. One audit event
/// records the batch.
pub async fn submit_batch(
    velu: &Velu,
    who: &Principal,
    org: &OrgRef,
    inputs: &[SubmitJob],
) -> CoreResult<BatchSubmitted> {
    if inputs.is_empty() || inputs.len() > MAX_BATCH {
        return Err(CoreError::invalid(
            "jobs",
            format!("a batch holds 1 to {MAX_BATCH} jobs"),
        ));
    }
    let at = now();
    let tx = velu.db().write_tx().await?;
    let org = who.enter(&tx, org, Scope::JobsSubmit).await?;
    let plan = org.plan()?;
    let org = org.into_row();
    let mut rows = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.iter().enumerate() {
        if input.idempotency_key.is_some() {
            return Err(CoreError::invalid(
                format!("jobs[{i}].idempotency_key"),
                "not taken in batches",
            ));
        }
        let checked = check(velu, plan, input, at).map_err(|e| match e {
            CoreError::Invalid { field, reason } => {
                CoreError::invalid(format!("jobs[{i}].{field}"), reason)
            }
            other => other,
        })?;
        rows.push(checked);
    }
    if queue_room(&tx, &org.id, plan).await? < rows.len() as u64 {
        return Err(quota(plan));
    }
    usage::record_submitted(&tx, &org.id, at, rows.iter().map(|c| c.task.as_str())).await?;
    let mut kinds: Vec<&str> = rows.iter().map(|c| c.task.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let queue_paused = queue::is_held(&tx, &org.id, &kinds).await?;
    let ids = insert_rows(&tx, &org.id, who, at, rows).await?;
    audit::record(
        &tx,
        who,
        Record {
            org_id: Some(&org.id),
            action: "job.submit_batch",
            target_type: "job",
            target_id: ids.first().map_or("", String::as_str),
            details: json!({ "count": ids.len(), "first": ids.first(), "last": ids.last() }),
        },
    )
    .await?;
    let change = Change::Jobs(org.id.clone());
    notify::send(&tx, &change).await?;
    tx.commit().await?;
    velu.changed(change);
    Ok(BatchSubmitted {
        count: ids.len(),
        ids,
        queue_paused: queue_paused.then_some(true),
    })
}
