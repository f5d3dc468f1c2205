//! How deep the queue is: unfinished jobs counted by status and by their org's plan, for
//! the metrics scrape (`metrics::queue`).

use sea_orm::ConnectionTrait;

use crate::CoreResult;
use crate::db::Db;
use crate::db::sql::stmt;
use crate::jobs::JobStatus;
use crate::plans::Plan;

/// The statuses [`depth`] counts: the unfinished ones. Finished jobs are history that only
/// grows; their rate is the worker's outcome counters.
pub const DEPTH_STATUSES: [JobStatus; 2] = [JobStatus::Queued, JobStatus::Running];

/// Jobs per (status, plan) for every status of [`DEPTH_STATUSES`], in one statement. Each
/// half matches a partial index of the jobs table (`status = 'queued'` and
/// `status = 'running'`), so finished history is never read. Pairs with no jobs are absent.
pub async fn depth(db: &Db) -> CoreResult<Vec<(JobStatus, Plan, u64)>> {
    let part = |status: JobStatus| {
        format!(
            "SELECT '{s}' AS status, o.plan AS plan, count(*) AS n
             FROM jobs j JOIN organizations o ON o.id = j.org_id
             WHERE j.status = '{s}' GROUP BY o.plan",
            s = status.as_str()
        )
    };
    let sql = DEPTH_STATUSES.map(part).join(" UNION ALL ");
    let rows = db
        .conn()
        .query_all_raw(stmt(db.db_backend(), &sql, Vec::new()))
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
