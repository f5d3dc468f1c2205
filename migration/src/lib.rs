//! Velu's database schema as sea-orm migrations, one file per step, each with a `down`.
//!
//! The same migrations run on SQLite and PostgreSQL. Partial and expression indexes are
//! written as SQL that both backends accept.

pub use sea_orm_migration::MigrationStatus;
pub use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

mod m20261125_000001_create_organizations;
mod m20261125_000002_create_api_keys;
mod m20261125_000003_create_audit_events;
mod m20261125_000004_create_jobs;
mod m20261125_000005_create_job_attempts;
mod m20261125_000006_create_claim_function;
mod m20261201_000007_create_queue_pauses;
mod m20261201_000008_create_workers;
mod m20261201_000009_create_schedules;
mod m20261202_000010_create_org_secrets;
mod m20261202_000011_create_job_events;
mod m20261202_000012_create_usage_daily;
mod m20261202_000013_create_billing_events;
pub(crate) mod m20261202_000014_row_level_security;
mod m20261202_000015_create_job_counts;
mod m20261202_000016_index_active_keys;
mod m20261202_000017_shard_usage_daily;
mod m20261203_000018_attempts_at_finish;
mod m20261203_000019_job_events_key;
mod m20261204_000020_claim_index_plans;
mod m20261204_000021_counts_lock_order;
mod m20261204_000022_read_functions;
mod m20261205_000023_key_counts;
mod m20261206_000024_workers_per_owner;
mod m20261206_000025_recount_counters;
mod m20261206_000026_page_bytes;
mod m20261206_000027_claim_bytes;
mod m20261206_000028_list_one_snapshot;
mod m20261207_000029_actor_org;
mod m20261207_000030_claim_in_one_statement;

/// The ordered list of Velu's migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_organizations::Migration),
            Box::new(m20261125_000002_create_api_keys::Migration),
            Box::new(m20261125_000003_create_audit_events::Migration),
            Box::new(m20261125_000004_create_jobs::Migration),
            Box::new(m20261125_000005_create_job_attempts::Migration),
            Box::new(m20261125_000006_create_claim_function::Migration),
            Box::new(m20261201_000007_create_queue_pauses::Migration),
            Box::new(m20261201_000008_create_workers::Migration),
            Box::new(m20261201_000009_create_schedules::Migration),
            Box::new(m20261202_000010_create_org_secrets::Migration),
            Box::new(m20261202_000011_create_job_events::Migration),
            Box::new(m20261202_000012_create_usage_daily::Migration),
            Box::new(m20261202_000013_create_billing_events::Migration),
            Box::new(m20261202_000014_row_level_security::Migration),
            Box::new(m20261202_000015_create_job_counts::Migration),
            Box::new(m20261202_000016_index_active_keys::Migration),
            Box::new(m20261202_000017_shard_usage_daily::Migration),
            Box::new(m20261203_000018_attempts_at_finish::Migration),
            Box::new(m20261203_000019_job_events_key::Migration),
            Box::new(m20261204_000020_claim_index_plans::Migration),
            Box::new(m20261204_000021_counts_lock_order::Migration),
            Box::new(m20261204_000022_read_functions::Migration),
            Box::new(m20261205_000023_key_counts::Migration),
            Box::new(m20261206_000024_workers_per_owner::Migration),
            Box::new(m20261206_000025_recount_counters::Migration),
            Box::new(m20261206_000026_page_bytes::Migration),
            Box::new(m20261206_000027_claim_bytes::Migration),
            Box::new(m20261206_000028_list_one_snapshot::Migration),
            Box::new(m20261207_000029_actor_org::Migration),
            Box::new(m20261207_000030_claim_in_one_statement::Migration),
        ]
    }
}

/// Runs data statements over tenant tables (copies, backfills); on PostgreSQL inside one
/// block that crosses orgs. The tables force row-level security (m20261202_000014) even
/// on their owner, so a migration run by a user that is not a superuser (the documented
/// setup: the owner with `CREATEROLE`, docs/operations.md) would otherwise see no rows
/// and copy or count nothing.
pub(crate) async fn exec_across_orgs(
    manager: &SchemaManager<'_>,
    statements: &[&str],
) -> Result<(), DbErr> {
    if manager.get_database_backend() == DbBackend::Postgres {
        let body: String = statements.iter().map(|s| format!("{s};\n")).collect();
        let block = format!(
            "DO $velu$ BEGIN
               PERFORM set_config('velu.cross_org', 'on', true);
               {body}
             END $velu$"
        );
        exec(manager, &block).await
    } else {
        for sql in statements {
            exec(manager, sql).await?;
        }
        Ok(())
    }
}

/// Runs SQL that is the same on both backends (partial and expression indexes).
pub(crate) async fn exec(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    manager
        .get_connection()
        .execute_unprepared(sql)
        .await
        .map(|_| ())
}
