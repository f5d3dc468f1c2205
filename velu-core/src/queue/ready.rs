//! Which orgs can run something now: the fair, plan-aware scan the claim loop starts from.

use crate::db::CrossOrg;
use chrono::{DateTime, Utc};

use super::pause::{org_paused_sql, paused_tasks_sql};
use super::pin::{claim_index, running_index};
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
    let scan = scan_statement(db, at, limit, kinds, after)?;
    let rows = db
        .query_all_cross_org_in_index_order(CrossOrg::Queue, scan)
        .await?;
    let mut found = rows
        .iter()
        .map(|r| {
            let pass: i64 = match after {
                Some(_) => r.try_get("", "pass")?,
                None => 0,
            };
            let id: String = r.try_get("", "org_id")?;
            let plan: String = r.try_get("", "plan")?;
            Ok((
                pass,
                ReadyOrg {
                    id,
                    plan: Plan::from_stored(&plan)?,
                },
            ))
        })
        .collect::<CoreResult<Vec<_>>>()?;
    // Each pass comes in id order, the passes in order (a stable sort): the caller's next
    // scan starts after the last org.
    found.sort_by_key(|(pass, _)| *pass);
    Ok(found.into_iter().map(|(_, org)| org).collect())
}

/// The orgs among `ids` that exist, with their current plans, in no particular order: the
/// orgs a wake-up named, made ready to ask (the claim checks pauses, caps and kinds
/// itself). One read by primary key per org, in one round trip.
pub async fn plans_of(db: &Db, ids: &[&str]) -> CoreResult<Vec<ReadyOrg>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = match db.backend() {
        Backend::Postgres => "SELECT jsonb_array_elements_text($1::jsonb)",
        Backend::Sqlite => "SELECT value FROM json_each($1)",
    };
    let ids = serde_json::to_string(ids).map_err(CoreError::internal)?;
    let sql = format!("SELECT id, plan FROM organizations WHERE id IN ({list})");
    let rows = db
        .query_all_cross_org(
            CrossOrg::Queue,
            stmt(db.db_backend(), &sql, vec![ids.into()]),
        )
        .await?;
    rows.iter()
        .map(|r| {
            let plan: String = r.try_get("", "plan")?;
            Ok(ReadyOrg {
                id: r.try_get("", "id")?,
                plan: Plan::from_stored(&plan)?,
            })
        })
        .collect()
}

/// The scan [`ready_orgs`] runs, with its parameters.
fn scan_statement(
    db: &Db,
    at: DateTime<Utc>,
    limit: u64,
    kinds: &KindsByPlan,
    after: Option<&str>,
) -> CoreResult<sea_orm::Statement> {
    let sql = scan_sql(db.backend(), after.is_some());
    let kinds_json = serde_json::to_string(
        &kinds
            .iter()
            .map(|(p, k)| (p.as_str(), k))
            .collect::<std::collections::BTreeMap<_, _>>(),
    )
    .map_err(CoreError::internal)?;
    let values = vec![
        at.into(),
        (limit as i64).into(),
        after.unwrap_or("").to_owned().into(),
        kinds_json.into(),
    ];
    Ok(stmt(db.db_backend(), &sql, values))
}

/// The plan of the scan [`ready_orgs`] would run with these arguments, one line per
/// node, made the way `ready_orgs` runs it (PostgreSQL `EXPLAIN`, SQLite `EXPLAIN QUERY
/// PLAN`): for the tests that check it reads its indexes in order whatever the
/// statistics.
#[doc(hidden)]
pub async fn explain_ready_scan(
    db: &Db,
    at: DateTime<Utc>,
    limit: u64,
    kinds: &KindsByPlan,
    after: Option<&str>,
) -> CoreResult<Vec<String>> {
    let mut scan = scan_statement(db, at, limit, kinds, after)?;
    let (explain, column) = match db.backend() {
        Backend::Postgres => ("EXPLAIN", 0),
        Backend::Sqlite => ("EXPLAIN QUERY PLAN", 3),
    };
    scan.sql = format!("{explain} {}", scan.sql);
    let rows = db
        .query_all_cross_org_in_index_order(CrossOrg::Queue, scan)
        .await?;
    rows.iter()
        .map(|r| Ok(r.try_get_by_index::<String>(column)?))
        .collect()
}

/// The SQL of [`ready_orgs`], wrapping around when it starts `after` an org. One
/// statement for both passes (a round trip saved on every scan that wraps, which is every
/// scan finding fewer ready orgs than `limit`): the orgs after `after`, then, as far as the
/// limit leaves room, those from the start up to `after`.
pub(super) fn scan_sql(backend: Backend, after: bool) -> String {
    if !after {
        return pass_sql(backend, "$3", None);
    }
    format!(
        "SELECT org_id, plan, CAST(0 AS BIGINT) AS pass FROM ({first}) a
         UNION ALL
         SELECT org_id, plan, CAST(1 AS BIGINT) AS pass FROM ({second}) b
         LIMIT $2",
        first = pass_sql(backend, "$3", None),
        second = pass_sql(backend, "''", Some("$3")),
    )
}

/// The SQL of one pass of [`ready_orgs`]: the orgs with ids in `(from, to]` (SQL
/// expressions; without `to`, to the last org), at most `$2` of them. Its parameters:
/// `$1` the time, `$2` the limit, `$4` the kinds by plan (JSON).
fn pass_sql(backend: Backend, from: &str, to: Option<&str>) -> String {
    let plan_kinds = match backend {
        Backend::Postgres => "SELECT jsonb_array_elements_text($4::jsonb -> g.plan)",
        Backend::Sqlite => "SELECT value FROM json_each($4, '$.' || g.plan)",
    };
    let cap = Plan::ALL
        .iter()
        .map(|p| format!("WHEN '{}' THEN {}", p.as_str(), p.limits().concurrent_jobs))
        .collect::<Vec<_>>()
        .join(" ");
    let upper = to
        .map(|to| format!("AND o.org_id <= {to}"))
        .unwrap_or_default();
    let (queued, running) = (JobStatus::Queued.as_str(), JobStatus::Running.as_str());
    // Paused orgs and kinds take no places (`pause.rs`); the claim checks again.
    let (org_paused, paused_tasks) = (org_paused_sql("o.org_id"), paused_tasks_sql());
    // On SQLite each read of `jobs` names its index (`pin.rs`).
    let (by_claim, by_running) = (claim_index(backend), running_index(backend));
    // "Has a job it may run" is a scalar subquery with LIMIT 1, evaluated per org and
    // stopping at the first such job. Written as EXISTS, PostgreSQL turned it into a
    // semi-join that hashed every queued job of the scanned orgs: 11 ms per scan with
    // 20,000 queued, against 0.35 ms this way (docs/benchmarks-log.md).
    format!(
        "WITH RECURSIVE o(org_id) AS (
          SELECT * FROM (SELECT org_id FROM jobs{by_claim} WHERE status = '{queued}' AND run_at <= $1
                         AND org_id > {from} ORDER BY org_id LIMIT 1) first
          UNION ALL
          SELECT (SELECT j.org_id FROM jobs j{by_claim} WHERE j.status = '{queued}' AND j.run_at <= $1
                  AND j.org_id > o.org_id ORDER BY j.org_id LIMIT 1)
          FROM o WHERE o.org_id IS NOT NULL
        )
        SELECT o.org_id, g.plan FROM o JOIN organizations g ON g.id = o.org_id
        WHERE NOT {org_paused}
          AND (CASE g.plan {cap} ELSE 0 END)
                > (SELECT count(*) FROM jobs r{by_running} WHERE r.org_id = o.org_id AND r.status = '{running}')
          AND (SELECT 1 FROM jobs k{by_claim} WHERE k.org_id = o.org_id AND k.status = '{queued}'
                      AND k.run_at <= $1 AND k.task IN ({plan_kinds})
                      AND k.task NOT IN ({paused_tasks}) LIMIT 1) IS NOT NULL
          {upper}
        LIMIT $2"
    )
}
