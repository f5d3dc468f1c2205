//! Running one claimed job on its own task, from its handler to its outcome.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::sync::{mpsc, watch};

use super::drain::release;
use super::handlers;
use super::outcome::Outcome;
use super::progress::{ProgressTail, report};
use super::retry::finish_for;
use super::state::{Running, Shared};
use super::stop::Stop;
use crate::CoreError;
use crate::jobs::{JobError, JobErrorCode};
use crate::queue::{ClaimedJob, Finish};
use crate::secrets::SecretEnv;
use crate::tasks::Runner;

/// The org secrets `job`'s kind lists (none for most kinds), or the failed attempt when
/// one cannot be delivered: the job fails with `secret_unavailable`, the worker goes on.
/// The message names the secret and the cause, never a value.
async fn fetch_secrets(shared: &Arc<Shared>, job: &ClaimedJob) -> Result<SecretEnv, Outcome> {
    let names = match shared.tasks.get(&job.task).map(|k| &k.runner) {
        Some(Runner::Command(spec)) if !spec.secrets.is_empty() => &spec.secrets,
        _ => return Ok(SecretEnv::default()),
    };
    shared
        .access
        .job_secrets(&shared.cfg.id, job, names)
        .await
        .map_err(|e| {
            tracing::warn!(job = %job.id, code = e.code(), error = %e, "secrets for a job unavailable");
            Outcome::Failed(JobError::new(
                JobErrorCode::SecretUnavailable,
                format!("cannot deliver the task's secrets: {}", tenant_view(&e)),
            ))
        })
}

/// Why secrets could not be delivered, as the org's own readers of the job see it: a
/// secret the org has not set is named; the server's configuration (key files, key
/// fingerprints) and internal errors stay in the operator's log.
fn tenant_view(e: &CoreError) -> String {
    match e {
        CoreError::NotFound { .. } => e.to_string(),
        CoreError::Config(_) => "the server's secrets key is not set, or is not the key they \
             were sealed under (`config`; the operator's log has the details)"
            .to_owned(),
        _ => format!("`{}` (the operator's log has the details)", e.code()),
    }
}

/// Starts the handler of a claimed job on its own task; its outcome goes to `done` (the
/// completer), unless the lease was lost (nothing is written) or shutdown stopped it (the
/// lease is handed back).
pub(super) fn start(shared: &Arc<Shared>, job: ClaimedJob, done: mpsc::UnboundedSender<Finish>) {
    let (stop_tx, stop_rx) = watch::channel(None);
    // Ids are UUIDs the queue made; anything else gets no path (as `workspace::create`).
    let tail = (crate::ids::is_uuid(&job.org_id) && crate::ids::is_uuid(&job.id)).then(|| {
        let dir = shared.workspaces.join(&job.org_id).join(&job.id);
        Arc::new(std::sync::Mutex::new(ProgressTail::new(dir)))
    });
    shared.running().insert(
        job.id.clone(),
        Running {
            token: job.token.clone(),
            stop: stop_tx,
            progress: tail.clone(),
        },
    );
    let shared = shared.clone();
    tokio::spawn(async move {
        let _running = crate::metrics::worker().job_running();
        let permit = shared.permits.acquire().await;
        let started = Instant::now();
        let outcome = match fetch_secrets(&shared, &job).await {
            Ok(secrets) => {
                handlers::execute(
                    &shared.tasks,
                    &shared.workspaces,
                    &job,
                    stop_rx.clone(),
                    shared.cfg.workspace_retention,
                    &shared.contain,
                    &secrets,
                )
                .await
            }
            Err(failed) => failed,
        };
        // The run, from a free handler to the outcome: the wait for a handler (a job
        // claimed ahead) is not part of it (`Finish::ran_us`).
        let ran = started.elapsed();
        shared.record_run(ran);
        drop(permit);
        let stopped = *stop_rx.borrow();
        // An outcome to write is counted as unwritten before the job leaves `running`:
        // a worker that exits when idle must never see it in neither (it would stop while
        // the job still holds a place in the database).
        let writes = !matches!(stopped, Some(Stop::LeaseLost | Stop::Shutdown));
        if writes {
            shared.unwritten.fetch_add(1, Ordering::AcqRel);
        }
        crate::metrics::worker().attempt_ended(&job.task, stopped, &outcome, ran);
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
                // The lines written last go before the end in the stream.
                if let Some(tail) = &tail {
                    flush_progress(&shared, &job.token, tail).await;
                }
                let finish = Finish {
                    ran_us: Some(u64::try_from(ran.as_micros()).unwrap_or(u64::MAX)),
                    ..finish_for(&shared, &job, outcome)
                };
                if done.send(finish).is_err() {
                    shared.unwritten.fetch_sub(1, Ordering::AcqRel);
                }
            }
        }
    });
}

/// Sends what is left of a finished job's progress file (as many heartbeats' worth as its
/// stream can still take), renewing its lease on the way. A failure is a warning: the
/// outcome matters more than its last lines.
async fn flush_progress(shared: &Shared, token: &str, tail: &std::sync::Mutex<ProgressTail>) {
    use crate::events::{MAX_LINES_PER_BEAT, MAX_LINES_PER_HEARTBEAT};
    loop {
        let reports: Vec<_> = {
            let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
            (0..MAX_LINES_PER_HEARTBEAT / MAX_LINES_PER_BEAT)
                .map_while(|_| report(&mut tail, token, MAX_LINES_PER_BEAT))
                .collect()
        };
        if reports.is_empty() {
            return;
        }
        let tokens = [token.to_owned()];
        let sent = shared
            .access
            .heartbeat_progress(&shared.cfg.id, &tokens, shared.cfg.lease, &reports)
            .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "sending the last progress lines failed");
            return;
        }
    }
}
