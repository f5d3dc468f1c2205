//! The worker protocol's documents (`/v1/worker/...`): request bodies, converted into
//! velu-core's inputs, and mirrors of its answers. The wire itself is
//! `velu_core::worker::protocol`'s structs, which `velu-cli`'s remote worker uses too.

use poem_openapi::types::Any;
use poem_openapi::{Enum, Object};
use serde_json::Value;
use velu_core::jobs;
use velu_core::worker::protocol as core;

use super::common::{PlainText, TaskName, Text};
use super::mirror::{each, mirror};
use super::plans::PlanName;

/// Body of `POST /v1/worker/register`.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct RegisterWorker {
    /// The worker's id: 1 to 200 bytes, no control characters.
    #[oai(validator(
        min_length = 1,
        max_length = 200,
        custom = "crate::model::common::NoControl"
    ))]
    pub worker_id: PlainText,
    /// The host it runs on: 1 to 255 bytes, no control characters.
    #[oai(validator(
        min_length = 1,
        max_length = 255,
        custom = "crate::model::common::NoControl"
    ))]
    pub host: PlainText,
    /// Its version: 1 to 64 bytes, no control characters.
    #[oai(validator(
        min_length = 1,
        max_length = 64,
        custom = "crate::model::common::NoControl"
    ))]
    pub version: PlainText,
    /// The task kinds it runs: at most 256 kind names (duplicates are dropped).
    #[oai(validator(max_items = 256, custom = "crate::model::common::TaskPattern"))]
    pub kinds: Vec<TaskName>,
    /// Jobs it runs at once (1 to 100000).
    #[oai(validator(minimum(value = "1"), maximum(value = "100000")))]
    pub concurrency: u32,
    /// How often it will call `worker.heartbeat`, in seconds (1 to 3600).
    #[oai(validator(minimum(value = "1"), maximum(value = "3600")))]
    pub heartbeat_secs: u64,
}

impl From<RegisterWorker> for core::RegisterInput {
    fn from(b: RegisterWorker) -> Self {
        core::RegisterInput {
            worker_id: b.worker_id.0,
            host: b.host.0,
            version: b.version.0,
            kinds: b.kinds.into_iter().map(String::from).collect(),
            concurrency: b.concurrency,
            heartbeat_secs: b.heartbeat_secs,
        }
    }
}

/// Body of `POST /v1/worker/claim`.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct ClaimJobs {
    /// The worker's id, the owner of the leases: 1 to 200 bytes, no control characters.
    #[oai(validator(
        min_length = 1,
        max_length = 200,
        custom = "crate::model::common::NoControl"
    ))]
    pub worker_id: PlainText,
    /// Most jobs to claim. A claim also stops once its jobs' payloads reach 4 MiB (it
    /// always has its first job): fewer jobs than asked does not mean none are left.
    #[oai(validator(minimum(value = "1"), maximum(value = "256")))]
    pub max: u32,
    /// How long to wait for a job when none is ready, in ms (0 to 30000) [default: 0]. At
    /// most 8 waiting claims per key (more: 429).
    #[oai(
        default,
        nullable,
        validator(minimum(value = "0"), maximum(value = "30000"))
    )]
    pub wait_ms: u64,
    /// Only these kinds: at most 256 kind names [default: every kind the key may run].
    #[oai(
        nullable,
        validator(max_items = 256, custom = "crate::model::common::TaskPattern")
    )]
    pub kinds: Option<Vec<TaskName>>,
    /// Lease length in ms [default: 30000]; renew it by heartbeat.
    #[oai(
        nullable,
        validator(minimum(value = "1000"), maximum(value = "3600000"))
    )]
    pub lease_ms: Option<u64>,
}

impl From<ClaimJobs> for core::ClaimInput {
    fn from(b: ClaimJobs) -> Self {
        core::ClaimInput {
            worker_id: b.worker_id.0,
            max: b.max,
            wait_ms: b.wait_ms,
            kinds: b.kinds.map(|k| k.into_iter().map(String::from).collect()),
            lease_ms: b.lease_ms,
        }
    }
}

mirror! {
    /// A job claimed under a lease.
    pub struct LeasedJob from core::LeasedJob {
        /// Job id.
        pub id: String,
        /// Its org.
        pub org_id: String,
        /// Task kind (its definition: `GET /v1/worker/tasks`).
        pub task: String,
        /// The payload (a JSON object).
        pub payload: Any<Value> = |p| Any(p),
        /// This attempt's number (1-based).
        pub attempt: i32,
        /// The job's attempt budget.
        pub max_attempts: i32,
        /// The attempt's fencing token: name it in every heartbeat, finish and release.
        pub token: String,
    }
}

mirror! {
    /// Answer of `POST /v1/worker/claim`.
    pub struct Claimed from core::Claimed {
        /// The jobs claimed; empty when the wait ran out.
        pub jobs: Vec<LeasedJob> = |v| each(v),
        /// The lease length granted, in ms.
        pub lease_ms: u64,
    }
}

/// Body of `POST /v1/worker/heartbeat`.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct HeartbeatLeases {
    /// The worker's id (the lease owner).
    #[oai(validator(
        min_length = 1,
        max_length = 200,
        custom = "crate::model::common::NoControl"
    ))]
    pub worker_id: PlainText,
    /// Tokens of the leases to renew: at most 1024, each 1 to 128 bytes, no control
    /// characters (may be empty: the worker is alive) [default: none].
    #[oai(
        default,
        nullable,
        validator(
            max_items = 1024,
            min_length = 1,
            max_length = 128,
            custom = "crate::model::common::NoControl"
        )
    )]
    pub tokens: Vec<PlainText>,
    /// New lease length in ms [default: 30000].
    #[oai(
        nullable,
        validator(minimum(value = "1000"), maximum(value = "3600000"))
    )]
    pub lease_ms: Option<u64>,
    /// New progress lines of the jobs, one report per lease token (docs/events.md): at
    /// most 512 lines in all [default: none].
    #[oai(default, nullable, validator(max_items = 512))]
    pub progress: Vec<ProgressLines>,
}

/// New progress lines of one job, in a heartbeat.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct ProgressLines {
    /// The attempt's lease token.
    #[oai(validator(
        min_length = 1,
        max_length = 128,
        custom = "crate::model::common::NoControl"
    ))]
    pub token: PlainText,
    /// The lines, oldest first, without newlines: at most 64, each at most 4096 bytes
    /// (stored cut to 1024 bytes, control characters replaced).
    #[oai(validator(max_items = 64, max_length = 4096))]
    pub lines: Vec<Text>,
}

impl From<HeartbeatLeases> for core::HeartbeatInput {
    fn from(b: HeartbeatLeases) -> Self {
        core::HeartbeatInput {
            worker_id: b.worker_id.0,
            tokens: b.tokens.into_iter().map(String::from).collect(),
            lease_ms: b.lease_ms,
            progress: b
                .progress
                .into_iter()
                .map(|p| velu_core::events::ProgressReport {
                    token: p.token.0,
                    lines: p.lines.into_iter().map(String::from).collect(),
                })
                .collect(),
        }
    }
}

mirror! {
    /// A lease still held.
    pub struct HeldLease from core::HeldLease {
        /// Job id.
        pub id: String,
        /// A cancel was asked: stop the job and finish it `cancelled`.
        pub cancel_requested: bool,
    }
}

mirror! {
    /// Answer of `POST /v1/worker/heartbeat`.
    pub struct Heartbeat from core::Heartbeat {
        /// The leases still held; a token's job missing here was lost: stop it, report
        /// nothing.
        pub held: Vec<HeldLease> = |v| each(v),
    }
}

/// How an attempt ended, as the worker saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum ReportedOutcome {
    /// It worked: `result` holds its output.
    Succeeded,
    /// The handler failed: `error` says why.
    Failed,
    /// It ran past the kind's timeout.
    TimedOut,
    /// Stopped after a heartbeat answered `cancel_requested`.
    Cancelled,
}

impl ReportedOutcome {
    fn as_str(self) -> &'static str {
        let core = match self {
            ReportedOutcome::Succeeded => jobs::AttemptOutcome::Succeeded,
            ReportedOutcome::Failed => jobs::AttemptOutcome::Failed,
            ReportedOutcome::TimedOut => jobs::AttemptOutcome::TimedOut,
            ReportedOutcome::Cancelled => jobs::AttemptOutcome::Cancelled,
        };
        core.as_str()
    }
}

/// Why an attempt failed, as a worker reports it.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct ReportedError {
    /// A stable code (`task_failed`, `exit_status`, `timed_out`, ...), 1 to 64 bytes.
    #[oai(validator(
        min_length = 1,
        max_length = 64,
        custom = "crate::model::common::NoControl"
    ))]
    pub code: PlainText,
    /// What happened, for people (at most 64 KiB).
    #[oai(validator(max_length = 65536))]
    pub message: Text,
}

/// One attempt's end.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct ReportedAttempt {
    /// Job id: 1 to 64 bytes, no control characters; at most once per request.
    #[oai(validator(
        min_length = 1,
        max_length = 64,
        custom = "crate::model::common::NoControl"
    ))]
    pub id: PlainText,
    /// The attempt's fencing token: 1 to 128 bytes, no control characters.
    #[oai(validator(
        min_length = 1,
        max_length = 128,
        custom = "crate::model::common::NoControl"
    ))]
    pub token: PlainText,
    /// How it ended; the server applies the retry policy. `cancelled` only after a
    /// heartbeat answered `cancel_requested` for the job (else `invalid`).
    pub outcome: ReportedOutcome,
    /// The result, only for `succeeded` (anything but an object is stored as `{value:
    /// ...}`); with another outcome it is `invalid`.
    #[oai(nullable)]
    pub result: Option<Any<Value>>,
    /// The error, only for the other outcomes (with `succeeded` it is `invalid`) [default:
    /// a generic one].
    #[oai(nullable)]
    pub error: Option<ReportedError>,
    /// How long the handler ran, in microseconds, as the worker measured it: the
    /// attempt's recorded start (and its billed run time) is its end less this, never
    /// before its claim; without it, the attempt ran from its claim. Taken from a
    /// platform key only: an org key's worker would set its own org's bill, so its
    /// attempts run from their claim whatever it sends.
    #[oai(
        nullable,
        validator(minimum(value = "0"), maximum(value = "315360000000000"))
    )]
    pub ran_us: Option<u64>,
}

// The bound on `ran_us` above is the core's.
const _: () = assert!(velu_core::queue::MAX_RAN_US == 315_360_000_000_000);

/// Body of `POST /v1/worker/finish`.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct FinishAttempts {
    /// The attempts that ended (1 to 512), each job at most once (a job named twice is
    /// `invalid`).
    #[oai(validator(min_items = 1, max_items = 512))]
    pub results: Vec<ReportedAttempt>,
}

impl From<FinishAttempts> for core::FinishInput {
    fn from(b: FinishAttempts) -> Self {
        core::FinishInput {
            results: b
                .results
                .into_iter()
                .map(|r| core::AttemptResult {
                    id: r.id.0,
                    token: r.token.0,
                    outcome: r.outcome.as_str().to_owned(),
                    result: r.result.map(|a| a.0),
                    error: r.error.map(|e| jobs::JobError::new(e.code.0, e.message.0)),
                    ran_us: r.ran_us,
                })
                .collect(),
        }
    }
}

/// What became of a reported attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum FinishState {
    /// Recorded.
    Accepted,
    /// Refused: the token no longer owns the job (reclaimed, released, finished, or not
    /// the key's). Nothing was written.
    LeaseLost,
}

impl From<core::FinishState> for FinishState {
    fn from(s: core::FinishState) -> Self {
        match s {
            core::FinishState::Accepted => FinishState::Accepted,
            core::FinishState::LeaseLost => FinishState::LeaseLost,
        }
    }
}

mirror! {
    /// The answer for one reported attempt.
    pub struct Finished from core::Finished {
        /// Job id.
        pub id: String,
        /// Accepted or refused.
        pub state: FinishState,
    }
}

mirror! {
    /// Answer of `POST /v1/worker/finish`: one item per result, in order.
    pub struct FinishList from core::FinishList {
        /// Per result.
        pub items: Vec<Finished> = |v| each(v),
    }
}

/// Body of `POST /v1/worker/release`.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct ReleaseLeases {
    /// The worker's id (the lease owner).
    #[oai(validator(
        min_length = 1,
        max_length = 200,
        custom = "crate::model::common::NoControl"
    ))]
    pub worker_id: PlainText,
    /// Tokens of the leases to hand back: at most 1024, each 1 to 128 bytes, no control
    /// characters.
    #[oai(validator(
        max_items = 1024,
        min_length = 1,
        max_length = 128,
        custom = "crate::model::common::NoControl"
    ))]
    pub tokens: Vec<PlainText>,
}

impl From<ReleaseLeases> for core::ReleaseInput {
    fn from(b: ReleaseLeases) -> Self {
        core::ReleaseInput {
            worker_id: b.worker_id.0,
            tokens: b.tokens.into_iter().map(String::from).collect(),
        }
    }
}

mirror! {
    /// Answer of `POST /v1/worker/release`.
    pub struct Released from core::Released {
        /// Ids of the jobs handed back to the queue.
        pub released: Vec<String>,
    }
}

/// Body of `POST /v1/worker/stopped`.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct WorkerStopped {
    /// The worker's id.
    #[oai(validator(
        min_length = 1,
        max_length = 200,
        custom = "crate::model::common::NoControl"
    ))]
    pub worker_id: PlainText,
}

impl From<WorkerStopped> for core::StoppedInput {
    fn from(b: WorkerStopped) -> Self {
        core::StoppedInput {
            worker_id: b.worker_id.0,
        }
    }
}

/// How a kind runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum RunnerName {
    /// Built-in: returns its payload.
    Echo,
    /// Built-in: sleeps `payload.seconds` (at most 3600), then returns `{slept}`.
    Sleep,
    /// Built-in: fails with `payload.message`.
    Fail,
    /// An operator-defined command: `command`, run without a shell, with `env` passed.
    Command,
}

impl From<core::RunnerName> for RunnerName {
    fn from(r: core::RunnerName) -> Self {
        match r {
            core::RunnerName::Echo => RunnerName::Echo,
            core::RunnerName::Sleep => RunnerName::Sleep,
            core::RunnerName::Fail => RunnerName::Fail,
            core::RunnerName::Command => RunnerName::Command,
        }
    }
}

mirror! {
    /// A task kind with everything a worker needs to run it.
    pub struct WorkerTask from core::WorkerTask {
        /// Kind name.
        pub name: String,
        /// Lowest plan that may run it.
        pub min_plan: PlanName,
        /// How it runs.
        pub runner: RunnerName,
        /// Program and arguments (no shell), for `command`; empty otherwise. Programs are
        /// paths on the server's machine: a remote worker needs them at the same paths.
        pub command: Vec<String>,
        /// Environment variables passed through from the worker, for `command`.
        pub env: Vec<String>,
        /// Names of the org secrets each job receives (`worker.secrets` gives the
        /// values), for `command`; empty otherwise.
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
}

mirror! {
    /// Answer of `GET /v1/worker/tasks`.
    pub struct WorkerTasks from core::WorkerTasks {
        /// The kinds the key may run, sorted by name.
        pub items: Vec<WorkerTask> = |v| each(v),
    }
}
