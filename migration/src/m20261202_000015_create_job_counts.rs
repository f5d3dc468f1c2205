//! `job_counts`: how many jobs each org has, by task kind and status, kept by triggers on
//! `jobs` so that `job stats` and the queued-jobs quota read a few counter rows instead of
//! counting history (issue "Performance", targets 5 and 6).
//!
//! The counters are maintained by the database itself, so no path that writes `jobs`
//! (submits, the claim function, finishes, lease reclaims, cancels, retries, schedules,
//! retention) can forget them:
//!
//! * PostgreSQL: three statement-level triggers with transition tables, so a claim or a
//!   finish of a batch adds one aggregated delta per (org, task, status) it touched, not
//!   one per job. Each delta lands on one of 16 shards chosen by the writing backend's pid,
//!   so concurrent writers of one org rarely wait on the same counter row; the deltas of a
//!   statement are written in key order, so two writers never lock counters in opposite
//!   orders. A shard may go negative (a job counted queued on one shard and claimed on
//!   another); only the sum over shards means anything.
//! * SQLite: row triggers (one writer at a time: there is nothing to contend on), shard 0.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The shards a PostgreSQL org's counter is spread over.
pub(crate) const SHARDS: i32 = 16;

const CREATE: &str = "CREATE TABLE job_counts (
    org_id varchar(36) NOT NULL,
    task varchar(64) NOT NULL,
    status varchar(16) NOT NULL,
    shard smallint NOT NULL,
    n bigint NOT NULL,
    PRIMARY KEY (org_id, task, status, shard)
)";

/// The counts of the jobs already there, on shard 0.
pub(crate) const BACKFILL: &str = "INSERT INTO job_counts (org_id, task, status, shard, n)
    SELECT org_id, task, status, 0, count(*) FROM jobs GROUP BY org_id, task, status";

/// The key order m20261202_000015 wrote a statement's deltas in (see
/// m20261204_000021 for the order that replaced it).
pub(crate) const ORDER_BY_KEY: &str = "org_id, task, status";

/// The three counter functions, each writing its statement's deltas in order `order`
/// (`create`: `CREATE FUNCTION` or `CREATE OR REPLACE FUNCTION`).
pub(crate) fn counter_functions(create: &str, order: &str) -> String {
    // `sign` is +1 for rows entering a status, -1 for rows leaving it.
    let apply = |source: &str| {
        format!(
            "INSERT INTO job_counts (org_id, task, status, shard, n)
             SELECT org_id, task, status, pg_backend_pid() % {SHARDS}, sum(d)
             FROM ({source}) AS delta
             GROUP BY org_id, task, status
             HAVING sum(d) <> 0
             ORDER BY {order}
             ON CONFLICT (org_id, task, status, shard)
             DO UPDATE SET n = job_counts.n + EXCLUDED.n;"
        )
    };
    let inserted = apply("SELECT org_id, task, status, 1 AS d FROM new_rows");
    let deleted = apply("SELECT org_id, task, status, -1 AS d FROM old_rows");
    let updated = apply(
        "SELECT org_id, task, status, 1 AS d FROM new_rows
         UNION ALL SELECT org_id, task, status, -1 AS d FROM old_rows",
    );
    format!(
        "{create} velu_job_counts_insert() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN {inserted} RETURN NULL; END $$;
         {create} velu_job_counts_delete() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN {deleted} RETURN NULL; END $$;
         {create} velu_job_counts_update() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN {updated} RETURN NULL; END $$;"
    )
}

fn postgres_functions() -> String {
    format!(
        "{functions}
         CREATE TRIGGER job_counts_insert AFTER INSERT ON jobs
           REFERENCING NEW TABLE AS new_rows
           FOR EACH STATEMENT EXECUTE FUNCTION velu_job_counts_insert();
         CREATE TRIGGER job_counts_delete AFTER DELETE ON jobs
           REFERENCING OLD TABLE AS old_rows
           FOR EACH STATEMENT EXECUTE FUNCTION velu_job_counts_delete();
         CREATE TRIGGER job_counts_update AFTER UPDATE ON jobs
           REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
           FOR EACH STATEMENT EXECUTE FUNCTION velu_job_counts_update();",
        functions = counter_functions("CREATE FUNCTION", ORDER_BY_KEY),
    )
}

fn sqlite_triggers() -> [String; 3] {
    let add = |row: &str, d: i32| {
        format!(
            "INSERT INTO job_counts (org_id, task, status, shard, n)
             VALUES ({row}.org_id, {row}.task, {row}.status, 0, {d})
             ON CONFLICT (org_id, task, status, shard) DO UPDATE SET n = n + {d};"
        )
    };
    [
        format!(
            "CREATE TRIGGER job_counts_insert AFTER INSERT ON jobs BEGIN {} END",
            add("new", 1)
        ),
        format!(
            "CREATE TRIGGER job_counts_delete AFTER DELETE ON jobs BEGIN {} END",
            add("old", -1)
        ),
        format!(
            "CREATE TRIGGER job_counts_update AFTER UPDATE OF status ON jobs
             WHEN old.status <> new.status BEGIN {} {} END",
            add("old", -1),
            add("new", 1)
        ),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::exec(manager, CREATE).await?;
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                // The backfill and the triggers in one transaction (migrations run in one
                // on PostgreSQL): no job written in between is missed or counted twice.
                crate::exec(manager, "LOCK TABLE jobs IN SHARE ROW EXCLUSIVE MODE").await?;
                crate::exec_across_orgs(manager, &[BACKFILL]).await?;
                crate::exec(manager, &postgres_functions()).await?;
                // A tenant table like the others: the writer's org only, or across orgs
                // on purpose (the triggers run as the writer, under its policy).
                crate::m20261202_000014_row_level_security::protect(manager, "job_counts").await?;
            }
            _ => {
                crate::exec(manager, BACKFILL).await?;
                for sql in sqlite_triggers() {
                    crate::exec(manager, &sql).await?;
                }
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for sql in [
            "DROP TRIGGER IF EXISTS job_counts_insert ON jobs",
            "DROP TRIGGER IF EXISTS job_counts_delete ON jobs",
            "DROP TRIGGER IF EXISTS job_counts_update ON jobs",
            "DROP FUNCTION IF EXISTS velu_job_counts_insert()",
            "DROP FUNCTION IF EXISTS velu_job_counts_delete()",
            "DROP FUNCTION IF EXISTS velu_job_counts_update()",
        ] {
            if manager.get_database_backend() == DbBackend::Postgres {
                crate::exec(manager, sql).await?;
            }
        }
        if manager.get_database_backend() != DbBackend::Postgres {
            for t in [
                "job_counts_insert",
                "job_counts_delete",
                "job_counts_update",
            ] {
                crate::exec(manager, &format!("DROP TRIGGER IF EXISTS {t}")).await?;
            }
        }
        crate::exec(manager, "DROP TABLE job_counts").await
    }
}
