//! Orgs named by wake-ups since a list of ready orgs last looked: where new work is,
//! without scanning for it.
//!
//! Every submit's wake-up names its org (`Change::Jobs`, delivered after the commit, from
//! this process or through PostgreSQL's notifications). The fair claim ([`super::fair`])
//! asks those orgs first and scans for ready orgs less often: under steady submits the
//! scan had come to run once per claim, costing as much as the claim itself
//! (docs/benchmarks-log.md). A wake-up that names nothing (SQLite's commit watcher, a
//! listener that reconnected) asks for a scan, as does an inbox grown past
//! [`MAX_HINTED`] or a name that is not an org id.
//!
//! Every list hears every wake-up: a process may keep several (a local worker's, and a
//! server's one per kinds filter of its remote workers: `shared_scan.rs`), and each has
//! its own [`HintInbox`]. With one set for the process, the first list to claim took
//! what a wake-up said and every other list fell back on its scans.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

/// Most orgs an inbox remembers between two looks; past it, the next look scans instead.
/// Bounds a list that is no longer claimed from too.
pub(crate) const MAX_HINTED: usize = 256;

/// What the wake-ups since the last look said.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Hinted {
    /// Orgs with new work.
    pub orgs: HashSet<String>,
    /// Something may be ready that `orgs` does not name: scan.
    pub scan: bool,
}

/// The wake-ups one list has not heard yet: what [`ReadyHints`] delivered since its last
/// [`HintInbox::take`].
#[derive(Debug, Default)]
pub(crate) struct HintInbox(Mutex<Hinted>);

impl HintInbox {
    /// What was said since the last call, forgetting it.
    pub(crate) fn take(&self) -> Hinted {
        std::mem::take(&mut *self.lock())
    }

    fn org(&self, org: &str) {
        let mut h = self.lock();
        if h.scan || h.orgs.contains(org) {
            return;
        }
        if h.orgs.len() >= MAX_HINTED {
            h.orgs.clear();
            h.scan = true;
        } else {
            h.orgs.insert(org.to_owned());
        }
    }

    fn unknown(&self) {
        let mut h = self.lock();
        h.orgs.clear();
        h.scan = true;
    }

    fn lock(&self) -> MutexGuard<'_, Hinted> {
        // The set stays valid whatever a panicking holder did: each change is one step.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Where a process's wake-ups go: to the inbox of every list that still exists.
#[derive(Debug, Default)]
pub(crate) struct ReadyHints(Mutex<Vec<Weak<HintInbox>>>);

impl ReadyHints {
    /// A new inbox that hears every wake-up from now on, until it is dropped. It starts
    /// empty: a new list scans before its first turn anyway.
    pub(crate) fn subscribe(&self) -> Arc<HintInbox> {
        let inbox = Arc::new(HintInbox::default());
        let mut inboxes = self.lock();
        inboxes.retain(|i| i.strong_count() > 0);
        inboxes.push(Arc::downgrade(&inbox));
        inbox
    }

    /// Org `org` has new work ready. A name that is not an org id (a notification sent by
    /// hand) says nothing reliable: it asks for a scan.
    pub(crate) fn org(&self, org: &str) {
        if !crate::ids::is_uuid(org) {
            return self.unknown();
        }
        self.each(|inbox| inbox.org(org));
    }

    /// Something may be ready without saying where: every list's next look scans.
    pub(crate) fn unknown(&self) {
        self.each(HintInbox::unknown);
    }

    /// Delivers to every inbox still held, forgetting the dropped ones.
    fn each(&self, deliver: impl Fn(&HintInbox)) {
        self.lock().retain(|inbox| match inbox.upgrade() {
            Some(inbox) => {
                deliver(&inbox);
                true
            }
            None => false,
        });
    }

    /// How many inboxes are remembered (dropped ones until the next delivery).
    #[cfg(test)]
    pub(crate) fn inboxes(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Weak<HintInbox>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::{MAX_HINTED, ReadyHints};
    use crate::ids::new_id;

    #[test]
    fn names_orgs_once_and_forgets_them_when_taken() {
        let h = ReadyHints::default();
        let inbox = h.subscribe();
        let (a, b) = (new_id(), new_id());
        h.org(&a);
        h.org(&b);
        h.org(&a);
        let t = inbox.take();
        assert!(!t.scan);
        let mut orgs: Vec<_> = t.orgs.into_iter().collect();
        orgs.sort();
        assert_eq!(orgs, [a, b]);
        assert_eq!(inbox.take(), Default::default());
    }

    #[test]
    fn every_list_hears_every_wake_up_and_takes_only_its_own() {
        let h = ReadyHints::default();
        let (first, second) = (h.subscribe(), h.subscribe());
        let (a, b) = (new_id(), new_id());
        h.org(&a);
        assert_eq!(first.take().orgs, HashSet::from([a.clone()]));
        // The first list taking it left it for the second.
        h.org(&b);
        assert_eq!(second.take().orgs, HashSet::from([a.clone(), b.clone()]));
        assert_eq!(first.take().orgs, HashSet::from([b]));
        // A list made now hears what comes after it, not what came before.
        let late = h.subscribe();
        assert_eq!(late.take(), Default::default());
        h.unknown();
        for inbox in [&first, &second, &late] {
            let t = inbox.take();
            assert!(t.scan && t.orgs.is_empty(), "{t:?}");
        }
    }

    #[test]
    fn a_dropped_list_is_forgotten_at_the_next_wake_up() {
        let h = ReadyHints::default();
        let kept = h.subscribe();
        for _ in 0..1_000 {
            drop(h.subscribe());
        }
        // Each subscription forgets the ones dropped before it.
        assert_eq!(h.inboxes(), 2);
        let gone = h.subscribe();
        drop(gone);
        h.org(&new_id());
        assert_eq!(h.inboxes(), 1);
        assert_eq!(kept.take().orgs.len(), 1);
        // No list at all: a wake-up is delivered nowhere and nothing grows.
        drop(kept);
        h.unknown();
        assert_eq!(h.inboxes(), 0);
    }

    #[test]
    fn a_wake_up_naming_nothing_or_no_org_asks_for_a_scan() {
        let h = ReadyHints::default();
        let inbox = h.subscribe();
        h.org(&new_id());
        h.unknown();
        h.org(&new_id());
        let t = inbox.take();
        assert!(t.scan && t.orgs.is_empty(), "{t:?}");
        // Names that are not org ids: NUL, non-ASCII, huge, upper-case.
        let id = new_id();
        for odd in [
            format!("{id}\0"),
            "é".repeat(18),
            "a".repeat(1 << 20),
            id.to_uppercase(),
            String::new(),
        ] {
            h.org(&new_id());
            h.org(&odd);
            let t = inbox.take();
            assert!(
                t.scan && t.orgs.is_empty(),
                "{:?}",
                &odd[..odd.len().min(40)]
            );
        }
    }

    #[test]
    fn too_many_orgs_ask_for_a_scan_and_memory_stays_bounded() {
        let h = ReadyHints::default();
        let inbox = h.subscribe();
        let ids: Vec<String> = (0..=MAX_HINTED).map(|_| new_id()).collect();
        for id in &ids[..MAX_HINTED] {
            h.org(id);
        }
        let t = inbox.take();
        assert!(!t.scan);
        assert_eq!(t.orgs.len(), MAX_HINTED);
        for id in &ids {
            h.org(id);
        }
        let t = inbox.take();
        assert!(t.scan && t.orgs.is_empty(), "{t:?}");
    }
}
