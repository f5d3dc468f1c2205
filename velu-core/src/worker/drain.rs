//! Shutdown: letting running jobs finish within the grace period, then handing the
//! remaining leases back.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::state::Shared;
use super::stop::Stop;

/// Waits up to the grace period for running jobs, then stops them; each handler hands
/// its own lease back once it has stopped (waited for up to 10 s more).
pub(super) async fn drain(shared: &Arc<Shared>) {
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

/// Hands the leases of `tokens` back to the queue; a failure leaves them to expire.
pub(super) async fn release(shared: &Shared, tokens: &[String]) {
    match shared.access.release(&shared.cfg.id, tokens).await {
        Ok(ids) => {
            shared
                .counters
                .released
                .fetch_add(ids.len() as u64, Ordering::Relaxed);
        }
        Err(e) => tracing::warn!(error = %e, "handing leases back failed; they will expire"),
    }
}
