//! The gate in front of expensive secret checks (argon2id, for keys hashed before the
//! HMAC form): a few run at once, a short queue waits, and everything past that is
//! refused at once with `rate_limited`, so no burst of requests can hold more than
//! `running x 19 MiB` of hashing memory or an unbounded number of blocking threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::{CoreError, CoreResult};

/// How long a refused caller is told to wait.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Bounded concurrency with a bounded queue.
#[derive(Debug)]
pub(crate) struct HashGate {
    running: Semaphore,
    admitted: AtomicUsize,
    max_admitted: usize,
}

/// A place in the gate; frees it when dropped.
pub(crate) struct Pass<'a> {
    gate: &'a HashGate,
    _permit: SemaphorePermit<'a>,
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        self.gate.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HashGate {
    /// `running` checks at once, and up to `queued` more waiting for a turn.
    pub fn new(running: usize, queued: usize) -> HashGate {
        let running = running.max(1);
        HashGate {
            running: Semaphore::new(running),
            admitted: AtomicUsize::new(0),
            max_admitted: running + queued,
        }
    }

    /// Sized for this machine: one check per core (at most 4), a queue of four times that.
    pub fn for_this_machine() -> HashGate {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let running = cores.min(4);
        HashGate::new(running, running * 4)
    }

    /// Waits for a turn, or refuses at once when the queue is full.
    pub async fn enter(&self) -> CoreResult<Pass<'_>> {
        if self.admitted.fetch_add(1, Ordering::AcqRel) >= self.max_admitted {
            self.admitted.fetch_sub(1, Ordering::AcqRel);
            return Err(CoreError::RateLimited {
                retry_after: RETRY_AFTER,
            });
        }
        // Admitted: from here on the count is given back by `Pass::drop`, or below if the
        // semaphore is closed (never, in practice).
        match self.running.acquire().await {
            Ok(permit) => Ok(Pass {
                gate: self,
                _permit: permit,
            }),
            Err(e) => {
                self.admitted.fetch_sub(1, Ordering::AcqRel);
                Err(CoreError::internal(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_past_the_queue_and_frees_places() {
        let gate = HashGate::new(1, 1);
        let first = gate.enter().await.expect("runs");
        // The second waits for the first; poll it once so it is admitted.
        let second = gate.enter();
        tokio::pin!(second);
        assert!(futures_poll_once(second.as_mut()).await.is_none(), "waits");
        let third = gate.enter().await;
        assert_eq!(third.err().map(|e| e.code()), Some("rate_limited"));
        drop(first);
        let second = second.await.expect("runs after the first");
        drop(second);
        assert!(gate.enter().await.is_ok(), "every place was given back");
        assert_eq!(gate.admitted.load(Ordering::Acquire), 0);
    }

    async fn futures_poll_once<F: std::future::Future + Unpin>(f: F) -> Option<F::Output> {
        tokio::time::timeout(Duration::from_millis(20), f)
            .await
            .ok()
    }
}
