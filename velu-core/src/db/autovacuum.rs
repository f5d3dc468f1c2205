//! PostgreSQL's autovacuum, checked when a process starts. The queue updates a job's row
//! at its claim and at its finish, so on a server that never vacuums the queue's tables
//! fill with dead rows and claims fall behind within a minute of steady load
//! (docs/benchmarks-log.md, "Sustained"). Velu does not vacuum for the server; it says so
//! at start instead of degrading in silence (docs/operations.md, "Vacuum").

use sea_orm::{ConnectionTrait, Statement};

use super::{Backend, Db};
use crate::CoreResult;

/// The queue's tables, where dead rows pile up at the rate jobs run.
pub const QUEUE_TABLES: [&str; 5] = [
    "job_attempts",
    "job_counts",
    "job_events",
    "jobs",
    "usage_daily",
];

/// Where autovacuum is switched off for the queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutovacuumOff {
    /// The server's `autovacuum` setting is off.
    pub server: bool,
    /// Queue tables with the storage parameter `autovacuum_enabled = false`, by name.
    pub tables: Vec<String>,
}

impl AutovacuumOff {
    /// Whether any of the queue's tables goes without autovacuum.
    pub fn any(&self) -> bool {
        self.server || !self.tables.is_empty()
    }
}

/// Where autovacuum is off for the queue's tables, on PostgreSQL (SQLite needs no vacuum
/// for this: nowhere).
pub async fn autovacuum_off(db: &Db) -> CoreResult<AutovacuumOff> {
    if db.backend() != Backend::Postgres {
        return Ok(AutovacuumOff::default());
    }
    let names = QUEUE_TABLES
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT current_setting('autovacuum') = 'off' AS server,
           COALESCE((SELECT string_agg(c.relname::text, ' ' ORDER BY c.relname) FROM pg_class c
                     WHERE c.relname IN ({names})
                       AND c.relnamespace = current_schema()::regnamespace
                       AND c.reloptions @> ARRAY['autovacuum_enabled=false']), '') AS tables"
    );
    let row = db
        .conn()
        .query_one_raw(Statement::from_string(db.db_backend(), sql))
        .await?;
    let Some(row) = row else {
        return Ok(AutovacuumOff::default());
    };
    let tables: String = row.try_get("", "tables")?;
    Ok(AutovacuumOff {
        server: row.try_get("", "server")?,
        tables: tables.split_whitespace().map(str::to_owned).collect(),
    })
}

/// Logs a warning when autovacuum is off for the queue (a failed check is only logged).
pub(crate) async fn warn_if_off(db: &Db) {
    match autovacuum_off(db).await {
        Ok(off) if off.any() => tracing::warn!(
            server_setting_off = off.server,
            tables = ?off.tables,
            "PostgreSQL autovacuum is off for the queue's tables: dead rows will pile up and \
             claims fall behind under load; turn it on, or VACUUM (ANALYZE) the queue's \
             tables on a timer (docs/operations.md, \"Vacuum\")"
        ),
        Ok(_) => {}
        Err(e) => tracing::debug!(error = %e, "could not check autovacuum"),
    }
}
