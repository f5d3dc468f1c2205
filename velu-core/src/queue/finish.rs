//! Finishing: recording how attempts ended, fenced by their lease tokens.

use std::borrow::Cow;
use std::collections::HashSet;

use crate::db::CrossOrg;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, Value as DbValue};
use serde::Serialize;
use serde_json::Value;

use super::scrub::{scrub_nul, scrub_str};
use crate::CoreResult;
use crate::db::events;
use crate::db::sql::{json_param, stmt};
use crate::db::usage::{finish_usage_cte, finish_usage_sqlite};
use crate::db::{Backend, Db};
use crate::jobs::{AttemptOutcome, JobError, JobStatus};
use crate::usage::day_of;

/// How an attempt ended, as the worker reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Finish {
    /// Job id.
    pub id: String,
    /// The attempt's fencing token.
    pub token: String,
    /// The job's next status: `succeeded`, `failed`, `cancelled`, or `queued` for a retry.
    pub status: JobStatus,
    /// The attempt's outcome: `succeeded`, `failed`, `timed_out` or `cancelled`.
    pub outcome: AttemptOutcome,
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
    /// How long the attempt's handler ran, in microseconds, as its worker measured it
    /// (`None`: unknown). The attempt's recorded start is its end less this, never before
    /// its claim: a job claimed ahead of a free handler waits in its worker, and that wait
    /// is neither run time nor billed (docs/usage.md). At most [`MAX_RAN_US`] counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ran_us: Option<u64>,
}

/// The longest run a finish records (ten years, in microseconds); a longer one reported
/// counts as this, which is in any case longer than the lease it ran under.
pub const MAX_RAN_US: u64 = 10 * 365 * 24 * 3600 * 1_000_000;

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
fn batch_param(items: &[Finish]) -> CoreResult<DbValue> {
    let text = json_param(items)?;
    match &text {
        DbValue::String(Some(t)) if t.contains("\\u0000") => {
            let clean: Vec<Finish> = items.iter().map(Finish::scrubbed).collect();
            json_param(&clean)
        }
        _ => Ok(text),
    }
}

/// One outcome per job: a batch that names a job twice keeps the first (an attempt ends
/// once, and its row is appended once: a second would break the attempt's key).
fn once_per_job(items: &[Finish]) -> Cow<'_, [Finish]> {
    let mut seen = HashSet::with_capacity(items.len());
    if items.iter().all(|f| seen.insert(f.id.as_str())) {
        return Cow::Borrowed(items);
    }
    seen.clear();
    Cow::Owned(
        items
            .iter()
            .filter(|f| seen.insert(f.id.as_str()))
            .cloned()
            .collect(),
    )
}

/// Records how attempts ended, for the attempts whose token still owns the job. Returns
/// the ids that were written; an id missing means the lease was lost to someone else.
/// U+0000 in results and errors is stored as U+FFFD (see [`scrub_nul`]).
pub async fn finish(db: &Db, items: &[Finish], at: DateTime<Utc>) -> CoreResult<Vec<String>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let items = once_per_job(items);
    let backend = db.db_backend();
    let batch = batch_param(&items)?;
    let running = JobStatus::Running.as_str();
    let done = match db.backend() {
        Backend::Postgres => {
            let sql = format!(
                "WITH v AS (
                   SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(
                     id text, token text, status text, outcome text, result jsonb, error jsonb,
                     run_at timestamptz, finished boolean, ran_us numeric)
                 ),
                 cur AS (
                   SELECT j.id, j.lease_owner, j.lease_started_at FROM jobs j JOIN v
                     ON j.id = v.id AND j.lease_token = v.token AND j.status = '{running}'
                 ),
                 done AS (
                   UPDATE jobs j SET status = v.status, result = v.result, error = v.error,
                     run_at = COALESCE(v.run_at, j.run_at),
                     finished_at = CASE WHEN v.finished THEN $2::timestamptz ELSE NULL END,
                     updated_at = $2, lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
                   FROM v WHERE j.id = v.id AND j.lease_token = v.token AND j.status = '{running}'
                   RETURNING j.id, j.org_id, j.task, j.status, j.attempts, j.run_at, j.error
                 ),
                 attempt_rows AS (
                   INSERT INTO job_attempts
                     (job_id, attempt, worker_id, lease_token, started_at, finished_at, outcome, error)
                   SELECT d.id, d.attempts, c.lease_owner, v.token,
                     {start}, $2, v.outcome, v.error
                   FROM done d JOIN v ON v.id = d.id JOIN cur c ON c.id = d.id
                   RETURNING job_id, started_at
                 ),
                 ev AS ({events}),
                 {usage}
                 SELECT id FROM done",
                events = events::transitions_sql(Backend::Postgres, "done j", 2),
                start = pg_attempt_start("c.lease_started_at", "v.ran_us", 2),
                usage = finish_usage_cte(2, 3)
            );
            // One statement: atomic on its own, one round trip. The attempt's row is
            // appended here, once (migration m20261203_000018): `cur` reads the attempt
            // in progress off the job's row in the statement's snapshot, before `done`
            // clears the lease; only the jobs `done` fenced get a row. Nothing reads the
            // attempt history, so it costs the same with a million finished attempts.
            db.query_all_cross_org(
                CrossOrg::Queue,
                stmt(backend, &sql, vec![batch, at.into(), day_of(at).into()]),
            )
            .await?
        }
        Backend::Sqlite => {
            let tx = db.cross_org_tx(CrossOrg::Queue).await?;
            // One command to the writer's thread for the attempts, the events, the usage
            // counters and the jobs (see `SQLITE_FINISH_SQL`).
            let values = vec![batch, at.into(), day_of(at).into()];
            let rows = tx
                .query_all_raw(stmt(backend, &SQLITE_FINISH_SQL, values))
                .await?;
            tx.commit().await?;
            rows
        }
    };
    done.iter()
        .map(|r| Ok(r.try_get::<String>("", "id")?))
        .collect()
}

/// The statements of [`sqlite_finish_sql`] as one text, built once: each batch of
/// outcomes runs them as one command. sqlx runs each SQLite connection on a thread of its
/// own, and every statement is a hand-off to it and back (160 to 390 µs a statement
/// under a burn-down on two cores, a one-row upsert among them, so mostly the hand-off:
/// docs/benchmarks-log.md, "The SQLite claim and finish in fewer hand-offs"); the writer is
/// the one connection every write of the process waits for.
static SQLITE_FINISH_SQL: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| sqlite_finish_sql().join(";\n"));

/// SQLite: the four statements of a finish, in order: append the attempts, append the
/// events (`retrying` or `ended`, as [`events::transitions_sql`] writes them), add to the
/// usage counters (`finish_usage_sqlite`), update the jobs (its `RETURNING` ids are what
/// the command returns). The first three read the jobs as they are before the update,
/// which the write lock of the transaction keeps as read, and take the new status,
/// `run_at` and error from the outcome, as the update writes them. Their parameters: `$1`
/// the outcomes (JSON), `$2` the time, `$3` its day. Each finds its jobs by primary key
/// only: a unary `+` keeps the lease token and the status from steering the plan
/// (statistics that call the running jobs few made SQLite loop over every running job for
/// each outcome: `pin.rs`).
pub(super) fn sqlite_finish_sql() -> [String; 4] {
    let running = JobStatus::Running.as_str();
    // `jsonb_each`, not `json_each`: each outcome comes out as JSONB, which the operators
    // read as it is; `json_each` turned every outcome back into text for each operator to
    // parse again (about 4% of the writer's time in a burn-down, docs/benchmarks-log.md).
    let v = "(SELECT value ->> '$.id' AS id, value ->> '$.token' AS token,
               value ->> '$.status' AS status, value ->> '$.outcome' AS outcome,
               value -> '$.result' AS result, value -> '$.error' AS error,
               value ->> '$.run_at' AS run_at, value ->> '$.finished' AS finished,
               value ->> '$.ran_us' AS ran_us
             FROM jsonb_each($1)) AS v";
    let fenced = format!(
        "{v} JOIN jobs ON jobs.id = v.id AND +jobs.lease_token = v.token
           AND +jobs.status = '{running}'"
    );
    let (start, start_text) = sqlite_attempt_start("jobs.lease_started_at", "v.ran_us", 2);
    let attempts = format!(
        "INSERT INTO job_attempts
           (job_id, attempt, worker_id, lease_token, started_at, finished_at, outcome, error)
         SELECT jobs.id, jobs.attempts, jobs.lease_owner, v.token,
           {start_text}, $2, v.outcome, v.error
         FROM {fenced}"
    );
    // The jobs as the update leaves them, for the events.
    let after = format!(
        "(SELECT jobs.id AS id, jobs.org_id AS org_id, jobs.attempts AS attempts,
           v.status AS status, COALESCE(v.run_at, jobs.run_at) AS run_at, v.error AS error
         FROM {fenced}) AS j"
    );
    let events = events::transitions_sql(Backend::Sqlite, &after, 2);
    let usage = finish_usage_sqlite(&fenced, &start, 2, 3);
    let jobs = format!(
        "UPDATE jobs SET status = v.status, result = v.result, error = v.error,
           run_at = COALESCE(v.run_at, jobs.run_at),
           finished_at = CASE WHEN v.finished THEN $2 ELSE NULL END,
           updated_at = $2, lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
         FROM {v} WHERE jobs.id = v.id AND +jobs.lease_token = v.token
           AND +jobs.status = '{running}'
         RETURNING jobs.id AS id"
    );
    [attempts, events, usage, jobs]
}

/// PostgreSQL: an ended attempt's start, an SQL expression: the end (`$time`) less the
/// run its worker measured (`ran_us`, microseconds, at most [`MAX_RAN_US`]), never before
/// the claim (`lease_started`); the claim when the run is unknown (`LEAST` passes over the
/// `NULL`, so it counts as the longest run), the end when the claim is.
fn pg_attempt_start(lease_started: &str, ran_us: &str, time: usize) -> String {
    format!(
        "GREATEST(COALESCE({lease_started}, ${time}),
           ${time}::timestamptz - make_interval(secs => (LEAST({ran_us}, {MAX_RAN_US}) / 1e6)::float8))"
    )
}

/// SQLite: an ended attempt's start as [`pg_attempt_start`] takes it, as two SQL
/// expressions: in Unix seconds (for the usage counters), and as the text the attempt's
/// row keeps (the claim's own text when the claim wins; else RFC 3339 to the millisecond,
/// which SQLite's date functions hold).
fn sqlite_attempt_start(lease_started: &str, ran_us: &str, time: usize) -> (String, String) {
    let claim = format!("COALESCE({lease_started}, ${time})");
    let end = format!("unixepoch(${time}, 'subsec')");
    let ran = format!("(min({ran_us}, {MAX_RAN_US}) / 1e6)");
    let claim_secs = format!("unixepoch({claim}, 'subsec')");
    let secs = format!("max({claim_secs}, COALESCE({end} - {ran}, {claim_secs}))");
    let text = format!(
        "CASE WHEN {end} - {ran} > {claim_secs}
           THEN strftime('%Y-%m-%dT%H:%M:%f+00:00', {end} - {ran}, 'unixepoch')
           ELSE {claim} END"
    );
    (secs, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::JobErrorCode;

    /// SQLite's finish adds to the usage counters what the attempts it fenced did: final
    /// successes and failures counted (a retry and a refused outcome not), each attempt's
    /// time from its start to the finish, none below zero (a clock gone backwards), one
    /// row per (org, task), on the finish's day.
    #[tokio::test]
    async fn sqlite_finish_counts_usage_of_fenced_attempts_only() {
        use sea_orm::{DbBackend, Statement};
        let dir = std::env::temp_dir().join(format!("velu-finish-{}", crate::ids::new_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("velu.db").display());
        let db = Db::connect(&url).await.unwrap();
        db.migrate_up().await.unwrap();
        let conn = db.conn();
        conn.execute_unprepared(
            "INSERT INTO organizations (id, name, slug, plan, created_at, updated_at)
             VALUES ('org', 'Org', 'org', 'superhero', '2026-01-01', '2026-01-01')",
        )
        .await
        .unwrap();
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-06T23:59:59.5+00:00")
            .unwrap()
            .with_timezone(&Utc);
        // (job, seconds its attempt started before `at`; negative: after)
        let started = [("a", 2.0), ("b", 3.0), ("c", 1.25), ("d", -5.0), ("e", 4.0)];
        for (id, secs) in started {
            let start = at - chrono::Duration::milliseconds((secs * 1000.0) as i64);
            conn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                "INSERT INTO jobs (id, org_id, task, status, payload, priority, attempts,
                   max_attempts, run_at, actor_type, actor_id, cancel_requested, created_at,
                   updated_at, lease_owner, lease_token, lease_started_at)
                 VALUES (?1, 'org', 'echo', 'running', '{}', 0, 1, 3, ?2, 'api_key', 'k', 0,
                   ?2, ?2, 'w', 'tok-' || ?1, ?2)",
                [id.into(), start.into()],
            ))
            .await
            .unwrap();
        }
        let outcome = |id: &str, status, outcome, token: &str| Finish {
            id: id.into(),
            token: token.into(),
            status,
            outcome,
            result: None,
            error: None,
            run_at: None,
            finished: status != JobStatus::Queued,
            ran_us: None,
        };
        let items = [
            outcome(
                "a",
                JobStatus::Succeeded,
                AttemptOutcome::Succeeded,
                "tok-a",
            ),
            outcome("b", JobStatus::Failed, AttemptOutcome::Failed, "tok-b"),
            outcome("c", JobStatus::Queued, AttemptOutcome::Failed, "tok-c"),
            outcome(
                "d",
                JobStatus::Succeeded,
                AttemptOutcome::Succeeded,
                "tok-d",
            ),
            // Another lease owns it now: refused, counted nowhere.
            outcome(
                "e",
                JobStatus::Succeeded,
                AttemptOutcome::Succeeded,
                "stale",
            ),
        ];
        let mut written = finish(&db, &items, at).await.unwrap();
        written.sort();
        assert_eq!(written, ["a", "b", "c", "d"]);
        let rows = conn
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT day, task, jobs_submitted, jobs_succeeded, jobs_failed, run_ms
                 FROM usage_daily",
            ))
            .await
            .unwrap();
        let got: Vec<(String, String, i64, i64, i64, i64)> = rows
            .iter()
            .map(|r| {
                (
                    r.try_get("", "day").unwrap(),
                    r.try_get("", "task").unwrap(),
                    r.try_get("", "jobs_submitted").unwrap(),
                    r.try_get("", "jobs_succeeded").unwrap(),
                    r.try_get("", "jobs_failed").unwrap(),
                    r.try_get("", "run_ms").unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [(
                "2026-12-06".into(),
                "echo".into(),
                0,
                2,
                1,
                2000 + 3000 + 1250
            )]
        );
        // An attempt that adds nothing (cancelled the moment it started) writes no row for
        // its task, and a refused one none either.
        conn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "INSERT INTO jobs (id, org_id, task, status, payload, priority, attempts,
               max_attempts, run_at, actor_type, actor_id, cancel_requested, created_at,
               updated_at, lease_owner, lease_token, lease_started_at)
             VALUES ('f', 'org', 'sleep', 'running', '{}', 0, 1, 3, ?1, 'api_key', 'k', 0,
               ?1, ?1, 'w', 'tok-f', ?1)",
            [at.into()],
        ))
        .await
        .unwrap();
        let nothing = [
            outcome(
                "f",
                JobStatus::Cancelled,
                AttemptOutcome::Cancelled,
                "tok-f",
            ),
            items[4].clone(),
        ];
        assert_eq!(finish(&db, &nothing, at).await.unwrap(), ["f"]);
        let again = conn
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT run_ms FROM usage_daily",
            ))
            .await
            .unwrap();
        assert_eq!(again.len(), 1);
        db.close().await;
        std::fs::remove_dir_all(dir).ok();
    }

    fn failed(message: &str) -> Finish {
        Finish {
            id: "j".into(),
            token: "t".into(),
            status: JobStatus::Failed,
            outcome: AttemptOutcome::Failed,
            result: None,
            error: Some(JobError::new(JobErrorCode::ExitStatus, message)),
            run_at: None,
            finished: true,
            ran_us: None,
        }
    }

    #[test]
    fn nul_is_scrubbed_from_errors() {
        let f = failed("bad\u{0}byte");
        let DbValue::String(Some(text)) = batch_param(std::slice::from_ref(&f)).unwrap() else {
            panic!("a text parameter");
        };
        assert!(
            !text.contains("\\u0000") && text.contains("bad\u{FFFD}byte"),
            "{text}"
        );
        // A literal backslash-u-0000 in the text is data, not a NUL: kept.
        let DbValue::String(Some(text)) = batch_param(&[failed("\\u0000")]).unwrap() else {
            panic!("a text parameter");
        };
        assert!(text.contains(r"\\u0000"), "{text}");
    }

    #[test]
    fn finish_omits_absent_fields_so_sql_sees_null() {
        let f = Finish {
            id: "j".into(),
            token: "t".into(),
            status: JobStatus::Succeeded,
            outcome: AttemptOutcome::Succeeded,
            result: Some(serde_json::json!({"ok": true})),
            error: None,
            run_at: None,
            finished: true,
            ran_us: None,
        };
        let text = serde_json::to_string(&f).unwrap();
        assert!(
            !text.contains("error") && !text.contains("run_at"),
            "{text}"
        );
        let expected = format!(
            r#""status":"{}","outcome":"{}""#,
            JobStatus::Succeeded.as_str(),
            AttemptOutcome::Succeeded.as_str()
        );
        assert!(text.contains(&expected), "{text}");
    }
}
