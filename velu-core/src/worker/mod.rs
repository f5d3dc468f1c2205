//! The worker: claims jobs from the queue, runs each under its lease, records the
//! outcome, and never lets two owners finish the same attempt.
//!
//! One loop claims (fairly across orgs, within each org's plan: `claim.rs`), one task
//! per job runs the handler (`launch.rs`, `handlers.rs`, `command.rs`), the retry policy
//! decides what its end means (`retry.rs`), a heartbeat task renews leases and learns of
//! cancels and lost leases (`heartbeat.rs`), and a completer task writes outcomes in
//! batches, fenced by each attempt's lease token (`complete.rs`). Any worker also
//! reclaims leases that expired (their owner died). On shutdown it stops claiming, lets
//! running jobs finish within a grace period, then hands the rest back (`drain.rs`).
//! The SQL of all this is the queue wing, [`crate::queue`], reached only through
//! [`QueueAccess`] (`access.rs`): [`LocalAccess`] on this process's database, or a remote
//! worker's client of the worker protocol ([`protocol`], the server's half), so the same
//! loop runs with or without database credentials. The fair claim across orgs is
//! `fair.rs`.

mod access;
mod cgroup;
mod claim;
mod command;
mod complete;
mod config;
pub mod contain;
mod drain;
mod fair;
mod handlers;
mod heartbeat;
mod launch;
mod outcome;
mod presence;
mod progress;
pub mod protocol;
pub(crate) mod ready_hints;
mod reaper;
mod report;
mod retry;
pub mod sandbox;
pub(crate) mod shared_scan;
mod state;
mod stop;
pub mod workspace;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::queue::Finish;
use crate::tasks::TaskCatalog;
use crate::{CoreResult, Velu};

pub use access::{AccessFuture, LocalAccess, QueueAccess};

pub use config::{SHORT_JOB, WorkerConfig, default_prefetch, default_worker_id};
pub use outcome::Outcome;
pub use report::WorkerReport;
pub use stop::Stop;

/// A worker bound to a Velu handle.
pub struct Worker {
    shared: Arc<state::Shared>,
}

impl Worker {
    /// A worker with `cfg` on `velu`'s database, catalog and data directory.
    pub fn new(velu: Velu, cfg: WorkerConfig) -> Worker {
        let tasks = velu.tasks().clone();
        let workspaces = workspace::root(&velu);
        Worker::with_access(Arc::new(LocalAccess::new(velu)), tasks, workspaces, cfg)
    }

    /// A worker with `cfg` on any queue `access` (a remote worker's client), running the
    /// kinds of `tasks` with job workspaces under `workspaces`.
    pub fn with_access(
        access: Arc<dyn QueueAccess>,
        tasks: TaskCatalog,
        workspaces: PathBuf,
        cfg: WorkerConfig,
    ) -> Worker {
        Worker {
            shared: Arc::new(state::Shared::new(access, tasks, workspaces, cfg)),
        }
    }

    /// Runs until `shutdown` resolves (or, with `exit_when_idle`, until nothing is left).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> CoreResult<WorkerReport> {
        let shared = self.shared;
        let cfg = &shared.cfg;
        tracing::info!(worker = %cfg.id, concurrency = cfg.concurrency, "worker started");
        sandbox::log_support();
        shared.contain.log();
        let _live =
            crate::metrics::worker().worker_started(shared.tasks.iter().map(|k| k.name.as_str()));
        // In the background: a running job's workspace is locked against it.
        drop(heartbeat::sweep_workspaces(&shared));

        presence::register(&shared).await;
        heartbeat::reclaim(&shared).await;
        let (done_tx, done_rx) = mpsc::unbounded_channel::<Finish>();
        let completer = tokio::spawn(complete::complete_loop(shared.clone(), done_rx));
        let beat = tokio::spawn(heartbeat::heartbeat_loop(shared.clone()));

        claim::claim_loop(&shared, shutdown, &done_tx).await;

        drain::drain(&shared).await;
        drop(done_tx);
        let _ = completer.await;
        beat.abort();
        presence::stopped(&shared).await;
        let report = shared.counters.report(&shared.cfg.id);
        tracing::info!(?report, "worker stopped");
        Ok(report)
    }
}
