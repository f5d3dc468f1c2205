//! The worker protocol, server side: what a remote worker (`velu-cli worker --server`, or
//! a worker in any language, see docs/workers.md) calls over HTTP instead of opening the
//! database. One operation each, taking `&Velu` and the `&Principal` of the worker's key:
//!
//! * [`worker_tasks`]: the catalog it may run (with command lines), so it needs no tasks
//!   file;
//! * [`worker_register`] / [`worker_stopped`]: the fleet registry ([`crate::fleet`]);
//! * [`worker_claim`]: a batch of jobs under fresh leases, long-polling up to 30 s;
//! * [`worker_heartbeat`]: renews leases, answers cancels and lost leases, beats the
//!   fleet and takes back expired leases (any worker's duty, as in the local loop);
//! * [`worker_finish`]: outcomes, fenced by lease token, the retry policy applied here;
//! * [`worker_release`]: hands leases back at shutdown;
//! * [`worker_secrets`]: the org secrets of a job the caller holds under a live lease
//!   (docs/secrets.md).
//!
//! Rights: every operation needs `jobs:work`. A platform key serves every org (the fair
//! scan of the local worker); an org key (role `worker`: bring your own compute) serves
//! only its own org, within its plan: it claims only that org's jobs and kinds, and a lease
//! token of another org's job is treated as unknown (`lease_lost`, nothing touched), so a
//! token alone never reaches across tenants.

mod claim;
mod finish;
mod lease;
mod register;
mod secrets;
mod served;
mod tasks;
mod wire;

pub use claim::worker_claim;
pub use finish::worker_finish;
pub use lease::{worker_heartbeat, worker_release};
pub use register::{worker_register, worker_stopped};
pub use secrets::{JobSecrets, SecretValue, SecretsInput, worker_secrets};
pub use tasks::{catalog_from_tasks, worker_tasks};
pub use wire::{
    AttemptResult, ClaimInput, Claimed, FinishInput, FinishList, FinishState, Finished, Heartbeat,
    HeartbeatInput, HeldLease, LeasedJob, RegisterInput, ReleaseInput, Released, RunnerName,
    StoppedInput, WorkerTask, WorkerTasks,
};

use std::time::Duration;

/// Most jobs one claim may ask for.
pub const MAX_CLAIM: u32 = 256;
/// Longest a claim may wait for a job, in ms.
pub const MAX_WAIT_MS: u64 = 30_000;
/// Most tokens in one heartbeat or release.
pub const MAX_TOKENS: usize = 1024;
/// Most results in one finish.
pub const MAX_RESULTS: usize = 512;
/// Lease length when the worker names none.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// Shortest and longest lease a worker may ask for, in ms.
pub const LEASE_MS_RANGE: std::ops::RangeInclusive<u64> = 1_000..=3_600_000;
