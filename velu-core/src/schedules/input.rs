//! What a client sends to create a schedule, parsed once here for every front end.

use serde::Deserialize;
use serde_json::Value;

/// Input of `schedule create`. Unknown fields are refused; the org and the creator come
/// from the principal.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSchedule {
    /// Task kind (see `task list`); the org's plan must allow it.
    pub task: String,
    /// Five-field cron expression, e.g. `*/5 * * * *`.
    pub cron: String,
    /// IANA time zone the cron is read in [default: UTC].
    pub timezone: Option<String>,
    /// The payload of every job, checked as a submitted job's [default: `{}`].
    #[serde(default = "empty_object")]
    pub payload: Value,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}
