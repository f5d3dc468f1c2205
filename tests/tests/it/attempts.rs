//! Attempts are appended once, when they end (migration m20261203_000018): the attempt in
//! progress lives on the job's row, and a finish, a reclaim or a release appends its one
//! `job_attempts` row. Tried against what could break it: a batch naming a job twice, a
//! finish racing a reclaim of the same attempt, a show while it runs, and existing
//! running jobs carried over by the migration (and back by its `down`).

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};
use velu_core::jobs::{AttemptOutcome, JobError, JobStatus};
use velu_core::plans::Plan;
use velu_core::queue::{self, ClaimedJob, Finish, ReadyOrg};
use velu_tests::{TestEnv, backend_tests};

use crate::job_state::{JOBS, count_jobs};
use crate::support::{bootstrap, exec, owner_tx, scalar, submit};

async fn show(env: &TestEnv, id: &str) -> Value {
    env.cli_ok(&["job", "show", id, "--org", "acme"]).await
}

fn succeeded(job: &ClaimedJob) -> Finish {
    Finish {
        id: job.id.clone(),
        token: job.token.clone(),
        status: JobStatus::Succeeded,
        outcome: AttemptOutcome::Succeeded,
        result: Some(json!({"ok": true})),
        error: None,
        run_at: None,
        finished: true,
        ran_us: None,
    }
}

async fn claim(env: &TestEnv, org: &ReadyOrg, worker: &str, n: u32) -> Vec<ClaimedJob> {
    claim_at(env, org, worker, n, velu_core::time::now()).await
}

async fn claim_at(
    env: &TestEnv,
    org: &ReadyOrg,
    worker: &str,
    n: u32,
    at: chrono::DateTime<chrono::Utc>,
) -> Vec<ClaimedJob> {
    queue::claim_for_org(
        env.velu().db(),
        worker,
        org,
        n,
        &["echo".into()],
        Duration::from_secs(30),
        at,
    )
    .await
    .unwrap()
}

/// Rows of `job_attempts` for `id`.
async fn attempt_rows(env: &TestEnv, id: &str) -> i64 {
    scalar(
        env.velu(),
        &format!("SELECT COUNT(*) FROM job_attempts WHERE job_id = '{id}'"),
    )
    .await
}

/// How many steps `down` takes to undo m20261203_000018 (it and the steps after it).
fn steps_back() -> u32 {
    crate::support::steps_back_to("m20261203_000018_attempts_at_finish")
}

backend_tests! {
    async fn a_claim_writes_no_attempt_row_and_each_end_appends_one(env) {
        let boot = bootstrap(&env, "acme", "hero").await;
        let ids = [
            submit(&env, "acme", "echo", json!({"n": 1})).await,
            submit(&env, "acme", "echo", json!({"n": 2})).await,
        ];
        let org = ReadyOrg { id: boot.org_id.clone(), plan: Plan::Hero };
        let claimed = claim(&env, &org, "w1", 2).await;
        assert_eq!(claimed.len(), 2);
        for id in &ids {
            assert_eq!(attempt_rows(&env, id).await, 0, "nothing appended at claim");
            // The show lists the attempt in progress, from the job's row.
            let doc = show(&env, id).await;
            let h = doc["history"].as_array().unwrap();
            assert_eq!(h.len(), 1, "{doc}");
            assert_eq!(h[0]["attempt"], 1);
            assert_eq!(h[0]["worker_id"], "w1");
            assert!(h[0]["finished_at"].is_null() && h[0]["outcome"].is_null(), "{doc}");
            assert!(h[0]["started_at"].is_string(), "{doc}");
        }

        // A batch naming the first job twice: the first outcome wins, one row, no error.
        let first = claimed.iter().find(|j| j.id == ids[0]).unwrap();
        let mut twice = succeeded(first);
        twice.status = JobStatus::Failed;
        twice.outcome = AttemptOutcome::Failed;
        twice.result = None;
        twice.error = Some(JobError::new("task_failed", "second word"));
        let written = queue::finish(env.velu().db(), &[succeeded(first), twice], velu_core::time::now())
            .await
            .expect("a job named twice is not an error");
        assert_eq!(written, vec![ids[0].clone()]);
        let doc = show(&env, &ids[0]).await;
        assert_eq!(doc["status"], "succeeded");
        let h = doc["history"].as_array().unwrap();
        assert_eq!(h.len(), 1, "{doc}");
        assert_eq!((h[0]["outcome"].as_str(), h[0]["worker_id"].as_str()), (Some("succeeded"), Some("w1")));
        assert!(h[0]["finished_at"].is_string());
        assert_eq!(attempt_rows(&env, &ids[0]).await, 1);
        // Finishing it again with the same (now spent) token appends nothing.
        let again = queue::finish(env.velu().db(), &[succeeded(first)], velu_core::time::now()).await.unwrap();
        assert!(again.is_empty());
        assert_eq!(attempt_rows(&env, &ids[0]).await, 1);

        // The second job's worker dies: the reclaim appends its attempt as lost, with the
        // start the claim stamped and the worker that held it.
        let started = show(&env, &ids[1]).await["history"][0]["started_at"].clone();
        let later = velu_core::time::now() + chrono::Duration::seconds(60);
        let reclaimed = queue::reclaim_expired(env.velu().db(), later).await.unwrap();
        assert_eq!(reclaimed, vec![ids[1].clone()]);
        let doc = show(&env, &ids[1]).await;
        assert_eq!(doc["status"], "queued");
        let h = doc["history"].as_array().unwrap();
        assert_eq!(h.len(), 1, "{doc}");
        assert_eq!((h[0]["outcome"].as_str(), h[0]["worker_id"].as_str()), (Some("lost"), Some("w1")));
        assert_eq!(h[0]["started_at"], started);
        assert_eq!(h[0]["error"]["code"], "lease_expired");

        // Its second attempt: the show lists the ended one and the one in progress.
        // (A reclaimed job may run again from the time of its reclaim.)
        let second = claim_at(&env, &org, "w2", 1, later + chrono::Duration::seconds(1)).await;
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].attempt, 2);
        let doc = show(&env, &ids[1]).await;
        let h = doc["history"].as_array().unwrap();
        assert_eq!(h.len(), 2, "{doc}");
        assert_eq!((h[1]["attempt"].as_i64(), h[1]["worker_id"].as_str()), (Some(2), Some("w2")));
        assert!(h[1]["outcome"].is_null());
        // An org key sees the attempts but not the workers.
        let http = env
            .http(poem::http::Method::GET, &format!("/v1/orgs/acme/jobs/{}", ids[1]), Some(&boot.viewer), None)
            .await;
        assert_eq!(http.status, 200, "{}", http.text);
        let h = http.body["history"].as_array().unwrap().clone();
        assert_eq!(h.len(), 2, "{h:?}");
        assert!(h.iter().all(|a| a["worker_id"].is_null()), "{h:?}");

        // Handed back at shutdown: appended as lost too, without using up the attempt.
        let released = queue::release(env.velu().db(), "w2", &[second[0].token.clone()], velu_core::time::now())
            .await
            .unwrap();
        assert_eq!(released, vec![ids[1].clone()]);
        assert_eq!(attempt_rows(&env, &ids[1]).await, 2);
        let doc = show(&env, &ids[1]).await;
        assert_eq!(doc["history"][1]["error"]["code"], "worker_shutdown");
    }

    async fn a_finish_racing_a_reclaim_records_each_attempt_once(env) {
        let boot = bootstrap(&env, "acme", "superhero").await;
        let batch: Vec<_> = (0..30).map(|i| json!({"task": "echo", "payload": {"i": i}, "max_attempts": 10})).collect();
        let file = env.home().join("batch.json");
        std::fs::write(&file, serde_json::to_string(&batch).unwrap()).unwrap();
        env.cli_ok(&["job", "submit-batch", "--org", "acme", "--file", file.to_str().unwrap()]).await;
        let org = ReadyOrg { id: boot.org_id.clone(), plan: Plan::Superhero };
        let db = env.velu().db().clone();
        for round in 0..10 {
            let claimed = claim(&env, &org, "racer", 30).await;
            if claimed.is_empty() {
                break;
            }
            let items: Vec<Finish> = claimed.iter().map(succeeded).collect();
            // Every lease counts as expired for the reclaim: each attempt is either
            // finished or taken back, never both, never an error.
            let later = velu_core::time::now() + chrono::Duration::seconds(60);
            let (done, taken) = tokio::join!(
                queue::finish(&db, &items, velu_core::time::now()),
                queue::reclaim_expired(&db, later),
            );
            let (done, taken) = (done.expect("finish"), taken.expect("reclaim"));
            let done: HashSet<_> = done.into_iter().collect();
            let taken: HashSet<_> = taken.into_iter().collect();
            assert!(done.is_disjoint(&taken), "round {round}: an attempt both finished and lost");
            assert_eq!(done.len() + taken.len(), claimed.len(), "round {round}");
        }
        // Each job: as many attempt rows as attempts, the last one matching its status.
        let mismatched: i64 = scalar(env.velu(),
            &format!("SELECT COUNT(*) FROM {JOBS} WHERE j.status <> 'running' AND j.attempts <>
               (SELECT COUNT(*) FROM job_attempts a WHERE a.job_id = j.id)")).await;
        assert_eq!(mismatched, 0);
        let wrong_last: i64 = scalar(env.velu(),
            &format!("SELECT COUNT(*) FROM {JOBS} JOIN job_attempts a ON a.job_id = j.id AND a.attempt = j.attempts
             WHERE (j.status = 'succeeded') <> (a.outcome = 'succeeded')")).await;
        assert_eq!(wrong_last, 0);
        let successes: i64 = scalar(env.velu(), "SELECT COUNT(*) FROM job_attempts WHERE outcome = 'succeeded'").await;
        let succeeded_jobs = count_jobs(&env, "j.status = 'succeeded'").await;
        assert_eq!(successes, succeeded_jobs, "one success per succeeded job");
    }

    async fn the_migration_carries_running_attempts_over_and_back(env) {
        use migration::MigratorTrait;
        bootstrap(&env, "acme", "hero").await;
        let id = submit(&env, "acme", "echo", json!({"n": 1})).await;
        let done_id = submit(&env, "acme", "echo", json!({"n": 2})).await;
        // Back to the schema before the step: the claim wrote an open attempt row.
        let owner = owner_tx(env.velu()).await;
        migration::Migrator::down(&owner, Some(steps_back())).await.expect("the step's down runs");
        owner.commit().await.unwrap();
        exec(env.velu(), &format!(
            "UPDATE jobs SET status = 'running', attempts = 1, lease_owner = 'old-worker',
               lease_token = 'old-token', lease_expires_at = run_at, started_at = created_at
             WHERE id = '{id}'")).await;
        exec(env.velu(), &format!(
            "INSERT INTO job_attempts (job_id, attempt, worker_id, lease_token, started_at)
             SELECT id, 1, 'old-worker', 'old-token', created_at FROM jobs WHERE id = '{id}'")).await;
        // A finished attempt of another, failed job is history: it stays as it is.
        exec(env.velu(), &format!(
            "UPDATE jobs SET status = 'failed', attempts = 1, finished_at = created_at
             WHERE id = '{done_id}'")).await;
        exec(env.velu(), &format!(
            "INSERT INTO job_attempts (job_id, attempt, worker_id, lease_token, started_at, finished_at, outcome)
             SELECT id, 1, 'old-worker', 'spent', created_at, created_at, 'failed' FROM jobs WHERE id = '{done_id}'")).await;
        env.velu().db().migrate_up().await.expect("the step runs on a populated database");

        assert_eq!(attempt_rows(&env, &id).await, 0, "the open row moved onto the job");
        assert_eq!(attempt_rows(&env, &done_id).await, 1, "finished history untouched");
        let created = show(&env, &id).await["created_at"].clone();
        let doc = show(&env, &id).await;
        let h = doc["history"].as_array().unwrap();
        assert_eq!(h.len(), 1, "{doc}");
        assert_eq!((h[0]["worker_id"].as_str(), h[0]["started_at"].clone()), (Some("old-worker"), created.clone()));
        // The old worker's finish lands, with the attempt as it began.
        let finish = Finish {
            id: id.clone(),
            token: "old-token".into(),
            status: JobStatus::Succeeded,
            outcome: AttemptOutcome::Succeeded,
            result: Some(json!({"n": 1})),
            error: None,
            run_at: None,
            finished: true,
            ran_us: None,
        };
        let written = queue::finish(env.velu().db(), &[finish], velu_core::time::now()).await.unwrap();
        assert_eq!(written, vec![id.clone()]);
        let doc = show(&env, &id).await;
        let h = doc["history"].as_array().unwrap();
        assert_eq!(h.len(), 1, "{doc}");
        assert_eq!((h[0]["outcome"].as_str(), h[0]["started_at"].clone()), (Some("succeeded"), created));

        // And back: a job claimed now gets its open row again from `down`.
        let third = submit(&env, "acme", "echo", json!({"n": 3})).await;
        let boot_org: String = scalar(env.velu(), "SELECT id FROM organizations WHERE slug = 'acme'").await;
        let claimed = claim(&env, &ReadyOrg { id: boot_org, plan: Plan::Hero }, "new-worker", 5).await;
        assert_eq!(claimed.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), vec![third.as_str()]);
        let owner = owner_tx(env.velu()).await;
        migration::Migrator::down(&owner, Some(steps_back())).await.expect("down with a running job");
        owner.commit().await.unwrap();
        let open: i64 = scalar(env.velu(), &format!(
            "SELECT COUNT(*) FROM job_attempts WHERE job_id = '{third}' AND attempt = 1
               AND worker_id = 'new-worker' AND finished_at IS NULL")).await;
        assert_eq!(open, 1);
        env.velu().db().migrate_up().await.unwrap();
        assert_eq!(attempt_rows(&env, &third).await, 0, "carried over again");
        let doc = show(&env, &third).await;
        assert_eq!(doc["history"][0]["worker_id"], "new-worker", "{doc}");
    }

    async fn an_attempt_starts_when_its_handler_did_never_before_its_claim(env) {
        // A job claimed ahead waits in its worker for a free handler: the attempt's start,
        // and the run time its org is billed, are the handler's run as the worker
        // measured it, bounded by the claim whatever the worker says.
        let boot = bootstrap(&env, "acme", "hero").await;
        let mut ids = Vec::new();
        for n in 0..5 {
            ids.push(submit(&env, "acme", "echo", json!({"n": n})).await);
        }
        let org = ReadyOrg { id: boot.org_id.clone(), plan: Plan::Hero };
        let claimed_at = velu_core::time::now();
        let claimed = claim_at(&env, &org, "w1", 5, claimed_at).await;
        assert_eq!(claimed.len(), 5);
        let job = |id: &str| claimed.iter().find(|j| j.id == id).unwrap();
        let ended = claimed_at + chrono::Duration::seconds(10);
        let ran = |id: &str, us: Option<u64>| Finish { ran_us: us, ..succeeded(job(id)) };
        let items = [
            ran(&ids[0], Some(2_500_000)),   // ran 2.5 s of the 10 since its claim
            ran(&ids[1], Some(60_000_000)),  // says 60 s: no start before the claim
            ran(&ids[2], None),              // unknown: from its claim
            ran(&ids[3], Some(u64::MAX)),    // absurd: from its claim, and no error
            ran(&ids[4], Some(0)),           // ended the moment it started
        ];
        let mut written = queue::finish(env.velu().db(), &items, ended).await.unwrap();
        written.sort();
        let mut all = ids.clone();
        all.sort();
        assert_eq!(written, all);
        let expected_ms = [2_500, 10_000, 10_000, 10_000, 0];
        for (id, want) in ids.iter().zip(expected_ms) {
            let doc = show(&env, id).await;
            let h = &doc["history"][0];
            let time = |f: &str| chrono::DateTime::parse_from_rfc3339(h[f].as_str().unwrap()).unwrap();
            let took = (time("finished_at") - time("started_at")).num_milliseconds();
            assert!((took - want).abs() <= 1, "{id}: {took} ms, want {want}: {doc}");
            assert!(time("started_at") >= claimed_at - chrono::Duration::milliseconds(1), "{doc}");
        }
        // Billed: the same runs, to the millisecond (one per rounding of each attempt).
        let billed: i64 = scalar(
            env.velu(),
            &format!("SELECT CAST(SUM(run_ms) AS BIGINT) FROM usage_daily WHERE org_id = '{}'", boot.org_id),
        )
        .await;
        assert!((billed - 32_500).abs() <= 5, "{billed} ms billed");
    }
}
