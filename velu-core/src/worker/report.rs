//! What a worker did: counters while it runs, the report when it stops.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// What a worker did, printed when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WorkerReport {
    /// The worker's id.
    pub worker_id: String,
    /// Jobs claimed.
    pub claimed: u64,
    /// Attempts that succeeded.
    pub succeeded: u64,
    /// Attempts that failed and will be retried.
    pub retried: u64,
    /// Jobs that failed for good.
    pub failed: u64,
    /// Jobs cancelled while running.
    pub cancelled: u64,
    /// Outcomes refused because the lease had moved on (fencing at work).
    pub fenced: u64,
    /// Leases handed back at shutdown.
    pub released: u64,
    /// Expired leases of other workers taken back.
    pub reclaimed: u64,
}

/// The live counts behind a [`WorkerReport`].
#[derive(Default)]
pub(super) struct Counters {
    pub claimed: AtomicU64,
    pub succeeded: AtomicU64,
    pub retried: AtomicU64,
    pub failed: AtomicU64,
    pub cancelled: AtomicU64,
    pub fenced: AtomicU64,
    pub released: AtomicU64,
    pub reclaimed: AtomicU64,
}

impl Counters {
    /// The report of worker `worker_id` as of now.
    pub fn report(&self, worker_id: &str) -> WorkerReport {
        WorkerReport {
            worker_id: worker_id.to_owned(),
            claimed: self.claimed.load(Ordering::Relaxed),
            succeeded: self.succeeded.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            cancelled: self.cancelled.load(Ordering::Relaxed),
            fenced: self.fenced.load(Ordering::Relaxed),
            released: self.released.load(Ordering::Relaxed),
            reclaimed: self.reclaimed.load(Ordering::Relaxed),
        }
    }
}
