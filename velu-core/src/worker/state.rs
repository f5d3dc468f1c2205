//! The state a worker's tasks share: configuration, the running jobs and their stop
//! switches, handler permits, counters.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, watch};

use super::access::QueueAccess;
use super::config::{SHORT_JOB, WorkerConfig};
use super::contain::Containment;
use super::progress::ProgressTail;
use super::report::Counters;
use super::stop::Stop;
use crate::tasks::TaskCatalog;

/// A job whose handler runs here: its lease token and its stop switch.
pub(super) struct Running {
    pub token: String,
    pub stop: watch::Sender<Option<Stop>>,
    /// Its progress file, read at each heartbeat (`None`: no workspace to read).
    pub progress: Option<Arc<Mutex<ProgressTail>>>,
}

/// State shared by the worker's tasks.
pub(super) struct Shared {
    /// The queue: this process's database, or a server over the worker protocol.
    pub access: Arc<dyn QueueAccess>,
    /// The task kinds this worker can run.
    pub tasks: TaskCatalog,
    /// Where job workspaces live (`<home>/workspaces`).
    pub workspaces: PathBuf,
    pub cfg: WorkerConfig,
    /// Jobs claimed and not yet done here, by id.
    pub running: Mutex<HashMap<String, Running>>,
    /// Signalled when a handler ends or outcomes are written: room to claim.
    pub slot_freed: Notify,
    /// Signalled when the completer has written a batch of outcomes: the places their
    /// jobs held in the database (against the orgs' plan caps) are free.
    pub written: Notify,
    /// Moving average of handler run time, in microseconds (`u64::MAX`: none yet).
    pub avg_run_us: AtomicU64,
    /// Outcomes sent to the completer and not yet written (their jobs still count as
    /// running in the database, against the org's limit).
    pub unwritten: AtomicU64,
    /// One per handler allowed to run at once.
    pub permits: Semaphore,
    pub counters: Counters,
    /// How command jobs' processes are kept together and killed (dropped last: removes
    /// the worker's cgroup).
    pub contain: Containment,
}

impl Shared {
    /// Fresh state for a worker with `cfg`.
    pub fn new(
        access: Arc<dyn QueueAccess>,
        tasks: TaskCatalog,
        workspaces: PathBuf,
        cfg: WorkerConfig,
    ) -> Shared {
        let permits = Semaphore::new(cfg.concurrency.max(1));
        Shared {
            access,
            tasks,
            workspaces,
            cfg,
            running: Mutex::new(HashMap::new()),
            slot_freed: Notify::new(),
            written: Notify::new(),
            unwritten: AtomicU64::new(0),
            avg_run_us: AtomicU64::new(u64::MAX),
            permits,
            counters: Counters::default(),
            contain: Containment::detect(),
        }
    }

    /// How many jobs to claim ahead right now: the configured prefetch while recent jobs
    /// are short, none while they are long (or before any has run).
    pub fn prefetch_now(&self) -> usize {
        let avg = self.avg_run_us.load(Ordering::Relaxed);
        if avg < SHORT_JOB.as_micros() as u64 {
            self.cfg.prefetch
        } else {
            0
        }
    }

    /// Folds one handler run time into the moving average (weight 1/8).
    pub fn record_run(&self, took: Duration) {
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

    /// The running jobs (a poisoned lock is taken over: the map stays consistent).
    pub fn running(&self) -> MutexGuard<'_, HashMap<String, Running>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}
