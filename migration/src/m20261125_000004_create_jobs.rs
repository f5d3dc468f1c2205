use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261125_000001_create_organizations::Organizations;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub(crate) enum Jobs {
    Table,
    Id,
    OrgId,
    Task,
    Status,
    Payload,
    Result,
    Error,
    Priority,
    Attempts,
    MaxAttempts,
    RunAt,
    ActorType,
    ActorId,
    IdempotencyKey,
    CancelRequested,
    LeaseOwner,
    LeaseToken,
    LeaseExpiresAt,
    CreatedAt,
    UpdatedAt,
    StartedAt,
    FinishedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Jobs::Table)
                    .col(string_len(Jobs::Id, 36).primary_key())
                    .col(string_len(Jobs::OrgId, 36))
                    .col(string_len(Jobs::Task, 64))
                    .col(
                        string_len(Jobs::Status, 16).check(Expr::col(Jobs::Status).is_in([
                            "queued",
                            "running",
                            "succeeded",
                            "failed",
                            "cancelled",
                        ])),
                    )
                    .col(json_binary(Jobs::Payload))
                    .col(json_binary_null(Jobs::Result))
                    .col(json_binary_null(Jobs::Error))
                    .col(integer(Jobs::Priority).default(0))
                    .col(integer(Jobs::Attempts).default(0))
                    .col(integer(Jobs::MaxAttempts))
                    .col(timestamp_with_time_zone(Jobs::RunAt))
                    .col(string_len(Jobs::ActorType, 16))
                    .col(string_len(Jobs::ActorId, 200))
                    .col(string_len_null(Jobs::IdempotencyKey, 200))
                    .col(boolean(Jobs::CancelRequested).default(false))
                    .col(string_len_null(Jobs::LeaseOwner, 200))
                    .col(string_len_null(Jobs::LeaseToken, 36))
                    .col(timestamp_with_time_zone_null(Jobs::LeaseExpiresAt))
                    .col(timestamp_with_time_zone(Jobs::CreatedAt))
                    .col(timestamp_with_time_zone(Jobs::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Jobs::StartedAt))
                    .col(timestamp_with_time_zone_null(Jobs::FinishedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_jobs_org")
                            .from(Jobs::Table, Jobs::OrgId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for sql in [
            // Claiming: only queued rows are indexed, so finished history costs nothing.
            "CREATE INDEX ix_jobs_claim ON jobs (org_id, priority DESC, run_at, id) \
             WHERE status = 'queued'",
            // Per-org running count (plan concurrency); lease reclaim scans it too (running
            // jobs are few: plans cap them).
            "CREATE INDEX ix_jobs_running_org ON jobs (org_id) WHERE status = 'running'",
            // Listing, newest first (ids are UUIDv7, so id order is creation order).
            "CREATE INDEX ix_jobs_org_id ON jobs (org_id, id)",
            "CREATE INDEX ix_jobs_org_status_id ON jobs (org_id, status, id)",
            "CREATE INDEX ix_jobs_org_task_id ON jobs (org_id, task, id)",
            "CREATE UNIQUE INDEX ux_jobs_idempotency ON jobs (org_id, idempotency_key) \
             WHERE idempotency_key IS NOT NULL",
        ] {
            crate::exec(manager, sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Jobs::Table).to_owned())
            .await
    }
}
