//! A job list page read in one snapshot, on PostgreSQL.
//!
//! m20261206_000026's `velu_list_jobs` reads a page in two statements: the first scans the
//! page's sizes to count the rows its byte budget keeps, the second reads that many whole
//! rows. Each statement of a volatile PL/pgSQL function takes its own snapshot, so a job
//! submitted (or removed) between the two shifted the page by a row: a first page could
//! answer a row the size scan had not seen and leave out its last (which the next page
//! then held; nothing was skipped), and the rows kept were counted for other rows than
//! those sent. The function only reads (`velu_enter_org` binds the transaction to the
//! org with `set_config`, which is no write), so it is now `STABLE`: its statements all
//! read the snapshot of the statement that calls it.
//!
//! A single statement was measured instead (one scan, the sizes' running sum and the
//! count in windows over the whole rows), in two shapes: 1.05x and 0.92x of m26 for pages
//! of 20, 0.83x and 0.97x for pages of 200 (docs/benchmarks-log.md, "A job page in one
//! snapshot"), so the shape of m26 stays.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The function, by its arguments.
const LIST: &str = "velu_list_jobs(text, text, text, text, text, text, bigint, bigint)";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        crate::exec(manager, &format!("ALTER FUNCTION {LIST} STABLE")).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        crate::exec(manager, &format!("ALTER FUNCTION {LIST} VOLATILE")).await
    }
}
