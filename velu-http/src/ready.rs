//! `/ready`'s answer, shared: it needs no key, so a flood of it must not take the pool's
//! connections from tenants. One check runs at a time per server; callers meanwhile wait
//! for it, and its answer serves everyone for a second.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

/// How long one check's answer serves.
const FRESH_FOR: Duration = Duration::from_secs(1);

/// The last readiness answer of one server: `Ok`, or the error's code.
#[derive(Default)]
pub(crate) struct ReadyCache {
    last: Mutex<Option<(Instant, Result<(), &'static str>)>>,
}

impl ReadyCache {
    /// The answer of a check made less than [`FRESH_FOR`] ago, else of `check` (run by
    /// one caller at a time).
    pub(crate) async fn get<F>(&self, check: F) -> Result<(), &'static str>
    where
        F: Future<Output = Result<(), &'static str>>,
    {
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = *last
            && at.elapsed() < FRESH_FOR
        {
            return answer;
        }
        let answer = check.await;
        *last = Some((Instant::now(), answer));
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_flood_costs_one_check() {
        let cache = Arc::new(ReadyCache::default());
        let checks = Arc::new(AtomicUsize::new(0));
        let callers: Vec<_> = (0..50)
            .map(|_| {
                let (cache, checks) = (cache.clone(), checks.clone());
                tokio::spawn(async move {
                    cache
                        .get(async {
                            checks.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Err("unavailable")
                        })
                        .await
                })
            })
            .collect();
        for c in callers {
            assert_eq!(
                c.await.unwrap(),
                Err("unavailable"),
                "every caller gets the answer"
            );
        }
        assert_eq!(checks.load(Ordering::SeqCst), 1, "fifty callers, one check");
    }
}
