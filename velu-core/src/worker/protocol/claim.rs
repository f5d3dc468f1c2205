//! `worker.claim`: a batch of jobs under fresh leases, waiting (long-polling) for one when
//! none is ready.

use std::time::{Duration, Instant};

use super::served::{self, Served, bounded_text, served};
use super::wire::{ClaimInput, Claimed, LeasedJob};
use super::{MAX_CLAIM, MAX_WAIT_MS};
use crate::fleet::{MAX_KIND_LEN, MAX_KINDS};
use crate::principal::Principal;
use crate::queue::{self, ClaimedJob, ReadyOrg};
use crate::time::now;
use crate::waiting::{WaitSlot, Waiting};
use crate::worker::fair::kinds_for_plan;
use crate::worker::shared_scan;
use crate::{CoreError, CoreResult, Velu};

/// How often a waiting claim looks again without a wake-up (SQLite has no notifications
/// from other processes; PostgreSQL's arrive at once).
const POLL: Duration = Duration::from_millis(500);

/// Claims up to `input.max` ready jobs for `input.worker_id` under leases of
/// `input.lease_ms`, of the kinds the caller may run (narrowed to `input.kinds`): a
/// platform key fairly across every org, an org key from its own org within its plan;
/// at most [`queue::MAX_CLAIM_BYTES`] of payload past the first job.
/// When none is ready, waits up to `input.wait_ms` for one (at most
/// [`Waiting::Claims`]' waiting claims per key and per org: more are `rate_limited`).
/// Scope: `jobs:work`.
pub async fn worker_claim(velu: &Velu, who: &Principal, input: &ClaimInput) -> CoreResult<Claimed> {
    let served = served(velu, who).await?;
    served::worker_id(&input.worker_id)?;
    if !(1..=MAX_CLAIM).contains(&input.max) {
        return Err(CoreError::invalid(
            "max",
            format!("must be between 1 and {MAX_CLAIM}"),
        ));
    }
    if input.wait_ms > MAX_WAIT_MS {
        return Err(CoreError::invalid(
            "wait_ms",
            format!("must be at most {MAX_WAIT_MS}"),
        ));
    }
    if let Some(kinds) = &input.kinds {
        if kinds.len() > MAX_KINDS {
            return Err(CoreError::invalid(
                "kinds",
                format!("at most {MAX_KINDS} task kinds"),
            ));
        }
        for k in kinds {
            bounded_text("kinds", k, MAX_KIND_LEN)?;
        }
    }
    let lease = served::lease(input.lease_ms)?;
    let wait = Duration::from_millis(input.wait_ms);
    let _slot = if wait.is_zero() {
        None
    } else {
        Some(WaitSlot::take(Waiting::Claims, who)?)
    };
    let deadline = Instant::now() + wait;
    // Subscribed before the first look, so a job submitted in between still wakes us.
    let mut wake = velu.jobs_ready();
    loop {
        let jobs = claim_once(velu, &served, input, lease).await?;
        let left = deadline.saturating_duration_since(Instant::now());
        if !jobs.is_empty() || left.is_zero() {
            return Ok(Claimed {
                jobs: jobs.into_iter().map(leased).collect(),
                lease_ms: lease.as_millis() as u64,
            });
        }
        tokio::select! {
            _ = wake.changed() => {}
            () = tokio::time::sleep(left.min(POLL)) => {}
        }
    }
}

/// One look at the queue.
async fn claim_once(
    velu: &Velu,
    served: &Served,
    input: &ClaimInput,
    lease: Duration,
) -> CoreResult<Vec<ClaimedJob>> {
    let only = input.kinds.as_deref();
    match served {
        Served::All => {
            shared_scan::claim(velu, only, &input.worker_id, input.max as usize, lease).await
        }
        Served::Org { id, plan } => {
            let kinds = kinds_for_plan(velu.tasks(), only, *plan);
            let org = ReadyOrg {
                id: id.clone(),
                plan: *plan,
            };
            queue::claim_for_org(
                velu.db(),
                &input.worker_id,
                &org,
                input.max,
                &kinds,
                lease,
                now(),
            )
            .await
        }
    }
}

/// The wire form of a claimed job.
fn leased(job: ClaimedJob) -> LeasedJob {
    LeasedJob {
        id: job.id,
        org_id: job.org_id,
        task: job.task,
        payload: job.payload,
        attempt: job.attempt,
        max_attempts: job.max_attempts,
        token: job.token,
    }
}
