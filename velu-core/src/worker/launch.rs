//! Running one claimed job on its own task, from its handler to its outcome.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::sync::{mpsc, watch};

use super::drain::release;
use super::handlers;
use super::retry::finish_for;
use super::state::{Running, Shared};
use super::stop::Stop;
use crate::queue::{ClaimedJob, Finish};

/// Starts the handler of a claimed job on its own task; its outcome goes to `done` (the
/// completer), unless the lease was lost (nothing is written) or shutdown stopped it (the
/// lease is handed back).
pub(super) fn start(shared: &Arc<Shared>, job: ClaimedJob, done: mpsc::UnboundedSender<Finish>) {
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
        let _running = crate::metrics::worker().job_running();
        let permit = shared.permits.acquire().await;
        let started = Instant::now();
        let outcome = handlers::execute(
            &shared.tasks,
            &shared.workspaces,
            &job,
            stop_rx.clone(),
            shared.cfg.workspace_retention,
            &shared.contain,
        )
        .await;
        shared.record_run(started.elapsed());
        drop(permit);
        let stopped = *stop_rx.borrow();
        crate::metrics::worker().attempt_ended(&job.task, stopped, &outcome, started.elapsed());
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
