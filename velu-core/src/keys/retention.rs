//! Retention of an org's dead keys: a key revoked, or expired, longer ago than its org's
//! plan keeps history (`history_days`) is removed by the history retention run
//! (`jobs/retention.rs`, docs/retention.md), so keys created and revoked in a loop do not
//! grow the table without end.
//!
//! A live key is never removed, and neither is a platform key (no org): only the org's
//! keys whose `revoked_at`, or, unrevoked, whose `expires_at`, is before the cutoff. Such a
//! key authenticates nothing already (revoked or expired), so removing its row changes
//! no answer but `key list` and `key show`, where it is then missing like any other key
//! (`404`); the audit log keeps its creation and revocation. The key counters
//! (`key_counts`) follow through their triggers.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction, Value as DbValue};

use crate::db::sql::stmt;
use crate::{CoreError, CoreResult};

/// The `WHERE` of org `$1`'s keys dead before `$2`. A key revoked before the cutoff was
/// created before it, so `created_at < $2` lets the walk read `ix_api_keys_org_created`
/// from the org's first key to the cutoff only.
const DUE: &str = "org_id = $1 AND created_at < $2 AND \
    ((revoked_at IS NOT NULL AND revoked_at < $2) \
     OR (revoked_at IS NULL AND expires_at IS NOT NULL AND expires_at < $2))";

fn values(org_id: &str, cut: DateTime<Utc>) -> Vec<DbValue> {
    vec![org_id.into(), DbValue::from(cut)]
}

/// How many of org `org_id`'s keys are due at `cut`, counted up to `cap + 1` (so the
/// caller can tell "more than `cap`").
pub(crate) async fn count_due<C: ConnectionTrait>(
    conn: &C,
    org_id: &str,
    cut: DateTime<Utc>,
    cap: u64,
) -> CoreResult<u64> {
    let sql = format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM api_keys WHERE {DUE} LIMIT {}) AS due",
        cap + 1
    );
    let row = conn
        .query_one_raw(stmt(conn.get_database_backend(), &sql, values(org_id, cut)))
        .await?
        .ok_or_else(|| CoreError::internal("COUNT returned no row"))?;
    Ok(u64::try_from(row.try_get_by_index::<i64>(0)?).unwrap_or(0))
}

/// Removes at most `n` of org `org_id`'s keys due at `cut`, oldest first, in `tx`; the
/// number removed. Two runs at once remove each key once (the second's `DELETE` finds
/// the rows the first removed gone and does not count them).
pub(crate) async fn remove_due(
    tx: &DatabaseTransaction,
    org_id: &str,
    cut: DateTime<Utc>,
    n: u64,
) -> CoreResult<u64> {
    let sql = format!(
        "DELETE FROM api_keys WHERE kid IN \
         (SELECT kid FROM api_keys WHERE {DUE} ORDER BY created_at, kid LIMIT {n})"
    );
    let done = tx
        .execute_raw(stmt(tx.get_database_backend(), &sql, values(org_id, cut)))
        .await?;
    Ok(done.rows_affected())
}
