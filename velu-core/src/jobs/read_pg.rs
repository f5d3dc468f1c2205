//! PostgreSQL: a job's show and a page of an org's jobs in one round trip each (a show
//! with ended attempts in two), through the functions of migration m20261204_000022,
//! where a transaction costs four (`BEGIN`, entering the org, the read, `ROLLBACK`).
//!
//! Each function enters the org with the principal's [`OrgLookup`] (the rule of
//! `Principal::enter`) and reads in the same statement, bound to the org for that
//! statement only: row-level security holds for the read as for any org-scoped one. Only
//! a read that finds what it asked for is answered here; everything else (SQLite, a scope
//! not held, a malformed name, filters or page the checks refuse, a missing or invisible
//! org or job, an empty page) goes the ordinary way, which enters first and gives the
//! exact answer or error, so both paths answer alike by construction.

use sea_orm::{DbBackend, EntityTrait, Statement, Value};

use super::read::{checked_list, detail_of, has_ended_attempts, page_of};
use super::{Job, JobDetail, JobFilter};
use crate::entity::{job_attempts, jobs};
use crate::ids::is_uuid;
use crate::pagination::{Page, PageRequest};
use crate::principal::Principal;
use crate::scopes::Scope;
use crate::tenancy::{OrgLookup, OrgRef};
use crate::{CoreResult, Velu};

/// Job `id` of org `org` with its attempts as `who` may see it, when PostgreSQL finds it
/// in one statement; `None` when the ordinary path must answer (see the module).
pub(super) async fn show_job(
    velu: &Velu,
    who: &Principal,
    org: &OrgRef,
    id: &str,
) -> CoreResult<Option<JobDetail>> {
    let conn = velu.db().conn();
    if conn.get_database_backend() != DbBackend::Postgres || !is_uuid(id) {
        return Ok(None);
    }
    let Some(lookup) = who.org_lookup(org, Scope::JobsRead) else {
        return Ok(None);
    };
    let Some(job) = jobs::Entity::find()
        .from_raw_sql(call("velu_show_job", lookup, id))
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
            .from_raw_sql(call("velu_show_job_attempts", lookup, id))
            .all(conn)
            .await?
    } else {
        Vec::new()
    };
    detail_of(who, job, ended).map(Some)
}

/// A page of org `org`'s jobs as `who` may list them, when PostgreSQL finds some in one
/// statement; `None` when the ordinary path must answer (see the module).
pub(super) async fn list_jobs(
    velu: &Velu,
    who: &Principal,
    org: &OrgRef,
    filter: &JobFilter,
    page: &PageRequest,
) -> CoreResult<Option<Page<Job>>> {
    let conn = velu.db().conn();
    if conn.get_database_backend() != DbBackend::Postgres {
        return Ok(None);
    }
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
    let args: [Value; 7] = [
        lookup.column.into(),
        lookup.text.into(),
        lookup.visible_to.map(str::to_owned).into(),
        status.map(|s| s.as_str().to_owned()).into(),
        filter.task.clone().into(),
        q.after_one().map(str::to_owned).into(),
        i64::try_from(q.fetch()).unwrap_or(i64::MAX).into(),
    ];
    let rows = jobs::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT * FROM velu_list_jobs($1, $2, $3, $4, $5, $6, $7)",
            args,
        ))
        .all(conn)
        .await?;
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
    page_of(&q, rows).map(Some)
}

/// `SELECT * FROM <function>(column, org, visible_to, job)`.
fn call(function: &'static str, lookup: OrgLookup<'_>, id: &str) -> Statement {
    let args: [Value; 4] = [
        lookup.column.into(),
        lookup.text.into(),
        lookup.visible_to.map(str::to_owned).into(),
        id.into(),
    ];
    Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!("SELECT * FROM {function}($1, $2, $3, $4)"),
        args,
    )
}
