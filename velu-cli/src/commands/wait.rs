//! `job submit --wait`: follows a job until it ends, telling a person (a spinner on a
//! terminal) or a log (one line per change elsewhere) what happens, and how the job
//! ended as an exit status (`exit_codes::WAIT_EXIT_CODES`). It reads the job document
//! (`jobs.show`'s `job`), so it follows a local job and a remote one alike.

use std::io::Write;
use std::time::Duration;

use tokio::time::Instant;

use serde_json::Value;
use velu_core::jobs::{JobErrorCode, JobStatus};
use velu_core::{CoreError, CoreResult};

use crate::exit_codes::WaitEnd;

/// How long a job may sit queued (and due) before the wait asks whether a worker runs.
pub const NO_WORKER_WARNING: Duration = Duration::from_secs(10);

/// Longest wait on the event stream between two reads of the job document.
pub const CHANGE_BUDGET: Duration = Duration::from_secs(5);

/// What the wait reports on, and how.
pub struct Progress<'a> {
    /// Where progress goes (stderr).
    pub sink: &'a mut (dyn Write + Send),
    /// Draw a spinner (a terminal) rather than plain lines.
    pub spinner: bool,
}

/// What the wait reads of a job document.
struct Seen {
    id: String,
    task: String,
    status: JobStatus,
    attempts: i64,
    max_attempts: i64,
    error_code: Option<String>,
    due: bool,
}

impl Seen {
    fn of(doc: &Value) -> CoreResult<Seen> {
        let text = |name: &str| doc[name].as_str().unwrap_or_default().to_owned();
        let status = JobStatus::parse(doc["status"].as_str().unwrap_or_default())
            .ok_or_else(|| CoreError::internal(format!("not a job document: {doc}")))?;
        let due = doc["run_at"]
            .as_str()
            .and_then(|at| velu_core::time::parse("run_at", at).ok())
            .is_none_or(|at| at <= velu_core::time::now());
        Ok(Seen {
            id: text("id"),
            task: text("task"),
            status,
            attempts: doc["attempts"].as_i64().unwrap_or_default(),
            max_attempts: doc["max_attempts"].as_i64().unwrap_or_default(),
            error_code: doc["error"]["code"].as_str().map(str::to_owned),
            due,
        })
    }
}

/// Follows the job document `fetch` returns until the job ends or `timeout` passes;
/// returns its last document and how the wait ended. Between two reads of the document it
/// waits on `changed(budget)`: the job's event stream (a long poll of `jobs.events`),
/// which returns as soon as something happened to the job, or after `budget`.
pub async fn follow<F, Fut, C, CFut>(
    mut fetch: F,
    mut changed: C,
    timeout: Option<Duration>,
    progress: Progress<'_>,
) -> CoreResult<(Value, WaitEnd)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = CoreResult<Value>>,
    C: FnMut(Duration) -> CFut,
    CFut: Future<Output = CoreResult<()>>,
{
    let start = Instant::now();
    let spinner = progress.spinner.then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let sink = progress.sink;
    let mut last_line = String::new();
    let mut warned = false;
    loop {
        let doc = fetch().await?;
        let job = Seen::of(&doc)?;
        let elapsed = start.elapsed();
        let line = format!(
            "job {} ({}): {} (attempt {}/{})",
            job.id,
            job.task,
            job.status.as_str(),
            job.attempts,
            job.max_attempts
        );
        match &spinner {
            Some(bar) => bar.set_message(format!("{line} [{}]", seconds(elapsed))),
            None if line != last_line => {
                let _ = writeln!(sink, "[{}] {line}", seconds(elapsed));
            }
            None => {}
        }
        last_line = line;
        if job.status.is_terminal() {
            if let Some(bar) = &spinner {
                bar.finish_and_clear();
            }
            let status = job.status.as_str();
            let _ = writeln!(sink, "job {} {status} after {}", job.id, seconds(elapsed));
            return Ok((doc, ending(&job)));
        }
        if !warned && job.status == JobStatus::Queued && job.due && elapsed >= NO_WORKER_WARNING {
            warned = true;
            let warning = format!(
                "warning: no worker has claimed job {} after {}; is a worker running? \
                 (velu-cli worker)",
                job.id,
                seconds(elapsed)
            );
            match &spinner {
                Some(bar) => bar.suspend(|| {
                    let _ = writeln!(sink, "{warning}");
                }),
                None => {
                    let _ = writeln!(sink, "{warning}");
                }
            }
        }
        if timeout.is_some_and(|t| elapsed >= t) {
            if let Some(bar) = &spinner {
                bar.finish_and_clear();
            }
            let _ = writeln!(
                sink,
                "gave up waiting for job {} after {}; it is still {}",
                job.id,
                seconds(elapsed),
                job.status.as_str()
            );
            return Ok((doc, WaitEnd::WaitTimedOut));
        }
        // The event stream wakes the wait when something happens; the budget bounds it so
        // the warning and the timeout still come on time.
        changed(match timeout {
            Some(t) => CHANGE_BUDGET
                .min(t.saturating_sub(elapsed))
                .max(Duration::from_millis(10)),
            None => CHANGE_BUDGET,
        })
        .await?;
    }
}

/// How a job that ended maps to the wait's ending.
fn ending(job: &Seen) -> WaitEnd {
    match job.status {
        JobStatus::Succeeded => WaitEnd::Succeeded,
        JobStatus::Cancelled => WaitEnd::Cancelled,
        _ if job.error_code.as_deref() == Some(JobErrorCode::TimedOut.as_str()) => {
            WaitEnd::TimedOut
        }
        _ => WaitEnd::Failed,
    }
}

/// `1.2s`, `75s`.
fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}s", d.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;

    fn job(status: &str, error: Option<&str>) -> Value {
        json!({"id": "j1", "task": "echo", "status": status, "attempts": 1, "max_attempts": 3,
               "run_at": "2020-01-01T00:00:00Z", "error": error.map(|c| json!({"code": c}))})
    }

    /// An event stream with news every 250 ms (or less when the budget is shorter).
    async fn quiet_stream(budget: Duration) -> CoreResult<()> {
        tokio::time::sleep(budget.min(Duration::from_millis(250))).await;
        Ok(())
    }

    /// Follows a scripted sequence of states (the last one repeats), plain lines.
    async fn run(states: Vec<Value>, timeout: Option<Duration>) -> (WaitEnd, String) {
        let states = Mutex::new(states);
        let mut sink = Vec::new();
        let fetch = || {
            let mut s = states.lock().unwrap();
            let next = if s.len() > 1 {
                s.remove(0)
            } else {
                s[0].clone()
            };
            async move { Ok(next) }
        };
        let progress = Progress {
            sink: &mut sink,
            spinner: false,
        };
        let (_, end) = follow(fetch, quiet_stream, timeout, progress)
            .await
            .unwrap();
        (end, String::from_utf8(sink).unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn each_ending_has_its_own_exit_and_changes_print_once() {
        let (end, log) = run(
            vec![
                job("queued", None),
                job("queued", None),
                job("running", None),
                job("succeeded", None),
            ],
            None,
        )
        .await;
        assert_eq!(end, WaitEnd::Succeeded);
        assert_eq!(log.matches(": queued").count(), 1, "{log}");
        assert!(log.contains(": running (attempt 1/3)"), "{log}");
        assert!(log.contains("job j1 succeeded after"), "{log}");
        let failed = job("failed", Some("exit_status"));
        assert_eq!(run(vec![failed], None).await.0, WaitEnd::Failed);
        let timed_out = job("failed", Some("timed_out"));
        assert_eq!(run(vec![timed_out], None).await.0, WaitEnd::TimedOut);
        let cancelled = job("cancelled", Some("cancelled"));
        assert_eq!(run(vec![cancelled], None).await.0, WaitEnd::Cancelled);
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_nobody_claims_warns_then_the_wait_gives_up() {
        let (end, log) = run(vec![job("queued", None)], Some(Duration::from_secs(30))).await;
        assert_eq!(end, WaitEnd::WaitTimedOut);
        assert_eq!(log.matches("is a worker running?").count(), 1, "{log}");
        assert!(
            log.contains("gave up waiting for job j1 after 30s; it is still queued"),
            "{log}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_not_yet_due_draws_no_warning() {
        let mut later = job("queued", None);
        later["run_at"] = json!("2999-01-01T00:00:00Z");
        let (_, log) = run(vec![later], Some(Duration::from_secs(30))).await;
        assert!(!log.contains("is a worker running?"), "{log}");
    }

    #[tokio::test(start_paused = true)]
    async fn something_that_is_not_a_job_is_an_error_not_a_hang() {
        let mut sink = Vec::new();
        let progress = Progress {
            sink: &mut sink,
            spinner: false,
        };
        let fetch = || async { Ok(json!({"items": []})) };
        let err = follow(fetch, quiet_stream, None, progress)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "internal");
    }
}
