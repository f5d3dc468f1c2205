//! Queue depth: unfinished jobs by status and plan, counted at scrape time by one grouped
//! query (`queue::depth`) and cached for a second, so scrapes cannot become a load.

use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::db::Db;
use crate::jobs::JobStatus;
use crate::plans::Plan;
use crate::queue::{DEPTH_STATUSES, depth};

/// How long a count is served before the next scrape queries again.
pub const DEPTH_TTL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DepthLabels {
    status: JobStatus,
    plan: Plan,
}

/// The queue depth gauges and when they were last counted.
pub struct QueueDepth {
    jobs: Family<DepthLabels, Gauge>,
    /// When the last count ran; the lock also makes concurrent scrapes share one query.
    counted: tokio::sync::Mutex<Option<Instant>>,
}

impl QueueDepth {
    pub(super) fn register(registry: &mut Registry) -> QueueDepth {
        let jobs = Family::<DepthLabels, Gauge>::default();
        registry.register(
            "queue_jobs",
            "Unfinished jobs by status (queued, running) and org plan, counted at scrape time",
            jobs.clone(),
        );
        QueueDepth {
            jobs,
            counted: tokio::sync::Mutex::new(None),
        }
    }

    /// Counts again unless the last count is under [`DEPTH_TTL`] old. Every (status,
    /// plan) pair gets a value, zero included. When the count fails (the database is
    /// down), the series are removed rather than left stale, and the failure is logged;
    /// the rest of the scrape still answers.
    pub async fn refresh(&self, db: &Db) {
        let mut counted = self.counted.lock().await;
        if counted.is_some_and(|at| at.elapsed() < DEPTH_TTL) {
            return;
        }
        match depth(db).await {
            Ok(rows) => {
                for status in DEPTH_STATUSES {
                    for plan in Plan::ALL {
                        let n = rows
                            .iter()
                            .find(|(s, p, _)| *s == status && *p == plan)
                            .map_or(0, |(_, _, n)| *n);
                        self.jobs
                            .get_or_create(&DepthLabels { status, plan })
                            .set(i64::try_from(n).unwrap_or(i64::MAX));
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot count the queue for metrics");
                self.jobs.clear();
            }
        }
        *counted = Some(Instant::now());
    }
}
