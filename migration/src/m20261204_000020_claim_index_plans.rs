//! PostgreSQL: `velu_claim_jobs` never plans a scan of a whole table
//! (`enable_seqscan = off`, set on the function, with `jit = off`), whatever the table
//! looked like when PL/pgSQL cached its plans.
//!
//! A worker's connections call the claim from the moment they open, often while `jobs`
//! holds a handful of rows, and PL/pgSQL keeps the generic plan it settles on after its
//! fifth call in a session. On a server whose autovacuum never analyzes the table, nothing
//! invalidates that plan as the table grows: one made over a one-page table found the
//! claimed rows again by scanning the whole table, a second per claim once it held 15,000
//! jobs, with the org's submits waiting on its claim lock all that time (issue
//! "Performance", "Sustained" in docs/benchmarks-log.md). Every statement of the claim has an
//! index that answers it (the pauses' key, `ix_jobs_running_org`, `ix_jobs_claim`, the
//! jobs' key), so the setting only rules out the table scans, and the plans stay cached:
//! measured with pgbench on the function alone, within the noise of the calls per second
//! without it, where `plan_cache_mode = force_custom_plan` (planning every call) cost 25%.
//!
//! `jit = off` because a plan that still needs what an `enable_*` setting rules out is
//! costed at 10^10, far past `jit_above_cost`, and compiling it takes 200 ms: measured
//! with `enable_sort = off` on the function, which the counters' trigger inside the claim
//! (its `ORDER BY`) turned into 12 claims per second.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// The claim function's signature, as `ALTER FUNCTION` names it.
const CLAIM: &str = "velu_claim_jobs(text, timestamptz, jsonb, bigint, bigint, text, timestamptz)";

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        for setting in ["enable_seqscan = off", "jit = off"] {
            crate::exec(manager, &format!("ALTER FUNCTION {CLAIM} SET {setting}")).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        for setting in ["enable_seqscan", "jit"] {
            crate::exec(manager, &format!("ALTER FUNCTION {CLAIM} RESET {setting}")).await?;
        }
        Ok(())
    }
}
