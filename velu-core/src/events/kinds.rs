//! The closed sets of a job's event stream: what happened ([`EventKind`]) and how a job
//! came to be queued ([`QueuedVia`]). The only place that spells them; SQL takes the
//! strings from [`EventKind::as_str`].

use std::fmt;

use serde::Serialize;

use crate::{CoreError, CoreResult};

/// What an event says happened to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The job entered the queue (`via` says how: submit, batch, schedule, retry).
    Queued,
    /// A worker took it (`worker_id`, `attempt`).
    Claimed,
    /// Its worker is still alive (at most one per [`super::HEARTBEAT_EVENT_EVERY`] of a
    /// quiet stream: most heartbeats write nothing).
    Heartbeat,
    /// A line the job wrote to its progress file (`line`).
    Progress,
    /// An attempt ended without ending the job: it is queued again (`error_code`, and
    /// `run_at`, when it may run next).
    Retrying,
    /// A cancel was asked of a running job; its worker stops it within a heartbeat.
    CancelRequested,
    /// The job ended (`status`: succeeded, failed or cancelled; `error_code` unless
    /// succeeded). The last event of a run.
    Ended,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 7] = [
        EventKind::Queued,
        EventKind::Claimed,
        EventKind::Heartbeat,
        EventKind::Progress,
        EventKind::Retrying,
        EventKind::CancelRequested,
        EventKind::Ended,
    ];

    /// The name as stored and printed.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Queued => "queued",
            EventKind::Claimed => "claimed",
            EventKind::Heartbeat => "heartbeat",
            EventKind::Progress => "progress",
            EventKind::Retrying => "retrying",
            EventKind::CancelRequested => "cancel_requested",
            EventKind::Ended => "ended",
        }
    }

    /// The kind stored as `text` (anything else is a broken row: `internal`).
    pub fn from_stored(text: &str) -> CoreResult<EventKind> {
        EventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| CoreError::internal(format!("stored event kind `{text}`")))
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a job entered the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueuedVia {
    /// `jobs.submit`.
    Submit,
    /// `jobs.submit_batch`.
    Batch,
    /// A schedule's tick.
    Schedule,
    /// `jobs.retry` of a failed or cancelled job.
    Retry,
}

impl QueuedVia {
    /// Every way.
    pub const ALL: [QueuedVia; 4] = [
        QueuedVia::Submit,
        QueuedVia::Batch,
        QueuedVia::Schedule,
        QueuedVia::Retry,
    ];

    /// The name as stored and printed.
    pub const fn as_str(self) -> &'static str {
        match self {
            QueuedVia::Submit => "submit",
            QueuedVia::Batch => "batch",
            QueuedVia::Schedule => "schedule",
            QueuedVia::Retry => "retry",
        }
    }

    /// The way stored as `text`, if it is one.
    pub fn parse(text: &str) -> Option<QueuedVia> {
        QueuedVia::ALL.into_iter().find(|v| v.as_str() == text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_serialize_as_stored() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::from_stored(k.as_str()).unwrap(), k);
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        assert_eq!(
            EventKind::from_stored("nope").unwrap_err().code(),
            "internal"
        );
        for v in QueuedVia::ALL {
            assert_eq!(QueuedVia::parse(v.as_str()), Some(v));
            assert_eq!(serde_json::to_value(v).unwrap(), v.as_str());
        }
    }
}
