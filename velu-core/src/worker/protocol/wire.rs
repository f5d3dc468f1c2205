//! The documents of the worker protocol, both ways: what a remote worker sends (inputs,
//! refusing unknown fields) and what the server answers. The HTTP facade mirrors them for
//! its spec; `velu-cli`'s remote worker (de)serializes these very structs, so the client
//! and the server cannot disagree about a field.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::jobs::JobError;
use crate::plans::Plan;

/// Input of `worker.register`: a remote worker announcing itself to the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterInput {
    /// The worker's id (1 to 200 bytes, no control characters).
    pub worker_id: String,
    /// The host it runs on.
    pub host: String,
    /// Its Velu version (or the version of whatever implements the protocol).
    pub version: String,
    /// The task kinds it runs.
    pub kinds: Vec<String>,
    /// Jobs it runs at once.
    pub concurrency: u32,
    /// How often it will call `worker.heartbeat`, in seconds.
    pub heartbeat_secs: u64,
}

/// Input of `worker.claim`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimInput {
    /// The worker's id: the lease owner of what it claims.
    pub worker_id: String,
    /// Most jobs to claim (1..=256). A claim also stops at
    /// [`MAX_CLAIM_BYTES`](crate::queue::MAX_CLAIM_BYTES) of payload (it always has its
    /// first job).
    pub max: u32,
    /// How long to wait for a job when none is ready, in ms (0..=30000) [default: 0].
    #[serde(default)]
    pub wait_ms: u64,
    /// Only these kinds [default: every kind the caller may run].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<String>>,
    /// Lease length, in ms (1000..=3600000) [default: 30000]; renew it by heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ms: Option<u64>,
}

/// A job claimed under a lease: what a worker needs to run it and to report on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeasedJob {
    /// Job id.
    pub id: String,
    /// Its org.
    pub org_id: String,
    /// Task kind (its definition: `worker.tasks`).
    pub task: String,
    /// The payload (a JSON object).
    pub payload: Value,
    /// This attempt's number (1-based).
    pub attempt: i32,
    /// The job's attempt budget.
    pub max_attempts: i32,
    /// The attempt's fencing token: name it in every heartbeat, finish and release.
    pub token: String,
}

/// Answer of `worker.claim`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claimed {
    /// The jobs claimed, possibly none (the wait ran out).
    pub jobs: Vec<LeasedJob>,
    /// The lease length granted, in ms.
    pub lease_ms: u64,
}

/// Input of `worker.heartbeat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatInput {
    /// The worker's id (the lease owner).
    pub worker_id: String,
    /// The tokens of the leases to renew (at most 1024; may be empty: the worker is alive).
    #[serde(default)]
    pub tokens: Vec<String>,
    /// New lease length, in ms (1000..=3600000) [default: 30000].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ms: Option<u64>,
    /// New progress lines of the jobs, by lease token (at most 512 lines in all, 64 per
    /// report; docs/events.md) [default: none].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub progress: Vec<crate::events::ProgressReport>,
}

/// A lease still held after a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldLease {
    /// Job id.
    pub id: String,
    /// A cancel was asked: stop the job and finish it `cancelled`.
    pub cancel_requested: bool,
}

/// Answer of `worker.heartbeat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The leases still held; a token's job missing here was lost: stop it, report nothing.
    pub held: Vec<HeldLease>,
}

/// How one attempt ended, as a remote worker reports it. The server applies the retry
/// policy itself (the job's next status is never the worker's word).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttemptResult {
    /// Job id.
    pub id: String,
    /// The attempt's fencing token.
    pub token: String,
    /// `succeeded`, `failed`, `timed_out` or `cancelled` (only after a heartbeat answered
    /// `cancel_requested`).
    pub outcome: String,
    /// The result, for `succeeded` (anything but an object is stored as `{value: ...}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The error, for the other outcomes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    /// How long the handler ran, in microseconds, as the worker measured it (see
    /// [`crate::queue::Finish::ran_us`]); without it the attempt ran from its claim. Taken
    /// from a platform key's worker only: an org key's attempts run from their claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ran_us: Option<u64>,
}

/// Input of `worker.finish`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinishInput {
    /// The attempts that ended (1..=512).
    pub results: Vec<AttemptResult>,
}

/// What became of one reported attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishState {
    /// Recorded.
    Accepted,
    /// Refused: the token no longer owns the job (reclaimed, released, finished, or not
    /// yours). Nothing was written.
    LeaseLost,
}

/// The answer for one reported attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finished {
    /// Job id.
    pub id: String,
    /// Accepted or refused.
    pub state: FinishState,
}

/// Answer of `worker.finish`, one item per result, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishList {
    /// Per result.
    pub items: Vec<Finished>,
}

/// Input of `worker.release` (shutdown: the jobs go back to the queue, no attempt used).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseInput {
    /// The worker's id (the lease owner).
    pub worker_id: String,
    /// The tokens to hand back (1..=1024).
    pub tokens: Vec<String>,
}

/// Answer of `worker.release`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Released {
    /// Ids of the jobs handed back.
    pub released: Vec<String>,
}

/// Input of `worker.stopped` (a clean shutdown, for the fleet registry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoppedInput {
    /// The worker's id.
    pub worker_id: String,
}

/// How a kind runs, for a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunnerName {
    /// Built-in: returns its payload.
    Echo,
    /// Built-in: sleeps `payload.seconds`.
    Sleep,
    /// Built-in: fails with `payload.message`.
    Fail,
    /// An operator-defined command (`command`, `env`).
    Command,
}

/// A task kind with everything a worker needs to run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerTask {
    /// Kind name.
    pub name: String,
    /// Lowest plan that may run it.
    pub min_plan: Plan,
    /// How it runs.
    pub runner: RunnerName,
    /// Program and arguments (no shell), for `command`; empty otherwise. Programs are
    /// paths on the server's machine: a remote worker needs them at the same paths.
    pub command: Vec<String>,
    /// Environment variables passed through from the worker, for `command`.
    pub env: Vec<String>,
    /// Names of the org secrets each job receives (`worker.secrets` gives the values),
    /// for `command`; empty otherwise.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Per-attempt timeout, in seconds.
    pub timeout_secs: u64,
    /// Default attempts.
    pub max_attempts: u32,
    /// First retry delay, in seconds.
    pub backoff_secs: u64,
    /// Largest retry delay, in seconds.
    pub backoff_max_secs: u64,
    /// What it does.
    pub description: String,
}

/// Answer of `worker.tasks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerTasks {
    /// The kinds the caller may run, sorted by name.
    pub items: Vec<WorkerTask>,
}
