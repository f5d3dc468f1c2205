//! Reading jobs: list, show (with attempts), stats. Another org's jobs do not exist.

use std::collections::BTreeMap;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;

use super::read_one::{PageFilter, list_statement, read_page};
use super::{Job, JobAttempt, JobDetail, JobStatus};
use crate::db::sql::stmt;
use crate::entity::{job_attempts, jobs};
use crate::ids::is_uuid;
use crate::pagination::{Page, PageQuery, PageRequest};
use crate::principal::Principal;
use crate::scopes::Scope;
use crate::tenancy::{OrgLookup, OrgRef};
use crate::{CoreError, CoreResult, Velu};

/// Filters of `job list`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    /// Only jobs with this status.
    pub status: Option<String>,
    /// Only jobs of this task kind.
    pub task: Option<String>,
}

/// Counts of an org's jobs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobStats {
    /// The org.
    pub org_id: String,
    /// All jobs.
    pub total: u64,
    /// By status (every status present).
    pub by_status: BTreeMap<String, u64>,
    /// By task kind, then status.
    pub by_task: BTreeMap<String, BTreeMap<String, u64>>,
}

/// Most jobs of one status a page filtered by both status and task reads: past it, the
/// page answers what it found (perhaps nothing) with a `next_cursor` after the last job
/// it read. A filter of one kind reads its own index, where every entry matches.
pub const MAX_LIST_SCAN: u64 = 5_000;

/// Lists an org's jobs, newest first. Needs `jobs:read`.
pub async fn list_jobs(
    velu: &Velu,
    who: &Principal,
    org: &OrgRef,
    filter: &JobFilter,
    page: &PageRequest,
) -> CoreResult<Page<Job>> {
    // One statement entering and reading, when it finds jobs.
    if let Some(page) = super::read_one::list_jobs(velu, who, org, filter, page).await? {
        return Ok(page);
    }
    // For what it did not find: the exact answer, or error.
    let tx = velu.db().read_tx().await?;
    let org = who.enter_to_page(&tx, org, Scope::JobsRead).await?;
    list_jobs_in(&tx, org.id(), filter, page).await
}

/// The read of a job list in a transaction already entered into org `org_id` (the
/// ordinary path of [`list_jobs`]); public for the tests that hold the one-statement
/// path (`read_one.rs`) to its answers.
#[doc(hidden)]
pub async fn list_jobs_in<C: ConnectionTrait>(
    conn: &C,
    org_id: &str,
    filter: &JobFilter,
    page: &PageRequest,
) -> CoreResult<Page<Job>> {
    let (status, q) = checked_list(org_id, filter, page)?;
    // The one statement's read, bound by id to the org already entered: both paths cut a
    // page at the same bytes.
    let lookup = OrgLookup {
        column: "id",
        text: org_id,
        visible_to: None,
    };
    let wanted = PageFilter {
        status: status.map(|s| s.as_str()),
        task: filter.task.as_deref(),
        before: q.after_one(),
        floor: None,
        limit: i64::try_from(q.fetch()).unwrap_or(i64::MAX),
    };
    // Filtered by both, the page reads the status's index from the cursor down to the
    // floor at most, testing the task row by row: a rare task among a long history of
    // that status would otherwise take the whole history to answer.
    let floor = match (status, wanted.task) {
        (Some(status), Some(_)) => scan_floor(conn, org_id, status, wanted.before).await?,
        _ => None,
    };
    let wanted = PageFilter {
        floor: floor.as_deref(),
        ..wanted
    };
    let (rows, seen) = read_page(conn, lookup, wanted).await?;
    Ok(page_of(&q, rows, seen, floor))
}

/// Where the scan of a page of org `org_id`'s jobs of `status` filtered by task too
/// stops: the id of the [`MAX_LIST_SCAN`]th such job before `before`, or `None` when
/// fewer remain. Read off `ix_jobs_org_status_id` (on PostgreSQL with table scans and
/// sorts ruled out for the rest of the transaction, which the page's read shares, so no
/// plan made without statistics reads the whole table).
async fn scan_floor<C: ConnectionTrait>(
    conn: &C,
    org_id: &str,
    status: JobStatus,
    before: Option<&str>,
) -> CoreResult<Option<String>> {
    let backend = conn.get_database_backend();
    let sqlite = backend == sea_orm::DbBackend::Sqlite;
    if !sqlite {
        conn.execute_unprepared("SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off")
            .await?;
    }
    let jobs = if sqlite {
        "jobs INDEXED BY ix_jobs_org_status_id"
    } else {
        "jobs"
    };
    let mut values: Vec<sea_orm::Value> = vec![org_id.into(), status.as_str().into()];
    let mut sql = format!("SELECT id FROM {jobs} WHERE org_id = $1 AND status = $2");
    if let Some(before) = before {
        values.push(before.into());
        sql.push_str(" AND id < $3");
    }
    sql.push_str(&format!(
        " ORDER BY id DESC LIMIT 1 OFFSET {}",
        MAX_LIST_SCAN - 1
    ));
    let row = conn.query_one_raw(stmt(backend, &sql, values)).await?;
    Ok(row.map(|r| r.try_get::<String>("", "id")).transpose()?)
}

/// The statement of a page of org `org_id`'s jobs with these filters, as both paths of
/// [`list_jobs`] read it on `backend`: public for the tests that hold its plans.
#[doc(hidden)]
pub fn page_statement(
    backend: sea_orm::DbBackend,
    org_id: &str,
    status: Option<&str>,
    task: Option<&str>,
    before: Option<&str>,
    floor: Option<&str>,
    fetch: i64,
) -> sea_orm::Statement {
    let lookup = OrgLookup {
        column: "id",
        text: org_id,
        visible_to: None,
    };
    let wanted = PageFilter {
        status,
        task,
        before,
        floor,
        limit: fetch,
    };
    list_statement(backend, lookup, wanted)
}

/// A job list's filters and page request of org `org_id`, checked as every path checks
/// them: the task plain text, the status one of the statuses, the limit in range, the
/// cursor made for this org and these filters.
pub(super) fn checked_list(
    org_id: &str,
    filter: &JobFilter,
    page: &PageRequest,
) -> CoreResult<(Option<JobStatus>, PageQuery)> {
    if let Some(t) = &filter.task {
        crate::text::plain("task", t)?;
    }
    let status = filter
        .status
        .as_deref()
        .map(|s| JobStatus::parse_field("status", s))
        .transpose()?;
    let q = page.validate(
        "jobs",
        &format!(
            "{}|{}|{}",
            org_id,
            filter.status.as_deref().unwrap_or(""),
            filter.task.as_deref().unwrap_or("")
        ),
    )?;
    Ok((status, q))
}

/// The page of the `rows` a byte-bounded read kept (newest first) out of the `seen` its
/// scan saw, which stopped at `floor` when it was bounded (see
/// `PageQuery::finish_scanned`).
pub(super) fn page_of(
    q: &PageQuery,
    rows: Vec<Job>,
    seen: u64,
    floor: Option<String>,
) -> Page<Job> {
    let floor = floor.map(|id| vec![id]);
    q.finish_scanned(rows, seen, floor, |r| vec![r.id.clone()], |job| job)
}

/// Finds one of the org's jobs, or `not_found` (also for malformed ids and other orgs').
pub(crate) async fn find_job<C: ConnectionTrait>(
    conn: &C,
    org_id: &str,
    id: &str,
) -> CoreResult<jobs::Model> {
    let not_found = || CoreError::not_found("job", id);
    if !is_uuid(id) {
        return Err(not_found());
    }
    jobs::Entity::find_by_id(id.to_owned())
        .filter(jobs::Column::OrgId.eq(org_id))
        .one(conn)
        .await?
        .ok_or_else(not_found)
}

/// Shows a job with its attempts. Needs `jobs:read`.
pub async fn show_job(
    velu: &Velu,
    who: &Principal,
    org: &OrgRef,
    id: &str,
) -> CoreResult<JobDetail> {
    // One statement entering and reading, when it finds the job.
    if let Some(detail) = super::read_one::show_job(velu, who, org, id).await? {
        return Ok(detail);
    }
    // For what it did not find: the exact answer, or error.
    let tx = velu.db().read_tx().await?;
    let org = who.enter(&tx, org, Scope::JobsRead).await?;
    show_job_in(&tx, who, org.id(), id).await
}

/// The read of a show in a transaction already entered into org `org_id` (the ordinary
/// path of [`show_job`]); public for the tests that hold the one-statement path
/// (`read_one.rs`) to its answers.
#[doc(hidden)]
pub async fn show_job_in<C: ConnectionTrait>(
    conn: &C,
    who: &Principal,
    org_id: &str,
    id: &str,
) -> CoreResult<JobDetail> {
    let job = find_job(conn, org_id, id).await?;
    job_detail(conn, who, job).await
}

/// The document of a job with its attempts, oldest first, as `who` may see it: org keys
/// do not see `worker_id` (it names a host and a process of the platform, `host:pid` by
/// default); the operator and platform keys do.
pub(crate) async fn job_detail<C: ConnectionTrait>(
    conn: &C,
    who: &Principal,
    job: jobs::Model,
) -> CoreResult<JobDetail> {
    let ended = if has_ended_attempts(&job) {
        job_attempts::Entity::find()
            .filter(job_attempts::Column::JobId.eq(job.id.as_str()))
            .order_by_asc(job_attempts::Column::Attempt)
            .all(conn)
            .await?
    } else {
        Vec::new()
    };
    detail_of(who, job, ended)
}

/// Has `job` an ended attempt, a row in `job_attempts`? The attempt in progress lives on
/// the job's row; each ended attempt has its row, appended when it ended (migration
/// m20261203_000018). A job's attempt count grows by one per claim, so a job with no
/// ended attempt (never claimed, or on its first attempt) has no history to read: one
/// statement fewer for its show.
pub(super) fn has_ended_attempts(job: &jobs::Model) -> bool {
    ended_attempts(job) > 0
}

/// How many of `job`'s attempts had ended when its row was read: all but the one in
/// progress, if any.
fn ended_attempts(job: &jobs::Model) -> i32 {
    job.attempts - i32::from(in_progress(job).is_some())
}

/// The document of `job` with its `ended` attempts (oldest first), as `who` may see it
/// (see [`job_detail`]). Only the attempts that had ended when `job` was read are kept:
/// read outside one transaction (`read_one.rs`), the attempts may be newer than the row,
/// and the attempt in progress on the row may have ended since.
pub(super) fn detail_of(
    who: &Principal,
    job: jobs::Model,
    ended: Vec<job_attempts::Model>,
) -> CoreResult<JobDetail> {
    let ended_by_then = ended_attempts(&job);
    let mut history: Vec<JobAttempt> = ended
        .into_iter()
        .filter(|a| a.attempt <= ended_by_then)
        .map(JobAttempt::from_model)
        .collect::<CoreResult<_>>()?;
    history.extend(in_progress(&job));
    if who.org_id.is_some() {
        for attempt in &mut history {
            attempt.worker_id = None;
        }
    }
    Ok(JobDetail {
        job: Job::from_model(job)?,
        history,
    })
}

/// The attempt a running job is on, from its row: no outcome yet.
fn in_progress(job: &jobs::Model) -> Option<JobAttempt> {
    if job.status != JobStatus::Running.as_str() {
        return None;
    }
    Some(JobAttempt {
        attempt: job.attempts,
        worker_id: job.lease_owner.clone(),
        started_at: job.lease_started_at?.into(),
        finished_at: None,
        outcome: None,
        error: None,
    })
}

/// Counts an org's jobs by status and by task, from the job counters (`jobs/counts.rs`):
/// its cost does not grow with history. Needs `jobs:read`.
pub async fn job_stats(velu: &Velu, who: &Principal, org: &OrgRef) -> CoreResult<JobStats> {
    let tx = velu.db().read_tx().await?;
    let conn = &tx;
    let org = who.enter(&tx, org, Scope::JobsRead).await?;
    let rows = super::counts::by_task_and_status(conn, org.id()).await?;
    let zero = || {
        JobStatus::ALL
            .iter()
            .map(|s| (s.as_str().to_owned(), 0u64))
            .collect::<BTreeMap<_, _>>()
    };
    let mut stats = JobStats {
        org_id: org.id().to_owned(),
        total: 0,
        by_status: zero(),
        by_task: BTreeMap::new(),
    };
    for (task, status, n) in rows {
        let status = JobStatus::from_stored(&status)?.as_str().to_owned();
        stats.total += n;
        *stats.by_status.entry(status.clone()).or_default() += n;
        *stats
            .by_task
            .entry(task)
            .or_insert_with(zero)
            .entry(status)
            .or_default() += n;
    }
    Ok(stats)
}
