//! Pausing the queue: `queue_pauses`, one row per paused org (`scope = 'org'`, the org id)
//! or paused task kind (`scope = 'task'`, the kind's name, for every org). The claim reads
//! it inside the claim itself: on PostgreSQL `velu_claim_jobs` is replaced by a version
//! that returns nothing for a paused org (checked after the per-org advisory lock, which
//! a pause also takes) and leaves paused kinds out; SQLite's claim checks it inside its
//! `BEGIN IMMEDIATE`.
//!
//! It also grants the new scope `admin:queue:manage` to every key that holds every other
//! scope of the admin role, so admin keys made before keep working as admins (bootstrap
//! and key operations need every scope of the admin role).

use sea_orm_migration::sea_orm::{DbBackend, Statement};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum QueuePauses {
    Table,
    Scope,
    Target,
    PausedAt,
    ActorType,
    ActorId,
    Reason,
}

/// The scope this step adds, and the admin role's scopes before it.
const NEW_SCOPE: &str = "admin:queue:manage";
const ADMIN_BEFORE: [&str; 4] = [
    "admin:api_keys:manage",
    "audit:read",
    "jobs:read",
    "jobs:submit",
];

/// `velu_claim_jobs` of m20261125_000006, plus the pause checks.
pub(crate) const CLAIM_WITH_PAUSES: &str = r#"
CREATE OR REPLACE FUNCTION velu_claim_jobs(
    p_org text, p_now timestamptz, p_kinds jsonb, p_want bigint, p_limit bigint,
    p_worker text, p_expires timestamptz
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
    -- the pick a plain index scan (a set operation in the WHERE clause made every claim
    -- several times slower).
    SELECT array_agg(k) INTO kinds FROM jsonb_array_elements_text(p_kinds) AS k
    WHERE NOT EXISTS (SELECT 1 FROM queue_pauses WHERE scope = 'task' AND target = k);
    IF kinds IS NULL THEN
        RETURN;
    END IF;
    SELECT p_limit - count(*) INTO room FROM jobs WHERE org_id = p_org AND status = 'running';
    IF room <= 0 THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH picked AS (
        SELECT id FROM jobs
        WHERE org_id = p_org AND status = 'queued' AND run_at <= p_now
          AND task = ANY(kinds)
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
        manager
            .create_table(
                Table::create()
                    .table(QueuePauses::Table)
                    .col(
                        string_len(QueuePauses::Scope, 8)
                            .check(Expr::col(QueuePauses::Scope).is_in(["org", "task"])),
                    )
                    .col(string_len(QueuePauses::Target, 64))
                    .col(timestamp_with_time_zone(QueuePauses::PausedAt))
                    .col(string_len(QueuePauses::ActorType, 16))
                    .col(string_len(QueuePauses::ActorId, 200))
                    .col(string_len_null(QueuePauses::Reason, 500))
                    .primary_key(
                        Index::create()
                            .col(QueuePauses::Scope)
                            .col(QueuePauses::Target),
                    )
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            crate::exec(manager, CLAIM_WITH_PAUSES).await?;
        }
        rewrite_scopes(manager, |scopes| {
            if ADMIN_BEFORE.iter().all(|s| scopes.contains(s)) && !scopes.contains(&NEW_SCOPE) {
                scopes.push(NEW_SCOPE);
            }
        })
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rewrite_scopes(manager, |scopes| scopes.retain(|s| *s != NEW_SCOPE)).await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            // Back to m20261125_000006's function (same signature, so a plain replace).
            let previous = crate::m20261125_000006_create_claim_function::CREATE.replacen(
                "CREATE FUNCTION",
                "CREATE OR REPLACE FUNCTION",
                1,
            );
            crate::exec(manager, &previous).await?;
        }
        manager
            .drop_table(Table::drop().table(QueuePauses::Table).to_owned())
            .await
    }
}

/// Applies `edit` to every key's scope list (stored space-separated, sorted), writing back
/// only the keys it changed. Keys are few; this runs once.
pub(crate) async fn rewrite_scopes(
    manager: &SchemaManager<'_>,
    edit: impl Fn(&mut Vec<&str>),
) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let backend = manager.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT kid, scopes FROM api_keys",
        ))
        .await?;
    for row in rows {
        let kid: String = row.try_get("", "kid")?;
        let stored: String = row.try_get("", "scopes")?;
        let mut scopes: Vec<&str> = stored.split_whitespace().collect();
        edit(&mut scopes);
        scopes.sort_unstable();
        scopes.dedup();
        let updated = scopes.join(" ");
        if updated != stored {
            let sql = match backend {
                DbBackend::Postgres => "UPDATE api_keys SET scopes = $1 WHERE kid = $2",
                _ => "UPDATE api_keys SET scopes = ? WHERE kid = ?",
            };
            db.execute_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [updated.into(), kid.into()],
            ))
            .await?;
        }
    }
    Ok(())
}
