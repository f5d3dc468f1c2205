//! The worker, tried as an operator would: leases, kills, retries, limits, isolation.

use std::time::Duration;

use poem::http::Method;
use serde_json::{Value, json};
use velu_core::OpenOptions;
use velu_core::jobs::{AttemptOutcome, JobStatus};
use velu_core::plans::Plan;
use velu_core::queue::{self, Finish, ReadyOrg};
use velu_core::sea_orm::{ConnectionTrait, Statement};
use velu_tests::{TestEnv, backend_tests};

use crate::job_state::count_jobs;
use crate::support::{
    bootstrap, drain_queue, eventually, fast_worker, scalar, spawn_worker, submit,
};

async fn job(env: &TestEnv, org: &str, id: &str) -> Value {
    env.cli_ok(&["job", "show", id, "--org", org]).await
}

/// Waits (up to `secs`) until the job has `status`, and returns it.
async fn wait_status(env: &TestEnv, org: &str, id: &str, status: &str, secs: u64) -> Value {
    eventually(secs, || {
        let (env, org, id) = (env.clone(), org.to_owned(), id.to_owned());
        let status = status.to_owned();
        async move {
            let j = job(&env, &org, &id).await;
            (j["status"] == status.as_str()).then_some(j)
        }
    })
    .await
}

backend_tests! {
    async fn failures_retry_then_fail_with_the_last_error(env) {
        bootstrap(&env, "acme", "hero").await;
        let id = env.cli_ok(&["job", "submit", "--org", "acme", "--task", "fail", "--payload", r#"{"message": "boom"}"#, "--max-attempts", "2"]).await;
        let id = id["id"].as_str().unwrap().to_owned();
        let w = spawn_worker(env.velu(), fast_worker("w"));
        let done = wait_status(&env, "acme", &id, "failed", 15).await;
        w.stop().await;
        assert_eq!(done["attempts"], 2, "retries stop at max_attempts");
        assert_eq!(done["error"], json!({"code": "task_failed", "message": "boom"}));
        assert!(done["result"].is_null(), "a handler error is never a success");
        let history = done["history"].as_array().unwrap();
        assert_eq!(history.len(), 2);
        assert!(history.iter().all(|a| a["outcome"] == "failed"));
        assert!(done["finished_at"].is_string());
    }

    async fn a_dead_workers_job_is_reclaimed_and_its_late_finish_refused(env) {
        let boot = bootstrap(&env, "acme", "hero").await;
        let id = submit(&env, "acme", "echo", json!({"n": 7})).await;
        // A worker claims it with a short lease, then "dies" (never heartbeats).
        let org = ReadyOrg { id: boot.org_id.clone(), plan: Plan::Hero };
        let claimed = queue::claim_for_org(env.velu().db(), "doomed", &org, 1, &["echo".into()], Duration::from_millis(300), velu_core::time::now())
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        let stale_token = claimed[0].token.clone();
        assert_eq!(job(&env, "acme", &id).await["status"], "running");

        tokio::time::sleep(Duration::from_millis(400)).await;
        let rescuer = spawn_worker(env.velu(), fast_worker("rescuer"));
        let reclaimed = wait_status(&env, "acme", &id, "succeeded", 10).await;
        assert_eq!(rescuer.stop().await.reclaimed, 1);
        assert_eq!(reclaimed["attempts"], 2);
        let h = reclaimed["history"].as_array().unwrap();
        assert_eq!((h[0]["worker_id"].as_str(), h[0]["outcome"].as_str()), (Some("doomed"), Some("lost")));
        assert_eq!(h[0]["error"]["code"], "lease_expired");
        assert_eq!((h[1]["worker_id"].as_str(), h[1]["outcome"].as_str()), (Some("rescuer"), Some("succeeded")));

        // The dead owner wakes up and tries to finish: refused, nothing changes.
        let late = Finish {
            id: id.clone(),
            token: stale_token,
            status: JobStatus::Failed,
            outcome: AttemptOutcome::Failed,
            result: None,
            error: Some(velu_core::jobs::JobError::new("task_failed", "late")),
            run_at: None,
            finished: true,
            ran_us: None,
        };
        let written = queue::finish(env.velu().db(), &[late], velu_core::time::now()).await.unwrap();
        assert!(written.is_empty(), "a stale token never writes");
        let after = job(&env, "acme", &id).await;
        assert_eq!(after["status"], "succeeded");
        assert_eq!(after["result"], json!({"n": 7}));
        assert_eq!(after["history"], reclaimed["history"]);
    }

    async fn many_workers_run_each_job_exactly_once(env) {
        bootstrap(&env, "acme", "superhero").await;
        // Short sleeps, so that the work takes long enough for every worker to race for it.
        let jobs: Vec<_> = (0..300).map(|i| json!({"task": "sleep", "payload": {"seconds": 0.01, "i": i}})).collect();
        let file = env.home().join("jobs.json");
        std::fs::write(&file, serde_json::to_string(&jobs).unwrap()).unwrap();
        // Every worker is up before the jobs arrive, so all of them race for the batch.
        let mut workers = Vec::new();
        for n in 0..4 {
            let node = env.another_node(OpenOptions { background: true, ..OpenOptions::default() }).await;
            let cfg = velu_core::worker::WorkerConfig { concurrency: 8, ..fast_worker(&format!("w{n}")) };
            workers.push((node.clone(), spawn_worker(&node, cfg)));
        }
        env.cli_ok(&["job", "submit-batch", "--org", "acme", "--file", file.to_str().unwrap()]).await;
        eventually(60, || {
            let env = env.clone();
            async move {
                let s = env.cli_ok(&["job", "stats", "--org", "acme"]).await;
                (s["by_status"]["succeeded"] == 300).then_some(())
            }
        })
        .await;
        let mut claimed = 0;
        for (node, w) in workers {
            let r = w.stop().await;
            claimed += r.claimed;
            assert_eq!(r.fenced, 0);
            node.shutdown().await;
        }
        assert_eq!(claimed, 300, "no job was claimed twice");
        assert_eq!(scalar::<i64>(env.velu(), "SELECT COUNT(*) FROM job_attempts").await, 300);
        assert_eq!(count_jobs(&env, "j.attempts <> 1").await, 0);
        let workers_used = scalar::<i64>(env.velu(), "SELECT COUNT(DISTINCT worker_id) FROM job_attempts").await;
        assert!(workers_used >= 2, "the work was shared ({workers_used} workers)");
    }

    async fn the_plans_concurrency_limit_holds_at_claim_time(env) {
        bootstrap(&env, "acme", "hero").await;
        for _ in 0..25 {
            submit(&env, "acme", "sleep", json!({"seconds": 0.3})).await;
        }
        let w = spawn_worker(env.velu(), velu_core::worker::WorkerConfig { concurrency: 25, ..fast_worker("wide") });
        let mut peak = 0;
        for _ in 0..200 {
            let running = count_jobs(&env, "j.status = 'running'").await;
            peak = peak.max(running);
            if count_jobs(&env, "j.status = 'succeeded'").await == 25 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        w.stop().await;
        assert!(peak <= 10, "hero runs at most 10 at once, saw {peak}");
        assert!(peak >= 5, "and does run them side by side, saw {peak}");
    }

    async fn a_backlog_does_not_starve_another_org(env) {
        bootstrap(&env, "big", "superhero").await;
        bootstrap(&env, "small", "hero").await;
        let backlog: Vec<_> = (0..40).map(|_| json!({"task": "sleep", "payload": {"seconds": 0.02}})).collect();
        let file = env.home().join("backlog.json");
        std::fs::write(&file, serde_json::to_string(&backlog).unwrap()).unwrap();
        env.cli_ok(&["job", "submit-batch", "--org", "big", "--file", file.to_str().unwrap()]).await;
        let mut small = Vec::new();
        for _ in 0..4 {
            small.push(submit(&env, "small", "sleep", json!({"seconds": 0.02})).await);
        }
        drain_queue(env.velu(), velu_core::worker::WorkerConfig { concurrency: 2, ..fast_worker("fair") }).await;
        let order: Vec<String> = {
            let owner = crate::support::owner_tx(env.velu()).await;
            let conn = &owner;
            let rows = conn
                .query_all_raw(Statement::from_string(conn.get_database_backend(), "SELECT id FROM jobs ORDER BY finished_at, id"))
                .await
                .unwrap();
            rows.iter().map(|r| r.try_get_by_index::<String>(0).unwrap()).collect()
        };
        assert_eq!(order.len(), 44);
        let last_small = small.iter().map(|id| order.iter().position(|o| o == id).unwrap()).max().unwrap();
        assert!(last_small < 16, "the small org's 4 jobs ran early, the last at position {last_small} of 44");
    }

    async fn cancel_stops_a_running_job_within_a_heartbeat(env) {
        let boot = bootstrap(&env, "acme", "hero").await;
        let id = submit(&env, "acme", "sleep", json!({"seconds": 60})).await;
        let w = spawn_worker(env.velu(), fast_worker("w"));
        wait_status(&env, "acme", &id, "running", 10).await;
        let asked = env.http(Method::POST, &format!("/v1/orgs/acme/jobs/{id}/cancel"), Some(&boot.builder), None).await;
        assert_eq!(asked.body["status"], "running");
        assert_eq!(asked.body["cancel_requested"], true);
        let started = std::time::Instant::now();
        let done = wait_status(&env, "acme", &id, "cancelled", 5).await;
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(done["history"][0]["outcome"], "cancelled");
        let report = w.stop().await;
        assert_eq!(report.cancelled, 1);
    }

    async fn shutdown_hands_leases_back(env) {
        bootstrap(&env, "acme", "hero").await;
        let id = submit(&env, "acme", "sleep", json!({"seconds": 60})).await;
        let w = spawn_worker(env.velu(), velu_core::worker::WorkerConfig { grace: Duration::from_millis(200), ..fast_worker("leaving") });
        wait_status(&env, "acme", &id, "running", 10).await;
        let report = w.stop().await;
        assert_eq!(report.released, 1);
        let j = job(&env, "acme", &id).await;
        assert_eq!(j["status"], "queued");
        assert_eq!((j["attempts"].clone(), j["max_attempts"].clone()), (json!(1), json!(4)), "the interrupted attempt is given back");
        assert_eq!(j["history"][0]["outcome"], "lost");
        assert_eq!(j["history"][0]["error"]["code"], "worker_shutdown");
    }

    async fn a_downgraded_org_runs_nothing_until_upgraded(env) {
        bootstrap(&env, "acme", "hero").await;
        let id = submit(&env, "acme", "echo", json!({})).await;
        env.cli_ok(&["org", "set-plan", "acme", "base"]).await;
        let report = drain_queue(env.velu(), fast_worker("w")).await;
        assert_eq!(report.claimed, 0);
        assert_eq!(job(&env, "acme", &id).await["status"], "queued");
        env.cli_ok(&["org", "set-plan", "acme", "hero"]).await;
        drain_queue(env.velu(), fast_worker("w")).await;
        assert_eq!(job(&env, "acme", &id).await["status"], "succeeded");
    }

    async fn command_jobs_are_isolated(env) {
        bootstrap(&env, "acme", "superhero").await;
        std::fs::write(env.home().join("secret.txt"), "s3cret").unwrap();
        let outside = env.home().join("escaped.txt");
        let probe = submit(&env, "acme", "probe", json!({
            "read": env.home().join("secret.txt"),
            "write": outside,
        })).await;
        let plan = submit(&env, "acme", "plan", json!({"goal": "ship"})).await;
        let broken = submit(&env, "acme", "plan", json!({})).await;
        drain_queue(env.velu(), fast_worker("w")).await;

        let j = job(&env, "acme", &probe).await;
        assert_eq!(j["status"], "succeeded", "{j}");
        let r = &j["result"];
        assert_eq!(r["own_ok"], true, "it can use its workspace");
        if velu_core::worker::sandbox::enforced() {
            assert_eq!(r["read_ok"], false, "it cannot read Velu's data directory");
            assert_eq!(r["write_ok"], false, "it cannot write outside its workspace");
            assert_eq!(r["proc_ok"], false, "it cannot read other processes' environments");
            assert!(!outside.exists());
        } else {
            eprintln!("note: this kernel has no Landlock; the filesystem sandbox is not checked");
        }
        let ws = env.home().join("workspaces").join(j["org_id"].as_str().unwrap()).join(&probe);
        assert_eq!(r["cwd"], ws.display().to_string());
        let allowed = ["HOME", "PATH", "PWD", "TMPDIR", "VELU_ATTEMPT", "VELU_JOB_ID", "VELU_ORG_ID", "VELU_TASK", "VELU_WORKSPACE", "VELU_PROGRESS_FILE", "SHLVL", "_"];
        for name in r["env"].as_array().unwrap() {
            assert!(allowed.contains(&name.as_str().unwrap()), "unexpected variable {name}");
        }
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&ws).unwrap().permissions().mode() & 0o777, 0o700);

        let p = job(&env, "acme", &plan).await;
        assert_eq!(p["result"]["goal"], "ship");
        let b = job(&env, "acme", &broken).await;
        assert_eq!(b["status"], "queued", "a failed attempt with attempts left is retried");
        assert_eq!(b["error"]["code"], "exit_status");
        assert!(b["error"]["message"].as_str().unwrap().contains("payload.goal"), "stderr tail in the error");
    }

    async fn a_timeout_kills_the_whole_process_group(env) {
        bootstrap(&env, "acme", "hero").await;
        let id = submit(&env, "acme", "spawner", json!({})).await;
        drain_queue(env.velu(), fast_worker("w")).await;
        let j = job(&env, "acme", &id).await;
        assert_eq!(j["status"], "failed");
        assert_eq!(j["error"]["code"], "timed_out");
        assert_eq!(j["history"][0]["outcome"], "timed_out");
        let pid_file = env.home().join("workspaces").join(j["org_id"].as_str().unwrap()).join(&id).join("grandchild.pid");
        let pid: i32 = std::fs::read_to_string(pid_file).unwrap().trim().parse().unwrap();
        eventually(5, || async move {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let dead = stat.is_empty() || stat.split(") ").nth(1).is_some_and(|s| s.starts_with('Z'));
            dead.then_some(())
        })
        .await;
    }
}

backend_tests! {
    async fn a_worker_killed_with_sigkill_is_replaced(env) {
        bootstrap(&env, "acme", "hero").await;
        let id = submit(&env, "acme", "sleep", json!({"seconds": 3})).await;
        let mut args = env.cli_prefix();
        args.extend(["worker", "--id", "doomed", "--lease", "3s", "--poll", "1s"].map(String::from));
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["support::child_cli_process", "--exact", "--ignored", "--nocapture"])
            .env("VELU_CHILD_CLI_ARGS", serde_json::to_string(&args).unwrap())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        eventually(20, || {
            let env = env.clone();
            let id = id.clone();
            async move {
                let j = job(&env, "acme", &id).await;
                (j["status"] == "running" && j["history"][0]["worker_id"] == "doomed").then_some(())
            }
        })
        .await;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
        child.wait().unwrap();

        let rescuer = spawn_worker(env.velu(), fast_worker("rescuer"));
        let done = wait_status(&env, "acme", &id, "succeeded", 20).await;
        rescuer.stop().await;
        assert_eq!(done["attempts"], 2);
        let h = done["history"].as_array().unwrap();
        assert_eq!((h[0]["worker_id"].as_str(), h[0]["outcome"].as_str()), (Some("doomed"), Some("lost")));
        assert_eq!((h[1]["worker_id"].as_str(), h[1]["outcome"].as_str()), (Some("rescuer"), Some("succeeded")));
    }
}

backend_tests! {
    async fn submit_wait_returns_the_finished_job(env) {
        bootstrap(&env, "acme", "hero").await;
        let w = spawn_worker(env.velu(), fast_worker("w"));
        let done = env.cli_ok(&["job", "submit", "--org", "acme", "--task", "plan", "--payload", r#"{"goal": "launch"}"#, "--wait"]).await;
        w.stop().await;
        assert_eq!(done["status"], "succeeded");
        assert_eq!(done["result"]["goal"], "launch");
        let failed = env.cli(&["job", "submit", "--org", "acme", "--task", "nope", "--wait"]).await;
        assert_eq!(failed.error_code(), "invalid");
    }

    async fn workspaces_follow_the_retention_policy(env) {
        bootstrap(&env, "acme", "superhero").await;
        let kept = submit(&env, "acme", "execute", json!({"note": "keep"})).await;
        drain_queue(env.velu(), fast_worker("w")).await;
        let org = job(&env, "acme", &kept).await["org_id"].as_str().unwrap().to_owned();
        let dir = env.home().join("workspaces").join(&org).join(&kept);
        assert_eq!(std::fs::read_to_string(dir.join("note.txt")).unwrap(), "keep\n", "kept for inspection");
        // Older than the retention: swept.
        assert_eq!(velu_core::worker::workspace::collect_garbage(env.velu(), Duration::ZERO), 1);
        assert!(!dir.exists());
        // Retention 0: removed as soon as the attempt ends.
        let gone = submit(&env, "acme", "execute", json!({"note": "bye"})).await;
        drain_queue(env.velu(), velu_core::worker::WorkerConfig { workspace_retention: Duration::ZERO, ..fast_worker("w") }).await;
        assert_eq!(job(&env, "acme", &gone).await["status"], "succeeded");
        assert!(!env.home().join("workspaces").join(&org).join(&gone).exists());
    }
}

/// On PostgreSQL a worker wakes on NOTIFY, not on its poll: with a one-minute poll, a job
/// submitted by another process still runs at once.
#[test]
#[cfg_attr(
    not(velu_pg),
    ignore = "VELU_TEST_DATABASE_URL was not set when the tests were built"
)]
fn postgres_workers_wake_on_notify() {
    velu_tests::runtime().block_on(velu_tests::on_backend(
        velu_tests::Backend::Postgres,
        |env| async move {
            bootstrap(&env, "acme", "hero").await;
            let node = env
                .another_node(OpenOptions {
                    background: true,
                    ..OpenOptions::default()
                })
                .await;
            let cfg = velu_core::worker::WorkerConfig {
                poll: Duration::from_secs(60),
                ..fast_worker("sleepy")
            };
            let w = spawn_worker(&node, cfg);
            tokio::time::sleep(Duration::from_millis(500)).await;
            let started = std::time::Instant::now();
            let id = submit(&env, "acme", "echo", json!({"x": 1})).await;
            wait_status(&env, "acme", &id, "succeeded", 10).await;
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "woken by NOTIFY, not the 60 s poll"
            );
            w.stop().await;
            node.shutdown().await;
        },
    ));
}
