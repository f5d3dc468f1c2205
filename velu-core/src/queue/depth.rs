//! How deep the queue is: unfinished jobs counted by status and by their org's plan, for
//! the metrics scrape (`metrics::queue`).

use crate::db::CrossOrg;

use crate::CoreResult;
use crate::db::Db;
use crate::db::sql::stmt;
use crate::jobs::JobStatus;
use crate::plans::Plan;

/// The statuses [`depth`] counts: the unfinished ones. Finished jobs are history that only
/// grows; their rate is the worker's outcome counters.
pub const DEPTH_STATUSES: [JobStatus; 2] = [JobStatus::Queued, JobStatus::Running];

/// Jobs per (status, plan) for every status of [`DEPTH_STATUSES`], in one statement, from
/// the job counters (`job_counts`, kept by triggers on `jobs`): its cost grows with the
/// number of orgs and task kinds that have counters, not with the backlog or the history.
/// Pairs with no jobs are absent.
pub async fn depth(db: &Db) -> CoreResult<Vec<(JobStatus, Plan, u64)>> {
    let statuses = DEPTH_STATUSES
        .map(|s| format!("'{}'", s.as_str()))
        .join(", ");
    let sql = format!(
        "SELECT c.status AS status, o.plan AS plan, CAST(SUM(c.n) AS BIGINT) AS n
         FROM job_counts c JOIN organizations o ON o.id = c.org_id
         WHERE c.status IN ({statuses}) GROUP BY c.status, o.plan HAVING SUM(c.n) > 0"
    );
    let rows = db
        .query_all_cross_org(CrossOrg::Metrics, stmt(db.db_backend(), &sql, Vec::new()))
        .await?;
    rows.iter()
        .map(|r| {
            let status: String = r.try_get("", "status")?;
            let plan: String = r.try_get("", "plan")?;
            let n: i64 = r.try_get("", "n")?;
            Ok((
                JobStatus::from_stored(&status)?,
                Plan::from_stored(&plan)?,
                u64::try_from(n).unwrap_or(0),
            ))
        })
        .collect()
}
