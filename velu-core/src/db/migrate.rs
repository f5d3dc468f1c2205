//! Applying and checking migrations, safely with several processes.
//!
//! Migrations run inside one transaction that first takes a lock: `BEGIN IMMEDIATE` on
//! SQLite, `pg_advisory_xact_lock` on PostgreSQL. A second process that starts at the same
//! moment waits, then finds nothing pending.

use migration::{Migrator, MigratorTrait};
use sea_orm::ConnectionTrait;
use serde::Serialize;

use super::{Backend, Db};
use crate::{CoreError, CoreResult};

/// Arbitrary but fixed key of the advisory lock that serializes migrations.
const MIGRATION_LOCK_KEY: i64 = 0x7665_6c75_6d69_6772; // "velumigr"

/// What a process does about the schema when it opens the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaPolicy {
    /// Apply pending migrations (SQLite always; Postgres with `migrate up`/`serve --migrate`).
    Apply,
    /// Refuse to run if anything is pending (Postgres default).
    Require,
    /// Do not look (`migrate status` and `migrate up` themselves).
    Ignore,
}

/// Whether a migration has been applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MigrationState {
    /// In the database.
    Applied,
    /// Not yet applied.
    Pending,
}

/// One migration and its state, as `migrate status` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationStatus {
    /// The migration's name, e.g. `m20261125_000001_create_organizations`.
    pub name: String,
    /// `applied` or `pending`.
    pub state: MigrationState,
}

impl Db {
    /// Applies every pending migration under the migration lock; returns their names.
    pub async fn migrate_up(&self) -> CoreResult<Vec<String>> {
        let tx = self.write_tx().await?;
        if self.backend == Backend::Postgres {
            // Schema changes are the connecting user's, not the app role's.
            super::rls::as_connecting_user(&tx).await?;
            tx.execute_unprepared(&format!(
                "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
            ))
            .await?;
        }
        let pending: Vec<String> = Migrator::get_pending_migrations(&tx)
            .await
            .map_err(schema_error)?
            .iter()
            .map(|m| m.name().to_owned())
            .collect();
        Migrator::up(&tx, None).await.map_err(schema_error)?;
        tx.commit().await?;
        if !pending.is_empty() {
            tracing::info!(applied = ?pending, "migrations applied");
        }
        Ok(pending)
    }

    /// Every migration this binary knows, with its state in the database.
    pub async fn migration_status(&self) -> CoreResult<Vec<MigrationStatus>> {
        let list = Migrator::get_migration_with_status_read_only(self.conn())
            .await
            .map_err(schema_error)?;
        Ok(list
            .iter()
            .map(|m| MigrationStatus {
                name: m.name().to_owned(),
                state: match m.status() {
                    migration::MigrationStatus::Applied => MigrationState::Applied,
                    migration::MigrationStatus::Pending => MigrationState::Pending,
                },
            })
            .collect())
    }

    /// Fails with `schema_mismatch` when migrations are pending, telling the operator what
    /// to run.
    pub async fn require_current_schema(&self) -> CoreResult<()> {
        let pending: Vec<String> = self
            .migration_status()
            .await?
            .into_iter()
            .filter(|m| m.state == MigrationState::Pending)
            .map(|m| m.name)
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        Err(CoreError::SchemaMismatch(format!(
            "the database schema is behind this binary ({} pending migration{}: {}); \
             run `velu-cli migrate up` (or `velu-cli serve --migrate`)",
            pending.len(),
            if pending.len() == 1 { "" } else { "s" },
            pending.join(", ")
        )))
    }

    /// Applies or checks the schema as `policy` says.
    pub async fn prepare_schema(&self, policy: SchemaPolicy) -> CoreResult<()> {
        match policy {
            SchemaPolicy::Apply => self.migrate_up().await.map(|_| ()),
            SchemaPolicy::Require => self.require_current_schema().await,
            SchemaPolicy::Ignore => Ok(()),
        }
    }
}

/// A migration bookkeeping error: an applied migration this binary does not know means
/// the database is newer than the binary.
fn schema_error(err: sea_orm::DbErr) -> CoreError {
    let text = err.to_string();
    if text.contains("is missing, this migration has been applied") {
        CoreError::SchemaMismatch(
            "the database has migrations this binary does not know; it was migrated by a \
             newer Velu. Upgrade this binary."
                .into(),
        )
    } else {
        CoreError::from(err)
    }
}
