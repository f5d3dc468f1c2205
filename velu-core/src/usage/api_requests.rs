//! API requests without a database write per request: counted in memory per org and UTC
//! day, and added to the org-wide rows of `usage_daily` in one transaction by a
//! background task (and at shutdown), like `last_used_at`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};

use super::delta::{Delta, ORG_WIDE, day_of};
use crate::db::CrossOrg;
use crate::db::usage::add_usage;
use crate::{CoreResult, Velu};

/// Most (org, day) counters held between flushes. Orgs are few, so this is never reached
/// in practice; past it, a request of a new (org, day) is not counted (and the loss is
/// counted and logged) rather than letting memory grow without bound.
pub const MAX_PENDING: usize = 65_536;

/// Requests counted and not yet written, by (org id, day).
#[derive(Debug, Default)]
pub struct ApiRequests {
    pending: Mutex<HashMap<(String, String), i64>>,
    dropped: AtomicU64,
}

impl ApiRequests {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), i64>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts `n` requests of `org_id` at `at`. Returns false when the map was full and
    /// the requests were not counted.
    pub fn add(&self, org_id: &str, at: DateTime<Utc>, n: i64) -> bool {
        let key = (org_id.to_owned(), day_of(at));
        let mut map = self.lock();
        if let Some(count) = map.get_mut(&key) {
            *count += n;
            return true;
        }
        if map.len() >= MAX_PENDING {
            drop(map);
            if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(
                    limit = MAX_PENDING,
                    "too many orgs' API requests waiting to be written; not counting new ones"
                );
            }
            return false;
        }
        map.insert(key, n);
        true
    }

    /// Counts one request of `org_id` now.
    pub fn count(&self, org_id: &str) {
        self.add(org_id, Utc::now(), 1);
    }

    /// Requests that could not be counted (the map was full), since the process started.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Number of (org, day) counters waiting to be written.
    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    fn take(&self) -> HashMap<(String, String), i64> {
        std::mem::take(&mut *self.lock())
    }

    /// Puts back counters a failed flush could not write.
    fn restore(&self, batch: HashMap<(String, String), i64>) {
        let mut map = self.lock();
        for (key, n) in batch {
            *map.entry(key).or_insert(0) += n;
        }
    }
}

/// Writes the pending API request counts, one upsert per (org, day), in one transaction
/// across orgs (a platform path, like every flusher). On failure the counts are kept for
/// the next flush. Returns how many (org, day) rows were written.
pub async fn flush_api_requests(velu: &Velu) -> CoreResult<usize> {
    let counts = velu.api_requests();
    let batch = counts.take();
    if batch.is_empty() {
        return Ok(0);
    }
    let deltas: Vec<Delta> = batch
        .iter()
        .map(|((org, day), n)| Delta {
            api_requests: *n,
            ..Delta::new(org, day, ORG_WIDE)
        })
        .collect();
    let written = async {
        let tx = velu.db().cross_org_tx(CrossOrg::Usage).await?;
        add_usage(&tx, &deltas).await?;
        tx.commit().await?;
        CoreResult::Ok(())
    }
    .await;
    match written {
        Ok(()) => Ok(deltas.len()),
        Err(e) => {
            counts.restore(batch);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_per_org_and_day_and_the_map_is_bounded() {
        let c = ApiRequests::default();
        let at = Utc::now();
        assert!(c.add("a", at, 1) && c.add("a", at, 2) && c.add("b", at, 1));
        assert_eq!(c.pending(), 2);
        let taken = c.take();
        assert_eq!(taken[&("a".to_owned(), day_of(at))], 3);
        c.restore(taken);
        c.add("a", at, 1);
        assert_eq!(c.take()[&("a".to_owned(), day_of(at))], 4);
        for i in 0..MAX_PENDING {
            c.add(&i.to_string(), at, 1);
        }
        assert!(!c.add("one-more", at, 1), "a full map refuses a new key");
        assert!(c.add("0", at, 1), "an existing key still counts");
        assert_eq!((c.pending(), c.dropped()), (MAX_PENDING, 1));
    }
}
