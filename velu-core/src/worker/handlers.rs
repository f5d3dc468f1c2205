//! Running one claimed job: the built-in kinds here, command kinds in [`super::command`].

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;

use super::Stop;
use super::contain::Containment;
use crate::Velu;
use crate::jobs::JobError;
use crate::jobs::queue::ClaimedJob;
use crate::tasks::{MAX_SLEEP_SECS, Runner};

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It worked; the result is a JSON object.
    Succeeded(Value),
    /// The handler failed.
    Failed(JobError),
    /// It ran past the kind's timeout and was stopped.
    TimedOut(JobError),
    /// A cancel was asked and the handler was stopped.
    Cancelled,
}

/// Waits until the job is told to stop.
pub(crate) async fn stopped(mut stop: watch::Receiver<Option<Stop>>) -> Stop {
    loop {
        if let Some(s) = *stop.borrow_and_update() {
            return s;
        }
        if stop.changed().await.is_err() {
            // The worker dropped the job's entry: treat as shutdown.
            return Stop::Shutdown;
        }
    }
}

/// Makes any handler output a JSON object: objects stay, other JSON is `{value: ...}`.
pub(crate) fn as_object(v: Value) -> Value {
    match v {
        Value::Object(_) => v,
        other => json!({ "value": other }),
    }
}

/// Runs `job` with its kind's handler and timeout, stopping early when told to.
pub async fn execute(
    velu: &Velu,
    job: &ClaimedJob,
    stop: watch::Receiver<Option<Stop>>,
    retention: Duration,
    contain: &Containment,
) -> Outcome {
    let Some(kind) = velu.tasks().get(&job.task) else {
        return Outcome::Failed(JobError::new(
            "unknown_task",
            format!("no task kind `{}` in this worker's catalog", job.task),
        ));
    };
    let timeout = kind.timeout;
    if let Runner::Command(spec) = &kind.runner {
        return super::command::run(velu, spec, kind, job, stop, retention, contain).await;
    }
    let work = async {
        match kind.runner {
            Runner::Echo => Outcome::Succeeded(as_object(job.payload.clone())),
            Runner::Fail => {
                let message = job.payload["message"]
                    .as_str()
                    .unwrap_or("failed as asked")
                    .to_owned();
                Outcome::Failed(JobError::new("task_failed", message))
            }
            Runner::Sleep => {
                let secs = job.payload["seconds"].as_f64().unwrap_or(1.0);
                if !(0.0..=MAX_SLEEP_SECS as f64).contains(&secs) {
                    return Outcome::Failed(JobError::new(
                        "task_failed",
                        format!("payload.seconds must be between 0 and {MAX_SLEEP_SECS}"),
                    ));
                }
                tokio::time::sleep(Duration::from_secs_f64(secs)).await;
                Outcome::Succeeded(json!({ "slept": secs }))
            }
            Runner::Command(_) => unreachable!("handled above"),
        }
    };
    tokio::select! {
        outcome = tokio::time::timeout(timeout, work) => outcome.unwrap_or_else(|_| {
            Outcome::TimedOut(JobError::new("timed_out", format!("ran longer than {} s", timeout.as_secs())))
        }),
        why = stopped(stop) => match why {
            Stop::Cancel => Outcome::Cancelled,
            // The caller writes nothing for these.
            Stop::LeaseLost | Stop::Shutdown => Outcome::Failed(JobError::new("interrupted", "stopped")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_objects() {
        assert_eq!(as_object(json!({"a": 1})), json!({"a": 1}));
        assert_eq!(as_object(json!([1, 2])), json!({"value": [1, 2]}));
        assert_eq!(as_object(json!("x")), json!({"value": "x"}));
    }
}
