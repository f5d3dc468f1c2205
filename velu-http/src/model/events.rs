//! Job events (`GET /v1/orgs/{org}/jobs/{job}/events`): mirrors of velu-core's
//! `events::JobEvent` and `events::JobEvents`.

use poem_openapi::Enum;
use velu_core::events;

use super::common::{ts, ts_opt};
use super::jobs::JobStatus;
use super::mirror::{each, mirror};

/// What an event says happened to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum EventKind {
    /// The job entered the queue (`via`).
    Queued,
    /// A worker took it (`attempt`, `worker_id`).
    Claimed,
    /// Its worker is still alive (recorded only after a quiet minute).
    Heartbeat,
    /// A line the job wrote to its progress file (`line`).
    Progress,
    /// An attempt ended and the job is queued again (`error_code`, `run_at`).
    Retrying,
    /// A cancel was asked of the running job.
    CancelRequested,
    /// The job ended (`status`, `error_code` unless succeeded).
    Ended,
}

impl From<events::EventKind> for EventKind {
    fn from(k: events::EventKind) -> Self {
        match k {
            events::EventKind::Queued => EventKind::Queued,
            events::EventKind::Claimed => EventKind::Claimed,
            events::EventKind::Heartbeat => EventKind::Heartbeat,
            events::EventKind::Progress => EventKind::Progress,
            events::EventKind::Retrying => EventKind::Retrying,
            events::EventKind::CancelRequested => EventKind::CancelRequested,
            events::EventKind::Ended => EventKind::Ended,
        }
    }
}

/// How a job entered the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum QueuedVia {
    /// `jobs.submit`.
    Submit,
    /// `jobs.submit_batch`.
    Batch,
    /// A schedule's tick.
    Schedule,
    /// `jobs.retry`.
    Retry,
}

impl From<events::QueuedVia> for QueuedVia {
    fn from(v: events::QueuedVia) -> Self {
        match v {
            events::QueuedVia::Submit => QueuedVia::Submit,
            events::QueuedVia::Batch => QueuedVia::Batch,
            events::QueuedVia::Schedule => QueuedVia::Schedule,
            events::QueuedVia::Retry => QueuedVia::Retry,
        }
    }
}

mirror! {
    /// One thing that happened to a job; fields its kind does not carry are absent.
    pub struct JobEvent from events::JobEvent {
        /// Position in the stream: grows along the job's events (not contiguous). Resume
        /// with `after=SEQ` (or `Last-Event-ID` on the event stream).
        pub seq: i64,
        /// When (RFC 3339 UTC).
        pub at: String = |t| ts(t),
        /// What happened.
        pub kind: EventKind,
        /// The attempt it concerns.
        #[oai(skip_serializing_if_is_none)]
        pub attempt: Option<i32>,
        /// The worker that took the job (operator and platform keys only).
        #[oai(skip_serializing_if_is_none)]
        pub worker_id: Option<String>,
        /// How the job entered the queue (`queued`).
        #[oai(skip_serializing_if_is_none)]
        pub via: Option<QueuedVia> = |v| v.map(Into::into),
        /// The line the job wrote (`progress`): at most 1024 bytes, control characters
        /// replaced by U+FFFD.
        #[oai(skip_serializing_if_is_none)]
        pub line: Option<String>,
        /// The job's status after it (`retrying`, `ended`).
        #[oai(skip_serializing_if_is_none)]
        pub status: Option<JobStatus> = |s| s.map(Into::into),
        /// The job error code (`retrying`, and `ended` unless succeeded).
        #[oai(skip_serializing_if_is_none)]
        pub error_code: Option<String>,
        /// When the job may run next (`retrying`; RFC 3339 UTC).
        #[oai(skip_serializing_if_is_none)]
        pub run_at: Option<String> = |t| ts_opt(t),
    }
}

mirror! {
    /// A page of a job's events, oldest first.
    pub struct JobEvents from events::JobEvents {
        /// The job.
        pub job_id: String,
        /// Events after `after`, oldest first.
        pub events: Vec<JobEvent> = |v| each(v),
        /// Pass it as `after` to read on.
        pub next_after: i64,
        /// The job has ended and this page holds its last event.
        pub ended: bool,
    }
}
