//! Rate limits of the authentication path and of each org's requests (governor GCRA).
//!
//! * Failed authentications that cost work (a database read) are counted per client
//!   address; once its budget is spent, the client's further failures are answered
//!   `rate_limited`. A correct key is never refused because of these budgets: keys that
//!   verify cheaply are always checked, and malformed keys cost and count nothing.
//! * Expensive checks (argon2id, for keys hashed before the HMAC form) reserve a slot of
//!   the client's and of the key id's budget *before* hashing; a spent budget refuses.
//! * Each org may make `requests_per_minute` authenticated requests (from its plan).
//!
//! Limits are per process: N `serve` nodes allow up to N times the budget. See
//! `docs/ARCHITECTURE.md`.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::plans::Plan;
use crate::{CoreError, CoreResult};

/// Failed attempts allowed per client address per minute.
pub const CLIENT_FAILURES_PER_MINUTE: u32 = 30;
/// Failed attempts allowed per key id per minute.
pub const KID_FAILURES_PER_MINUTE: u32 = 10;

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n.max(1)).expect("n >= 1"))
}

/// A keyed failure budget plus the list of keys currently refused.
#[derive(Debug)]
struct Budget<K: Hash + Eq + Clone + std::fmt::Debug> {
    limiter: DefaultKeyedRateLimiter<K>,
    blocked: Mutex<HashMap<K, Instant>>,
}

impl<K: Hash + Eq + Clone + std::fmt::Debug> Budget<K> {
    fn new(per_min: u32) -> Self {
        Budget {
            limiter: RateLimiter::keyed(per_minute(per_min)),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    fn check(&self, key: &K) -> CoreResult<()> {
        let blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        match blocked.get(key) {
            Some(until) if *until > Instant::now() => Err(CoreError::RateLimited {
                retry_after: *until - Instant::now(),
            }),
            _ => Ok(()),
        }
    }

    /// Takes one slot now (atomically); a spent budget blocks the key and is refused.
    fn take(&self, key: &K) -> CoreResult<()> {
        self.check(key)?;
        self.spend(key);
        self.check(key)
    }

    fn spend(&self, key: &K) {
        if let Err(not_until) = self.limiter.check_key(key) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
            if blocked.len() > 10_000 {
                let now = Instant::now();
                blocked.retain(|_, until| *until > now);
            }
            let until = Instant::now() + wait.max(Duration::from_secs(1));
            let was_blocked = blocked
                .insert(key.clone(), until)
                .is_some_and(|before| before > Instant::now());
            if !was_blocked {
                tracing::info!(
                    who = ?key,
                    for_secs = wait.as_secs().max(1),
                    "authentication failure budget spent; further failures are answered 429"
                );
            }
        }
    }

    fn tidy(&self) {
        self.limiter.retain_recent();
        let now = Instant::now();
        self.blocked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, until| *until > now);
    }
}

/// The network a client's failure budget is kept for: an IPv4 address itself, an IPv6
/// address its /64 (the least one subscriber is given, so a client cannot take a fresh
/// budget from each address of its block), an IPv4-mapped IPv6 address its IPv4 address.
fn client_net(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        },
    }
}

/// Budgets of failed authentications.
#[derive(Debug)]
pub(crate) struct FailureLimiter {
    clients: Budget<IpAddr>,
    kids: Budget<String>,
    spent: AtomicU32,
}

impl FailureLimiter {
    pub fn new(client_per_min: u32, kid_per_min: u32) -> FailureLimiter {
        FailureLimiter {
            clients: Budget::new(client_per_min),
            kids: Budget::new(kid_per_min),
            spent: AtomicU32::new(0),
        }
    }

    /// Refuses a client whose failure budget is spent.
    pub fn check_client(&self, ip: IpAddr) -> CoreResult<()> {
        self.clients.check(&client_net(ip))
    }

    /// Refuses a key id whose failure budget is spent.
    #[cfg(test)]
    pub fn check_kid(&self, kid: &str) -> CoreResult<()> {
        self.kids.check(&kid.to_owned())
    }

    /// Reserves one attempt of the client's and of the key's budget *before* expensive
    /// work, so concurrent attempts cannot all pass a check made before any was charged.
    /// Refused (`rate_limited`) when either budget is spent.
    pub fn reserve(&self, ip: Option<IpAddr>, kid: &str) -> CoreResult<()> {
        let ip = ip.map(client_net);
        if let Some(ip) = ip {
            self.clients.check(&ip)?;
        }
        self.kids.check(&kid.to_owned())?;
        if let Some(ip) = ip {
            self.clients.take(&ip)?;
        }
        self.tick();
        self.kids.take(&kid.to_owned())
    }

    /// Records one failed attempt that cost work (a database read) against the client.
    pub fn record(&self, ip: Option<IpAddr>) {
        if let Some(ip) = ip {
            self.clients.spend(&client_net(ip));
        }
        self.tick();
    }

    fn tick(&self) {
        if self.spent.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
            self.clients.tidy();
            self.kids.tidy();
        }
    }
}

type OrgLimiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// Where an org stands against its request budget (for `RateLimit-*` headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateStatus {
    /// Requests per minute allowed.
    pub limit: u32,
    /// Requests left right now.
    pub remaining: u32,
    /// Seconds until the budget is full again.
    pub reset_secs: u64,
}

/// Per-org request budgets, one limiter per plan.
pub(crate) struct OrgRateLimiter {
    by_plan: Vec<(Plan, OrgLimiter)>,
}

impl std::fmt::Debug for OrgRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OrgRateLimiter")
    }
}

impl OrgRateLimiter {
    pub fn new() -> OrgRateLimiter {
        OrgRateLimiter {
            by_plan: Plan::ALL
                .into_iter()
                .map(|p| {
                    let quota = per_minute(p.limits().requests_per_minute);
                    (
                        p,
                        RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
                    )
                })
                .collect(),
        }
    }

    /// Counts one request of `org` on `plan`.
    pub fn check(&self, org: &str, plan: Plan) -> CoreResult<RateStatus> {
        let (_, limiter) = self
            .by_plan
            .iter()
            .find(|(p, _)| *p == plan)
            .expect("a limiter per plan");
        let limit = plan.limits().requests_per_minute;
        let interval = Duration::from_secs(60) / limit.max(1);
        match limiter.check_key(&org.to_owned()) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let reset = interval * (limit - remaining.min(limit));
                Ok(RateStatus {
                    limit,
                    remaining,
                    reset_secs: crate::error::retry_after_secs(reset).min(60),
                })
            }
            Err(not_until) => Err(CoreError::RateLimited {
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_block_a_client_after_its_budget() {
        let f = FailureLimiter::new(3, 100);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert!(f.check_client(ip).is_ok());
            f.record(Some(ip));
        }
        f.record(Some(ip));
        let err = f.check_client(ip).unwrap_err();
        assert_eq!(err.code(), "rate_limited");
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(
            f.check_client(other).is_ok(),
            "other clients are unaffected"
        );
    }

    #[test]
    fn an_ipv6_block_shares_one_budget() {
        let f = FailureLimiter::new(3, 100);
        // Four addresses of one /64, each failing once: the block's budget is spent.
        for host in 1..=4 {
            let ip: IpAddr = format!("2001:db8:1:2::{host:x}").parse().unwrap();
            f.record(Some(ip));
        }
        let same_block: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
        assert_eq!(
            f.check_client(same_block).unwrap_err().code(),
            "rate_limited"
        );
        let next_block: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(
            f.check_client(next_block).is_ok(),
            "another /64 is another client"
        );
        // IPv4-mapped addresses are their IPv4 address, not one shared ::ffff:0:0 block.
        let mapped =
            |v4: &str| IpAddr::V6(v4.parse::<std::net::Ipv4Addr>().unwrap().to_ipv6_mapped());
        for _ in 0..4 {
            f.record(Some(mapped("192.0.2.1")));
        }
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(f.check_client(v4).unwrap_err().code(), "rate_limited");
        assert!(f.check_client(mapped("192.0.2.2")).is_ok());
    }

    #[test]
    fn reservations_are_taken_before_the_work() {
        let f = FailureLimiter::new(100, 2);
        assert!(f.reserve(None, "kid1").is_ok());
        assert!(f.reserve(None, "kid1").is_ok());
        // The third concurrent attempt is refused although no attempt has failed yet.
        assert_eq!(f.reserve(None, "kid1").unwrap_err().code(), "rate_limited");
        assert_eq!(f.check_kid("kid1").unwrap_err().code(), "rate_limited");
        assert!(f.reserve(None, "kid2").is_ok(), "budgets are per key");
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        let g = FailureLimiter::new(1, 100);
        assert!(g.reserve(Some(ip), "a").is_ok());
        assert_eq!(g.reserve(Some(ip), "b").unwrap_err().code(), "rate_limited");
    }

    #[test]
    fn org_budget_follows_the_plan() {
        let r = OrgRateLimiter::new();
        let first = r.check("org-a", Plan::Base).unwrap();
        assert_eq!(first.limit, 60);
        assert_eq!(first.remaining, 59);
        for _ in 0..59 {
            r.check("org-a", Plan::Base).unwrap();
        }
        let err = r.check("org-a", Plan::Base).unwrap_err();
        assert_eq!(err.code(), "rate_limited");
        assert!(r.check("org-b", Plan::Base).is_ok(), "budgets are per org");
        assert_eq!(r.check("org-a", Plan::Hero).unwrap().limit, 600, "per plan");
    }
}
