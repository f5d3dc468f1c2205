//! The job vocabulary: the closed sets of job statuses and attempt outcomes, and the only
//! place that spells them. Everything else (SQL text included) takes the strings from
//! [`JobStatus::as_str`] and [`AttemptOutcome::as_str`]; the strings are what is stored
//! and what every front end prints.

use std::fmt;

use serde::Serialize;

use crate::{CoreError, CoreResult};

/// Where a job is: `queued → running → succeeded | failed | cancelled`, and back to
/// `queued` for a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for a worker (or for its `run_at`).
    Queued,
    /// A worker holds its lease.
    Running,
    /// Done: the handler's result is stored.
    Succeeded,
    /// Done: the last attempt failed and none are left.
    Failed,
    /// Done: a cancel was asked.
    Cancelled,
}

impl JobStatus {
    /// Every status, in the order of the lifecycle.
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ];

    /// The name as stored and printed.
    pub const fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// Whether the job has ended for good (`succeeded`, `failed` or `cancelled`).
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled
        )
    }

    /// The status named exactly `text`, if any.
    pub fn parse(text: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Parses a status a caller gave for `field`; an unknown name is `invalid`.
    pub fn parse_field(field: &str, text: &str) -> CoreResult<JobStatus> {
        JobStatus::parse(text).ok_or_else(|| {
            CoreError::invalid(field, format!("expected one of {}", STATUSES.join(", ")))
        })
    }

    /// Parses a status read from the database. A value outside the closed set is a corrupt
    /// row: an `internal` error (logged), never a default.
    pub fn from_stored(text: &str) -> CoreResult<JobStatus> {
        JobStatus::parse(text).ok_or_else(|| {
            tracing::error!(status = text, "unknown job status stored in the database");
            CoreError::internal(format!("unknown job status `{text}` stored"))
        })
    }
}

/// The names of every [`JobStatus`], in [`JobStatus::ALL`] order.
pub const STATUSES: [&str; 5] = [
    JobStatus::ALL[0].as_str(),
    JobStatus::ALL[1].as_str(),
    JobStatus::ALL[2].as_str(),
    JobStatus::ALL[3].as_str(),
    JobStatus::ALL[4].as_str(),
];

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one attempt of a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The handler returned a result.
    Succeeded,
    /// The handler failed.
    Failed,
    /// The handler ran past its kind's timeout and was stopped.
    TimedOut,
    /// A cancel was asked and the handler was stopped.
    Cancelled,
    /// The worker stopped renewing its lease (or handed it back): the attempt was taken
    /// from it.
    Lost,
}

impl AttemptOutcome {
    /// Every outcome.
    pub const ALL: [AttemptOutcome; 5] = [
        AttemptOutcome::Succeeded,
        AttemptOutcome::Failed,
        AttemptOutcome::TimedOut,
        AttemptOutcome::Cancelled,
        AttemptOutcome::Lost,
    ];

    /// The name as stored and printed.
    pub const fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Succeeded => "succeeded",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::TimedOut => "timed_out",
            AttemptOutcome::Cancelled => "cancelled",
            AttemptOutcome::Lost => "lost",
        }
    }

    /// The outcome named exactly `text`, if any.
    pub fn parse(text: &str) -> Option<AttemptOutcome> {
        AttemptOutcome::ALL.into_iter().find(|o| o.as_str() == text)
    }

    /// Parses an outcome read from the database. A value outside the closed set is a
    /// corrupt row: an `internal` error (logged), never a default.
    pub fn from_stored(text: &str) -> CoreResult<AttemptOutcome> {
        AttemptOutcome::parse(text).ok_or_else(|| {
            tracing::error!(
                outcome = text,
                "unknown attempt outcome stored in the database"
            );
            CoreError::internal(format!("unknown attempt outcome `{text}` stored"))
        })
    }
}

impl fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stable codes of a job's or attempt's error ([`super::JobError::code`]), as the
/// worker and the queue write them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobErrorCode {
    /// A built-in handler failed (`fail`, a bad `sleep` payload).
    TaskFailed,
    /// A command exited with a non-zero status or was killed by a signal.
    ExitStatus,
    /// The attempt ran past its kind's timeout.
    TimedOut,
    /// The worker stopped renewing its lease.
    LeaseExpired,
    /// A cancel was asked.
    Cancelled,
    /// A command's stdout passed the cap.
    OutputTooLarge,
    /// A command could not be started, contained or waited for.
    SpawnFailed,
    /// The worker shut down and handed the job back.
    WorkerShutdown,
    /// The handler was stopped (the lease was lost or shutdown); never written.
    Interrupted,
    /// The worker's catalog has no such task kind.
    UnknownTask,
    /// A secret the task kind lists could not be delivered: the org has not set it, or no
    /// secrets key is configured (docs/secrets.md). The message names it, never a value.
    SecretUnavailable,
    /// The worker could not store the attempt's outcome.
    Internal,
}

impl JobErrorCode {
    /// The code as stored and printed.
    pub const fn as_str(self) -> &'static str {
        match self {
            JobErrorCode::TaskFailed => "task_failed",
            JobErrorCode::ExitStatus => "exit_status",
            JobErrorCode::TimedOut => "timed_out",
            JobErrorCode::LeaseExpired => "lease_expired",
            JobErrorCode::Cancelled => "cancelled",
            JobErrorCode::OutputTooLarge => "output_too_large",
            JobErrorCode::SpawnFailed => "spawn_failed",
            JobErrorCode::WorkerShutdown => "worker_shutdown",
            JobErrorCode::Interrupted => "interrupted",
            JobErrorCode::UnknownTask => "unknown_task",
            JobErrorCode::SecretUnavailable => "secret_unavailable",
            JobErrorCode::Internal => "internal",
        }
    }
}

impl AsRef<str> for JobErrorCode {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_serialize_as_stored() {
        for s in JobStatus::ALL {
            assert_eq!(JobStatus::from_stored(s.as_str()).unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for o in AttemptOutcome::ALL {
            assert_eq!(AttemptOutcome::from_stored(o.as_str()).unwrap(), o);
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
        assert_eq!(STATUSES.len(), JobStatus::ALL.len());
    }

    #[test]
    fn unknown_values_are_errors_never_defaults() {
        assert_eq!(
            JobStatus::from_stored("paused").unwrap_err().code(),
            "internal"
        );
        assert_eq!(
            AttemptOutcome::from_stored("Lost").unwrap_err().code(),
            "internal"
        );
        assert_eq!(
            JobStatus::parse_field("status", "done").unwrap_err().code(),
            "invalid"
        );
    }

    #[test]
    fn only_ends_are_terminal() {
        let terminal: Vec<_> = JobStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            terminal,
            [
                JobStatus::Succeeded,
                JobStatus::Failed,
                JobStatus::Cancelled
            ]
        );
    }
}
