//! Starting a remote worker: the catalog from the server, then velu-core's worker loop on
//! [`RemoteAccess`].

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use velu_core::worker::protocol::{WorkerTasks, catalog_from_tasks};
use velu_core::worker::{Worker, WorkerConfig, WorkerReport, workspace};
use velu_core::{CoreError, CoreResult};

use super::{Client, RemoteAccess};

/// Runs a worker with `cfg` against the Velu server of `client` until `shutdown` (or
/// idle, with `exit_when_idle`), with job workspaces under data directory `home`. The
/// catalog is the server's `worker.tasks` (the kinds the key may run), narrowed to
/// `cfg.tasks`; while the server cannot be reached at start, it retries (with backoff)
/// until `shutdown`.
pub async fn run_worker(
    client: Client,
    home: &Path,
    mut cfg: WorkerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> CoreResult<WorkerReport> {
    tokio::pin!(shutdown);
    let tasks = tokio::select! {
        tasks = fetch_tasks(&client) => tasks?,
        () = &mut shutdown => return Ok(WorkerReport { worker_id: cfg.id, ..WorkerReport::default() }),
    };
    let catalog = catalog_from_tasks(&tasks)?;
    let served: Vec<String> = catalog.iter().map(|k| k.name.clone()).collect();
    let kinds: Vec<String> = match cfg.tasks.take() {
        Some(only) => served.into_iter().filter(|k| only.contains(k)).collect(),
        None => served,
    };
    if kinds.is_empty() {
        return Err(CoreError::Config(format!(
            "this key may run no task kind on {} (of those asked for with --tasks)",
            client.server()
        )));
    }
    // Only kinds this worker knows are claimed: a kind added on the server later waits for
    // a restart instead of failing here as unknown.
    cfg.tasks = Some(kinds);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(home)
        .map_err(|e| CoreError::Config(format!("data directory {}: {e}", home.display())))?;
    tracing::info!(server = %client.server(), "remote worker: jobs come from the server");
    let access = Arc::new(RemoteAccess::new(client));
    Worker::with_access(access, catalog, workspace::root_in(home), cfg)
        .run(shutdown)
        .await
}

/// The server's catalog for this key, retried while the server is unreachable.
async fn fetch_tasks(client: &Client) -> CoreResult<WorkerTasks> {
    let mut delay = Duration::from_millis(200);
    loop {
        match client.get::<WorkerTasks>("/v1/worker/tasks").await {
            Err(e @ CoreError::Unavailable(_)) => {
                tracing::warn!(error = %e, retry_in = ?delay, "cannot reach the server yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            other => return other,
        }
    }
}
