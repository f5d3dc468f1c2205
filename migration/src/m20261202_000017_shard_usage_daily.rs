//! `usage_daily` gets a `shard` in its key, as `job_counts` has (issue "Performance"):
//! concurrent writers of one org's usage (grouped submits, finish batches of several
//! workers) add to different rows of the same (org, day, task) instead of queueing on one
//! row lock held until each commit. On PostgreSQL a writer's shard is its backend pid
//! modulo 16 (velu-core's `db::usage::SHARDS`); SQLite has one writer at a time and
//! writes shard 0. Reads sum the shards. Existing rows become shard 0.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const SQLITE_TABLE: &str = "CREATE TABLE usage_daily_sharded (
    org_id varchar(36) NOT NULL,
    day varchar(10) NOT NULL,
    task varchar(64) NOT NULL,
    shard smallint NOT NULL DEFAULT 0,
    jobs_submitted bigint NOT NULL DEFAULT 0,
    jobs_succeeded bigint NOT NULL DEFAULT 0,
    jobs_failed bigint NOT NULL DEFAULT 0,
    run_ms bigint NOT NULL DEFAULT 0,
    api_requests bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, day, task, shard),
    CONSTRAINT fk_usage_daily_org FOREIGN KEY (org_id) REFERENCES organizations (id) ON DELETE CASCADE
)";

/// SQLite cannot change a primary key in place: the table is copied (`unsharded` is the
/// same without `shard`, for `down`).
async fn sqlite_rebuild(manager: &SchemaManager<'_>, sharded: bool) -> Result<(), DbErr> {
    let (create, copy) = if sharded {
        (
            SQLITE_TABLE.to_owned(),
            "INSERT INTO usage_daily_sharded SELECT org_id, day, task, 0, jobs_submitted,
               jobs_succeeded, jobs_failed, run_ms, api_requests FROM usage_daily",
        )
    } else {
        (
            SQLITE_TABLE
                .replace("    shard smallint NOT NULL DEFAULT 0,\n", "")
                .replace("(org_id, day, task, shard)", "(org_id, day, task)"),
            "INSERT INTO usage_daily_sharded SELECT org_id, day, task, sum(jobs_submitted),
               sum(jobs_succeeded), sum(jobs_failed), sum(run_ms), sum(api_requests)
             FROM usage_daily GROUP BY org_id, day, task",
        )
    };
    for sql in [
        create.as_str(),
        copy,
        "DROP TABLE usage_daily",
        "ALTER TABLE usage_daily_sharded RENAME TO usage_daily",
        "CREATE INDEX ix_usage_daily_day ON usage_daily (day, org_id, task)",
    ] {
        crate::exec(manager, sql).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                for sql in [
                    "ALTER TABLE usage_daily ADD COLUMN shard smallint NOT NULL DEFAULT 0",
                    "ALTER TABLE usage_daily DROP CONSTRAINT usage_daily_pkey",
                    "ALTER TABLE usage_daily ADD PRIMARY KEY (org_id, day, task, shard)",
                ] {
                    crate::exec(manager, sql).await?;
                }
                Ok(())
            }
            _ => sqlite_rebuild(manager, true).await,
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                // Shards folded into shard 0 first (across orgs: the table forces its
                // policy even on its owner), then dropped.
                crate::exec_across_orgs(
                    manager,
                    &[
                    "UPDATE usage_daily u SET jobs_submitted = s.a, jobs_succeeded = s.b,
                       jobs_failed = s.c, run_ms = s.d, api_requests = s.e
                     FROM (SELECT org_id, day, task, sum(jobs_submitted) a, sum(jobs_succeeded) b,
                             sum(jobs_failed) c, sum(run_ms) d, sum(api_requests) e
                           FROM usage_daily GROUP BY org_id, day, task) s
                     WHERE u.org_id = s.org_id AND u.day = s.day AND u.task = s.task AND u.shard = 0",
                    "INSERT INTO usage_daily (org_id, day, task, shard, jobs_submitted,
                       jobs_succeeded, jobs_failed, run_ms, api_requests)
                     SELECT org_id, day, task, 0, sum(jobs_submitted), sum(jobs_succeeded),
                       sum(jobs_failed), sum(run_ms), sum(api_requests)
                     FROM usage_daily GROUP BY org_id, day, task
                     HAVING NOT bool_or(shard = 0)",
                    "DELETE FROM usage_daily WHERE shard <> 0",
                    ],
                )
                .await?;
                for sql in [
                    "ALTER TABLE usage_daily DROP CONSTRAINT usage_daily_pkey",
                    "ALTER TABLE usage_daily ADD PRIMARY KEY (org_id, day, task)",
                    "ALTER TABLE usage_daily DROP COLUMN shard",
                ] {
                    crate::exec(manager, sql).await?;
                }
                Ok(())
            }
            _ => sqlite_rebuild(manager, false).await,
        }
    }
}
