//! The usage upsert: counters of `usage_daily` added to, never overwritten, by one
//! statement per chunk of rows (`INSERT ... ON CONFLICT DO UPDATE SET n = n + x`, which
//! both backends take). Rows are written in key order, so two writers that touch the same
//! rows lock them in the same order and cannot deadlock.
//!
//! Each (org, day, task) is spread over shards (migration m20261202_000017): on
//! PostgreSQL a writer adds to the shard of its backend (`pg_backend_pid() % SHARDS`), so
//! concurrent transactions of one org (grouped submits, finish batches of several
//! workers) rarely wait on each other's row lock until commit; SQLite writes shard 0.
//! Only the sum over shards means anything.

use sea_orm::{ConnectionTrait, Value as DbValue};

use super::sql::stmt;
use crate::CoreResult;
use crate::jobs::JobStatus;
use crate::usage::Delta;

/// Rows per statement (8 parameters each, far below either backend's limit).
const CHUNK: usize = 256;

/// The counters of a row, in column order after the key.
const COUNTERS: [&str; 5] = [
    "jobs_submitted",
    "jobs_succeeded",
    "jobs_failed",
    "run_ms",
    "api_requests",
];

/// The shards of one (org, day, task) on PostgreSQL.
pub(crate) const SHARDS: i32 = 16;

/// The shard a statement writes to.
fn shard_sql(backend: sea_orm::DbBackend) -> String {
    match backend {
        sea_orm::DbBackend::Postgres => format!("pg_backend_pid() % {SHARDS}"),
        _ => "0".to_owned(),
    }
}

/// An upsert's additions, `c = usage_daily.c + excluded.c`, for each of `counters`.
fn added(counters: &[&str]) -> String {
    counters
        .iter()
        .map(|c| format!("{c} = usage_daily.{c} + excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The statement for `rows` rows.
fn upsert_sql(backend: sea_orm::DbBackend, rows: usize) -> String {
    let shard = shard_sql(backend);
    let values = (0..rows)
        .map(|r| {
            let p = |i: usize| format!("${}", r * 8 + i + 1);
            let counters = (3..8).map(p).collect::<Vec<_>>().join(", ");
            format!("({}, {}, {}, {shard}, {counters})", p(0), p(1), p(2))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let set = added(&COUNTERS);
    format!(
        "INSERT INTO usage_daily (org_id, day, task, shard, {}) VALUES {values}
         ON CONFLICT (org_id, day, task, shard) DO UPDATE SET {set}",
        COUNTERS.join(", ")
    )
}

/// Adds `deltas` to their rows (created at zero when missing), inside the caller's
/// transaction. Deltas with the same key must already be merged (see
/// [`crate::usage::merge`]); all-zero deltas are skipped.
pub(crate) async fn add_usage<C: ConnectionTrait>(conn: &C, deltas: &[Delta]) -> CoreResult<()> {
    let mut rows: Vec<&Delta> = deltas.iter().filter(|d| !d.is_zero()).collect();
    rows.sort_by(|a, b| a.key().cmp(&b.key()));
    let backend = conn.get_database_backend();
    for chunk in rows.chunks(CHUNK) {
        let mut values: Vec<DbValue> = Vec::with_capacity(chunk.len() * 8);
        for d in chunk {
            values.extend([
                d.org_id.clone().into(),
                d.day.clone().into(),
                d.task.clone().into(),
                d.jobs_submitted.into(),
                d.jobs_succeeded.into(),
                d.jobs_failed.into(),
                d.run_ms.into(),
                d.api_requests.into(),
            ]);
        }
        conn.execute_raw(stmt(backend, &upsert_sql(backend, chunk.len()), values))
            .await?;
    }
    Ok(())
}

/// PostgreSQL: a data-modifying CTE (named `usage_rows`) for the finish statement. It reads
/// `done` (the jobs written, `RETURNING id, org_id, task, status`) and `attempt_rows` (the
/// attempts ended, `RETURNING job_id, started_at`), and adds one delta per (org, task) of
/// the batch: succeeded and failed jobs, and the milliseconds from each attempt's start to
/// `$time` (the batch's end time), on day `$day`. Rows go in key order (no deadlocks
/// between two batches).
pub(crate) fn finish_usage_cte(time: usize, day: usize) -> String {
    let (succeeded, failed) = (JobStatus::Succeeded.as_str(), JobStatus::Failed.as_str());
    let set = added(&COUNTERS[1..4]);
    format!(
        "usage_rows AS (
           INSERT INTO usage_daily (org_id, day, task, shard, {counters})
           SELECT d.org_id, ${day}, d.task, pg_backend_pid() % {SHARDS}, 0,
             count(*) FILTER (WHERE d.status = '{succeeded}'),
             count(*) FILTER (WHERE d.status = '{failed}'),
             COALESCE(sum(GREATEST(0,
               (extract(epoch FROM (${time}::timestamptz - ar.started_at)) * 1000)::bigint)), 0)::bigint,
             0
           FROM done d LEFT JOIN attempt_rows ar ON ar.job_id = d.id
           GROUP BY d.org_id, d.task
           ORDER BY d.org_id, d.task
           ON CONFLICT (org_id, day, task, shard) DO UPDATE SET {set}
         )",
        counters = COUNTERS.join(", ")
    )
}

/// SQLite: the finish's usage statement, over `source` (the batch's fenced outcomes joined
/// to their jobs, aliased `v` and `jobs`, as the jobs are before the finish updates
/// them): one row per (org, task) of the batch, adding succeeded and failed jobs and the
/// milliseconds from each attempt's start (`start`: an SQL expression of its start in Unix
/// seconds, as the attempt's row records it) to `$time` (the batch's end), none below
/// zero, on day `$day`, as PostgreSQL's [`finish_usage_cte`] does. SQLite's date functions
/// hold milliseconds, so the time is rounded to the millisecond, as PostgreSQL rounds it.
/// A group that adds nothing writes no row.
pub(crate) fn finish_usage_sqlite(source: &str, start: &str, time: usize, day: usize) -> String {
    let (succeeded, failed) = (JobStatus::Succeeded.as_str(), JobStatus::Failed.as_str());
    let set = added(&COUNTERS[1..4]);
    let ok = format!("sum(v.status = '{succeeded}')");
    let bad = format!("sum(v.status = '{failed}')");
    let ms = format!(
        "sum(max(0, CAST(round((unixepoch(${time}, 'subsec') - ({start})) * 1000) AS INTEGER)))"
    );
    // `WHERE true`: an upsert's `SELECT` needs a `WHERE` before `ON CONFLICT` (SQLite's
    // parser would take the `ON` for a join's).
    format!(
        "INSERT INTO usage_daily (org_id, day, task, shard, {counters})
         SELECT jobs.org_id, ${day}, jobs.task, 0, 0, {ok}, {bad}, {ms}, 0
         FROM {source} WHERE true
         GROUP BY jobs.org_id, jobs.task
         HAVING {ok} + {bad} + {ms} > 0
         ON CONFLICT (org_id, day, task, shard) DO UPDATE SET {set}",
        counters = COUNTERS.join(", ")
    )
}

/// PostgreSQL: a data-modifying CTE (named `usage_rows`) adding one submitted job per row
/// of `source` (a relation with `org_id` and `task` columns) to day `$day`: one row per
/// (org, task), in key order, on this backend's shard.
pub(crate) fn submit_usage_cte(source: &str, day: usize) -> String {
    let submitted = COUNTERS[0];
    format!(
        "usage_rows AS (
           INSERT INTO usage_daily (org_id, day, task, shard, {counters})
           SELECT s.org_id, ${day}, s.task, pg_backend_pid() % {SHARDS}, count(*), 0, 0, 0, 0
           FROM {source} s
           GROUP BY s.org_id, s.task
           ORDER BY s.org_id, s.task
           ON CONFLICT (org_id, day, task, shard)
             DO UPDATE SET {submitted} = usage_daily.{submitted} + excluded.{submitted}
         )",
        counters = COUNTERS.join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_placeholder_per_value_and_counters_add() {
        let sql = upsert_sql(sea_orm::DbBackend::Sqlite, 2);
        assert!(
            sql.contains("($1, $2, $3, 0, $4, $5, $6, $7, $8), ($9, $10"),
            "{sql}"
        );
        let pg = upsert_sql(sea_orm::DbBackend::Postgres, 1);
        assert!(
            pg.contains("($1, $2, $3, pg_backend_pid() % 16, $4")
                && pg.contains("ON CONFLICT (org_id, day, task, shard)"),
            "{pg}"
        );
        assert!(sql.contains("$16)") && !sql.contains("$17"), "{sql}");
        assert!(
            sql.contains("run_ms = usage_daily.run_ms + excluded.run_ms"),
            "{sql}"
        );
    }
}
