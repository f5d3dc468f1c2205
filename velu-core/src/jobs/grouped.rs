//! One group of single submits in one transaction: every request entered and checked on
//! its own, exactly as `submit_alone` would (the same errors, in the same order: org,
//! scope, submission, quota), then the accepted ones written together: one statement each
//! for the org rows, the queued counters and the pauses, then the jobs, their events, their
//! audit records, the usage rows and the wake-ups (one statement on PostgreSQL,
//! `grouped_pg.rs`; one each on SQLite), whatever the group's size.
//!
//! The transaction crosses orgs on purpose (`CrossOrg::GroupCommit`): row-level security
//! cannot tell the group's orgs apart, so this file keeps each job to the org its request
//! entered, and `tests/it/group_commit.rs` checks that it does.

use std::collections::HashMap;

use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait};
use serde_json::json;

use super::group::Pending;
use super::submit::{Submitted, check, quota};
use super::{Job, JobStatus};
use crate::audit::{self, Record};
use crate::db::notify::{self, Change};
use crate::db::{CrossOrg, events};
use crate::entity::jobs;
use crate::events::QueuedVia;
use crate::ids::new_id;
use crate::principal::Principal;
use crate::scopes::Scope;
use crate::time::now;
use crate::{CoreResult, Velu};

/// The distinct orgs of `accepted`, sorted.
fn orgs_of(accepted: &[Accepted]) -> Vec<&str> {
    let mut orgs: Vec<&str> = accepted.iter().map(|a| a.model.org_id.as_str()).collect();
    orgs.sort_unstable();
    orgs.dedup();
    orgs
}

/// A request that passed every check, with its new row.
struct Accepted {
    /// Its place in the group.
    index: usize,
    model: jobs::Model,
}

/// Writes `group` in one transaction. Returns what became of each request, in order; an
/// `Err` of the whole means the transaction failed and nothing was written.
pub(super) async fn write_group(velu: &Velu, group: &[Pending]) -> CoreResult<Vec<Written>> {
    let at = now();
    let tx = velu.db().cross_org_tx(CrossOrg::GroupCommit).await?;
    let asks: Vec<(&Principal, &crate::tenancy::OrgRef)> =
        group.iter().map(|p| (&p.who, &p.org)).collect();
    let entered = Principal::enter_many(&tx, &asks, Scope::JobsSubmit).await?;

    // Each request on its own: its org, its scope, its submission.
    let mut results: Vec<Option<CoreResult<Submitted>>> = Vec::with_capacity(group.len());
    let mut checked = Vec::new();
    for (index, (pending, org)) in group.iter().zip(entered).enumerate() {
        let staged = org.and_then(|org| {
            let plan = org.plan()?;
            let c = check(velu, plan, &pending.input, at)?;
            Ok((org.into_row().id, plan, c))
        });
        match staged {
            Ok(s) => {
                checked.push((index, s));
                results.push(None);
            }
            Err(e) => results.push(Some(Err(e))),
        }
    }

    // The queued-jobs quota of every org, counting the group's own earlier jobs.
    let mut orgs: Vec<&str> = checked.iter().map(|(_, (o, _, _))| o.as_str()).collect();
    orgs.sort_unstable();
    orgs.dedup();
    // Other groups (other leaders, other servers) admitting to these orgs wait until this
    // one commits, so the counts read next stay true. An org whose turn another
    // transaction holds past `PATIENCE` (its own large batch, say) is not waited for: its
    // requests are written alone after the group ([`Written::Alone`]), and the rest go on.
    let busy = crate::admission::hold_or_busy(
        &tx,
        crate::admission::Quota::QueuedJobs,
        &orgs,
        crate::admission::PATIENCE,
        velu.submits().busy_orgs(),
    )
    .await?;
    orgs.retain(|o| !busy.iter().any(|b| b == o));
    let mut queued = if orgs.is_empty() {
        HashMap::new()
    } else {
        super::counts::queued_many(&tx, &orgs).await?
    };
    let mut accepted = Vec::with_capacity(checked.len());
    let mut alone = Vec::new();
    for (index, (org_id, plan, c)) in checked {
        if busy.contains(&org_id) {
            alone.push(index);
            continue;
        }
        let n = queued.entry(org_id.clone()).or_insert(0);
        if *n >= plan.limits().queued_jobs {
            results[index] = Some(Err(quota(plan)));
            continue;
        }
        *n += 1;
        let who = &group[index].who;
        let model = jobs::Model {
            id: new_id(),
            org_id,
            task: c.task,
            status: JobStatus::Queued.as_str().to_owned(),
            payload: c.payload,
            result: None,
            error: None,
            priority: c.priority,
            attempts: 0,
            max_attempts: c.max_attempts,
            run_at: c.run_at,
            actor_type: who.actor.kind.as_str().to_owned(),
            actor_id: who.actor.id.clone(),
            idempotency_key: None,
            cancel_requested: false,
            lease_owner: None,
            lease_token: None,
            lease_expires_at: None,
            created_at: at,
            updated_at: at,
            started_at: None,
            finished_at: None,
            lease_started_at: None,
        };
        accepted.push(Accepted { index, model });
    }

    let paused = if accepted.is_empty() {
        Default::default()
    } else {
        let mut tasks: Vec<&str> = accepted.iter().map(|a| a.model.task.as_str()).collect();
        tasks.sort_unstable();
        tasks.dedup();
        crate::queue::holds(&tx, &orgs_of(&accepted), &tasks).await?
    };
    if !accepted.is_empty() {
        write_accepted(&tx, group, &accepted, at).await?;
    }
    tx.commit().await?;

    for org in orgs_of(&accepted) {
        velu.changed(Change::Jobs(org.to_owned()));
    }
    for a in accepted {
        let queue_paused = paused.holds(&a.model.org_id, &a.model.task);
        results[a.index] = Some(Job::from_model(a.model).map(|job| Submitted {
            job,
            created: true,
            queue_paused,
        }));
    }
    let mut written: Vec<Written> = results
        .into_iter()
        .map(|r| {
            Written::Answered(Box::new(r.unwrap_or_else(|| {
                Err(crate::CoreError::internal("a submit got no answer"))
            })))
        })
        .collect();
    for index in alone {
        written[index] = Written::Alone;
    }
    Ok(written)
}

/// What became of one request of a group.
pub(super) enum Written {
    /// Its own answer: written with the group, or refused.
    Answered(Box<CoreResult<Submitted>>),
    /// Not written: its org's admission turn was taken by another transaction, so it is
    /// to be written alone, waiting for that turn without holding up the group.
    Alone,
}

/// The accepted jobs' rows, `queued` events, audit records, usage and wake-ups: one
/// statement in all on PostgreSQL (`grouped_pg.rs`), one statement each on SQLite.
async fn write_accepted(
    tx: &sea_orm::DatabaseTransaction,
    group: &[Pending],
    accepted: &[Accepted],
    at: chrono::DateTime<chrono::Utc>,
) -> CoreResult<()> {
    let changes: Vec<Change> = orgs_of(accepted)
        .into_iter()
        .map(|o| Change::Jobs(o.to_owned()))
        .collect();
    if tx.get_database_backend() == sea_orm::DbBackend::Postgres {
        let rows: Vec<_> = accepted
            .iter()
            .map(|a| (&a.model, &group[a.index].who))
            .collect();
        return super::grouped_pg::write_accepted_pg(tx, &rows, &changes, at).await;
    }
    // Every column of the rows built above, as they are.
    let rows = accepted
        .iter()
        .map(|a| jobs::ActiveModel::from(a.model.clone()).reset_all());
    jobs::Entity::insert_many(rows)
        .exec_without_returning(tx)
        .await?;
    let ids: Vec<(&str, &str)> = accepted
        .iter()
        .map(|a| (a.model.id.as_str(), a.model.org_id.as_str()))
        .collect();
    events::insert_queued_many(tx, &ids, QueuedVia::Submit.as_str(), at).await?;
    audit::record_many(
        tx,
        accepted.iter().map(|a| {
            (
                &group[a.index].who,
                Record {
                    org_id: Some(&a.model.org_id),
                    action: "job.submit",
                    target_type: "job",
                    target_id: &a.model.id,
                    details: json!({ "task": a.model.task }),
                },
            )
        }),
        at,
    )
    .await?;
    notify::send_many(tx, &changes).await?;
    // Last: the usage rows are the ones concurrent groups share (one per org, day and
    // task), so their row locks are held only from here to the commit.
    crate::usage::record_submitted_many(
        tx,
        at,
        accepted
            .iter()
            .map(|a| (a.model.org_id.as_str(), a.model.task.as_str())),
    )
    .await?;
    Ok(())
}
