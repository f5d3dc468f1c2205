//! What one event adds to `usage_daily`: a [`Delta`] per (org, UTC day, task kind), merged
//! per key before it is written, so a batch costs one upsert per row it touches.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;

use crate::CoreResult;
use crate::db::usage::add_usage;

/// The `task` of the org-wide row (the org's API requests). No task kind has an empty name
/// (`^[a-z][a-z0-9-]{0,63}$`), so it cannot collide with one.
pub const ORG_WIDE: &str = "";

/// Increments of one `usage_daily` row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    /// The org.
    pub org_id: String,
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    /// A task kind, or [`ORG_WIDE`].
    pub task: String,
    /// Jobs queued.
    pub jobs_submitted: i64,
    /// Jobs that ended `succeeded`.
    pub jobs_succeeded: i64,
    /// Jobs that ended `failed` (no attempt left).
    pub jobs_failed: i64,
    /// Milliseconds of attempts that ended.
    pub run_ms: i64,
    /// Authenticated API requests (org-wide row only).
    pub api_requests: i64,
}

impl Delta {
    /// A zero delta of row (`org_id`, `day`, `task`).
    pub fn new(org_id: &str, day: &str, task: &str) -> Delta {
        Delta {
            org_id: org_id.to_owned(),
            day: day.to_owned(),
            task: task.to_owned(),
            ..Delta::default()
        }
    }

    /// The row's key: (org, day, task).
    pub fn key(&self) -> (&str, &str, &str) {
        (&self.org_id, &self.day, &self.task)
    }

    /// True when it adds nothing.
    pub fn is_zero(&self) -> bool {
        [
            self.jobs_submitted,
            self.jobs_succeeded,
            self.jobs_failed,
            self.run_ms,
            self.api_requests,
        ]
        .iter()
        .all(|n| *n == 0)
    }

    fn add(&mut self, other: &Delta) {
        self.jobs_submitted += other.jobs_submitted;
        self.jobs_succeeded += other.jobs_succeeded;
        self.jobs_failed += other.jobs_failed;
        self.run_ms += other.run_ms;
        self.api_requests += other.api_requests;
    }
}

/// The UTC day of `at`, as stored (`YYYY-MM-DD`).
pub fn day_of(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

/// Merges deltas of the same key, in key order.
pub fn merge(deltas: impl IntoIterator<Item = Delta>) -> Vec<Delta> {
    let mut by_key: BTreeMap<(String, String, String), Delta> = BTreeMap::new();
    for d in deltas {
        let key = (d.org_id.clone(), d.day.clone(), d.task.clone());
        by_key.entry(key).and_modify(|e| e.add(&d)).or_insert(d);
    }
    by_key.into_values().collect()
}

/// Counts jobs submitted to `org_id` at `at`, one per task name given (a batch passes
/// every job's task), inside the submit's transaction: one upsert per task kind.
pub(crate) async fn record_submitted<'a, C: ConnectionTrait>(
    conn: &C,
    org_id: &str,
    at: DateTime<Utc>,
    tasks: impl IntoIterator<Item = &'a str>,
) -> CoreResult<()> {
    let mut per_task: BTreeMap<&str, i64> = BTreeMap::new();
    for task in tasks {
        *per_task.entry(task).or_insert(0) += 1;
    }
    let day = day_of(at);
    let deltas: Vec<Delta> = per_task
        .into_iter()
        .map(|(task, n)| Delta {
            jobs_submitted: n,
            ..Delta::new(org_id, &day, task)
        })
        .collect();
    add_usage(conn, &deltas).await
}

/// Counts jobs submitted at `at` to several orgs, one `(org, task)` per job (a grouped
/// submit): one upsert per (org, task kind) row touched.
pub(crate) async fn record_submitted_many<'a, C: ConnectionTrait>(
    conn: &C,
    at: DateTime<Utc>,
    jobs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> CoreResult<()> {
    let day = day_of(at);
    let deltas = merge(jobs.into_iter().map(|(org_id, task)| Delta {
        jobs_submitted: 1,
        ..Delta::new(org_id, &day, task)
    }));
    add_usage(conn, &deltas).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_adds_per_key_and_orders_keys() {
        let d = |org: &str, task: &str, n: i64| Delta {
            jobs_submitted: n,
            ..Delta::new(org, "2026-12-02", task)
        };
        let merged = merge([d("b", "echo", 1), d("a", "sleep", 2), d("a", "sleep", 3)]);
        assert_eq!(merged, vec![d("a", "sleep", 5), d("b", "echo", 1)]);
        assert!(Delta::new("a", "d", "t").is_zero());
    }

    #[test]
    fn the_day_is_utc() {
        let at = DateTime::parse_from_rfc3339("2026-12-31T23:30:00-02:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(day_of(at), "2027-01-01");
    }
}
