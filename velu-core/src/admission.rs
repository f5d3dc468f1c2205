//! Admission against an org's quotas (queued jobs, API keys, schedules, secrets, worker
//! rows): concurrent transactions that add to the same org's count under the same quota
//! take turns between reading the count and committing, so two of them can never both see
//! the last free place. PostgreSQL runs them side by side under READ COMMITTED; SQLite's
//! write lock already serializes them.
//!
//! The turn is a transaction-scoped advisory lock per quota and org, not a row lock on the
//! org: a lock on `organizations` would also hold up every insert that checks its foreign
//! key (a `FOR UPDATE` conflicts with the `FOR KEY SHARE` of the check), so creating a key
//! would stall the org's submits.

use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::CoreResult;
use crate::db::sql::json_param;

/// A per-org quota whose admissions take turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quota {
    /// The plan's queued jobs (submits, retries, schedules firing).
    QueuedJobs,
    /// The plan's active API keys (create, import, rotate).
    ApiKeys,
    /// The plan's schedules.
    Schedules,
    /// `MAX_SECRETS_PER_ORG`; also keeps a secret's versions in order.
    Secrets,
    /// `MAX_WORKERS_PER_ORG` registered worker rows.
    Workers,
}

impl Quota {
    /// The first key of the two-key advisory locks of this quota (the claim function's
    /// one-key locks live in another space). `QueuedJobs` keeps the key it always had, so
    /// processes of the build before and after take the same locks.
    const fn space(self) -> i32 {
        match self {
            Quota::QueuedJobs => 0x5645_4c55, // "VELU"
            Quota::ApiKeys => 0x5645_4c01,
            Quota::Schedules => 0x5645_4c02,
            Quota::Secrets => 0x5645_4c03,
            Quota::Workers => 0x5645_4c04,
        }
    }
}

/// Takes, until the end of transaction `conn`, the admission lock of `quota` for each of
/// `orgs`, in one statement and in a fixed (hash) order, so two groups of orgs never wait
/// on each other in a circle. Call it before reading the count the quota is checked
/// against, inside the transaction that writes.
pub(crate) async fn hold<C: ConnectionTrait>(
    conn: &C,
    quota: Quota,
    orgs: &[&str],
) -> CoreResult<()> {
    if conn.get_database_backend() != DbBackend::Postgres || orgs.is_empty() {
        return Ok(());
    }
    let space = quota.space();
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!(
            "SELECT pg_advisory_xact_lock({space}, k) FROM (
               SELECT DISTINCT hashtext(o) AS k FROM jsonb_array_elements_text($1::jsonb) AS o
               ORDER BY k) AS keys"
        ),
        [json_param(orgs)?],
    ))
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_quota_has_its_own_lock_space() {
        let all = [
            Quota::QueuedJobs,
            Quota::ApiKeys,
            Quota::Schedules,
            Quota::Secrets,
            Quota::Workers,
        ];
        let mut spaces: Vec<i32> = all.iter().map(|q| q.space()).collect();
        spaces.sort_unstable();
        spaces.dedup();
        assert_eq!(spaces.len(), all.len());
    }
}
