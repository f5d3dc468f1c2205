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

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// Orgs whose admission turn a group of submits found held past its patience (their own
/// long batch, say), remembered per process: later groups try such an org's turn without
/// waiting, until one finds it free. Without it every group that met one of the org's
/// submits waited [`PATIENCE`] again, so an org keeping its turn busy while sending single
/// submits added that wait to the submits of every org grouped with each of them.
#[derive(Debug, Default)]
pub(crate) struct BusyOrgs {
    known: Mutex<HashSet<String>>,
    waits_run_out: AtomicU64,
}

/// Most orgs [`BusyOrgs`] remembers; past it, it forgets them all (they are waited for
/// once more, as before they were remembered).
const MAX_BUSY_ORGS: usize = 4096;

impl BusyOrgs {
    /// `orgs` split into those to wait for and those known busy, to try without waiting.
    fn split<'a>(&self, orgs: &[&'a str]) -> (Vec<&'a str>, Vec<&'a str>) {
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        orgs.iter().partition(|o| !known.contains(**o))
    }

    /// What a group found of `orgs`: those in `busy` are busy now, the others were free.
    fn record(&self, orgs: &[&str], busy: &[String]) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        for org in orgs {
            known.remove(*org);
        }
        if known.len() + busy.len() > MAX_BUSY_ORGS {
            known.clear();
        }
        known.extend(busy.iter().cloned());
    }

    /// How many times a group's wait for orgs' turns ran out (diagnostics and tests).
    pub(crate) fn waits_run_out(&self) -> u64 {
        self.waits_run_out.load(Ordering::Relaxed)
    }
}

/// Takes, until the end of transaction `conn`, the admission lock of `quota` for each of
/// `orgs` it can get within `patience`; returns the orgs whose turn another transaction
/// still holds (busy: an org's own large batch, say), whose locks it does not hold. For a
/// writer of many orgs' requests at once (group commit), so one busy org cannot hold up
/// the requests of every org grouped with it: the busy orgs' requests go their own way.
/// Orgs `memo` knows busy are only tried, never waited for, and `memo` learns what this
/// call finds. Nothing is busy on SQLite (its write lock serializes writers).
///
/// It waits as [`hold`] does, in the same order (so two writers never wait on each other
/// in a circle), each wait bounded by `patience`, in a savepoint: one statement when
/// every turn comes in time, the usual case. If a wait runs out, the savepoint's rollback
/// gives back what the waits took, and every org is tried once more without waiting
/// (waiting no more, this writer can be in no circle). The orgs known busy are tried
/// after the wait, which never waits while holding their turns.
pub(crate) async fn hold_or_busy<C: ConnectionTrait>(
    conn: &C,
    quota: Quota,
    orgs: &[&str],
    patience: std::time::Duration,
    memo: &BusyOrgs,
) -> CoreResult<Vec<String>> {
    if conn.get_database_backend() != DbBackend::Postgres || orgs.is_empty() {
        return Ok(Vec::new());
    }
    let (wait_for, known) = memo.split(orgs);
    let mut busy = Vec::new();
    if !wait_for.is_empty() && !wait_within(conn, quota, &wait_for, patience).await? {
        memo.waits_run_out.fetch_add(1, Ordering::Relaxed);
        busy = try_hold(conn, quota, &wait_for).await?;
    }
    if !known.is_empty() {
        busy.extend(try_hold(conn, quota, &known).await?);
    }
    memo.record(orgs, &busy);
    Ok(busy)
}

/// Waits for the turns of `orgs` in [`hold`]'s order, at most `patience` each, in a
/// savepoint: true when every turn came in time (and is held); false when a wait ran
/// out, having given back what the waits took.
async fn wait_within<C: ConnectionTrait>(
    conn: &C,
    quota: Quota,
    orgs: &[&str],
    patience: std::time::Duration,
) -> CoreResult<bool> {
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
        return Ok(true);
    }
    // A wait ran out (or failed): give back what the waits took, and the timeout.
    conn.execute_unprepared(
        "ROLLBACK TO SAVEPOINT velu_admission; RELEASE SAVEPOINT velu_admission",
    )
    .await?;
    Ok(false)
}

/// Takes the turns of `orgs` that are free, without waiting; returns the busy ones.
async fn try_hold<C: ConnectionTrait>(
    conn: &C,
    quota: Quota,
    orgs: &[&str],
) -> CoreResult<Vec<String>> {
    let space = quota.space();
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

    /// A busy org is only tried until a group finds it free; the others are waited for;
    /// the memory of busy orgs stays bounded.
    #[test]
    fn busy_orgs_are_tried_until_seen_free_and_stay_bounded() {
        let memo = BusyOrgs::default();
        assert_eq!(memo.split(&["a", "b"]), (vec!["a", "b"], vec![]));
        memo.record(&["a", "b"], &["b".to_owned()]);
        assert_eq!(memo.split(&["a", "b", "c"]), (vec!["a", "c"], vec!["b"]));
        // Still busy when tried again: still only tried.
        memo.record(&["b"], &["b".to_owned()]);
        assert_eq!(memo.split(&["b"]), (vec![], vec!["b"]));
        // Found free: waited for again, like any org.
        memo.record(&["b", "c"], &[]);
        assert_eq!(memo.split(&["b", "c"]), (vec!["b", "c"], vec![]));
        // Past the bound it forgets what it knew, and keeps only what it just learned.
        let many: Vec<String> = (0..MAX_BUSY_ORGS).map(|i| format!("org-{i}")).collect();
        let all: Vec<&str> = many.iter().map(String::as_str).collect();
        memo.record(&all, &many);
        assert_eq!(memo.known.lock().unwrap().len(), MAX_BUSY_ORGS);
        memo.record(&["z"], &["z".to_owned()]);
        let known = memo.known.lock().unwrap();
        assert_eq!((known.len(), known.contains("z")), (1, true));
    }
}
