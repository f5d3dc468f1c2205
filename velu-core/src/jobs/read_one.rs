//! A job's show and a page of an org's jobs in one statement each (a show with ended
//! attempts in two), where a transaction costs four (`BEGIN`, entering the org, the
//! read, `ROLLBACK`).
//!
//! Each statement enters the org with the principal's [`OrgLookup`] (the rule of
//! `Principal::enter`) and reads in the same statement:
//! * on PostgreSQL through the functions of migration m20261204_000022, bound to the org
//!   for that statement only, so row-level security holds for the read as for any
//!   org-scoped one;
//! * on SQLite as a plain `SELECT` whose org is a scalar subquery with the same lookup
//!   (`org_id = (SELECT id FROM organizations WHERE ...)`). SQLite runs each statement on
//!   a connection's own thread (sqlx): four statements cost four hand-offs to it and
//!   back, which made a show cost 2.4 times a `whoami` (docs/benchmarks-log.md).
//!
//! Only a read that finds what it asked for is answered here; everything else (a scope
//! not held, a malformed name, filters or page the checks refuse, a missing or invisible
//! org or job, an empty page) goes the ordinary way, which enters first and gives the
//! exact answer or error, so both paths answer alike by construction.

use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, QueryResult, Statement, Value};

use super::page_doc::{SQLITE_JOB_DOC, job_of_doc};
use super::read::{checked_list, detail_of, has_ended_attempts, page_of};
use super::{Job, JobDetail, JobFilter};
use crate::entity::{job_attempts, jobs};
use crate::ids::is_uuid;
use crate::pagination::{MAX_PAGE_BYTES, Page, PageQuery, PageRequest};
use crate::principal::Principal;
use crate::scopes::Scope;
use crate::tenancy::{OrgLookup, OrgRef};
use crate::{CoreResult, Velu};

/// Job `id` of org `org` with its attempts as `who` may see it, when one statement finds
/// it; `None` when the ordinary path must answer (see the module).
pub async fn show_job(
    velu: &Velu,
    who: &Principal,
    org: &OrgRef,
    id: &str,
) -> CoreResult<Option<JobDetail>> {
    let conn = velu.db().conn();
    let backend = conn.get_database_backend();
    if !is_uuid(id) {
        return Ok(None);
    }
    let Some(lookup) = who.org_lookup(org, Scope::JobsRead) else {
        return Ok(None);
    };
    let Some(job) = jobs::Entity::find()
        .from_raw_sql(show_statement(backend, lookup, id))
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    // The function matched only an org the principal may see; checked here again, so a
    // change to it can never widen what a principal sees.
    if !who.can_see_org(&job.org_id) {
        return Ok(None);
    }
    let ended = if has_ended_attempts(&job) {
        job_attempts::Entity::find()
            .from_raw_sql(attempts_statement(backend, lookup, id))
            .all(conn)
            .await?
    } else {
        Vec::new()
    };
    detail_of(who, job, ended).map(Some)
}

/// A page of org `org`'s jobs as `who` may list them, when one statement finds some;
/// `None` when the ordinary path must answer (see the module).
pub async fn list_jobs(
    velu: &Velu,
    who: &Principal,
    org: &OrgRef,
    filter: &JobFilter,
    page: &PageRequest,
) -> CoreResult<Option<Page<Job>>> {
    // Filtered by both status and task, a page's scan is bounded ([`MAX_LIST_SCAN`](crate::jobs::MAX_LIST_SCAN)),
    // which takes a read before the page's: the ordinary way reads both.
    if filter.status.is_some() && filter.task.is_some() {
        return Ok(None);
    }
    let conn = velu.db().conn();
    let Some(lookup) = who.org_lookup(org, Scope::JobsRead) else {
        return Ok(None);
    };
    // A cursor is made for one org's id: it can be checked before the read only when the
    // caller named the org by its id.
    let known_id = (lookup.column == "id").then_some(lookup.text);
    let cursor = page.cursor.as_deref().is_some_and(|c| !c.is_empty());
    if cursor && known_id.is_none() {
        return Ok(None);
    }
    // What the checks refuse goes the ordinary way, which enters first: another org with
    // a bad limit is `not_found` there, not `invalid`.
    let Ok((status, q)) = checked_list(known_id.unwrap_or_default(), filter, page) else {
        return Ok(None);
    };
    let wanted = PageFilter {
        status: status.map(|s| s.as_str()),
        task: filter.task.as_deref(),
        before: q.after_one(),
        floor: None,
        limit: i64::try_from(q.fetch()).unwrap_or(i64::MAX),
    };
    let (rows, seen) = read_page(conn, lookup, wanted).await?;
    // An empty page: only the ordinary path tells an org without such jobs from a
    // missing one.
    let Some(org_id) = rows.first().map(|r| r.org_id.clone()) else {
        return Ok(None);
    };
    // The function matched only an org the principal may see, and read its rows only;
    // checked here again, so a change to it can never widen what a principal sees.
    if !who.can_see_org(&org_id)
        || known_id.is_some_and(|id| id != org_id)
        || rows.iter().any(|r| r.org_id != org_id)
    {
        return Ok(None);
    }
    // The next cursor is made for the org's id, known by now.
    let q = match known_id {
        Some(_) => q,
        None => checked_list(&org_id, filter, page)?.1,
    };
    Ok(Some(page_of(&q, rows, seen, None)))
}

/// What a page asks for, checked (`checked_list`).
#[derive(Debug, Clone, Copy)]
pub(super) struct PageFilter<'a> {
    pub status: Option<&'a str>,
    pub task: Option<&'a str>,
    /// Ids before this one (the cursor), newest first.
    pub before: Option<&'a str>,
    /// Ids from this one on: where the scan of a page filtered by both status and task
    /// stops ([`MAX_LIST_SCAN`](crate::jobs::MAX_LIST_SCAN)); read off the status index, never the task one.
    pub floor: Option<&'a str>,
    /// Rows to fetch: the page and one more.
    pub limit: i64,
}

/// The org lookup's arguments: `column` is `id` or `slug`, never the caller's text.
fn lookup_values(lookup: OrgLookup<'_>) -> [Value; 2] {
    [
        lookup.text.into(),
        lookup.visible_to.map(str::to_owned).into(),
    ]
}

/// SQLite's org lookup as a scalar subquery over the two [`lookup_values`] (`?1`, `?2`):
/// the id of the org named by `column`, only if `?2` is null or that id.
fn sqlite_org(lookup: OrgLookup<'_>) -> String {
    debug_assert!(matches!(lookup.column, "id" | "slug"));
    format!(
        "(SELECT o.id FROM organizations o WHERE o.{} = ?1 AND (?2 IS NULL OR o.id = ?2))",
        lookup.column
    )
}

/// The job `id`, only if it is the looked-up org's.
fn show_statement(backend: DbBackend, lookup: OrgLookup<'_>, id: &str) -> Statement {
    let sqlite = format!(
        "SELECT j.* FROM jobs j WHERE j.id = ?3 AND j.org_id = {}",
        sqlite_org(lookup)
    );
    job_statement(backend, lookup, id, sqlite, "velu_show_job")
}

/// The ended attempts of job `id`, oldest first, only if it is the looked-up org's.
fn attempts_statement(backend: DbBackend, lookup: OrgLookup<'_>, id: &str) -> Statement {
    let sqlite = format!(
        "SELECT a.* FROM job_attempts a WHERE a.job_id = ?3 AND EXISTS \
         (SELECT 1 FROM jobs j WHERE j.id = ?3 AND j.org_id = {}) ORDER BY a.attempt",
        sqlite_org(lookup)
    );
    job_statement(backend, lookup, id, sqlite, "velu_show_job_attempts")
}

/// A read of job `id` for the looked-up org: `sqlite` (over `?1`, `?2` of the lookup and
/// `?3`, the job) on SQLite, PostgreSQL's `function` elsewhere.
fn job_statement(
    backend: DbBackend,
    lookup: OrgLookup<'_>,
    id: &str,
    sqlite: String,
    function: &'static str,
) -> Statement {
    let [org, visible_to] = lookup_values(lookup);
    let values = vec![org, visible_to, id.into()];
    match backend {
        DbBackend::Sqlite => Statement::from_sql_and_values(backend, sqlite, values),
        _ => pg_call(function, lookup, values),
    }
}

/// `SELECT * FROM <function>(column, org, visible_to, job)` on PostgreSQL.
fn pg_call(function: &'static str, lookup: OrgLookup<'_>, values: Vec<Value>) -> Statement {
    let mut args: Vec<Value> = vec![lookup.column.into()];
    args.extend(values);
    Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!("SELECT * FROM {function}($1, $2, $3, $4)"),
        args,
    )
}

/// A page of the looked-up org's jobs, newest first, cut at [`MAX_PAGE_BYTES`] of stored
/// documents (see `pagination`), each row with how many rows the scan saw
/// (`listed_seen`, read by [`read_page`]). A first scan reads sizes only and counts the
/// rows the budget keeps; then that many are read whole, on one snapshot. On PostgreSQL
/// through `velu_list_jobs` (migration m20261206_000026, `STABLE` so its two statements
/// share the caller's snapshot: m20261206_000028); on SQLite the filters given and no
/// others, so each combination reads off the index of its filters, as the function's
/// branches do.
///
/// On SQLite each row is one document ([`SQLITE_JOB_DOC`], see `page_doc.rs`) and its
/// `listed_seen`; [`list_rows_statement`] reads the same rows whole.
pub(super) fn list_statement(
    backend: DbBackend,
    lookup: OrgLookup<'_>,
    page: PageFilter<'_>,
) -> Statement {
    let rows = if backend == DbBackend::Sqlite {
        SQLITE_JOB_DOC
    } else {
        "j.*"
    };
    page_statement_selecting(backend, lookup, page, rows)
}

/// [`list_statement`] with whole rows on every backend (`j.*` and `listed_seen`).
fn list_rows_statement(
    backend: DbBackend,
    lookup: OrgLookup<'_>,
    page: PageFilter<'_>,
) -> Statement {
    page_statement_selecting(backend, lookup, page, "j.*")
}

/// [`list_statement`] selecting `columns` of each row (`j`) kept.
fn page_statement_selecting(
    backend: DbBackend,
    lookup: OrgLookup<'_>,
    page: PageFilter<'_>,
    columns: &str,
) -> Statement {
    let [org, visible_to] = lookup_values(lookup);
    if backend != DbBackend::Sqlite && page.floor.is_none() {
        let args: [Value; 8] = [
            lookup.column.into(),
            org,
            visible_to,
            page.status.map(str::to_owned).into(),
            page.task.map(str::to_owned).into(),
            page.before.map(str::to_owned).into(),
            page.limit.into(),
            MAX_PAGE_BYTES.into(),
        ];
        return Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT * FROM velu_list_jobs($1, $2, $3, $4, $5, $6, $7, $8)",
            args,
        );
    }
    // SQLite, and PostgreSQL's page with a floor (read in a transaction already entered,
    // so row-level security holds): the filters given and no others.
    let sqlite = backend == DbBackend::Sqlite;
    let (mark, size_of) = if sqlite {
        ("?", "octet_length")
    } else {
        ("$", "pg_column_size")
    };
    let org_is = if sqlite {
        sqlite_org(lookup)
    } else {
        debug_assert_eq!(
            lookup.column, "id",
            "PostgreSQL reads a floored page by org id"
        );
        "$1 AND ($2::text IS NULL OR j.org_id = $2::text)".to_owned()
    };
    let mut filter = format!("j.org_id = {org_is}");
    let mut values = vec![org, visible_to];
    // With a floor the task is tested row by row on the status index's range: on
    // PostgreSQL an expression, so the planner never takes the task index instead (its
    // range in ids is not bounded by the status's).
    let task_is = if page.floor.is_some() && !sqlite {
        "(j.task || '') ="
    } else {
        "j.task ="
    };
    for (condition, value) in [
        ("j.status =", page.status),
        (task_is, page.task),
        ("j.id <", page.before),
        ("j.id >=", page.floor),
    ] {
        if let Some(v) = value {
            values.push(v.into());
            filter.push_str(&format!(" AND {condition} {mark}{}", values.len()));
        }
    }
    let jobs = if sqlite && page.floor.is_some() {
        "jobs j INDEXED BY ix_jobs_org_status_id"
    } else {
        "jobs j"
    };
    values.push(page.limit.into());
    let limit = values.len();
    values.push(MAX_PAGE_BYTES.into());
    let budget = values.len();
    // The sizes first (materialized once): how many rows the scan saw and how many the
    // budget keeps; then that many rows whole, off the same index.
    let sql = format!(
        "WITH w AS MATERIALIZED ( \
           SELECT count(*) AS seen, \
                  COALESCE(sum(CASE WHEN through - size < {mark}{budget} THEN 1 ELSE 0 END), 0) AS keep \
           FROM ( \
             SELECT s.size, \
                    sum(s.size) OVER (ORDER BY s.id DESC ROWS UNBOUNDED PRECEDING) AS through \
             FROM (SELECT j.id AS id, {size_of}(j.payload) \
                          + COALESCE({size_of}(j.result), 0) \
                          + COALESCE({size_of}(j.error), 0) AS size \
                   FROM {jobs} WHERE {filter} ORDER BY j.id DESC LIMIT {mark}{limit}) s) t) \
         SELECT {columns}, (SELECT seen FROM w) AS listed_seen FROM {jobs} WHERE {filter} \
         ORDER BY j.id DESC LIMIT (SELECT keep FROM w)"
    );
    Statement::from_sql_and_values(backend, sql, values)
}

/// The jobs of a byte-bounded page ([`list_statement`]) and how many rows its scan saw.
/// On SQLite from one document per row; when a document holds a value the rows would
/// read otherwise (`page_doc.rs`), the page is read again as whole rows. PostgreSQL's
/// whole rows are read by position (`pg_rows.rs`). The look-ahead
/// row (`page.limit` is the page and one more) is counted in what the scan saw, never
/// read into a job: only the page's own rows can fail it, as before.
pub(super) async fn read_page<C: ConnectionTrait>(
    conn: &C,
    lookup: OrgLookup<'_>,
    page: PageFilter<'_>,
) -> CoreResult<(Vec<Job>, u64)> {
    let backend = conn.get_database_backend();
    let keep = usize::try_from(page.limit.saturating_sub(1)).unwrap_or(0);
    if backend == DbBackend::Sqlite {
        let rows = conn
            .query_all_raw(list_statement(backend, lookup, page))
            .await?;
        if let Some(read) = jobs_of_documents(&rows, keep)? {
            return Ok(read);
        }
    }
    let rows = conn
        .query_all_raw(list_rows_statement(backend, lookup, page))
        .await?;
    if let Some(read) = super::pg_rows::jobs_of_rows(&rows, keep)? {
        return Ok(read);
    }
    let (models, seen) = PageQuery::rows_and_seen::<jobs::Model>(&rows)?;
    let jobs = models
        .into_iter()
        .take(keep)
        .map(Job::from_model)
        .collect::<CoreResult<_>>()?;
    Ok((jobs, seen))
}

/// The first `keep` jobs of a page read as documents (each row: the document, then
/// `listed_seen`), and how many rows its scan saw; `None` when a document must be read
/// as its row.
fn jobs_of_documents(rows: &[QueryResult], keep: usize) -> CoreResult<Option<(Vec<Job>, u64)>> {
    let seen = match rows.first() {
        Some(row) => row.try_get_by_index::<i64>(1)?,
        None => 0,
    };
    let mut jobs = Vec::with_capacity(rows.len().min(keep));
    for row in rows.iter().take(keep) {
        let doc = row.try_get_by_index::<String>(0)?;
        let Some(job) = job_of_doc(&doc) else {
            return Ok(None);
        };
        jobs.push(job);
    }
    Ok(Some((jobs, u64::try_from(seen).unwrap_or(0))))
}
