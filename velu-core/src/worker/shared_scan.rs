//! The lists of ready orgs that a server's worker-protocol claims share.
//!
//! A local worker keeps its [`FairScan`] for its life: it scans the orgs with ready work
//! when its list is old or dry, and in between asks the orgs in the list and those that
//! wake-ups named. A platform worker over the worker protocol keeps nothing between its
//! requests, and each claim used to scan every org first (up to 74 ms per scan on a
//! queue without vacuum: docs/benchmarks-log.md). The server now keeps the list for them:
//! one per kinds filter (remote workers send the kinds they run, usually the whole
//! catalog, so the workers of one fleet share one list), reused under the local worker's
//! rules. Claims beside each other lock it only between the database's answers
//! ([`claim_shared`]), so they run their statements at once and take different orgs'
//! turns.
//!
//! A list is only a place to look: the claim still checks pauses, caps, kinds and the
//! byte budget inside the database, so any list is correct, an old one only slower.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::fair::{FairScan, claim_shared};
use super::ready_hints::{HintInbox, ReadyHints};
use crate::CoreResult;
use crate::Velu;
use crate::queue::ClaimedJob;

/// Most lists a server keeps. Each distinct kinds filter (at most `MAX_KINDS` kinds of
/// `MAX_KIND_LEN` bytes each, checked before) has its own; past this many, the oldest
/// one is dropped (its claims then start from a new list, and scan).
pub const MAX_SHARED_LISTS: usize = 16;

/// A kinds filter as a list's key: `None` is every kind; a filter's kinds sorted, once
/// each, so the same set in another order shares the list.
type Filter = Option<Vec<String>>;

/// A list that claims share, with the wake-ups it has not heard yet.
#[derive(Debug)]
struct SharedList {
    scan: Mutex<FairScan>,
    hints: Arc<HintInbox>,
}

/// A list as its claims hold it: an evicted list lives on until its last claim ends.
type Shared = Arc<SharedList>;

/// The lists, by kinds filter, each with when it was last used.
#[derive(Default)]
pub(crate) struct SharedScans(Mutex<Lists>);

/// What [`SharedScans`] guards.
#[derive(Default)]
struct Lists {
    by_filter: HashMap<Filter, (Shared, u64)>,
    /// Uses so far: a list's last use is its age.
    uses: u64,
}

impl SharedScans {
    /// The list that claims of kinds `only` share; a new one hears `hints` from now on.
    fn list(&self, only: Option<&[String]>, hints: &ReadyHints) -> Shared {
        let key: Filter = only.map(|kinds| {
            let mut kinds = kinds.to_vec();
            kinds.sort();
            kinds.dedup();
            kinds
        });
        let mut lists = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        lists.uses += 1;
        let used = lists.uses;
        let lists = &mut lists.by_filter;
        if !lists.contains_key(&key) && lists.len() >= MAX_SHARED_LISTS {
            let oldest = lists
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                lists.remove(&oldest);
            }
        }
        let entry = lists.entry(key).or_insert_with(|| {
            let list = SharedList {
                scan: Mutex::default(),
                hints: hints.subscribe(),
            };
            (Arc::new(list), 0)
        });
        entry.1 = used;
        entry.0.clone()
    }

    /// How many lists there are now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_filter
            .len()
    }
}

/// Claims up to `free` jobs of kinds `only` for `worker` fairly across orgs, on the list
/// that claims of the same kinds share in this process (see the module). The orgs that
/// wake-ups named since the list's last claim are heard first (each list hears every
/// wake-up).
pub(crate) async fn claim(
    velu: &Velu,
    only: Option<&[String]>,
    worker: &str,
    free: usize,
    lease: Duration,
) -> CoreResult<Vec<ClaimedJob>> {
    let list = velu.shared_scans().list(only, velu.ready_hints());
    list.scan
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .hear(list.hints.take());
    claim_shared(
        &list.scan,
        velu.db(),
        velu.tasks(),
        only,
        worker,
        free,
        lease,
    )
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{MAX_SHARED_LISTS, SharedScans};
    use crate::ids::new_id;
    use crate::worker::ready_hints::ReadyHints;

    fn kinds(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn one_list_per_set_of_kinds_in_any_order() {
        let (scans, h) = (SharedScans::default(), ReadyHints::default());
        let a = scans.list(Some(&kinds(&["echo", "sleep"])), &h);
        let b = scans.list(Some(&kinds(&["sleep", "echo", "echo"])), &h);
        assert!(Arc::ptr_eq(&a, &b), "the same kinds share a list");
        let every = scans.list(None, &h);
        assert!(!Arc::ptr_eq(&a, &every), "every kind is not these two");
        let none = scans.list(Some(&[]), &h);
        assert!(!Arc::ptr_eq(&every, &none), "no kind is not every kind");
        assert_eq!(scans.len(), 3);
    }

    #[test]
    fn lists_stay_bounded_and_the_one_in_use_stays() {
        let (scans, h) = (SharedScans::default(), ReadyHints::default());
        let busy = scans.list(None, &h);
        for i in 0..10 * MAX_SHARED_LISTS {
            // The fleet's list is used between the others.
            assert!(Arc::ptr_eq(&busy, &scans.list(None, &h)));
            scans.list(Some(&kinds(&[&format!("kind-{i}")])), &h);
            assert!(scans.len() <= MAX_SHARED_LISTS);
        }
        assert!(Arc::ptr_eq(&busy, &scans.list(None, &h)));
        // The evicted lists' inboxes went with them.
        h.org(&new_id());
        assert_eq!(busy.hints.take().orgs.len(), 1);
        assert_eq!(h.inboxes(), MAX_SHARED_LISTS);
    }

    #[test]
    fn every_list_hears_the_orgs_wake_ups_name() {
        let (scans, h) = (SharedScans::default(), ReadyHints::default());
        let fleet = scans.list(None, &h);
        let echo_only = scans.list(Some(&kinds(&["echo"])), &h);
        let org = new_id();
        h.org(&org);
        // The fleet's claim takes what it heard; the other list still hears it.
        assert_eq!(fleet.hints.take().orgs.len(), 1);
        let heard = echo_only.hints.take();
        assert!(heard.orgs.contains(&org) && !heard.scan, "{heard:?}");
        // The same list found again keeps its inbox.
        h.org(&org);
        assert_eq!(scans.list(None, &h).hints.take().orgs.len(), 1);
    }
}
