//! Attempts are appended once, when they end (issue "Performance": a narrow history,
//! inserted at finish rather than inserted at claim and updated later).
//!
//! The attempt in progress lives on its job's row: the attempt number (`attempts`), the
//! worker (`lease_owner`), the fencing token (`lease_token`) and, new here, when it
//! started (`lease_started_at`). The finish, a lease reclaim or a release appends the
//! attempt's one `job_attempts` row with its outcome. A claim writes no attempt row: per
//! job, one heap tuple and one index entry fewer at claim, and the finish inserts a row
//! instead of updating one.
//!
//! Existing jobs are carried over: a running job's open attempt moves onto its row (its
//! start and worker stay as recorded) and the open `job_attempts` row is removed; finished
//! attempts are untouched. `down` puts the open rows back.
//!
//! On PostgreSQL `velu_claim_jobs` is replaced by the same claim without the attempt
//! insert, stamping `lease_started_at`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::timestamp_with_time_zone_null;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Jobs {
    Table,
    LeaseStartedAt,
}

/// `velu_claim_jobs` of m20261201_000007 without the attempt row, with the start stamp.
pub(crate) fn claim_function() -> String {
    let previous = crate::m20261201_000007_create_queue_pauses::CLAIM_WITH_PAUSES;
    let from = "updated_at = p_now
        FROM picked WHERE j.id = picked.id
        RETURNING j.*
    ),
    attempt_rows AS (
        INSERT INTO job_attempts (job_id, attempt, worker_id, lease_token, started_at)
        SELECT c.id, c.attempts, p_worker, c.lease_token, p_now FROM claimed c
    )";
    let to = "updated_at = p_now, lease_started_at = p_now
        FROM picked WHERE j.id = picked.id
        RETURNING j.*
    )";
    assert!(previous.contains(from), "m20261201_000007's claim changed");
    previous.replacen(from, to, 1)
}

/// Running jobs' open attempts onto their rows, then the open rows removed (only those
/// of a running job's current attempt: anything else is history and stays).
const CARRY_OVER: [&str; 2] = [
    "UPDATE jobs SET lease_started_at = COALESCE(
       (SELECT a.started_at FROM job_attempts a
        WHERE a.job_id = jobs.id AND a.attempt = jobs.attempts AND a.finished_at IS NULL),
       started_at, updated_at)
     WHERE status = 'running'",
    "DELETE FROM job_attempts
     WHERE finished_at IS NULL
       AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = job_attempts.job_id
                   AND j.status = 'running' AND j.attempts = job_attempts.attempt)",
];

/// The open attempt rows of running jobs, as claims wrote them before this step.
const CARRY_BACK: &str =
    "INSERT INTO job_attempts (job_id, attempt, worker_id, lease_token, started_at)
     SELECT id, attempts, lease_owner, lease_token, COALESCE(lease_started_at, updated_at)
     FROM jobs
     WHERE status = 'running' AND lease_owner IS NOT NULL AND lease_token IS NOT NULL";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Jobs::Table)
                    .add_column(timestamp_with_time_zone_null(Jobs::LeaseStartedAt))
                    .to_owned(),
            )
            .await?;
        crate::exec_across_orgs(manager, &CARRY_OVER).await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            crate::exec(manager, &claim_function()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            crate::exec(
                manager,
                crate::m20261201_000007_create_queue_pauses::CLAIM_WITH_PAUSES,
            )
            .await?;
        }
        crate::exec_across_orgs(manager, &[CARRY_BACK]).await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Jobs::Table)
                    .drop_column(Jobs::LeaseStartedAt)
                    .to_owned(),
            )
            .await
    }
}
