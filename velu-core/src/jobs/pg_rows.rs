//! A PostgreSQL page of jobs read off its rows by position.
//!
//! sea-orm's `FromQueryResult` finds each of a row's 24 columns by name, on every row, and
//! makes an error text for every `NULL` before it becomes `None` (a queued job has nine);
//! the page's profile had that decoding at the top of `serve`'s own work
//! (docs/benchmarks-log.md, "JSON answers without a value tree"). Here a page's columns
//! are found once, on its first row, each row reads only the columns a [`Job`] shows (not
//! the lease's four), and a status is read without a copy. The answer is the same as
//! through `jobs::Model`: the page tests of both backends hold the two to each other.

use chrono::{DateTime, Utc};
use sea_orm::sqlx::postgres::PgRow;
use sea_orm::sqlx::{self, Column, Row};
use sea_orm::{DbErr, QueryResult, RuntimeErr};
use serde_json::Value;

use super::{Job, JobError, JobStatus};
use crate::time::Timestamp;
use crate::{CoreError, CoreResult};

/// Where each column a [`Job`] shows is in a page's rows.
struct Columns {
    id: usize,
    org_id: usize,
    task: usize,
    status: usize,
    payload: usize,
    result: usize,
    error: usize,
    priority: usize,
    attempts: usize,
    max_attempts: usize,
    run_at: usize,
    actor_type: usize,
    actor_id: usize,
    idempotency_key: usize,
    cancel_requested: usize,
    created_at: usize,
    updated_at: usize,
    started_at: usize,
    finished_at: usize,
}

impl Columns {
    /// The positions in `row` (every row of one statement has the same columns).
    fn of(row: &PgRow) -> CoreResult<Columns> {
        let at = |name: &str| -> CoreResult<usize> {
            row.try_column(name).map(|c| c.ordinal()).map_err(db_error)
        };
        Ok(Columns {
            id: at("id")?,
            org_id: at("org_id")?,
            task: at("task")?,
            status: at("status")?,
            payload: at("payload")?,
            result: at("result")?,
            error: at("error")?,
            priority: at("priority")?,
            attempts: at("attempts")?,
            max_attempts: at("max_attempts")?,
            run_at: at("run_at")?,
            actor_type: at("actor_type")?,
            actor_id: at("actor_id")?,
            idempotency_key: at("idempotency_key")?,
            cancel_requested: at("cancel_requested")?,
            created_at: at("created_at")?,
            updated_at: at("updated_at")?,
            started_at: at("started_at")?,
            finished_at: at("finished_at")?,
        })
    }

    /// The job of one row.
    fn job(&self, row: &PgRow) -> CoreResult<Job> {
        let status: &str = get(row, self.status)?;
        let time = |i: usize| get::<DateTime<Utc>>(row, i).map(Timestamp);
        let time_or_null = |i: usize| -> CoreResult<Option<Timestamp>> {
            Ok(get::<Option<DateTime<Utc>>>(row, i)?.map(Timestamp))
        };
        Ok(Job {
            id: get(row, self.id)?,
            org_id: get(row, self.org_id)?,
            task: get(row, self.task)?,
            status: JobStatus::from_stored(status)?,
            payload: get::<Value>(row, self.payload)?,
            result: get::<Option<Value>>(row, self.result)?,
            error: JobError::from_json(get(row, self.error)?)?,
            priority: get(row, self.priority)?,
            attempts: get(row, self.attempts)?,
            max_attempts: get(row, self.max_attempts)?,
            run_at: time(self.run_at)?,
            actor_type: get(row, self.actor_type)?,
            actor_id: get(row, self.actor_id)?,
            idempotency_key: get(row, self.idempotency_key)?,
            cancel_requested: get(row, self.cancel_requested)?,
            created_at: time(self.created_at)?,
            updated_at: time(self.updated_at)?,
            started_at: time_or_null(self.started_at)?,
            finished_at: time_or_null(self.finished_at)?,
        })
    }
}

/// The first `keep` jobs of a PostgreSQL page statement's rows (whole `jobs` rows and
/// `listed_seen`) and how many rows its scan saw; `None` when the rows are not
/// PostgreSQL's (the caller reads them through `jobs::Model`).
pub(super) fn jobs_of_rows(
    rows: &[QueryResult],
    keep: usize,
) -> CoreResult<Option<(Vec<Job>, u64)>> {
    let Some(first) = rows.first() else {
        return Ok(Some((Vec::new(), 0)));
    };
    let Some(first) = first.try_as_pg_row() else {
        return Ok(None);
    };
    let seen_at = first
        .try_column("listed_seen")
        .map(|c| c.ordinal())
        .map_err(db_error)?;
    let seen: i64 = get(first, seen_at)?;
    let columns = Columns::of(first)?;
    let mut jobs = Vec::with_capacity(rows.len().min(keep));
    for row in rows.iter().take(keep) {
        let Some(row) = row.try_as_pg_row() else {
            return Ok(None);
        };
        jobs.push(columns.job(row)?);
    }
    Ok(Some((jobs, u64::try_from(seen).unwrap_or(0))))
}

/// Column `i` of `row` as a `T`.
fn get<'r, T>(row: &'r PgRow, i: usize) -> CoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(i).map_err(db_error)
}

/// A driver's error as every database error is sorted (`CoreError::from(DbErr)`).
fn db_error(e: sqlx::Error) -> CoreError {
    CoreError::from(DbErr::Query(RuntimeErr::SqlxError(e.into())))
}
