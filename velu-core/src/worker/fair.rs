//! The fair claim: finds orgs with ready work and claims across them, each org within its
//! plan, every org getting its turn however many there are. The local worker keeps one
//! [`FairScan`] for its life; the worker protocol's claim keeps one per server process.
//! The local worker also hears which orgs wake-ups named (`ready_hints.rs`) and asks
//! those without a scan.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;

use super::ready_hints::Hinted;
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

/// While wake-ups name orgs with new work, the scan runs at most this often when the list
/// runs dry: how late, under steady submits, the claim sees an org that no wake-up names
/// (room freed under its plan's cap, a job whose `run_at` came). Without such wake-ups,
/// an empty list is scanned at once, as before.
const SCAN_EVERY_WHILE_HINTED: Duration = Duration::from_millis(50);

/// While orgs are in hand, a scan waits at least this many times the last scan's
/// duration after it started: the scan takes at most about a tenth of the claim loop's
/// time however slow it gets. Without vacuum, the queue's indexes keep an entry for
/// every job that ever waited or ran, and a scan under a backlog grew from 2 to 74 ms
/// while it ran as often as before (docs/benchmarks-log.md). The plans of the orgs in the
/// list are then as old as the list (those named by wake-ups are read at their turn); the
/// claim checks pauses and counts inside the database whatever the list says.
const SCAN_SPACING: u32 = 10;

/// Where the scan of ready orgs stands between claims.
#[derive(Debug)]
pub(crate) struct FairScan {
    /// The orgs of the last scan, in the order they take turns.
    orgs: Vec<ReadyOrg>,
    /// The next scan starts after this org id.
    scan_after: Option<String>,
    /// When `orgs` was scanned.
    fetched: Option<Instant>,
    /// How long that scan took.
    scan_took: Duration,
    /// Orgs wake-ups named since the last scan, not yet asked.
    hinted: HashSet<String>,
    /// A wake-up that named no org came: the next claim scans.
    scan_due: bool,
    /// [`ORGS_FRESH`], and [`SCAN_EVERY_WHILE_HINTED`] (other values in tests only).
    fresh: Duration,
    scan_every: Duration,
}

impl Default for FairScan {
    fn default() -> FairScan {
        FairScan {
            orgs: Vec::new(),
            scan_after: None,
            fetched: None,
            scan_took: Duration::ZERO,
            hinted: HashSet::new(),
            scan_due: false,
            fresh: ORGS_FRESH,
            scan_every: SCAN_EVERY_WHILE_HINTED,
        }
    }
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
    /// failed org is logged and skipped; a failed scan is the error. Orgs named by
    /// [`FairScan::hear`] since the last claim are asked too, and while they come the
    /// scan runs less often ([`SCAN_EVERY_WHILE_HINTED`]).
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
        for retry in [false, true] {
            let rescanned = retry || self.scan_wanted(Instant::now());
            let found = if rescanned {
                self.scan(db, catalog, only).await
            } else {
                self.admit_hinted(db).await
            };
            if let Err(e) = found {
                self.orgs.clear();
                self.scan_due = true;
                return Err(e);
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

    /// What the wake-ups since the last claim said (`ReadyHints::take`): the next claim
    /// asks the orgs they named, or scans if one asked for it.
    pub(crate) fn hear(&mut self, said: Hinted) {
        self.scan_due |= said.scan;
        self.hinted.extend(said.orgs);
    }

    /// Whether this claim starts with a scan: always when no org is in hand (in the list
    /// or named by a wake-up); otherwise when the list is old, a wake-up asked for one,
    /// or the list ran dry and the last scan is [`SCAN_EVERY_WHILE_HINTED`] old (so orgs
    /// no wake-up names, with room freed under their caps or jobs come due, wait no
    /// longer than that), and [`SCAN_SPACING`] times the last scan's duration has passed.
    fn scan_wanted(&self, now: Instant) -> bool {
        let Some(since) = self.fetched.map(|t| now.saturating_duration_since(t)) else {
            return true;
        };
        if self.orgs.is_empty() && self.hinted.is_empty() {
            return true;
        }
        let due = since > self.fresh
            || self.scan_due
            || (self.orgs.is_empty() && since >= self.scan_every);
        due && since >= self.scan_took * SCAN_SPACING
    }

    /// Adds the orgs wake-ups named, not in the list yet, to its end, with their current
    /// plans.
    async fn admit_hinted(&mut self, db: &Db) -> CoreResult<()> {
        let hinted = std::mem::take(&mut self.hinted);
        let listed: HashSet<&str> = self.orgs.iter().map(|o| o.id.as_str()).collect();
        let new: Vec<&str> = hinted
            .iter()
            .map(String::as_str)
            .filter(|id| !listed.contains(id))
            .collect();
        let mut found = queue::plans_of(db, &new).await?;
        found.shuffle(&mut rand::rng());
        self.orgs.extend(found);
        Ok(())
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
        let started = Instant::now();
        self.fetched = Some(started);
        // The scan sees every commit the wake-ups taken so far announced.
        self.hinted.clear();
        self.scan_due = false;
        let found =
            queue::ready_orgs(db, now(), ORGS_PER_SCAN, &kinds, self.scan_after.as_deref()).await;
        self.scan_took = started.elapsed();
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
    use std::time::{Duration, Instant};

    use super::{FairScan, next_turns, shares};
    use crate::db::Db;
    use crate::ids::new_id;
    use crate::plans::Plan;
    use crate::queue::{ClaimedJob, ReadyOrg};
    use crate::tasks::TaskCatalog;
    use crate::worker::ready_hints::ReadyHints;

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

    #[test]
    fn scans_when_old_asked_dry_or_dry_too_long_while_hinted() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut s = FairScan::default();
        assert!(s.scan_wanted(t0), "never scanned");
        s.fetched = Some(t0);
        assert!(s.scan_wanted(at(1)), "nothing in hand");
        s.hinted.insert(new_id());
        assert!(!s.scan_wanted(at(1)), "a wake-up named an org");
        assert!(s.scan_wanted(at(50)), "dry for the whole interval");
        s.orgs.push(org("a"));
        assert!(!s.scan_wanted(at(50)), "orgs still in the list");
        assert!(s.scan_wanted(at(251)), "the list is old");
        s.scan_due = true;
        assert!(s.scan_wanted(at(1)), "a wake-up asked for a scan");
        // A clock read before the scan (another thread's) is not "long ago".
        s.scan_due = false;
        s.fetched = Some(at(10));
        assert!(!s.scan_wanted(t0));

        // A scan that took 100 ms waits 1 s while orgs are in hand, whatever asks.
        s.fetched = Some(t0);
        s.scan_took = Duration::from_millis(100);
        s.scan_due = true;
        assert!(!s.scan_wanted(at(300)), "old and asked for, but too soon");
        assert!(s.scan_wanted(at(1000)));
        s.scan_due = false;
        s.orgs.clear();
        assert!(!s.scan_wanted(at(999)), "dry, named orgs in hand");
        assert!(s.scan_wanted(at(1000)));
        // With nothing in hand it scans at once, however slow the last one was.
        s.hinted.clear();
        assert!(s.scan_wanted(at(1)), "nothing in hand");
    }

    /// The claim asks the orgs wake-ups named without scanning (an org's job that no
    /// wake-up named waits for the next scan), scans when nothing is named, and names that
    /// lead nowhere cost one scan, not the job. SQLite; the lookup's SQL is the same shape
    /// on PostgreSQL, which the integration tests run.
    #[tokio::test]
    async fn claims_the_orgs_wake_ups_name_and_scans_otherwise() {
        use sea_orm::{ConnectionTrait, DbBackend, Statement};
        let dir = std::env::temp_dir().join(format!("velu-fair-{}", new_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("velu.db").display());
        let db = Db::connect(&url).await.unwrap();
        db.migrate_up().await.unwrap();
        let (a, b, c) = (new_id(), new_id(), new_id());
        for id in [&a, &b, &c] {
            db.conn()
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Sqlite,
                    "INSERT INTO organizations (id, name, slug, plan, created_at, updated_at)
                     VALUES (?1, ?1, ?1, 'hero', '2026-01-01', '2026-01-01')",
                    [id.as_str().into()],
                ))
                .await
                .unwrap();
        }
        let queue = |org: &str| {
            let (db, org) = (db.clone(), org.to_owned());
            async move {
                let at = crate::time::now() - chrono::Duration::seconds(1);
                db.conn()
                    .execute_raw(Statement::from_sql_and_values(
                        DbBackend::Sqlite,
                        "INSERT INTO jobs (id, org_id, task, status, payload, priority, attempts,
                           max_attempts, run_at, actor_type, actor_id, cancel_requested,
                           created_at, updated_at)
                         VALUES (?1, ?2, 'echo', 'queued', '{}', 0, 0, 3, ?3, 'api_key', 'k',
                           0, ?3, ?3)",
                        [new_id().into(), org.into(), at.into()],
                    ))
                    .await
                    .unwrap();
            }
        };
        let catalog = TaskCatalog::builtin();
        let hints = ReadyHints::default();
        // Long intervals: only what the claim is told decides when it scans.
        let mut scan = FairScan {
            fresh: Duration::from_secs(3600),
            scan_every: Duration::from_secs(3600),
            ..FairScan::default()
        };
        let lease = Duration::from_secs(60);
        let claim = async |scan: &mut FairScan| -> Vec<String> {
            scan.hear(hints.take());
            let jobs = scan
                .claim(&db, &catalog, None, "w", 10, lease)
                .await
                .unwrap();
            let mut orgs: Vec<String> = jobs.into_iter().map(|j| j.org_id).collect();
            orgs.sort();
            orgs
        };
        assert!(claim(&mut scan).await.is_empty(), "nothing queued yet");
        assert!(scan.fetched.is_some(), "the first claim scanned");

        queue(&a).await;
        queue(&b).await;
        hints.org(&a);
        assert_eq!(claim(&mut scan).await, [a.as_str()], "only the named org");
        assert_eq!(
            claim(&mut scan).await,
            [b.as_str()],
            "nothing named: a scan"
        );

        // Named orgs with nothing ready, or that do not exist: the claim gets nothing
        // from them and scans, finding c's job.
        queue(&c).await;
        hints.org(&a);
        hints.org(&new_id());
        assert_eq!(claim(&mut scan).await, [c.as_str()]);

        // A wake-up that names nothing: a scan, even with a named org in hand.
        queue(&b).await;
        queue(&c).await;
        hints.org(&c);
        hints.unknown();
        assert_eq!(claim(&mut scan).await, [b.as_str(), c.as_str()]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
