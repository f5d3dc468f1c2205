//! Authenticating API keys: from key text to [`Principal`].
//!
//! The path of a request, cheapest checks first:
//! 1. the text is parsed: a v1 key must pass its CRC32 checksum; text without the v1
//!    prefix is tried as a key of the earlier system (by its sha256 hash);
//! 2. the verification cache is consulted (a SHA-256, no database, no argon2);
//! 3. a client whose failure budget is spent is refused here (`rate_limited`), before
//!    any query or hash;
//! 4. otherwise the key's row is read by kid, checked for revocation and expiry, and the
//!    secret verified with argon2id on a blocking thread; success is cached.
//!
//! Every failure is the same `unauthorized` error, so nothing is learned from it.

mod cache;
mod last_used;
pub mod limits;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter};

use crate::db::notify::Change;
use crate::entity::api_keys;
use crate::keys::hashing::KeyHasher;
use crate::keys::token;
use crate::orgs::current_plan;
use crate::principal::{Actor, ActorType, Principal};
use crate::scopes::ScopeSet;
use crate::time::now;
use crate::{CoreError, CoreResult, Velu};

use cache::{Entry, Lookup, VerifiedCache};
pub use last_used::{LastUsed, flush_last_used};
pub use limits::RateStatus;
use limits::{FailureLimiter, OrgRateLimiter};

/// Tuning of the authentication path.
#[derive(Debug, Clone, Copy)]
pub struct AuthConfig {
    /// How long a verified key is trusted before its row is read again. This bounds how
    /// stale a node can be when a change notification is missed (always on SQLite).
    pub cache_ttl: Duration,
    /// Failed attempts per client address per minute.
    pub client_failures_per_minute: u32,
    /// Failed attempts per key id per minute.
    pub kid_failures_per_minute: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            cache_ttl: Duration::from_secs(5),
            client_failures_per_minute: limits::CLIENT_FAILURES_PER_MINUTE,
            kid_failures_per_minute: limits::KID_FAILURES_PER_MINUTE,
        }
    }
}

/// The per-process state of authentication.
#[derive(Debug)]
pub struct Authenticator {
    cache: VerifiedCache,
    failures: FailureLimiter,
    rates: OrgRateLimiter,
    last_used: LastUsed,
}

impl Authenticator {
    /// A fresh authenticator.
    pub fn new(config: AuthConfig) -> Authenticator {
        Authenticator {
            cache: VerifiedCache::new(config.cache_ttl),
            failures: FailureLimiter::new(
                config.client_failures_per_minute,
                config.kid_failures_per_minute,
            ),
            rates: OrgRateLimiter::new(),
            last_used: LastUsed::default(),
        }
    }

    /// Applies a change made here or on another node.
    pub(crate) fn invalidate(&self, change: &Change) {
        self.cache.invalidate(change);
    }

    /// The batch of last-use times waiting to be written.
    pub fn last_used(&self) -> &LastUsed {
        &self.last_used
    }
}

/// How a presented key is found in the database.
enum Handle {
    /// A v1 key, by its id.
    Kid(String),
    /// A key of the earlier system, by its stored hash.
    Legacy(String),
}

impl Handle {
    fn cache_key(&self) -> String {
        match self {
            Handle::Kid(k) => k.clone(),
            Handle::Legacy(h) => format!("legacy:{h}"),
        }
    }
}

/// Authenticates `text` (from `X-API-Key` or `Authorization: Bearer`) for a request from
/// `client`.
pub async fn authenticate(
    velu: &Velu,
    text: &str,
    client: Option<IpAddr>,
) -> CoreResult<Principal> {
    let auth = velu.auth();
    let hasher = velu.hasher()?;
    let text = text.trim();
    let (handle, secret) = match token::parse(text) {
        Some(t) => (Handle::Kid(t.kid), t.secret),
        None if token::is_v1(text) || text.len() < 16 || text.len() > 512 => {
            auth.failures.record(client, None);
            return Err(CoreError::Unauthorized);
        }
        None => (
            Handle::Legacy(KeyHasher::legacy_stored(&hasher.legacy_digest(text))),
            text.to_owned(),
        ),
    };
    let cache_key = handle.cache_key();
    let digest = hasher.cache_digest(&secret);
    let at = now();

    match auth.cache.get(&cache_key, &digest, at) {
        Lookup::Fresh(p) => {
            auth.last_used.touch(p.actor.id.as_str(), at);
            return Ok(p);
        }
        Lookup::Stale(entry) => {
            if let Some(p) = revalidate(velu, &entry, at).await? {
                auth.cache.put(
                    cache_key,
                    Entry {
                        principal: p.clone(),
                        checked_at: Instant::now(),
                        ..entry
                    },
                );
                auth.last_used.touch(p.actor.id.as_str(), at);
                return Ok(p);
            }
            auth.cache.remove(&cache_key, &digest);
        }
        Lookup::Miss => {}
    }

    // Past the cache, every step costs a query or a hash: a client whose failure budget
    // is spent gets none of them (its cached keys above still work).
    if let Some(ip) = client {
        auth.failures.check_client(ip)?;
    }
    match verify(velu, hasher, &handle, &secret, &digest, at).await? {
        Verdict::Valid(entry, p) => {
            auth.cache.put(cache_key, Entry { digest, ..*entry });
            auth.last_used.touch(p.actor.id.as_str(), at);
            Ok(p)
        }
        verdict => {
            // Only a wrong secret for a live key cost an argon2 hash: that is what the
            // per-key budget protects. Every failure counts against the client.
            let kid = match (&verdict, &handle) {
                (Verdict::WrongSecret, Handle::Kid(kid)) => Some(kid.as_str()),
                _ => None,
            };
            auth.failures.record(client, kid);
            tracing::info!(kid = kid.unwrap_or("-"), client = ?client, "authentication failed");
            Err(CoreError::Unauthorized)
        }
    }
}

/// Counts one request against the principal's org budget. Platform principals and the
/// operator have no org budget.
pub fn check_rate(velu: &Velu, who: &Principal) -> CoreResult<Option<RateStatus>> {
    match (&who.org_id, who.plan) {
        (Some(org), Some(plan)) => velu.auth().rates.check(org, plan).map(Some),
        _ => Ok(None),
    }
}

async fn find_row<C: ConnectionTrait>(
    conn: &C,
    handle: &Handle,
    at: DateTime<Utc>,
) -> CoreResult<Option<api_keys::Model>> {
    let rows = match handle {
        Handle::Kid(kid) => api_keys::Entity::find_by_id(kid.clone()).one(conn).await?,
        Handle::Legacy(stored) => {
            api_keys::Entity::find()
                .filter(
                    Condition::any()
                        .add(
                            Condition::all()
                                .add(api_keys::Column::Legacy.eq(true))
                                .add(api_keys::Column::SecretHash.eq(stored.as_str())),
                        )
                        .add(
                            Condition::all()
                                .add(api_keys::Column::PreviousSecretHash.eq(stored.as_str()))
                                .add(api_keys::Column::PreviousValidUntil.gt(at)),
                        ),
                )
                .filter(api_keys::Column::RevokedAt.is_null())
                .one(conn)
                .await?
        }
    };
    Ok(rows)
}

fn usable(row: &api_keys::Model, at: DateTime<Utc>) -> bool {
    row.revoked_at.is_none() && row.expires_at.is_none_or(|e| e > at)
}

async fn principal_for(velu: &Velu, row: &api_keys::Model) -> CoreResult<Principal> {
    let plan = match &row.org_id {
        Some(org) => Some(current_plan(velu.db().conn(), org).await?),
        None => None,
    };
    Ok(Principal {
        actor: Actor {
            kind: ActorType::ApiKey,
            id: row.kid.clone(),
        },
        org_id: row.org_id.clone(),
        scopes: ScopeSet::from_stored(&row.scopes),
        plan,
    })
}

/// The outcome of a full verification.
enum Verdict {
    /// The secret matches a live key.
    Valid(Box<Entry>, Principal),
    /// No such key, revoked, expired, or a secret already known to be wrong (no hashing
    /// was done).
    Unusable,
    /// A live key, a wrong secret (an argon2 hash was spent).
    WrongSecret,
}

/// Full verification: row checks, then argon2 (or the legacy hash) off the async threads.
async fn verify(
    velu: &Velu,
    hasher: &KeyHasher,
    handle: &Handle,
    secret: &str,
    digest: &[u8; 32],
    at: DateTime<Utc>,
) -> CoreResult<Verdict> {
    let Some(row) = find_row(velu.db().conn(), handle, at).await? else {
        return Ok(Verdict::Unusable);
    };
    if !usable(&row, at) {
        return Ok(Verdict::Unusable);
    }
    let hashes = format!(
        "{}|{}",
        row.secret_hash,
        row.previous_secret_hash.as_deref().unwrap_or("")
    );
    if velu.auth().cache.is_rejected(&row.kid, digest, &hashes) {
        return Ok(Verdict::Unusable);
    }
    // A key id whose budget of wrong secrets is spent gets no more hashing for a while.
    if let Handle::Kid(kid) = handle {
        velu.auth().failures.check_kid(kid)?;
    }
    let grace_hash = row
        .previous_secret_hash
        .clone()
        .filter(|_| row.previous_valid_until.is_some_and(|u| u > at));
    let (current, hasher2, secret2) = (row.secret_hash.clone(), hasher.clone(), secret.to_owned());
    let matched = tokio::task::spawn_blocking(move || {
        if hasher2.verify(&secret2, &current) {
            Some(false)
        } else if grace_hash
            .as_deref()
            .is_some_and(|h| hasher2.verify(&secret2, h))
        {
            Some(true)
        } else {
            None
        }
    })
    .await
    .map_err(CoreError::internal)?;
    let Some(via_previous) = matched else {
        velu.auth().cache.reject(&row.kid, digest, hashes);
        return Ok(Verdict::WrongSecret);
    };
    let principal = principal_for(velu, &row).await?;
    let valid_until = match (
        row.expires_at,
        via_previous.then_some(row.previous_valid_until).flatten(),
    ) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let entry = Entry {
        kid: row.kid.clone(),
        digest: [0; 32],
        principal: principal.clone(),
        matched_hash: if via_previous {
            row.previous_secret_hash.clone().unwrap_or_default()
        } else {
            row.secret_hash.clone()
        },
        via_previous,
        valid_until,
        checked_at: Instant::now(),
    };
    Ok(Verdict::Valid(Box::new(entry), principal))
}

/// Re-reads a cached key's row: still the same secret, unrevoked, unexpired? Returns the
/// refreshed principal (the org's plan may have changed).
async fn revalidate(
    velu: &Velu,
    entry: &Entry,
    at: DateTime<Utc>,
) -> CoreResult<Option<Principal>> {
    let Some(row) = api_keys::Entity::find_by_id(entry.kid.clone())
        .one(velu.db().conn())
        .await?
    else {
        return Ok(None);
    };
    let same_secret = if entry.via_previous {
        row.previous_secret_hash.as_deref() == Some(entry.matched_hash.as_str())
            && row.previous_valid_until.is_some_and(|u| u > at)
    } else {
        row.secret_hash == entry.matched_hash
    };
    if !same_secret || !usable(&row, at) {
        return Ok(None);
    }
    principal_for(velu, &row).await.map(Some)
}
