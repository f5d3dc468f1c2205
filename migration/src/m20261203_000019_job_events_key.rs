//! PostgreSQL: `job_events` keyed by `(job_id, seq)`, the order every read and the
//! retention use, instead of `seq` alone plus an index on `(job_id, seq)` (issue
//! "Performance": one index entry per event instead of two; a job writes three events on
//! its way through the queue, so three B-tree inserts fewer per job, and their WAL).
//!
//! `seq` stays an identity, unique on its own; nothing looks an event up by `seq` alone.
//! SQLite is unchanged: its `seq` is the rowid, and `(job_id, seq)` is already its only
//! index. On a large table the new key is built while the table is locked.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        for sql in [
            "ALTER TABLE job_events DROP CONSTRAINT job_events_pkey",
            "ALTER TABLE job_events ADD CONSTRAINT job_events_pkey PRIMARY KEY (job_id, seq)",
            "DROP INDEX ix_job_events_job_seq",
        ] {
            crate::exec(manager, sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        for sql in [
            "CREATE INDEX ix_job_events_job_seq ON job_events (job_id, seq)",
            "ALTER TABLE job_events DROP CONSTRAINT job_events_pkey",
            "ALTER TABLE job_events ADD CONSTRAINT job_events_pkey PRIMARY KEY (seq)",
        ] {
            crate::exec(manager, sql).await?;
        }
        Ok(())
    }
}
