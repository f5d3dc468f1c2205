use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Workers {
    Table,
    Id,
    OrgId,
    Host,
    Version,
    Kinds,
    Remote,
    Concurrency,
    HeartbeatSecs,
    RunningJobs,
    StartedAt,
    LastSeenAt,
    StaleAt,
    StoppedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // No foreign key to organizations: a row is pruned a day after its worker was last
        // seen, and an org's deletion should not wait on its workers' rows.
        manager
            .create_table(
                Table::create()
                    .table(Workers::Table)
                    .col(string_len(Workers::Id, 200).primary_key())
                    .col(string_len_null(Workers::OrgId, 36))
                    .col(string_len(Workers::Host, 255))
                    .col(string_len(Workers::Version, 64))
                    .col(json(Workers::Kinds))
                    .col(boolean(Workers::Remote))
                    .col(integer(Workers::Concurrency))
                    .col(integer(Workers::HeartbeatSecs))
                    .col(integer(Workers::RunningJobs).default(0))
                    .col(timestamp_with_time_zone(Workers::StartedAt))
                    .col(timestamp_with_time_zone(Workers::LastSeenAt))
                    .col(timestamp_with_time_zone(Workers::StaleAt))
                    .col(timestamp_with_time_zone_null(Workers::StoppedAt))
                    .to_owned(),
            )
            .await?;
        crate::exec(
            manager,
            "CREATE INDEX ix_workers_last_seen_at ON workers (last_seen_at)",
        )
        .await?;
        crate::exec(
            manager,
            "CREATE INDEX ix_workers_org_id ON workers (org_id, id)",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Workers::Table).to_owned())
            .await
    }
}
