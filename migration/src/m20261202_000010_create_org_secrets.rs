//! `org_secrets`: each org's secrets for its jobs, sealed with XChaCha20-Poly1305 under the
//! platform's key-encryption key (velu-core's `secrets`). One row per (org, name), the
//! current version only; `key_id` names the key that sealed it (a fingerprint, never the
//! key), so `secret rekey` knows which rows to re-seal. No value is ever stored in clear.
//!
//! It also grants the new scope `admin:secrets:manage` to every key that holds every other
//! scope of the admin role, so admin keys made before keep working as admins (bootstrap
//! and key operations need every scope of the admin role).

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261125_000001_create_organizations::Organizations;
use crate::m20261201_000007_create_queue_pauses::rewrite_scopes;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum OrgSecrets {
    Table,
    Id,
    OrgId,
    Name,
    Version,
    KeyId,
    Nonce,
    Ciphertext,
    UpdatedByType,
    UpdatedById,
    CreatedAt,
    UpdatedAt,
}

/// The scope this step adds, and the admin role's scopes before it.
const NEW_SCOPE: &str = "admin:secrets:manage";
const ADMIN_BEFORE: [&str; 5] = [
    "admin:api_keys:manage",
    "admin:queue:manage",
    "audit:read",
    "jobs:read",
    "jobs:submit",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OrgSecrets::Table)
                    .col(string_len(OrgSecrets::Id, 36).primary_key())
                    .col(string_len(OrgSecrets::OrgId, 36))
                    .col(string_len(OrgSecrets::Name, 64))
                    .col(big_integer(OrgSecrets::Version))
                    .col(string_len(OrgSecrets::KeyId, 32))
                    .col(blob(OrgSecrets::Nonce))
                    .col(blob(OrgSecrets::Ciphertext))
                    .col(string_len(OrgSecrets::UpdatedByType, 16))
                    .col(string_len(OrgSecrets::UpdatedById, 200))
                    .col(timestamp_with_time_zone(OrgSecrets::CreatedAt))
                    .col(timestamp_with_time_zone(OrgSecrets::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_org_secrets_org")
                            .from(OrgSecrets::Table, OrgSecrets::OrgId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for sql in [
            // One current value per name in an org; also the listing order.
            "CREATE UNIQUE INDEX ux_org_secrets_org_name ON org_secrets (org_id, name)",
            // `secret rekey` walks the rows of one key.
            "CREATE INDEX ix_org_secrets_key_id ON org_secrets (key_id, id)",
        ] {
            crate::exec(manager, sql).await?;
        }
        rewrite_scopes(manager, |scopes| {
            if ADMIN_BEFORE.iter().all(|s| scopes.contains(s)) && !scopes.contains(&NEW_SCOPE) {
                scopes.push(NEW_SCOPE);
            }
        })
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rewrite_scopes(manager, |scopes| scopes.retain(|s| *s != NEW_SCOPE)).await?;
        manager
            .drop_table(Table::drop().table(OrgSecrets::Table).to_owned())
            .await
    }
}
