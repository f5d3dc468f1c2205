//! `job watch`: follows a job's events (`jobs.events`, a long poll) and prints each one as
//! it happens (one YAML document per event, `---` first; one JSON line with `-o json`),
//! then exits when the job ends with the exit status of `job submit --wait`
//! (`exit_codes::WAIT_EXIT_CODES`). The same loop reads local pages and remote ones.

use std::io::Write;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;
use velu_core::events::EventKind;
use velu_core::jobs::{JobErrorCode, JobStatus};
use velu_core::{CoreError, CoreResult};

use crate::context::Global;
use crate::exit_codes::WaitEnd;
use crate::output::Format;

/// How long one look waits for an event (the server's long poll).
pub const SLICE: Duration = Duration::from_secs(25);

/// How a job's `ended` event maps to an ending of the wait.
pub fn ending(event: &Value) -> Option<WaitEnd> {
    if event["kind"].as_str() != Some(EventKind::Ended.as_str()) {
        return None;
    }
    let status = JobStatus::parse(event["status"].as_str().unwrap_or_default())?;
    Some(match status {
        JobStatus::Succeeded => WaitEnd::Succeeded,
        JobStatus::Cancelled => WaitEnd::Cancelled,
        _ if event["error_code"].as_str() == Some(JobErrorCode::TimedOut.as_str()) => {
            WaitEnd::TimedOut
        }
        _ => WaitEnd::Failed,
    })
}

/// One event as `job watch` prints it.
pub fn render_event(g: &Global, event: &Value) -> CoreResult<String> {
    Ok(match g.output {
        Format::Json => format!(
            "{}\n",
            serde_json::to_string(event).map_err(CoreError::internal)?
        ),
        _ => format!("---\n{}", g.render(event)?),
    })
}

/// Follows pages from `page(after, wait)` (a `jobs.events` document), writing each event
/// to `out` as it comes, until the job ends or `timeout` passes; records the ending's exit
/// status on `g`. Returns nothing more to print.
pub async fn watch<F, Fut>(
    g: &Global,
    out: &mut (dyn Write + Send),
    after: Option<i64>,
    timeout: Option<Duration>,
    mut page: F,
) -> CoreResult<String>
where
    F: FnMut(i64, Duration) -> Fut,
    Fut: Future<Output = CoreResult<Value>>,
{
    let start = Instant::now();
    let mut after = after.unwrap_or(0);
    let mut end = None;
    loop {
        let left = timeout.map(|t| t.saturating_sub(start.elapsed()));
        let wait = left.map_or(SLICE, |l| l.min(SLICE));
        let doc = page(after, wait).await?;
        let events = doc["events"].as_array().cloned().unwrap_or_default();
        for event in &events {
            out.write_all(render_event(g, event)?.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| CoreError::internal(format!("cannot write output: {e}")))?;
            end = ending(event).or(end);
        }
        after = doc["next_after"].as_i64().unwrap_or(after);
        if doc["ended"].as_bool() == Some(true) {
            // A stream read from its middle may not hold the end: the job says it ended.
            let end = end.unwrap_or(WaitEnd::Failed);
            if end != WaitEnd::Succeeded {
                g.end_after_output(end.exit_code(), String::new());
            }
            return Ok(String::new());
        }
        if left.is_some_and(|l| l.is_zero()) {
            g.end_after_output(
                WaitEnd::WaitTimedOut.exit_code(),
                "gave up watching: the job has not ended\n".to_owned(),
            );
            return Ok(String::new());
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn endings_follow_the_end_event() {
        let ended = |status: &str, code: Option<&str>| json!({"kind": "ended", "status": status, "error_code": code});
        assert_eq!(ending(&ended("succeeded", None)), Some(WaitEnd::Succeeded));
        assert_eq!(
            ending(&ended("failed", Some("exit_status"))),
            Some(WaitEnd::Failed)
        );
        assert_eq!(
            ending(&ended("failed", Some("timed_out"))),
            Some(WaitEnd::TimedOut)
        );
        assert_eq!(
            ending(&ended("cancelled", Some("cancelled"))),
            Some(WaitEnd::Cancelled)
        );
        assert_eq!(ending(&json!({"kind": "progress", "line": "x"})), None);
    }
}
