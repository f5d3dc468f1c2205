//! Running one claimed job: the built-in kinds here, command kinds in `command.rs`.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;

use super::command;
use super::contain::Containment;
use super::outcome::{Outcome, as_object};
use super::stop::{Stop, stopped};
use crate::jobs::{JobError, JobErrorCode};
use crate::queue::ClaimedJob;
use crate::secrets::SecretEnv;
use crate::tasks::{MAX_SLEEP_SECS, Runner, TaskCatalog};

/// Runs `job` with its kind's handler (from `tasks`; command kinds in a workspace under
/// `workspaces`, with `secrets` in their environment) and timeout, stopping early when
/// told to.
pub async fn execute(
    tasks: &TaskCatalog,
    workspaces: &Path,
    job: &ClaimedJob,
    stop: watch::Receiver<Option<Stop>>,
    retention: Duration,
    contain: &Containment,
    secrets: &SecretEnv,
) -> Outcome {
    let Some(kind) = tasks.get(&job.task) else {
        return Outcome::Failed(JobError::new(
            JobErrorCode::UnknownTask,
            format!("no task kind `{}` in this worker's catalog", job.task),
        ));
    };
    let timeout = kind.timeout;
    if let Runner::Command(spec) = &kind.runner {
        return command::run(
            workspaces, spec, kind, job, stop, retention, contain, secrets,
        )
        .await;
    }
    let work = async {
        match kind.runner {
            Runner::Echo => Outcome::Succeeded(as_object(job.payload.clone())),
            Runner::Fail => {
                let message = job.payload["message"]
                    .as_str()
                    .unwrap_or("failed as asked")
                    .to_owned();
                Outcome::Failed(JobError::new(JobErrorCode::TaskFailed, message))
            }
            Runner::Sleep => {
                let secs = job.payload["seconds"].as_f64().unwrap_or(1.0);
                if !(0.0..=MAX_SLEEP_SECS as f64).contains(&secs) {
                    return Outcome::Failed(JobError::new(
                        JobErrorCode::TaskFailed,
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
            Outcome::TimedOut(JobError::new(JobErrorCode::TimedOut, format!("ran longer than {} s", timeout.as_secs())))
        }),
        why = stopped(stop) => match why {
            Stop::Cancel => Outcome::Cancelled,
            // The caller writes nothing for these.
            Stop::LeaseLost | Stop::Shutdown => Outcome::Failed(JobError::new(JobErrorCode::Interrupted, "stopped")),
        },
    }
}
