//! `velu-cli job ...`

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::Value;
use velu_core::events::{self, Follow};
use velu_core::jobs::{self, JobFilter, SubmitJob};
use velu_core::orgs::OrgRef;
use velu_core::{CoreError, CoreResult, Principal};

use super::{PageArgs, wait, watch};
use crate::context::Global;
use crate::exit_codes::WaitEnd;
use crate::twin::{HttpCall, Remote, RemoteFailure};
use crate::values::{StatusArg, offer};

/// Jobs.
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Submit a job (as the operator: actor_type cli, your OS user).
    Submit(SubmitArgs),
    /// Submit many jobs from a file: a JSON array of {task, payload, ...} objects, or one
    /// object per line.
    SubmitBatch {
        /// Org id or slug [env: VELU_ORG].
        #[arg(long, env = "VELU_ORG", hide_env = true)]
        org: String,
        /// The file (`-` for stdin).
        #[arg(long)]
        file: String,
    },
    /// List jobs, newest first.
    List {
        /// Org id or slug [env: VELU_ORG].
        #[arg(long, env = "VELU_ORG", hide_env = true)]
        org: String,
        /// Only jobs with this status.
        #[arg(long, value_parser = offer::<StatusArg>())]
        status: Option<String>,
        /// Only this task kind. With --status too, a page reads at most 5,000 jobs of
        /// that status: it may then hold fewer jobs, or none, and still have a
        /// next_cursor.
        #[arg(long)]
        task: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show a job with its attempts.
    Show {
        /// Job id.
        job: String,
        /// Org id or slug [env: VELU_ORG].
        #[arg(long, env = "VELU_ORG", hide_env = true)]
        org: String,
    },
    /// Cancel a job (a running one stops within a heartbeat).
    Cancel {
        /// Job id.
        job: String,
        /// Org id or slug [env: VELU_ORG].
        #[arg(long, env = "VELU_ORG", hide_env = true)]
        org: String,
    },
    /// Put a failed or cancelled job back in the queue.
    Retry {
        /// Job id.
        job: String,
        /// Org id or slug [env: VELU_ORG].
        #[arg(long, env = "VELU_ORG", hide_env = true)]
        org: String,
    },
    /// A page of a job's events, oldest first: queued, claimed, heartbeats, the progress
    /// lines it writes, retries, cancel, the end (docs/events.md).
    Events {
        /// Job id.
        job: String,
        /// Org id or slug [env: VELU_ORG].
        #[arg(long, env = "VELU_ORG", hide_env = true)]
        org: String,
        /// Only events after this `seq` (`next_after` of the previous page).
        #[arg(long, allow_hyphen_values = true)]
        after: Option<i64>,
        /// Page size, 1..=500 [default: 100].
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Follow a job's events as they happen: one YAML document per event (`---` first),
    /// one JSON line each with `-o json`. Exits when the job ends, as `submit --wait`
    /// does: 0 succeeded, 20 failed, 21 cancelled, 22 timed out, 23 `--timeout` first.
    Watch {
        /// Job id.
        job: String,
        /// Org id or slug [env: VELU_ORG].
        #[arg(long, env = "VELU_ORG", hide_env = true)]
        org: String,
        /// Start after this `seq` [default: from the first event].
        #[arg(long)]
        after: Option<i64>,
        /// Stop watching after this long (`90s`, `15m`, `2h`); the job goes on.
        #[arg(long, value_parser = super::key::parse_duration_secs)]
        timeout: Option<u64>,
    },
    /// Count an org's jobs by status and task.
    Stats {
        /// Org id or slug [env: VELU_ORG].
        #[arg(long, env = "VELU_ORG", hide_env = true)]
        org: String,
    },
}

/// Flags of `job submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// Org id or slug [env: VELU_ORG].
    #[arg(long, env = "VELU_ORG", hide_env = true)]
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
    /// Wait until the job ends, then print it. The job id goes to stderr at once, then
    /// progress (a spinner on a terminal, a line per change elsewhere). Exits 20 if the
    /// job failed, 21 if cancelled, 22 if it timed out, 23 if `--timeout` passed first.
    #[arg(long)]
    wait: bool,
    /// With `--wait`: stop waiting after this long (`90s`, `15m`, `2h`); the job goes on.
    #[arg(long, requires = "wait", value_parser = super::key::parse_duration_secs)]
    timeout: Option<u64>,
}

impl SubmitArgs {
    /// The submission the flags describe (the payload read from its file or stdin).
    fn input(&self) -> CoreResult<SubmitJob> {
        Ok(SubmitJob {
            task: self.task.clone(),
            payload: parse_json("payload", &read_source(&self.payload)?)?,
            priority: self.priority,
            run_at: self.run_at.clone(),
            max_attempts: self.max_attempts,
            idempotency_key: self.idempotency_key.clone(),
        })
    }
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

/// `submit --wait` in remote mode: `submitted` is the server's answer to `submit` (its
/// `call`); follows the job's events (`jobs.events`, long polls) and reads it through
/// `jobs.show` when something happened, until it ends.
pub async fn wait_remote(
    g: &Global,
    remote: &Remote,
    submit: &HttpCall,
    submitted: Value,
    timeout: Option<Duration>,
) -> Result<String, RemoteFailure> {
    let id = submitted["id"].as_str().unwrap_or_default().to_owned();
    eprintln!(
        "submitted job {id} ({})",
        submitted["task"].as_str().unwrap_or_default()
    );
    let mut show = HttpCall::get(submit.segments.clone());
    show.segments.push(id);
    // The remote's own failure (a problem body) is kept to report it as it came.
    let problem = std::sync::Mutex::new(None);
    let fetch = || {
        let (show, problem) = (&show, &problem);
        async move {
            match remote.send(show).await {
                Ok(detail) => Ok(detail),
                Err(RemoteFailure::Core(e)) => Err(e),
                Err(other) => {
                    *problem.lock().unwrap_or_else(|p| p.into_inner()) = Some(other);
                    Err(CoreError::internal("the server refused jobs.show"))
                }
            }
        }
    };
    // Woken by the job's event stream (a long poll of `jobs.events`), not by polling.
    let events_path = show.segments.clone();
    let after = std::sync::Mutex::new(0i64);
    let changed = |budget: Duration| {
        let (events_path, after, problem) = (&events_path, &after, &problem);
        async move {
            let from = *after.lock().unwrap_or_else(|p| p.into_inner());
            let call = events_call(events_path.clone(), Some(from), Some(budget))
                .query("limit", Some(events::MAX_PAGE.to_string()));
            match remote.send(&call).await {
                Ok(page) => {
                    if let Some(next) = page["next_after"].as_i64() {
                        *after.lock().unwrap_or_else(|p| p.into_inner()) = next;
                    }
                    Ok(())
                }
                Err(RemoteFailure::Core(e)) => Err(e),
                Err(other) => {
                    *problem.lock().unwrap_or_else(|p| p.into_inner()) = Some(other);
                    Err(CoreError::internal("the server refused jobs.events"))
                }
            }
        }
    };
    let mut stderr = std::io::stderr();
    let progress = wait::Progress {
        spinner: stderr.is_terminal(),
        sink: &mut stderr,
    };
    let (job, end) = match wait::follow(fetch, changed, timeout, progress).await {
        Ok(done) => done,
        Err(e) => {
            let kept = problem.lock().unwrap_or_else(|p| p.into_inner()).take();
            return Err(kept.unwrap_or(RemoteFailure::Core(e)));
        }
    };
    let doc = g.render(&job)?;
    if end != WaitEnd::Succeeded {
        g.end_after_output(end.exit_code(), String::new());
    }
    Ok(doc)
}

/// `GET .../jobs/{job}/events` of the job at `job_path`, after `after`, waiting up to
/// `wait` for an event.
fn events_call(mut job_path: Vec<String>, after: Option<i64>, wait: Option<Duration>) -> HttpCall {
    job_path.push("events".into());
    HttpCall::get(job_path)
        .query("after", after.map(|n| n.to_string()))
        .query("wait", wait.map(|w| w.as_secs().max(1).to_string()))
}

/// `job watch` in remote mode: `first` is the server's answer to the first page (`call`);
/// follows with long polls of `jobs.events`.
pub async fn watch_remote(
    g: &Global,
    remote: &Remote,
    call: &HttpCall,
    first: Value,
    timeout: Option<Duration>,
) -> Result<String, RemoteFailure> {
    let job_path: Vec<String> = call.segments[..call.segments.len() - 1].to_vec();
    let first = std::sync::Mutex::new(Some(first));
    let problem = std::sync::Mutex::new(None);
    let page = |after: i64, wait: Duration| {
        let (job_path, first, problem) = (&job_path, &first, &problem);
        async move {
            if let Some(doc) = first.lock().unwrap_or_else(|p| p.into_inner()).take() {
                return Ok(doc);
            }
            let call = events_call(job_path.clone(), Some(after), Some(wait));
            match remote.send(&call).await {
                Ok(doc) => Ok(doc),
                Err(RemoteFailure::Core(e)) => Err(e),
                Err(other) => {
                    *problem.lock().unwrap_or_else(|p| p.into_inner()) = Some(other);
                    Err(CoreError::internal("the server refused jobs.events"))
                }
            }
        }
    };
    let mut stdout = std::io::stdout();
    match watch::watch(g, &mut stdout, None, timeout, page).await {
        Ok(done) => Ok(done),
        Err(e) => {
            let kept = problem.lock().unwrap_or_else(|p| p.into_inner()).take();
            Err(kept.unwrap_or(RemoteFailure::Core(e)))
        }
    }
}

/// A submission as the HTTP API takes it (fields left unset are left out).
fn submit_body(job: &SubmitJob) -> Value {
    let mut body = serde_json::json!({"task": job.task, "payload": job.payload});
    let optional = [
        ("priority", job.priority.map(Value::from)),
        ("run_at", job.run_at.clone().map(Value::from)),
        ("max_attempts", job.max_attempts.map(Value::from)),
        (
            "idempotency_key",
            job.idempotency_key.clone().map(Value::from),
        ),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            body[name] = value;
        }
    }
    body
}

/// Reads a batch file: a JSON array, or JSON objects one per line (parsed by velu-core,
/// exactly as the HTTP twin's body is checked).
fn read_batch(path: &str) -> CoreResult<Vec<SubmitJob>> {
    jobs::parse_batch(&read_source(&format!("@{path}"))?)
}

impl JobCommand {
    /// The HTTP twin (remote mode, `--print-http`). `submit --wait` is followed by
    /// polling `jobs.show` in remote mode.
    pub fn http_twin(&self) -> CoreResult<HttpCall> {
        let jobs = |org: &str| vec!["v1".to_owned(), "orgs".into(), org.into(), "jobs".into()];
        let one = |org: &str, job: &str| {
            let mut path = jobs(org);
            path.push(job.to_owned());
            path
        };
        Ok(match self {
            JobCommand::Submit(args) => {
                HttpCall::post(jobs(&args.org), Some(submit_body(&args.input()?)))
            }
            JobCommand::SubmitBatch { org, file } => {
                let list: Vec<Value> = read_batch(file)?.iter().map(submit_body).collect();
                let mut path = jobs(org);
                path.push("batch".into());
                HttpCall::post(path, Some(serde_json::json!({ "jobs": list })))
            }
            JobCommand::List {
                org,
                status,
                task,
                page,
            } => page.twin(
                HttpCall::get(jobs(org))
                    .query("status", status.clone())
                    .query("task", task.clone()),
            ),
            JobCommand::Show { job, org } => HttpCall::get(one(org, job)),
            JobCommand::Cancel { job, org } => {
                let mut path = one(org, job);
                path.push("cancel".into());
                HttpCall::post(path, None)
            }
            JobCommand::Retry { job, org } => {
                let mut path = one(org, job);
                path.push("retry".into());
                HttpCall::post(path, None)
            }
            JobCommand::Stats { org } => {
                let mut path = jobs(org);
                path.push("stats".into());
                HttpCall::get(path)
            }
            JobCommand::Events {
                job,
                org,
                after,
                limit,
            } => events_call(one(org, job), *after, None)
                .query("limit", limit.map(|n| n.to_string())),
            // The first page; remote mode then follows it (`watch_remote`).
            JobCommand::Watch {
                job, org, after, ..
            } => events_call(one(org, job), *after, None),
        })
    }

    /// `Some((after, timeout))` for `job watch`.
    pub fn watches(&self) -> Option<(Option<i64>, Option<Duration>)> {
        match self {
            JobCommand::Watch { after, timeout, .. } => {
                Some((*after, timeout.map(Duration::from_secs)))
            }
            _ => None,
        }
    }

    /// `Some(timeout)` for `submit --wait` (the wait's `--timeout`, if any).
    pub fn waits(&self) -> Option<Option<Duration>> {
        match self {
            JobCommand::Submit(args) if args.wait => Some(args.timeout.map(Duration::from_secs)),
            _ => None,
        }
    }

    /// Whether the command reads the task catalog (submits check the kind and its plan,
    /// a retry the kind's attempts); the others run without the tasks file.
    fn needs_tasks(&self) -> bool {
        matches!(
            self,
            JobCommand::Submit(_) | JobCommand::SubmitBatch { .. } | JobCommand::Retry { .. }
        )
    }

    pub async fn run(self, g: &Global) -> CoreResult<String> {
        let velu = if self.needs_tasks() {
            g.open().await?
        } else {
            g.open_without_tasks().await?
        };
        let who = Principal::operator();
        match self {
            JobCommand::Submit(args) => {
                let org = OrgRef::new(args.org.clone());
                let input = args.input()?;
                let done = jobs::submit_job(&velu, &who, &org, &input).await?;
                if args.wait {
                    eprintln!("submitted job {} ({})", done.job.id, done.job.task);
                    let id = done.job.id.clone();
                    let fetch = || {
                        let (velu, who, org, id) = (&velu, &who, &org, &id);
                        async move {
                            let job = jobs::show_job(velu, who, org, id).await?.job;
                            serde_json::to_value(job).map_err(CoreError::internal)
                        }
                    };
                    let mut stderr = std::io::stderr();
                    let progress = wait::Progress {
                        spinner: stderr.is_terminal(),
                        sink: &mut stderr,
                    };
                    let timeout = args.timeout.map(Duration::from_secs);
                    // Woken by the job's event stream, not by polling the job.
                    let follow = std::sync::Mutex::new(Follow::new(None, Some(events::MAX_PAGE)));
                    let changed = |budget: Duration| {
                        let (velu, who, org, id, follow) = (&velu, &who, &org, &id, &follow);
                        async move {
                            let mut f = follow.lock().unwrap_or_else(|p| p.into_inner()).clone();
                            let deadline = tokio::time::Instant::now() + budget;
                            f.next(velu, who, org, id, deadline).await?;
                            *follow.lock().unwrap_or_else(|p| p.into_inner()) = f;
                            Ok(())
                        }
                    };
                    let (job, end) = wait::follow(fetch, changed, timeout, progress).await?;
                    let doc = g.render(&job)?;
                    if end != WaitEnd::Succeeded {
                        g.end_after_output(end.exit_code(), String::new());
                    }
                    return Ok(doc);
                }
                g.render(&done.document())
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
            JobCommand::Events {
                job,
                org,
                after,
                limit,
            } => g.render(
                &events::job_events(&velu, &who, &OrgRef::new(org), &job, after, limit).await?,
            ),
            JobCommand::Watch {
                job,
                org,
                after,
                timeout,
            } => {
                let org = OrgRef::new(org);
                let page = |after: i64, wait: Duration| {
                    let (velu, who, org, job) = (&velu, &who, &org, &job);
                    async move {
                        let page = Follow::new(Some(after), None)
                            .next(velu, who, org, job, tokio::time::Instant::now() + wait)
                            .await?;
                        serde_json::to_value(page).map_err(CoreError::internal)
                    }
                };
                let mut stdout = std::io::stdout();
                let timeout = timeout.map(Duration::from_secs);
                watch::watch(g, &mut stdout, after, timeout, page).await
            }
        }
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
