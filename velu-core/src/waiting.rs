//! Requests held open while they wait (event long polls and streams, waiting claims of the
//! worker protocol), counted while they live, per key and per org: a key holds a few, and
//! an org a bounded number however many keys it mints, so what one tenant keeps waiting
//! (each waiter looks at the database again and again) stays bounded. Counted per process.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use crate::principal::Principal;
use crate::{CoreError, CoreResult};

/// What a waiter waits for: each kind has its own counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Waiting {
    /// Long polls and event streams of a job's events.
    Events,
    /// Claims of the worker protocol waiting for work.
    Claims,
}

impl Waiting {
    /// Waiters of this kind at once, per key.
    pub const fn per_key(self) -> usize {
        match self {
            Waiting::Events => 8,
            Waiting::Claims => 8,
        }
    }

    /// Waiters of this kind at once, per org, all its keys together.
    pub const fn per_org(self) -> usize {
        match self {
            Waiting::Events => 32,
            Waiting::Claims => 32,
        }
    }
}

/// Whose waiters a count holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Holder {
    Key(String),
    Org(String),
}

/// Waiters right now, per kind and holder.
static WAITING: LazyLock<Mutex<HashMap<(Waiting, Holder), usize>>> =
    LazyLock::new(Default::default);

/// One waiter, counted against its key and its org while it lives.
#[derive(Debug)]
pub struct WaitSlot {
    counted: Vec<(Waiting, Holder)>,
}

impl WaitSlot {
    /// Counts a waiter of `kind` for `who`: `rate_limited` when its key already has
    /// [`Waiting::per_key`] or its org [`Waiting::per_org`] (the operator and platform
    /// keys have no org: their key's count only).
    pub fn take(kind: Waiting, who: &Principal) -> CoreResult<WaitSlot> {
        let mut counted = vec![(
            kind,
            Holder::Key(who.kid().unwrap_or(&who.actor.id).to_owned()),
        )];
        if let Some(org) = &who.org_id {
            counted.push((kind, Holder::Org(org.clone())));
        }
        let mut waiting = WAITING.lock().unwrap_or_else(|p| p.into_inner());
        let full = counted.iter().any(|c| {
            let limit = match c.1 {
                Holder::Key(_) => kind.per_key(),
                Holder::Org(_) => kind.per_org(),
            };
            waiting.get(c).copied().unwrap_or(0) >= limit
        });
        if full {
            return Err(CoreError::RateLimited {
                retry_after: Duration::from_secs(1),
            });
        }
        for c in &counted {
            *waiting.entry(c.clone()).or_insert(0) += 1;
        }
        Ok(WaitSlot { counted })
    }
}

impl Drop for WaitSlot {
    fn drop(&mut self) {
        let mut waiting = WAITING.lock().unwrap_or_else(|p| p.into_inner());
        for c in &self.counted {
            if let Some(n) = waiting.get_mut(c) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    waiting.remove(c);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::{Actor, ActorType};

    fn key(kid: &str, org: Option<&str>) -> Principal {
        Principal {
            actor: Actor {
                kind: ActorType::ApiKey,
                id: kid.to_owned(),
            },
            org_id: org.map(str::to_owned),
            ..Principal::operator()
        }
    }

    #[test]
    fn an_org_waits_no_more_than_its_cap_however_many_keys_it_holds() {
        // Org names of their own: the counts are per process, shared with other tests.
        let org = "org-waiting-cap-test";
        let mut held = Vec::new();
        for k in 0.. {
            let who = key(&format!("kid-waiting-cap-{k}"), Some(org));
            match WaitSlot::take(Waiting::Events, &who) {
                Ok(slot) => held.push(slot),
                Err(CoreError::RateLimited { .. }) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(held.len(), Waiting::Events.per_org());
        // Another kind and another org are counted apart.
        let who = key("kid-waiting-cap-claims", Some(org));
        assert!(WaitSlot::take(Waiting::Claims, &who).is_ok());
        let other = key("kid-waiting-cap-other", Some("org-waiting-cap-other"));
        assert!(WaitSlot::take(Waiting::Events, &other).is_ok());
        // A place freed is a place to take again.
        held.pop();
        let who = key("kid-waiting-cap-again", Some(org));
        let again = WaitSlot::take(Waiting::Events, &who).expect("a place was freed");
        assert!(WaitSlot::take(Waiting::Events, &who).is_err());
        drop(again);
    }

    #[test]
    fn a_key_waits_no_more_than_its_cap() {
        let who = key("kid-waiting-key-test", Some("org-waiting-key-test"));
        let held: Vec<_> = (0..Waiting::Claims.per_key())
            .map(|_| WaitSlot::take(Waiting::Claims, &who).expect("under the cap"))
            .collect();
        assert!(matches!(
            WaitSlot::take(Waiting::Claims, &who),
            Err(CoreError::RateLimited { .. })
        ));
        drop(held);
        let platform = key("kid-waiting-platform-test", None);
        let held: Vec<_> = (0..Waiting::Events.per_key())
            .map(|_| WaitSlot::take(Waiting::Events, &platform).expect("under the cap"))
            .collect();
        assert!(WaitSlot::take(Waiting::Events, &platform).is_err());
        drop(held);
        assert!(WaitSlot::take(Waiting::Events, &platform).is_ok());
    }
}
