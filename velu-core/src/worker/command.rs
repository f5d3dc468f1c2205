//! Running a command kind: its own process group and containment (see
//! [`super::contain`]), its own workspace as working directory, a scrubbed environment, no
//! inherited descriptors beyond stdin/stdout/stderr, the payload on stdin, bounded output,
//! every process killed on timeout, cancel or exit.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::watch;

use super::contain::{Containment, JobScope};
use super::outcome::{Outcome, as_object};
use super::stop::{Stop, stopped};
use super::{cgroup, sandbox, workspace};
use crate::jobs::{JobError, JobErrorCode};
use crate::queue::ClaimedJob;
use crate::secrets::SecretEnv;
use crate::tasks::{CommandSpec, NEVER_PASSED, TaskKind};

/// Largest stdout kept as the result.
pub const MAX_STDOUT: usize = 1024 * 1024;
/// How much of the end of stderr goes into an error message.
pub const STDERR_TAIL: usize = 4 * 1024;
/// `PATH` given to commands unless `PATH` is allow-listed.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// A failed attempt with `code` and `message`.
fn fail(code: JobErrorCode, message: impl Into<String>) -> Outcome {
    Outcome::Failed(JobError::new(code, message))
}

/// Reads at most `cap` bytes; `Err(())` if there was more.
async fn read_capped(mut r: impl AsyncRead + Unpin, cap: usize) -> Result<Vec<u8>, ()> {
    let mut buf = Vec::new();
    let n = (&mut r)
        .take(cap as u64 + 1)
        .read_to_end(&mut buf)
        .await
        .map_err(|_| ())?;
    if n > cap { Err(()) } else { Ok(buf) }
}

/// Reads everything, keeping the last `keep` bytes.
async fn read_tail(mut r: impl AsyncRead + Unpin, keep: usize) -> Vec<u8> {
    let mut tail = Vec::new();
    let mut chunk = [0u8; 8192];
    while let Ok(n) = r.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        tail.extend_from_slice(&chunk[..n]);
        if tail.len() > 2 * keep {
            tail.drain(..tail.len() - keep);
        }
    }
    if tail.len() > keep {
        tail.drain(..tail.len() - keep);
    }
    tail
}

/// The environment of a command: only what is listed, never a platform secret; the org
/// secrets its kind lists come last, under their own names (docs/secrets.md).
fn environment(
    spec: &CommandSpec,
    job: &ClaimedJob,
    ws: &Path,
    secrets: &SecretEnv,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("PATH".to_owned(), DEFAULT_PATH.to_owned()),
        ("HOME".to_owned(), ws.display().to_string()),
        ("TMPDIR".to_owned(), ws.join("tmp").display().to_string()),
        ("VELU_JOB_ID".to_owned(), job.id.clone()),
        ("VELU_ORG_ID".to_owned(), job.org_id.clone()),
        ("VELU_TASK".to_owned(), job.task.clone()),
        ("VELU_ATTEMPT".to_owned(), job.attempt.to_string()),
        ("VELU_WORKSPACE".to_owned(), ws.display().to_string()),
        (
            crate::events::PROGRESS_FILE_ENV.to_owned(),
            ws.join(crate::events::PROGRESS_FILE_NAME)
                .display()
                .to_string(),
        ),
    ];
    for name in &spec.env_allow {
        if NEVER_PASSED.contains(&name.as_str()) {
            continue;
        }
        if let Ok(value) = std::env::var(name) {
            env.retain(|(k, _)| k != name);
            env.push((name.clone(), value));
        }
    }
    for (name, value) in secrets.iter() {
        env.retain(|(k, _)| k != name);
        env.push((name.to_owned(), value.to_owned()));
    }
    env
}

/// Runs one attempt of a command kind.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    workspaces: &Path,
    spec: &CommandSpec,
    kind: &TaskKind,
    job: &ClaimedJob,
    stop: watch::Receiver<Option<Stop>>,
    retention: Duration,
    contain: &Containment,
    secrets: &SecretEnv,
) -> Outcome {
    let ws = match workspace::create(workspaces, &job.org_id, &job.id) {
        Ok(ws) => ws,
        Err(e) => {
            return fail(
                JobErrorCode::SpawnFailed,
                format!("cannot create the workspace: {e}"),
            );
        }
    };
    let outcome = match contain.job(&job.id) {
        Ok(mut scope) => {
            let outcome = run_in(spec, kind, job, stop, ws.path(), &mut scope, secrets).await;
            // Whatever the job started (setsid children, daemons) ends here.
            scope.end().await;
            outcome
        }
        Err(e) => fail(
            JobErrorCode::SpawnFailed,
            format!("cannot contain the job: {e}"),
        ),
    };
    if retention.is_zero() {
        workspace::remove(ws.path());
    }
    outcome
}

async fn run_in(
    spec: &CommandSpec,
    kind: &TaskKind,
    job: &ClaimedJob,
    stop: watch::Receiver<Option<Stop>>,
    ws: &Path,
    scope: &mut JobScope,
    secrets: &SecretEnv,
) -> Outcome {
    let program = Path::new(&spec.argv[0]);
    let mut cmd = Command::new(program);
    cmd.args(&spec.argv[1..])
        .current_dir(ws)
        .env_clear()
        .envs(environment(spec, job, ws, secrets))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    let procs = scope.procs_fd();
    let mut ruleset = sandbox::prepare(ws, program);
    let fd_limit = sandbox::fd_limit();
    // SAFETY: runs in the forked child before exec. Each step only makes system calls on
    // memory and descriptors prepared by the parent (no allocation, no locks): `write(2)`
    // to join the job's cgroup, the `prctl` and `landlock_restrict_self` calls, then
    // `close_range(2)` (or `fcntl(2)`) to close every inherited descriptor at exec.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(fd) = procs {
                cgroup::join(fd)?;
            }
            if let Some(r) = ruleset.take() {
                sandbox::enter(r)?;
            }
            sandbox::close_inherited_fds(fd_limit);
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return fail(
                JobErrorCode::SpawnFailed,
                format!("cannot start {}: {e}", program.display()),
            );
        }
    };
    scope.started(child.id());
    let kill_group = || scope.kill_group();

    let payload = serde_json::to_vec(&job.payload).unwrap_or_default();
    let mut stdin = child.stdin.take();
    let feed = async move {
        if let Some(s) = stdin.as_mut() {
            // A command that does not read its input is not an error.
            let _ = s.write_all(&payload).await;
            let _ = s.shutdown().await;
        }
    };
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        kill_group();
        let _ = child.wait().await;
        return fail(
            JobErrorCode::SpawnFailed,
            "the command's output was not captured",
        );
    };
    let stdout = read_capped(stdout, MAX_STDOUT);
    let stderr = read_tail(stderr, STDERR_TAIL);
    let io = async { tokio::join!(feed, stdout, stderr) };

    let (status, out, err) = tokio::select! {
        ((), out, err) = io => {
            if out.is_err() {
                kill_group();
                let _ = child.wait().await;
                return fail(JobErrorCode::OutputTooLarge, format!("stdout passed {MAX_STDOUT} bytes"));
            }
            (child.wait().await, out, err)
        }
        () = tokio::time::sleep(kind.timeout) => {
            kill_group();
            let _ = child.wait().await;
            return Outcome::TimedOut(JobError::new(JobErrorCode::TimedOut, format!("ran longer than {} s; all its processes were killed", kind.timeout.as_secs())));
        }
        why = stopped(stop) => {
            kill_group();
            let _ = child.wait().await;
            return match why {
                Stop::Cancel => Outcome::Cancelled,
                Stop::LeaseLost | Stop::Shutdown => fail(JobErrorCode::Interrupted, "stopped"),
            };
        }
    };
    // The command is done; stragglers it left in its group go too (the caller ends
    // the rest of its processes).
    kill_group();
    let stderr_text = String::from_utf8_lossy(&err).trim().to_owned();
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            return fail(
                JobErrorCode::SpawnFailed,
                format!("waiting for the command: {e}"),
            );
        }
    };
    if !status.success() {
        let how = match status.code() {
            Some(code) => format!("exited with status {code}"),
            None => "was killed by a signal".to_owned(),
        };
        let message = if stderr_text.is_empty() {
            how
        } else {
            format!("{how}: {stderr_text}")
        };
        return fail(JobErrorCode::ExitStatus, message);
    }
    let text = String::from_utf8_lossy(out.as_deref().unwrap_or_default()).into_owned();
    let result = match serde_json::from_str::<Value>(text.trim()) {
        Ok(v) => as_object(v),
        Err(_) => json!({ "output": text }),
    };
    Outcome::Succeeded(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn capped_reads() {
        let data = [b'x'; 10];
        assert!(read_capped(&data[..], 10).await.is_ok());
        assert!(read_capped(&data[..], 9).await.is_err());
        let long: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let tail = read_tail(&long[..], 100).await;
        assert_eq!(tail, long[long.len() - 100..]);
    }
}
