//! The fleet: every worker process, local or remote, registers here and heartbeats, so
//! `velu-cli worker list` / `GET /v1/workers` can show who runs jobs and who went quiet.
//!
//! The registry API (stable; remote-worker endpoints call it with the worker key's org):
//!
//! * [`register`]`(&Velu, &WorkerRegistration) -> CoreResult<WorkerInfo>`: upsert at
//!   start (or reconnect). `org_id` comes from the caller's principal, never from the
//!   worker's own words: `None` is a platform worker, `Some(org)` an org-scoped one. Ids
//!   are per owner (rows are keyed by owner and id): a registration touches only its
//!   owner's worker of that id, so no org can take over, hide, impersonate or squat on
//!   another org's (or the platform's) worker id. An org holds at most
//!   [`MAX_WORKERS_PER_ORG`] rows (`quota_exceeded`). Registering also prunes.
//! * [`beat`]`(&Velu, worker_id, org_id, running_jobs, at)`: the worker is alive and runs
//!   `running_jobs` jobs. `not_found` when no running registration of that id belongs to
//!   `org_id` (pruned, stopped, or another owner's): register again.
//! * [`stopped`]`(&Velu, worker_id, org_id, at)`: clean shutdown; idempotent.
//! * [`prune`]`(&Velu, at)`: deletes rows not seen for [`PRUNE_UNSEEN_AFTER`] (24 h) and
//!   rows stopped for [`PRUNE_STOPPED_AFTER`] (1 h). [`register`] prunes, and [`beat`]
//!   does at most every [`PRUNE_EVERY`] per process, so nothing else need call it.
//! * [`list_workers`]`(&Velu, &Principal, &WorkerFilter, &PageRequest)`: the parity
//!   operation `workers.list`, each worker with its [`WorkerState`]: `stopped` once it
//!   said so, `stale` once [`STALE_BEATS`] of its heartbeats are missed (it registered its
//!   period, `heartbeat_secs`), else `live`. [`list_workers_at`] takes the time, for tests.
//!
//! Every function takes the time (`at`), so tests can age a worker without sleeping.
//!
//! The worker loop reaches the registry only through its `QueueAccess`
//! (`register_worker`, `worker_beat`, `worker_stopped`; hooks in `worker/presence.rs`):
//! `LocalAccess` calls the functions above as a platform, local worker; a remote worker's
//! access sends them over the worker protocol, whose server handlers call them with
//! `org_id` from the worker key's principal and `remote: true`.
//!
//! Rights of `workers.list`: the operator and platform keys need `jobs:work` or
//! `admin:orgs:manage` and see every worker; org keys need `jobs:read` and see only
//! their own org's workers (never platform workers, never another org's: naming another
//! org is `not_found`).
//!
//! Files: `documents.rs` (the documents and closed sets), `input.rs` (what a registration
//! may carry), `registry.rs` (the writes), `read.rs` (the list).

mod documents;
mod input;
mod read;
mod registry;

pub use documents::{WorkerFilter, WorkerInfo, WorkerList, WorkerLocation, WorkerState};
pub use input::{
    MAX_CONCURRENCY, MAX_HEARTBEAT_SECS, MAX_HOST_LEN, MAX_ID_LEN, MAX_KIND_LEN, MAX_KINDS,
    MAX_VERSION_LEN, WorkerRegistration,
};
pub use read::{list_workers, list_workers_at};
pub use registry::{beat, prune, register, stopped};

/// A worker that missed this many heartbeats in a row is `stale`.
pub const STALE_BEATS: i64 = 3;
/// Rows of workers not seen for this long are pruned.
pub const PRUNE_UNSEEN_AFTER: chrono::Duration = chrono::Duration::hours(24);
/// Rows of workers stopped this long ago are pruned.
pub const PRUNE_STOPPED_AFTER: chrono::Duration = chrono::Duration::hours(1);
/// How often a process prunes from beats (registering always prunes).
pub const PRUNE_EVERY: chrono::Duration = chrono::Duration::hours(1);
/// Most registry rows one org may hold (its remote workers, in any state).
pub const MAX_WORKERS_PER_ORG: u64 = 1000;
