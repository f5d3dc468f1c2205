//! PostgreSQL: the job counters' triggers write a statement's deltas in the order of the
//! orgs' claim locks, `hashtext(org_id), org_id`, then task and status, instead of
//! `org_id, task, status`.
//!
//! A claim over several orgs runs `velu_claim_jobs` once per org, in the order of the
//! orgs' lock keys (`hashtext`), and each call's update of `jobs` fires the counters'
//! trigger: its counter rows are locked org after org in hash order. A grouped submit
//! writes all its orgs' counters in one statement, which locked them in id order. Two
//! such transactions on backends sharing a counter shard could each hold a row the other
//! wanted: PostgreSQL found the deadlock after a second and aborted the claim, while
//! everything behind those rows waited (seen in the sustained benchmark, issue
//! "Performance"). With one order for every writer, the claim's calls and any single
//! statement lock counters in the same sequence.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::m20261202_000015_create_job_counts::{ORDER_BY_KEY, counter_functions};

/// The order every writer locks counter rows in: the claim's org order first.
pub(crate) const ORDER_BY_CLAIM_LOCK: &str = "hashtext(org_id), org_id, task, status";

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(()); // one writer at a time: nothing to order
        }
        let sql = counter_functions("CREATE OR REPLACE FUNCTION", ORDER_BY_CLAIM_LOCK);
        crate::exec(manager, &sql).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let sql = counter_functions("CREATE OR REPLACE FUNCTION", ORDER_BY_KEY);
        crate::exec(manager, &sql).await
    }
}
