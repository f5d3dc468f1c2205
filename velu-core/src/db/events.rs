//! The statements that append to `job_events`, each meant to ride inside the transaction
//! (or the statement) that makes the transition it records: one `INSERT` per transition,
//! never an extra round trip of its own where a statement already exists (see
//! docs/events.md). Every writer holds the job's row lock, or is the transaction that
//! creates the job, when it inserts: so along one job, `seq` grows in commit order.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, Value as DbValue};

use super::Backend;
use super::sql::{json_array_rows, json_param, stmt};
use crate::CoreResult;
use crate::events::{EventKind, MAX_EVENTS_PER_JOB};
use crate::jobs::JobStatus;

/// Rows per `INSERT` of a batch's `queued` events (as `db::batch`).
const CHUNK: usize = 5_000;

/// One event written from explicit values (submit, schedule, steer).
#[derive(Debug, Clone)]
pub(crate) struct NewEvent<'a> {
    /// The job.
    pub job_id: &'a str,
    /// Its org.
    pub org_id: &'a str,
    /// What happened.
    pub kind: EventKind,
    /// When.
    pub at: DateTime<Utc>,
    /// The job's status after it, when the kind says one (`ended`).
    pub status: Option<JobStatus>,
    /// The job error code, when the kind carries one.
    pub error_code: Option<&'a str>,
    /// `via` of `queued`.
    pub detail: Option<&'a str>,
}

/// Inserts one event.
pub(crate) async fn insert_one<C: ConnectionTrait>(conn: &C, e: &NewEvent<'_>) -> CoreResult<()> {
    let sql = "INSERT INTO job_events (job_id, org_id, kind, at, status, error_code, detail)
               VALUES ($1, $2, $3, $4, $5, $6, $7)";
    conn.execute_raw(stmt(
        conn.get_database_backend(),
        sql,
        vec![
            e.job_id.to_owned().into(),
            e.org_id.to_owned().into(),
            e.kind.as_str().to_owned().into(),
            e.at.into(),
            e.status.map(|s| s.as_str().to_owned()).into(),
            e.error_code.map(str::to_owned).into(),
            e.detail.map(str::to_owned).into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Inserts a `queued` event (with `via` in `detail`) for each of `ids`, jobs of `org_id`
/// just created in this transaction: one statement per chunk.
pub(crate) async fn insert_queued_batch<C: ConnectionTrait>(
    conn: &C,
    org_id: &str,
    ids: &[String],
    via: &str,
    at: DateTime<Utc>,
) -> CoreResult<()> {
    let backend = conn.get_database_backend();
    let (id, rows) = match of(backend) {
        Backend::Postgres => ("s.id", "jsonb_array_elements_text($1::jsonb) AS s(id)"),
        Backend::Sqlite => ("s.value", "json_each($1) AS s"),
    };
    let sql = format!(
        "INSERT INTO job_events (job_id, org_id, kind, at, detail)
         SELECT {id}, $2, '{queued}', $3, $4 FROM {rows}",
        queued = EventKind::Queued.as_str(),
    );
    for chunk in ids.chunks(CHUNK) {
        conn.execute_raw(stmt(
            backend,
            &sql,
            vec![
                json_param(chunk)?,
                org_id.to_owned().into(),
                at.into(),
                via.to_owned().into(),
            ],
        ))
        .await?;
    }
    Ok(())
}

/// Inserts the `queued` events of jobs of several orgs, `(job id, org id)` each, all
/// queued `via` at `at` (a grouped submit): one statement per chunk.
pub(crate) async fn insert_queued_many<C: ConnectionTrait>(
    conn: &C,
    jobs: &[(&str, &str)],
    via: &str,
    at: DateTime<Utc>,
) -> CoreResult<()> {
    #[derive(serde::Serialize)]
    struct Row<'a> {
        id: &'a str,
        org_id: &'a str,
    }
    let backend = conn.get_database_backend();
    let source = super::sql::json_records(
        backend,
        1,
        &[
            ("id", super::sql::JsonField::Text),
            ("org_id", super::sql::JsonField::Text),
        ],
    );
    let sql = format!(
        "INSERT INTO job_events (job_id, org_id, kind, at, detail)
         SELECT s.id, s.org_id, '{queued}', $2, $3 FROM ({source}) AS s",
        queued = EventKind::Queued.as_str(),
    );
    let rows: Vec<Row> = jobs.iter().map(|(id, org_id)| Row { id, org_id }).collect();
    for chunk in rows.chunks(CHUNK) {
        conn.execute_raw(stmt(
            backend,
            &sql,
            vec![json_param(chunk)?, at.into(), via.to_owned().into()],
        ))
        .await?;
    }
    Ok(())
}

/// The backend of a sea-orm statement, as `db::Backend`.
fn of(backend: DbBackend) -> Backend {
    Backend::of(backend)
}

/// The job error code inside the stored `error` document of alias `j`.
fn error_code(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "j.error ->> 'code'",
        Backend::Sqlite => "j.error ->> '$.code'",
    }
}

/// `INSERT` of the events of attempts that just ended, from `source` (rows of `jobs` as
/// they are after the update, aliased `j`, with `id, org_id, attempts, status, run_at,
/// error`): `retrying` for a job queued again (its error code and next `run_at`), `ended`
/// otherwise (its status and error code). `$at` is the parameter holding the time.
pub(crate) fn transitions_sql(backend: Backend, source: &str, at: usize) -> String {
    let queued = JobStatus::Queued.as_str();
    format!(
        "INSERT INTO job_events (job_id, org_id, kind, at, attempt, status, error_code, run_at)
         SELECT j.id, j.org_id,
           CASE WHEN j.status = '{queued}' THEN '{retrying}' ELSE '{ended}' END,
           ${at}, j.attempts, j.status, {code},
           CASE WHEN j.status = '{queued}' THEN j.run_at END
         FROM {source}",
        retrying = EventKind::Retrying.as_str(),
        ended = EventKind::Ended.as_str(),
        code = error_code(backend),
    )
}

/// Inserts the transition events ([`transitions_sql`]) of jobs `ids` as this transaction
/// sees them now (just updated by it, so locked by it).
pub(crate) async fn insert_transitions<C: ConnectionTrait>(
    conn: &C,
    ids: &[String],
    at: DateTime<Utc>,
) -> CoreResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let backend = conn.get_database_backend();
    let source = format!("jobs j WHERE j.id IN ({})", json_array_rows(of(backend), 1));
    let sql = transitions_sql(of(backend), &source, 2);
    conn.execute_raw(stmt(backend, &sql, vec![json_param(ids)?, at.into()]))
        .await?;
    Ok(())
}

/// `INSERT` of `claimed` events from `source` (claimed rows of `jobs` aliased `c`, with
/// `id, org_id, attempts`); `$at` holds the time, `$worker` the worker id.
pub(crate) fn claimed_sql(source: &str, at: usize, worker: usize) -> String {
    format!(
        "INSERT INTO job_events (job_id, org_id, kind, at, attempt, worker_id)
         SELECT c.id, c.org_id, '{claimed}', ${at}, c.attempts, ${worker} FROM {source}",
        claimed = EventKind::Claimed.as_str(),
    )
}

/// The fields of one progress record of a heartbeat's JSON parameter.
pub(crate) const PROGRESS_FIELDS: [(&str, super::sql::JsonField); 3] = [
    ("token", super::sql::JsonField::Text),
    ("n", super::sql::JsonField::Int),
    ("line", super::sql::JsonField::Text),
];

/// How many events job `h.id` has, counted no further than the cap (the lifecycle events
/// are kept past it, so a stream may hold more), read on the `(job_id, seq)` index: the
/// cap's check costs at most [`MAX_EVENTS_PER_JOB`] index entries however long the stream.
fn count_of_h() -> String {
    format!(
        "(SELECT count(*) FROM (SELECT 1 FROM job_events x WHERE x.job_id = h.id
                                LIMIT {MAX_EVENTS_PER_JOB}) AS c)"
    )
}

/// `INSERT` of a heartbeat's progress lines: `h` is the held leases (`id, org_id,
/// attempts, lease_token`), `$progress` the JSON records (`token, n, line`; `n` counts
/// from 0 per job), `$at` the time. A job whose stream holds [`MAX_EVENTS_PER_JOB`]
/// events gets no more lines.
pub(crate) fn progress_sql(backend: Backend, h: &str, progress: usize, at: usize) -> String {
    let records = super::sql::json_records(
        match backend {
            Backend::Postgres => DbBackend::Postgres,
            Backend::Sqlite => DbBackend::Sqlite,
        },
        progress,
        &PROGRESS_FIELDS,
    );
    // Each held job's count once, not once per line: the fence (an `OFFSET` the planners
    // do not flatten through) keeps the count with the job's row.
    let fence = match backend {
        Backend::Postgres => "OFFSET 0",
        Backend::Sqlite => "LIMIT -1 OFFSET 0",
    };
    format!(
        "INSERT INTO job_events (job_id, org_id, kind, at, attempt, detail)
         SELECT h.id, h.org_id, '{kind}', ${at}, h.attempts, p.line
         FROM (SELECT h.id, h.org_id, h.attempts, h.lease_token, {count} AS events
               FROM {h} {fence}) AS h
         JOIN ({records}) AS p ON p.token = h.lease_token
         WHERE p.n + h.events < {MAX_EVENTS_PER_JOB}
         ORDER BY h.id, p.n",
        kind = EventKind::Progress.as_str(),
        count = count_of_h(),
    )
}

/// `INSERT` of coalesced `heartbeat` events: one for each held lease of `h` whose stream
/// has been quiet since `$cutoff` (its newest event is older), while under the cap.
/// `$worker` is the lease owner.
pub(crate) fn heartbeat_sql(h: &str, at: usize, worker: usize, cutoff: usize) -> String {
    format!(
        "INSERT INTO job_events (job_id, org_id, kind, at, attempt, worker_id)
         SELECT h.id, h.org_id, '{kind}', ${at}, h.attempts, ${worker} FROM {h}
         WHERE COALESCE((SELECT x.at FROM job_events x WHERE x.job_id = h.id
                         ORDER BY x.seq DESC LIMIT 1), ${cutoff}) <= ${cutoff}
           AND {count} < {MAX_EVENTS_PER_JOB}",
        kind = EventKind::Heartbeat.as_str(),
        count = count_of_h(),
    )
}

/// A `DbValue` for the cutoff of [`heartbeat_sql`].
pub(crate) fn cutoff(at: DateTime<Utc>) -> DbValue {
    let every = chrono::Duration::from_std(crate::events::HEARTBEAT_EVENT_EVERY)
        .unwrap_or(chrono::Duration::seconds(60));
    (at - every).into()
}
