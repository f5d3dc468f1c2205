//! `job_events`: each job's bounded event stream (queued, claimed, heartbeats, progress
//! lines, retries, cancel, the end), read with `after=SEQ` (docs/events.md).
//!
//! `seq` is one increasing number shared by every job (an identity on PostgreSQL, an
//! autoincrement rowid on SQLite): along one job's stream it only grows, because every
//! writer of a job's events holds the job's row lock (or is the transaction creating the
//! job) when it inserts. `org_id` is there for row-level security and tenant filters.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum JobEvents {
    Table,
    Seq,
    JobId,
    OrgId,
    Kind,
    At,
    Attempt,
    WorkerId,
    Status,
    ErrorCode,
    RunAt,
    Detail,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // No foreign key to jobs: the insert stays one index probe cheaper on the hot
        // path, and jobs are never deleted one by one.
        manager
            .create_table(
                Table::create()
                    .table(JobEvents::Table)
                    .col(
                        ColumnDef::new(JobEvents::Seq)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(string_len(JobEvents::JobId, 36))
                    .col(string_len(JobEvents::OrgId, 36))
                    .col(string_len(JobEvents::Kind, 32))
                    .col(timestamp_with_time_zone(JobEvents::At))
                    .col(integer_null(JobEvents::Attempt))
                    .col(string_len_null(JobEvents::WorkerId, 200))
                    .col(string_len_null(JobEvents::Status, 32))
                    .col(string_len_null(JobEvents::ErrorCode, 64))
                    .col(timestamp_with_time_zone_null(JobEvents::RunAt))
                    .col(text_null(JobEvents::Detail))
                    .to_owned(),
            )
            .await?;
        crate::exec(
            manager,
            "CREATE INDEX ix_job_events_job_seq ON job_events (job_id, seq)",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(JobEvents::Table).to_owned())
            .await
    }
}
