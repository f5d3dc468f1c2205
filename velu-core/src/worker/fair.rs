//! The fair claim: finds orgs with ready work and claims across them, each org within its
//! plan, every org getting its turn however many there are. The local worker keeps one
//! [`FairScan`] for its life; the worker protocol's claim keeps one per server process.

use std::time::{Duration, Instant};

use rand::seq::SliceRandom;

use crate::CoreResult;
use crate::db::Db;
use crate::plans::Plan;
use crate::queue::{self, ClaimedJob, KindsByPlan, OrgClaim, ReadyOrg};
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
        // A list reused from an earlier scan may miss orgs whose jobs arrived since (the
        // wake-up that brought the worker here may be one of them): when it yields nothing,
        // scan again at once rather than wait for the next wake-up or poll.
        for _ in 0..2 {
            let rescanned =
                self.orgs.is_empty() || self.fetched.is_none_or(|t| t.elapsed() > ORGS_FRESH);
            if rescanned {
                self.scan(db, catalog, only).await?;
            }
            let asked: Vec<u32> = shares(free, self.orgs.len()).collect();
            let claimed = match self
                .claim_round(db, catalog, only, worker, &asked, lease)
                .await
            {
                Ok(claimed) => claimed,
                // A failed claim is not "nothing to do": say so.
                Err(e) => {
                    self.orgs.clear();
                    return Err(e);
                }
            };
            if !claimed.is_empty() {
                // Orgs served go to the back, those that gave less than asked (drained for
                // now, or at their cap) leave the list: the next round asks orgs not asked
                // yet, and with one free slot at a time orgs take turns.
                self.orgs = next_turns(std::mem::take(&mut self.orgs), &asked, &claimed);
                return Ok(claimed);
            }
            self.orgs.clear();
            if rescanned {
                break;
            }
        }
        Ok(Vec::new())
    }

    /// Scans for orgs with ready work, after where the last scan stopped.
    async fn scan(
        &mut self,
        db: &Db,
        catalog: &TaskCatalog,
        only: Option<&[String]>,
    ) -> CoreResult<()> {
        let kinds: KindsByPlan = Plan::ALL
            .into_iter()
            .map(|p| (p, kinds_for_plan(catalog, only, p)))
            .collect();
        self.fetched = Some(Instant::now());
        let found =
            queue::ready_orgs(db, now(), ORGS_PER_SCAN, &kinds, self.scan_after.as_deref()).await;
        self.orgs = match found {
            Ok(o) => o,
            Err(e) => {
                self.orgs.clear();
                return Err(e);
            }
        };
        // The next scan starts after the last org seen: every org gets its turn, however
        // many there are.
        if let Some(last) = self.orgs.last() {
            self.scan_after = Some(last.id.clone());
        }
        self.orgs.shuffle(&mut rand::rng());
        Ok(())
    }

    /// Claims `asked[i]` jobs of the `i`-th scanned org (their fair shares, [`shares`]) in
    /// one claim (one round trip on PostgreSQL). An org that had fewer ready jobs than its
    /// share leaves the rest free: the claim loop claims again at once while a claim
    /// brings work.
    async fn claim_round(
        &self,
        db: &Db,
        catalog: &TaskCatalog,
        only: Option<&[String]>,
        worker: &str,
        asked: &[u32],
        lease: Duration,
    ) -> CoreResult<Vec<ClaimedJob>> {
        let parts: Vec<OrgClaim<'_>> = asked
            .iter()
            .copied()
            .zip(&self.orgs)
            .map(|(want, org)| OrgClaim {
                org,
                want,
                kinds: kinds_for_plan(catalog, only, org.plan),
            })
            .collect();
        queue::claim_for_orgs(db, worker, &parts, lease, now())
            .await
            .inspect_err(|e| tracing::warn!(error = %e, orgs = parts.len(), "claim failed"))
    }
}

/// The turn order after a round that asked the first `asked.len()` orgs for `asked[i]`
/// jobs each and got `claimed`: the orgs not asked, then the asked ones that gave all they
/// were asked (they may have more). An org that gave less is left out until a scan finds
/// it ready again.
fn next_turns(orgs: Vec<ReadyOrg>, asked: &[u32], claimed: &[ClaimedJob]) -> Vec<ReadyOrg> {
    let mut got: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
    for job in claimed {
        *got.entry(job.org_id.as_str()).or_default() += 1;
    }
    let n = asked.len().min(orgs.len());
    let full: Vec<bool> = orgs[..n]
        .iter()
        .zip(asked)
        .map(|(org, want)| got.get(org.id.as_str()).copied().unwrap_or(0) >= *want)
        .collect();
    let mut orgs = orgs;
    let served: Vec<ReadyOrg> = orgs.drain(..n).collect();
    orgs.extend(
        served
            .into_iter()
            .zip(full)
            .filter_map(|(org, full)| full.then_some(org)),
    );
    orgs
}

/// `free` places shared over `orgs` orgs in turn order: as even as can be, the first
/// orgs getting one more; orgs past the places get none (they come first next round).
fn shares(free: usize, orgs: usize) -> impl Iterator<Item = u32> {
    let n = orgs.min(free).max(1);
    let (each, extra) = (free / n, free % n);
    (0..orgs.min(free)).map(move |i| (each + usize::from(i < extra)) as u32)
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

#[cfg(test)]
mod tests {
    use super::{next_turns, shares};
    use crate::plans::Plan;
    use crate::queue::{ClaimedJob, ReadyOrg};

    fn org(id: &str) -> ReadyOrg {
        ReadyOrg {
            id: id.to_owned(),
            plan: Plan::Hero,
        }
    }

    fn job(org: &str) -> ClaimedJob {
        ClaimedJob {
            id: format!("job-of-{org}"),
            org_id: org.to_owned(),
            task: "echo".to_owned(),
            payload: serde_json::json!({}),
            token: "t".to_owned(),
            attempt: 1,
            max_attempts: 3,
        }
    }

    fn ids(orgs: &[ReadyOrg]) -> Vec<&str> {
        orgs.iter().map(|o| o.id.as_str()).collect()
    }

    #[test]
    fn served_orgs_go_back_drained_ones_leave() {
        let orgs = vec![org("a"), org("b"), org("c"), org("d"), org("e")];
        // a, b, c asked for one each: a and c gave one, b none.
        let next = next_turns(orgs, &[1, 1, 1], &[job("a"), job("c")]);
        assert_eq!(ids(&next), ["d", "e", "a", "c"]);
        // One place at a time: the orgs take turns.
        let mut orgs = vec![org("a"), org("b"), org("c")];
        let mut order = Vec::new();
        for _ in 0..6 {
            let first = orgs[0].id.clone();
            order.push(first.clone());
            orgs = next_turns(orgs, &[1], &[job(&first)]);
        }
        assert_eq!(order, ["a", "b", "c", "a", "b", "c"]);
        // Asked for two, gave one: out.
        let next = next_turns(vec![org("a"), org("b")], &[2], &[job("a")]);
        assert_eq!(ids(&next), ["b"]);
    }

    #[test]
    fn shares_spread_the_free_places_evenly() {
        let s = |free, orgs| shares(free, orgs).collect::<Vec<_>>();
        assert_eq!(s(10, 3), [4, 3, 3]);
        assert_eq!(s(3, 10), [1, 1, 1]);
        assert_eq!(s(4, 4), [1, 1, 1, 1]);
        assert_eq!(s(5, 1), [5]);
        assert_eq!(s(0, 4), Vec::<u32>::new());
        assert_eq!(s(4, 0), Vec::<u32>::new());
        for (free, orgs) in [(17, 5), (40, 256), (1, 1), (100, 7)] {
            let v = s(free, orgs);
            assert_eq!(v.iter().sum::<u32>() as usize, free, "{free} over {orgs}");
            assert_eq!(v.len(), free.min(orgs), "{free} over {orgs}");
            assert!(v.iter().max().unwrap() - v.iter().min().unwrap() <= 1);
        }
    }
}
