use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    OrgId,
    ActorType,
    ActorId,
    Action,
    TargetType,
    TargetId,
    Details,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // No foreign key to organizations: the trail outlives whatever it talks about.
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(string_len(AuditEvents::Id, 36).primary_key())
                    .col(string_len_null(AuditEvents::OrgId, 36))
                    .col(string_len(AuditEvents::ActorType, 16))
                    .col(string_len(AuditEvents::ActorId, 200))
                    .col(string_len(AuditEvents::Action, 64))
                    .col(string_len(AuditEvents::TargetType, 32))
                    .col(string_len(AuditEvents::TargetId, 64))
                    .col(json(AuditEvents::Details))
                    .col(timestamp_with_time_zone(AuditEvents::CreatedAt))
                    .to_owned(),
            )
            .await?;
        crate::exec(
            manager,
            "CREATE INDEX ix_audit_events_org_id ON audit_events (org_id, id)",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditEvents::Table).to_owned())
            .await
    }
}
