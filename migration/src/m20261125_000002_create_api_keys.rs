use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261125_000001_create_organizations::Organizations;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Kid,
    OrgId,
    Name,
    Scopes,
    SecretHash,
    PreviousSecretHash,
    PreviousValidUntil,
    Legacy,
    CreatedByType,
    CreatedById,
    CreatedAt,
    UpdatedAt,
    ExpiresAt,
    RevokedAt,
    RotatedAt,
    LastUsedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .col(string_len(ApiKeys::Kid, 32).primary_key())
                    .col(string_len_null(ApiKeys::OrgId, 36))
                    .col(string_len(ApiKeys::Name, 100))
                    .col(string_len(ApiKeys::Scopes, 400))
                    .col(text(ApiKeys::SecretHash))
                    .col(text_null(ApiKeys::PreviousSecretHash))
                    .col(timestamp_with_time_zone_null(ApiKeys::PreviousValidUntil))
                    .col(boolean(ApiKeys::Legacy).default(false))
                    .col(string_len(ApiKeys::CreatedByType, 16))
                    .col(string_len(ApiKeys::CreatedById, 200))
                    .col(timestamp_with_time_zone(ApiKeys::CreatedAt))
                    .col(timestamp_with_time_zone(ApiKeys::UpdatedAt))
                    .col(timestamp_with_time_zone_null(ApiKeys::ExpiresAt))
                    .col(timestamp_with_time_zone_null(ApiKeys::RevokedAt))
                    .col(timestamp_with_time_zone_null(ApiKeys::RotatedAt))
                    .col(timestamp_with_time_zone_null(ApiKeys::LastUsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_api_keys_org")
                            .from(ApiKeys::Table, ApiKeys::OrgId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Names are unique among an org's active keys (platform keys share the '' org);
        // a revoked key keeps its row for the audit trail and frees its name.
        crate::exec(
            manager,
            "CREATE UNIQUE INDEX ux_api_keys_active_name ON api_keys \
             (COALESCE(org_id, ''), name) WHERE revoked_at IS NULL",
        )
        .await?;
        for sql in [
            "CREATE INDEX ix_api_keys_org_created ON api_keys (org_id, created_at, kid)",
            // Keys imported from the earlier system carry no kid: they are found by hash,
            // also during a rotation's grace period.
            "CREATE INDEX ix_api_keys_legacy_hash ON api_keys (secret_hash) WHERE legacy",
            "CREATE INDEX ix_api_keys_previous_hash ON api_keys (previous_secret_hash) \
             WHERE previous_secret_hash IS NOT NULL",
        ] {
            crate::exec(manager, sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ApiKeys::Table).to_owned())
            .await
    }
}
