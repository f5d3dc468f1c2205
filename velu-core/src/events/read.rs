//! Reading a job's events: one page ([`job_events`], the parity operation `jobs.events`)
//! and following them ([`Follow`]: the long poll, server-sent events, `job watch`).

use std::time::Duration;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait};
use tokio::time::Instant;

use super::documents::{JobEvent, JobEvents};
use crate::entity::job_events;
use crate::jobs::JobStatus;
use crate::principal::Principal;
use crate::scopes::Scope;
use crate::tenancy::OrgRef;
use crate::{CoreError, CoreResult, Velu};

/// Events per page unless asked otherwise.
pub const DEFAULT_PAGE: u32 = 100;
/// Most events per page.
pub const MAX_PAGE: u32 = 500;
/// Longest wait of one long poll.
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// First pause of a follower between looks; doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// Longest pause of a follower between looks.
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// Reads the events of job `job` of `org` after `after` (`seq`; none: from the start),
/// at most `limit` ([`DEFAULT_PAGE`] unless given, 1..=[`MAX_PAGE`]), oldest first.
/// Needs `jobs:read`; another org's job is `not_found`, as a missing one.
pub async fn job_events(
    velu: &Velu,
    who: &Principal,
    org: &OrgRef,
    job: &str,
    after: Option<i64>,
    limit: Option<u32>,
) -> CoreResult<JobEvents> {
    let after = after.unwrap_or(0);
    if after < 0 {
        return Err(CoreError::invalid("after", "must be 0 or more"));
    }
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(CoreError::invalid(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        ));
    }
    // A transaction even to read: the tenancy entry sets the org for row-level security.
    let tx = velu.db().conn().begin().await?;
    let org = who.enter(&tx, org, Scope::JobsRead).await?;
    // The status first: if the job had ended, its last event was committed with it.
    let model = crate::jobs::find_job_row(&tx, org.id(), job).await?;
    let status = JobStatus::from_stored(&model.status)?;
    let mut rows = job_events::Entity::find()
        .filter(job_events::Column::JobId.eq(model.id.as_str()))
        .filter(job_events::Column::OrgId.eq(org.id()))
        .filter(job_events::Column::Seq.gt(after))
        .order_by_asc(job_events::Column::Seq)
        .limit(u64::from(limit) + 1)
        .all(&tx)
        .await?;
    tx.commit().await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let show_worker = who.org_id.is_none();
    let events = rows
        .into_iter()
        .map(|m| JobEvent::from_model(m, show_worker))
        .collect::<CoreResult<Vec<_>>>()?;
    Ok(JobEvents {
        job_id: model.id,
        next_after: events.last().map_or(after, |e| e.seq),
        ended: status.is_terminal() && !more,
        events,
    })
}

/// Follows a job's events: each [`Follow::next`] waits (looking again with backoff, up
/// to a deadline) until there are events after the last ones returned or the job ended.
#[derive(Debug, Clone)]
pub struct Follow {
    /// The `seq` to read after.
    pub after: i64,
    /// Page size.
    pub limit: Option<u32>,
}

impl Follow {
    /// A follower starting after `after`.
    pub fn new(after: Option<i64>, limit: Option<u32>) -> Follow {
        Follow {
            after: after.unwrap_or(0),
            limit,
        }
    }

    /// The next page: at once when there are events or the job ended, else after waiting
    /// for one until `deadline` (then an empty page). Moves the follower past what it
    /// returns.
    pub async fn next(
        &mut self,
        velu: &Velu,
        who: &Principal,
        org: &OrgRef,
        job: &str,
        deadline: Instant,
    ) -> CoreResult<JobEvents> {
        let mut pause = FIRST_PAUSE;
        loop {
            let page = job_events(velu, who, org, job, Some(self.after), self.limit).await?;
            self.after = page.next_after;
            let left = deadline.saturating_duration_since(Instant::now());
            if !page.events.is_empty() || page.ended || left.is_zero() {
                return Ok(page);
            }
            tokio::time::sleep(pause.min(left)).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }
}
