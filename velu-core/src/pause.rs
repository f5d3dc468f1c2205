//! Pausing and resuming the queue: an org's whole queue (the operator, platform keys, or
//! the org's own admin), or one task kind in every org (platform only).
//!
//! A pause holds jobs back; it never touches them. Paused jobs stay `queued` (a cancel or
//! a submit works as usual, and a submit says `queue_paused: true`), running jobs finish,
//! and a resume lets workers claim them again. What the queue does with a pause is
//! [`crate::queue`]'s (`queue/pause.rs`): the claim itself checks it, so no worker's cache
//! can miss it. Pausing what is paused, or resuming what is not, changes nothing and
//! returns the current state; only a change is audited (`queue.pause`, `queue.resume`,
//! `task.pause`, `task.resume`), in the transaction that makes it.

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{self, Record};
use crate::db::CrossOrg;
use crate::db::notify::{self, Change};
use crate::entity::queue_pauses;
use crate::jobs::JobStatus;
use crate::principal::Principal;
use crate::queue::{self, PauseScope};
use crate::scopes::Scope;
use crate::tenancy::{OrgRef, OrgScope};
use crate::time::{Timestamp, now};
use crate::{CoreError, CoreResult, Velu};

/// Longest pause reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// Input of a pause: why, for whoever reads the state later.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseInput {
    /// One line, at most [`MAX_REASON_CHARS`] characters, no control characters; trimmed,
    /// and blank means none.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Who paused, and when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pause {
    /// When it was paused.
    pub paused_at: Timestamp,
    /// `cli` or `api_key`; `platform` for a kind paused for everyone, as an org key reads it.
    pub actor_type: String,
    /// OS user or key id of who paused it; `platform` as above.
    pub actor_id: String,
    /// Why, if a reason was given.
    pub reason: Option<String>,
}

use crate::audit::is_platform;
use crate::principal::PLATFORM;

/// A task kind's pause state (for every org).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskPauseState {
    /// The kind.
    pub task: String,
    /// True while its jobs are held in every org.
    pub paused: bool,
    /// The pause, while paused.
    pub pause: Option<Pause>,
}

/// An org's queue: paused or not, the kinds paused for everyone, and how many jobs wait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueState {
    /// The org.
    pub org_id: String,
    /// True while the org's queued jobs are held.
    pub paused: bool,
    /// The org's pause, while paused.
    pub pause: Option<Pause>,
    /// Task kinds paused in every org (their jobs are held here too), by name.
    pub paused_tasks: Vec<TaskPauseState>,
    /// Jobs queued (ready or not).
    pub queued: u64,
    /// Jobs running now (a pause lets them finish).
    pub running: u64,
}

impl Pause {
    fn from_model(m: queue_pauses::Model) -> Pause {
        Pause {
            paused_at: m.paused_at.into(),
            actor_type: m.actor_type,
            actor_id: m.actor_id,
            reason: m.reason,
        }
    }
}

impl TaskPauseState {
    fn new(task: &str, row: Option<queue_pauses::Model>) -> TaskPauseState {
        TaskPauseState {
            task: task.to_owned(),
            paused: row.is_some(),
            pause: row.map(Pause::from_model),
        }
    }
}

impl PauseInput {
    /// The reason as stored: trimmed, `None` when blank; `invalid` when too long or when
    /// it holds a control character (U+0000 included).
    fn reason(&self) -> CoreResult<Option<String>> {
        let Some(text) = self.reason.as_deref().map(str::trim) else {
            return Ok(None);
        };
        crate::text::plain("reason", text)?;
        if text.chars().count() > MAX_REASON_CHARS {
            return Err(CoreError::invalid(
                "reason",
                format!("must be at most {MAX_REASON_CHARS} characters"),
            ));
        }
        Ok((!text.is_empty()).then(|| text.to_owned()))
    }
}

/// The scope an org-queue operation needs of `who`: `admin:queue:manage`, which an org's
/// admin holds; the operator and platform keys may also act with `admin:orgs:manage`.
fn queue_scope(who: &Principal) -> Scope {
    if who.org_id.is_none() && !who.scopes.contains(Scope::QueueManage) {
        Scope::OrgsManage
    } else {
        Scope::QueueManage
    }
}

async fn find<C: ConnectionTrait>(
    conn: &C,
    scope: PauseScope,
    target: &str,
) -> CoreResult<Option<queue_pauses::Model>> {
    Ok(
        queue_pauses::Entity::find_by_id((scope.as_str().to_owned(), target.to_owned()))
            .one(conn)
            .await?,
    )
}

/// From the org's job counters (`jobs/counts.rs`): a handful of rows however many jobs
/// are queued (up to the plan's 1,000,000), never a count over the queue.
async fn count_jobs<C: ConnectionTrait>(
    conn: &C,
    org_id: &str,
    status: JobStatus,
) -> CoreResult<u64> {
    crate::jobs::counts::in_status(conn, org_id, status).await
}

/// The org's queue as `who` may see it. An org key reads the platform as the author
/// (`actor_type` and `actor_id` both `platform`) of the kinds paused for everyone, and of
/// its org's own pause when the operator or a platform key made it: the operator's OS
/// user name or a platform key's id are not a tenant's to know.
async fn queue_state<C: ConnectionTrait>(
    conn: &C,
    who: &Principal,
    org: &OrgScope,
) -> CoreResult<QueueState> {
    let tenant = who.org_id.is_some();
    let own = find(conn, PauseScope::Org, org.id()).await?.map(|m| {
        let platform = is_platform(&m.actor_type, m.actor_org_id.as_deref(), org.id());
        let mut p = Pause::from_model(m);
        if tenant && platform {
            p.actor_type = PLATFORM.into();
            p.actor_id = PLATFORM.into();
        }
        p
    });
    let tasks = queue_pauses::Entity::find()
        .filter(queue_pauses::Column::Scope.eq(PauseScope::Task.as_str()))
        .order_by_asc(queue_pauses::Column::Target)
        .all(conn)
        .await?;
    Ok(QueueState {
        org_id: org.id().to_owned(),
        paused: own.is_some(),
        pause: own,
        paused_tasks: tasks
            .into_iter()
            .map(|m| {
                let mut state = TaskPauseState::new(&m.target.clone(), Some(m));
                if tenant && let Some(p) = &mut state.pause {
                    p.actor_type = PLATFORM.into();
                    p.actor_id = PLATFORM.into();
                }
                state
            })
            .collect(),
        queued: count_jobs(conn, org.id(), JobStatus::Queued).await?,
        running: count_jobs(conn, org.id(), JobStatus::Running).await?,
    })
}

/// Inserts a pause unless one is there; true when this call paused.
async fn insert_pause<C: ConnectionTrait>(
    conn: &C,
    who: &Principal,
    scope: PauseScope,
    target: &str,
    reason: Option<String>,
) -> CoreResult<bool> {
    let row = queue_pauses::ActiveModel {
        scope: Set(scope.as_str().to_owned()),
        target: Set(target.to_owned()),
        paused_at: Set(now()),
        actor_type: Set(who.actor.kind.as_str().to_owned()),
        actor_id: Set(who.actor.id.clone()),
        actor_org_id: Set(who.key_org().map(str::to_owned)),
        reason: Set(reason),
    };
    let inserted = queue_pauses::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([queue_pauses::Column::Scope, queue_pauses::Column::Target])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(inserted > 0)
}

/// Deletes a pause; true when there was one.
async fn delete_pause<C: ConnectionTrait>(
    conn: &C,
    scope: PauseScope,
    target: &str,
) -> CoreResult<bool> {
    let done = queue_pauses::Entity::delete_by_id((scope.as_str().to_owned(), target.to_owned()))
        .exec(conn)
        .await?;
    Ok(done.rows_affected > 0)
}

/// Shows an org's queue: paused or not (since when, by whom, why), the task kinds paused
/// for everyone, and its queued and running counts. Needs `admin:queue:manage` (an org's
/// admin), or `admin:orgs:manage` for the operator and platform keys.
pub async fn show_queue(velu: &Velu, who: &Principal, org: &OrgRef) -> CoreResult<QueueState> {
    let tx = velu.db().read_tx().await?;
    let org = who.enter(&tx, org, queue_scope(who)).await?;
    queue_state(&tx, who, &org).await
}

/// Pauses an org's queue: its queued jobs stay queued and no worker claims them until
/// [`resume_queue`]; running jobs finish. Already paused: nothing changes (the first
/// pause's time, actor and reason stay). Rights as [`show_queue`].
pub async fn pause_queue(
    velu: &Velu,
    who: &Principal,
    org: &OrgRef,
    input: &PauseInput,
) -> CoreResult<QueueState> {
    // Checked on a read first: a refused caller never takes the write lock.
    who.check_enter(velu.db(), org, queue_scope(who)).await?;
    let reason = input.reason()?;
    let tx = velu.db().write_tx().await?;
    let org = who.enter(&tx, org, queue_scope(who)).await?;
    // Claims of the org under way finish first; later ones see the pause.
    queue::hold_claims(velu.db(), &tx, org.id()).await?;
    if insert_pause(&tx, who, PauseScope::Org, org.id(), reason.clone()).await? {
        audit::record(
            &tx,
            who,
            Record {
                org_id: Some(org.id()),
                action: "queue.pause",
                target_type: "org",
                target_id: org.id(),
                details: json!({ "reason": reason }),
            },
        )
        .await?;
    }
    let state = queue_state(&tx, who, &org).await?;
    tx.commit().await?;
    Ok(state)
}

/// Resumes an org's queue: workers claim its jobs again. Not paused: nothing changes.
/// Rights as [`show_queue`].
pub async fn resume_queue(velu: &Velu, who: &Principal, org: &OrgRef) -> CoreResult<QueueState> {
    who.check_enter(velu.db(), org, queue_scope(who)).await?;
    let tx = velu.db().write_tx().await?;
    let org = who.enter(&tx, org, queue_scope(who)).await?;
    let resumed = delete_pause(&tx, PauseScope::Org, org.id()).await?;
    let change = Change::Jobs(org.id().to_owned());
    if resumed {
        audit::record(
            &tx,
            who,
            Record {
                org_id: Some(org.id()),
                action: "queue.resume",
                target_type: "org",
                target_id: org.id(),
                details: json!({}),
            },
        )
        .await?;
        // Its jobs are ready again: wake idle workers on every node.
        notify::send(&tx, &change).await?;
    }
    let state = queue_state(&tx, who, &org).await?;
    tx.commit().await?;
    if resumed {
        velu.changed(change);
    }
    Ok(state)
}

/// A task-kind operation's checks: platform only (`admin:orgs:manage`), and the kind must
/// be in the catalog (or, for a resume, paused), else `not_found`.
fn check_task_rights(who: &Principal) -> CoreResult<()> {
    who.require(Scope::OrgsManage)?;
    if who.org_id.is_some() {
        // Org keys cannot hold the scope; refuse all the same if one ever did.
        return Err(CoreError::forbidden(Scope::OrgsManage));
    }
    Ok(())
}

fn unknown_task(task: &str) -> CoreError {
    CoreError::not_found("task", task.escape_debug().to_string())
}

/// Pauses a task kind in every org: no worker claims a job of it until [`resume_task`];
/// running ones finish. Already paused: nothing changes. Needs `admin:orgs:manage` (the
/// operator or a platform key); an unknown kind is `not_found`.
pub async fn pause_task(
    velu: &Velu,
    who: &Principal,
    task: &str,
    input: &PauseInput,
) -> CoreResult<TaskPauseState> {
    check_task_rights(who)?;
    let kind = velu.tasks().get(task).ok_or_else(|| unknown_task(task))?;
    let reason = input.reason()?;
    let tx = velu.db().cross_org_tx(CrossOrg::Platform).await?;
    if insert_pause(&tx, who, PauseScope::Task, &kind.name, reason.clone()).await? {
        audit::record(
            &tx,
            who,
            Record {
                org_id: None,
                action: "task.pause",
                target_type: "task",
                target_id: &kind.name,
                details: json!({ "reason": reason }),
            },
        )
        .await?;
    }
    let row = find(&tx, PauseScope::Task, &kind.name).await?;
    tx.commit().await?;
    Ok(TaskPauseState::new(&kind.name, row))
}

/// Resumes a task kind in every org. Not paused: nothing changes. Rights as
/// [`pause_task`]; a kind paused and since gone from the catalog may still be resumed.
pub async fn resume_task(velu: &Velu, who: &Principal, task: &str) -> CoreResult<TaskPauseState> {
    check_task_rights(who)?;
    // Text no kind could have never reaches a query (PostgreSQL refuses U+0000).
    if task.is_empty() || task.len() > 64 || task.chars().any(char::is_control) {
        return Err(unknown_task(task));
    }
    let tx = velu.db().cross_org_tx(CrossOrg::Platform).await?;
    let resumed = delete_pause(&tx, PauseScope::Task, task).await?;
    if !resumed && velu.tasks().get(task).is_none() {
        return Err(unknown_task(task));
    }
    if resumed {
        audit::record(
            &tx,
            who,
            Record {
                org_id: None,
                action: "task.resume",
                target_type: "task",
                target_id: task,
                details: json!({}),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(TaskPauseState::new(task, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::{Actor, ActorType};
    use crate::scopes::{Role, ScopeSet};

    fn input(reason: &str) -> PauseInput {
        PauseInput {
            reason: Some(reason.to_owned()),
        }
    }

    #[test]
    fn reasons_are_one_bounded_line() {
        assert_eq!(
            input("  deploy  ").reason().unwrap().as_deref(),
            Some("deploy")
        );
        assert_eq!(input("   ").reason().unwrap(), None);
        assert_eq!(PauseInput::default().reason().unwrap(), None);
        assert!(input("a\u{0}b").reason().is_err());
        assert!(input("two\nlines").reason().is_err());
        assert!(input(&"é".repeat(MAX_REASON_CHARS)).reason().is_ok());
        assert!(input(&"x".repeat(MAX_REASON_CHARS + 1)).reason().is_err());
    }

    #[test]
    fn org_admins_need_the_queue_scope_platform_keys_either() {
        let key = |org: Option<&str>, scopes: ScopeSet| Principal {
            actor: Actor {
                kind: ActorType::ApiKey,
                id: "k".into(),
            },
            org_id: org.map(str::to_owned),
            scopes,
            plan: None,
        };
        assert_eq!(
            queue_scope(&key(Some("o"), Role::Admin.scopes())),
            Scope::QueueManage
        );
        assert_eq!(
            queue_scope(&key(Some("o"), Role::Viewer.scopes())),
            Scope::QueueManage
        );
        let orgs_only = ScopeSet::parse(&["admin:orgs:manage"]).unwrap();
        assert_eq!(queue_scope(&key(None, orgs_only)), Scope::OrgsManage);
        assert_eq!(queue_scope(&Principal::operator()), Scope::QueueManage);
        let err = check_task_rights(&key(Some("o"), Role::Admin.scopes())).unwrap_err();
        assert_eq!(err.code(), "forbidden");
    }
}
