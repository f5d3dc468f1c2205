use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261125_000001_create_organizations::Organizations;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Schedules {
    Table,
    Id,
    OrgId,
    Task,
    Cron,
    Timezone,
    Payload,
    Paused,
    NextRunAt,
    LastEnqueuedAt,
    LastJobId,
    LastError,
    CreatedByType,
    CreatedById,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ScheduleTicks {
    Table,
    ScheduleId,
    TickAt,
    JobId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Schedules::Table)
                    .col(string_len(Schedules::Id, 36).primary_key())
                    .col(string_len(Schedules::OrgId, 36))
                    .col(string_len(Schedules::Task, 64))
                    .col(string_len(Schedules::Cron, 200))
                    .col(string_len(Schedules::Timezone, 64))
                    .col(json_binary(Schedules::Payload))
                    .col(boolean(Schedules::Paused).default(false))
                    // `NULL` once the cron has no further tick (past year 5000).
                    .col(timestamp_with_time_zone_null(Schedules::NextRunAt))
                    .col(timestamp_with_time_zone_null(Schedules::LastEnqueuedAt))
                    // No foreign key to jobs: the schedule outlives nothing it points at.
                    .col(string_len_null(Schedules::LastJobId, 36))
                    .col(text_null(Schedules::LastError))
                    .col(string_len(Schedules::CreatedByType, 16))
                    .col(string_len(Schedules::CreatedById, 200))
                    .col(timestamp_with_time_zone(Schedules::CreatedAt))
                    .col(timestamp_with_time_zone(Schedules::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_schedules_org")
                            .from(Schedules::Table, Schedules::OrgId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // One row per tick that was handled: the primary key is what makes "one job per
        // tick" hold whatever the number of processes (the job is inserted in the same
        // transaction as this row).
        manager
            .create_table(
                Table::create()
                    .table(ScheduleTicks::Table)
                    .col(string_len(ScheduleTicks::ScheduleId, 36))
                    .col(timestamp_with_time_zone(ScheduleTicks::TickAt))
                    .col(string_len_null(ScheduleTicks::JobId, 36))
                    .col(timestamp_with_time_zone(ScheduleTicks::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(ScheduleTicks::ScheduleId)
                            .col(ScheduleTicks::TickAt),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_schedule_ticks_schedule")
                            .from(ScheduleTicks::Table, ScheduleTicks::ScheduleId)
                            .to(Schedules::Table, Schedules::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for sql in [
            // The ticker's scan: due rows of unpaused schedules only.
            "CREATE INDEX ix_schedules_due ON schedules (next_run_at) WHERE paused = false",
            // Listing, oldest first (ids are UUIDv7).
            "CREATE INDEX ix_schedules_org_id ON schedules (org_id, id)",
        ] {
            crate::exec(manager, sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ScheduleTicks::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Schedules::Table).to_owned())
            .await
    }
}
