//! Schedules.

use poem_openapi::Object;
use poem_openapi::types::Any;
use serde_json::Value;
use velu_core::schedules;

use super::common::{JsonObject, PlainText, TaskName, ts, ts_opt};
use super::mirror::mirror;

mirror! {
    /// A schedule: a task kind and payload queued at every tick of a cron expression.
    pub struct Schedule from schedules::Schedule {
        /// UUIDv7.
        pub id: String,
        /// Its org.
        pub org_id: String,
        /// Task kind of the jobs it queues.
        pub task: String,
        /// Five-field cron expression.
        pub cron: String,
        /// IANA time zone the cron is read in.
        pub timezone: String,
        /// The payload of every job it queues.
        pub payload: Any<Value> = |p| Any(p),
        /// A paused schedule queues nothing.
        pub paused: bool,
        /// The next tick (RFC 3339 UTC); `null` while paused or when the cron has no
        /// further tick.
        #[oai(nullable)]
        pub next_run_at: Option<String> = |t| ts_opt(t),
        /// When it last queued a job (RFC 3339 UTC).
        #[oai(nullable)]
        pub last_enqueued_at: Option<String> = |t| ts_opt(t),
        /// The last job it queued.
        #[oai(nullable)]
        pub last_job_id: Option<String>,
        /// Why the last tick queued nothing (`code: message`).
        #[oai(nullable)]
        pub last_error: Option<String>,
        /// `cli` or `api_key`: who created it.
        pub created_by_type: String,
        /// OS user or key id of its creator.
        pub created_by_id: String,
        /// RFC 3339 UTC.
        pub created_at: String = |t| ts(t),
        /// RFC 3339 UTC.
        pub updated_at: String = |t| ts(t),
    }
}

/// Body of `POST /v1/orgs/{org}/schedules`. Nothing else is accepted: the org and the
/// creator come from the API key.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct CreateSchedule {
    /// Task kind: one of this server's catalog (`GET /v1/tasks`; another name is
    /// `invalid`), and the org's plan must allow it.
    #[oai(validator(custom = "crate::model::common::TaskPattern"))]
    pub task: TaskName,
    /// Five-field cron expression (minute hour day-of-month month day-of-week), e.g.
    /// `*/5 * * * *`; nothing fires more often than once a minute. One that does not
    /// parse, has a seconds field, or never ticks (e.g. `0 0 30 2 *`) is `invalid`.
    #[oai(validator(
        min_length = 1,
        max_length = 200,
        custom = "crate::model::common::NoControl"
    ))]
    pub cron: PlainText,
    /// IANA time zone the cron is read in, e.g. `Europe/Paris` (a name the server's time
    /// zone database does not know is `invalid`) [default: UTC].
    #[oai(
        nullable,
        validator(
            min_length = 1,
            max_length = 64,
            custom = "crate::model::common::NoControl"
        )
    )]
    pub timezone: Option<PlainText>,
    /// The payload of every job, as for `POST /v1/orgs/{org}/jobs` [default: {}].
    #[oai(nullable, default)]
    pub payload: JsonObject,
}

impl From<CreateSchedule> for schedules::CreateSchedule {
    fn from(b: CreateSchedule) -> Self {
        schedules::CreateSchedule {
            task: b.task.0,
            cron: b.cron.0,
            timezone: b.timezone.map(String::from),
            payload: b.payload.0,
        }
    }
}
