//! The heartbeat task: renews leases, stops cancelled or lost jobs, reclaims expired
//! leases, cleans old workspaces.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::progress::{ProgressTail, report};
use super::state::Shared;
use super::stop::Stop;
use super::workspace;
use crate::events::{MAX_LINES_PER_BEAT, MAX_LINES_PER_HEARTBEAT, ProgressReport};

/// Runs every `heartbeat` period until aborted.
pub(super) async fn heartbeat_loop(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.cfg.heartbeat);
    let mut last_gc = Instant::now();
    let mut sweep: Option<tokio::task::JoinHandle<usize>> = None;
    loop {
        tick.tick().await;
        renew(&shared).await;
        super::presence::beat(&shared).await;
        reclaim(&shared).await;
        // The sweep removes whole trees: it runs on a blocking thread of its own, one at a
        // time, so however long it takes no lease goes unrenewed.
        if last_gc.elapsed() > Duration::from_secs(3600)
            && sweep.as_ref().is_none_or(|s| s.is_finished())
        {
            sweep = Some(sweep_workspaces(&shared));
            last_gc = Instant::now();
        }
    }
}

/// Sweeps the old workspaces (`workspace::collect_garbage_in`) on a blocking thread.
pub(super) fn sweep_workspaces(shared: &Shared) -> tokio::task::JoinHandle<usize> {
    let (root, retention) = (shared.workspaces.clone(), shared.cfg.workspace_retention);
    tokio::task::spawn_blocking(move || workspace::collect_garbage_in(&root, retention))
}

/// Renews the leases of the running jobs and tells each handler whose job was cancelled
/// or whose lease was lost to stop.
async fn renew(shared: &Shared) {
    let (tokens, tails): (Vec<(String, String)>, Vec<_>) = shared
        .running()
        .iter()
        .map(|(id, r)| {
            (
                (id.clone(), r.token.clone()),
                (r.token.clone(), r.progress.clone()),
            )
        })
        .unzip();
    let only_tokens: Vec<String> = tokens.iter().map(|(_, t)| t.clone()).collect();
    let reports = progress_reports(tails);
    match shared
        .access
        .heartbeat_progress(&shared.cfg.id, &only_tokens, shared.cfg.lease, &reports)
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
}

/// The new progress lines of the running jobs, within one heartbeat's bounds (what does
/// not fit waits in the files for the next beat).
fn progress_reports(
    tails: Vec<(String, Option<Arc<std::sync::Mutex<ProgressTail>>>)>,
) -> Vec<ProgressReport> {
    let mut room = MAX_LINES_PER_HEARTBEAT;
    let mut reports = Vec::new();
    for (token, tail) in tails {
        let Some(tail) = tail else { continue };
        if room == 0 {
            break;
        }
        let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = report(&mut tail, &token, room.min(MAX_LINES_PER_BEAT)) {
            room -= r.lines.len();
            reports.push(r);
        }
    }
    reports
}

/// Takes back expired leases (any worker may, at start and every heartbeat).
pub(super) async fn reclaim(shared: &Shared) {
    match shared.access.reclaim().await {
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
