//! Job events: each job's bounded stream of what happened to it (queued, claimed by which
//! worker, coalesced heartbeats, the progress lines it writes, retries, cancel, the end),
//! read a page at a time with `after=SEQ` ([`job_events`]) or followed ([`Follow`]): the
//! long poll and the server-sent events of `GET /v1/orgs/{org}/jobs/{job}/events`, and
//! `velu-cli job watch`. docs/events.md is the contract, the progress file included.
//!
//! Events are written by the transitions themselves, one `INSERT` inside the transaction
//! or statement that already makes each one (`db/events.rs`): submits and batches, the
//! schedule ticker, the claim, heartbeats (with the progress lines a worker tails from
//! the job's progress file), finishes, reclaims and releases, cancel and retry.
//!
//! Storage per job is bounded: once a job's stream holds [`MAX_EVENTS_PER_JOB`] events,
//! progress lines and heartbeats are dropped; the lifecycle events (queued, claimed,
//! retrying, cancel_requested, ended) are always kept, and there are at most a few per
//! attempt. So a stream keeps its beginning and its end.

mod documents;
mod kinds;
mod line;
mod progress;
mod read;

use std::time::Duration;

pub use documents::{JobEvent, JobEvents};
pub use kinds::{EventKind, QueuedVia};
pub use line::{MAX_LINE_BYTES, clean_line};
pub use progress::ProgressReport;
pub(crate) use progress::records as progress_records;
pub use read::{DEFAULT_PAGE, Follow, MAX_PAGE, MAX_WAIT, job_events};

/// Events a job's stream holds before progress lines and heartbeats are dropped.
pub const MAX_EVENTS_PER_JOB: i64 = 1_000;
/// Progress lines of one job in one heartbeat (a worker keeps the rest for later).
pub const MAX_LINES_PER_BEAT: usize = 64;
/// Progress lines in one heartbeat, all jobs together (bounded request bodies).
pub const MAX_LINES_PER_HEARTBEAT: usize = 512;
/// A heartbeat is recorded only when a job's stream has been quiet this long.
pub const HEARTBEAT_EVENT_EVERY: Duration = Duration::from_secs(60);
/// The environment variable that tells a command job where its progress file is.
pub const PROGRESS_FILE_ENV: &str = "VELU_PROGRESS_FILE";
/// The progress file's name inside the job's workspace.
pub const PROGRESS_FILE_NAME: &str = "progress";
