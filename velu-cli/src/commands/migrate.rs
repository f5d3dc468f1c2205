//! `velu-cli migrate ...`

use clap::Subcommand;
use serde::Serialize;
use velu_core::CoreResult;
use velu_core::db::MigrationStatus;

use crate::context::Global;

/// Database schema migrations.
#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Apply pending migrations (under a lock: safe with several processes).
    Up,
    /// List applied and pending migrations.
    Status,
}

#[derive(Serialize)]
struct Applied {
    applied: Vec<String>,
}

#[derive(Serialize)]
struct StatusDoc {
    backend: &'static str,
    items: Vec<MigrationStatus>,
}

impl MigrateCommand {
    pub async fn run(self, g: &Global) -> CoreResult<String> {
        let velu = g.open_unchecked().await?;
        match self {
            MigrateCommand::Up => g.render(&Applied {
                applied: velu.db().migrate_up().await?,
            }),
            MigrateCommand::Status => g.render(&StatusDoc {
                backend: velu.db().backend().as_str(),
                items: velu.db().migration_status().await?,
            }),
        }
    }
}
