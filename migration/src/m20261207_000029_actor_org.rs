//! The org of the key behind each audit record and queue pause (`actor_org_id`).
//!
//! An org's keys read what the platform did in their org (the operator, a platform key)
//! as actor `platform`; their own keys keep their ids. velu-core told the two apart by
//! finding the actor's key id among the org's `api_keys` rows, so a key row removed (the
//! retention run's dead keys, docs/retention.md) would have turned everything that key
//! did into the platform's. Each record now keeps the org of the key that acted, written
//! with it: `NULL` for the operator, platform keys, schedules and billing events, whose
//! reading never depended on it.
//!
//! The backfill copies each key actor's org from `api_keys` (every key row is still
//! there when this runs); a record whose key is not found stays `NULL`, which reads as
//! the platform's, as it did before. `down` drops the columns.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The tables that record an actor, and the column that names its key.
const TABLES: [&str; 2] = ["audit_events", "queue_pauses"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in TABLES {
            crate::exec(
                manager,
                &format!("ALTER TABLE {table} ADD COLUMN actor_org_id varchar(36) NULL"),
            )
            .await?;
        }
        let backfill: Vec<String> = TABLES
            .iter()
            .map(|table| {
                format!(
                    "UPDATE {table} SET actor_org_id = \
                       (SELECT k.org_id FROM api_keys k WHERE k.kid = {table}.actor_id) \
                     WHERE actor_type = 'api_key'"
                )
            })
            .collect();
        let statements: Vec<&str> = backfill.iter().map(String::as_str).collect();
        crate::exec_across_orgs(manager, &statements).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in TABLES {
            crate::exec(
                manager,
                &format!("ALTER TABLE {table} DROP COLUMN actor_org_id"),
            )
            .await?;
        }
        Ok(())
    }
}
