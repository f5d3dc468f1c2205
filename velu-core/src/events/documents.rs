//! The documents of a job's event stream: one [`JobEvent`], and the page [`JobEvents`]
//! that `jobs.events` prints.

use serde::Serialize;

use super::kinds::{EventKind, QueuedVia};
use crate::CoreResult;
use crate::entity::job_events;
use crate::jobs::JobStatus;
use crate::time::Timestamp;

/// One thing that happened to a job. Fields a kind does not carry are left out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobEvent {
    /// Position in the stream: grows along the job's events (not contiguous: the numbering
    /// is shared by every job). Resume after it with `after=SEQ`.
    pub seq: i64,
    /// When it happened.
    pub at: Timestamp,
    /// What happened.
    pub kind: EventKind,
    /// The attempt it concerns (`claimed`, `heartbeat`, `progress`, `retrying`, `ended`
    /// after a run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<i32>,
    /// The worker that took the job (`claimed`, `heartbeat`); shown to the operator and
    /// platform keys only, as in a job's attempts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<String>,
    /// How the job entered the queue (`queued`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<QueuedVia>,
    /// The line the job wrote (`progress`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    /// The job's status after it (`retrying`: queued; `ended`: succeeded, failed or
    /// cancelled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<JobStatus>,
    /// The job error code (`retrying`, and `ended` unless succeeded): the code of the job
    /// document's `error`, never its message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// When the job may run next (`retrying`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_at: Option<Timestamp>,
}

impl JobEvent {
    /// The document of a stored row; `worker_id` only when `show_worker`.
    pub(crate) fn from_model(m: job_events::Model, show_worker: bool) -> CoreResult<JobEvent> {
        let kind = EventKind::from_stored(&m.kind)?;
        let (via, line) = match kind {
            EventKind::Queued => (m.detail.as_deref().and_then(QueuedVia::parse), None),
            EventKind::Progress => (None, m.detail),
            _ => (None, None),
        };
        Ok(JobEvent {
            seq: m.seq,
            at: m.at.into(),
            kind,
            attempt: m.attempt,
            worker_id: m.worker_id.filter(|_| show_worker),
            via,
            line,
            status: m
                .status
                .as_deref()
                .map(JobStatus::from_stored)
                .transpose()?,
            error_code: m.error_code,
            run_at: m.run_at.map(Into::into),
        })
    }
}

/// A page of a job's events, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobEvents {
    /// The job.
    pub job_id: String,
    /// Events after the `after` asked for, oldest first.
    pub events: Vec<JobEvent>,
    /// Pass it as `after` to read on (the last event's `seq`, or the `after` asked for
    /// when there was none).
    pub next_after: i64,
    /// The job has ended (succeeded, failed or cancelled) and this page holds its last
    /// event: nothing follows unless the job is retried.
    pub ended: bool,
}
