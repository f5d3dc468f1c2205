//! The fleet's documents: one worker as `worker list` prints it, and the closed sets of
//! its state and location.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::STALE_BEATS;
use crate::entity::workers;
use crate::pagination::Page;
use crate::tenancy::OrgRef;
use crate::time::Timestamp;
use crate::{CoreError, CoreResult};

/// Whether a worker is heard from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    /// Heartbeating.
    Live,
    /// Missed [`STALE_BEATS`] heartbeats in a row without saying it stopped (crashed,
    /// hung, or cut off); its leases expire and other workers reclaim its jobs.
    Stale,
    /// Shut down cleanly.
    Stopped,
}

impl WorkerState {
    /// Every state.
    pub const ALL: [WorkerState; 3] = [WorkerState::Live, WorkerState::Stale, WorkerState::Stopped];

    /// The name as printed: `live`, `stale` or `stopped`.
    pub const fn as_str(self) -> &'static str {
        match self {
            WorkerState::Live => "live",
            WorkerState::Stale => "stale",
            WorkerState::Stopped => "stopped",
        }
    }

    /// Parses a state a caller gave for `field`; an unknown name is `invalid`.
    pub fn parse_field(field: &str, text: &str) -> CoreResult<WorkerState> {
        WorkerState::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| CoreError::invalid(field, "expected one of live, stale, stopped"))
    }

    /// The state of `row` at time `at`.
    pub(super) fn of(row: &workers::Model, at: DateTime<Utc>) -> WorkerState {
        if row.stopped_at.is_some() {
            WorkerState::Stopped
        } else if row.stale_at < at {
            WorkerState::Stale
        } else {
            WorkerState::Live
        }
    }
}

/// Where a worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerLocation {
    /// Next to the database (`velu-cli worker`), with the platform's rights.
    Local,
    /// Elsewhere, over the worker protocol, with a worker key.
    Remote,
}

impl WorkerLocation {
    /// `local` or `remote`.
    pub const fn as_str(self) -> &'static str {
        match self {
            WorkerLocation::Local => "local",
            WorkerLocation::Remote => "remote",
        }
    }
}

/// One worker of the fleet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerInfo {
    /// The worker id (in leases and attempts), `host:pid:random` by default.
    pub id: String,
    /// The org it serves; `null` for a platform worker (every org).
    pub org_id: Option<String>,
    /// `live`, `stale` or `stopped`.
    pub state: WorkerState,
    /// `local` or `remote`.
    pub location: WorkerLocation,
    /// The host it runs on, as it reported.
    pub host: String,
    /// Its Velu version.
    pub version: String,
    /// The task kinds it runs.
    pub kinds: Vec<String>,
    /// Jobs it may run at once.
    pub concurrency: u32,
    /// Jobs it ran at its last heartbeat.
    pub running_jobs: u32,
    /// Its heartbeat period, in seconds (`stale` after [`STALE_BEATS`] of them).
    pub heartbeat_secs: u32,
    /// When it (last) registered.
    pub started_at: Timestamp,
    /// When it was last heard from.
    pub last_seen_at: Timestamp,
    /// When it stopped, if it did.
    pub stopped_at: Option<Timestamp>,
}

/// A page of workers.
pub type WorkerList = Page<WorkerInfo>;

/// Filters of `worker list`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerFilter {
    /// Only the workers of this org (id or slug).
    pub org: Option<OrgRef>,
    /// Only workers in this state: `live`, `stale` or `stopped`.
    pub state: Option<String>,
}

impl WorkerInfo {
    /// The document of `row` at time `at`. A corrupt row is `internal`, never a default.
    pub(super) fn from_model(row: workers::Model, at: DateTime<Utc>) -> CoreResult<WorkerInfo> {
        let state = WorkerState::of(&row, at);
        let corrupt = |what: &str| {
            tracing::error!(worker = %row.id, what, "corrupt workers row");
            CoreError::internal(format!("corrupt workers row: {what}"))
        };
        let kinds: Vec<String> =
            serde_json::from_value(row.kinds.clone()).map_err(|_| corrupt("kinds"))?;
        let count = |n: i32, what: &str| u32::try_from(n).map_err(|_| corrupt(what));
        Ok(WorkerInfo {
            state,
            location: if row.remote {
                WorkerLocation::Remote
            } else {
                WorkerLocation::Local
            },
            kinds,
            concurrency: count(row.concurrency, "concurrency")?,
            running_jobs: count(row.running_jobs, "running_jobs")?,
            heartbeat_secs: count(row.heartbeat_secs, "heartbeat_secs")?,
            started_at: row.started_at.into(),
            last_seen_at: row.last_seen_at.into(),
            stopped_at: row.stopped_at.map(Into::into),
            id: row.id,
            org_id: row.org_id,
            host: row.host,
            version: row.version,
        })
    }
}

/// When a worker last seen at `seen` with period `heartbeat_secs` turns stale.
pub(super) fn stale_at(seen: DateTime<Utc>, heartbeat_secs: i32) -> DateTime<Utc> {
    seen + chrono::Duration::seconds(i64::from(heartbeat_secs) * STALE_BEATS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_parse_as_printed_and_nothing_else() {
        for s in WorkerState::ALL {
            assert_eq!(WorkerState::parse_field("state", s.as_str()).unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for bad in ["LIVE", "dead", "", "live\0"] {
            let err = WorkerState::parse_field("state", bad).unwrap_err();
            assert_eq!(err.code(), "invalid", "{bad:?}");
        }
    }
}
