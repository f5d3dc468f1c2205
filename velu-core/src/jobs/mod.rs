//! Jobs, the control plane: submit, read and steer (operations that check rights and
//! audit), the documents they print, and the job vocabulary. The execution plane (claim,
//! heartbeat, finish, reclaim) is [`crate::queue`].
//!
//! A job belongs to an org and is stamped with the actor that submitted it, taken from
//! the authenticated principal only. Its status moves
//! `queued → running → succeeded | failed | cancelled`, and back to `queued` for a retry
//! (see [`JobStatus`]); each ended attempt is kept in `job_attempts` (the one in progress
//! lives on the job's row until it ends).

pub(crate) mod counts;
mod group;
mod grouped;
mod grouped_pg;
mod input;
mod page_doc;
mod pg_rows;
mod read;
#[doc(hidden)]
pub mod read_one;
pub mod retention;
mod steer;
mod submit;
mod vocabulary;

use serde::Serialize;
use serde_json::Value;

use crate::entity::{job_attempts, jobs};
use crate::time::Timestamp;
use crate::{CoreError, CoreResult};

pub(crate) use group::GroupCommitter;
pub use input::{SubmitJob, parse_batch};
pub(crate) use read::find_job as find_job_row;
pub use read::{
    JobFilter, JobStats, MAX_LIST_SCAN, job_stats, list_jobs, list_jobs_in, page_statement,
    show_job, show_job_in,
};
pub use steer::{cancel_job, retry_job};
pub use submit::{BatchSubmitted, MAX_BATCH, Submitted, SubmittedJob, submit_batch, submit_job};
pub(crate) use submit::{submit_in_tx, validate_submission};
pub use vocabulary::{AttemptOutcome, JobErrorCode, JobStatus, STATUSES};

/// Why a job or an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct JobError {
    /// Stable code: `task_failed`, `exit_status`, `timed_out`, `lease_expired`, `cancelled`,
    /// `output_too_large`, `spawn_failed`, `worker_shutdown`.
    pub code: String,
    /// What happened, for people (a capped tail of stderr for command kinds).
    pub message: String,
}

impl JobError {
    /// An error with a code (a [`JobErrorCode`] in Velu's own code) and message.
    pub fn new(code: impl AsRef<str>, message: impl Into<String>) -> JobError {
        JobError {
            code: code.as_ref().to_owned(),
            message: message.into(),
        }
    }

    /// The stored error of a row; one that is not a `JobError` is a corrupt row, an
    /// `internal` error (logged), never silently dropped.
    fn from_json(v: Option<Value>) -> CoreResult<Option<JobError>> {
        v.map(|v| {
            serde_json::from_value(v).map_err(|e| {
                tracing::error!(error = %e, "malformed job error stored in the database");
                CoreError::internal(e)
            })
        })
        .transpose()
    }
}

/// A job as every front end prints it (no lease internals).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    /// UUIDv7.
    pub id: String,
    /// The org it belongs to.
    pub org_id: String,
    /// Task kind.
    pub task: String,
    /// Where the job is.
    pub status: JobStatus,
    /// What the submitter sent (a JSON object).
    pub payload: Value,
    /// The handler's result (a JSON object), once succeeded.
    pub result: Option<Value>,
    /// The last error, once an attempt failed.
    pub error: Option<JobError>,
    /// Higher runs first.
    pub priority: i32,
    /// Attempts made so far.
    pub attempts: i32,
    /// Attempts allowed before the job fails for good.
    pub max_attempts: i32,
    /// Not before this time.
    pub run_at: Timestamp,
    /// `cli`, `api_key` or `schedule`.
    pub actor_type: String,
    /// OS user, key id or schedule id of the submitter.
    pub actor_id: String,
    /// The submitter's deduplication key.
    pub idempotency_key: Option<String>,
    /// A cancel was asked while it ran; its worker stops it within a heartbeat.
    pub cancel_requested: bool,
    /// When it was submitted.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// When it was first claimed (a job claimed ahead may wait in its worker for a
    /// handler: its first attempt's own start may come later).
    pub started_at: Option<Timestamp>,
    /// When it reached `succeeded`, `failed` or `cancelled`.
    pub finished_at: Option<Timestamp>,
}

/// One attempt of a job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobAttempt {
    /// 1, 2, ...
    pub attempt: i32,
    /// The worker that ran it; `null` for org keys (it names a host and a process of the
    /// platform, `host:pid` by default).
    pub worker_id: Option<String>,
    /// When it started: its claim while it runs; once it ended, when a handler took it
    /// (its end less the run its worker measured, never before its claim).
    pub started_at: Timestamp,
    /// When it ended (`null` while running).
    pub finished_at: Option<Timestamp>,
    /// How it ended; `null` while running.
    pub outcome: Option<AttemptOutcome>,
    /// Why it did not succeed.
    pub error: Option<JobError>,
}

/// A job with its attempts (`job show`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobDetail {
    /// The job.
    #[serde(flatten)]
    pub job: Job,
    /// Its attempts, oldest first.
    pub history: Vec<JobAttempt>,
}

impl Job {
    /// The document of a row; a status outside the vocabulary is `internal`.
    pub(crate) fn from_model(m: jobs::Model) -> CoreResult<Job> {
        let status = JobStatus::from_stored(&m.status)?;
        Ok(Job {
            id: m.id,
            org_id: m.org_id,
            task: m.task,
            status,
            payload: m.payload,
            result: m.result,
            error: JobError::from_json(m.error)?,
            priority: m.priority,
            attempts: m.attempts,
            max_attempts: m.max_attempts,
            run_at: m.run_at.into(),
            actor_type: m.actor_type,
            actor_id: m.actor_id,
            idempotency_key: m.idempotency_key,
            cancel_requested: m.cancel_requested,
            created_at: m.created_at.into(),
            updated_at: m.updated_at.into(),
            started_at: m.started_at.map(Timestamp),
            finished_at: m.finished_at.map(Timestamp),
        })
    }
}

impl JobAttempt {
    /// The document of a row; an outcome outside the vocabulary is `internal`.
    pub(crate) fn from_model(m: job_attempts::Model) -> CoreResult<JobAttempt> {
        let outcome = m
            .outcome
            .as_deref()
            .map(AttemptOutcome::from_stored)
            .transpose()?;
        Ok(JobAttempt {
            attempt: m.attempt,
            worker_id: Some(m.worker_id),
            started_at: m.started_at.into(),
            finished_at: m.finished_at.map(Timestamp),
            outcome,
            error: JobError::from_json(m.error)?,
        })
    }
}
