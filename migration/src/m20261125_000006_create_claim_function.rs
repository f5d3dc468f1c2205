//! PostgreSQL only: `velu_claim_jobs`, the claim of the worker's hot path in one round
//! trip. Inside the function each statement takes a fresh snapshot, so the running count
//! read after the per-org advisory lock is exact, and the org's concurrency limit holds
//! with any number of workers. SQLite claims inside one `BEGIN IMMEDIATE` instead.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The function as this step creates it (m20261201_000007 restores it on its way down).
pub(crate) const CREATE: &str = r#"
CREATE FUNCTION velu_claim_jobs(
    p_org text, p_now timestamptz, p_kinds jsonb, p_want bigint, p_limit bigint,
    p_worker text, p_expires timestamptz
) RETURNS SETOF jobs LANGUAGE plpgsql AS $$
DECLARE
    room bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(p_org));
    SELECT p_limit - count(*) INTO room FROM jobs WHERE org_id = p_org AND status = 'running';
    IF room <= 0 THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH picked AS (
        SELECT id FROM jobs
        WHERE org_id = p_org AND status = 'queued' AND run_at <= p_now
          AND task IN (SELECT jsonb_array_elements_text(p_kinds))
        ORDER BY priority DESC, run_at, id
        LIMIT LEAST(p_want, room)
        FOR UPDATE SKIP LOCKED
    ),
    claimed AS (
        UPDATE jobs j SET status = 'running', attempts = j.attempts + 1,
            lease_owner = p_worker, lease_token = gen_random_uuid()::text,
            lease_expires_at = p_expires, started_at = COALESCE(j.started_at, p_now),
            updated_at = p_now
        FROM picked WHERE j.id = picked.id
        RETURNING j.*
    ),
    attempt_rows AS (
        INSERT INTO job_attempts (job_id, attempt, worker_id, lease_token, started_at)
        SELECT c.id, c.attempts, p_worker, c.lease_token, p_now FROM claimed c
    )
    SELECT * FROM claimed;
END
$$
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            crate::exec(manager, CREATE).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            crate::exec(
                manager,
                "DROP FUNCTION IF EXISTS velu_claim_jobs(text, timestamptz, jsonb, bigint, bigint, text, timestamptz)",
            )
            .await?;
        }
        Ok(())
    }
}
