//! Authenticating API keys: from key text to [`Principal`].
//!
//! The path of a request, cheapest checks first:
//! 1. the text is parsed: a v1 key must pass its CRC32 checksum; text without the v1
//!    prefix is tried as a key of the earlier system (by its sha256 hash). Malformed text
//!    is refused here, costing nothing and counting against no budget;
//! 2. the verification cache is consulted (a SHA-256, no database);
//! 3. otherwise the key's row is read by kid, checked for revocation and expiry, and the
//!    secret checked against its HMAC-SHA256 (a microsecond); success is cached. A
//!    correct key is never refused because of other clients' failures;
//! 4. keys still hashed with argon2id (issued before the HMAC form) are checked behind
//!    per-client and per-key budgets reserved before hashing and a bounded gate, then
//!    rewritten to the HMAC form.
//!
//! Every failure is the same `unauthorized` error (or `rate_limited` once the client's
//! failure budget is spent), so nothing is learned from it.

mod cache;
mod gate;
mod last_used;
pub mod limits;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};

use crate::db::CrossOrg;
use crate::db::notify::Change;
use crate::entity::api_keys;
use crate::keys::hashing::{self, KeyHasher};
use crate::keys::token;
use crate::orgs::current_plan;
use crate::principal::{Actor, ActorType, Principal};
use crate::scopes::ScopeSet;
use crate::time::now;
use crate::{CoreError, CoreResult, Velu};

use cache::{Entry, Lookup, VerifiedCache};
use gate::HashGate;
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
    gate: HashGate,
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
            gate: HashGate::for_this_machine(),
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
/// `client`. A refusal is counted in the metrics (`velu_auth_failures_total`,
/// `velu_rate_limited_total`).
pub async fn authenticate(
    velu: &Velu,
    text: &str,
    client: Option<IpAddr>,
) -> CoreResult<Principal> {
    let verdict = authenticate_key(velu, text, client).await;
    if let Err(e) = &verdict {
        velu.metrics().auth().key_refused(e);
    }
    verdict
}

async fn authenticate_key(
    velu: &Velu,
    text: &str,
    client: Option<IpAddr>,
) -> CoreResult<Principal> {
    let auth = velu.auth();
    let hasher = velu.hasher()?;
    let text = text.trim();
    // Malformed text (wrong length, alphabet or checksum) costs nothing and counts
    // against no budget: it never reaches the database or a hash.
    let (handle, secret) = match token::parse(text) {
        Some(t) => (Handle::Kid(t.kid), t.secret),
        // Keys of the earlier system are 16 to 512 printable ASCII characters.
        None if token::is_v1(text)
            || !(16..=512).contains(&text.len())
            || !text.bytes().all(|b| b.is_ascii_graphic()) =>
        {
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
                    at,
                );
                auth.last_used.touch(p.actor.id.as_str(), at);
                return Ok(p);
            }
            auth.cache.remove(&cache_key, &digest);
        }
        Lookup::Miss => {}
    }

    // Past the cache every check costs a query. An address whose failure budget is spent
    // gets none, unless it presents the secret last verified for this key (so a correct
    // key is not refused for what others behind the same address did, and a flood costs
    // neither queries nor a place in the connection pool).
    if let Some(ip) = client
        && !auth.cache.is_known_good(&cache_key, &digest)
    {
        auth.failures.check_client(ip)?;
    }
    match verify(velu, hasher, &handle, &secret, &digest, client, at).await? {
        Verdict::Valid(entry, p) => {
            auth.cache.put(cache_key, Entry { digest, ..*entry }, at);
            auth.last_used.touch(p.actor.id.as_str(), at);
            Ok(p)
        }
        Verdict::Failed => {
            auth.failures.record(client);
            let kid = match &handle {
                Handle::Kid(kid) => kid.as_str(),
                Handle::Legacy(_) => "-",
            };
            // Debug only: a flood would otherwise turn into a flood of log lines. The
            // moment a client's budget is spent is logged once (limits.rs).
            tracing::debug!(kid, client = ?client, "authentication failed");
            // A client past its budget learns only that it is throttled.
            match client {
                Some(ip) => auth
                    .failures
                    .check_client(ip)
                    .and(Err(CoreError::Unauthorized)),
                None => Err(CoreError::Unauthorized),
            }
        }
    }
}

/// Whether the key behind `who` may still be used: not revoked, not expired (the operator
/// and principals without a key always may). For a reader that holds its request open long
/// after the authentication that admitted it (an event stream), so a revoked key's readers
/// end.
pub async fn key_still_usable(velu: &Velu, who: &Principal) -> CoreResult<bool> {
    let Some(kid) = who.kid() else {
        return Ok(true);
    };
    Ok(key_by_id(velu, kid)
        .await?
        .is_some_and(|row| usable(&row, now())))
}

/// Counts one request against the principal's org budget. Platform principals and the
/// operator have no org budget.
pub fn check_rate(velu: &Velu, who: &Principal) -> CoreResult<Option<RateStatus>> {
    let status = match (&who.org_id, who.plan) {
        (Some(org), Some(plan)) => velu.auth().rates.check(org, plan).map(Some),
        _ => Ok(None),
    };
    if status.is_err() {
        velu.metrics()
            .auth()
            .limited(crate::metrics::RateLimit::OrgRequests);
    }
    status
}

async fn find_row<C: ConnectionTrait>(
    conn: &C,
    handle: &Handle,
    at: DateTime<Utc>,
) -> CoreResult<Option<api_keys::Model>> {
    let rows = match handle {
        Handle::Kid(kid) => api_keys::Entity::find_by_id(kid.clone()).one(conn).await?,
        Handle::Legacy(stored) => {
            let rows = api_keys::Entity::find()
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
                .limit(2)
                .all(conn)
                .await?;
            // A legacy hash names its key alone. Imports check that no active key holds
            // the hash, but two imports at once (into two orgs) can both pass: then the
            // text could stand for either key, so it stands for none (fail closed) until
            // one of them is revoked.
            if rows.len() > 1 {
                tracing::warn!("a legacy key hash matches more than one active key; refused");
                return Ok(None);
            }
            rows.into_iter().next()
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
    /// No such key, revoked, expired, or a wrong secret.
    Failed,
}

/// The stored hashes a secret may match: the current one, and the previous one during a
/// rotation's grace period.
struct Candidates {
    current: String,
    grace: Option<String>,
}

impl Candidates {
    fn of(row: &api_keys::Model, at: DateTime<Utc>) -> Candidates {
        Candidates {
            current: row.secret_hash.clone(),
            grace: row
                .previous_secret_hash
                .clone()
                .filter(|_| row.previous_valid_until.is_some_and(|u| u > at)),
        }
    }

    /// Checks `secret` against the candidates whose hashes are (or are not) slow;
    /// `Some(via_previous)` on a match.
    fn check(&self, hasher: &KeyHasher, secret: &str, slow: bool) -> Option<bool> {
        let matches = |h: &str| hashing::is_slow(h) == slow && hasher.verify(secret, h);
        if matches(&self.current) {
            Some(false)
        } else if self.grace.as_deref().is_some_and(matches) {
            Some(true)
        } else {
            None
        }
    }

    fn any_slow(&self) -> bool {
        hashing::is_slow(&self.current) || self.grace.as_deref().is_some_and(hashing::is_slow)
    }

    /// Identifies this set of hashes (to remember secrets found wrong for it).
    fn fingerprint(&self) -> String {
        format!("{}|{}", self.current, self.grace.as_deref().unwrap_or(""))
    }
}

/// Full verification: row checks, then the cheap hashes, then (only for keys hashed before
/// the HMAC form) argon2id behind the budgets and the gate, off the async threads.
async fn verify(
    velu: &Velu,
    hasher: &KeyHasher,
    handle: &Handle,
    secret: &str,
    digest: &[u8; 32],
    client: Option<IpAddr>,
    at: DateTime<Utc>,
) -> CoreResult<Verdict> {
    // Before the key is known there is no org to enter: the lookup crosses orgs.
    let found = {
        let tx = velu.db().cross_org_read_tx(CrossOrg::KeyLookup).await?;
        let found = find_row(&tx, handle, at).await?;
        tx.commit().await?;
        found
    };
    let Some(row) = found else {
        return Ok(Verdict::Failed);
    };
    if !usable(&row, at) {
        return Ok(Verdict::Failed);
    }
    let candidates = Candidates::of(&row, at);
    let via_previous = match candidates.check(hasher, secret, false) {
        Some(via) => via,
        None if !candidates.any_slow() => return Ok(Verdict::Failed),
        None => match verify_slow(velu, hasher, &row, &candidates, secret, digest, client).await? {
            Some(via) => {
                upgrade(velu, hasher, &row, via, secret).await?;
                via
            }
            None => return Ok(Verdict::Failed),
        },
    };
    // Re-read: an upgrade may have rewritten the matched hash.
    let row = key_by_id(velu, &row.kid)
        .await?
        .filter(|r| usable(r, at))
        .ok_or(CoreError::Unauthorized)?;
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

/// The expensive check, bounded three ways: a secret already found wrong for these hashes
/// costs nothing; an attempt reserves a slot of the client's and the key's budget before
/// hashing; at most a few hashes run at once, with a short queue (`gate.rs`).
async fn verify_slow(
    velu: &Velu,
    hasher: &KeyHasher,
    row: &api_keys::Model,
    candidates: &Candidates,
    secret: &str,
    digest: &[u8; 32],
    client: Option<IpAddr>,
) -> CoreResult<Option<bool>> {
    let auth = velu.auth();
    let fingerprint = candidates.fingerprint();
    if auth.cache.is_rejected(&row.kid, digest, &fingerprint) {
        return Ok(None);
    }
    auth.failures.reserve(client, &row.kid)?;
    let _pass = auth.gate.enter().await?;
    let (hasher2, secret2) = (hasher.clone(), secret.to_owned());
    let candidates2 = Candidates {
        current: candidates.current.clone(),
        grace: candidates.grace.clone(),
    };
    let matched = tokio::task::spawn_blocking(move || candidates2.check(&hasher2, &secret2, true))
        .await
        .map_err(CoreError::internal)?;
    if matched.is_none() {
        auth.cache.reject(&row.kid, digest, fingerprint);
    }
    Ok(matched)
}

/// Rewrites a slow hash that just matched to the HMAC form, so the key never costs an
/// argon2id check again (on any node). Conditional on the hash being unchanged.
async fn upgrade(
    velu: &Velu,
    hasher: &KeyHasher,
    row: &api_keys::Model,
    via_previous: bool,
    secret: &str,
) -> CoreResult<()> {
    let new_hash = hasher.hash(secret);
    let (column, old) = if via_previous {
        (
            api_keys::Column::PreviousSecretHash,
            row.previous_secret_hash.clone().unwrap_or_default(),
        )
    } else {
        (api_keys::Column::SecretHash, row.secret_hash.clone())
    };
    let tx = velu.db().cross_org_tx(CrossOrg::KeyLookup).await?;
    api_keys::Entity::update_many()
        .col_expr(column, Expr::value(new_hash))
        .filter(api_keys::Column::Kid.eq(row.kid.as_str()))
        .filter(column.eq(old))
        .exec(&tx)
        .await?;
    tx.commit().await?;
    tracing::info!(kid = %row.kid, "key hash upgraded from argon2id to hmac-sha256");
    Ok(())
}

/// A key's row by id, in a short transaction of its own that crosses orgs (the key's
/// org is what the caller is about to learn).
async fn key_by_id(velu: &Velu, kid: &str) -> CoreResult<Option<api_keys::Model>> {
    let tx = velu.db().cross_org_read_tx(CrossOrg::KeyLookup).await?;
    let row = api_keys::Entity::find_by_id(kid.to_owned())
        .one(&tx)
        .await?;
    tx.commit().await?;
    Ok(row)
}

/// Re-reads a cached key's row: still the same secret, unrevoked, unexpired? Returns the
/// refreshed principal (the org's plan may have changed).
async fn revalidate(
    velu: &Velu,
    entry: &Entry,
    at: DateTime<Utc>,
) -> CoreResult<Option<Principal>> {
    let Some(row) = key_by_id(velu, &entry.kid).await? else {
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
