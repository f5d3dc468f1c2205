//! `ix_api_keys_org_active`: an org's unrevoked keys by expiry, so the key quota reads
//! at most the plan's limit of index entries, however many keys the org revoked or let
//! expire (issue "Performance", target 6).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::exec(
            manager,
            "CREATE INDEX ix_api_keys_org_active ON api_keys (org_id, expires_at) \
             WHERE revoked_at IS NULL",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::exec(manager, "DROP INDEX IF EXISTS ix_api_keys_org_active").await
    }
}
