//! The execution plane: the durable queue as workers use it (claim, heartbeat, finish,
//! reclaim, release). The control plane (submit, read, steer: rights and audit) is
//! [`crate::jobs`]; this wing checks no rights, the database credential being the trust
//! boundary of a worker. A remote worker has no credential: the worker protocol
//! ([`crate::worker::protocol`]) checks its key's rights and tenancy, then calls these
//! same functions.
//!
//! Ownership is a lease: claiming a job gives it a fresh random `lease_token` (the fencing
//! token of that attempt) and an expiry the owner renews by heartbeat. Every write a
//! worker makes about a job names the token, so a worker whose lease expired and was
//! reclaimed can never overwrite the new owner's work.
//!
//! Claiming respects the org's plan: at most `concurrent_jobs` running per org, and only
//! task kinds the plan allows. Claims for one org are serialized (an advisory lock per org
//! taken first by the `velu_claim_batch` function on PostgreSQL, the write lock on SQLite) so two workers
//! cannot both take the last slot. Rows are picked with `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL; SQLite has one writer. Nothing of a paused org, and no job of a paused task
//! kind, is claimed (`pause.rs`); the check is inside the claim, not in a worker's cache.
//!
//! Hot-path statements are SQL written per backend, batched through a JSON parameter
//! (`jsonb_to_recordset` / `json_each`), so a batch of N jobs costs one statement.

mod claim;
mod depth;
mod finish;
mod lease;
mod pause;
mod pin;
mod ready;
mod scrub;
mod types;

pub use claim::{MAX_CLAIM_BYTES, OrgClaim, claim_for_org, claim_for_orgs};
pub use depth::{DEPTH_STATUSES, depth};
pub use finish::{Finish, MAX_RAN_US, finish};
pub use lease::{heartbeat, heartbeat_with_progress, reclaim_expired, release};
pub use pause::PauseScope;
pub(crate) use pause::{hold_claims, holds, is_held};
pub use ready::{explain_ready_scan, plans_of, ready_orgs};
pub use scrub::{NUL_REPLACEMENT, scrub_nul};
pub use types::{ClaimedJob, Held, KindsByPlan, ReadyOrg};

/// Every SQLite statement of the claim loop and the finish, by name (`pin.rs` checks their
/// plans against misleading statistics).
#[cfg(test)]
fn sqlite_statements() -> Vec<(&'static str, String)> {
    use crate::db::Backend;
    let [attempts, events, usage, jobs] = finish::sqlite_finish_sql();
    let [claim_events, claim] = claim::sqlite_claim_sql();
    vec![
        ("ready scan", ready::scan_sql(Backend::Sqlite, false)),
        (
            "ready scan, wrapping",
            ready::scan_sql(Backend::Sqlite, true),
        ),
        ("claim: events", claim_events),
        ("claim", claim),
        ("finish: attempts", attempts),
        ("finish: events", events),
        ("finish: usage", usage),
        ("finish: jobs", jobs),
    ]
}
