//! Jobs.

use std::collections::BTreeMap;

use poem_openapi::types::Any;
use poem_openapi::{Enum, Object};
use serde_json::Value;
use velu_core::jobs;

use super::common::{JsonObject, PlainText, TaskName, Text, ts, ts_opt};
use super::mirror::{each, mirror};

/// A job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum JobStatus {
    /// Waiting for a worker (or for `run_at`).
    Queued,
    /// A worker holds it.
    Running,
    /// Done, with a result.
    Succeeded,
    /// Out of attempts.
    Failed,
    /// Cancelled.
    Cancelled,
}

fn outcome_text(o: Option<jobs::AttemptOutcome>) -> Option<String> {
    o.map(|o| o.as_str().to_owned())
}

// Exhaustive both ways, so the wire enum cannot drift from velu-core's vocabulary (and
// nothing here spells a status).
impl From<jobs::JobStatus> for JobStatus {
    fn from(s: jobs::JobStatus) -> Self {
        match s {
            jobs::JobStatus::Queued => JobStatus::Queued,
            jobs::JobStatus::Running => JobStatus::Running,
            jobs::JobStatus::Succeeded => JobStatus::Succeeded,
            jobs::JobStatus::Failed => JobStatus::Failed,
            jobs::JobStatus::Cancelled => JobStatus::Cancelled,
        }
    }
}

impl From<JobStatus> for jobs::JobStatus {
    fn from(s: JobStatus) -> Self {
        match s {
            JobStatus::Queued => jobs::JobStatus::Queued,
            JobStatus::Running => jobs::JobStatus::Running,
            JobStatus::Succeeded => jobs::JobStatus::Succeeded,
            JobStatus::Failed => jobs::JobStatus::Failed,
            JobStatus::Cancelled => jobs::JobStatus::Cancelled,
        }
    }
}

mirror! {
    /// Why a job or an attempt failed.
    pub struct JobError from jobs::JobError {
        /// Stable code: `task_failed`, `exit_status`, `timed_out`, `lease_expired`,
        /// `cancelled`, `output_too_large`, `spawn_failed`, `worker_shutdown`.
        pub code: String,
        /// What happened.
        pub message: String,
    }
}

mirror! {
    /// A job.
    pub struct Job from jobs::Job {
        /// UUIDv7.
        pub id: String,
        /// Its org.
        pub org_id: String,
        /// Task kind.
        pub task: String,
        /// Where the job is.
        pub status: JobStatus,
        /// What the submitter sent.
        pub payload: Any<Value> = |p| Any(p),
        /// The result, once succeeded.
        #[oai(nullable)]
        pub result: Option<Any<Value>> = |r| r.map(Any),
        /// The last error.
        #[oai(nullable)]
        pub error: Option<JobError> = |e| e.map(Into::into),
        /// Higher runs first.
        pub priority: i32,
        /// Attempts made.
        pub attempts: i32,
        /// Attempts allowed.
        pub max_attempts: i32,
        /// Not before this time (RFC 3339 UTC).
        pub run_at: String = |t| ts(t),
        /// `cli`, `api_key` or `schedule` (from the principal, never the request).
        pub actor_type: String,
        /// OS user, key id or schedule id of the submitter.
        pub actor_id: String,
        /// The submitter's deduplication key.
        #[oai(nullable)]
        pub idempotency_key: Option<String>,
        /// A cancel is pending on a running job.
        pub cancel_requested: bool,
        /// RFC 3339 UTC.
        pub created_at: String = |t| ts(t),
        /// RFC 3339 UTC.
        pub updated_at: String = |t| ts(t),
        /// First claim (RFC 3339 UTC).
        #[oai(nullable)]
        pub started_at: Option<String> = |t| ts_opt(t),
        /// End (RFC 3339 UTC).
        #[oai(nullable)]
        pub finished_at: Option<String> = |t| ts_opt(t),
    }
}

mirror! {
    /// One attempt.
    pub struct JobAttempt from jobs::JobAttempt {
        /// 1, 2, ...
        pub attempt: i32,
        /// The worker that ran it; `null` for org keys (it names a host and a process of
        /// the platform). The operator and platform keys see it.
        #[oai(nullable)]
        pub worker_id: Option<String>,
        /// RFC 3339 UTC: its claim while it runs; once it ended, when a handler took it
        /// (its end less the run its worker measured, never before its claim).
        pub started_at: String = |t| ts(t),
        /// RFC 3339 UTC, `null` while running.
        #[oai(nullable)]
        pub finished_at: Option<String> = |t| ts_opt(t),
        /// `succeeded`, `failed`, `timed_out`, `cancelled` or `lost`; `null` while running.
        #[oai(nullable)]
        pub outcome: Option<String> = |o| outcome_text(o),
        /// Why it did not succeed.
        #[oai(nullable)]
        pub error: Option<JobError> = |e| e.map(Into::into),
    }
}

mirror! {
    /// A job just submitted.
    pub struct SubmittedJob from jobs::SubmittedJob {
        /// The job.
        #[oai(flatten)]
        pub job: Job,
        /// `true` when a pause holds the job (its org's queue or its task kind is paused:
        /// it waits for a resume); absent otherwise. Not looked up for an earlier job
        /// returned by its idempotency key.
        #[oai(skip_serializing_if_is_none)]
        pub queue_paused: Option<bool>,
    }
}

mirror! {
    /// A job with its attempts.
    pub struct JobDetail from jobs::JobDetail {
        /// The job.
        #[oai(flatten)]
        pub job: Job,
        /// Its attempts, oldest first.
        pub history: Vec<JobAttempt> = |h| each(h),
    }
}

mirror! {
    /// Counts of an org's jobs.
    pub struct JobStats from jobs::JobStats {
        /// The org.
        pub org_id: String,
        /// All jobs.
        pub total: u64,
        /// By status.
        pub by_status: BTreeMap<String, u64>,
        /// By task kind, then status.
        pub by_task: BTreeMap<String, BTreeMap<String, u64>>,
    }
}

/// Body of `POST /v1/orgs/{org}/jobs`. Nothing else is accepted: the org and the actor
/// come from the API key.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct SubmitJob {
    /// Task kind (`GET /v1/tasks`); an unknown kind is `invalid`.
    #[oai(validator(custom = "crate::model::common::TaskPattern"))]
    pub task: TaskName,
    /// A JSON object: top-level keys starting with `_` are reserved, strings may not hold
    /// U+0000, and its JSON may not exceed the plan's `payload_bytes` (413) [default: {}].
    #[oai(nullable, default)]
    pub payload: JsonObject,
    /// Higher first [default: 0].
    #[oai(nullable, validator(minimum(value = "-100"), maximum(value = "100")))]
    pub priority: Option<i32>,
    /// RFC 3339 (years 1970 to 9999): not before this time, at most 366 days away.
    #[oai(nullable)]
    pub run_at: Option<Text>,
    /// Attempts allowed [default: the kind's].
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "25")))]
    pub max_attempts: Option<u32>,
    /// Submitting the same key again returns the existing job: 1 to 200 bytes, no control
    /// characters.
    #[oai(
        nullable,
        validator(
            min_length = 1,
            max_length = 200,
            custom = "crate::model::common::NoControl"
        )
    )]
    pub idempotency_key: Option<PlainText>,
}

impl From<SubmitJob> for jobs::SubmitJob {
    fn from(b: SubmitJob) -> Self {
        jobs::SubmitJob {
            task: b.task.0,
            payload: b.payload.0,
            priority: b.priority,
            run_at: b.run_at.map(String::from),
            max_attempts: b.max_attempts,
            idempotency_key: b.idempotency_key.map(String::from),
        }
    }
}

/// One job of a batch: a submit without an idempotency key.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct BatchJob {
    /// Task kind (`GET /v1/tasks`); an unknown kind is `invalid`.
    #[oai(validator(custom = "crate::model::common::TaskPattern"))]
    pub task: TaskName,
    /// A JSON object, as for a single submit [default: {}].
    #[oai(nullable, default)]
    pub payload: JsonObject,
    /// Higher first [default: 0].
    #[oai(nullable, validator(minimum(value = "-100"), maximum(value = "100")))]
    pub priority: Option<i32>,
    /// RFC 3339: not before this time, at most 366 days away.
    #[oai(nullable)]
    pub run_at: Option<Text>,
    /// Attempts allowed [default: the kind's].
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "25")))]
    pub max_attempts: Option<u32>,
}

impl From<BatchJob> for jobs::SubmitJob {
    fn from(b: BatchJob) -> Self {
        jobs::SubmitJob {
            task: b.task.0,
            payload: b.payload.0,
            priority: b.priority,
            run_at: b.run_at.map(String::from),
            max_attempts: b.max_attempts,
            idempotency_key: None,
        }
    }
}

/// Body of `POST /v1/orgs/{org}/jobs/batch`.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct SubmitBatch {
    /// The jobs: 1 to 50000 (idempotency keys are not taken in batches).
    #[oai(validator(min_items = 1, max_items = 50000))]
    pub jobs: Vec<BatchJob>,
}

mirror! {
    /// What a batch submit queued.
    pub struct BatchSubmitted from jobs::BatchSubmitted {
        /// How many jobs.
        pub count: u64 = |n| n as u64,
        /// Their ids, in input order.
        pub ids: Vec<String>,
        /// `true` when a pause holds some of them (the org's queue, or one of their task
        /// kinds, is paused: they wait for a resume); absent otherwise.
        #[oai(skip_serializing_if_is_none)]
        pub queue_paused: Option<bool>,
    }
}

/// Body of the earlier system's `POST /tasks`. Nothing else is accepted (as on the
/// `/v1` routes: the org and the actor come from the API key).
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct LegacyTask {
    /// Task kind (`GET /v1/tasks`); an unknown kind is `invalid`.
    #[oai(validator(custom = "crate::model::common::TaskPattern"))]
    pub task: TaskName,
    /// A JSON object, as for `POST /v1/orgs/{org}/jobs` [default: {}].
    #[oai(nullable, default)]
    pub payload: JsonObject,
}

/// Answer of the earlier system's `POST /tasks`.
#[derive(Debug, Object)]
pub struct LegacyAccepted {
    /// Always true (errors are problem+json).
    pub ok: bool,
    /// The new job's id.
    pub job_id: String,
}

/// Answer of the earlier system's `GET /results/{job_id}`.
#[derive(Debug, Object)]
pub struct LegacyResult {
    /// Always true (a missing job is a 404).
    pub ok: bool,
    /// The job.
    pub item: Job,
}
