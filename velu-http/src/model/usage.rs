//! Usage reports.

use velu_core::usage;

use super::mirror::{each, mirror};

mirror! {
    /// An org's use of one task kind on one UTC day, or (`task: null`) its API requests
    /// that day.
    pub struct UsageRow from usage::UsageRow {
        /// `YYYY-MM-DD`, UTC.
        pub day: String,
        /// The org.
        pub org_id: String,
        /// The task kind; `null` on the org-wide row that carries `api_requests`.
        #[oai(nullable)]
        pub task: Option<String>,
        /// Jobs queued (submits, batches, schedules).
        pub jobs_submitted: i64,
        /// Jobs that ended `succeeded`.
        pub jobs_succeeded: i64,
        /// Jobs that ended `failed` for good (no attempt left).
        pub jobs_failed: i64,
        /// Seconds of attempts that ended that day, start to end, whatever their outcome
        /// (millisecond precision).
        pub run_seconds: f64,
        /// Authenticated API requests (org-wide row only; 0 on task rows).
        pub api_requests: i64,
    }
}

mirror! {
    /// The sums of a report's rows.
    pub struct UsageTotals from usage::UsageTotals {
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
}

mirror! {
    /// What an org (or every org) used over a range of UTC days: the figures a billing
    /// system invoices from.
    pub struct UsageReport from usage::UsageReport {
        /// The org reported on; `null` for the platform-wide report.
        #[oai(nullable)]
        pub org_id: Option<String>,
        /// First day, `YYYY-MM-DD`.
        pub from: String,
        /// Last day, `YYYY-MM-DD` (included).
        pub to: String,
        /// Sums over `items`.
        pub totals: UsageTotals,
        /// The rows, by day, org and task (the org-wide row first); days and kinds with
        /// nothing to count have none.
        pub items: Vec<UsageRow> = |v| each(v),
    }
}
