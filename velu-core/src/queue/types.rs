//! What the queue hands a worker: claimed jobs, ready orgs, held leases.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::plans::Plan;

/// A job a worker now owns.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    /// Job id.
    pub id: String,
    /// Its org.
    pub org_id: String,
    /// Task kind.
    pub task: String,
    /// The payload.
    pub payload: Value,
    /// This attempt's number.
    pub attempt: i32,
    /// The attempt budget.
    pub max_attempts: i32,
    /// The fencing token of this attempt.
    pub token: String,
}

/// An org with jobs ready to run, and its plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyOrg {
    /// Org id.
    pub id: String,
    /// Its current plan.
    pub plan: Plan,
}

/// A lease the owner still holds after a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Job id.
    pub id: String,
    /// The cancel flag: stop the handler.
    pub cancel_requested: bool,
}

/// The task kinds a worker may run for an org, by the org's plan.
pub type KindsByPlan = BTreeMap<Plan, Vec<String>>;

/// When a lease of length `lease` taken at `at` expires (30 s for a length chrono cannot
/// represent).
pub(super) fn lease_expiry(at: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    at + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(30))
}
