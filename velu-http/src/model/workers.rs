//! The fleet of workers.

use poem_openapi::Enum;
use velu_core::fleet;

use super::common::{ts, ts_opt};
use super::mirror::mirror;

/// Whether a worker is heard from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum WorkerState {
    /// Heartbeating.
    Live,
    /// Missed three heartbeats in a row without saying it stopped.
    Stale,
    /// Shut down cleanly.
    Stopped,
}

// Exhaustive both ways, so the wire enum cannot drift from velu-core's.
impl From<fleet::WorkerState> for WorkerState {
    fn from(s: fleet::WorkerState) -> Self {
        match s {
            fleet::WorkerState::Live => WorkerState::Live,
            fleet::WorkerState::Stale => WorkerState::Stale,
            fleet::WorkerState::Stopped => WorkerState::Stopped,
        }
    }
}

impl From<WorkerState> for fleet::WorkerState {
    fn from(s: WorkerState) -> Self {
        match s {
            WorkerState::Live => fleet::WorkerState::Live,
            WorkerState::Stale => fleet::WorkerState::Stale,
            WorkerState::Stopped => fleet::WorkerState::Stopped,
        }
    }
}

/// Where a worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum WorkerLocation {
    /// Next to the database (`velu-cli worker`).
    Local,
    /// Elsewhere, over the worker protocol, with a worker key.
    Remote,
}

impl From<fleet::WorkerLocation> for WorkerLocation {
    fn from(l: fleet::WorkerLocation) -> Self {
        match l {
            fleet::WorkerLocation::Local => WorkerLocation::Local,
            fleet::WorkerLocation::Remote => WorkerLocation::Remote,
        }
    }
}

mirror! {
    /// One worker of the fleet.
    pub struct WorkerInfo from fleet::WorkerInfo {
        /// The worker id (in leases and attempts), `host:pid:random` by default.
        pub id: String,
        /// The org it serves; `null` for a platform worker (every org).
        #[oai(nullable)]
        pub org_id: Option<String>,
        /// `live`, `stale` (three heartbeats missed) or `stopped`.
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
        /// Its heartbeat period, in seconds.
        pub heartbeat_secs: u32,
        /// When it (last) registered; RFC 3339 UTC.
        pub started_at: String = |t| ts(t),
        /// When it was last heard from; RFC 3339 UTC.
        pub last_seen_at: String = |t| ts(t),
        /// When it stopped, if it did; RFC 3339 UTC.
        #[oai(nullable)]
        pub stopped_at: Option<String> = |t| ts_opt(t),
    }
}
