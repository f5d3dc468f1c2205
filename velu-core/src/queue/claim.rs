//! Claiming: taking ready jobs of one org under a fresh lease, within its plan.

use crate::db::CrossOrg;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult};

use super::pause::{org_paused_sql, paused_tasks_sql};
use super::pin::{claim_index, running_index};
use super::types::{ClaimedJob, ReadyOrg, lease_expiry};
use crate::db::events;
use crate::db::sql::{json_array_rows, json_param, stmt};
use crate::db::{Backend, Db};
use crate::jobs::JobStatus;
use crate::{CoreError, CoreResult};

/// The most bytes of stored payload one claim hands out, beyond its first job: a job is
/// claimed while the jobs claimed before it (in this claim, over all its orgs) hold less,
/// so a claim always has its first job and ends after the job that reaches the budget.
/// Without it, a claim of 256 jobs of 1 MiB (superhero's payloads) read, parsed and sent
/// a quarter of a gigabyte for one request. Jobs the budget leaves stay queued for the
/// next claim. The sizes are stored sizes, read from each value's header (PostgreSQL's
/// `pg_column_size`, SQLite's `octet_length`): the payloads themselves are not read to
/// weigh them.
pub const MAX_CLAIM_BYTES: i64 = 4 * 1024 * 1024;

/// What a claim reads back of each claimed row: what a worker runs the job with, not the
/// whole row. Every column a statement returns is a value the driver copies (on SQLite,
/// one allocation or two per column in the writer's thread, which bounds a SQLite
/// burn-down): 7 columns instead of the row's 22.
#[derive(Debug, FromQueryResult)]
struct ClaimedRow {
    id: String,
    org_id: String,
    task: String,
    payload: serde_json::Value,
    attempts: i32,
    max_attempts: i32,
    lease_token: Option<String>,
}

/// The columns of [`ClaimedRow`], for the claim statements' `SELECT` and `RETURNING`.
const CLAIMED_COLUMNS: &str = "id, org_id, task, payload, attempts, max_attempts, lease_token";

/// One org's part of a claim over several orgs ([`claim_for_orgs`]).
#[derive(Debug, Clone)]
pub struct OrgClaim<'a> {
    /// The org, with its plan as scanned.
    pub org: &'a ReadyOrg,
    /// How many of its jobs, at most.
    pub want: u32,
    /// Of these kinds only.
    pub kinds: Vec<String>,
}

/// Claims up to `want` ready jobs of `org` whose kind is in `kinds`, within the org's
/// concurrency limit and [`MAX_CLAIM_BYTES`], for `worker` with a lease of `lease`.
/// Nothing of a paused org, and no job of a paused kind, is claimed (checked inside the
/// claim: see `pause.rs`).
pub async fn claim_for_org(
    db: &Db,
    worker: &str,
    org: &ReadyOrg,
    want: u32,
    kinds: &[String],
    lease: Duration,
    at: DateTime<Utc>,
) -> CoreResult<Vec<ClaimedJob>> {
    let part = OrgClaim {
        org,
        want,
        kinds: kinds.to_vec(),
    };
    claim_for_orgs(db, worker, &[part], lease, at).await
}

/// Claims for several orgs at once, each part as [`claim_for_org`] would, in one round
/// trip and one commit on PostgreSQL (the orgs' claim locks taken in one global order, so
/// two such claims never deadlock) and one write transaction on SQLite. The whole claim
/// holds at most [`MAX_CLAIM_BYTES`] of payload beyond its first job: each org's part
/// gets what the parts before it left, and once it is spent the rest get nothing.
pub async fn claim_for_orgs(
    db: &Db,
    worker: &str,
    parts: &[OrgClaim<'_>],
    lease: Duration,
    at: DateTime<Utc>,
) -> CoreResult<Vec<ClaimedJob>> {
    let parts: Vec<&OrgClaim<'_>> = parts
        .iter()
        .filter(|p| p.want > 0 && p.org.plan.limits().concurrent_jobs > 0 && !p.kinds.is_empty())
        .collect();
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    let expires = lease_expiry(at, lease);
    let backend = db.db_backend();
    let models = match db.backend() {
        Backend::Postgres => {
            // One round trip: lock every org in the order of their lock keys, then in
            // one statement, per org, check pauses, count exactly and claim, within the
            // byte budget over the whole claim (`velu_claim_batch`, migration
            // m20261207_000030; the attempt's row is appended when it ends, see
            // `finish.rs`). The `claimed` events ride in the same statement (after the
            // rows are locked).
            let records: Vec<serde_json::Value> = parts
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "org": p.org.id,
                        "want": p.want,
                        "lim": p.org.plan.limits().concurrent_jobs,
                        "kinds": p.kinds,
                    })
                })
                .collect();
            let sql = format!(
                "WITH c AS (SELECT * FROM velu_claim_batch($1::jsonb, $2, $3, $4, $5)),
                 ev AS ({claimed})
                 SELECT {CLAIMED_COLUMNS} FROM c",
                claimed = events::claimed_sql("c", 2, 3),
            );
            let values = vec![
                json_param(&records)?,
                at.into(),
                worker.to_owned().into(),
                expires.into(),
                MAX_CLAIM_BYTES.into(),
            ];
            let rows = db
                .query_all_cross_org(CrossOrg::Queue, stmt(backend, &sql, values))
                .await?;
            rows.iter()
                .map(|r| ClaimedRow::from_query_result(r, ""))
                .collect::<Result<Vec<_>, _>>()?
        }
        Backend::Sqlite => {
            // The write lock of BEGIN IMMEDIATE serializes every claimer.
            let tx = db.cross_org_tx(CrossOrg::Queue).await?;
            let mut models = Vec::new();
            let mut budget_left = MAX_CLAIM_BYTES;
            for part in parts {
                if budget_left <= 0 {
                    break;
                }
                let (claimed, bytes) =
                    claim_sqlite(&tx, worker, part, expires, at, budget_left).await?;
                budget_left -= bytes;
                models.extend(claimed);
            }
            tx.commit().await?;
            models
        }
    };
    models
        .into_iter()
        .map(|m| {
            // The claim just set it: a claimed row without a token is a broken claim.
            let token = m.lease_token.ok_or_else(|| {
                tracing::error!(job = %m.id, "a claimed job has no lease token");
                CoreError::internal(format!("claimed job `{}` has no lease token", m.id))
            })?;
            Ok(ClaimedJob {
                token,
                id: m.id,
                org_id: m.org_id,
                task: m.task,
                payload: m.payload,
                attempt: m.attempts,
                max_attempts: m.max_attempts,
            })
        })
        .collect()
}

/// SQLite: the two statements of one org's part of a claim, run as one command (one
/// hand-off to the writer's thread: see `finish.rs`): the `claimed` events of the jobs
/// about to be claimed, then the claim, whose `RETURNING` rows the command returns. Both
/// pick the same jobs: the same selection, in a total order (the ids break ties), over
/// the same rows (nothing changes them in between: the transaction holds the write lock).
/// Their parameters: `$1` the org, `$2` the time, `$3` the kinds (JSON), `$4` how many,
/// `$5` the org's cap, `$6` the worker, `$7` the lease's expiry, `$8` the bytes of payload
/// left in the claim's budget (a job is picked while those picked before it hold less).
/// Their reads of `jobs` name their indexes (`pin.rs`). The claim's rows carry
/// `payload_bytes`, each payload's stored size, for the next org's budget.
pub(super) fn sqlite_claim_sql() -> [String; 2] {
    let (queued, running) = (JobStatus::Queued.as_str(), JobStatus::Running.as_str());
    let running_count = format!(
        "(SELECT count(*) FROM jobs{by_running} WHERE org_id = $1 AND status = '{running}')",
        by_running = running_index(Backend::Sqlite),
    );
    // The candidates in claim order with each one's stored size (read from the value's
    // header), then those whose predecessors hold less than the budget.
    let picked = format!(
        "SELECT id FROM (
           SELECT id, sum(size) OVER (ORDER BY priority DESC, run_at, id
                                      ROWS UNBOUNDED PRECEDING) - size AS before
           FROM (
             SELECT id, priority, run_at, octet_length(payload) AS size FROM jobs{by_claim}
             WHERE org_id = $1 AND status = '{queued}' AND run_at <= $2
               AND NOT {org_paused}
               AND task IN ({kinds}) AND task NOT IN ({paused_tasks})
             ORDER BY priority DESC, run_at, id
             LIMIT max(0, min($4, $5 - {running_count}))
           )
         )
         WHERE before < $8",
        by_claim = claim_index(Backend::Sqlite),
        kinds = json_array_rows(Backend::Sqlite, 3),
        org_paused = org_paused_sql("$1"),
        paused_tasks = paused_tasks_sql(),
    );
    // The events carry the attempt the claim is about to start.
    let events = events::claimed_sql(
        &format!(
            "(SELECT k.id AS id, k.org_id AS org_id, k.attempts + 1 AS attempts
              FROM jobs k WHERE k.id IN ({picked})) AS c"
        ),
        2,
        6,
    );
    let claim = format!(
        "UPDATE jobs SET status = '{running}', attempts = attempts + 1, lease_owner = $6,
           lease_token = lower(hex(randomblob(16))), lease_expires_at = $7,
           started_at = COALESCE(started_at, $2), updated_at = $2, lease_started_at = $2
         WHERE id IN ({picked})
         RETURNING {CLAIMED_COLUMNS}, octet_length(payload) AS payload_bytes"
    );
    [events, claim]
}

/// [`sqlite_claim_sql`] as one text, built once: the claim loop runs it for every org it
/// claims from.
static SQLITE_CLAIM_SQL: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| sqlite_claim_sql().join(";\n"));

/// SQLite: one org's part of a claim, inside the claimer's write transaction, within
/// `budget` bytes of payload: the claimed rows and the bytes of their payloads.
async fn claim_sqlite(
    tx: &sea_orm::DatabaseTransaction,
    worker: &str,
    part: &OrgClaim<'_>,
    expires: DateTime<Utc>,
    at: DateTime<Utc>,
    budget: i64,
) -> CoreResult<(Vec<ClaimedRow>, i64)> {
    let sql = SQLITE_CLAIM_SQL.as_str();
    let values = vec![
        part.org.id.clone().into(),
        at.into(),
        json_param(&part.kinds)?,
        i64::from(part.want).into(),
        i64::from(part.org.plan.limits().concurrent_jobs).into(),
        worker.to_owned().into(),
        expires.into(),
        budget.into(),
    ];
    let rows = tx
        .query_all_raw(stmt(tx.get_database_backend(), sql, values))
        .await?;
    let mut bytes = 0;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in &rows {
        bytes += row.try_get::<i64>("", "payload_bytes")?;
        claimed.push(ClaimedRow::from_query_result(row, "")?);
    }
    Ok((claimed, bytes))
}
