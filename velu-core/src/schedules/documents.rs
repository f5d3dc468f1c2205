//! The schedule document every front end prints.

use serde::Serialize;
use serde_json::Value;

use crate::entity::schedules;
use crate::time::Timestamp;

/// A schedule as `schedule show` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Schedule {
    /// UUIDv7.
    pub id: String,
    /// The org it belongs to (and whose plan each enqueue is checked against).
    pub org_id: String,
    /// Task kind of the jobs it queues.
    pub task: String,
    /// The five-field cron expression, as given.
    pub cron: String,
    /// The IANA time zone the cron is read in.
    pub timezone: String,
    /// The payload of every job it queues (a JSON object).
    pub payload: Value,
    /// A paused schedule queues nothing until resumed.
    pub paused: bool,
    /// The next tick; `null` while paused, or when the cron has no further tick.
    pub next_run_at: Option<Timestamp>,
    /// When it last queued a job.
    pub last_enqueued_at: Option<Timestamp>,
    /// The last job it queued.
    pub last_job_id: Option<String>,
    /// Why the last tick queued nothing (`code: message`); `null` after a tick that did.
    pub last_error: Option<String>,
    /// `cli` or `api_key`: who created it.
    pub created_by_type: String,
    /// OS user or key id of its creator.
    pub created_by_id: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was last created, paused or resumed.
    pub updated_at: Timestamp,
}

impl Schedule {
    /// The document of a row.
    pub(crate) fn from_model(m: schedules::Model) -> Schedule {
        Schedule {
            id: m.id,
            org_id: m.org_id,
            task: m.task,
            cron: m.cron,
            timezone: m.timezone,
            payload: m.payload,
            paused: m.paused,
            next_run_at: m.next_run_at.map(Timestamp),
            last_enqueued_at: m.last_enqueued_at.map(Timestamp),
            last_job_id: m.last_job_id,
            last_error: m.last_error,
            created_by_type: m.created_by_type,
            created_by_id: m.created_by_id,
            created_at: m.created_at.into(),
            updated_at: m.updated_at.into(),
        }
    }
}
