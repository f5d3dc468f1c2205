//! Queue throughput, the workload of `shared/bench/peers` (graphile-worker, pg-boss,
//! apalis): per run a fresh database, N no-op (`echo`) jobs enqueued in one batch call
//! (timed: enqueue rate), then one worker with CONCURRENCY handlers drains the queue
//! (timed: jobs per second). Median of RUNS runs. Velu keeps every job's row, result and
//! attempt history; graphile-worker deletes finished jobs.
//!
//! `cargo bench -p velu-tests --bench queue` (see docs/benchmarks.md). Knobs (env):
//! N=20000 RUNS=3 CONCURRENCY=10 PREFETCH=30 BACKENDS=postgres,sqlite MODES=local,remote
//! (PREFETCH unset: the CLI's default for the backend, `worker::default_prefetch`)
//! PLAN=superhero (the bench org's plan: `hero` caps it at 10 running jobs)
//! COUNTERS=on|off|both (`off` drops the job-counter triggers of `job_counts` first, to
//! measure what they cost; `both` runs the two alternately in one run)
//! IDLE_ORGS=0,10000 (a list: runs alternate between the values; before the clock starts,
//! that many other orgs get a finished job and a job due tomorrow each, so they have
//! history and a backlog but nothing runnable: target 7 of issue "Performance")
//! PGURL=postgres://postgres@127.0.0.1:5432/postgres
//! Prints one line per backend and mode: `velu-<backend> jobs_per_s=<n> enqueue_per_s=<n>`
//! for the local worker (on the database), `velu-<backend>-remote ...` for a remote worker
//! (`velu-cli worker --server`'s loop) draining through a server on 127.0.0.1 in the same
//! process, over the worker protocol with a platform `jobs:work` key.

use std::time::{Duration, Instant};

use serde_json::json;
use velu_core::jobs::{SubmitJob, submit_batch};
use velu_core::keys::{CreateKey, KeyOwner, create_key};
use velu_core::orgs::{CreateOrg, OrgRef, create_org};
use velu_core::sea_orm::{ConnectionTrait, Database};
use velu_core::worker::{Worker, WorkerConfig};
use velu_core::{Principal, Velu};

mod common;
use common::{env_or, median};

struct Run {
    enqueue_per_s: f64,
    jobs_per_s: f64,
    /// PostgreSQL: WAL the server wrote during the drain, per job (the whole server's,
    /// so other databases' writes count too: run it on a quiet server).
    wal_per_job: Option<f64>,
}

/// PostgreSQL: the server's current WAL position (`None` on SQLite).
async fn wal_lsn(velu: &Velu) -> Option<String> {
    let conn = velu.db().conn();
    if conn.get_database_backend() != velu_core::sea_orm::DbBackend::Postgres {
        return None;
    }
    let row = conn
        .query_one_raw(velu_core::sea_orm::Statement::from_string(
            conn.get_database_backend(),
            "SELECT pg_current_wal_lsn()::text",
        ))
        .await
        .unwrap()
        .unwrap();
    Some(row.try_get_by_index::<String>(0).unwrap())
}

/// PostgreSQL: WAL bytes written since `from`.
async fn wal_since(velu: &Velu, from: &str) -> f64 {
    let conn = velu.db().conn();
    let row = conn
        .query_one_raw(velu_core::sea_orm::Statement::from_string(
            conn.get_database_backend(),
            format!("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{from}')::float8"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<f64>(0).unwrap()
}

/// Drops the triggers that keep `job_counts` (migration m20261202_000015), as the
/// database's owner.
async fn drop_counter_triggers(velu: &Velu, backend: &str, pg_admin: &str) {
    let sql = "DROP TRIGGER job_counts_insert ON jobs; DROP TRIGGER job_counts_update ON jobs;
               DROP TRIGGER job_counts_delete ON jobs;";
    if backend == "postgres" {
        let (prefix, _) = pg_admin.rsplit_once('/').expect("a database in PGURL");
        let owner = Database::connect(format!("{prefix}/velu_bench"))
            .await
            .unwrap();
        owner.execute_unprepared(sql).await.unwrap();
        owner.close().await.ok();
    } else {
        velu.db()
            .conn()
            .execute_unprepared(&sql.replace(" ON jobs", ""))
            .await
            .unwrap();
    }
}

/// `n` other orgs, each with one finished job and one job due tomorrow (SQL, as the
/// database owner: quicker than the API for thousands of orgs, and the same rows).
async fn idle_orgs(velu: &Velu, backend: &str, pg_admin: &str, n: usize) {
    if n == 0 {
        return;
    }
    let (series, uuid, later) = match backend {
        "postgres" => (
            format!("SELECT g AS i FROM generate_series(1, {n}) AS g"),
            "gen_random_uuid()::text",
            "now() + interval '1 day'",
        ),
        _ => (
            format!(
                "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) SELECT i FROM s"
            ),
            "lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-a' || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))",
            "strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now', '+1 day')",
        ),
    };
    let now = match backend {
        "postgres" => "now()",
        _ => "strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')",
    };
    let sql = format!(
        "INSERT INTO organizations (id, name, slug, plan, created_at, updated_at)
           SELECT {uuid}, 'Idle ' || i, 'idle-' || i, 'hero', {now}, {now} FROM ({series}) AS s;
         INSERT INTO jobs (id, org_id, task, status, payload, priority, attempts, max_attempts,
             run_at, actor_type, actor_id, cancel_requested, created_at, updated_at, finished_at)
           SELECT {uuid}, o.id, 'echo', st.status, '{{}}', 0, 1, 3,
             CASE st.status WHEN 'queued' THEN {later} ELSE {now} END,
             'cli', 'bench', false, {now}, {now},
             CASE st.status WHEN 'queued' THEN NULL ELSE {now} END
           FROM organizations o, (SELECT 'succeeded' AS status UNION ALL SELECT 'queued') AS st
           WHERE o.slug LIKE 'idle-%';"
    );
    if backend == "postgres" {
        let (prefix, _) = pg_admin.rsplit_once('/').expect("a database in PGURL");
        let owner = Database::connect(format!("{prefix}/velu_bench"))
            .await
            .unwrap();
        owner.execute_unprepared(&sql).await.unwrap();
        owner.execute_unprepared("ANALYZE").await.unwrap();
        owner.close().await.ok();
    } else {
        velu.db().conn().execute_unprepared(&sql).await.unwrap();
    }
}

#[allow(clippy::too_many_arguments)]
async fn one_run(
    backend: &str,
    pg_admin: &str,
    n: usize,
    concurrency: usize,
    prefetch: usize,
    remote: bool,
    counters: bool,
    idle: usize,
) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let velu = common::fresh_velu(backend, pg_admin, "velu_bench", dir.path().to_owned()).await;
    if !counters {
        drop_counter_triggers(&velu, backend, pg_admin).await;
    }
    idle_orgs(&velu, backend, pg_admin, idle).await;
    let who = Principal::operator();
    let org = CreateOrg {
        name: "Bench".into(),
        slug: "bench".into(),
        plan: Some(std::env::var("PLAN").unwrap_or_else(|_| "superhero".into())),
    };
    create_org(&velu, &who, &org).await.unwrap();
    let jobs: Vec<SubmitJob> = (0..n)
        .map(|i| SubmitJob {
            task: "echo".into(),
            payload: json!({ "id": i }),
            ..Default::default()
        })
        .collect();

    let t0 = Instant::now();
    let done = submit_batch(&velu, &who, &OrgRef::new("bench"), &jobs)
        .await
        .unwrap();
    let enqueue = t0.elapsed();
    assert_eq!(done.count, n);

    let cfg = WorkerConfig {
        id: "bench".into(),
        concurrency,
        prefetch,
        exit_when_idle: true,
        poll: Duration::from_millis(50),
        workspace_retention: Duration::from_secs(3600),
        ..WorkerConfig::default()
    };
    let wal_start = wal_lsn(&velu).await;
    let (succeeded, drain) = if remote {
        let (report, drain) = remote_drain(&velu, dir.path(), cfg).await;
        (report.succeeded as usize, drain)
    } else {
        // An exit-when-idle worker has been seen to stop early (an open bug, issue
        // "Performance"'s note): a new one finishes the drain, on the clock, and the early
        // stops are reported.
        let t1 = Instant::now();
        let mut succeeded = 0;
        for stop in 0..10 {
            let report = Worker::new(velu.clone(), cfg.clone())
                .run(std::future::pending())
                .await
                .unwrap();
            succeeded += report.succeeded as usize;
            if succeeded >= n {
                break;
            }
            eprintln!(
                "  EARLY STOP {}: a worker exited idle after {} of {n} jobs",
                stop + 1,
                succeeded
            );
        }
        (succeeded, t1.elapsed())
    };
    assert_eq!(succeeded, n, "every job succeeded");
    let wal_per_job = match &wal_start {
        Some(lsn) => Some(wal_since(&velu, lsn).await / n as f64),
        None => None,
    };
    let conn = velu.db().conn();
    let left = conn
        .query_one_raw(velu_core::sea_orm::Statement::from_string(
            conn.get_database_backend(),
            "SELECT COUNT(*) FROM jobs WHERE status <> 'succeeded' AND actor_id <> 'bench'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap();
    assert_eq!(left, 0);
    velu.shutdown().await;
    let run = Run {
        enqueue_per_s: n as f64 / enqueue.as_secs_f64(),
        jobs_per_s: n as f64 / drain.as_secs_f64(),
        wal_per_job,
    };
    eprintln!(
        "  {backend}{}{}: enqueue {:.0} ms ({:.0}/s), process {:.0} ms ({:.0}/s){} [N={n} c={concurrency} prefetch={prefetch}]",
        if counters { "" } else { " (no counters)" },
        if idle > 0 {
            format!(" ({idle} idle orgs)")
        } else {
            String::new()
        },
        enqueue.as_secs_f64() * 1e3,
        run.enqueue_per_s,
        drain.as_secs_f64() * 1e3,
        run.jobs_per_s,
        run.wal_per_job
            .map(|w| format!(", WAL {w:.0} B/job"))
            .unwrap_or_default()
    );
    run
}

/// Drains the queue with a remote worker through a server on 127.0.0.1 (same process);
/// the clock starts when the worker starts (the server and key are ready before).
async fn remote_drain(
    velu: &Velu,
    dir: &std::path::Path,
    cfg: WorkerConfig,
) -> (velu_core::worker::WorkerReport, Duration) {
    use poem::listener::{Acceptor, Listener, TcpListener};
    let key = CreateKey {
        name: "bench-worker".into(),
        scopes: vec!["jobs:work".into()],
        ..CreateKey::default()
    };
    let key = create_key(velu, &Principal::operator(), &KeyOwner::Platform, &key)
        .await
        .unwrap()
        .token;
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = velu_http::app(velu.clone());
    let server = tokio::spawn(async move {
        poem::Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(
                app,
                async {
                    let _ = stopped.await;
                },
                None,
            )
            .await
    });
    let client =
        velu_cli::remote::Client::new(&format!("http://{addr}"), &key, &Default::default())
            .unwrap();
    let t1 = Instant::now();
    let report =
        velu_cli::remote::run_worker(client, &dir.join("remote"), cfg, std::future::pending())
            .await
            .unwrap();
    let drain = t1.elapsed();
    let _ = stop.send(());
    let _ = server.await;
    (report, drain)
}

fn main() {
    let n: usize = env_or("N", 20_000);
    let runs: usize = env_or("RUNS", 3);
    let concurrency: usize = env_or("CONCURRENCY", 10);
    // Unset: the CLI's default for the backend (and mode), while jobs are short.
    let prefetch_knob: Option<usize> = std::env::var("PREFETCH")
        .ok()
        .map(|v| v.trim().parse().expect("PREFETCH: a number"));
    let pg_admin = std::env::var("PGURL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let backends = std::env::var("BACKENDS").unwrap_or_else(|_| "postgres,sqlite".into());
    let modes = std::env::var("MODES").unwrap_or_else(|_| "local".into());
    let counters: Vec<bool> = match std::env::var("COUNTERS").as_deref() {
        Ok("off") => vec![false],
        Ok("both") => vec![true, false],
        _ => vec![true],
    };
    let idle: Vec<usize> = std::env::var("IDLE_ORGS")
        .unwrap_or_else(|_| "0".into())
        .split(',')
        .map(|v| v.trim().parse().expect("IDLE_ORGS: numbers"))
        .collect();
    // Every (counters, idle orgs) setting, alternating inside each run.
    let settings: Vec<(bool, usize)> = counters
        .iter()
        .flat_map(|&c| idle.iter().map(move |&i| (c, i)))
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for backend in backends.split(',').map(str::trim).filter(|b| !b.is_empty()) {
        for mode in modes.split(',').map(str::trim).filter(|m| !m.is_empty()) {
            let remote = mode == "remote";
            let queue_backend = match (remote, backend) {
                (true, _) => None,
                (false, "sqlite") => Some(velu_core::db::Backend::Sqlite),
                (false, _) => Some(velu_core::db::Backend::Postgres),
            };
            let prefetch = prefetch_knob
                .unwrap_or_else(|| velu_core::worker::default_prefetch(concurrency, queue_backend));
            // Runs alternate between the counter settings, so noise falls on each.
            let mut results: Vec<Vec<Run>> = settings.iter().map(|_| Vec::new()).collect();
            for _ in 0..runs {
                for (k, &(on, idle)) in settings.iter().enumerate() {
                    results[k].push(rt.block_on(one_run(
                        backend,
                        &pg_admin,
                        n,
                        concurrency,
                        prefetch,
                        remote,
                        on,
                        idle,
                    )));
                }
            }
            for (k, &(on, idle)) in settings.iter().enumerate() {
                let mut label = if remote {
                    format!("{backend}-remote")
                } else {
                    backend.to_owned()
                };
                if !on {
                    label.push_str("-nocounters");
                }
                if idle > 0 {
                    label.push_str(&format!("-idle{idle}"));
                }
                let r = &results[k];
                let wal: Vec<f64> = r.iter().filter_map(|r| r.wal_per_job).collect();
                let wal = if wal.is_empty() {
                    String::new()
                } else {
                    format!(" wal_bytes_per_job={:.0}", median(wal))
                };
                println!(
                    "velu-{label} jobs_per_s={:.0} enqueue_per_s={:.0}{wal} (median of {runs}, N={n}, 1 worker x {concurrency}, prefetch {prefetch})",
                    median(r.iter().map(|r| r.jobs_per_s).collect()),
                    median(r.iter().map(|r| r.enqueue_per_s).collect()),
                );
            }
        }
    }
}
