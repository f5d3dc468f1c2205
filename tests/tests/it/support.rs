//! Helpers shared by the test modules.

use serde_json::Value;
use velu_tests::TestEnv;

/// An org made by `org bootstrap`, with its three key tokens.
#[derive(Debug, Clone)]
pub struct Boot {
    pub org_id: String,
    pub viewer: String,
    pub builder: String,
    pub admin: String,
    pub doc: Value,
}

/// Bootstraps `slug` on `plan` through the CLI.
pub async fn bootstrap(env: &TestEnv, slug: &str, plan: &str) -> Boot {
    let doc = env
        .cli_ok(&[
            "org",
            "bootstrap",
            "--name",
            &format!("Org {slug}"),
            "--slug",
            slug,
            "--plan",
            plan,
        ])
        .await;
    let token = |role: &str| {
        doc["keys"][role]["token"]
            .as_str()
            .expect("token")
            .to_owned()
    };
    Boot {
        org_id: doc["org"]["id"].as_str().expect("org id").to_owned(),
        viewer: token("viewer"),
        builder: token("builder"),
        admin: token("admin"),
        doc,
    }
}

/// A platform key with `scopes` (comma-separated), made through the CLI.
pub async fn platform_key(env: &TestEnv, name: &str, scopes: &str) -> String {
    let doc = env
        .cli_ok(&[
            "key",
            "create",
            "--platform",
            "--name",
            name,
            "--scopes",
            scopes,
        ])
        .await;
    doc["token"].as_str().expect("token").to_owned()
}

/// Every scope, for a platform key with the operator's rights.
pub const ALL_SCOPES: &str = "jobs:read,jobs:submit,admin:api_keys:manage,audit:read,admin:orgs:manage,jobs:work,admin:queue:manage,admin:secrets:manage,usage:read";

/// A worker running in the background on `velu` until `stop()` or until idle.
pub struct BackgroundWorker {
    pub handle: tokio::task::JoinHandle<velu_core::worker::WorkerReport>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl BackgroundWorker {
    /// Signals shutdown and waits for the report.
    pub async fn stop(mut self) -> velu_core::worker::WorkerReport {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.handle.await.expect("worker task")
    }
}

/// A worker configuration for tests: fast heartbeats and polls.
pub fn fast_worker(id: &str) -> velu_core::worker::WorkerConfig {
    use std::time::Duration;
    velu_core::worker::WorkerConfig {
        id: id.to_owned(),
        concurrency: 4,
        lease: Duration::from_secs(3),
        heartbeat: Duration::from_millis(300),
        poll: Duration::from_millis(100),
        grace: Duration::from_secs(2),
        ..Default::default()
    }
}

/// Starts a worker on `velu` with `cfg`.
pub fn spawn_worker(
    velu: &velu_core::Velu,
    cfg: velu_core::worker::WorkerConfig,
) -> BackgroundWorker {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let worker = velu_core::worker::Worker::new(velu.clone(), cfg);
    let handle = tokio::spawn(async move {
        worker
            .run(async {
                let _ = rx.await;
            })
            .await
            .expect("worker runs")
    });
    BackgroundWorker {
        handle,
        stop: Some(tx),
    }
}

/// Runs a worker until nothing is ready, and returns its report.
pub async fn drain_queue(
    velu: &velu_core::Velu,
    cfg: velu_core::worker::WorkerConfig,
) -> velu_core::worker::WorkerReport {
    let cfg = velu_core::worker::WorkerConfig {
        exit_when_idle: true,
        ..cfg
    };
    velu_core::worker::Worker::new(velu.clone(), cfg)
        .run(std::future::pending())
        .await
        .expect("worker runs")
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "condition not met within {secs} s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Submits a job through the CLI and returns its id.
pub async fn submit(env: &TestEnv, org: &str, task: &str, payload: Value) -> String {
    let j = env
        .cli_ok(&[
            "job",
            "submit",
            "--org",
            org,
            "--task",
            task,
            "--payload",
            &payload.to_string(),
        ])
        .await;
    j["id"].as_str().expect("job id").to_owned()
}

/// A transaction on the test's database as its owner, past row-level security: on
/// PostgreSQL it leaves Velu's app role for the connecting user (a superuser in tests).
/// For tests that inspect or doctor storage directly, never for Velu's own paths.
pub async fn owner_tx(velu: &velu_core::Velu) -> velu_core::sea_orm::DatabaseTransaction {
    use velu_core::sea_orm::{ConnectionTrait, DbBackend, TransactionTrait};
    let tx = velu.db().conn().begin().await.expect("begin");
    if tx.get_database_backend() == DbBackend::Postgres {
        tx.execute_unprepared("SET LOCAL ROLE NONE")
            .await
            .expect("back to the connecting user");
    }
    tx
}

/// Runs one statement of raw SQL on the test's database, as its owner ([`owner_tx`]).
pub async fn exec(velu: &velu_core::Velu, sql: &str) {
    use velu_core::sea_orm::{ConnectionTrait, Statement};
    let tx = owner_tx(velu).await;
    tx.execute_raw(Statement::from_string(tx.get_database_backend(), sql))
        .await
        .expect("statement runs");
    tx.commit().await.expect("commit");
}

/// Runs `futs` at once, each on a task of its own, and gives their outputs in order (no
/// extra crate for a join).
pub async fn join_all<F>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

/// Runs `futs` at once ([`join_all`]) and counts those that succeed; every other must fail
/// with error code `loser` (asserted, naming `what`).
pub async fn race<F, T>(futs: impl IntoIterator<Item = F>, loser: &str, what: &str) -> usize
where
    F: std::future::Future<Output = velu_core::CoreResult<T>> + Send + 'static,
    T: Send + 'static,
{
    let mut won = 0;
    for r in join_all(futs).await {
        match r {
            Ok(_) => won += 1,
            Err(e) => assert_eq!(e.code(), loser, "{what}: {e}"),
        }
    }
    won
}

/// The first column of the first row of a query, as the database's owner ([`owner_tx`]).
pub async fn scalar<T: velu_core::sea_orm::TryGetable>(velu: &velu_core::Velu, sql: &str) -> T {
    use velu_core::sea_orm::{ConnectionTrait, Statement};
    let tx = owner_tx(velu).await;
    let row = tx
        .query_one_raw(Statement::from_string(tx.get_database_backend(), sql))
        .await
        .expect("query runs")
        .expect("one row");
    row.try_get_by_index(0).expect("a value of that type")
}

/// How many steps `Migrator::down` takes to undo migration `name` (it and the steps after
/// it).
pub fn steps_back_to(name: &str) -> u32 {
    use migration::MigratorTrait;
    let all = migration::Migrator::migrations();
    let at = all
        .iter()
        .position(|m| m.name() == name)
        .expect("the step exists");
    (all.len() - at) as u32
}

/// Runs `velu-cli` with the arguments of `VELU_CHILD_CLI_ARGS` (a JSON list) in this test
/// binary as a separate process, and exits with its status (its stderr on stderr): how a
/// test runs the CLI in a process it can kill, or with an environment of its own. Does
/// nothing when run normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "started as a child process by the tests that need one"]
async fn child_cli_process() {
    let Ok(args) = std::env::var("VELU_CHILD_CLI_ARGS") else {
        return;
    };
    let args: Vec<String> = serde_json::from_str(&args).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = velu_cli::run(args, &mut out, &mut err).await;
    eprintln!("{}", String::from_utf8_lossy(&err));
    std::process::exit(i32::from(code));
}
