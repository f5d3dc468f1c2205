//! Telling a running handler to stop, and why.

use tokio::sync::watch;

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

/// Waits until the job is told to stop.
pub(crate) async fn stopped(mut stop: watch::Receiver<Option<Stop>>) -> Stop {
    loop {
        if let Some(s) = *stop.borrow_and_update() {
            return s;
        }
        if stop.changed().await.is_err() {
            // The worker dropped the job's entry: treat as shutdown.
            return Stop::Shutdown;
        }
    }
}
