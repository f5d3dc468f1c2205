//! Flat with history (issue "Performance", target 5): the same operations timed side by
//! side on two fresh databases, one empty and one holding HISTORY (default 1,000,000)
//! finished jobs (each with its attempt row) in the org under test, inserted directly and
//! analyzed. Calls alternate between the two worlds so the machine's noise falls on both;
//! medians, and the ratio history/empty (1.00 = flat).
//!
//! `cargo bench -p velu-tests --bench history` (see docs/benchmarks.md). Knobs (env):
//! HISTORY=1000000 CALLS=200 N=20000 RUNS=3 BACKENDS=postgres,sqlite COMPARE=history|rls
//! KEEP=1 (the SQLite worlds' files are kept; their directory is printed)
//! NO_ANALYZE=1 (no `ANALYZE` after planting: on SQLite it is what gives the planner
//! statistics; on PostgreSQL the app role owns no table, so it analyzes nothing anyway)
//! (`rls`: both worlds empty, the second with row-level security off: "history" columns
//! then mean "no policies")
//! PGURL=postgres://postgres@127.0.0.1:5432/postgres
//! Prints one line per operation and backend:
//! `history-<backend> <op> empty_ms=<median> history_ms=<median> ratio=<history/empty>`,
//! and for the burn-down `jobs_per_s` instead of milliseconds.

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::json;
use velu_core::jobs::{
    JobFilter, SubmitJob, job_stats, list_jobs, show_job, submit_batch, submit_job,
};
use velu_core::orgs::{CreateOrg, OrgRef, create_org};
use velu_core::pagination::PageRequest;
use velu_core::sea_orm::{ConnectionTrait, Statement, TransactionTrait};
use velu_core::worker::{Worker, WorkerConfig};
use velu_core::{Principal, Velu};

mod common;
use common::{env_or, median};

/// Jobs per page of the timed list, and queued in each world before the timed reads.
const PAGE: u32 = 20;

/// A fresh database (`name` on PostgreSQL, a file in `dir` on SQLite) with org `bench`.
async fn world(backend: &str, pg_admin: &str, name: &str, dir: &std::path::Path) -> Velu {
    let velu = common::fresh_velu(backend, pg_admin, name, dir.join(name)).await;
    let org = CreateOrg {
        name: "Bench".into(),
        slug: "bench".into(),
        plan: Some("superhero".into()),
    };
    create_org(&velu, &Principal::operator(), &org)
        .await
        .unwrap();
    velu
}

/// Inserts `n` finished jobs of org `bench` (and their attempts) in one statement each,
/// with ids older than any the system makes, then analyzes.
async fn plant_history(velu: &Velu, n: u64) {
    let conn = velu.db().conn();
    let backend = conn.get_database_backend();
    let postgres = backend == velu_core::sea_orm::DbBackend::Postgres;
    let at = chrono::Utc::now() - chrono::Duration::days(1);
    let org: String = conn
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT id FROM organizations WHERE slug = 'bench'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index(0)
        .unwrap();
    let (series, id, p) = if postgres {
        (
            format!("SELECT i FROM generate_series(1, {n}) AS i"),
            "'00000000-0000-7000-8000-' || lpad(to_hex(i), 12, '0')",
            ["$1", "$2"],
        )
    } else {
        (
            format!(
                "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) SELECT i FROM s"
            ),
            "printf('00000000-0000-7000-8000-%012x', i)",
            ["?1", "?2"],
        )
    };
    let jobs = format!(
        "INSERT INTO jobs (id, org_id, task, status, payload, result, priority, attempts,
           max_attempts, run_at, actor_type, actor_id, cancel_requested, created_at,
           updated_at, started_at, finished_at)
         SELECT {id}, {org_p}, 'echo', 'succeeded', '{{\"i\": 1}}', '{{\"i\": 1}}', 0, 1, 3,
           {at}, 'cli', 'bench', false, {at}, {at}, {at}, {at}
         FROM ({series}) AS g",
        org_p = p[0],
        at = p[1],
    );
    let attempts = format!(
        "INSERT INTO job_attempts (job_id, attempt, worker_id, lease_token, started_at,
           finished_at, outcome)
         SELECT {id}, 1, 'bench', 'history', {at}, {at}, 'succeeded' FROM ({series}) AS g",
        at = p[0],
    );
    let t = Instant::now();
    // As the database's owner: history planted behind the app's back, past its policies.
    let tx = conn.begin().await.unwrap();
    if postgres {
        tx.execute_unprepared("SET LOCAL ROLE NONE").await.unwrap();
    }
    tx.execute_raw(Statement::from_sql_and_values(
        backend,
        &jobs,
        [org.into(), at.into()],
    ))
    .await
    .expect("history jobs");
    tx.execute_raw(Statement::from_sql_and_values(
        backend,
        &attempts,
        [at.into()],
    ))
    .await
    .expect("history attempts");
    tx.commit().await.unwrap();
    if std::env::var("NO_ANALYZE").is_err() {
        conn.execute_unprepared("ANALYZE").await.unwrap();
    }
    if !postgres {
        // The history was written in one transaction: its pages sit in the write-ahead
        // log until a checkpoint, and every read looks its pages up there first. A
        // database that grew its history over time has long checkpointed it.
        conn.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
            .await
            .unwrap();
    }
    eprintln!(
        "  planted {n} finished jobs in {:.1} s",
        t.elapsed().as_secs_f64()
    );
}

/// Switches row-level security off on every table of `velu`'s database, as its owner
/// (the statements Velu sends stay the same: only the policies' own cost goes).
async fn drop_policies(velu: &Velu) {
    let conn = velu.db().conn();
    if conn.get_database_backend() != velu_core::sea_orm::DbBackend::Postgres {
        return;
    }
    let tx = conn.begin().await.unwrap();
    tx.execute_unprepared("SET LOCAL ROLE NONE").await.unwrap();
    tx.execute_unprepared(
        "DO $$ DECLARE t text; BEGIN
           FOR t IN SELECT DISTINCT tablename FROM pg_policies WHERE schemaname = current_schema() LOOP
             EXECUTE format('ALTER TABLE %I NO FORCE ROW LEVEL SECURITY', t);
             EXECUTE format('ALTER TABLE %I DISABLE ROW LEVEL SECURITY', t);
           END LOOP; END $$",
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// Times `calls` calls of `op` on each world (`op` gets the world's index), alternating
/// which goes first; medians in milliseconds.
async fn alternate<F, Fut>(worlds: &[Velu; 2], calls: usize, op: F) -> [f64; 2]
where
    F: Fn(usize, Velu) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for i in 0..calls {
        for k in 0..2 {
            let w = (k + i) % 2;
            let t = Instant::now();
            op(w, worlds[w].clone()).await;
            times[w].push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    [median(times[0].clone()), median(times[1].clone())]
}

/// Submits `n` jobs to `velu` and drains them with one worker of 10 handlers; jobs/s.
async fn burn_down(velu: &Velu, n: usize) -> f64 {
    let who = Principal::operator();
    let jobs: Vec<SubmitJob> = (0..n)
        .map(|i| SubmitJob {
            task: "echo".into(),
            payload: json!({ "id": i }),
            ..Default::default()
        })
        .collect();
    for chunk in jobs.chunks(velu_core::jobs::MAX_BATCH) {
        submit_batch(velu, &who, &OrgRef::new("bench"), chunk)
            .await
            .unwrap();
    }
    let cfg = WorkerConfig {
        id: "bench".into(),
        concurrency: 10,
        prefetch: velu_core::worker::default_prefetch(10, Some(velu.db().backend())),
        exit_when_idle: true,
        poll: Duration::from_millis(50),
        workspace_retention: Duration::from_secs(3600),
        ..WorkerConfig::default()
    };
    let t = Instant::now();
    let report = Worker::new(velu.clone(), cfg)
        .run(std::future::pending())
        .await
        .unwrap();
    // At least the new jobs: the first drain also runs what the timed submits queued.
    assert!(
        report.succeeded as usize >= n,
        "every job succeeded: {report:?}"
    );
    n as f64 / t.elapsed().as_secs_f64()
}

fn print(backend: &str, op: &str, [empty, history]: [f64; 2]) {
    println!(
        "history-{backend} {op:<8} empty_ms={empty:.2} history_ms={history:.2} ratio={:.2}",
        history / empty
    );
}

fn main() {
    let history: u64 = env_or("HISTORY", 1_000_000);
    let calls: usize = env_or("CALLS", 200);
    let n: usize = env_or("N", 20_000);
    let runs: usize = env_or("RUNS", 3);
    // COMPARE=rls: two empty worlds, the second with row-level security switched off.
    let rls_compare = std::env::var("COMPARE").is_ok_and(|c| c == "rls");
    let pg_admin = std::env::var("PGURL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let backends = std::env::var("BACKENDS").unwrap_or_else(|_| "postgres,sqlite".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for backend in backends.split(',').map(str::trim).filter(|b| !b.is_empty()) {
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let worlds = [
                world(backend, &pg_admin, "velu_bench_empty", dir.path()).await,
                world(backend, &pg_admin, "velu_bench_history", dir.path()).await,
            ];
            if rls_compare {
                // The second world without the policies (PostgreSQL): what they cost.
                drop_policies(&worlds[1]).await;
            } else {
                plant_history(&worlds[1], history).await;
            }
            let who = Principal::operator();
            let org = OrgRef::new("bench");
            // A full page of queued jobs each (PAGE), so list reads the same page in both
            // worlds (with one, the empty world listed one job and the other twenty: the
            // 1.33x to 1.41x reported before measured the page, not the history) and show
            // has something recent to read.
            let probe = SubmitJob { task: "echo".into(), payload: json!({}), ..Default::default() };
            let mut shown = Vec::new();
            for w in &worlds {
                let mut last = String::new();
                for _ in 0..PAGE {
                    last = submit_job(w, &who, &org, &probe).await.unwrap().job.id;
                }
                shown.push(last);
            }
            let stats = alternate(&worlds, calls, |_, v| async move {
                job_stats(&v, &Principal::operator(), &OrgRef::new("bench")).await.unwrap();
            })
            .await;
            print(backend, "stats", stats);
            let list = alternate(&worlds, calls, |_, v| async move {
                let page = PageRequest { limit: Some(PAGE), cursor: None };
                list_jobs(&v, &Principal::operator(), &OrgRef::new("bench"), &JobFilter::default(), &page)
                    .await
                    .unwrap();
            })
            .await;
            print(backend, "list", list);
            let ids = [shown[0].clone(), shown[1].clone()];
            let show = alternate(&worlds, calls, |w, v| {
                let id = ids[w].clone();
                async move {
                    show_job(&v, &Principal::operator(), &OrgRef::new("bench"), &id).await.unwrap();
                }
            })
            .await;
            print(backend, "show", show);
            let submit = alternate(&worlds, calls, |_, v| async move {
                let input = SubmitJob { task: "echo".into(), payload: json!({}), ..Default::default() };
                submit_job(&v, &Principal::operator(), &OrgRef::new("bench"), &input).await.unwrap();
            })
            .await;
            print(backend, "submit", submit);
            // Drain what the submits above queued, then the burn-downs, alternating.
            for w in &worlds {
                burn_down(w, 0).await;
            }
            let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
            for r in 0..runs {
                for k in 0..2 {
                    let w = (k + r) % 2;
                    rates[w].push(burn_down(&worlds[w], n).await);
                }
            }
            let [empty, hist] = [median(rates[0].clone()), median(rates[1].clone())];
            println!(
                "history-{backend} burndown empty_jobs_per_s={empty:.0} history_jobs_per_s={hist:.0} ratio={:.2} (N={n}, median of {runs})",
                hist / empty
            );
            for w in worlds {
                w.shutdown().await;
            }
            // KEEP=1: the SQLite worlds stay, for a look at their plans.
            if std::env::var_os("KEEP").is_some() {
                eprintln!("  kept {}", dir.keep().display());
            }
        });
    }
}
