//! [`QueueAccess`]: the one seam between the worker loop and the queue it works.
//!
//! The loop (claim, heartbeat, complete, drain) never names a database: it calls these
//! methods. [`LocalAccess`] is the queue wing on this process's database connection (the
//! fair scan of `fair.rs`, then [`crate::queue`]); a remote worker passes its own
//! implementation (`velu-cli`'s HTTP client of the worker protocol, see
//! [`crate::worker::protocol`]), so the same loop runs with no database credentials.
//!
//! Every method takes a batch and costs one future (boxed: the trait is used as a trait
//! object), never one per job.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

use super::fair::{FairScan, claim_shared};
use super::ready_hints::HintInbox;
use crate::events::ProgressReport;
use crate::fleet::{self, WorkerRegistration};
use crate::queue::{self, ClaimedJob, Finish, Held};
use crate::secrets::{self, SecretEnv};
use crate::time::now;
use crate::{CoreResult, Velu};

/// The future of a [`QueueAccess`] call.
pub type AccessFuture<'a, T> = Pin<Box<dyn Future<Output = CoreResult<T>> + Send + 'a>>;

/// What the worker loop needs of a queue: claim, renew, finish, hand back, take back.
/// Every write about a job names its lease token (the fencing rule of [`crate::queue`]).
pub trait QueueAccess: Send + Sync {
    /// Claims up to `max` ready jobs for `worker`, fairly across orgs and within their
    /// plans, of the kinds in `kinds` (`None`: every kind of the catalog), each under a
    /// lease of `lease`. When nothing is ready it may wait up to `wait` for a job (an
    /// access with a [`QueueAccess::wake`] signal returns at once instead).
    fn claim<'a>(
        &'a self,
        worker: &'a str,
        max: u32,
        kinds: Option<&'a [String]>,
        lease: Duration,
        wait: Duration,
    ) -> AccessFuture<'a, Vec<ClaimedJob>>;

    /// Renews the leases `worker` holds by `tokens`; returns those still held, with their
    /// cancel flags. A job missing from the answer was lost.
    fn heartbeat<'a>(
        &'a self,
        worker: &'a str,
        tokens: &'a [String],
        lease: Duration,
    ) -> AccessFuture<'a, Vec<Held>>;

    /// [`QueueAccess::heartbeat`], also carrying new progress lines of the jobs (each
    /// report names its lease token). The default drops the lines (an access with no
    /// event stream behind it).
    fn heartbeat_progress<'a>(
        &'a self,
        worker: &'a str,
        tokens: &'a [String],
        lease: Duration,
        progress: &'a [ProgressReport],
    ) -> AccessFuture<'a, Vec<Held>> {
        let _ = progress;
        self.heartbeat(worker, tokens, lease)
    }

    /// Records how attempts ended; returns the ids written (a missing id: the lease had
    /// moved on, nothing was written).
    fn finish<'a>(&'a self, items: &'a [Finish]) -> AccessFuture<'a, Vec<String>>;

    /// Hands leases back at shutdown; returns the ids handed back.
    fn release<'a>(
        &'a self,
        worker: &'a str,
        tokens: &'a [String],
    ) -> AccessFuture<'a, Vec<String>>;

    /// Takes back leases that expired (their owner died); returns the ids.
    fn reclaim(&self) -> AccessFuture<'_, Vec<String>>;

    /// Changes when jobs may have become ready; `None` when the access waits in
    /// [`QueueAccess::claim`] itself (a long poll).
    fn wake(&self) -> Option<watch::Receiver<u64>>;

    /// Announces this worker to the fleet registry ([`crate::fleet::register`]) at start;
    /// the registry sets the owner (`org_id`), `remote` and the time itself. The default
    /// does nothing (an access with no registry behind it).
    fn register_worker<'a>(&'a self, reg: &'a WorkerRegistration) -> AccessFuture<'a, ()> {
        let _ = reg;
        Box::pin(async { Ok(()) })
    }

    /// Tells the fleet registry `worker` is alive with `running_jobs` jobs
    /// ([`crate::fleet::beat`]); `not_found` means register again. Default: nothing.
    fn worker_beat<'a>(&'a self, worker: &'a str, running_jobs: u32) -> AccessFuture<'a, ()> {
        let _ = (worker, running_jobs);
        Box::pin(async { Ok(()) })
    }

    /// The org secrets `job` receives (`names`, its kind's list), for the worker holding its
    /// lease as `worker`. The default fails closed: an access that cannot prove a lease
    /// delivers nothing.
    fn job_secrets<'a>(
        &'a self,
        worker: &'a str,
        job: &'a ClaimedJob,
        names: &'a [String],
    ) -> AccessFuture<'a, SecretEnv> {
        let _ = (worker, job, names);
        Box::pin(async {
            Err(crate::CoreError::Config(
                "this worker cannot fetch secrets".into(),
            ))
        })
    }

    /// Tells the fleet registry `worker` stopped cleanly ([`crate::fleet::stopped`]).
    /// Default: nothing.
    fn worker_stopped<'a>(&'a self, worker: &'a str) -> AccessFuture<'a, ()> {
        let _ = worker;
        Box::pin(async { Ok(()) })
    }
}

/// The queue on this process's own database connection.
pub struct LocalAccess {
    velu: Velu,
    scan: Mutex<FairScan>,
    /// The wake-ups this worker's list has not heard yet (every list has its own).
    hints: Arc<HintInbox>,
}

impl LocalAccess {
    /// The queue of `velu`'s database.
    pub fn new(velu: Velu) -> LocalAccess {
        let hints = velu.ready_hints().subscribe();
        LocalAccess {
            velu,
            scan: Mutex::new(FairScan::default()),
            hints,
        }
    }
}

impl QueueAccess for LocalAccess {
    fn claim<'a>(
        &'a self,
        worker: &'a str,
        max: u32,
        kinds: Option<&'a [String]>,
        lease: Duration,
        _wait: Duration,
    ) -> AccessFuture<'a, Vec<ClaimedJob>> {
        Box::pin(async move {
            if max > 0 {
                // Taken only when claiming, for the orgs to wait here until asked.
                self.scan
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .hear(self.hints.take());
            }
            claim_shared(
                &self.scan,
                self.velu.db(),
                self.velu.tasks(),
                kinds,
                worker,
                max as usize,
                lease,
            )
            .await
        })
    }

    fn heartbeat<'a>(
        &'a self,
        worker: &'a str,
        tokens: &'a [String],
        lease: Duration,
    ) -> AccessFuture<'a, Vec<Held>> {
        Box::pin(queue::heartbeat(
            self.velu.db(),
            worker,
            tokens,
            lease,
            now(),
        ))
    }

    fn heartbeat_progress<'a>(
        &'a self,
        worker: &'a str,
        tokens: &'a [String],
        lease: Duration,
        progress: &'a [ProgressReport],
    ) -> AccessFuture<'a, Vec<Held>> {
        Box::pin(queue::heartbeat_with_progress(
            self.velu.db(),
            worker,
            tokens,
            lease,
            now(),
            progress,
        ))
    }

    fn finish<'a>(&'a self, items: &'a [Finish]) -> AccessFuture<'a, Vec<String>> {
        Box::pin(queue::finish(self.velu.db(), items, now()))
    }

    fn release<'a>(
        &'a self,
        worker: &'a str,
        tokens: &'a [String],
    ) -> AccessFuture<'a, Vec<String>> {
        Box::pin(queue::release(self.velu.db(), worker, tokens, now()))
    }

    fn reclaim(&self) -> AccessFuture<'_, Vec<String>> {
        Box::pin(queue::reclaim_expired(self.velu.db(), now()))
    }

    fn wake(&self) -> Option<watch::Receiver<u64>> {
        Some(self.velu.jobs_ready())
    }

    // The local worker is a platform worker (no org) next to the database.
    fn register_worker<'a>(&'a self, reg: &'a WorkerRegistration) -> AccessFuture<'a, ()> {
        Box::pin(async move {
            let reg = WorkerRegistration {
                org_id: None,
                remote: false,
                at: now(),
                ..reg.clone()
            };
            fleet::register(&self.velu, &reg).await.map(|_| ())
        })
    }

    fn worker_beat<'a>(&'a self, worker: &'a str, running_jobs: u32) -> AccessFuture<'a, ()> {
        Box::pin(fleet::beat(&self.velu, worker, None, running_jobs, now()))
    }

    fn worker_stopped<'a>(&'a self, worker: &'a str) -> AccessFuture<'a, ()> {
        Box::pin(fleet::stopped(&self.velu, worker, None, now()))
    }

    // The local worker holds the lease it was just given; the org is the job's.
    fn job_secrets<'a>(
        &'a self,
        _worker: &'a str,
        job: &'a ClaimedJob,
        names: &'a [String],
    ) -> AccessFuture<'a, SecretEnv> {
        Box::pin(secrets::secrets_for_org(&self.velu, &job.org_id, names))
    }
}
