//! `worker.finish`: how attempts ended, fenced by lease token, with the retry policy
//! applied here (the job's next status is never the worker's word).

use std::collections::HashSet;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use serde_json::Value;

use super::MAX_RESULTS;
use super::served::{self, Served, bounded_text, served};
use super::wire::{AttemptResult, FinishInput, FinishList, FinishState, Finished};
use crate::entity::jobs;
use crate::jobs::{AttemptOutcome, JobError, JobErrorCode, JobStatus};
use crate::principal::Principal;
use crate::queue::{self, ClaimedJob, Finish};
use crate::time::now;
use crate::worker::Outcome;
use crate::worker::outcome::as_object;
use crate::worker::retry::decide;
use crate::{CoreError, CoreResult, Velu};

/// Longest error message a worker may report, in bytes.
const MAX_MESSAGE: usize = 64 * 1024;

/// What the server knows of a job a result names: (id, org, task, attempts, max
/// attempts, cancel asked, token).
type Row = (String, String, String, i32, i32, bool, Option<String>);

/// Records how attempts ended, each only while its token still owns the job (and, for an
/// org key, the job is its org's): the answer says `accepted` or `lease_lost` per result,
/// in order; a refused result writes nothing. Failures with attempts left go back to the
/// queue after the kind's backoff. Malformed results (an unknown outcome, a `cancelled`
/// no cancel asked for, a job named twice) refuse the whole request (`invalid`). Scope:
/// `jobs:work`.
pub async fn worker_finish(
    velu: &Velu,
    who: &Principal,
    input: &FinishInput,
) -> CoreResult<FinishList> {
    let served = served(velu, who).await?;
    let results = &input.results;
    if results.is_empty() || results.len() > MAX_RESULTS {
        return Err(CoreError::invalid(
            "results",
            format!("give 1 to {MAX_RESULTS} results"),
        ));
    }
    let mut seen = HashSet::with_capacity(results.len());
    for (i, r) in results.iter().enumerate() {
        bounded_text(&format!("results[{i}].id"), &r.id, 64)?;
        served::tokens(std::slice::from_ref(&r.token))?;
        if !seen.insert(r.id.as_str()) {
            return Err(CoreError::invalid(
                format!("results[{i}].id"),
                format!("job `{}` is named twice", r.id),
            ));
        }
    }
    let rows = owned_rows(velu, &served, results).await?;
    let mut finishes = Vec::with_capacity(results.len());
    for (i, r) in results.iter().enumerate() {
        // Checked whether or not the token still owns the job: a malformed result is the
        // worker's bug, whatever became of the lease.
        let outcome = outcome_of(i, r)?;
        let Some(row) = rows
            .iter()
            .find(|row| row.0 == r.id && row.6.as_deref() == Some(r.token.as_str()))
        else {
            continue;
        };
        if matches!(outcome, Outcome::Cancelled) && !row.5 {
            return Err(CoreError::invalid(
                format!("results[{i}].outcome"),
                "`cancelled` only after a heartbeat answered cancel_requested",
            ));
        }
        let job = ClaimedJob {
            id: row.0.clone(),
            org_id: row.1.clone(),
            task: row.2.clone(),
            payload: Value::Null,
            attempt: row.3,
            max_attempts: row.4,
            token: r.token.clone(),
        };
        finishes.push(Finish {
            ran_us: trusted_run(&served, r.ran_us),
            ..decide(velu.tasks(), &job, outcome)
        });
    }
    let written: HashSet<String> = queue::finish(velu.db(), &finishes, now())
        .await?
        .into_iter()
        .collect();
    Ok(FinishList {
        items: results
            .iter()
            .map(|r| Finished {
                id: r.id.clone(),
                state: if written.contains(&r.id) {
                    FinishState::Accepted
                } else {
                    FinishState::LeaseLost
                },
            })
            .collect(),
    })
}

/// The handler's run as a worker reports it, where its word may set the attempt's start
/// and so the run time its org is billed (docs/usage.md): a platform key's workers are
/// the platform's own. An org key's worker runs its own org's jobs, so its word would set
/// its own bill: its attempts run from their claim, whatever it reports.
fn trusted_run(served: &Served, ran_us: Option<u64>) -> Option<u64> {
    match served {
        Served::All => ran_us,
        Served::Org { .. } => None,
    }
}

/// The running jobs the results' tokens still own, among those `served` may touch.
async fn owned_rows(
    velu: &Velu,
    served: &Served,
    results: &[AttemptResult],
) -> CoreResult<Vec<Row>> {
    let mut query = jobs::Entity::find()
        .select_only()
        .columns([
            jobs::Column::Id,
            jobs::Column::OrgId,
            jobs::Column::Task,
            jobs::Column::Attempts,
            jobs::Column::MaxAttempts,
            jobs::Column::CancelRequested,
            jobs::Column::LeaseToken,
        ])
        .filter(jobs::Column::Status.eq(JobStatus::Running.as_str()))
        .filter(jobs::Column::LeaseToken.is_in(results.iter().map(|r| r.token.as_str())));
    if let Some(org) = served.org_id() {
        query = query.filter(jobs::Column::OrgId.eq(org));
    }
    // The worker side of the queue (an org key's own org filter above).
    let tx = velu
        .db()
        .cross_org_read_tx(crate::db::CrossOrg::Queue)
        .await?;
    let rows = query.into_tuple().all(&tx).await?;
    tx.commit().await?;
    Ok(rows)
}

/// The handler outcome a result reports, checked.
fn outcome_of(i: usize, r: &AttemptResult) -> CoreResult<Outcome> {
    let field = |name: &str| format!("results[{i}].{name}");
    let outcome = AttemptOutcome::parse(&r.outcome)
        .filter(|o| *o != AttemptOutcome::Lost)
        .ok_or_else(|| {
            CoreError::invalid(
                field("outcome"),
                "must be succeeded, failed, timed_out or cancelled",
            )
        })?;
    if outcome != AttemptOutcome::Succeeded && r.result.is_some() {
        return Err(CoreError::invalid(
            field("result"),
            "only a succeeded attempt has a result",
        ));
    }
    if let Some(e) = &r.error {
        if outcome == AttemptOutcome::Succeeded {
            return Err(CoreError::invalid(
                field("error"),
                "a succeeded attempt has no error",
            ));
        }
        bounded_text(&field("error.code"), &e.code, 64)?;
        if e.message.len() > MAX_MESSAGE {
            return Err(CoreError::invalid(
                field("error.message"),
                format!("must be at most {MAX_MESSAGE} bytes"),
            ));
        }
    }
    let error = |code: JobErrorCode, message: &str| {
        r.error
            .clone()
            .unwrap_or_else(|| JobError::new(code, message))
    };
    Ok(match outcome {
        AttemptOutcome::Succeeded => Outcome::Succeeded(as_object(
            r.result
                .clone()
                .unwrap_or_else(|| Value::Object(Default::default())),
        )),
        AttemptOutcome::Failed => Outcome::Failed(error(JobErrorCode::TaskFailed, "failed")),
        AttemptOutcome::TimedOut => {
            Outcome::TimedOut(error(JobErrorCode::TimedOut, "ran past its timeout"))
        }
        AttemptOutcome::Cancelled | AttemptOutcome::Lost => Outcome::Cancelled,
    })
}
