//! History retention: how long an org's finished jobs are kept (its plan's
//! [`PlanLimits::history_days`](crate::plans::PlanLimits)), what is due for removal, and
//! the removal itself (docs/retention.md).
//!
//! A finished job (`succeeded`, `failed` or `cancelled`) whose `finished_at` is older than
//! the plan's days is due; its attempts and events go with it. Removal runs in slices of
//! at most [`SLICE`] jobs, each slice one short transaction bound to its org (row-level
//! security on PostgreSQL, the write lock for one slice only on SQLite), walking the org's
//! jobs in id order with a cursor: no long transaction, no lock held across slices, no
//! re-reading of what an earlier slice removed. Queued and running jobs are never touched,
//! whatever their age. The job counters (`job stats`) follow through their triggers;
//! usage rollups are counters by day and keep what was used. The same run removes the
//! org's keys dead (revoked or expired) for longer than the plan's days
//! (`keys/retention.rs`), one slice per org visit, in the transaction of its last job
//! slice.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, QueryFilter, Value as DbValue};
use sea_orm::{ConnectionTrait, DatabaseTransaction, EntityTrait, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::JobStatus;
use crate::audit::{self, Record};
use crate::db::sql::{json_array_rows, json_param, stmt};
use crate::db::{Backend, CrossOrg};
use crate::entity::organizations;
use crate::plans::Plan;
use crate::principal::Principal;
use crate::scopes::Scope;
use crate::tenancy::{OrgRef, OrgScope};
use crate::time::{Timestamp, now};
use crate::{CoreError, CoreResult, Velu};

/// Most jobs one slice (one transaction) removes.
pub const SLICE: u64 = 1_000;

/// Most due jobs [`retention_state`] counts; beyond it, `due_jobs_capped` says so.
pub const DUE_COUNT_CAP: u64 = 10_000;

/// Jobs one [`run_retention`] removes when the caller names no bound.
pub const DEFAULT_MAX_JOBS: u64 = 100_000;

/// Most jobs one [`run_retention`] may be asked to remove.
pub const MAX_MAX_JOBS: u64 = 10_000_000;

/// Orgs read per page while a run walks every org.
const ORGS_PER_PAGE: u64 = 500;

/// Most orgs one [`run_retention`] without an org visits: past them it stops with
/// `next_org`, where the next run starts, so one call's work is bounded however many
/// orgs there are (each visit is one short transaction, even for an org with nothing
/// due).
pub const ORGS_PER_RUN: u64 = 1_000;

/// Longest `from_org` accepted (ids are 36 characters).
const MAX_FROM_ORG_LEN: usize = 64;

/// SQLite: how long a run leaves the write lock free after a slice that removed jobs.
///
/// Another process's writer (`serve`, a worker) that finds the lock taken waits in the
/// busy handler and retries. Slices of a thousand jobs taken back to back (about 20 ms
/// each) left it almost no free moment to find: during a run removing 1,000,000 jobs,
/// `serve`'s submits fell to half and their p99 rose from 19 ms to 1.2 s, some past two
/// seconds (docs/retention.md). The pause lets every waiting writer in between two
/// slices, and keeps a run to about a sixth of the lock: it removes about 8,000 jobs a
/// second and `serve`'s submits keep 0.94x of their rate. Since Velu's busy handler polls
/// every millisecond (`db/sqlite_busy.rs`) a pause of 5 ms lets the waiters in as well,
/// but the run then holds the lock four fifths of the time: 44,000 jobs a second, and
/// submits fall to 0.53x (p99 45 ms against 35). Retention is background work, so the
/// longer pause stays. PostgreSQL's slices lock only their own rows and do not pause.
const SQLITE_SLICE_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// An org's retention: what its plan keeps and how much is due for removal now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetentionState {
    /// The org.
    pub org_id: String,
    /// Its plan now.
    pub plan: Plan,
    /// Days its plan keeps a finished job.
    pub history_days: u32,
    /// Finished jobs that ended before this time are due for removal.
    pub cutoff: Timestamp,
    /// Finished jobs due now, counted up to [`DUE_COUNT_CAP`].
    pub due_jobs: u64,
    /// True when more than [`DUE_COUNT_CAP`] are due (`due_jobs` is the cap).
    pub due_jobs_capped: bool,
    /// The org's keys revoked, or expired, before the cutoff, counted up to
    /// [`DUE_COUNT_CAP`] (`keys/retention.rs`).
    pub due_keys: u64,
    /// True when more than [`DUE_COUNT_CAP`] keys are due (`due_keys` is the cap).
    pub due_keys_capped: bool,
}

/// Input of [`run_retention`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRun {
    /// Org id or slug; none means every org.
    #[serde(default)]
    pub org: Option<String>,
    /// Most jobs this run removes, 1 to [`MAX_MAX_JOBS`]; [`DEFAULT_MAX_JOBS`] when none.
    #[serde(default)]
    pub max_jobs: Option<u64>,
    /// Without `org`: the org id to start at (the `next_org` of the run before) instead
    /// of the first.
    #[serde(default)]
    pub from_org: Option<String>,
}

/// What one org's part of a run removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgRetention {
    /// The org.
    pub org_id: String,
    /// Its plan when the run reached it.
    pub plan: Plan,
    /// Days its plan keeps a finished job.
    pub history_days: u32,
    /// Jobs that ended before this time were removed.
    pub cutoff: Timestamp,
    /// Jobs removed (with their attempts and events).
    pub removed: u64,
    /// Keys removed: revoked, or expired, before the cutoff.
    pub keys_removed: u64,
}

/// What a run removed: the orgs where it removed something, and whether more is due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    /// Jobs removed in all.
    pub removed: u64,
    /// Keys removed in all.
    pub keys_removed: u64,
    /// Orgs where jobs or keys were removed, by id.
    pub orgs: Vec<OrgRetention>,
    /// True when the run stopped before its end (at its `max_jobs` with jobs still due,
    /// with a full slice of keys removed in an org, or at [`ORGS_PER_RUN`] orgs): run it
    /// again, from `next_org`.
    pub more: bool,
    /// Where a run without an org stopped: the org id to pass as `from_org` next. `None`
    /// when it reached the last org, or ran for one org.
    pub next_org: Option<String>,
}

impl Plan {
    /// Days this plan keeps a finished job (its `history_days` limit).
    pub fn history_days(self) -> u32 {
        self.limits().history_days
    }
}

impl RetentionRun {
    /// Where a run without an org starts: `from_org`, checked.
    fn start(&self) -> CoreResult<Start> {
        let Some(from) = self.from_org.as_deref() else {
            return Ok(Start::First);
        };
        if self.org.is_some() {
            return Err(CoreError::invalid(
                "from_org",
                "only a run over every org (without `org`) starts from an org".to_owned(),
            ));
        }
        crate::text::plain("from_org", from)?;
        if from.is_empty() || from.len() > MAX_FROM_ORG_LEN {
            return Err(CoreError::invalid(
                "from_org",
                format!("1 to {MAX_FROM_ORG_LEN} bytes: the `next_org` of a run"),
            ));
        }
        Ok(Start::From(from.to_owned()))
    }

    fn max_jobs(&self) -> CoreResult<u64> {
        match self.max_jobs {
            None => Ok(DEFAULT_MAX_JOBS),
            Some(n) if (1..=MAX_MAX_JOBS).contains(&n) => Ok(n),
            Some(_) => Err(CoreError::invalid(
                "max_jobs",
                format!("must be between 1 and {MAX_MAX_JOBS}"),
            )),
        }
    }
}

/// The time before which an org on `plan` has its finished jobs removed, seen at `at`.
pub fn cutoff(plan: Plan, at: DateTime<Utc>) -> DateTime<Utc> {
    at - chrono::Duration::days(i64::from(plan.history_days()))
}

/// The lowest job id made at `t` (UUIDv7: ids made before `t` sort below it), so the
/// walk over an org's ids stops where jobs too young to be due begin.
fn id_bound(t: DateTime<Utc>) -> String {
    let ms = u64::try_from(t.timestamp_millis()).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(ms, &[0; 10])
        .into_uuid()
        .to_string()
}

/// `status IN (...)` of the finished statuses; constants, never caller text.
fn finished_statuses() -> String {
    JobStatus::ALL
        .into_iter()
        .filter(|s| s.is_terminal())
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `WHERE` of the due jobs of org `$1`: made before `$2` (an id bound), after the
/// cursor `$3`, finished before `$4`.
fn due_where() -> String {
    format!(
        "org_id = $1 AND id < $2 AND id > $3 AND status IN ({}) AND finished_at < $4",
        finished_statuses()
    )
}

fn due_values(org_id: &str, cut: DateTime<Utc>, after: &str) -> Vec<DbValue> {
    vec![
        org_id.into(),
        id_bound(cut).into(),
        after.into(),
        DbValue::from(cut),
    ]
}

/// Shows an org's retention: its plan's days, the cutoff, and how many finished jobs are
/// due for removal (counted up to [`DUE_COUNT_CAP`]). Needs `jobs:read`.
pub async fn retention_state(
    velu: &Velu,
    who: &Principal,
    org: &OrgRef,
) -> CoreResult<RetentionState> {
    let tx = velu.db().read_tx().await?;
    let org = who.enter(&tx, org, Scope::JobsRead).await?;
    let plan = org.plan()?;
    let cut = cutoff(plan, now());
    let sql = format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM jobs WHERE {} LIMIT {}) AS due",
        due_where(),
        DUE_COUNT_CAP + 1
    );
    let row = tx
        .query_one_raw(stmt(
            tx.get_database_backend(),
            &sql,
            due_values(org.id(), cut, ""),
        ))
        .await?
        .ok_or_else(|| CoreError::internal("COUNT returned no row"))?;
    let counted = u64::try_from(row.try_get_by_index::<i64>(0)?).unwrap_or(0);
    let keys = crate::keys::retention::count_due(&tx, org.id(), cut, DUE_COUNT_CAP).await?;
    tx.commit().await?;
    Ok(RetentionState {
        org_id: org.id().to_owned(),
        plan,
        history_days: plan.history_days(),
        cutoff: cut.into(),
        due_jobs: counted.min(DUE_COUNT_CAP),
        due_jobs_capped: counted > DUE_COUNT_CAP,
        due_keys: keys.min(DUE_COUNT_CAP),
        due_keys_capped: keys > DUE_COUNT_CAP,
    })
}

/// Removes finished jobs past their org's plan retention, with their attempts and events:
/// of one org, or of every org when none is named (in id order from `from_org`, at most
/// [`ORGS_PER_RUN`] of them, then `next_org` says where to go on), at most `max_jobs` in
/// all, oldest first within each org, in slices of [`SLICE`] (one short transaction each,
/// audited as `jobs.retention` in the org). Queued and running jobs are never removed.
/// With an org's last job slice go up to [`SLICE`] of its keys revoked or expired before
/// the cutoff (`keys.retention`; a full slice sets `more`). Needs
/// `admin:orgs:manage` and no org of its own: the operator or a platform key.
pub async fn run_retention(
    velu: &Velu,
    who: &Principal,
    input: &RetentionRun,
) -> CoreResult<RetentionReport> {
    who.require(Scope::OrgsManage)?;
    if who.org_id.is_some() {
        // Org keys cannot hold the scope; refuse all the same if one ever did.
        return Err(CoreError::forbidden(Scope::OrgsManage));
    }
    let max_jobs = input.max_jobs()?;
    let mut start = input.start()?;
    let mut run = Run {
        left: max_jobs,
        report: RetentionReport {
            removed: 0,
            keys_removed: 0,
            orgs: Vec::new(),
            more: false,
            next_org: None,
        },
        pause_owed: false,
    };
    match &input.org {
        // A missing org is `not_found` at its first slice, before anything is removed.
        Some(org) => run.org(velu, who, &OrgRef::new(org.as_str())).await?,
        None => {
            let mut visited = 0;
            while let Some(page) = org_page(velu, &start).await? {
                for id in &page {
                    if visited == ORGS_PER_RUN {
                        run.report.more = true;
                        run.report.next_org = Some(id.clone());
                        return Ok(run.report);
                    }
                    run.org(velu, who, &OrgRef::new(id.as_str())).await?;
                    visited += 1;
                    if run.report.more {
                        // Stopped inside this org: the next run starts at it.
                        run.report.next_org = Some(id.clone());
                        return Ok(run.report);
                    }
                }
                let Some(last) = page.last() else { break };
                start = Start::After(last.clone());
            }
        }
    }
    Ok(run.report)
}

/// Where a walk over every org starts, or goes on.
#[derive(Debug, Clone)]
enum Start {
    /// At the first org.
    First,
    /// At this org id (the `next_org` of an earlier run), or the first after it.
    From(String),
    /// After this org id.
    After(String),
}

/// The next page of org ids from `start`, in id order, or `None` past the last.
async fn org_page(velu: &Velu, start: &Start) -> CoreResult<Option<Vec<String>>> {
    let tx = velu.db().cross_org_read_tx(CrossOrg::Platform).await?;
    let mut select = organizations::Entity::find()
        .select_only()
        .column(organizations::Column::Id)
        .order_by_asc(organizations::Column::Id)
        .limit(ORGS_PER_PAGE);
    match start {
        Start::First => {}
        Start::From(id) => select = select.filter(organizations::Column::Id.gte(id.as_str())),
        Start::After(id) => select = select.filter(organizations::Column::Id.gt(id.as_str())),
    }
    let ids: Vec<String> = select.into_tuple().all(&tx).await?;
    tx.commit().await?;
    Ok((!ids.is_empty()).then_some(ids))
}

/// A run under way: its budget left and its report.
struct Run {
    left: u64,
    report: RetentionReport,
    /// The last slice removed jobs: on SQLite the next one waits [`SQLITE_SLICE_PAUSE`].
    pause_owed: bool,
}

impl Run {
    /// Removes the org's due jobs, slice by slice, within the budget left.
    async fn org(&mut self, velu: &Velu, who: &Principal, org_ref: &OrgRef) -> CoreResult<()> {
        let mut cursor = String::new();
        let mut done: Option<OrgRetention> = None;
        loop {
            let want = self.left.min(SLICE);
            if std::mem::take(&mut self.pause_owed) && velu.db().backend() == Backend::Sqlite {
                tokio::time::sleep(SQLITE_SLICE_PAUSE).await;
            }
            let tx = velu.db().write_tx().await?;
            let org = who.enter(&tx, org_ref, Scope::OrgsManage).await?;
            let plan = org.plan()?;
            let cut = cutoff(plan, now());
            let entry = done.get_or_insert_with(|| OrgRetention {
                org_id: org.id().to_owned(),
                plan,
                history_days: plan.history_days(),
                cutoff: cut.into(),
                removed: 0,
                keys_removed: 0,
            });
            if want == 0 {
                // The budget is spent: is anything of this org still due?
                self.report.more = !due_ids(&tx, org.id(), cut, &cursor, 1).await?.is_empty();
                if !self.report.more {
                    self.keys(&tx, who, &org, plan, cut, entry).await?;
                }
                tx.commit().await?;
                break;
            }
            let ids = due_ids(&tx, org.id(), cut, &cursor, want).await?;
            let Some(last) = ids.last().cloned() else {
                self.keys(&tx, who, &org, plan, cut, entry).await?;
                tx.commit().await?;
                break;
            };
            let removed = remove(&tx, velu.db().backend(), &ids).await?;
            record(&tx, who, &org, Removed::Jobs(removed), plan, cut).await?;
            // The last slice of the org's jobs: its keys go in the same transaction.
            let last_slice = (ids.len() as u64) < want;
            let keys = if last_slice {
                self.keys(&tx, who, &org, plan, cut, entry).await?
            } else {
                0
            };
            tx.commit().await?;
            self.pause_owed = removed > 0 || keys > 0;
            entry.removed += removed;
            self.left -= removed.min(self.left);
            self.report.removed += removed;
            cursor = last;
            if last_slice {
                break;
            }
        }
        if let Some(entry) = done.filter(|e| e.removed > 0 || e.keys_removed > 0) {
            self.report.orgs.push(entry);
        }
        Ok(())
    }

    /// Removes one slice of the org's dead keys in `tx` (the transaction of the org's last
    /// job slice) and counts them; a full slice leaves more for the next run.
    async fn keys(
        &mut self,
        tx: &DatabaseTransaction,
        who: &Principal,
        org: &OrgScope,
        plan: Plan,
        cut: DateTime<Utc>,
        entry: &mut OrgRetention,
    ) -> CoreResult<u64> {
        let removed = crate::keys::retention::remove_due(tx, org.id(), cut, SLICE).await?;
        if removed == 0 {
            return Ok(0);
        }
        record(tx, who, org, Removed::Keys(removed), plan, cut).await?;
        self.pause_owed = true;
        self.report.more |= removed == SLICE;
        entry.keys_removed += removed;
        self.report.keys_removed += removed;
        Ok(removed)
    }
}

/// What one slice removed, for its audit record.
#[derive(Debug, Clone, Copy)]
enum Removed {
    /// Finished jobs (`jobs.retention`).
    Jobs(u64),
    /// Dead keys (`keys.retention`).
    Keys(u64),
}

/// Up to `n` ids of org `org_id`'s jobs due at `cut`, after `cursor`, in id order. On
/// PostgreSQL the rows are locked, skipping rows another run has locked.
async fn due_ids(
    tx: &DatabaseTransaction,
    org_id: &str,
    cut: DateTime<Utc>,
    cursor: &str,
    n: u64,
) -> CoreResult<Vec<String>> {
    let backend = tx.get_database_backend();
    let lock = match backend {
        sea_orm::DbBackend::Postgres => " FOR UPDATE SKIP LOCKED",
        _ => "",
    };
    let sql = format!(
        "SELECT id FROM jobs WHERE {} ORDER BY id LIMIT {n}{lock}",
        due_where()
    );
    let rows = tx
        .query_all_raw(stmt(backend, &sql, due_values(org_id, cut, cursor)))
        .await?;
    rows.iter()
        .map(|r| r.try_get_by_index::<String>(0).map_err(CoreError::from))
        .collect()
}

/// Deletes the jobs `ids` and their events (their attempts go by the foreign key's
/// cascade); the number of jobs deleted.
async fn remove(tx: &DatabaseTransaction, backend: Backend, ids: &[String]) -> CoreResult<u64> {
    let db = tx.get_database_backend();
    let list = json_param(ids)?;
    let rows = json_array_rows(backend, 1);
    tx.execute_raw(stmt(
        db,
        &format!("DELETE FROM job_events WHERE job_id IN ({rows})"),
        vec![list.clone()],
    ))
    .await?;
    let done = tx
        .execute_raw(stmt(
            db,
            &format!("DELETE FROM jobs WHERE id IN ({rows})"),
            vec![list],
        ))
        .await?;
    Ok(done.rows_affected())
}

/// The audit record of one slice, in its transaction.
async fn record(
    tx: &DatabaseTransaction,
    who: &Principal,
    org: &OrgScope,
    what: Removed,
    plan: Plan,
    cut: DateTime<Utc>,
) -> CoreResult<()> {
    let (action, removed) = match what {
        Removed::Jobs(n) => ("jobs.retention", n),
        Removed::Keys(n) => ("keys.retention", n),
    };
    audit::record(
        tx,
        who,
        Record {
            org_id: Some(org.id()),
            action,
            target_type: "org",
            target_id: org.id(),
            details: json!({
                "removed": removed,
                "plan": plan,
                "history_days": plan.history_days(),
                "cutoff": crate::time::format(&cut),
            }),
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_bound_sorts_between_ids_made_before_and_after() {
        let t = now();
        let before = uuid::Builder::from_unix_timestamp_millis(
            (t.timestamp_millis() - 1) as u64,
            &[0xff; 10],
        )
        .into_uuid()
        .to_string();
        let after = crate::ids::new_id();
        let bound = id_bound(t);
        assert!(crate::ids::is_uuid(&bound), "{bound}");
        assert!(before < bound, "{before} < {bound}");
        assert!(bound <= after, "{bound} <= {after}");
    }

    #[test]
    fn only_finished_statuses_are_due() {
        let s = finished_statuses();
        assert_eq!(s, "'succeeded', 'failed', 'cancelled'");
    }

    #[test]
    fn max_jobs_is_bounded_and_defaults() {
        let run = |n| RetentionRun {
            org: None,
            max_jobs: n,
            from_org: None,
        };
        assert_eq!(run(None).max_jobs().unwrap(), DEFAULT_MAX_JOBS);
        assert_eq!(run(Some(1)).max_jobs().unwrap(), 1);
        assert_eq!(run(Some(MAX_MAX_JOBS)).max_jobs().unwrap(), MAX_MAX_JOBS);
        assert_eq!(run(Some(0)).max_jobs().unwrap_err().code(), "invalid");
        assert_eq!(
            run(Some(MAX_MAX_JOBS + 1)).max_jobs().unwrap_err().code(),
            "invalid"
        );
    }

    #[test]
    fn from_org_is_only_for_a_run_over_every_org_and_plain() {
        let run = |org: Option<&str>, from: &str| RetentionRun {
            org: org.map(str::to_owned),
            max_jobs: None,
            from_org: Some(from.to_owned()),
        };
        let id = "0193aaaa-0000-7000-8000-000000000001";
        assert!(matches!(run(None, id).start().unwrap(), Start::From(f) if f == id));
        for bad in [
            run(Some("acme"), id),
            run(None, ""),
            run(None, "a\0b"),
            run(None, &"x".repeat(65)),
        ] {
            assert_eq!(bad.start().unwrap_err().code(), "invalid", "{bad:?}");
        }
        let none = RetentionRun::default();
        assert!(matches!(none.start().unwrap(), Start::First));
    }

    #[test]
    fn longer_plans_keep_longer() {
        let at = now();
        assert!(cutoff(Plan::Base, at) > cutoff(Plan::Hero, at));
        assert!(cutoff(Plan::Hero, at) > cutoff(Plan::Superhero, at));
        assert_eq!(
            at - cutoff(Plan::Hero, at),
            chrono::Duration::days(i64::from(Plan::Hero.history_days()))
        );
    }
}
