//! What this process's workers do: attempts by task and outcome, run time by task, claim
//! latency, running jobs and live workers.
//!
//! These families are per process ([`worker`]), not per `Velu` handle: a remote worker
//! runs without one. Every [`super::Metrics`] registers them, so whichever registry a
//! process serves (`serve`, `worker --metrics-addr`) shows them.

use std::collections::BTreeSet;
use std::sync::{LazyLock, RwLock};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::labels::OTHER;
use crate::jobs::AttemptOutcome;
use crate::worker::{Outcome, Stop};

/// Upper bounds of the run time buckets, in seconds (jobs run from milliseconds to hours).
const RUN_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0,
];
/// Upper bounds of the claim latency buckets, in seconds.
const CLAIM_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct AttemptLabels {
    task: String,
    outcome: AttemptOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TaskLabels {
    task: String,
}

/// The worker families of this process.
static WORKER: LazyLock<WorkerMetrics> = LazyLock::new(WorkerMetrics::new);

/// The worker families of this process.
pub fn worker() -> &'static WorkerMetrics {
    &WORKER
}

/// The worker families.
pub struct WorkerMetrics {
    /// The kinds of the tasks files of the workers started here: the values the `task`
    /// label may take.
    kinds: RwLock<BTreeSet<String>>,
    attempts: Family<AttemptLabels, Counter>,
    run: Family<TaskLabels, Histogram, fn() -> Histogram>,
    claim: Histogram,
    running: Gauge,
    live: Gauge,
}

fn run_histogram() -> Histogram {
    Histogram::new(RUN_BUCKETS)
}

impl WorkerMetrics {
    fn new() -> WorkerMetrics {
        WorkerMetrics {
            kinds: RwLock::new(BTreeSet::new()),
            attempts: Family::default(),
            run: Family::<_, _, fn() -> Histogram>::new_with_constructor(run_histogram),
            claim: Histogram::new(CLAIM_BUCKETS),
            running: Gauge::default(),
            live: Gauge::default(),
        }
    }

    /// Adds the families to `registry` (they stay shared: the registry holds handles).
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "worker_attempts",
            "Job attempts this process's workers ended, by task kind and attempt outcome",
            self.attempts.clone(),
        );
        registry.register_with_unit(
            "worker_run_duration",
            "Run time of job attempts (the handler, from start to end), by task kind",
            Unit::Seconds,
            self.run.clone(),
        );
        registry.register_with_unit(
            "worker_claim_duration",
            "Time one claim takes, as the worker sees it (long polls of an idle remote \
             worker are not counted)",
            Unit::Seconds,
            self.claim.clone(),
        );
        registry.register(
            "worker_running_jobs",
            "Jobs this process's workers hold and have not finished",
            self.running.clone(),
        );
        registry.register(
            "worker_live",
            "Workers running in this process (the sum over processes is the live workers)",
            self.live.clone(),
        );
    }

    /// A worker serving the kinds `kinds` starts: they become values of the `task` label,
    /// and it counts as live until the guard is dropped.
    pub fn worker_started<'a>(&self, kinds: impl IntoIterator<Item = &'a str>) -> LiveGuard {
        let mut known = self.kinds.write().unwrap_or_else(|p| p.into_inner());
        known.extend(kinds.into_iter().map(str::to_owned));
        drop(known);
        self.live.inc();
        LiveGuard(self.live.clone())
    }

    /// The `task` label of `kind`: itself when the tasks file has it, else [`OTHER`].
    fn task_label(&self, kind: &str) -> String {
        let known = self.kinds.read().unwrap_or_else(|p| p.into_inner());
        if known.contains(kind) {
            kind.to_owned()
        } else {
            OTHER.to_owned()
        }
    }

    /// Times a claim until the timer is dropped. A claim allowed to wait for work
    /// (`wait` above zero: a remote worker's long poll) is not recorded: its time is
    /// idleness, not latency.
    pub fn claim_timer(&self, wait: Duration) -> ClaimTimer {
        ClaimTimer {
            started: Instant::now(),
            histogram: wait.is_zero().then(|| self.claim.clone()),
        }
    }

    /// Counts a running job until the guard is dropped.
    pub fn job_running(&self) -> RunningGuard {
        self.running.inc();
        RunningGuard(self.running.clone())
    }

    /// Records the end of one attempt of a `task` job whose handler ran for `took`: its
    /// outcome is the handler's, unless the worker stopped it for a lost lease or for
    /// shutdown (then the attempt is `lost`: the lease is gone or handed back).
    pub fn attempt_ended(
        &self,
        task: &str,
        stopped: Option<Stop>,
        outcome: &Outcome,
        took: Duration,
    ) {
        let outcome = match (stopped, outcome) {
            (Some(Stop::LeaseLost | Stop::Shutdown), _) => AttemptOutcome::Lost,
            (_, Outcome::Succeeded(_)) => AttemptOutcome::Succeeded,
            (_, Outcome::Failed(_)) => AttemptOutcome::Failed,
            (_, Outcome::TimedOut(_)) => AttemptOutcome::TimedOut,
            (_, Outcome::Cancelled) => AttemptOutcome::Cancelled,
        };
        let task = self.task_label(task);
        self.run
            .get_or_create(&TaskLabels { task: task.clone() })
            .observe(took.as_secs_f64());
        self.attempts
            .get_or_create(&AttemptLabels { task, outcome })
            .inc();
    }

    /// Attempts of `task` (a label value) that ended with `outcome` (tests and
    /// diagnostics).
    pub fn attempts(&self, task: &str, outcome: AttemptOutcome) -> u64 {
        self.attempts
            .get(&AttemptLabels {
                task: task.to_owned(),
                outcome,
            })
            .map_or(0, |c| c.get())
    }
}

/// Records a claim's time when dropped.
#[must_use = "the claim is timed until the timer is dropped"]
pub struct ClaimTimer {
    started: Instant,
    histogram: Option<Histogram>,
}

impl Drop for ClaimTimer {
    fn drop(&mut self) {
        if let Some(h) = &self.histogram {
            h.observe(self.started.elapsed().as_secs_f64());
        }
    }
}

/// Holds one count of the running-jobs gauge.
#[must_use = "the job counts as running only while the guard lives"]
pub struct RunningGuard(Gauge);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Holds one count of the live-workers gauge.
#[must_use = "the worker counts as live only while the guard lives"]
pub struct LiveGuard(Gauge);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(m: &WorkerMetrics) -> String {
        let mut registry = Registry::default();
        m.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        text
    }

    #[test]
    fn unknown_kinds_share_the_other_label() {
        let m = WorkerMetrics::new();
        let _live = m.worker_started(["echo"]);
        let ok = Outcome::Succeeded(serde_json::json!({}));
        for i in 0..50 {
            m.attempt_ended(&format!("k{i}"), None, &ok, Duration::from_millis(1));
        }
        m.attempt_ended("echo", Some(Stop::LeaseLost), &ok, Duration::from_millis(1));
        assert_eq!(m.attempts(OTHER, AttemptOutcome::Succeeded), 50);
        assert_eq!(m.attempts("echo", AttemptOutcome::Lost), 1);
        let text = encoded(&m);
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("worker_attempts_total"))
                .count(),
            2
        );
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("worker_run_duration_seconds_count"))
                .count(),
            2
        );
    }

    #[test]
    fn guards_count_while_they_live() {
        let m = WorkerMetrics::new();
        let a = m.job_running();
        let b = m.job_running();
        let w = m.worker_started([]);
        assert_eq!((m.running.get(), m.live.get()), (2, 1));
        drop((a, w));
        assert_eq!((m.running.get(), m.live.get()), (1, 0));
        drop(b);
        assert_eq!(m.running.get(), 0);
    }

    #[test]
    fn long_polls_are_not_claim_latency() {
        let m = WorkerMetrics::new();
        drop(m.claim_timer(Duration::ZERO));
        drop(m.claim_timer(Duration::from_secs(1)));
        assert!(
            encoded(&m).contains("worker_claim_duration_seconds_count 1\n"),
            "{}",
            encoded(&m)
        );
    }
}
