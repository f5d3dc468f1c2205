//! History retention: an org's retention state, a run's body and report.

use poem_openapi::Object;
use velu_core::jobs::retention;

use super::common::ts;
use super::mirror::{each, mirror};
use super::plans::PlanName;

mirror! {
    /// An org's history retention: what its plan keeps and how much is due for removal.
    pub struct RetentionState from retention::RetentionState {
        /// The org.
        pub org_id: String,
        /// Its plan now.
        pub plan: PlanName,
        /// Days its plan keeps a finished job.
        pub history_days: u32,
        /// Finished jobs that ended before this time (RFC 3339 UTC) are due for removal.
        pub cutoff: String = |t| ts(t),
        /// Finished jobs due now, counted up to 10000.
        pub due_jobs: u64,
        /// True when more than 10000 are due (`due_jobs` is the cap).
        pub due_jobs_capped: bool,
        /// The org's keys revoked, or expired, before the cutoff: removed by the next run.
        /// Counted up to 10000.
        pub due_keys: u64,
        /// True when more than 10000 keys are due (`due_keys` is the cap).
        pub due_keys_capped: bool,
    }
}

mirror! {
    /// What one org's part of a retention run removed.
    pub struct OrgRetention from retention::OrgRetention {
        /// The org.
        pub org_id: String,
        /// Its plan when the run reached it.
        pub plan: PlanName,
        /// Days its plan keeps a finished job.
        pub history_days: u32,
        /// Jobs that ended before this time (RFC 3339 UTC) were removed.
        pub cutoff: String = |t| ts(t),
        /// Jobs removed, with their attempts and events.
        pub removed: u64,
        /// Keys removed: revoked, or expired, before the cutoff.
        pub keys_removed: u64,
    }
}

mirror! {
    /// What a retention run removed.
    pub struct RetentionReport from retention::RetentionReport {
        /// Jobs removed in all.
        pub removed: u64,
        /// Keys removed in all.
        pub keys_removed: u64,
        /// Orgs where jobs or keys were removed, by id.
        pub orgs: Vec<OrgRetention> = |v| each(v),
        /// True when the run stopped before its end (at its `max_jobs` with jobs still
        /// due, with 1000 keys removed in an org, or after 1000 orgs): run it again, from
        /// `next_org`.
        pub more: bool,
        /// Where a run without an org stopped: the org id to send as `from_org` next;
        /// null when it reached the last org, or ran for one org.
        #[oai(nullable)]
        pub next_org: Option<String>,
    }
}

/// Body of a retention run (optional).
#[derive(Debug, Default, Object)]
#[oai(deny_unknown_fields)]
pub struct RetentionRunBody {
    /// Org id or slug; none means every org.
    #[oai(nullable, validator(max_length = 200))]
    pub org: Option<String>,
    /// Most jobs this run removes, 1 to 10000000 (default 100000).
    #[oai(nullable, validator(minimum(value = "1"), maximum(value = "10000000")))]
    pub max_jobs: Option<u64>,
    /// Without `org` only (with it: 400 `invalid`): the org id to start at, the
    /// `next_org` of the run before (a run visits at most 1000 orgs).
    #[oai(nullable, validator(max_length = 64))]
    pub from_org: Option<String>,
}

impl From<RetentionRunBody> for retention::RetentionRun {
    fn from(b: RetentionRunBody) -> Self {
        retention::RetentionRun {
            org: b.org,
            max_jobs: b.max_jobs,
            from_org: b.from_org,
        }
    }
}
