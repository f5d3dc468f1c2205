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
//! The SQL of all this is the queue wing, [`crate::queue`].

mod cgroup;
mod claim;
mod command;
mod complete;
mod config;
pub mod contain;
mod drain;
mod handlers;
mod heartbeat;
mod launch;
mod outcome;
mod reaper;
mod report;
mod retry;
pub mod sandbox;
mod state;
mod stop;
pub mod workspace;

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::queue::Finish;
use crate::{CoreResult, Velu};

pub use config::{SHORT_JOB, WorkerConfig, default_worker_id};
pub use outcome::Outcome;
pub use report::WorkerReport;
pub use stop::Stop;

/// A worker bound to a Velu handle.
pub struct Worker {
    shared: Arc<state::Shared>,
}

impl Worker {
    /// A worker with `cfg`.
    pub fn new(velu: Velu, cfg: WorkerConfig) -> Worker {
        Worker {
            shared: Arc::new(state::Shared::new(velu, cfg)),
        }
    }

    /// Runs until `shutdown` resolves (or, with `exit_when_idle`, until nothing is left).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> CoreResult<WorkerReport> {
        let shared = self.shared;
        let cfg = &shared.cfg;
        tracing::info!(worker = %cfg.id, concurrency = cfg.concurrency, "worker started");
        sandbox::log_support();
        shared.contain.log();
        workspace::collect_garbage(&shared.velu, cfg.workspace_retention);

        heartbeat::reclaim(&shared).await;
        let (done_tx, done_rx) = mpsc::unbounded_channel::<Finish>();
        let completer = tokio::spawn(complete::complete_loop(shared.clone(), done_rx));
        let beat = tokio::spawn(heartbeat::heartbeat_loop(shared.clone()));

        claim::claim_loop(&shared, shutdown, &done_tx).await;

        drain::drain(&shared).await;
        drop(done_tx);
        let _ = completer.await;
        beat.abort();
        let report = shared.counters.report(&shared.cfg.id);
        tracing::info!(?report, "worker stopped");
        Ok(report)
    }
}
