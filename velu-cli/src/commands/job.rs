//! `velu-cli job ...`

use std::path::Path;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::Value;
use velu_core::jobs::{self, JobFilter, SubmitJob};
use velu_core::orgs::OrgRef;
use velu_core::{CoreError, CoreResult, Principal, Velu};

use super::PageArgs;
use crate::context::Global;
use crate::values::{StatusArg, offer};

/// Jobs.
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Submit a job (as the operator: actor_type cli, your OS user).
    Submit(SubmitArgs),
    /// Submit many jobs from a file: a JSON array of {task, payload, ...} objects, or one
    /// object per line.
    SubmitBatch {
        /// Org id or slug.
        #[arg(long)]
        org: String,
        /// The file (`-` for stdin).
        #[arg(long)]
        file: String,
    },
    /// List jobs, newest first.
    List {
        /// Org id or slug.
        #[arg(long)]
        org: String,
        /// Only jobs with this status.
        #[arg(long, value_parser = offer::<StatusArg>())]
        status: Option<String>,
        /// Only this task kind.
        #[arg(long)]
        task: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show a job with its attempts.
    Show {
        /// Job id.
        job: String,
        /// Org id or slug.
        #[arg(long)]
        org: String,
    },
    /// Cancel a job (a running one stops within a heartbeat).
    Cancel {
        /// Job id.
        job: String,
        /// Org id or slug.
        #[arg(long)]
        org: String,
    },
    /// Put a failed or cancelled job back in the queue.
    Retry {
        /// Job id.
        job: String,
        /// Org id or slug.
        #[arg(long)]
        org: String,
    },
    /// Count an org's jobs by status and task.
    Stats {
        /// Org id or slug.
        #[arg(long)]
        org: String,
    },
}

/// Flags of `job submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// Org id or slug.
    #[arg(long)]
    org: String,
    /// Task kind (see `velu-cli task list`).
    #[arg(long)]
    task: String,
    /// JSON object, or @FILE to read it from a file [default: {}].
    #[arg(long, default_value = "{}")]
    payload: String,
    /// -100..=100, higher first.
    #[arg(long, allow_hyphen_values = true)]
    priority: Option<i32>,
    /// RFC 3339: not before this time.
    #[arg(long)]
    run_at: Option<String>,
    /// 1..=25 [default: the kind's].
    #[arg(long)]
    max_attempts: Option<u32>,
    /// Submitting the same key again returns the existing job.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Wait until the job ends (status on stderr), then print it.
    #[arg(long)]
    wait: bool,
}

fn read_source(source: &str) -> CoreResult<String> {
    let read = |path: &str| {
        if path == "-" {
            std::io::read_to_string(std::io::stdin())
        } else {
            std::fs::read_to_string(Path::new(path))
        }
        .map_err(|e| CoreError::invalid("payload", format!("cannot read {path}: {e}")))
    };
    match source.strip_prefix('@') {
        Some(path) => read(path),
        None => Ok(source.to_owned()),
    }
}

fn parse_json(field: &str, text: &str) -> CoreResult<Value> {
    serde_json::from_str(text).map_err(|e| CoreError::invalid(field, format!("not JSON: {e}")))
}

/// Reads a batch file: a JSON array, or JSON objects one per line (parsed by velu-core,
/// exactly as the HTTP twin's body is checked).
fn read_batch(path: &str) -> CoreResult<Vec<SubmitJob>> {
    jobs::parse_batch(&read_source(&format!("@{path}"))?)
}

impl JobCommand {
    pub async fn run(self, g: &Global) -> CoreResult<String> {
        let velu = g.open().await?;
        let who = Principal::operator();
        match self {
            JobCommand::Submit(args) => {
                let org = OrgRef::new(args.org.clone());
                let input = SubmitJob {
                    task: args.task.clone(),
                    payload: parse_json("payload", &read_source(&args.payload)?)?,
                    priority: args.priority,
                    run_at: args.run_at.clone(),
                    max_attempts: args.max_attempts,
                    idempotency_key: args.idempotency_key.clone(),
                };
                let done = jobs::submit_job(&velu, &who, &org, &input).await?;
                if args.wait {
                    let job = wait_for(&velu, &who, &org, &done.job.id).await?;
                    return g.render(&job);
                }
                g.render(&done.job)
            }
            JobCommand::SubmitBatch { org, file } => {
                let inputs = read_batch(&file)?;
                g.render(&jobs::submit_batch(&velu, &who, &OrgRef::new(org), &inputs).await?)
            }
            JobCommand::List {
                org,
                status,
                task,
                page,
            } => {
                let (org, filter) = (OrgRef::new(org), JobFilter { status, task });
                let list = page
                    .collect(|p| {
                        let (velu, who, org, filter) = (&velu, &who, &org, &filter);
                        async move { jobs::list_jobs(velu, who, org, filter, &p).await }
                    })
                    .await?;
                g.render(&list)
            }
            JobCommand::Show { job, org } => {
                g.render(&jobs::show_job(&velu, &who, &OrgRef::new(org), &job).await?)
            }
            JobCommand::Cancel { job, org } => {
                g.render(&jobs::cancel_job(&velu, &who, &OrgRef::new(org), &job).await?)
            }
            JobCommand::Retry { job, org } => {
                g.render(&jobs::retry_job(&velu, &who, &OrgRef::new(org), &job).await?)
            }
            JobCommand::Stats { org } => {
                g.render(&jobs::job_stats(&velu, &who, &OrgRef::new(org)).await?)
            }
        }
    }
}

/// Polls a job until it ends, with a spinner and its status on stderr (drawn only on a
/// terminal).
async fn wait_for(velu: &Velu, who: &Principal, org: &OrgRef, id: &str) -> CoreResult<jobs::Job> {
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.enable_steady_tick(Duration::from_millis(120));
    loop {
        let detail = jobs::show_job(velu, who, org, id).await?;
        let job = detail.job;
        spinner.set_message(format!(
            "job {} {}: {} (attempt {}/{})",
            job.task, job.id, job.status, job.attempts, job.max_attempts
        ));
        if job.status.is_terminal() {
            spinner.finish_and_clear();
            return Ok(job);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_files_take_arrays_and_lines() {
        let dir = tempfile::tempdir().unwrap();
        let arr = dir.path().join("a.json");
        std::fs::write(
            &arr,
            r#"[{"task":"echo","payload":{"n":1}},{"task":"echo"}]"#,
        )
        .unwrap();
        let jobs = read_batch(arr.to_str().unwrap()).unwrap();
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].payload["n"], 1);
        let lines = dir.path().join("b.jsonl");
        std::fs::write(
            &lines,
            "{\"task\":\"echo\"}\n\n{\"task\":\"sleep\",\"payload\":{\"seconds\":0}}\n",
        )
        .unwrap();
        assert_eq!(
            read_batch(lines.to_str().unwrap()).unwrap()[1].task,
            "sleep"
        );
        let bad = dir.path().join("c.json");
        std::fs::write(&bad, r#"[{"task":"echo","org_id":"other"}]"#).unwrap();
        assert_eq!(
            read_batch(bad.to_str().unwrap()).unwrap_err().code(),
            "invalid"
        );
    }
}
