//! What a pause holds back, as the queue sees it: the SQL that keeps a paused org's jobs
//! and a paused task kind's jobs from being claimed, and the one lookup a submit makes to
//! say that its job will wait. The operations that pause and resume (rights, audit) are
//! [`crate::pause`].
//!
//! A pause lives in `queue_pauses`, keyed by ([`PauseScope`], target): one indexed lookup
//! on the primary key, never a scan of jobs. The claim checks it inside the claim itself
//! (SQLite: within `BEGIN IMMEDIATE`; PostgreSQL: inside `velu_claim_batch`, after the
//! per-org advisory lock that [`hold_claims`] also takes), so once a pause of an org has
//! committed no worker, local or remote, claims another job of that org. Running jobs
//! are left alone: they finish.

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Statement,
};

use crate::db::{Backend, Db};
use crate::entity::queue_pauses;
use crate::{CoreError, CoreResult};

/// What a pause applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PauseScope {
    /// One org's whole queue (target: the org id).
    Org,
    /// One task kind, in every org (target: the kind's name).
    Task,
}

impl PauseScope {
    /// The stored form: `org` or `task`.
    pub fn as_str(self) -> &'static str {
        match self {
            PauseScope::Org => "org",
            PauseScope::Task => "task",
        }
    }

    /// Parses a stored scope; anything else is a corrupt row (`internal`).
    pub fn from_stored(text: &str) -> CoreResult<PauseScope> {
        match text {
            "org" => Ok(PauseScope::Org),
            "task" => Ok(PauseScope::Task),
            other => Err(CoreError::internal(format!(
                "unknown pause scope `{other}` stored in queue_pauses"
            ))),
        }
    }
}

/// SQL: true when the org whose id is the expression `org` is paused.
pub(super) fn org_paused_sql(org: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM queue_pauses WHERE scope = '{}' AND target = {org})",
        PauseScope::Org.as_str()
    )
}

/// SQL: the names of the paused task kinds (a range of the primary key; a handful of rows).
pub(super) fn paused_tasks_sql() -> String {
    format!(
        "SELECT target FROM queue_pauses WHERE scope = '{}'",
        PauseScope::Task.as_str()
    )
}

/// Waits, inside `tx`, until no claim of `org_id` is under way, and keeps new claims of
/// it waiting until `tx` ends. On PostgreSQL this is the per-org advisory lock that
/// `velu_claim_batch` takes for each org before it claims, so a pause committed in `tx` is seen by every later claim and
/// no claim straddles it. SQLite needs nothing: `tx` already holds the write lock every
/// claim takes.
pub(crate) async fn hold_claims<C: ConnectionTrait>(
    db: &Db,
    tx: &C,
    org_id: &str,
) -> CoreResult<()> {
    if db.backend() == Backend::Postgres {
        tx.execute_raw(Statement::from_sql_and_values(
            db.db_backend(),
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            [org_id.into()],
        ))
        .await?;
    }
    Ok(())
}

/// Is a job of one of `tasks` for `org_id` held back by a pause (of the org or of one of
/// the kinds)? One indexed lookup: what a submit pays to say so.
pub(crate) async fn is_held<C: ConnectionTrait>(
    conn: &C,
    org_id: &str,
    tasks: &[&str],
) -> CoreResult<bool> {
    // Only pauses of this org or of these kinds are read: any one found holds.
    Ok(holds(conn, &[org_id], tasks).await?.any())
}

/// The pauses that hold jobs of any of `orgs` or `tasks`: the paused orgs among `orgs`
/// and the paused kinds among `tasks`, in one indexed lookup (a grouped submit's
/// [`is_held`]).
pub(crate) async fn holds<C: ConnectionTrait>(
    conn: &C,
    orgs: &[&str],
    tasks: &[&str],
) -> CoreResult<Holds> {
    let rows: Vec<(String, String)> = queue_pauses::Entity::find()
        .select_only()
        .column(queue_pauses::Column::Scope)
        .column(queue_pauses::Column::Target)
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(queue_pauses::Column::Scope.eq(PauseScope::Org.as_str()))
                        .add(queue_pauses::Column::Target.is_in(orgs.iter().copied())),
                )
                .add(
                    Condition::all()
                        .add(queue_pauses::Column::Scope.eq(PauseScope::Task.as_str()))
                        .add(queue_pauses::Column::Target.is_in(tasks.iter().copied())),
                ),
        )
        .into_tuple()
        .all(conn)
        .await?;
    let mut held = Holds::default();
    for (scope, target) in rows {
        if scope == PauseScope::Org.as_str() {
            held.orgs.insert(target);
        } else {
            held.tasks.insert(target);
        }
    }
    Ok(held)
}

/// Paused orgs and kinds, as [`holds`] found them.
#[derive(Debug, Default)]
pub(crate) struct Holds {
    orgs: std::collections::HashSet<String>,
    tasks: std::collections::HashSet<String>,
}

impl Holds {
    /// Was any pause found?
    fn any(&self) -> bool {
        !self.orgs.is_empty() || !self.tasks.is_empty()
    }

    /// Is a job of `task` for `org_id` held back?
    pub(crate) fn holds(&self, org_id: &str, task: &str) -> bool {
        self.orgs.contains(org_id) || self.tasks.contains(task)
    }
}
