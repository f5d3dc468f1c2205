//! The claim loop: finds orgs with ready work, claims fairly across them within each
//! org's plan, and starts what it claimed, until shutdown (or idle, when asked).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use tokio::sync::mpsc;

use super::launch::start;
use super::state::Shared;
use crate::plans::Plan;
use crate::queue::{self, Finish, KindsByPlan, ReadyOrg};
use crate::time::now;

/// Claims and starts jobs until `shutdown` resolves (or, with `exit_when_idle`, until
/// nothing is ready and nothing runs).
pub(super) async fn claim_loop(
    shared: &Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send,
    done: &mpsc::UnboundedSender<Finish>,
) {
    let cfg = &shared.cfg;
    tokio::pin!(shutdown);
    let mut wake = shared.velu.jobs_ready();
    let mut orgs: Vec<ReadyOrg> = Vec::new();
    let mut scan_after: Option<String> = None;
    let mut orgs_fetched = Instant::now() - Duration::from_secs(60);
    loop {
        let capacity = cfg.concurrency + shared.prefetch_now();
        let busy = shared.running().len();
        let free = capacity.saturating_sub(busy);
        let mut claimed = 0usize;
        // Claim in batches: a claim costs a round trip and a commit whatever its size,
        // so while work is in hand, wait until half the capacity is free.
        if free > 0 && (busy == 0 || free * 2 >= capacity) {
            if orgs.is_empty() || orgs_fetched.elapsed() > Duration::from_millis(250) {
                let kinds = served_kinds(shared);
                let found =
                    queue::ready_orgs(shared.velu.db(), now(), 256, &kinds, scan_after.as_deref())
                        .await;
                orgs = match found {
                    Ok(o) => {
                        // The next scan starts after the last org seen: every org gets
                        // its turn, however many there are.
                        scan_after = o.last().map(|r| r.id.clone());
                        o
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot list ready orgs");
                        Vec::new()
                    }
                };
                orgs.shuffle(&mut rand::rng());
                orgs_fetched = Instant::now();
            }
            claimed = claim_round(shared, &orgs, free, done).await;
            if claimed == 0 {
                orgs.clear();
            } else {
                // The next round starts with the next org: with one free slot at a
                // time, orgs take turns.
                orgs.rotate_left(1);
            }
        }
        if claimed > 0 && free > claimed {
            continue;
        }
        let idle = shared.running().is_empty() && shared.unwritten.load(Ordering::Acquire) == 0;
        if cfg.exit_when_idle && claimed == 0 && idle {
            break;
        }
        tokio::select! {
            () = &mut shutdown => break,
            () = shared.slot_freed.notified() => {}
            _ = wake.changed() => {}
            () = tokio::time::sleep(cfg.poll) => {}
        }
    }
}

/// Claims up to `free` jobs spread over `orgs` (each gets a fair share) and starts them.
async fn claim_round(
    shared: &Arc<Shared>,
    orgs: &[ReadyOrg],
    free: usize,
    done: &mpsc::UnboundedSender<Finish>,
) -> usize {
    let mut left = free;
    let mut total = 0;
    for (i, org) in orgs.iter().enumerate() {
        if left == 0 {
            break;
        }
        let share = left.div_ceil(orgs.len() - i);
        let kinds = kinds_for_plan(shared, org.plan);
        match queue::claim_for_org(
            shared.velu.db(),
            &shared.cfg.id,
            org,
            share as u32,
            &kinds,
            shared.cfg.lease,
            now(),
        )
        .await
        {
            Ok(jobs) => {
                left -= jobs.len().min(left);
                total += jobs.len();
                for job in jobs {
                    start(shared, job, done.clone());
                }
            }
            Err(e) => tracing::warn!(error = %e, org = %org.id, "claim failed"),
        }
    }
    shared
        .counters
        .claimed
        .fetch_add(total as u64, Ordering::Relaxed);
    total
}

/// Kinds this worker may run for an org on `plan`: the plan's, narrowed by `--tasks`.
fn kinds_for_plan(shared: &Shared, plan: Plan) -> Vec<String> {
    let mut kinds = shared.velu.tasks().kinds_for(plan);
    if let Some(only) = &shared.cfg.tasks {
        kinds.retain(|k| only.contains(k));
    }
    kinds
}

/// For every plan, the kinds this worker may run for an org on it.
fn served_kinds(shared: &Shared) -> KindsByPlan {
    Plan::ALL
        .into_iter()
        .map(|p| (p, kinds_for_plan(shared, p)))
        .collect()
}
