//! The in-process cache of verified keys, so a request costs a SHA-256, not an argon2.
//!
//! Entries are found by key id and match only the exact secret that was verified: the
//! stored digest is compared in constant time with the digest of the presented secret, so a
//! wrong secret never matches. An entry is trusted for a short TTL; after that the key's
//! row is read again (one indexed query, no argon2) and the entry renewed only if the key
//! is unchanged, unrevoked and unexpired. Revocation, rotation and plan changes drop
//! entries at once ([`VerifiedCache::invalidate`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use subtle::ConstantTimeEq;

use crate::db::notify::Change;
use crate::principal::Principal;

/// One verified secret of one key.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The key's id.
    pub kid: String,
    /// Keyed digest of the verified secret.
    pub digest: [u8; 32],
    /// Who the key is.
    pub principal: Principal,
    /// The stored hash the secret matched, to notice a rotation on revalidation.
    pub matched_hash: String,
    /// Whether it matched the pre-rotation hash (grace period).
    pub via_previous: bool,
    /// When it stops being valid on its own (expiry or end of grace).
    pub valid_until: Option<DateTime<Utc>>,
    /// When the row was last read.
    pub checked_at: Instant,
}

/// What a lookup found.
pub(crate) enum Lookup {
    /// A matching entry checked within the TTL.
    Fresh(Principal),
    /// A matching entry that must be revalidated against the database.
    Stale(Entry),
    /// Nothing usable.
    Miss,
}

/// Verified keys by lookup handle (kid, or the legacy hash), and secrets known to be
/// wrong for a key's current hashes (so a client stuck on a rotated-out secret costs no
/// argon2 and cannot spend the key's failure budget for everyone).
#[derive(Debug)]
pub(crate) struct VerifiedCache {
    ttl: Duration,
    max_handles: usize,
    entries: Mutex<HashMap<String, Vec<Entry>>>,
    rejected: Mutex<HashMap<String, Vec<Rejected>>>,
    known_good: Mutex<HashMap<String, KnownGood>>,
}

/// The last secret verified for a handle, kept past the TTL and past org changes (only a
/// change of the key itself drops it): it lets a correct key through from an address
/// whose failure budget others have spent, without letting that address cost a query.
#[derive(Debug, Clone)]
struct KnownGood {
    kid: String,
    digest: [u8; 32],
    /// When the secret stops being valid on its own (so full maps shed these first).
    valid_until: Option<DateTime<Utc>>,
}

/// Most keys with verified entries (each entry about 400 bytes), and with a remembered
/// known-good secret (about 100 bytes): past it, expired ones are swept, and if that
/// leaves the map nine tenths full it starts over (each key then costs one verification
/// again). An org minting short-lived keys can grow the maps only this far, and its
/// expired keys go first.
const HANDLES_TOTAL: usize = 100_000;

/// A secret that failed against a key whose hashes were `hashes`.
#[derive(Debug, Clone)]
struct Rejected {
    digest: [u8; 32],
    hashes: String,
}

/// Most remembered wrong secrets per key, and in all.
const REJECTED_PER_KEY: usize = 8;
const REJECTED_TOTAL: usize = 10_000;

impl VerifiedCache {
    pub fn new(ttl: Duration) -> VerifiedCache {
        VerifiedCache::with_cap(ttl, HANDLES_TOTAL)
    }

    /// A cache holding entries of at most `max_handles` keys.
    fn with_cap(ttl: Duration, max_handles: usize) -> VerifiedCache {
        VerifiedCache {
            ttl,
            max_handles,
            entries: Mutex::new(HashMap::new()),
            rejected: Mutex::new(HashMap::new()),
            known_good: Mutex::new(HashMap::new()),
        }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<String, KnownGood>> {
        self.known_good.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Was `digest` the last secret verified for `handle` (and its key unchanged since)?
    pub fn is_known_good(&self, handle: &str, digest: &[u8; 32]) -> bool {
        self.known()
            .get(handle)
            .is_some_and(|k| bool::from(k.digest.ct_eq(digest)))
    }

    /// Remembers that `digest` is wrong for key `kid` while its hashes are `hashes`.
    pub fn reject(&self, kid: &str, digest: &[u8; 32], hashes: String) {
        let mut map = self.rejected.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= REJECTED_TOTAL {
            map.clear();
        }
        let list = map.entry(kid.to_owned()).or_default();
        list.retain(|r| r.hashes == hashes && !bool::from(r.digest.ct_eq(digest)));
        list.push(Rejected {
            digest: *digest,
            hashes,
        });
        if list.len() > REJECTED_PER_KEY {
            list.remove(0);
        }
    }

    /// Was `digest` already found wrong for `kid` with these same hashes?
    pub fn is_rejected(&self, kid: &str, digest: &[u8; 32], hashes: &str) -> bool {
        let map = self.rejected.lock().unwrap_or_else(|p| p.into_inner());
        map.get(kid).is_some_and(|list| {
            list.iter()
                .any(|r| r.hashes == hashes && bool::from(r.digest.ct_eq(digest)))
        })
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Entry>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Looks up the entry for `handle` whose digest equals `digest`.
    pub fn get(&self, handle: &str, digest: &[u8; 32], at: DateTime<Utc>) -> Lookup {
        let mut map = self.map();
        let Some(list) = map.get_mut(handle) else {
            return Lookup::Miss;
        };
        // Expired entries are dropped as they are met.
        list.retain(|e| e.valid_until.is_none_or(|u| u > at));
        let found = list
            .iter()
            .find(|e| bool::from(e.digest.ct_eq(digest)))
            .cloned();
        match found {
            Some(e) if e.checked_at.elapsed() < self.ttl => Lookup::Fresh(e.principal),
            Some(e) => Lookup::Stale(e),
            None => Lookup::Miss,
        }
    }

    /// Stores (or replaces) the entry for its digest; at most two per handle (the current
    /// secret and, during a grace period, the previous one).
    pub fn put(&self, handle: String, entry: Entry, at: DateTime<Utc>) {
        {
            let mut known = self.known();
            if known.len() >= self.max_handles && !known.contains_key(&handle) {
                known.retain(|_, k| k.valid_until.is_none_or(|u| u > at));
                // Not a sweep per insert once nearly full: start over instead.
                if known.len() >= self.max_handles * 9 / 10 {
                    known.clear();
                }
            }
            let good = KnownGood {
                kid: entry.kid.clone(),
                digest: entry.digest,
                valid_until: entry.valid_until,
            };
            known.insert(handle.clone(), good);
        }
        let mut map = self.map();
        if map.len() >= self.max_handles && !map.contains_key(&handle) {
            map.values_mut()
                .for_each(|l| l.retain(|e| e.valid_until.is_none_or(|u| u > at)));
            map.retain(|_, l| !l.is_empty());
            if map.len() >= self.max_handles * 9 / 10 {
                map.clear();
            }
        }
        let list = map.entry(handle).or_default();
        list.retain(|e| !bool::from(e.digest.ct_eq(&entry.digest)));
        list.push(entry);
        if list.len() > 2 {
            list.remove(0);
        }
    }

    /// Drops one entry (failed revalidation).
    pub fn remove(&self, handle: &str, digest: &[u8; 32]) {
        if let Some(list) = self.map().get_mut(handle) {
            list.retain(|e| !bool::from(e.digest.ct_eq(digest)));
        }
    }

    /// Applies a change: drops the entries it may have made stale.
    pub fn invalidate(&self, change: &Change) {
        // Job changes (every submit) touch no key: nothing to scan, no lock to take.
        if matches!(change, Change::Jobs(_)) {
            return;
        }
        match change {
            Change::Key(kid) => self.known().retain(|_, k| &k.kid != kid),
            Change::Resync => self.known().clear(),
            Change::Org(_) | Change::Jobs(_) => {}
        }
        let mut map = self.map();
        match change {
            Change::Key(kid) => map.values_mut().for_each(|l| l.retain(|e| &e.kid != kid)),
            Change::Org(org) => map
                .values_mut()
                .for_each(|l| l.retain(|e| e.principal.org_id.as_deref() != Some(org))),
            Change::Resync => map.clear(),
            Change::Jobs(_) => {}
        }
        map.retain(|_, l| !l.is_empty());
    }

    /// Number of cached entries (for tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map().values().map(Vec::len).sum()
    }

    /// Number of keys with entries (for tests).
    #[cfg(test)]
    fn handles(&self) -> usize {
        self.map().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::{Actor, ActorType};
    use crate::scopes::Role;

    fn entry(kid: &str, org: &str, digest: u8) -> Entry {
        Entry {
            kid: kid.into(),
            digest: [digest; 32],
            principal: Principal {
                actor: Actor {
                    kind: ActorType::ApiKey,
                    id: kid.into(),
                },
                org_id: Some(org.into()),
                scopes: Role::Viewer.scopes(),
                plan: None,
            },
            matched_hash: "h".into(),
            via_previous: false,
            valid_until: None,
            checked_at: Instant::now(),
        }
    }

    #[test]
    fn only_the_verified_secret_matches() {
        let c = VerifiedCache::new(Duration::from_secs(60));
        c.put("k1".into(), entry("k1", "o", 1), Utc::now());
        assert!(matches!(
            c.get("k1", &[1; 32], Utc::now()),
            Lookup::Fresh(_)
        ));
        assert!(matches!(c.get("k1", &[2; 32], Utc::now()), Lookup::Miss));
        assert!(matches!(c.get("k2", &[1; 32], Utc::now()), Lookup::Miss));
    }

    #[test]
    fn entries_go_stale_after_the_ttl() {
        let c = VerifiedCache::new(Duration::ZERO);
        c.put("k1".into(), entry("k1", "o", 1), Utc::now());
        assert!(matches!(
            c.get("k1", &[1; 32], Utc::now()),
            Lookup::Stale(_)
        ));
    }

    #[test]
    fn expiry_and_changes_drop_entries() {
        let c = VerifiedCache::new(Duration::from_secs(60));
        let mut e = entry("k1", "o", 1);
        e.valid_until = Some(Utc::now() - chrono::Duration::seconds(1));
        c.put("k1".into(), e, Utc::now());
        assert!(matches!(c.get("k1", &[1; 32], Utc::now()), Lookup::Miss));

        c.put("k2".into(), entry("k2", "o2", 2), Utc::now());
        c.put("k3".into(), entry("k3", "o3", 3), Utc::now());
        c.invalidate(&Change::Key("k2".into()));
        c.invalidate(&Change::Org("o3".into()));
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn the_entries_are_bounded_and_job_changes_scan_nothing() {
        let c = VerifiedCache::with_cap(Duration::from_secs(60), 3);
        let now = Utc::now();
        let short = |kid: &str, d: u8| {
            let mut e = entry(kid, "o", d);
            e.valid_until = Some(now + chrono::Duration::seconds(1));
            e
        };
        // Keys that expire in a second, then a key that does not: past the cap, the
        // expired ones are swept and the rest kept.
        c.put("a".into(), short("a", 1), now);
        c.put("b".into(), short("b", 2), now);
        c.put("keep".into(), entry("keep", "o", 3), now);
        let later = now + chrono::Duration::seconds(2);
        c.put("d".into(), entry("d", "o", 4), later);
        assert_eq!(c.len(), 2, "the expired entries went");
        assert!(matches!(c.get("keep", &[3; 32], later), Lookup::Fresh(_)));
        // With nothing expired, the map starts over rather than grow.
        c.put("e".into(), entry("e", "o", 5), later);
        for i in 0..50u8 {
            c.put(format!("x{i}"), entry(&format!("x{i}"), "o", i), later);
            assert!(c.handles() <= 3, "{} keys held", c.handles());
        }
        // A job change (every submit) drops nothing.
        c.invalidate(&Change::Jobs("o".into()));
        assert!(c.len() > 0);
        // Known-good secrets are bounded the same way, expired ones first.
        assert!(
            c.known().len() <= 3,
            "{} known-good secrets",
            c.known().len()
        );
    }

    #[test]
    fn wrong_secrets_are_remembered_per_key_and_hash() {
        let c = VerifiedCache::new(Duration::from_secs(60));
        c.reject("k", &[7; 32], "h1".into());
        assert!(c.is_rejected("k", &[7; 32], "h1"));
        assert!(!c.is_rejected("k", &[8; 32], "h1"), "another secret is not");
        assert!(
            !c.is_rejected("k", &[7; 32], "h2"),
            "a rotated key is checked again"
        );
        assert!(!c.is_rejected("other", &[7; 32], "h1"));
    }

    #[test]
    fn known_good_secrets_outlive_org_changes_but_not_key_changes() {
        let c = VerifiedCache::new(Duration::from_secs(60));
        c.put("k1".into(), entry("k1", "o", 1), Utc::now());
        assert!(c.is_known_good("k1", &[1; 32]));
        assert!(!c.is_known_good("k1", &[2; 32]), "only the verified secret");
        c.invalidate(&Change::Org("o".into()));
        assert!(matches!(c.get("k1", &[1; 32], Utc::now()), Lookup::Miss));
        assert!(
            c.is_known_good("k1", &[1; 32]),
            "a plan change leaves the key good"
        );
        c.invalidate(&Change::Key("k1".into()));
        assert!(
            !c.is_known_good("k1", &[1; 32]),
            "a rotation or revocation does not"
        );
    }

    #[test]
    fn at_most_two_secrets_per_key() {
        let c = VerifiedCache::new(Duration::from_secs(60));
        for d in 1..=3 {
            c.put("k".into(), entry("k", "o", d), Utc::now());
        }
        assert_eq!(c.len(), 2);
        assert!(matches!(c.get("k", &[1; 32], Utc::now()), Lookup::Miss));
        assert!(matches!(c.get("k", &[3; 32], Utc::now()), Lookup::Fresh(_)));
    }
}
