//! PostgreSQL: a claim bounded in bytes of payload as well as in jobs.
//!
//! A claim handed out up to 256 jobs whatever their payloads held: on superhero (payloads
//! up to 1 MiB) one `POST /v1/worker/claim` of an org's own worker key read, parsed and
//! sent a quarter of a gigabyte, and a few at once took the server's memory from every
//! other tenant. A claim now also stops at a byte budget of stored payloads, which
//! velu-core passes in (`velu_core::queue::MAX_CLAIM_BYTES`), as a page of jobs does
//! (m20261206_000026): a job is claimed while the jobs claimed before it in the same claim
//! hold less than the budget, so a claim always has its first job and ends after the one
//! that reaches the budget. Jobs the budget leaves stay queued, untouched.
//!
//! `velu_claim_jobs` gains the budget (`p_budget`, its eighth argument; the seven-argument
//! claim without it is dropped, so nothing can claim unbounded), and
//! `velu_claim_batch` runs a claim over several orgs, one `velu_claim_jobs` per org in
//! the order of their lock keys as the claim's statement did, each with what the orgs
//! before it left of the budget: the bound is the claim's, not each org's. Sizes are
//! `pg_column_size`, read from a value's header; m20261206_000026 stores payloads
//! uncompressed, so a stored size is the size sent.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// The claim without a budget, as `DROP FUNCTION` names it.
const UNBOUNDED: &str =
    "velu_claim_jobs(text, timestamptz, jsonb, bigint, bigint, text, timestamptz)";

/// The claim with a budget, as `ALTER` and `DROP FUNCTION` name it.
const BOUNDED: &str =
    "velu_claim_jobs(text, timestamptz, jsonb, bigint, bigint, text, timestamptz, bigint)";

/// The claim over several orgs.
const BATCH: &str = "velu_claim_batch(jsonb, timestamptz, text, timestamptz, bigint)";

/// What m20261204_000020 set on the claim: plans on indexes only, never compiled.
const SETTINGS: [(&str, &str); 2] = [("enable_seqscan", "off"), ("jit", "off")];

/// `velu_claim_jobs` of m20261203_000018 with the budget: the candidates are locked as
/// before (`FOR UPDATE SKIP LOCKED`, at most the org's room), then only those whose
/// predecessors hold less than `p_budget` bytes of payload are claimed; the others are
/// left queued (their row locks end with the transaction).
const BUDGETED_CLAIM: &str = r#"
CREATE FUNCTION velu_claim_jobs(
    p_org text, p_now timestamptz, p_kinds jsonb, p_want bigint, p_limit bigint,
    p_worker text, p_expires timestamptz, p_budget bigint
) RETURNS SETOF jobs LANGUAGE plpgsql AS $$
DECLARE
    room bigint;
    kinds text[];
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(p_org));
    -- After the lock: a pause of this org takes the same lock, so once it has committed
    -- no claim of the org passes here.
    IF EXISTS (SELECT 1 FROM queue_pauses WHERE scope = 'org' AND target = p_org) THEN
        RETURN;
    END IF;
    -- The kinds asked for, less the paused ones, as an array: `task = ANY(kinds)` keeps
    -- the pick a plain index scan.
    SELECT array_agg(k) INTO kinds FROM jsonb_array_elements_text(p_kinds) AS k
    WHERE NOT EXISTS (SELECT 1 FROM queue_pauses WHERE scope = 'task' AND target = k);
    IF kinds IS NULL THEN
        RETURN;
    END IF;
    SELECT p_limit - count(*) INTO room FROM jobs WHERE org_id = p_org AND status = 'running';
    IF room <= 0 OR p_budget <= 0 THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH candidates AS (
        SELECT id, priority, run_at, pg_column_size(payload) AS size FROM jobs
        WHERE org_id = p_org AND status = 'queued' AND run_at <= p_now
          AND task = ANY(kinds)
        ORDER BY priority DESC, run_at, id
        LIMIT LEAST(p_want, room)
        FOR UPDATE SKIP LOCKED
    ),
    picked AS (
        SELECT s.id FROM (
            SELECT c.id, sum(c.size) OVER (
                       ORDER BY c.priority DESC, c.run_at, c.id ROWS UNBOUNDED PRECEDING
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

/// `velu_claim_batch(parts, now, worker, expires, budget)`: the claim over several orgs.
/// `parts` is a JSON array of `{org, want, lim, kinds}`; the orgs are claimed in the order
/// of their lock keys (`hashtext`, then id: two claims never wait on each other in a
/// circle, and the counters' trigger locks in the same order, m20261204_000021), each
/// with the budget the orgs before it left; once it is spent, the rest get nothing. The
/// last org's rows are returned as they come (nothing needs their sizes).
pub(crate) const BATCH_CLAIM: &str = r#"
CREATE FUNCTION velu_claim_batch(
    p_parts jsonb, p_now timestamptz, p_worker text, p_expires timestamptz, p_budget bigint
) RETURNS SETOF jobs LANGUAGE plpgsql AS $$
DECLARE
    part record;
    job jobs;
    budget_left bigint := p_budget;
    parts_left bigint := jsonb_array_length(p_parts);
BEGIN
    FOR part IN
        SELECT * FROM jsonb_to_recordset(p_parts)
            AS r(org text, want bigint, lim bigint, kinds jsonb)
        ORDER BY hashtext(r.org), r.org
    LOOP
        EXIT WHEN budget_left <= 0;
        parts_left := parts_left - 1;
        IF parts_left = 0 THEN
            -- The last org (or the only one): nothing after it needs what it leaves.
            RETURN QUERY
                SELECT * FROM velu_claim_jobs(part.org, p_now, part.kinds, part.want,
                                              part.lim, p_worker, p_expires, budget_left);
            RETURN;
        END IF;
        FOR job IN
            SELECT * FROM velu_claim_jobs(part.org, p_now, part.kinds, part.want, part.lim,
                                          p_worker, p_expires, budget_left)
        LOOP
            budget_left := budget_left - pg_column_size(job.payload);
            RETURN NEXT job;
        END LOOP;
    END LOOP;
END
$$
"#;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(()); // velu-core writes SQLite's claim itself
        }
        crate::exec(manager, &format!("DROP FUNCTION {UNBOUNDED}")).await?;
        crate::exec(manager, BUDGETED_CLAIM).await?;
        for (name, value) in SETTINGS {
            crate::exec(
                manager,
                &format!("ALTER FUNCTION {BOUNDED} SET {name} = {value}"),
            )
            .await?;
        }
        crate::exec(manager, BATCH_CLAIM).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        crate::exec(manager, &format!("DROP FUNCTION {BATCH}")).await?;
        crate::exec(manager, &format!("DROP FUNCTION {BOUNDED}")).await?;
        crate::exec(
            manager,
            &crate::m20261203_000018_attempts_at_finish::claim_function(),
        )
        .await?;
        for (name, value) in SETTINGS {
            crate::exec(
                manager,
                &format!("ALTER FUNCTION {UNBOUNDED} SET {name} = {value}"),
            )
            .await?;
        }
        Ok(())
    }
}
