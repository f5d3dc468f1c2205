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

/// How long a writer of many orgs' requests waits for an org's turn before it leaves
/// that org's requests to be written on their own ([`hold_or_busy`]): a few group commits
/// ahead of it, not another org's batch of 50,000 jobs.
pub(crate) const PATIENCE: std::time::Duration = std::time::Duration::from_millis(100);

/// Takes, until the end of transaction `conn`, the admission lock of `quota` for each of
/// `orgs` it can get within `patience`; returns the orgs whose turn another transaction
/// still holds (busy: an org's own large batch, say), whose locks it does not hold. For a
/// writer of many orgs' requests at once (group commit), so one busy org cannot hold up
/// the requests of every org grouped with it: the busy orgs' requests go their own way.
/// Nothing is busy on SQLite (its write lock serializes writers).
///
/// It waits as [`hold`] does, in the same order (so two writers never wait on each other
/// in a circle), each wait bounded by `patience`, in a savepoint: one statement when
/// every turn comes in time, the usual case. If a wait runs out, the savepoint's rollback
/// gives back what the waits took, and every org is tried once more without waiting
/// (waiting no more, this writer can be in no circle).
pub(crate) async fn hold_or_busy<C: ConnectionTrait>(
    conn: &C,
    quota: Quota,
    orgs: &[&str],
    patience: std::time::Duration,
) -> CoreResult<Vec<String>> {
    if conn.get_database_backend() != DbBackend::Postgres || orgs.is_empty() {
        return Ok(Vec::new());
    }
    let space = quota.space();
    // Org ids are the database's own; quoted all the same. The wait is one simple-protocol
    // batch (the savepoint and the timeout around it), so it cannot bind parameters.
    let listed: Vec<String> = orgs
        .iter()
        .map(|o| format!("'{}'", o.replace('\'', "''")))
        .collect();
    let wait = format!(
        "SAVEPOINT velu_admission;
         SET LOCAL lock_timeout = '{}ms';
         SELECT pg_advisory_xact_lock({space}, k) FROM (
           SELECT DISTINCT hashtext(o) AS k FROM unnest(ARRAY[{}]::text[]) AS o ORDER BY k) AS keys;
         RELEASE SAVEPOINT velu_admission;
         SET LOCAL lock_timeout TO DEFAULT",
        patience.as_millis().max(1),
        listed.join(", ")
    );
    if conn.execute_unprepared(&wait).await.is_ok() {
        return Ok(Vec::new());
    }
    // A wait ran out (or failed): give back what the waits took, and the timeout.
    conn.execute_unprepared(
        "ROLLBACK TO SAVEPOINT velu_admission; RELEASE SAVEPOINT velu_admission",
    )
    .await?;
    org_column(
        conn,
        format!(
            "SELECT o FROM (SELECT DISTINCT o FROM jsonb_array_elements_text($1::jsonb) AS o) AS s
             WHERE NOT pg_try_advisory_xact_lock({space}, hashtext(o))"
        ),
        orgs,
    )
    .await
}

/// The `o` column of PostgreSQL statement `sql` over `$1`, the JSON array of `orgs`.
async fn org_column<C: ConnectionTrait>(
    conn: &C,
    sql: String,
    orgs: &[&str],
) -> CoreResult<Vec<String>> {
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [json_param(orgs)?],
        ))
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get::<String>("", "o"))
        .collect::<Result<_, _>>()?)
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
