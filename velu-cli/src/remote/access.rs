//! [`RemoteAccess`]: the worker loop's queue over the worker protocol. The same
//! `velu_core::worker::Worker` runs on it as on the database; only the calls differ.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use velu_core::events::ProgressReport;
use velu_core::fleet::WorkerRegistration;
use velu_core::queue::{ClaimedJob, Finish, Held};
use velu_core::worker::protocol::{
    self as wire, AttemptResult, ClaimInput, Claimed, FinishInput, FinishList, FinishState,
    HeartbeatInput, RegisterInput, ReleaseInput, Released, StoppedInput,
};
use velu_core::worker::{AccessFuture, QueueAccess};

use super::client::Client;

/// Largest finish request body this client sends, in bytes (the server takes 2 MiB).
const MAX_FINISH_BYTES: usize = 1024 * 1024;
/// Longest pause after failed claims in a row.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The queue of a Velu server, reached with a worker key.
pub struct RemoteAccess {
    client: Client,
    /// Claims failed in a row (each waits longer before the next).
    failures: AtomicU32,
}

impl RemoteAccess {
    /// The queue behind `client`.
    pub fn new(client: Client) -> RemoteAccess {
        RemoteAccess {
            client,
            failures: AtomicU32::new(0),
        }
    }

    /// Waits before the next claim after a failure: 100 ms, doubling up to 10 s.
    async fn back_off(&self) {
        let n = self.failures.fetch_add(1, Ordering::Relaxed).min(7);
        let delay = (Duration::from_millis(100) * 2u32.pow(n)).min(MAX_BACKOFF);
        tokio::time::sleep(delay).await;
    }
}

impl QueueAccess for RemoteAccess {
    fn claim<'a>(
        &'a self,
        worker: &'a str,
        max: u32,
        kinds: Option<&'a [String]>,
        lease: Duration,
        wait: Duration,
    ) -> AccessFuture<'a, Vec<ClaimedJob>> {
        Box::pin(async move {
            let wait_ms = (wait.as_millis() as u64).min(wire::MAX_WAIT_MS);
            let input = ClaimInput {
                worker_id: worker.to_owned(),
                max: max.clamp(1, wire::MAX_CLAIM),
                wait_ms,
                kinds: kinds.map(<[String]>::to_vec),
                lease_ms: Some(lease.as_millis() as u64),
            };
            let extra = Duration::from_millis(wait_ms);
            match self
                .client
                .post::<_, Claimed>("/v1/worker/claim", &input, extra)
                .await
            {
                Ok(claimed) => {
                    self.failures.store(0, Ordering::Relaxed);
                    Ok(claimed.jobs.into_iter().map(claimed_job).collect())
                }
                Err(e) => {
                    self.back_off().await;
                    Err(e)
                }
            }
        })
    }

    fn heartbeat<'a>(
        &'a self,
        worker: &'a str,
        tokens: &'a [String],
        lease: Duration,
    ) -> AccessFuture<'a, Vec<Held>> {
        self.heartbeat_progress(worker, tokens, lease, &[])
    }

    // Progress lines ride along the heartbeat request.
    fn heartbeat_progress<'a>(
        &'a self,
        worker: &'a str,
        tokens: &'a [String],
        lease: Duration,
        progress: &'a [ProgressReport],
    ) -> AccessFuture<'a, Vec<Held>> {
        Box::pin(async move {
            let input = HeartbeatInput {
                worker_id: worker.to_owned(),
                tokens: tokens.to_vec(),
                lease_ms: Some(lease.as_millis() as u64),
                progress: progress.to_vec(),
            };
            let beat: wire::Heartbeat = self
                .client
                .post("/v1/worker/heartbeat", &input, Duration::ZERO)
                .await?;
            Ok(beat
                .held
                .into_iter()
                .map(|h| Held {
                    id: h.id,
                    cancel_requested: h.cancel_requested,
                })
                .collect())
        })
    }

    fn finish<'a>(&'a self, items: &'a [Finish]) -> AccessFuture<'a, Vec<String>> {
        Box::pin(async move {
            let mut written = Vec::with_capacity(items.len());
            for chunk in chunks(items) {
                let input = FinishInput { results: chunk };
                let done: FinishList = self
                    .client
                    .post("/v1/worker/finish", &input, Duration::ZERO)
                    .await?;
                written.extend(
                    done.items
                        .into_iter()
                        .filter(|f| f.state == FinishState::Accepted)
                        .map(|f| f.id),
                );
            }
            Ok(written)
        })
    }

    fn release<'a>(
        &'a self,
        worker: &'a str,
        tokens: &'a [String],
    ) -> AccessFuture<'a, Vec<String>> {
        Box::pin(async move {
            if tokens.is_empty() {
                return Ok(Vec::new());
            }
            let input = ReleaseInput {
                worker_id: worker.to_owned(),
                tokens: tokens.to_vec(),
            };
            let released: Released = self
                .client
                .post("/v1/worker/release", &input, Duration::ZERO)
                .await?;
            Ok(released.released)
        })
    }

    /// The server takes back expired leases on every heartbeat: nothing to do here.
    fn reclaim(&self) -> AccessFuture<'_, Vec<String>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// `None`: the claim long-polls the server instead.
    fn wake(&self) -> Option<watch::Receiver<u64>> {
        None
    }

    fn register_worker<'a>(&'a self, reg: &'a WorkerRegistration) -> AccessFuture<'a, ()> {
        Box::pin(async move {
            let input = RegisterInput {
                worker_id: reg.id.clone(),
                host: reg.host.clone(),
                version: reg.version.clone(),
                kinds: reg.kinds.clone(),
                concurrency: reg.concurrency,
                heartbeat_secs: reg.heartbeat.as_secs().max(1),
            };
            let _: serde_json::Value = self
                .client
                .post("/v1/worker/register", &input, Duration::ZERO)
                .await?;
            Ok(())
        })
    }

    /// The server beats the fleet registry on every heartbeat: nothing more to send.
    fn worker_beat<'a>(&'a self, _worker: &'a str, _running_jobs: u32) -> AccessFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    fn worker_stopped<'a>(&'a self, worker: &'a str) -> AccessFuture<'a, ()> {
        Box::pin(async move {
            let input = StoppedInput {
                worker_id: worker.to_owned(),
            };
            self.client.post_empty("/v1/worker/stopped", &input).await
        })
    }

    /// `worker.secrets`: the server checks the lease and picks the names itself.
    fn job_secrets<'a>(
        &'a self,
        worker: &'a str,
        job: &'a ClaimedJob,
        _names: &'a [String],
    ) -> AccessFuture<'a, velu_core::secrets::SecretEnv> {
        Box::pin(async move {
            let input = wire::SecretsInput {
                worker_id: worker.to_owned(),
                job_id: job.id.clone(),
                token: job.token.clone(),
            };
            let answer: wire::JobSecrets = self
                .client
                .post("/v1/worker/secrets", &input, Duration::ZERO)
                .await?;
            Ok(answer.into())
        })
    }
}

/// A leased job as the loop runs it.
fn claimed_job(j: wire::LeasedJob) -> ClaimedJob {
    ClaimedJob {
        id: j.id,
        org_id: j.org_id,
        task: j.task,
        payload: j.payload,
        attempt: j.attempt,
        max_attempts: j.max_attempts,
        token: j.token,
    }
}

/// The results of `items`, in requests of at most [`wire::MAX_RESULTS`] results and
/// about [`MAX_FINISH_BYTES`] (a single larger result goes alone, and the server's
/// refusal of it is handled like any refused row).
fn chunks(items: &[Finish]) -> Vec<Vec<AttemptResult>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for f in items {
        let r = AttemptResult {
            id: f.id.clone(),
            token: f.token.clone(),
            outcome: f.outcome.as_str().to_owned(),
            result: f.result.clone(),
            error: f.error.clone(),
            ran_us: f.ran_us,
        };
        let size = 256
            + f.result.as_ref().map_or(0, |v| v.to_string().len())
            + f.error.as_ref().map_or(0, |e| e.message.len());
        if !current.is_empty()
            && (current.len() >= wire::MAX_RESULTS || bytes + size > MAX_FINISH_BYTES)
        {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(r);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use velu_core::jobs::{AttemptOutcome, JobStatus};

    use super::*;

    fn done(id: usize, result_bytes: usize) -> Finish {
        Finish {
            id: format!("j{id}"),
            token: "t".into(),
            status: JobStatus::Succeeded,
            outcome: AttemptOutcome::Succeeded,
            result: Some(serde_json::json!({ "x": "a".repeat(result_bytes) })),
            error: None,
            run_at: None,
            finished: true,
            ran_us: None,
        }
    }

    #[test]
    fn outcomes_go_in_requests_the_server_takes() {
        let many: Vec<Finish> = (0..600).map(|i| done(i, 10)).collect();
        let sizes: Vec<usize> = chunks(&many).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![wire::MAX_RESULTS, 600 - wire::MAX_RESULTS]);
        let big: Vec<Finish> = (0..5).map(|i| done(i, 400 * 1024)).collect();
        let sizes: Vec<usize> = chunks(&big).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![2, 2, 1], "about 1 MiB per request");
        let order: Vec<String> = chunks(&big).concat().into_iter().map(|r| r.id).collect();
        assert_eq!(order, ["j0", "j1", "j2", "j3", "j4"]);
        assert!(chunks(&[]).is_empty());
    }
}
