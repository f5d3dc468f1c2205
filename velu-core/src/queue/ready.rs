//! Which orgs can run something now: the fair, plan-aware scan the claim loop starts from.

use crate::db::CrossOrg;
use chrono::{DateTime, Utc};

use super::pause::{org_paused_sql, paused_tasks_sql};
use super::types::{KindsByPlan, ReadyOrg};
use crate::db::sql::stmt;
use crate::db::{Backend, Db};
use crate::jobs::JobStatus;
use crate::plans::Plan;
use crate::{CoreError, CoreResult};

/// Orgs that can run something now, at most `limit`: not paused, a job ready now of a kind
/// the worker serves, the org's plan allows (`kinds`, by plan) and no pause holds, and room
/// under the plan's concurrency limit. Orgs that cannot run (paused, downgraded, at their
/// cap, only kinds nobody here serves or that are paused) take no places. The scan goes in id order from just after `after`,
/// wrapping around to the start, so successive calls rotate through every org however
/// many there are. Each step is a loose index scan: its cost grows with the number of
/// orgs passed over, not with the number of jobs.
pub async fn ready_orgs(
    db: &Db,
    at: DateTime<Utc>,
    limit: u64,
    kinds: &KindsByPlan,
    after: Option<&str>,
) -> CoreResult<Vec<ReadyOrg>> {
    let mut found = scan_ready_orgs(db, at, limit, kinds, after.unwrap_or(""), None).await?;
    if let Some(after) = after
        && (found.len() as u64) < limit
    {
        let left = limit - found.len() as u64;
        found.extend(scan_ready_orgs(db, at, left, kinds, "", Some(after)).await?);
    }
    Ok(found)
}

/// One pass of [`ready_orgs`]: orgs with ids in `(from_exclusive, to_inclusive]`.
async fn scan_ready_orgs(
    db: &Db,
    at: DateTime<Utc>,
    limit: u64,
    kinds: &KindsByPlan,
    from_exclusive: &str,
    to_inclusive: Option<&str>,
) -> CoreResult<Vec<ReadyOrg>> {
    let plan_kinds = match db.backend() {
        Backend::Postgres => "SELECT jsonb_array_elements_text($4::jsonb -> g.plan)",
        Backend::Sqlite => "SELECT value FROM json_each($4, '$.' || g.plan)",
    };
    let cap = Plan::ALL
        .iter()
        .map(|p| format!("WHEN '{}' THEN {}", p.as_str(), p.limits().concurrent_jobs))
        .collect::<Vec<_>>()
        .join(" ");
    let upper = if to_inclusive.is_some() {
        "AND o.org_id <= $5"
    } else {
        ""
    };
    let (queued, running) = (JobStatus::Queued.as_str(), JobStatus::Running.as_str());
    // Paused orgs and kinds take no places (`pause.rs`); the claim checks again.
    let (org_paused, paused_tasks) = (org_paused_sql("o.org_id"), paused_tasks_sql());
    // "Has a job it may run" is a scalar subquery with LIMIT 1, evaluated per org and
    // stopping at the first such job. Written as EXISTS, PostgreSQL turned it into a
    // semi-join that hashed every queued job of the scanned orgs: 11 ms per scan with
    // 20,000 queued, against 0.35 ms this way (docs/benchmarks.md).
    let sql = format!(
        "WITH RECURSIVE o(org_id) AS (
          SELECT * FROM (SELECT org_id FROM jobs WHERE status = '{queued}' AND run_at <= $1
                         AND org_id > $3 ORDER BY org_id LIMIT 1) first
          UNION ALL
          SELECT (SELECT j.org_id FROM jobs j WHERE j.status = '{queued}' AND j.run_at <= $1
                  AND j.org_id > o.org_id ORDER BY j.org_id LIMIT 1)
          FROM o WHERE o.org_id IS NOT NULL
        )
        SELECT o.org_id, g.plan FROM o JOIN organizations g ON g.id = o.org_id
        WHERE NOT {org_paused}
          AND (CASE g.plan {cap} ELSE 0 END)
                > (SELECT count(*) FROM jobs r WHERE r.org_id = o.org_id AND r.status = '{running}')
          AND (SELECT 1 FROM jobs k WHERE k.org_id = o.org_id AND k.status = '{queued}'
                      AND k.run_at <= $1 AND k.task IN ({plan_kinds})
                      AND k.task NOT IN ({paused_tasks}) LIMIT 1) IS NOT NULL
          {upper}
        LIMIT $2"
    );
    let kinds_json = serde_json::to_string(
        &kinds
            .iter()
            .map(|(p, k)| (p.as_str(), k))
            .collect::<std::collections::BTreeMap<_, _>>(),
    )
    .map_err(CoreError::internal)?;
    let mut values = vec![
        at.into(),
        (limit as i64).into(),
        from_exclusive.to_owned().into(),
        kinds_json.into(),
    ];
    if let Some(to) = to_inclusive {
        values.push(to.to_owned().into());
    }
    let rows = db
        .query_all_cross_org(CrossOrg::Queue, stmt(db.db_backend(), &sql, values))
        .await?;
    rows.iter()
        .map(|r| {
            let id: String = r.try_get("", "org_id")?;
            let plan: String = r.try_get("", "plan")?;
            Ok(ReadyOrg {
                id,
                plan: Plan::from_stored(&plan)?,
            })
        })
        .collect()
}
