//! The retry policy: what an attempt's end means for the job.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::outcome::Outcome;
use super::state::Shared;
use crate::db::sql::json_time;
use crate::jobs::{AttemptOutcome, JobError, JobErrorCode, JobStatus};
use crate::queue::{ClaimedJob, Finish};
use crate::tasks::TaskCatalog;
use crate::time::now;

/// The record of an attempt's end, with the retry policy applied (see [`decide`]), and
/// counted.
pub(super) fn finish_for(shared: &Shared, job: &ClaimedJob, outcome: Outcome) -> Finish {
    let finish = decide(&shared.tasks, job, outcome);
    let c = &shared.counters;
    let counter = match finish.status {
        JobStatus::Succeeded => &c.succeeded,
        JobStatus::Cancelled => &c.cancelled,
        JobStatus::Queued => &c.retried,
        _ => &c.failed,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    finish
}

/// The retry policy: a failure with attempts left goes back to `queued` after the kind's
/// backoff (from `tasks`); otherwise the job ends. The worker protocol's finish applies
/// the same policy on the server, so a remote worker's word never sets a job's status.
pub(crate) fn decide(tasks: &TaskCatalog, job: &ClaimedJob, outcome: Outcome) -> Finish {
    let base = |status: JobStatus, outcome, error: Option<JobError>| Finish {
        id: job.id.clone(),
        token: job.token.clone(),
        status,
        outcome,
        result: None,
        error,
        run_at: None,
        finished: status.is_terminal(),
        ran_us: None,
    };
    let (err, attempt_outcome) = match outcome {
        Outcome::Succeeded(result) => {
            return Finish {
                result: Some(result),
                ..base(JobStatus::Succeeded, AttemptOutcome::Succeeded, None)
            };
        }
        Outcome::Cancelled => {
            return base(
                JobStatus::Cancelled,
                AttemptOutcome::Cancelled,
                Some(JobError::new(
                    JobErrorCode::Cancelled,
                    "cancelled while running",
                )),
            );
        }
        Outcome::Failed(err) => (err, AttemptOutcome::Failed),
        Outcome::TimedOut(err) => (err, AttemptOutcome::TimedOut),
    };
    if job.attempt < job.max_attempts {
        let backoff = tasks
            .get(&job.task)
            .map(|k| k.backoff.delay(job.attempt.max(1) as u32))
            .unwrap_or(Duration::from_secs(1));
        let at = now() + chrono::Duration::from_std(backoff).unwrap_or_default();
        Finish {
            run_at: Some(json_time(at)),
            ..base(JobStatus::Queued, attempt_outcome, Some(err))
        }
    } else {
        base(JobStatus::Failed, attempt_outcome, Some(err))
    }
}
