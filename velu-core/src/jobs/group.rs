//! Group commit for single submits: submits that arrive while a transaction is being
//! written wait for the next one and share it, its statements and its commit (issue
//! "Performance", target 3).
//!
//! A submit hands its request to the process's [`GroupCommitter`] and waits for its own
//! answer. A few leader tasks (one on SQLite, whose writes are serial anyway; four on
//! PostgreSQL, so groups gather while others commit, and their commits share the server's
//! WAL flushes; the rows they share, usage counters and job counters, are sharded by
//! connection so they do not queue on each other's locks) each take whatever has
//! arrived, up to [`MAX_GROUP`], and write it with [`super::grouped::write_group`]: every
//! request is entered and checked on its own and keeps its own result or error; the
//! accepted ones are written together. No request waits for company: a lone submit is a
//! group of one, written at once.
//!
//! An org whose admission turn another transaction holds for long (its own batch of
//! 50,000 jobs, say) is waited for only `admission::PATIENCE`: then its requests are
//! written alone, each on a task of its own, and the group goes on without them
//! (`admission::hold_or_busy`). Such an org is remembered: later groups try its turn
//! without waiting until one finds it free (`admission::BusyOrgs`), so it costs the orgs
//! grouped with it that wait once, not once per group.
//!
//! If the group's transaction fails as a whole (the database refused or went away), each
//! request is written alone through the one-at-a-time path, so one bad request never
//! costs the others their answer.

use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use super::grouped::Written;
use super::input::SubmitJob;
use super::submit::{Submitted, submit_alone};
use crate::db::Backend;
use crate::principal::Principal;
use crate::tenancy::OrgRef;
use crate::velu::WeakVelu;
use crate::{CoreError, CoreResult, Velu};

/// Most submits written in one transaction.
pub(crate) const MAX_GROUP: usize = 64;
/// Submits waiting for a leader before new ones wait for room (back pressure).
const QUEUE: usize = 1024;

/// One submit waiting for its group.
pub(crate) struct Pending {
    pub who: Principal,
    pub org: OrgRef,
    pub input: SubmitJob,
    reply: oneshot::Sender<CoreResult<Submitted>>,
}

impl Pending {
    /// Sends this request's answer (the submitter may have gone: nothing to do then).
    pub(crate) fn answer(self, result: CoreResult<Submitted>) {
        let _ = self.reply.send(result);
    }
}

/// The process's queue of single submits and its leader tasks, started on first use.
#[derive(Default)]
pub(crate) struct GroupCommitter {
    queue: Mutex<Option<mpsc::Sender<Pending>>>,
    /// The orgs the groups found busy (see [`crate::admission::BusyOrgs`]).
    busy: crate::admission::BusyOrgs,
}

impl GroupCommitter {
    /// The orgs the groups found busy, which later groups do not wait for.
    pub(crate) fn busy_orgs(&self) -> &crate::admission::BusyOrgs {
        &self.busy
    }

    /// Submits one job through the next group and returns its own result.
    pub(crate) async fn submit(
        &self,
        velu: &Velu,
        who: &Principal,
        org: &OrgRef,
        input: &SubmitJob,
    ) -> CoreResult<Submitted> {
        let (reply, answer) = oneshot::channel();
        let mut pending = Pending {
            who: who.clone(),
            org: org.clone(),
            input: input.clone(),
            reply,
        };
        // The leaders live on the runtime that started them; if it is gone, start new ones
        // here (the request was not taken, so sending it again is safe).
        for _ in 0..2 {
            let queue = self.queue(velu);
            match queue.send(pending).await {
                Ok(()) => {
                    return answer.await.unwrap_or_else(|_| {
                        Err(CoreError::internal(
                            "the submit's group was interrupted before it answered",
                        ))
                    });
                }
                Err(mpsc::error::SendError(back)) => {
                    pending = back;
                    self.reset(&queue);
                }
            }
        }
        submit_alone(velu, &pending.who, &pending.org, &pending.input).await
    }

    fn queue(&self, velu: &Velu) -> mpsc::Sender<Pending> {
        let mut slot = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(q) = slot.as_ref().filter(|q| !q.is_closed()) {
            return q.clone();
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let leaders = match velu.db().backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => 4,
        };
        for _ in 0..leaders {
            tokio::spawn(lead(velu.downgrade(), rx.clone()));
        }
        *slot = Some(tx.clone());
        tx
    }

    fn reset(&self, dead: &mpsc::Sender<Pending>) {
        let mut slot = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if slot.as_ref().is_some_and(|q| q.same_channel(dead)) {
            *slot = None;
        }
    }
}

/// A leader: takes what has arrived (up to [`MAX_GROUP`]) and writes it, until the queue
/// closes (its [`Velu`] was dropped).
async fn lead(velu: WeakVelu, rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Pending>>>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    loop {
        let taken = rx.lock().await.recv_many(&mut group, MAX_GROUP).await;
        if taken == 0 {
            return;
        }
        let Some(velu) = velu.upgrade() else {
            return;
        };
        commit(&velu, std::mem::take(&mut group)).await;
    }
}

/// Writes one group and answers each of its requests.
async fn commit(velu: &Velu, group: Vec<Pending>) {
    match super::grouped::write_group(velu, &group).await {
        Ok(results) => {
            for (pending, result) in group.into_iter().zip(results) {
                match result {
                    Written::Answered(result) => pending.answer(*result),
                    // Its org's turn is someone else's for now: wait for it on a task of
                    // its own, so this leader goes on to the next group.
                    Written::Alone => {
                        let velu = velu.clone();
                        tokio::spawn(async move {
                            let result =
                                submit_alone(&velu, &pending.who, &pending.org, &pending.input)
                                    .await;
                            pending.answer(result);
                        });
                    }
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, submits = group.len(), "a group of submits failed; writing each alone");
            for pending in group {
                let result = submit_alone(velu, &pending.who, &pending.org, &pending.input).await;
                pending.answer(result);
            }
        }
    }
}
