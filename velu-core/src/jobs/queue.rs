//! The durable queue, as the worker uses it: claim, heartbeat, finish, reclaim, release.
//!
//! Ownership is a lease: claiming a job gives it a fresh random `lease_token` (the fencing
//! token of that attempt) and an expiry the owner renews by heartbeat. Every write a
//! worker makes about a job names the token, so a worker whose lease expired and was
//! reclaimed can never overwrite the new owner's work.
//!
//! Claiming respects the org's plan: at most `concurrent_jobs` running per org, and only
//! task kinds the plan allows. Claims for one org are serialized (an advisory lock inside
//! the `velu_claim_jobs` function on PostgreSQL, the write lock on SQLite) so two workers
//! cannot both take the last slot. Rows are picked with `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL; SQLite has one writer.
//!
//! Hot-path statements are SQL written per backend, batched through a JSON parameter
//! (`jsonb_to_recordset` / `json_each`), so a batch of N jobs costs one statement.

use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use regex::Regex;
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, FromQueryResult, Statement, Value as DbValue,
};
use serde::Serialize;
use serde_json::Value;

use super::JobError;
use crate::{CoreError, CoreResult};
use crate::db::{Backend, Db};
use crate::entity::jobs;
use crate::plans::Plan;

/// A job a worker now owns.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    /// Job id.
    pub id: String,
    /// Its org.
    pub org_id: String,
    /// Task kind.
    pub task: String,
    /// The payload.
    pub payload: Value,
    /// This attempt's number.
    pub attempt: i32,
    /// The attempt budget.
    pub max_attempts: i32,
    /// The fencing token of this attempt.
    pub token: String,
}

/// An org with jobs ready to run, and its plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyOrg {
    /// Org id.
    pub id: String,
    /// Its current plan.
    pub plan: Plan,
}

/// How an attempt ended, as the worker reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Finish {
    /// Job id.
    pub id: String,
    /// The attempt's fencing token.
    pub token: String,
    /// The job's next status: `succeeded`, `failed`, `cancelled`, or `queued` for a retry.
    pub status: &'static str,
    /// The attempt's outcome: `succeeded`, `failed`, `timed_out` or `cancelled`.
    pub outcome: &'static str,
    /// The result, when succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The error, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    /// When to retry (`queued` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_at: Option<String>,
    /// Whether the job is done for good.
    pub finished: bool,
}

/// A lease the owner still holds after a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Job id.
    pub id: String,
    /// The cancel flag: stop the handler.
    pub cancel_requested: bool,
}

static DOLLAR_PARAM: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\$(\d+)").expect("regex"));

/// A statement for the backend: PostgreSQL takes `$n`, SQLite `?n`.
pub(crate) fn stmt(backend: DbBackend, sql: &str, values: Vec<DbValue>) -> Statement {
    let sql = match backend {
        DbBackend::Sqlite => DOLLAR_PARAM.replace_all(sql, "?$1").into_owned(),
        _ => sql.to_owned(),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// Timestamps inside JSON parameters, in the form sqlx writes for SQLite (so text
/// comparisons order correctly there) and that PostgreSQL parses.
pub(crate) fn json_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// `SELECT` of the elements of a JSON text array parameter.
fn json_array_rows(backend: Backend, param: usize) -> String {
    match backend {
        Backend::Postgres => format!("SELECT jsonb_array_elements_text(${param}::jsonb)"),
        Backend::Sqlite => format!("SELECT value FROM json_each(${param})"),
    }
}

fn json_param<T: Serialize>(v: &T) -> DbValue {
    serde_json::to_string(v)
        .unwrap_or_else(|_| "[]".into())
        .into()
}

/// Orgs that can run something now, at most `limit`: a job ready now of a kind the
/// worker serves and the org's plan allows (`kinds`, by plan), and room under the plan's
/// concurrency limit. Orgs that cannot run (downgraded, at their cap, only kinds nobody
/// here serves) take no places. The scan goes in id order from just after `after`,
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

/// The task kinds a worker may run for an org, by the org's plan.
pub type KindsByPlan = std::collections::BTreeMap<Plan, Vec<String>>;

async fn scan_ready_orgs(
    db: &Db,
    at: DateTime<Utc>,
    limit: u64,
    kinds: &KindsByPlan,
    from_exclusive: &str,
    to_inclusive: Option<&str>,
) -> CoreResult<Vec<ReadyOrg>> {
    let backend = db.backend();
    let plan_kinds = match backend {
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
    let sql = format!(
        "WITH RECURSIVE o(org_id) AS (
          SELECT * FROM (SELECT org_id FROM jobs WHERE status = 'queued' AND run_at <= $1
                         AND org_id > $3 ORDER BY org_id LIMIT 1) first
          UNION ALL
          SELECT (SELECT j.org_id FROM jobs j WHERE j.status = 'queued' AND j.run_at <= $1
                  AND j.org_id > o.org_id ORDER BY j.org_id LIMIT 1)
          FROM o WHERE o.org_id IS NOT NULL
        )
        SELECT o.org_id, g.plan FROM o JOIN organizations g ON g.id = o.org_id
        WHERE (CASE g.plan {cap} ELSE 0 END)
                > (SELECT count(*) FROM jobs r WHERE r.org_id = o.org_id AND r.status = 'running')
          AND EXISTS (SELECT 1 FROM jobs k WHERE k.org_id = o.org_id AND k.status = 'queued'
                      AND k.run_at <= $1 AND k.task IN ({plan_kinds}))
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
        .conn()
        .query_all_raw(stmt(db.db_backend(), &sql, values))
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

/// Claims up to `want` ready jobs of `org` whose kind is in `kinds`, within the org's
/// concurrency limit, for `worker` with a lease of `lease`.
pub async fn claim_for_org(
    db: &Db,
    worker: &str,
    org: &ReadyOrg,
    want: u32,
    kinds: &[String],
    lease: Duration,
    at: DateTime<Utc>,
) -> CoreResult<Vec<ClaimedJob>> {
    let limit = org.plan.limits().concurrent_jobs;
    if want == 0 || limit == 0 || kinds.is_empty() {
        return Ok(Vec::new());
    }
    let expires = at + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(30));
    let backend = db.db_backend();
    let values = vec![
        org.id.clone().into(),
        at.into(),
        json_param(&kinds),
        i64::from(want).into(),
        i64::from(limit).into(),
        worker.to_owned().into(),
        expires.into(),
    ];
    let models = match db.backend() {
        Backend::Postgres => {
            // One round trip: lock the org, count exactly, claim, record the attempts
            // (migration m20261125_000006).
            let sql = "SELECT * FROM velu_claim_jobs($1, $2, $3::jsonb, $4, $5, $6, $7)";
            let rows = db.conn().query_all_raw(stmt(backend, sql, values)).await?;
            rows.iter()
                .map(|r| jobs::Model::from_query_result(r, ""))
                .collect::<Result<Vec<_>, _>>()?
        }
        Backend::Sqlite => {
            // The write lock of BEGIN IMMEDIATE serializes every claimer.
            let tx = db.write_tx().await?;
            let running = "(SELECT count(*) FROM jobs WHERE org_id = $1 AND status = 'running')";
            let sql = format!(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = $6,
                   lease_token = lower(hex(randomblob(16))), lease_expires_at = $7,
                   started_at = COALESCE(started_at, $2), updated_at = $2
                 WHERE id IN (
                   SELECT id FROM jobs
                   WHERE org_id = $1 AND status = 'queued' AND run_at <= $2
                     AND task IN ({kinds})
                   ORDER BY priority DESC, run_at, id
                   LIMIT max(0, min($4, $5 - {running}))
                 )
                 RETURNING *",
                kinds = json_array_rows(Backend::Sqlite, 3),
            );
            let rows = tx.query_all_raw(stmt(backend, &sql, values)).await?;
            let models = rows
                .iter()
                .map(|r| jobs::Model::from_query_result(r, ""))
                .collect::<Result<Vec<_>, _>>()?;
            if !models.is_empty() {
                let ids: Vec<&str> = models.iter().map(|m| m.id.as_str()).collect();
                let sql = format!(
                    "INSERT INTO job_attempts (job_id, attempt, worker_id, lease_token, started_at)
                     SELECT id, attempts, $2, lease_token, $3 FROM jobs WHERE id IN ({ids})",
                    ids = json_array_rows(Backend::Sqlite, 1),
                );
                tx.execute_raw(stmt(
                    backend,
                    &sql,
                    vec![json_param(&ids), worker.to_owned().into(), at.into()],
                ))
                .await?;
            }
            tx.commit().await?;
            models
        }
    };
    Ok(models
        .into_iter()
        .map(|m| ClaimedJob {
            token: m.lease_token.unwrap_or_default(),
            id: m.id,
            org_id: m.org_id,
            task: m.task,
            payload: m.payload,
            attempt: m.attempts,
            max_attempts: m.max_attempts,
        })
        .collect())
}

/// What replaces U+0000 in stored job output: PostgreSQL's `jsonb` refuses `\u0000`, so
/// both backends store U+FFFD (the replacement character) instead.
pub const NUL_REPLACEMENT: char = '\u{FFFD}';

/// `s` with every U+0000 replaced by [`NUL_REPLACEMENT`].
fn scrub_str(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

/// Replaces U+0000 in every string of `v` (object keys too) by [`NUL_REPLACEMENT`].
pub fn scrub_nul(v: &mut Value) {
    match v {
        Value::String(s) if s.contains('\0') => *s = scrub_str(s),
        Value::Array(items) => items.iter_mut().for_each(scrub_nul),
        Value::Object(map) => {
            if map.keys().any(|k| k.contains('\0')) {
                let old = std::mem::take(map);
                map.extend(old.into_iter().map(|(k, v)| (scrub_str(&k), v)));
            }
            map.values_mut().for_each(scrub_nul);
        }
        _ => {}
    }
}

impl Finish {
    /// This outcome with U+0000 replaced in its result and error (see [`scrub_nul`]).
    pub fn scrubbed(&self) -> Finish {
        let mut f = self.clone();
        if let Some(r) = f.result.as_mut() {
            scrub_nul(r);
        }
        if let Some(e) = f.error.as_mut() {
            e.code = scrub_str(&e.code);
            e.message = scrub_str(&e.message);
        }
        f
    }
}

/// The JSON parameter of a batch of outcomes, with U+0000 scrubbed. The serialized text
/// names a NUL only as the escape `\u0000`, so the clean (usual) case costs one search.
fn batch_param(items: &[Finish]) -> DbValue {
    let text = serde_json::to_string(items).unwrap_or_else(|_| "[]".into());
    if !text.contains("\\u0000") {
        return text.into();
    }
    let clean: Vec<Finish> = items.iter().map(Finish::scrubbed).collect();
    json_param(&clean)
}

/// Records how attempts ended, for the attempts whose token still owns the job. Returns
/// the ids that were written; an id missing means the lease was lost to someone else.
/// U+0000 in results and errors is stored as U+FFFD (see [`scrub_nul`]).
pub async fn finish(db: &Db, items: &[Finish], at: DateTime<Utc>) -> CoreResult<Vec<String>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let backend = db.db_backend();
    let batch = batch_param(items);
    let done = match db.backend() {
        Backend::Postgres => {
            let sql = "WITH v AS (
                   SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(
                     id text, token text, status text, outcome text, result jsonb, error jsonb,
                     run_at timestamptz, finished boolean)
                 ),
                 done AS (
                   UPDATE jobs j SET status = v.status, result = v.result, error = v.error,
                     run_at = COALESCE(v.run_at, j.run_at),
                     finished_at = CASE WHEN v.finished THEN $2::timestamptz ELSE NULL END,
                     updated_at = $2, lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
                   FROM v WHERE j.id = v.id AND j.lease_token = v.token AND j.status = 'running'
                   RETURNING j.id
                 ),
                 attempt_rows AS (
                   UPDATE job_attempts a SET finished_at = $2, outcome = v.outcome, error = v.error
                   FROM v WHERE a.job_id = v.id AND a.lease_token = v.token AND a.finished_at IS NULL
                 )
                 SELECT id FROM done";
            // One statement: atomic on its own, one round trip.
            db.conn()
                .query_all_raw(stmt(backend, sql, vec![batch, at.into()]))
                .await?
        }
        Backend::Sqlite => {
            let tx = db.write_tx().await?;
            let v = "(SELECT value ->> '$.id' AS id, value ->> '$.token' AS token,
                       value ->> '$.status' AS status, value ->> '$.outcome' AS outcome,
                       value -> '$.result' AS result, value -> '$.error' AS error,
                       value ->> '$.run_at' AS run_at, value ->> '$.finished' AS finished
                     FROM json_each($1)) AS v";
            let jobs_sql = format!(
                "UPDATE jobs SET status = v.status, result = v.result, error = v.error,
                   run_at = COALESCE(v.run_at, jobs.run_at),
                   finished_at = CASE WHEN v.finished THEN $2 ELSE NULL END,
                   updated_at = $2, lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
                 FROM {v} WHERE jobs.id = v.id AND jobs.lease_token = v.token AND jobs.status = 'running'
                 RETURNING jobs.id AS id"
            );
            let rows = tx
                .query_all_raw(stmt(backend, &jobs_sql, vec![batch.clone(), at.into()]))
                .await?;
            let attempts_sql = format!(
                "UPDATE job_attempts SET finished_at = $2, outcome = v.outcome, error = v.error
                 FROM {v} WHERE job_attempts.job_id = v.id AND job_attempts.lease_token = v.token
                   AND job_attempts.finished_at IS NULL"
            );
            tx.execute_raw(stmt(backend, &attempts_sql, vec![batch, at.into()]))
                .await?;
            tx.commit().await?;
            rows
        }
    };
    done.iter()
        .map(|r| Ok(r.try_get::<String>("", "id")?))
        .collect()
}

/// Renews the leases `worker` holds (by token); returns those it still holds, with their
/// cancel flags. A job missing from the answer was lost: stop working on it.
pub async fn heartbeat(
    db: &Db,
    worker: &str,
    tokens: &[String],
    lease: Duration,
    at: DateTime<Utc>,
) -> CoreResult<Vec<Held>> {
    if tokens.is_empty() {
        return Ok(Vec::new());
    }
    let expires = at + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(30));
    let sql = format!(
        "UPDATE jobs SET lease_expires_at = $1, updated_at = $2
         WHERE status = 'running' AND lease_owner = $3 AND lease_token IN ({tokens})
         RETURNING id, cancel_requested",
        tokens = json_array_rows(db.backend(), 4),
    );
    // A single statement: atomic without a transaction.
    let rows = db
        .conn()
        .query_all_raw(stmt(
            db.db_backend(),
            &sql,
            vec![
                expires.into(),
                at.into(),
                worker.to_owned().into(),
                json_param(&tokens),
            ],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Held {
                id: r.try_get("", "id")?,
                cancel_requested: r.try_get("", "cancel_requested")?,
            })
        })
        .collect()
}

fn error_value(code: &str, message: &str) -> DbValue {
    DbValue::Json(Some(Box::new(
        serde_json::json!({ "code": code, "message": message }),
    )))
}

/// Ends the attempts of running jobs matching `filter`, then requeues, fails or cancels
/// the jobs (inside `tx`). `filter` is SQL over `jobs` using `$1` (now) and `$3..`.
async fn end_attempts(
    tx: &DatabaseTransaction,
    backend: DbBackend,
    filter: &str,
    jobs_set: &str,
    mut values: Vec<DbValue>,
) -> CoreResult<Vec<String>> {
    let attempts_sql = format!(
        "UPDATE job_attempts SET finished_at = $1, outcome = 'lost', error = $2
         WHERE finished_at IS NULL AND lease_token IN (SELECT lease_token FROM jobs WHERE {filter})"
    );
    tx.execute_raw(stmt(backend, &attempts_sql, values.clone()))
        .await?;
    let jobs_sql = format!(
        "UPDATE jobs SET {jobs_set}, error = $2, run_at = $1, lease_owner = NULL,
           lease_token = NULL, lease_expires_at = NULL, updated_at = $1
         WHERE {filter} RETURNING id"
    );
    let rows = tx
        .query_all_raw(stmt(backend, &jobs_sql, std::mem::take(&mut values)))
        .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<String>("", "id")?))
        .collect()
}

/// Takes back jobs whose lease expired (their worker died or hung): the attempt is
/// recorded as `lost`, and the job is queued again if it has attempts left, `failed` if
/// not, `cancelled` if a cancel was asked. Returns the ids reclaimed.
pub async fn reclaim_expired(db: &Db, at: DateTime<Utc>) -> CoreResult<Vec<String>> {
    let tx = db.write_tx().await?;
    let ids = end_attempts(
        &tx,
        db.db_backend(),
        "status = 'running' AND lease_expires_at < $1",
        "status = CASE WHEN cancel_requested THEN 'cancelled'
                       WHEN attempts < max_attempts THEN 'queued' ELSE 'failed' END,
         finished_at = CASE WHEN cancel_requested OR attempts >= max_attempts THEN $1 ELSE NULL END",
        vec![
            at.into(),
            error_value("lease_expired", "the worker stopped renewing its lease (it died or hung)"),
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(ids)
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
    let tx = db.write_tx().await?;
    let filter = format!(
        "status = 'running' AND lease_owner = $3 AND lease_token IN ({})",
        json_array_rows(db.backend(), 4)
    );
    let ids = end_attempts(
        &tx,
        db.db_backend(),
        &filter,
        "status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'queued' END,
         finished_at = CASE WHEN cancel_requested THEN $1 ELSE NULL END,
         max_attempts = CASE WHEN cancel_requested THEN max_attempts ELSE max_attempts + 1 END",
        vec![
            at.into(),
            error_value(
                "worker_shutdown",
                "the worker shut down and handed the job back",
            ),
            worker.to_owned().into(),
            json_param(&tokens),
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_placeholders_are_numbered_and_json_paths_untouched() {
        let s = stmt(
            DbBackend::Sqlite,
            "SELECT value ->> '$.id' FROM t WHERE a = $1 AND b = $12",
            vec![],
        );
        assert_eq!(
            s.sql,
            "SELECT value ->> '$.id' FROM t WHERE a = ?1 AND b = ?12"
        );
        let p = stmt(DbBackend::Postgres, "a = $1", vec![]);
        assert_eq!(p.sql, "a = $1");
    }

    #[test]
    fn nul_is_scrubbed_from_keys_values_and_errors() {
        let mut v = serde_json::json!({"a\u{0}": ["x\u{0}y", {"k": "\u{0}"}], "n": 1});
        scrub_nul(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"a\u{FFFD}": ["x\u{FFFD}y", {"k": "\u{FFFD}"}], "n": 1})
        );
        let f = Finish {
            id: "j".into(),
            token: "t".into(),
            status: "failed",
            outcome: "failed",
            result: None,
            error: Some(JobError::new("exit_status", "bad\u{0}byte")),
            run_at: None,
            finished: true,
        };
        let DbValue::String(Some(text)) = batch_param(std::slice::from_ref(&f)) else {
            panic!("a text parameter");
        };
        assert!(
            !text.contains("\\u0000") && text.contains("bad\u{FFFD}byte"),
            "{text}"
        );
        // A literal backslash-u-0000 in the text is data, not a NUL: kept.
        let literal = Finish {
            error: Some(JobError::new("exit_status", "\\u0000")),
            ..f
        };
        let DbValue::String(Some(text)) = batch_param(&[literal]) else {
            panic!("a text parameter");
        };
        assert!(text.contains(r"\\u0000"), "{text}");
    }

    #[test]
    fn finish_omits_absent_fields_so_sql_sees_null() {
        let f = Finish {
            id: "j".into(),
            token: "t".into(),
            status: "succeeded",
            outcome: "succeeded",
            result: Some(serde_json::json!({"ok": true})),
            error: None,
            run_at: None,
            finished: true,
        };
        let text = serde_json::to_string(&f).unwrap();
        assert!(
            !text.contains("error") && !text.contains("run_at"),
            "{text}"
        );
    }
}
