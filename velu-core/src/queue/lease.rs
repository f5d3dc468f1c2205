//! Leases after the claim: renewing them (heartbeat), taking back expired ones
//! (reclaim), handing them back at shutdown (release).

use crate::db::CrossOrg;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Value as DbValue};

use super::types::{Held, lease_expiry};
use crate::CoreResult;
use crate::db::events;
use crate::db::sql::{json_array_rows, json_param, stmt};
use crate::db::{Backend, Db};
use crate::events::ProgressReport;
use crate::jobs::{AttemptOutcome, JobErrorCode, JobStatus};

/// Renews the leases `worker` holds (by token); returns those it still holds, with their
/// cancel flags. A job missing from the answer was lost: stop working on it.
pub async fn heartbeat(
    db: &Db,
    worker: &str,
    tokens: &[String],
    lease: Duration,
    at: DateTime<Utc>,
) -> CoreResult<Vec<Held>> {
    heartbeat_with_progress(db, worker, tokens, lease, at, &[]).await
}

/// [`heartbeat`], also appending the progress lines of `progress` to the streams of the
/// jobs whose leases are still held (under each job's cap), and a coalesced `heartbeat`
/// event for each held job whose stream has been quiet (see [`crate::events`]). One
/// statement on PostgreSQL; one transaction on SQLite.
pub async fn heartbeat_with_progress(
    db: &Db,
    worker: &str,
    tokens: &[String],
    lease: Duration,
    at: DateTime<Utc>,
    progress: &[ProgressReport],
) -> CoreResult<Vec<Held>> {
    if tokens.is_empty() {
        return Ok(Vec::new());
    }
    let records = crate::events::progress_records(progress)?;
    let expires = lease_expiry(at, lease);
    let filter = format!(
        "status = '{running}' AND lease_owner = $3 AND lease_token IN ({tokens})",
        running = JobStatus::Running.as_str(),
        tokens = json_array_rows(db.backend(), 4),
    );
    let update = format!(
        "UPDATE jobs SET lease_expires_at = $1, updated_at = $2 WHERE {filter}
         RETURNING id, org_id, attempts, lease_token, cancel_requested"
    );
    let mut values = vec![
        expires.into(),
        at.into(),
        worker.to_owned().into(),
        json_param(tokens)?,
    ];
    let backend = db.db_backend();
    let rows = match db.backend() {
        Backend::Postgres => {
            values.extend([json_param(&records)?, events::cutoff(at)]);
            // The events ride in the statement, after the rows are locked.
            let sql = format!(
                "WITH h AS ({update}),
                 p AS ({progress}),
                 b AS ({beat})
                 SELECT id, cancel_requested FROM h",
                progress = events::progress_sql(Backend::Postgres, "h", 5, 2),
                beat = events::heartbeat_sql("h", 2, 3, 6),
            );
            db.query_all_cross_org(CrossOrg::Queue, stmt(backend, &sql, values))
                .await?
        }
        Backend::Sqlite => {
            let tx = db.cross_org_tx(CrossOrg::Queue).await?;
            let rows = tx
                .query_all_raw(stmt(backend, &update, values.clone()))
                .await?;
            values.extend([json_param(&records)?, events::cutoff(at)]);
            let h =
                format!("(SELECT id, org_id, attempts, lease_token FROM jobs WHERE {filter}) h");
            if !records.is_empty() {
                let sql = events::progress_sql(Backend::Sqlite, &h, 5, 2);
                tx.execute_raw(stmt(backend, &sql, values.clone())).await?;
            }
            let sql = events::heartbeat_sql(&h, 2, 3, 6);
            tx.execute_raw(stmt(backend, &sql, values)).await?;
            tx.commit().await?;
            rows
        }
    };
    rows.iter()
        .map(|r| {
            Ok(Held {
                id: r.try_get("", "id")?,
                cancel_requested: r.try_get("", "cancel_requested")?,
            })
        })
        .collect()
}

/// The stored form of a job error, as a statement parameter.
fn error_value(code: JobErrorCode, message: &str) -> DbValue {
    DbValue::Json(Some(Box::new(
        serde_json::json!({ "code": code.as_str(), "message": message }),
    )))
}

/// Ends the attempts of running jobs matching `filter` as `lost`, appending each one's
/// `job_attempts` row from the attempt in progress on the job's row (migration
/// m20261203_000018), then requeues, fails or cancels the jobs as `jobs_set` says (inside
/// `tx`). `filter` is SQL over `jobs` using `$1` (now) and `$3..`; `$2` is the error
/// recorded.
///
/// On PostgreSQL one statement locks the matching rows first (`FOR UPDATE`: a finish that
/// commits meanwhile takes the row out of the match, so its attempt is never recorded
/// twice), then appends and updates; on SQLite the transaction's write lock does that.
async fn end_attempts(
    tx: &DatabaseTransaction,
    backend: DbBackend,
    filter: &str,
    jobs_set: &str,
    values: Vec<DbValue>,
) -> CoreResult<Vec<String>> {
    let lost = AttemptOutcome::Lost.as_str();
    let append = |source: &str| {
        format!(
            "INSERT INTO job_attempts
               (job_id, attempt, worker_id, lease_token, started_at, finished_at, outcome, error)
             SELECT id, attempts, lease_owner, lease_token, COALESCE(lease_started_at, $1), $1,
               '{lost}', $2
             FROM {source}"
        )
    };
    let update = |filter: &str| {
        format!(
            "UPDATE jobs SET {jobs_set}, error = $2, run_at = $1, lease_owner = NULL,
               lease_token = NULL, lease_expires_at = NULL, updated_at = $1
             WHERE {filter} RETURNING jobs.id AS id"
        )
    };
    let rows = if backend == DbBackend::Postgres {
        let sql = format!(
            "WITH locked AS (
               SELECT id, attempts, lease_owner, lease_token, lease_started_at FROM jobs
               WHERE {filter} FOR UPDATE
             ),
             appended AS ({append}),
             ended AS ({update})
             SELECT id FROM ended",
            append = append("locked"),
            update = update("jobs.id IN (SELECT id FROM locked)"),
        );
        tx.query_all_raw(stmt(backend, &sql, values)).await?
    } else {
        let source = format!("jobs WHERE {filter}");
        tx.execute_raw(stmt(backend, &append(&source), values.clone()))
            .await?;
        tx.query_all_raw(stmt(backend, &update(filter), values))
            .await?
    };
    rows.iter()
        .map(|r| Ok(r.try_get::<String>("", "id")?))
        .collect()
}

/// Takes back jobs whose lease expired (their worker died or hung): the attempt is
/// recorded as `lost`, and the job is queued again if it has attempts left, `failed` if
/// not, `cancelled` if a cancel was asked. Returns the ids reclaimed.
///
/// Every worker calls it in its loop and every remote heartbeat does, so the common case,
/// nothing expired, is a read: only a lease found expired opens the write transaction (on
/// SQLite the one writer, which every org's submits and finishes wait for).
pub async fn reclaim_expired(db: &Db, at: DateTime<Utc>) -> CoreResult<Vec<String>> {
    if !any_expired(db, at).await? {
        return Ok(Vec::new());
    }
    let [queued, running, failed, cancelled] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ]
    .map(JobStatus::as_str);
    let tx = db.cross_org_tx(CrossOrg::Queue).await?;
    let ids = end_attempts(
        &tx,
        db.db_backend(),
        &format!("status = '{running}' AND lease_expires_at < $1"),
        &format!(
            "status = CASE WHEN cancel_requested THEN '{cancelled}'
                           WHEN attempts < max_attempts THEN '{queued}' ELSE '{failed}' END,
             finished_at = CASE WHEN cancel_requested OR attempts >= max_attempts THEN $1 ELSE NULL END"
        ),
        vec![
            at.into(),
            error_value(
                JobErrorCode::LeaseExpired,
                "the worker stopped renewing its lease (it died or hung)",
            ),
        ],
    )
    .await?;
    events::insert_transitions(&tx, &ids, at).await?;
    tx.commit().await?;
    Ok(ids)
}

/// Whether some running job's lease expired before `at` (the partial index of running
/// jobs, no write lock). A lease that expires after this read is taken back next time.
async fn any_expired(db: &Db, at: DateTime<Utc>) -> CoreResult<bool> {
    let running = JobStatus::Running.as_str();
    let rows = db
        .query_all_cross_org(
            CrossOrg::Queue,
            stmt(
                db.db_backend(),
                &format!(
                    "SELECT 1 AS expired FROM jobs
                     WHERE status = '{running}' AND lease_expires_at < $1 LIMIT 1"
                ),
                vec![at.into()],
            ),
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Hands back leases at shutdown: the jobs go back to the queue without using up an
/// attempt (or end `cancelled` if a cancel was asked).
pub async fn release(
    db: &Db,
    worker: &str,
    tokens: &[String],
    at: DateTime<Utc>,
) -> CoreResult<Vec<String>> {
    if tokens.is_empty() {
        return Ok(Vec::new());
    }
    let [queued, running, cancelled] =
        [JobStatus::Queued, JobStatus::Running, JobStatus::Cancelled].map(JobStatus::as_str);
    let tokens = json_param(tokens)?;
    let tx = db.cross_org_tx(CrossOrg::Queue).await?;
    let filter = format!(
        "status = '{running}' AND lease_owner = $3 AND lease_token IN ({})",
        json_array_rows(db.backend(), 4)
    );
    let ids = end_attempts(
        &tx,
        db.db_backend(),
        &filter,
        &format!(
            "status = CASE WHEN cancel_requested THEN '{cancelled}' ELSE '{queued}' END,
             finished_at = CASE WHEN cancel_requested THEN $1 ELSE NULL END,
             max_attempts = CASE WHEN cancel_requested THEN max_attempts ELSE max_attempts + 1 END"
        ),
        vec![
            at.into(),
            error_value(
                JobErrorCode::WorkerShutdown,
                "the worker shut down and handed the job back",
            ),
            worker.to_owned().into(),
            tokens,
        ],
    )
    .await?;
    events::insert_transitions(&tx, &ids, at).await?;
    tx.commit().await?;
    Ok(ids)
}
