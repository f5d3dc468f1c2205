//! The usage report every front end prints, and what a caller asks for.

use serde::Serialize;

use super::delta::ORG_WIDE;
use crate::tenancy::OrgRef;

/// What `usage` is asked: one org (by id or slug), or every org the caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageQuery {
    /// The org; `None` means every org for a platform principal, its own for an org key.
    pub org: Option<OrgRef>,
    /// First UTC day, `YYYY-MM-DD`.
    pub from: String,
    /// Last UTC day, `YYYY-MM-DD` (included).
    pub to: String,
}

/// One row of a report: an org's use of one task kind on one UTC day, or (`task: null`)
/// its API requests that day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageRow {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    /// The org.
    pub org_id: String,
    /// The task kind; `null` on the org-wide row that carries `api_requests`.
    pub task: Option<String>,
    /// Jobs queued (submits, batches, schedules).
    pub jobs_submitted: i64,
    /// Jobs that ended `succeeded`.
    pub jobs_succeeded: i64,
    /// Jobs that ended `failed` for good (no attempt left).
    pub jobs_failed: i64,
    /// Seconds of attempts that ended that day, from each attempt's start to its end
    /// (millisecond precision), whatever their outcome.
    pub run_seconds: f64,
    /// Authenticated API requests (org-wide row only; 0 on task rows).
    pub api_requests: i64,
}

/// The sums of a report's rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UsageTotals {
    /// Jobs queued.
    pub jobs_submitted: i64,
    /// Jobs that succeeded.
    pub jobs_succeeded: i64,
    /// Jobs that failed for good.
    pub jobs_failed: i64,
    /// Seconds of attempts.
    pub run_seconds: f64,
    /// API requests.
    pub api_requests: i64,
}

/// What `usage` prints: the range, the totals and the rows (by day, org, task; days and
/// kinds with nothing to count have no row).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageReport {
    /// The org reported on; `null` for the platform-wide report.
    pub org_id: Option<String>,
    /// First day, `YYYY-MM-DD`.
    pub from: String,
    /// Last day, `YYYY-MM-DD` (included).
    pub to: String,
    /// Sums over `items`.
    pub totals: UsageTotals,
    /// The rows.
    pub items: Vec<UsageRow>,
}

/// Milliseconds as seconds.
fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

impl UsageReport {
    /// The report of `rows` (already in order).
    pub(crate) fn of(
        org_id: Option<String>,
        from: String,
        to: String,
        rows: Vec<super::read::UsageSums>,
    ) -> UsageReport {
        let mut run_ms = 0i64;
        let mut totals = UsageTotals::default();
        let items = rows
            .into_iter()
            .map(|m| {
                totals.jobs_submitted += m.jobs_submitted;
                totals.jobs_succeeded += m.jobs_succeeded;
                totals.jobs_failed += m.jobs_failed;
                totals.api_requests += m.api_requests;
                run_ms += m.run_ms;
                UsageRow {
                    day: m.day,
                    org_id: m.org_id,
                    task: (m.task != ORG_WIDE).then_some(m.task),
                    jobs_submitted: m.jobs_submitted,
                    jobs_succeeded: m.jobs_succeeded,
                    jobs_failed: m.jobs_failed,
                    run_seconds: seconds(m.run_ms),
                    api_requests: m.api_requests,
                }
            })
            .collect();
        totals.run_seconds = seconds(run_ms);
        UsageReport {
            org_id,
            from,
            to,
            totals,
            items,
        }
    }
}
