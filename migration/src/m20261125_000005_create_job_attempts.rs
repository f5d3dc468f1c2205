use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261125_000004_create_jobs::Jobs;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum JobAttempts {
    Table,
    JobId,
    Attempt,
    WorkerId,
    LeaseToken,
    StartedAt,
    FinishedAt,
    Outcome,
    Error,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(JobAttempts::Table)
                    .col(string_len(JobAttempts::JobId, 36))
                    .col(integer(JobAttempts::Attempt))
                    .col(string_len(JobAttempts::WorkerId, 200))
                    .col(string_len(JobAttempts::LeaseToken, 36))
                    .col(timestamp_with_time_zone(JobAttempts::StartedAt))
                    .col(timestamp_with_time_zone_null(JobAttempts::FinishedAt))
                    .col(string_len_null(JobAttempts::Outcome, 16).check(
                        Expr::col(JobAttempts::Outcome).is_null().or(
                            Expr::col(JobAttempts::Outcome).is_in([
                                "succeeded",
                                "failed",
                                "timed_out",
                                "cancelled",
                                "lost",
                            ]),
                        ),
                    ))
                    .col(json_binary_null(JobAttempts::Error))
                    .primary_key(
                        Index::create()
                            .col(JobAttempts::JobId)
                            .col(JobAttempts::Attempt),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_job_attempts_job")
                            .from(JobAttempts::Table, JobAttempts::JobId)
                            .to(Jobs::Table, Jobs::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(JobAttempts::Table).to_owned())
            .await
    }
}
