//! Orgs named by wake-ups since the local claim loop last looked: where new work is,
//! without scanning for it.
//!
//! Every submit's wake-up names its org (`Change::Jobs`, delivered after the commit, from
//! this process or through PostgreSQL's notifications). The fair claim ([`super::fair`])
//! asks those orgs first and scans for ready orgs less often: under steady submits the
//! scan had come to run once per claim, costing as much as the claim itself
//! (docs/benchmarks-log.md). A wake-up that names nothing (SQLite's commit watcher, a
//! listener that reconnected) asks for a scan, as does a list grown past
//! [`MAX_HINTED`] or a name that is not an org id.

use std::collections::HashSet;
use std::sync::Mutex;

/// Most orgs remembered between two looks; past it, the next look scans instead. Bounds
/// a process that never claims (a server without a local worker) too.
pub(crate) const MAX_HINTED: usize = 256;

/// What the wake-ups since the last look said.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Hinted {
    /// Orgs with new work.
    pub orgs: HashSet<String>,
    /// Something may be ready that `orgs` does not name: scan.
    pub scan: bool,
}

/// The orgs named by wake-ups since the last [`ReadyHints::take`].
#[derive(Debug, Default)]
pub(crate) struct ReadyHints(Mutex<Hinted>);

impl ReadyHints {
    /// Org `org` has new work ready. A name that is not an org id (a notification sent by
    /// hand) says nothing reliable: it asks for a scan.
    pub(crate) fn org(&self, org: &str) {
        if !crate::ids::is_uuid(org) {
            return self.unknown();
        }
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

    /// Something may be ready without saying where: the next look scans.
    pub(crate) fn unknown(&self) {
        let mut h = self.lock();
        h.orgs.clear();
        h.scan = true;
    }

    /// What was said since the last call, forgetting it.
    pub(crate) fn take(&self) -> Hinted {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Hinted> {
        // The set stays valid whatever a panicking holder did: each change is one step.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_HINTED, ReadyHints};
    use crate::ids::new_id;

    #[test]
    fn names_orgs_once_and_forgets_them_when_taken() {
        let h = ReadyHints::default();
        let (a, b) = (new_id(), new_id());
        h.org(&a);
        h.org(&b);
        h.org(&a);
        let t = h.take();
        assert!(!t.scan);
        let mut orgs: Vec<_> = t.orgs.into_iter().collect();
        orgs.sort();
        assert_eq!(orgs, [a, b]);
        assert_eq!(h.take(), Default::default());
    }

    #[test]
    fn a_wake_up_naming_nothing_or_no_org_asks_for_a_scan() {
        let h = ReadyHints::default();
        h.org(&new_id());
        h.unknown();
        h.org(&new_id());
        let t = h.take();
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
            let t = h.take();
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
        let ids: Vec<String> = (0..=MAX_HINTED).map(|_| new_id()).collect();
        for id in &ids[..MAX_HINTED] {
            h.org(id);
        }
        let t = h.take();
        assert!(!t.scan);
        assert_eq!(t.orgs.len(), MAX_HINTED);
        for id in &ids {
            h.org(id);
        }
        let t = h.take();
        assert!(t.scan && t.orgs.is_empty(), "{t:?}");
    }
}
