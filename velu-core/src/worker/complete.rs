//! Writing outcomes: batches of finished attempts, fenced by their lease tokens.
//!
//! A batch is retried through outages (the database is `unavailable`) until the lease
//! would be gone, then given up: past the lease, the jobs are reclaimed anyway. Any other
//! failure (the database refused the data) is never retried as a batch: each row is
//! written alone, so one bad outcome cannot hold back the others, and a row that still
//! fails is recorded as a failed attempt with an `internal` error.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::state::Shared;
use crate::jobs::{AttemptOutcome, JobError, JobErrorCode, JobStatus};
use crate::queue::Finish;
use crate::{CoreError, CoreResult};

/// Most outcomes written in one batch.
const MAX_BATCH: usize = 512;

/// Writes outcomes in batches (whatever has arrived, up to [`MAX_BATCH`] at a time), one
/// batch at a time: while a batch is written, the next one gathers in the channel. Returns
/// once the channel is closed and everything received is written.
pub(super) async fn complete_loop(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Finish>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // A write costs a commit whatever its size: let the handlers that are about to
        // end join the batch (one yield, not a sleep: a claim may be waiting for these
        // outcomes to free its orgs' places, and under load the batch gathers anyway
        // while the one before it is written).
        if batch.len() < 64 && !shared.running().is_empty() {
            tokio::task::yield_now().await;
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(f) => batch.push(f),
                    Err(_) => break,
                }
            }
        }
        write_outcomes(&shared, &batch).await;
        shared
            .unwritten
            .fetch_sub(batch.len() as u64, Ordering::AcqRel);
        // Written outcomes free the org's slots in the database.
        shared.slot_freed.notify_one();
        shared.written.notify_one();
        batch.clear();
    }
}

/// Writes one batch through [`store`] and counts what happened.
async fn write_outcomes(shared: &Shared, batch: &[Finish]) {
    let access = shared.access.clone();
    let write = writer(move |rows| {
        let access = access.clone();
        Box::pin(async move { access.finish(rows).await })
    });
    let stored = store(batch, Instant::now() + shared.cfg.lease, &write).await;
    if stored.fenced > 0 {
        tracing::warn!(
            fenced = stored.fenced,
            "outcomes refused: leases had moved on"
        );
        shared
            .counters
            .fenced
            .fetch_add(stored.fenced as u64, Ordering::Relaxed);
    }
}

/// A write of some outcomes: the ids written.
pub(super) type WriteFuture<'a> =
    Pin<Box<dyn Future<Output = CoreResult<Vec<String>>> + Send + 'a>>;

/// Gives a closure its higher-ranked signature (closures do not infer it).
pub(super) fn writer<W>(w: W) -> W
where
    W: for<'a> Fn(&'a [Finish]) -> WriteFuture<'a>,
{
    w
}

/// What became of a batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Stored {
    /// Rows written as they were.
    pub written: usize,
    /// Rows refused because the lease had moved on.
    pub fenced: usize,
    /// Rows the database refused, recorded as failed attempts instead.
    pub replaced: usize,
    /// Rows not written at all (outage past the deadline).
    pub lost: usize,
}

/// Writes `batch` with `write`: whole while that works, retried through outages until
/// `deadline`, row by row when the database refuses it.
pub(super) async fn store<W>(batch: &[Finish], deadline: Instant, write: &W) -> Stored
where
    W: for<'a> Fn(&'a [Finish]) -> WriteFuture<'a> + Sync,
{
    let mut stored = Stored::default();
    match retry(batch, deadline, write).await {
        Ok(ids) => {
            stored.written = ids.len();
            stored.fenced = batch.len() - ids.len();
            return stored;
        }
        Err(e @ CoreError::Unavailable(_)) => {
            tracing::error!(error = %e, lost = batch.len(), "giving up writing outcomes");
            stored.lost = batch.len();
            return stored;
        }
        Err(e) if batch.len() > 1 => {
            tracing::warn!(error = %e, rows = batch.len(), "a batch of outcomes was refused; writing each alone");
        }
        Err(_) => {}
    }
    for row in batch {
        let one = std::slice::from_ref(row);
        let result = match retry(one, deadline, write).await {
            // A refusal may be a passing conflict: once more before replacing the row.
            Err(CoreError::Internal(_)) => retry(one, deadline, write).await,
            other => other,
        };
        match result {
            Ok(ids) if ids.is_empty() => stored.fenced += 1,
            Ok(_) => stored.written += 1,
            Err(CoreError::Unavailable(_)) => stored.lost += 1,
            Err(e) => {
                tracing::error!(job = %row.id, error = %e, "the database refused a job's outcome; recording the attempt as failed");
                match retry(std::slice::from_ref(&unstorable(row)), deadline, write).await {
                    Ok(ids) if ids.is_empty() => stored.fenced += 1,
                    Ok(_) => stored.replaced += 1,
                    Err(e) => {
                        tracing::error!(job = %row.id, error = %e, "cannot record the failure either; the lease will expire");
                        stored.lost += 1;
                    }
                }
            }
        }
    }
    stored
}

/// The record written instead of an outcome the database refused.
fn unstorable(row: &Finish) -> Finish {
    Finish {
        id: row.id.clone(),
        token: row.token.clone(),
        status: JobStatus::Failed,
        outcome: AttemptOutcome::Failed,
        result: None,
        error: Some(JobError::new(
            JobErrorCode::Internal,
            "the worker could not store this attempt's outcome (details in the worker's log)",
        )),
        run_at: None,
        finished: true,
        ran_us: row.ran_us,
    }
}

/// One write, retried while the database is unavailable and `deadline` is ahead (waits
/// double from 50 ms up to 5 s, never past the deadline).
async fn retry<W>(rows: &[Finish], deadline: Instant, write: &W) -> CoreResult<Vec<String>>
where
    W: for<'a> Fn(&'a [Finish]) -> WriteFuture<'a> + Sync,
{
    let mut delay = Duration::from_millis(50);
    loop {
        match write(rows).await {
            Err(e @ CoreError::Unavailable(_)) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(e);
                }
                tracing::warn!(error = %e, "writing outcomes failed; retrying");
                tokio::time::sleep(delay.min(left)).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn row(id: &str) -> Finish {
        Finish {
            id: id.into(),
            token: "t".into(),
            status: JobStatus::Succeeded,
            outcome: AttemptOutcome::Succeeded,
            result: Some(serde_json::json!({})),
            error: None,
            run_at: None,
            finished: true,
            ran_us: None,
        }
    }

    #[tokio::test]
    async fn one_refused_row_does_not_hold_back_the_batch() {
        let seen = Mutex::new(Vec::<Finish>::new());
        let write = writer(|rows| {
            let refused = rows.iter().any(|r| r.id == "bad" && r.error.is_none());
            if !refused {
                seen.lock().unwrap().extend(rows.iter().cloned());
            }
            Box::pin(async move {
                if refused {
                    Err(CoreError::internal("refused"))
                } else {
                    Ok(rows.iter().map(|r| r.id.clone()).collect())
                }
            })
        });
        let batch = [row("a"), row("bad"), row("c")];
        let deadline = Instant::now() + Duration::from_secs(5);
        let stored = store(&batch, deadline, &write).await;
        assert_eq!((stored.written, stored.replaced, stored.lost), (2, 1, 0));
        let seen = seen.lock().unwrap();
        let bad = seen.iter().find(|r| r.id == "bad").unwrap();
        assert_eq!(
            (bad.status, bad.outcome),
            (JobStatus::Failed, AttemptOutcome::Failed)
        );
        assert_eq!(bad.error.as_ref().unwrap().code, "internal");
        assert!(seen.iter().any(|r| r.id == "a") && seen.iter().any(|r| r.id == "c"));
    }

    #[tokio::test]
    async fn an_outage_is_given_up_at_the_deadline() {
        let write = writer(|_| Box::pin(async { Err(CoreError::Unavailable("down".into())) }));
        let started = Instant::now();
        let stored = store(&[row("a")], started + Duration::from_millis(300), &write).await;
        assert_eq!(stored.lost, 1);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}
