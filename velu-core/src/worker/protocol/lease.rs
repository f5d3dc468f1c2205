//! `worker.heartbeat` and `worker.release`: leases after the claim, fenced by token.

use super::served::{self, own_tokens, served};
use super::wire::{Heartbeat, HeartbeatInput, HeldLease, ReleaseInput, Released};
use crate::principal::Principal;
use crate::time::now;
use crate::{CoreError, CoreResult, Velu, fleet, queue};

/// Renews the leases `input.worker_id` holds by `input.tokens` for `input.lease_ms`,
/// appends `input.progress` to the streams of those jobs (see [`crate::events`]), and
/// answers which are still held and which were asked to cancel (a token missing from the
/// answer was lost: stop its job). Also the worker's beat in the fleet registry, and the
/// moment expired leases of dead workers are taken back (every worker's duty, as in the
/// local loop). An org key's tokens of another org's jobs match nothing. Scope:
/// `jobs:work`.
pub async fn worker_heartbeat(
    velu: &Velu,
    who: &Principal,
    input: &HeartbeatInput,
) -> CoreResult<Heartbeat> {
    let served = served(velu, who).await?;
    served::worker_id(&input.worker_id)?;
    served::tokens(&input.tokens)?;
    let lease = served::lease(input.lease_ms)?;
    let mine = own_tokens(velu, &served, &input.tokens).await?;
    // Lines of tokens that are not the caller's are dropped here (and would match no
    // held lease anyway).
    let progress: Vec<_> = input
        .progress
        .iter()
        .filter(|r| mine.contains(&r.token))
        .cloned()
        .collect();
    let held =
        queue::heartbeat_with_progress(velu.db(), &input.worker_id, &mine, lease, now(), &progress)
            .await?;
    let running = u32::try_from(input.tokens.len()).unwrap_or(u32::MAX);
    // Best effort: a worker that never registered (or was pruned) still works its jobs.
    match fleet::beat(velu, &input.worker_id, served.org_id(), running, now()).await {
        Ok(()) | Err(CoreError::NotFound { .. }) => {}
        Err(e) => tracing::warn!(error = %e, worker = %input.worker_id, "fleet beat failed"),
    }
    match queue::reclaim_expired(velu.db(), now()).await {
        Ok(ids) if !ids.is_empty() => {
            tracing::warn!(count = ids.len(), "reclaimed expired leases");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "reclaiming expired leases failed"),
    }
    Ok(Heartbeat {
        held: held
            .into_iter()
            .map(|h| HeldLease {
                id: h.id,
                cancel_requested: h.cancel_requested,
            })
            .collect(),
    })
}

/// Hands the leases of `input.tokens` back (shutdown): the jobs go back to the queue
/// without using up an attempt, or end `cancelled` if a cancel was asked. Answers the ids
/// handed back; an org key's tokens of another org's jobs match nothing. Scope:
/// `jobs:work`.
pub async fn worker_release(
    velu: &Velu,
    who: &Principal,
    input: &ReleaseInput,
) -> CoreResult<Released> {
    let served = served(velu, who).await?;
    served::worker_id(&input.worker_id)?;
    served::tokens(&input.tokens)?;
    let mine = own_tokens(velu, &served, &input.tokens).await?;
    let released = queue::release(velu.db(), &input.worker_id, &mine, now()).await?;
    Ok(Released { released })
}
