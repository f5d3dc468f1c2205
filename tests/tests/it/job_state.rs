//! What the database holds of a job's state, for the tests that look at it in SQL.
//!
//! Where the queue keeps a job's state is planned to change in steps
//! (docs/queue-redesign.md: narrow tables beside `jobs`, perhaps its result in one of its
//! own). The tests read and set that state through this module, never through `jobs`'
//! columns directly, so that each step changes this one place and the tests' assertions
//! stay as they are.

use velu_tests::TestEnv;

use crate::support::{exec, scalar};

/// Every job as a reader of its state sees it, a table expression aliased `j` with the
/// columns `id, org_id, task, status, attempts, max_attempts, lease_owner,
/// lease_started_at, started_at, finished_at` (`attempts`: the attempts begun, the one
/// in progress included; `lease_owner` and `lease_started_at`: the attempt in progress,
/// `NULL` when none is). Written `SELECT ... FROM {JOBS} WHERE j.status = 'running'`.
pub const JOBS: &str = "(SELECT id, org_id, task, status, attempts, max_attempts, lease_owner,
      lease_started_at, started_at, finished_at FROM jobs) j";

/// How many jobs match `condition` (SQL over [`JOBS`]' columns, `j.` or bare).
pub async fn count_jobs(env: &TestEnv, condition: &str) -> i64 {
    scalar(
        env.velu(),
        &format!("SELECT COUNT(*) FROM {JOBS} WHERE {condition}"),
    )
    .await
}

/// An attempt in progress, as a test writes it straight into the database.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// Its number (1 for the job's first).
    pub number: i32,
    /// The worker running it.
    pub owner: &'a str,
    /// Its fencing token.
    pub token: &'a str,
}

/// Puts job `id` in the state a claim leaves it in, running `attempt`, started, leased
/// and expiring at the job's creation (so a reclaim would take it at once).
pub async fn start_attempt(env: &TestEnv, id: &str, attempt: Attempt<'_>) {
    let Attempt {
        number,
        owner,
        token,
    } = attempt;
    exec(
        env.velu(),
        &format!(
            "UPDATE jobs SET status = 'running', attempts = {number}, lease_owner = '{owner}',
           lease_token = '{token}', lease_expires_at = created_at, lease_started_at = created_at,
           started_at = COALESCE(started_at, created_at) WHERE id = '{id}'"
        ),
    )
    .await;
}

/// SQL that claims every queued job of org `org` at once, as a claim writes the jobs (its
/// counters' triggers fire as a claim's do), for a test to run on a connection of its own.
pub fn claim_all_sql(org: &str) -> String {
    format!(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1 WHERE org_id = '{org}' AND status = 'queued'"
    )
}
