//! Counts the job and key counters again from the rows, on PostgreSQL.
//!
//! Migrations m20261202_000015 (`job_counts`) and m20261205_000023 (`key_counts`) filled
//! their counters from the jobs and keys already there; run by a user that is not a
//! superuser (the documented setup), row-level security hid every row from that backfill,
//! and the counters started from nothing, so queue stats and the queued-jobs and key
//! quotas undercounted what existed before. Those steps now backfill across orgs; this
//! one repairs databases they already ran on. The triggers keep exact counts, so on a
//! database migrated by a superuser the recount finds the same numbers (folded onto
//! shard 0). SQLite has no row-level security and needs nothing.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::m20261202_000015_create_job_counts::BACKFILL as JOBS;
use crate::m20261205_000023_key_counts::BACKFILL as KEYS;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        // Writes of jobs and keys held off meanwhile (migrations run in one transaction on
        // PostgreSQL): nothing is missed or counted twice.
        crate::exec(manager, "LOCK TABLE jobs IN SHARE ROW EXCLUSIVE MODE").await?;
        crate::exec(manager, "LOCK TABLE api_keys IN SHARE ROW EXCLUSIVE MODE").await?;
        crate::exec_across_orgs(
            manager,
            &[
                "DELETE FROM job_counts",
                JOBS,
                "DELETE FROM key_counts",
                KEYS,
            ],
        )
        .await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // A recount has nothing to undo.
        Ok(())
    }
}
