//! The worker: claims jobs from the queue, runs each under its lease, records the
//! outcome, and never lets two owners finish the same attempt.
//!
//! One loop claims (fairly across orgs, within each org's plan), one task per job runs the
//! handler, a heartbeat task renews leases (and learns of cancels and lost leases), and a
//! completer task writes outcomes in batches, fenced by each attempt's lease token.
//! Any worker also reclaims leases that expired (their owner died). On shutdown it stops
//! claiming, lets running jobs finish within a grace period, then hands the rest back.

mod cgroup;
mod command;
mod complete;
pub mod contain;
mod handlers;
mod reaper;
pub mod sandbox;
pub mod workspace;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use serde::Serialize;
use tokio::sync::{Notify, Semaphore, mpsc, watch};

use contain::Containment;

use crate::jobs::JobError;
use crate::jobs::queue::{self, ClaimedJob, Finish, ReadyOrg};
use crate::plans::Plan;
use crate::time::now;
use crate::{CoreResult, Velu};

pub use command::NEVER_PASSED;
pub use handlers::Outcome;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Identifies this worker in leases and attempts.
    pub id: String,
    /// Handlers running at once.
    pub concurrency: usize,
    /// Most jobs claimed ahead of free handlers. Used only while recent jobs are short
    /// (under [`SHORT_JOB`] on average), so long jobs are never hoarded by one worker.
    pub prefetch: usize,
    /// Only these task kinds (`None`: every kind of the catalog).
    pub tasks: Option<Vec<String>>,
    /// Lease length; renewed every `heartbeat`.
    pub lease: Duration,
    /// Heartbeat period (also how often expired leases are reclaimed).
    pub heartbeat: Duration,
    /// Longest wait for new work without a wake-up notification.
    pub poll: Duration,
    /// At shutdown, how long running jobs may take before their leases are handed back.
    pub grace: Duration,
    /// How long a job's workspace is kept after it was last touched.
    pub workspace_retention: Duration,
    /// Stop once the queue has nothing ready and nothing runs (benches, tests, `--once`).
    pub exit_when_idle: bool,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            id: default_worker_id(),
            concurrency: 4,
            prefetch: 12,
            tasks: None,
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(10),
            poll: Duration::from_secs(2),
            grace: Duration::from_secs(10),
            workspace_retention: Duration::from_secs(24 * 3600),
            exit_when_idle: false,
        }
    }
}

/// Jobs shorter than this on average make claiming ahead worthwhile.
pub const SHORT_JOB: Duration = Duration::from_millis(50);

/// `host:pid:random`, unique per process run.
pub fn default_worker_id() -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "host".into());
    let suffix: u32 = rand::random();
    format!("{host}:{}:{suffix:08x}", std::process::id())
}

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

#[derive(Default)]
struct Counters {
    claimed: AtomicU64,
    succeeded: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
    fenced: AtomicU64,
    released: AtomicU64,
    reclaimed: AtomicU64,
}

/// Why a running handler is told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// A cancel was asked: end `cancelled`.
    Cancel,
    /// The lease is gone: stop and write nothing.
    LeaseLost,
    /// Shutdown grace ran out: stop; the lease is handed back.
    Shutdown,
}

struct Running {
    token: String,
    stop: watch::Sender<Option<Stop>>,
}

/// State shared by the worker's tasks.
struct Shared {
    velu: Velu,
    cfg: WorkerConfig,
    running: Mutex<HashMap<String, Running>>,
    slot_freed: Notify,
    /// Moving average of handler run time, in microseconds.
    avg_run_us: AtomicU64,
    /// Outcomes sent to the completer and not yet written (their jobs still count as
    /// running in the database, against the org's limit).
    unwritten: AtomicU64,
    permits: Semaphore,
    counters: Counters,
    /// How command jobs' processes are kept together and killed (dropped last: removes
    /// the worker's cgroup).
    contain: Containment,
}

impl Shared {
    /// How many jobs to claim ahead right now: the configured prefetch while recent jobs
    /// are short, none while they are long (or before any has run).
    fn prefetch_now(&self) -> usize {
        let avg = self.avg_run_us.load(Ordering::Relaxed);
        if avg < SHORT_JOB.as_micros() as u64 {
            self.cfg.prefetch
        } else {
            0
        }
    }

    /// Folds one handler run time into the moving average (weight 1/8).
    fn record_run(&self, took: Duration) {
        let us = took.as_micros().min(u128::from(u32::MAX)) as u64;
        let _ = self
            .avg_run_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |avg| {
                Some(if avg == u64::MAX {
                    us
                } else {
                    avg - avg / 8 + us / 8
                })
            });
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A worker bound to a Velu handle.
pub struct Worker {
    shared: Arc<Shared>,
}

impl Worker {
    /// A worker with `cfg`.
    pub fn new(velu: Velu, cfg: WorkerConfig) -> Worker {
        let permits = Semaphore::new(cfg.concurrency.max(1));
        Worker {
            shared: Arc::new(Shared {
                velu,
                cfg,
                running: Mutex::new(HashMap::new()),
                slot_freed: Notify::new(),
                unwritten: AtomicU64::new(0),
                avg_run_us: AtomicU64::new(u64::MAX),
                permits,
                counters: Counters::default(),
                contain: Containment::detect(),
            }),
        }
    }

    /// Runs until `shutdown` resolves (or, with `exit_when_idle`, until nothing is left).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> CoreResult<WorkerReport> {
        let shared = self.shared;
        let cfg = shared.cfg.clone();
        tracing::info!(worker = %cfg.id, concurrency = cfg.concurrency, "worker started");
        sandbox::log_support();
        shared.contain.log();
        workspace::collect_garbage(&shared.velu, cfg.workspace_retention);

        reclaim(&shared).await;
        let (done_tx, done_rx) = mpsc::unbounded_channel::<Finish>();
        let completer = tokio::spawn(complete::complete_loop(shared.clone(), done_rx));
        let beat = tokio::spawn(heartbeat_loop(shared.clone()));

        tokio::pin!(shutdown);
        let mut wake = shared.velu.jobs_ready();
        let mut orgs: Vec<ReadyOrg> = Vec::new();
        let mut scan_after: Option<String> = None;
        let mut orgs_fetched = Instant::now() - Duration::from_secs(60);
        loop {
            let capacity = cfg.concurrency + shared.prefetch_now();
            let busy = shared.running().len();
            let free = capacity.saturating_sub(busy);
            let mut claimed = 0usize;
            // Claim in batches: a claim costs a round trip and a commit whatever its size,
            // so while work is in hand, wait until half the capacity is free.
            if free > 0 && (busy == 0 || free * 2 >= capacity) {
                if orgs.is_empty() || orgs_fetched.elapsed() > Duration::from_millis(250) {
                    let kinds = served_kinds(&shared);
                    let found =
                        queue::ready_orgs(shared.velu.db(), now(), 256, &kinds, scan_after.as_deref())
                            .await;
                    orgs = match found {
                        Ok(o) => {
                            // The next scan starts after the last org seen: every org gets
                            // its turn, however many there are.
                            scan_after = o.last().map(|r| r.id.clone());
                            o
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot list ready orgs");
                            Vec::new()
                        }
                    };
                    orgs.shuffle(&mut rand::rng());
                    orgs_fetched = Instant::now();
                }
                claimed = claim_round(&shared, &orgs, free, &done_tx).await;
                if claimed == 0 {
                    orgs.clear();
                } else {
                    // The next round starts with the next org: with one free slot at a
                    // time, orgs take turns.
                    orgs.rotate_left(1);
                }
            }
            if claimed > 0 && free > claimed {
                continue;
            }
            let idle = shared.running().is_empty() && shared.unwritten.load(Ordering::Acquire) == 0;
            if cfg.exit_when_idle && claimed == 0 && idle {
                break;
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = shared.slot_freed.notified() => {}
                _ = wake.changed() => {}
                () = tokio::time::sleep(cfg.poll) => {}
            }
        }

        drain(&shared).await;
        drop(done_tx);
        let _ = completer.await;
        beat.abort();
        let c = &shared.counters;
        let report = WorkerReport {
            worker_id: cfg.id.clone(),
            claimed: c.claimed.load(Ordering::Relaxed),
            succeeded: c.succeeded.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            cancelled: c.cancelled.load(Ordering::Relaxed),
            fenced: c.fenced.load(Ordering::Relaxed),
            released: c.released.load(Ordering::Relaxed),
            reclaimed: c.reclaimed.load(Ordering::Relaxed),
        };
        tracing::info!(?report, "worker stopped");
        Ok(report)
    }
}

/// Claims up to `free` jobs spread over `orgs` (each gets a fair share) and starts them.
async fn claim_round(
    shared: &Arc<Shared>,
    orgs: &[ReadyOrg],
    free: usize,
    done: &mpsc::UnboundedSender<Finish>,
) -> usize {
    let mut left = free;
    let mut total = 0;
    for (i, org) in orgs.iter().enumerate() {
        if left == 0 {
            break;
        }
        let share = left.div_ceil(orgs.len() - i);
        let kinds = allowed_kinds(shared, org);
        match queue::claim_for_org(
            shared.velu.db(),
            &shared.cfg.id,
            org,
            share as u32,
            &kinds,
            shared.cfg.lease,
            now(),
        )
        .await
        {
            Ok(jobs) => {
                left -= jobs.len().min(left);
                total += jobs.len();
                for job in jobs {
                    start(shared, job, done.clone());
                }
            }
            Err(e) => tracing::warn!(error = %e, org = %org.id, "claim failed"),
        }
    }
    shared
        .counters
        .claimed
        .fetch_add(total as u64, Ordering::Relaxed);
    total
}

/// Kinds this worker may run for `org`: the plan's, narrowed by `--tasks`.
fn allowed_kinds(shared: &Shared, org: &ReadyOrg) -> Vec<String> {
    kinds_for_plan(shared, org.plan)
}

fn kinds_for_plan(shared: &Shared, plan: Plan) -> Vec<String> {
    let mut kinds = shared.velu.tasks().kinds_for(plan);
    if let Some(only) = &shared.cfg.tasks {
        kinds.retain(|k| only.contains(k));
    }
    kinds
}

/// For every plan, the kinds this worker may run for an org on it.
fn served_kinds(shared: &Shared) -> queue::KindsByPlan {
    Plan::ALL
        .into_iter()
        .map(|p| (p, kinds_for_plan(shared, p)))
        .collect()
}

/// Starts the handler of a claimed job on its own task.
fn start(shared: &Arc<Shared>, job: ClaimedJob, done: mpsc::UnboundedSender<Finish>) {
    let (stop_tx, stop_rx) = watch::channel(None);
    shared.running().insert(
        job.id.clone(),
        Running {
            token: job.token.clone(),
            stop: stop_tx,
        },
    );
    let shared = shared.clone();
    tokio::spawn(async move {
        let permit = shared.permits.acquire().await;
        let started = Instant::now();
        let outcome = handlers::execute(
            &shared.velu,
            &job,
            stop_rx.clone(),
            shared.cfg.workspace_retention,
            &shared.contain,
        )
        .await;
        shared.record_run(started.elapsed());
        drop(permit);
        let stopped = *stop_rx.borrow();
        shared.running().remove(&job.id);
        shared.slot_freed.notify_one();
        match (stopped, outcome) {
            // Someone else owns it now, or shutdown hands it back: write nothing here.
            (Some(Stop::LeaseLost), _) => {
                shared.counters.fenced.fetch_add(1, Ordering::Relaxed);
            }
            (Some(Stop::Shutdown), _) => {
                release(&shared, std::slice::from_ref(&job.token)).await;
            }
            (_, outcome) => {
                shared.unwritten.fetch_add(1, Ordering::AcqRel);
                if done.send(finish_for(&shared, &job, outcome)).is_err() {
                    shared.unwritten.fetch_sub(1, Ordering::AcqRel);
                }
            }
        }
    });
}

/// The record of an attempt's end, with the retry policy applied.
fn finish_for(shared: &Shared, job: &ClaimedJob, outcome: Outcome) -> Finish {
    let base = |status, outcome, error: Option<JobError>| Finish {
        id: job.id.clone(),
        token: job.token.clone(),
        status,
        outcome,
        result: None,
        error,
        run_at: None,
        finished: status != "queued",
    };
    let c = &shared.counters;
    match outcome {
        Outcome::Succeeded(result) => {
            c.succeeded.fetch_add(1, Ordering::Relaxed);
            Finish {
                result: Some(result),
                ..base("succeeded", "succeeded", None)
            }
        }
        Outcome::Cancelled => {
            c.cancelled.fetch_add(1, Ordering::Relaxed);
            base(
                "cancelled",
                "cancelled",
                Some(JobError::new("cancelled", "cancelled while running")),
            )
        }
        Outcome::Failed(err) | Outcome::TimedOut(err) => {
            let attempt_outcome = if err.code == "timed_out" {
                "timed_out"
            } else {
                "failed"
            };
            if job.attempt < job.max_attempts {
                c.retried.fetch_add(1, Ordering::Relaxed);
                let backoff = shared
                    .velu
                    .tasks()
                    .get(&job.task)
                    .map(|k| k.backoff.delay(job.attempt.max(1) as u32))
                    .unwrap_or(Duration::from_secs(1));
                let at = now() + chrono::Duration::from_std(backoff).unwrap_or_default();
                Finish {
                    run_at: Some(queue::json_time(at)),
                    ..base("queued", attempt_outcome, Some(err))
                }
            } else {
                c.failed.fetch_add(1, Ordering::Relaxed);
                base("failed", attempt_outcome, Some(err))
            }
        }
    }
}

/// Renews leases, stops cancelled or lost jobs, reclaims expired leases, cleans
/// workspaces.
async fn heartbeat_loop(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.cfg.heartbeat);
    let mut last_gc = Instant::now();
    loop {
        tick.tick().await;
        let tokens: Vec<(String, String)> = shared
            .running()
            .iter()
            .map(|(id, r)| (id.clone(), r.token.clone()))
            .collect();
        let only_tokens: Vec<String> = tokens.iter().map(|(_, t)| t.clone()).collect();
        match queue::heartbeat(
            shared.velu.db(),
            &shared.cfg.id,
            &only_tokens,
            shared.cfg.lease,
            now(),
        )
        .await
        {
            Ok(held) => {
                let running = shared.running();
                for (id, _) in &tokens {
                    let stop = match held.iter().find(|h| &h.id == id) {
                        None => Some(Stop::LeaseLost),
                        Some(h) if h.cancel_requested => Some(Stop::Cancel),
                        Some(_) => None,
                    };
                    if let (Some(stop), Some(r)) = (stop, running.get(id)) {
                        tracing::info!(job = %id, ?stop, "stopping job");
                        let _ = r.stop.send(Some(stop));
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
        }
        reclaim(&shared).await;
        if last_gc.elapsed() > Duration::from_secs(3600) {
            workspace::collect_garbage(&shared.velu, shared.cfg.workspace_retention);
            last_gc = Instant::now();
        }
    }
}

/// Takes back expired leases (any worker may, at start and every heartbeat).
async fn reclaim(shared: &Shared) {
    match queue::reclaim_expired(shared.velu.db(), now()).await {
        Ok(ids) if !ids.is_empty() => {
            tracing::warn!(count = ids.len(), "reclaimed expired leases");
            shared
                .counters
                .reclaimed
                .fetch_add(ids.len() as u64, Ordering::Relaxed);
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "reclaiming expired leases failed"),
    }
}

/// Shutdown: wait up to the grace period for running jobs, then stop them and hand
/// their leases back.
async fn drain(shared: &Arc<Shared>) {
    let deadline = Instant::now() + shared.cfg.grace;
    while !shared.running().is_empty() && Instant::now() < deadline {
        let _ =
            tokio::time::timeout(Duration::from_millis(100), shared.slot_freed.notified()).await;
    }
    let left: Vec<String> = {
        let running = shared.running();
        for r in running.values() {
            let _ = r.stop.send(Some(Stop::Shutdown));
        }
        running.keys().cloned().collect()
    };
    if !left.is_empty() {
        tracing::info!(count = left.len(), "grace period over; handing leases back");
        // Each handler releases its own lease once it has stopped.
        let wait_until = Instant::now() + Duration::from_secs(10);
        while !shared.running().is_empty() && Instant::now() < wait_until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn release(shared: &Shared, tokens: &[String]) {
    match queue::release(shared.velu.db(), &shared.cfg.id, tokens, now()).await {
        Ok(ids) => {
            shared
                .counters
                .released
                .fetch_add(ids.len() as u64, Ordering::Relaxed);
        }
        Err(e) => tracing::warn!(error = %e, "handing leases back failed; they will expire"),
    }
}
