//! The fair claim: finds orgs with ready work and claims across them, each org within its
//! plan, every org getting its turn however many there are. The local worker keeps one
//! [`FairScan`] for its life; the worker protocol's claim keeps one per server process.

use std::time::{Duration, Instant};

use rand::seq::SliceRandom;

use crate::CoreResult;
use crate::db::Db;
use crate::plans::Plan;
use crate::queue::{self, ClaimedJob, KindsByPlan, ReadyOrg};
use crate::tasks::TaskCatalog;
use crate::time::now;

/// How long a list of ready orgs is reused before it is scanned again.
const ORGS_FRESH: Duration = Duration::from_millis(250);

/// Most orgs one scan returns.
const ORGS_PER_SCAN: u64 = 256;

/// Where the scan of ready orgs stands between claims.
#[derive(Debug, Default)]
pub(crate) struct FairScan {
    /// The orgs of the last scan, in the order they take turns.
    orgs: Vec<ReadyOrg>,
    /// The next scan starts after this org id.
    scan_after: Option<String>,
    /// When `orgs` was scanned.
    fetched: Option<Instant>,
}

impl FairScan {
    /// A scan that starts after org `after` (a cursor kept from an earlier scan).
    pub(crate) fn resume(after: Option<String>) -> FairScan {
        FairScan {
            scan_after: after,
            ..FairScan::default()
        }
    }

    /// Where the next scan starts.
    pub(crate) fn cursor(&self) -> Option<&str> {
        self.scan_after.as_deref()
    }

    /// Claims up to `free` jobs for `worker` spread over the orgs with ready work (each
    /// gets a fair share), of the kinds each org's plan allows narrowed to `only`. A
    /// failed org is logged and skipped; a failed scan is the error.
    pub(crate) async fn claim(
        &mut self,
        db: &Db,
        catalog: &TaskCatalog,
        only: Option<&[String]>,
        worker: &str,
        free: usize,
        lease: Duration,
    ) -> CoreResult<Vec<ClaimedJob>> {
        if free == 0 {
            return Ok(Vec::new());
        }
        if self.orgs.is_empty() || self.fetched.is_none_or(|t| t.elapsed() > ORGS_FRESH) {
            let kinds: KindsByPlan = Plan::ALL
                .into_iter()
                .map(|p| (p, kinds_for_plan(catalog, only, p)))
                .collect();
            self.fetched = Some(Instant::now());
            let found =
                queue::ready_orgs(db, now(), ORGS_PER_SCAN, &kinds, self.scan_after.as_deref())
                    .await;
            self.orgs = match found {
                Ok(o) => o,
                Err(e) => {
                    self.orgs.clear();
                    return Err(e);
                }
            };
            // The next scan starts after the last org seen: every org gets its turn,
            // however many there are.
            if let Some(last) = self.orgs.last() {
                self.scan_after = Some(last.id.clone());
            }
            self.orgs.shuffle(&mut rand::rng());
        }
        let (claimed, failed) = self
            .claim_round(db, catalog, only, worker, free, lease)
            .await;
        // Nothing claimed because claims failed is not "nothing to do": say so.
        if let (true, Some(e)) = (claimed.is_empty(), failed) {
            self.orgs.clear();
            return Err(e);
        }
        if claimed.is_empty() {
            self.orgs.clear();
        } else {
            // The next round starts with the next org: with one free slot at a time,
            // orgs take turns.
            self.orgs.rotate_left(1);
        }
        Ok(claimed)
    }

    /// Claims up to `free` jobs spread over the scanned orgs; with the first error of an
    /// org whose claim failed (the others are still tried).
    async fn claim_round(
        &self,
        db: &Db,
        catalog: &TaskCatalog,
        only: Option<&[String]>,
        worker: &str,
        free: usize,
        lease: Duration,
    ) -> (Vec<ClaimedJob>, Option<crate::CoreError>) {
        let mut left = free;
        let mut claimed = Vec::new();
        let mut failed = None;
        for (i, org) in self.orgs.iter().enumerate() {
            if left == 0 {
                break;
            }
            let share = left.div_ceil(self.orgs.len() - i);
            let kinds = kinds_for_plan(catalog, only, org.plan);
            match queue::claim_for_org(db, worker, org, share as u32, &kinds, lease, now()).await {
                Ok(jobs) => {
                    left -= jobs.len().min(left);
                    claimed.extend(jobs);
                }
                Err(e) => {
                    tracing::warn!(error = %e, org = %org.id, "claim failed");
                    failed.get_or_insert(e);
                }
            }
        }
        (claimed, failed)
    }
}

/// Kinds a worker may run for an org on `plan`: the plan's, narrowed to `only`.
pub(crate) fn kinds_for_plan(
    catalog: &TaskCatalog,
    only: Option<&[String]>,
    plan: Plan,
) -> Vec<String> {
    let mut kinds = catalog.kinds_for(plan);
    if let Some(only) = only {
        kinds.retain(|k| only.contains(k));
    }
    kinds
}
