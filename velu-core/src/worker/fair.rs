//! The fair claim: finds orgs with ready work and claims across them, each org within its
//! plan, every org getting its turn however many there are. The local worker keeps one
//! [`FairScan`] for its life; a server keeps one per kinds filter that its
//! worker-protocol claims share (`shared_scan.rs`), locked only between the database's
//! answers ([`claim_shared`]). Both hear which orgs wake-ups named (`ready_hints.rs`) and
//! ask those without a scan.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};
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
    /// [`claim_shared`] on a list owned outright (the workers hold theirs in a lock).
    #[cfg(test)]
    pub(crate) async fn claim(
        &mut self,
        db: &Db,
        catalog: &TaskCatalog,
        only: Option<&[String]>,
        worker: &str,
        free: usize,
        lease: Duration,
    ) -> CoreResult<Vec<ClaimedJob>> {
        let state = Mutex::new(std::mem::take(self));
        let claimed = claim_shared(&state, db, catalog, only, worker, free, lease).await;
        *self = state.into_inner().unwrap_or_else(PoisonError::into_inner);
        claimed
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

    /// What a claim looks at before its turn: a scan (when `rescan`), started now, or the
    /// orgs named by wake-ups that are not in the list yet.
    fn look(&mut self, rescan: bool) -> Look {
        if rescan {
            let started = Instant::now();
            self.fetched = Some(started);
            // The scan sees every commit the wake-ups taken so far announced.
            self.hinted.clear();
            self.scan_due = false;
            return Look::Scan {
                after: self.scan_after.clone(),
                started,
            };
        }
        let hinted = std::mem::take(&mut self.hinted);
        let listed: HashSet<&str> = self.orgs.iter().map(|o| o.id.as_str()).collect();
        Look::Named(
            hinted
                .into_iter()
                .filter(|id| !listed.contains(id.as_str()))
                .collect(),
        )
    }

    /// A scan's orgs, in a random turn order, replace the list; the next scan starts after
    /// the last org seen, so every org gets its turn however many there are.
    fn scanned(&mut self, mut found: Vec<ReadyOrg>, took: Duration) {
        self.scan_took = took;
        if let Some(last) = found.last() {
            self.scan_after = Some(last.id.clone());
        }
        found.shuffle(&mut rand::rng());
        self.orgs = found;
    }

    /// Named orgs with their current plans join the end of the list, in a random order
    /// (but those another claim listed meanwhile).
    fn admitted(&mut self, mut found: Vec<ReadyOrg>) {
        found.retain(|f| !self.orgs.iter().any(|o| o.id == f.id));
        found.shuffle(&mut rand::rng());
        self.orgs.extend(found);
    }

    /// The next turn for `free` places: the first orgs of the list with their fair shares
    /// ([`shares`]), moved to the back of the list at once, so a claim running beside this
    /// one (worker-protocol claims share a list) asks other orgs.
    fn take_turn(&mut self, free: usize) -> Vec<(ReadyOrg, u32)> {
        let asked: Vec<u32> = shares(free, self.orgs.len()).collect();
        let turn: Vec<ReadyOrg> = self.orgs.drain(..asked.len()).collect();
        self.orgs.extend(turn.iter().cloned());
        turn.into_iter().zip(asked).collect()
    }

    /// After a turn that got `claimed`: its orgs that gave less than asked (drained for
    /// now, or at their cap) leave the list until a scan finds them ready again; those
    /// that gave all they were asked stay at the back (they may have more).
    fn settle(&mut self, turn: &[(ReadyOrg, u32)], claimed: &[ClaimedJob]) {
        let mut got: HashMap<&str, u32> = HashMap::new();
        for job in claimed {
            *got.entry(job.org_id.as_str()).or_default() += 1;
        }
        let drained: HashSet<&str> = turn
            .iter()
            .filter(|(org, want)| got.get(org.id.as_str()).copied().unwrap_or(0) < *want)
            .map(|(org, _)| org.id.as_str())
            .collect();
        self.orgs.retain(|o| !drained.contains(o.id.as_str()));
    }
}

/// What a claim looks at before its turn ([`FairScan::look`]).
enum Look {
    /// A scan after org `after`, started at `started`.
    Scan {
        after: Option<String>,
        started: Instant,
    },
    /// Orgs named by wake-ups, not in the list yet.
    Named(Vec<String>),
}

/// Claims up to `free` jobs for `worker` spread over the orgs with ready work (each gets
/// a fair share), of the kinds each org's plan allows narrowed to `only`, on the list in
/// `state`: the local worker's own, or one that a server's worker-protocol claims share
/// (`shared_scan.rs`). A failed org is logged and skipped; a failed scan is the error.
/// Orgs named by [`FairScan::hear`] since the last claim are asked too, and while they
/// come the scan runs less often ([`SCAN_EVERY_WHILE_HINTED`]). The list is locked only
/// between the database's answers, never across one, so claims beside each other run
/// their statements at once and take different orgs' turns.
pub(crate) async fn claim_shared(
    state: &Mutex<FairScan>,
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
    // Each lock lasts one statement: never across an `.await`.
    let lock = || state.lock().unwrap_or_else(PoisonError::into_inner);
    // A list reused from an earlier scan may miss orgs whose jobs arrived since (the
    // wake-up that brought the worker here may be one of them): when it yields nothing,
    // scan again at once rather than wait for the next wake-up or poll.
    for retry in [false, true] {
        let look = {
            let mut s = lock();
            let rescan = retry || s.scan_wanted(Instant::now());
            s.look(rescan)
        };
        let rescanned = matches!(look, Look::Scan { .. });
        let found = match look {
            Look::Scan { after, started } => {
                let kinds: KindsByPlan = Plan::ALL
                    .into_iter()
                    .map(|p| (p, kinds_for_plan(catalog, only, p)))
                    .collect();
                queue::ready_orgs(db, now(), ORGS_PER_SCAN, &kinds, after.as_deref())
                    .await
                    .map(|orgs| lock().scanned(orgs, started.elapsed()))
            }
            Look::Named(ids) => {
                let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                queue::plans_of(db, &ids)
                    .await
                    .map(|orgs| lock().admitted(orgs))
            }
        };
        if let Err(e) = found {
            let mut s = lock();
            s.orgs.clear();
            s.scan_due = true;
            return Err(e);
        }
        let turn = lock().take_turn(free);
        let claimed = match claim_round(db, catalog, only, worker, &turn, lease).await {
            Ok(claimed) => claimed,
            // A failed claim is not "nothing to do": say so.
            Err(e) => {
                lock().orgs.clear();
                return Err(e);
            }
        };
        if !claimed.is_empty() {
            lock().settle(&turn, &claimed);
            return Ok(claimed);
        }
        lock().orgs.clear();
        if rescanned {
            break;
        }
    }
    Ok(Vec::new())
}

/// Claims each org of `turn` for its share in one claim (one round trip on PostgreSQL).
/// An org that had fewer ready jobs than its share leaves the rest free: the claim loop
/// claims again at once while a claim brings work.
async fn claim_round(
    db: &Db,
    catalog: &TaskCatalog,
    only: Option<&[String]>,
    worker: &str,
    turn: &[(ReadyOrg, u32)],
    lease: Duration,
) -> CoreResult<Vec<ClaimedJob>> {
    let parts: Vec<OrgClaim<'_>> = turn
        .iter()
        .map(|(org, want)| OrgClaim {
            org,
            want: *want,
            kinds: kinds_for_plan(catalog, only, org.plan),
        })
        .collect();
    queue::claim_for_orgs(db, worker, &parts, lease, now())
        .await
        .inspect_err(|e| tracing::warn!(error = %e, orgs = parts.len(), "claim failed"))
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

    use super::{FairScan, shares};
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

    /// One turn for `free` places in which the orgs `gave` gave one job each.
    fn turn(s: &mut FairScan, free: usize, gave: &[&str]) -> Vec<String> {
        let turn = s.take_turn(free);
        let claimed: Vec<ClaimedJob> = gave.iter().map(|o| job(o)).collect();
        s.settle(&turn, &claimed);
        turn.into_iter().map(|(o, _)| o.id).collect()
    }

    #[test]
    fn served_orgs_go_back_drained_ones_leave() {
        let mut s = FairScan {
            orgs: vec![org("a"), org("b"), org("c"), org("d"), org("e")],
            ..FairScan::default()
        };
        // a, b, c asked for one each: a and c gave one, b none.
        assert_eq!(turn(&mut s, 3, &["a", "c"]), ["a", "b", "c"]);
        assert_eq!(ids(&s.orgs), ["d", "e", "a", "c"]);
        // One place at a time: the orgs take turns.
        s.orgs = vec![org("a"), org("b"), org("c")];
        let mut order = Vec::new();
        for _ in 0..6 {
            let first = s.orgs[0].id.clone();
            order.extend(turn(&mut s, 1, &[first.as_str()]));
        }
        assert_eq!(order, ["a", "b", "c", "a", "b", "c"]);
        // Asked for two, gave one: out.
        s.orgs = vec![org("a")];
        turn(&mut s, 2, &["a"]);
        assert!(s.orgs.is_empty());
    }

    #[test]
    fn turns_taken_side_by_side_ask_different_orgs() {
        let mut s = FairScan {
            orgs: vec![org("a"), org("b"), org("c"), org("d")],
            ..FairScan::default()
        };
        // Two claims take their turns before either has its answer.
        let first = s.take_turn(2);
        let second = s.take_turn(2);
        let asked = |t: &[(ReadyOrg, u32)]| t.iter().map(|(o, _)| o.id.clone()).collect::<Vec<_>>();
        assert_eq!(asked(&first), ["a", "b"]);
        assert_eq!(asked(&second), ["c", "d"]);
        s.settle(&second, &[job("c")]);
        s.settle(&first, &[job("a")]);
        assert_eq!(ids(&s.orgs), ["a", "c"]);
        // A scan replaced the list meanwhile: only drained orgs still in it leave.
        let third = s.take_turn(2);
        s.orgs = vec![org("x"), org("c"), org("a")];
        s.settle(&third, &[job("c")]);
        assert_eq!(ids(&s.orgs), ["x", "c"]);
        // Nothing in the list: an empty turn, nothing asked.
        s.orgs.clear();
        assert!(s.take_turn(5).is_empty());
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
        let inbox = hints.subscribe();
        // Long intervals: only what the claim is told decides when it scans.
        let mut scan = FairScan {
            fresh: Duration::from_secs(3600),
            scan_every: Duration::from_secs(3600),
            ..FairScan::default()
        };
        let lease = Duration::from_secs(60);
        let claim = async |scan: &mut FairScan| -> Vec<String> {
            scan.hear(inbox.take());
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

        // A second list in the process (another kinds filter, another worker) hears the
        // same wake-ups through its own inbox: each claims from the named org without a
        // scan, whichever took its turn first.
        let other_inbox = hints.subscribe();
        let mut other = FairScan {
            fresh: Duration::from_secs(3600),
            scan_every: Duration::from_secs(3600),
            ..FairScan::default()
        };
        let one = async |s: &mut FairScan, inbox: &super::super::ready_hints::HintInbox| {
            s.hear(inbox.take());
            let jobs = s.claim(&db, &catalog, None, "w", 1, lease).await.unwrap();
            jobs.into_iter().map(|j| j.org_id).collect::<Vec<_>>()
        };
        assert!(
            one(&mut other, &other_inbox).await.is_empty(),
            "its first scan"
        );
        queue(&a).await;
        queue(&a).await;
        hints.org(&a);
        let scanned = (scan.fetched, other.fetched);
        assert_eq!(one(&mut scan, &inbox).await, [a.as_str()]);
        assert_eq!(one(&mut other, &other_inbox).await, [a.as_str()]);
        assert_eq!((scan.fetched, other.fetched), scanned, "neither scanned");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
