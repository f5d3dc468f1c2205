//! The claim loop: claims what the free handlers can take (fairly across orgs, within
//! each org's plan: the access's job) and starts it, until shutdown (or idle, when asked).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;

use super::launch::start;
use super::state::Shared;
use crate::queue::Finish;

/// Claims and starts jobs until `shutdown` resolves (or, with `exit_when_idle`, until
/// nothing is ready and nothing runs).
pub(super) async fn claim_loop(
    shared: &Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send,
    done: &mpsc::UnboundedSender<Finish>,
) {
    let cfg = &shared.cfg;
    tokio::pin!(shutdown);
    // Without a wake-up signal the access waits for work inside the claim (a long poll).
    let mut wake = shared.access.wake();
    let long_poll = wake.is_none();
    loop {
        let capacity = cfg.concurrency + shared.prefetch_now();
        let busy = shared.running().len();
        let free = capacity.saturating_sub(busy);
        // What this worker held when the claim started. The database counts an outcome
        // not yet written as a running job (so the plan's cap may leave no room), and the
        // outcome may be written while the claim is under way: an empty claim proves the
        // queue empty only if nothing was held when it began.
        let held_before = busy + shared.unwritten.load(Ordering::Acquire) as usize;
        let mut claimed = 0usize;
        let mut asked = false;
        let mut waited = false;
        // A failed claim proves nothing about the queue: never a reason to exit when idle.
        let mut failed = false;
        // Claim in batches: a claim costs a round trip and a commit whatever its size,
        // so while work is in hand, wait until half the capacity is free.
        if free > 0 && (busy == 0 || free * 2 >= capacity) {
            // Long-poll only when idle: with work in hand, freed slots must be refilled.
            waited = long_poll && busy == 0 && !cfg.exit_when_idle;
            let wait = if waited { cfg.poll } else { Duration::ZERO };
            asked = true;
            let _timer = crate::metrics::worker().claim_timer(wait);
            match shared
                .access
                .claim(&cfg.id, free as u32, cfg.tasks.as_deref(), cfg.lease, wait)
                .await
            {
                Ok(jobs) => {
                    claimed = jobs.len();
                    for job in jobs {
                        start(shared, job, done.clone());
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "claim failed");
                    // Whatever failed (the database, the server), do not hammer it.
                    waited = false;
                    failed = true;
                }
            }
            shared
                .counters
                .claimed
                .fetch_add(claimed as u64, Ordering::Relaxed);
        }
        if claimed > 0 && free > claimed {
            continue;
        }
        let idle = held_before == 0
            && shared.running().is_empty()
            && shared.unwritten.load(Ordering::Acquire) == 0;
        if cfg.exit_when_idle && claimed == 0 && !failed && idle {
            break;
        }
        // A long poll that came back empty has waited already.
        let pause = if waited { Duration::ZERO } else { cfg.poll };
        // A claim that came back empty while this worker held jobs may have met its orgs'
        // plan caps, which the held jobs fill until their outcomes are written: a handler
        // ending frees no place there, so claiming again before the completer has written
        // would come back empty too. New work still wakes it (`wake`), and the poll.
        let await_write = asked && !failed && claimed == 0 && held_before > 0;
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            () = shared.slot_freed.notified(), if !await_write => {}
            () = shared.written.notified(), if await_write => {}
            () = async {
                match wake.as_mut() {
                    Some(w) => { let _ = w.changed().await; }
                    None => std::future::pending().await,
                }
            } => {}
            () = tokio::time::sleep(pause) => {}
        }
    }
}
