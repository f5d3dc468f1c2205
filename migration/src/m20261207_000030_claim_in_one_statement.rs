//! PostgreSQL: a claim over several orgs in one statement.
//!
//! m20261206_000027's `velu_claim_batch` called `velu_claim_jobs` once per org: a lock, two
//! pause checks, a count, a pick and an `UPDATE` each, and with each `UPDATE` a call of the
//! job counters' statement trigger. A burn-down claims many jobs per org, so that cost was
//! spread thin; under steady submits over many orgs each org has a job or two ready when a
//! worker claims, and the per-org cost became the claim's. Measured with
//! `pg_stat_statements` during `scripts/bench_sustained.py` at 1,250 submits a second over
//! 200 orgs (docs/benchmarks-log.md, "A claim over many orgs in one statement"): 23 orgs
//! per claim, 0.7 jobs per org, 0.37 ms per org, 9.6 ms per claim, and the worker fell
//! behind.
//!
//! The claim now takes every org's lock first, in the order of their lock keys (as before:
//! two claims never wait on each other in a circle, and the counters' trigger locks in the
//! same order, m20261204_000021), then picks and claims for all its orgs in one statement:
//! per org, nothing of a paused org, no job of a paused kind, at most the org's room under
//! its limit (counted after its lock, as before) and what it asked for; over the whole
//! claim, a job is claimed while the jobs before it (in lock order, then priority, run
//! time and id) hold less than the byte budget, so a claim always has its first job, as
//! m20261206_000027's did. One `UPDATE`, one call of the counters' trigger.
//! `velu_claim_jobs` stays, unused by Velu, for the `down` of this step.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `velu_claim_batch(parts, now, worker, expires, budget)`, its arguments as before:
/// `parts` a JSON array of `{org, want, lim, kinds}`. Its plans use indexes only and are
/// never compiled, as the per-org claim's were (m20261204_000020).
const ONE_STATEMENT: &str = r#"
CREATE OR REPLACE FUNCTION velu_claim_batch(
    p_parts jsonb, p_now timestamptz, p_worker text, p_expires timestamptz, p_budget bigint
) RETURNS SETOF jobs LANGUAGE plpgsql
SET enable_seqscan = off SET jit = off AS $$
DECLARE
    part record;
BEGIN
    IF p_budget <= 0 THEN
        RETURN;
    END IF;
    -- Every org's claim lock first, in the order of their lock keys: two claims never
    -- wait on each other in a circle, and the counters' trigger locks in the same order
    -- (m20261204_000021). A pause of an org takes the same lock, so once it has
    -- committed no claim of the org gets past here without seeing it.
    FOR part IN
        SELECT DISTINCT r.org, hashtext(r.org) AS key
        FROM jsonb_to_recordset(p_parts) AS r(org text)
        ORDER BY key, r.org
    LOOP
        PERFORM pg_advisory_xact_lock(part.key);
    END LOOP;
    RETURN QUERY
    WITH parts AS (
        SELECT r.org, hashtext(r.org) AS key, r.want,
               r.lim - (SELECT count(*) FROM jobs
                        WHERE org_id = r.org AND status = 'running') AS room,
               -- The kinds asked for, less the paused ones, as an array: `task =
               -- ANY(kinds)` keeps the pick a plain index scan.
               (SELECT array_agg(k) FROM jsonb_array_elements_text(r.kinds) AS k
                WHERE NOT EXISTS (SELECT 1 FROM queue_pauses
                                  WHERE scope = 'task' AND target = k)) AS kinds
        FROM jsonb_to_recordset(p_parts) AS r(org text, want bigint, lim bigint, kinds jsonb)
        WHERE NOT EXISTS (SELECT 1 FROM queue_pauses WHERE scope = 'org' AND target = r.org)
    ),
    candidates AS (
        SELECT p.key, p.org, c.id, c.priority, c.run_at, c.size
        FROM parts p CROSS JOIN LATERAL (
            SELECT j.id, j.priority, j.run_at, pg_column_size(j.payload) AS size
            FROM jobs j
            WHERE j.org_id = p.org AND j.status = 'queued' AND j.run_at <= p_now
              AND j.task = ANY(p.kinds)
            ORDER BY j.priority DESC, j.run_at, j.id
            LIMIT GREATEST(LEAST(p.want, p.room), 0)
            FOR UPDATE OF j SKIP LOCKED
        ) c
        WHERE p.kinds IS NOT NULL AND p.room > 0
    ),
    picked AS (
        SELECT s.id FROM (
            SELECT c.id, sum(c.size) OVER (
                       ORDER BY c.key, c.org, c.priority DESC, c.run_at, c.id
                       ROWS UNBOUNDED PRECEDING
                   ) - c.size AS before
            FROM candidates c
        ) s
        WHERE s.before < p_budget
    ),
    claimed AS (
        UPDATE jobs j SET status = 'running', attempts = j.attempts + 1,
            lease_owner = p_worker, lease_token = gen_random_uuid()::text,
            lease_expires_at = p_expires, started_at = COALESCE(j.started_at, p_now),
            updated_at = p_now, lease_started_at = p_now
        FROM picked WHERE j.id = picked.id
        RETURNING j.*
    )
    SELECT * FROM claimed;
END
$$
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(()); // velu-core writes SQLite's claim itself
        }
        crate::exec(manager, ONE_STATEMENT).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        // m20261206_000027's claim, one `velu_claim_jobs` per org, without settings of
        // its own.
        crate::exec(
            manager,
            "DROP FUNCTION velu_claim_batch(jsonb, timestamptz, text, timestamptz, bigint)",
        )
        .await?;
        crate::exec(manager, crate::m20261206_000027_claim_bytes::BATCH_CLAIM).await
    }
}
