//! Reading the job counters (`job_counts`, kept by triggers on `jobs`): the queued-jobs
//! quota and `job stats` read a handful of counter rows per org, never the job history.

use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};

use super::JobStatus;
use crate::CoreResult;
use crate::entity::job_counts;

/// How many of `org_id`'s jobs are queued now.
pub(crate) async fn queued<C: ConnectionTrait>(conn: &C, org_id: &str) -> CoreResult<u64> {
    in_status(conn, org_id, JobStatus::Queued).await
}

/// How many of `org_id`'s jobs are in `status` now, from its counter rows (a handful,
/// however many jobs).
pub(crate) async fn in_status<C: ConnectionTrait>(
    conn: &C,
    org_id: &str,
    status: JobStatus,
) -> CoreResult<u64> {
    let n: Option<i64> = job_counts::Entity::find()
        .select_only()
        .column_as(sum_n(), "n")
        .filter(job_counts::Column::OrgId.eq(org_id))
        .filter(job_counts::Column::Status.eq(status.as_str()))
        .into_tuple::<Option<i64>>()
        .one(conn)
        .await?
        .flatten();
    Ok(n.unwrap_or(0).max(0) as u64)
}

/// `org_id`'s jobs by task kind and status, as `(task, status, n)` with `n > 0`.
pub(crate) async fn by_task_and_status<C: ConnectionTrait>(
    conn: &C,
    org_id: &str,
) -> CoreResult<Vec<(String, String, u64)>> {
    let rows: Vec<(String, String, Option<i64>)> = job_counts::Entity::find()
        .select_only()
        .column(job_counts::Column::Task)
        .column(job_counts::Column::Status)
        .column_as(sum_n(), "n")
        .filter(job_counts::Column::OrgId.eq(org_id))
        .group_by(job_counts::Column::Task)
        .group_by(job_counts::Column::Status)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(task, status, n)| {
            let n = n.unwrap_or(0);
            (n > 0).then_some((task, status, n as u64))
        })
        .collect())
}

/// How many jobs are queued now for each of `orgs` (an org with none is absent): the
/// counter rows of all of them in one query, for a grouped submit.
pub(crate) async fn queued_many<C: ConnectionTrait>(
    conn: &C,
    orgs: &[&str],
) -> CoreResult<std::collections::HashMap<String, u64>> {
    let rows: Vec<(String, Option<i64>)> = job_counts::Entity::find()
        .select_only()
        .column(job_counts::Column::OrgId)
        .column_as(sum_n(), "n")
        .filter(job_counts::Column::OrgId.is_in(orgs.iter().copied()))
        .filter(job_counts::Column::Status.eq(JobStatus::Queued.as_str()))
        .group_by(job_counts::Column::OrgId)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(org, n)| (org, n.unwrap_or(0).max(0) as u64))
        .collect())
}

/// `sum(n)` as a bigint on both backends (PostgreSQL's sum of bigints is a numeric).
fn sum_n() -> SimpleExpr {
    Expr::cust("CAST(SUM(n) AS BIGINT)")
}
