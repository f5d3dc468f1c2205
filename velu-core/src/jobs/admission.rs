//! Admission against the queued-jobs quota: concurrent transactions that queue jobs for
//! the same org take turns between reading the org's counters and committing, so two of
//! them can never both see the last free place (PostgreSQL runs them side by side under
//! READ COMMITTED; SQLite's write lock already serializes them).

use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::CoreResult;
use crate::db::sql::json_param;

/// The first key of the two-key advisory locks admission takes (the claim function's
/// one-key locks live in another space).
const ADMISSION_LOCKS: i32 = 0x5645_4c55; // "VELU"

/// Takes, until the end of transaction `conn`, the admission lock of each of `orgs`, in
/// one statement and in a fixed (hash) order, so two groups of orgs never wait on each
/// other in a circle. Call it before reading the counters the quota is checked against.
pub(crate) async fn hold_admission<C: ConnectionTrait>(conn: &C, orgs: &[&str]) -> CoreResult<()> {
    if conn.get_database_backend() != DbBackend::Postgres || orgs.is_empty() {
        return Ok(());
    }
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!(
            "SELECT pg_advisory_xact_lock({ADMISSION_LOCKS}, k) FROM (
               SELECT DISTINCT hashtext(o) AS k FROM jsonb_array_elements_text($1::jsonb) AS o
               ORDER BY k) AS keys"
        ),
        [json_param(orgs)?],
    ))
    .await?;
    Ok(())
}
