//! How a worker runs: its configuration and identity.

use std::time::Duration;

use crate::db::Backend;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Identifies this worker in leases and attempts.
    pub id: String,
    /// Handlers running at once.
    pub concurrency: usize,
    /// Most jobs claimed ahead of free handlers. Used only while recent jobs are short
    /// (under [`SHORT_JOB`] on average), so long jobs are never hoarded by one worker.
    pub prefetch: usize,
    /// Only these task kinds (`None`: every kind of the catalog).
    pub tasks: Option<Vec<String>>,
    /// Lease length; renewed every `heartbeat`.
    pub lease: Duration,
    /// Heartbeat period (also how often expired leases are reclaimed).
    pub heartbeat: Duration,
    /// Longest wait for new work without a wake-up notification.
    pub poll: Duration,
    /// At shutdown, how long running jobs may take before their leases are handed back.
    pub grace: Duration,
    /// How long a job's workspace is kept after it was last touched.
    pub workspace_retention: Duration,
    /// Stop once the queue has nothing ready and nothing runs (benches, tests, `--once`).
    pub exit_when_idle: bool,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            id: default_worker_id(),
            concurrency: 4,
            prefetch: 12,
            tasks: None,
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(10),
            poll: Duration::from_secs(2),
            grace: Duration::from_secs(10),
            workspace_retention: Duration::from_secs(24 * 3600),
            exit_when_idle: false,
        }
    }
}

/// How many jobs a worker of `concurrency` handlers claims ahead by default, working the
/// queue of `backend` (`None`: a server's, over the worker protocol): three per handler on
/// PostgreSQL, ten on SQLite and over the worker protocol.
///
/// * SQLite: a claim is a write transaction on the process's one writer, in line with
///   every finish, so fewer, bigger claims leave it more time: the burn-down ran 1.17x
///   with ten per handler against three, side by side, and more gained nothing.
/// * PostgreSQL: more than three hurt once the worker held more than the org's plan lets
///   run at once (docs/benchmarks-log.md, "Claims ahead by backend").
/// * The worker protocol: a claim is an HTTP round trip on top of the server's claim, and
///   the jobs in hand must last the handlers through it. With three per handler a remote
///   worker fell seconds behind 1,000 submits a second that a local one held; with ten
///   it held them (docs/benchmarks-log.md, "A remote worker's claims ahead").
///
/// A job claimed ahead is billed from when a handler takes it (`queue::Finish::ran_us`),
/// not from its claim.
pub fn default_prefetch(concurrency: usize, backend: Option<Backend>) -> usize {
    concurrency * per_handler(backend)
}

/// Jobs claimed ahead per handler by default (see [`default_prefetch`]).
fn per_handler(backend: Option<Backend>) -> usize {
    match backend {
        Some(Backend::Postgres) => 3,
        Some(Backend::Sqlite) | None => 10,
    }
}

/// Jobs shorter than this on average make claiming ahead worthwhile.
pub const SHORT_JOB: Duration = Duration::from_millis(50);

/// `host:pid:random`, unique per process run.
pub fn default_worker_id() -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "host".into());
    let suffix: u32 = rand::random();
    format!("{host}:{}:{suffix:08x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::default_prefetch;
    use crate::db::Backend;

    #[test]
    fn a_remote_worker_claims_as_far_ahead_as_sqlites_and_further_than_postgresqls() {
        // Over the worker protocol a claim costs an HTTP round trip more than a local
        // PostgreSQL worker's: the jobs in hand must last through it.
        assert_eq!(default_prefetch(10, None), 100);
        assert_eq!(default_prefetch(10, Some(Backend::Sqlite)), 100);
        assert_eq!(default_prefetch(10, Some(Backend::Postgres)), 30);
        assert_eq!(default_prefetch(1, None), 10);
        assert_eq!(default_prefetch(0, None), 0);
    }
}
