//! Remote workers over HTTP, tried against a real server on 127.0.0.1: a worker with only
//! a URL and a key drains a queue, leaves the same records as a local one, loses its lease
//! when killed, never writes with a stale token, and an org's worker key never reaches
//! another org's jobs.

use std::path::Path;
use std::time::Duration;

use poem::http::Method;
use poem::listener::{Acceptor, Listener, TcpListener};
use serde_json::{Value, json};
use velu_core::OpenOptions;
use velu_core::worker::{WorkerConfig, WorkerReport};
use velu_tests::{TestEnv, backend_tests};

use crate::support::{bootstrap, drain_queue, eventually, fast_worker, platform_key, submit};

/// A Velu server on a free port of 127.0.0.1, on its own node of the test's database.
struct Server {
    url: String,
    node: velu_core::Velu,
    stop: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(env: &TestEnv) -> Server {
        let node = env
            .another_node(OpenOptions {
                background: true,
                ..OpenOptions::default()
            })
            .await;
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("bind");
        let addr = acceptor.local_addr()[0]
            .as_socket_addr()
            .expect("a TCP address")
            .to_owned();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = velu_http::app(node.clone());
        let handle = tokio::spawn(async move {
            poem::Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(
                    app,
                    async {
                        let _ = stopped.await;
                    },
                    Some(Duration::from_secs(1)),
                )
                .await
                .expect("serve");
        });
        Server {
            url: format!("http://{addr}"),
            node,
            stop,
            handle,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.handle.await;
        self.node.shutdown().await;
    }
}

/// A remote worker running in this process until `stop()` (or idle).
struct RemoteWorker {
    handle: tokio::task::JoinHandle<velu_core::CoreResult<WorkerReport>>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl RemoteWorker {
    fn spawn(url: &str, key: &str, home: &Path, cfg: WorkerConfig) -> RemoteWorker {
        let client = velu_cli::remote::Client::new(url, key, &Default::default()).expect("client");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let home = home.to_owned();
        let handle = tokio::spawn(async move {
            velu_cli::remote::run_worker(client, &home, cfg, async {
                let _ = stopped.await;
            })
            .await
        });
        RemoteWorker { handle, stop }
    }

    async fn stop(self) -> WorkerReport {
        let _ = self.stop.send(());
        self.handle
            .await
            .expect("worker task")
            .expect("worker runs")
    }
}

/// Runs a remote worker until nothing is ready.
async fn drain_remote(url: &str, key: &str, home: &Path, cfg: WorkerConfig) -> WorkerReport {
    let cfg = WorkerConfig {
        exit_when_idle: true,
        ..cfg
    };
    let client = velu_cli::remote::Client::new(url, key, &Default::default()).expect("client");
    velu_cli::remote::run_worker(client, home, cfg, std::future::pending())
        .await
        .expect("remote worker runs")
}

async fn job(env: &TestEnv, org: &str, id: &str) -> Value {
    env.cli_ok(&["job", "show", id, "--org", org]).await
}

async fn wait_status(env: &TestEnv, org: &str, id: &str, status: &str, secs: u64) -> Value {
    eventually(secs, || {
        let (env, org, id, status) = (
            env.clone(),
            org.to_owned(),
            id.to_owned(),
            status.to_owned(),
        );
        async move {
            let j = job(&env, &org, &id).await;
            (j["status"] == status.as_str()).then_some(j)
        }
    })
    .await
}

/// An org key with role `worker`, made by the operator.
async fn org_worker_key(env: &TestEnv, org: &str) -> String {
    let doc = env
        .cli_ok(&[
            "key", "create", "--org", org, "--name", "byo", "--role", "worker",
        ])
        .await;
    assert_eq!(doc["key"]["scopes"], json!(["jobs:work"]), "{doc}");
    doc["token"].as_str().expect("token").to_owned()
}

/// What a job's record says, without what differs between any two runs (ids, times,
/// the worker's name).
fn record(mut j: Value) -> Value {
    let o = j.as_object_mut().expect("a job document");
    for k in [
        "id",
        "created_at",
        "updated_at",
        "started_at",
        "finished_at",
        "run_at",
    ] {
        o.remove(k);
    }
    if let Some(history) = o.get_mut("history").and_then(Value::as_array_mut) {
        for a in history {
            let a = a.as_object_mut().expect("an attempt");
            for k in ["started_at", "finished_at", "worker_id"] {
                a.remove(k);
            }
        }
    }
    j
}

/// Submits one of each kind of outcome; returns the ids.
async fn submit_mix(env: &TestEnv, org: &str, tag: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for (task, payload, attempts) in [
        ("echo", json!({"n": 1, "tag": "same"}), None),
        ("sleep", json!({"seconds": 0.05}), None),
        ("fail", json!({"message": "boom"}), Some("1")),
        ("plan", json!({"goal": "launch"}), None),
    ] {
        let payload = payload.to_string();
        let mut args = vec![
            "job",
            "submit",
            "--org",
            org,
            "--task",
            task,
            "--payload",
            &payload,
        ];
        if let Some(n) = attempts {
            args.extend(["--max-attempts", n]);
        }
        let key = format!("{tag}-{task}");
        args.extend(["--idempotency-key", &key]);
        let doc = env.cli_ok(&args).await;
        ids.push(doc["id"].as_str().expect("id").to_owned());
    }
    ids
}

backend_tests! {
    async fn a_worker_with_only_a_url_and_a_key_drains_the_queue(env) {
        bootstrap(&env, "acme", "hero").await;
        bootstrap(&env, "bolt", "superhero").await;
        let mut ids = Vec::new();
        for i in 0..20 {
            ids.push(("acme", submit(&env, "acme", "echo", json!({"i": i})).await));
            ids.push(("bolt", submit(&env, "bolt", "execute", json!({"note": i})).await));
        }
        let server = Server::start(&env).await;
        let key = platform_key(&env, "fleet", "jobs:work").await;
        let home = env.home().join("remote");
        let report = drain_remote(&server.url, &key, &home, fast_worker("remote-1")).await;
        assert_eq!(report.claimed, 40, "{report:?}");
        assert_eq!((report.succeeded, report.fenced), (40, 0), "{report:?}");
        for (org, id) in &ids {
            let j = job(&env, org, id).await;
            assert_eq!(j["status"], "succeeded", "{j}");
            assert_eq!(j["history"][0]["worker_id"], "remote-1");
        }
        // The command kind ran from the server's catalog, in a workspace on the worker's side.
        assert!(home.join("workspaces").is_dir());
        // The fleet knows it, as a remote worker that stopped.
        let fleet = env.cli_ok(&["worker", "list"]).await;
        let me = fleet["items"].as_array().unwrap().iter().find(|w| w["id"] == "remote-1").cloned();
        assert!(me.is_some(), "{fleet}");
        server.stop().await;
    }

    async fn remote_and_local_workers_leave_the_same_records(env) {
        bootstrap(&env, "acme", "hero").await;
        let server = Server::start(&env).await;
        let key = platform_key(&env, "fleet", "jobs:work").await;
        let local_ids = submit_mix(&env, "acme", "local").await;
        drain_queue(env.velu(), fast_worker("local-1")).await;
        let remote_ids = submit_mix(&env, "acme", "remote").await;
        drain_remote(&server.url, &key, &env.home().join("remote"), fast_worker("remote-1")).await;
        for (l, r) in local_ids.iter().zip(&remote_ids) {
            let (lj, rj) = (job(&env, "acme", l).await, job(&env, "acme", r).await);
            assert_eq!(lj["history"][0]["worker_id"], "local-1");
            assert_eq!(rj["history"][0]["worker_id"], "remote-1");
            let (mut lr, mut rr) = (record(lj), record(rj));
            // Only the idempotency keys differ, by construction.
            lr.as_object_mut().unwrap().remove("idempotency_key");
            rr.as_object_mut().unwrap().remove("idempotency_key");
            assert_eq!(lr, rr, "local and remote records differ");
        }
        server.stop().await;
    }

    async fn a_stale_token_is_refused(env) {
        bootstrap(&env, "acme", "hero").await;
        let id = submit(&env, "acme", "echo", json!({"n": 7})).await;
        let key = platform_key(&env, "fleet", "jobs:work").await;
        // A worker claims with a one-second lease and falls silent.
        let claim = env.http(Method::POST, "/v1/worker/claim", Some(&key),
            Some(json!({"worker_id": "doomed", "max": 1, "lease_ms": 1000}))).await;
        assert_eq!(claim.status, 200, "{}", claim.text);
        assert_eq!(claim.body["lease_ms"], 1000);
        let stale = claim.body["jobs"][0]["token"].as_str().unwrap().to_owned();
        assert_eq!(claim.body["jobs"][0]["id"], id.as_str());
        tokio::time::sleep(Duration::from_millis(1200)).await;
        // Anyone's heartbeat takes back the expired lease; a rescuer finishes the job.
        let beat = env.http(Method::POST, "/v1/worker/heartbeat", Some(&key),
            Some(json!({"worker_id": "rescuer", "tokens": []}))).await;
        assert_eq!(beat.status, 200, "{}", beat.text);
        assert_eq!(job(&env, "acme", &id).await["status"], "queued", "reclaimed");
        let beat = env.http(Method::POST, "/v1/worker/heartbeat", Some(&key),
            Some(json!({"worker_id": "doomed", "tokens": [stale]}))).await;
        assert_eq!(beat.status, 200, "{}", beat.text);
        assert_eq!(beat.body["held"], json!([]), "an expired lease is not renewed");
        let claim = env.http(Method::POST, "/v1/worker/claim", Some(&key),
            Some(json!({"worker_id": "rescuer", "max": 5}))).await;
        let fresh = claim.body["jobs"][0]["token"].as_str().unwrap().to_owned();
        assert_ne!(fresh, stale);
        // The dead owner wakes up: its finish is refused and writes nothing.
        let late = env.http(Method::POST, "/v1/worker/finish", Some(&key),
            Some(json!({"results": [{"id": id, "token": stale, "outcome": "failed", "error": {"code": "task_failed", "message": "late"}}]}))).await;
        assert_eq!(late.status, 200, "{}", late.text);
        assert_eq!(late.body["items"], json!([{"id": id, "state": "lease_lost"}]));
        assert_eq!(job(&env, "acme", &id).await["status"], "running");
        // It waited in the rescuer before a handler took it: the run it reports, not the
        // time since its claim, is the attempt's.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let done = env.http(Method::POST, "/v1/worker/finish", Some(&key),
            Some(json!({"results": [{"id": id, "token": fresh, "outcome": "succeeded", "result": {"n": 7}, "ran_us": 50_000}]}))).await;
        assert_eq!(done.body["items"], json!([{"id": id, "state": "accepted"}]));
        let after = job(&env, "acme", &id).await;
        // A finish sent twice (a lost answer, retried) never writes twice.
        let again = env.http(Method::POST, "/v1/worker/finish", Some(&key),
            Some(json!({"results": [{"id": id, "token": fresh, "outcome": "failed"}]}))).await;
        assert_eq!(again.body["items"][0]["state"], "lease_lost");
        let h = after["history"].as_array().unwrap();
        assert_eq!((h[0]["worker_id"].as_str(), h[0]["outcome"].as_str()), (Some("doomed"), Some("lost")));
        assert_eq!((h[1]["worker_id"].as_str(), h[1]["outcome"].as_str()), (Some("rescuer"), Some("succeeded")));
        assert_eq!(after["result"], json!({"n": 7}));
        let time = |f: &str| chrono::DateTime::parse_from_rfc3339(h[1][f].as_str().unwrap()).unwrap();
        let took = (time("finished_at") - time("started_at")).num_milliseconds();
        assert!((took - 50).abs() <= 1, "{took} ms: {after}");
        assert_eq!(job(&env, "acme", &id).await, after, "refused writes changed nothing");
        // A stale token neither renews nor hands back anything.
        let beat = env.http(Method::POST, "/v1/worker/heartbeat", Some(&key),
            Some(json!({"worker_id": "rescuer", "tokens": [fresh]}))).await;
        assert_eq!(beat.body["held"], json!([]));
        let rel = env.http(Method::POST, "/v1/worker/release", Some(&key),
            Some(json!({"worker_id": "doomed", "tokens": [stale]}))).await;
        assert_eq!(rel.body["released"], json!([]));
    }

    async fn an_org_worker_cannot_shorten_its_own_orgs_bill(env) {
        bootstrap(&env, "alpha", "hero").await;
        bootstrap(&env, "beta", "hero").await;
        let own = org_worker_key(&env, "alpha").await;
        let platform = platform_key(&env, "fleet", "jobs:work").await;
        let mine = submit(&env, "alpha", "echo", json!({})).await;
        let theirs = submit(&env, "beta", "echo", json!({})).await;
        let mut held = Vec::new();
        for (key, worker, id) in [(&own, "byo", &mine), (&platform, "fleet", &theirs)] {
            let claim = env.http(Method::POST, "/v1/worker/claim", Some(key),
                Some(json!({"worker_id": worker, "max": 1}))).await;
            assert_eq!(claim.status, 200, "{}", claim.text);
            assert_eq!(claim.body["jobs"][0]["id"], id.as_str(), "{}", claim.text);
            held.push((key, id, claim.body["jobs"][0]["token"].as_str().unwrap().to_owned()));
        }
        // Both run 300 ms and both report a run of one millisecond.
        tokio::time::sleep(Duration::from_millis(300)).await;
        for (key, id, token) in &held {
            let done = env.http(Method::POST, "/v1/worker/finish", Some(key),
                Some(json!({"results": [{"id": id, "token": token, "outcome": "succeeded", "ran_us": 1_000}]}))).await;
            assert_eq!(done.body["items"], json!([{"id": id, "state": "accepted"}]), "{}", done.text);
        }
        let ran_ms = |j: &Value| {
            let t = |f: &str| chrono::DateTime::parse_from_rfc3339(j["history"][0][f].as_str().unwrap()).unwrap();
            (t("finished_at") - t("started_at")).num_milliseconds()
        };
        let billed = |org: &'static str| {
            let env = &env;
            async move {
                let day = |d: i64| (chrono::Utc::now().date_naive() + chrono::Duration::days(d)).to_string();
                let r = env.cli_ok(&["usage", "--org", org, "--from", &day(-1), "--to", &day(1)]).await;
                r["totals"]["run_seconds"].as_f64().unwrap()
            }
        };
        // The org's own worker would set its own bill: its attempt runs from its claim.
        let a = job(&env, "alpha", &mine).await;
        assert!(ran_ms(&a) >= 300, "{a}");
        assert!(billed("alpha").await >= 0.3, "alpha billed {}", billed("alpha").await);
        // The platform's worker is the platform's: its measured run is the attempt's.
        let b = job(&env, "beta", &theirs).await;
        assert!((ran_ms(&b) - 1).abs() <= 1, "{b}");
        assert!(billed("beta").await < 0.01, "beta billed {}", billed("beta").await);
    }

    async fn a_killed_remote_worker_loses_its_lease(env) {
        bootstrap(&env, "acme", "hero").await;
        let id = submit(&env, "acme", "sleep", json!({"seconds": 3})).await;
        let server = Server::start(&env).await;
        let key = platform_key(&env, "fleet", "jobs:work").await;
        // A separate process with only a URL and a key: no database flags, no tasks file.
        let home = env.home().join("doomed");
        let args: Vec<String> = ["velu-cli", "--home", home.to_str().unwrap(), "worker", "--server", &server.url,
            "--id", "doomed", "--lease", "3s", "--poll", "1s"].map(String::from).to_vec();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["support::child_cli_process", "--exact", "--ignored", "--nocapture"])
            .env("VELU_CHILD_CLI_ARGS", serde_json::to_string(&args).unwrap())
            .env("VELU_API_KEY", &key)
            .env_remove("VELU_DATABASE_URL")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        eventually(30, || {
            let (env, id) = (env.clone(), id.clone());
            async move {
                let j = job(&env, "acme", &id).await;
                (j["status"] == "running" && j["history"][0]["worker_id"] == "doomed").then_some(())
            }
        })
        .await;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
        child.wait().unwrap();

        let rescuer = RemoteWorker::spawn(&server.url, &key, &env.home().join("rescuer"), fast_worker("rescuer"));
        let done = wait_status(&env, "acme", &id, "succeeded", 30).await;
        rescuer.stop().await;
        assert_eq!(done["attempts"], 2);
        let h = done["history"].as_array().unwrap();
        assert_eq!((h[0]["worker_id"].as_str(), h[0]["outcome"].as_str()), (Some("doomed"), Some("lost")));
        assert_eq!(h[0]["error"]["code"], "lease_expired");
        assert_eq!((h[1]["worker_id"].as_str(), h[1]["outcome"].as_str()), (Some("rescuer"), Some("succeeded")));
        server.stop().await;
    }

    async fn a_remote_worker_hands_its_jobs_back_at_shutdown(env) {
        bootstrap(&env, "acme", "hero").await;
        let id = submit(&env, "acme", "sleep", json!({"seconds": 30})).await;
        let server = Server::start(&env).await;
        let key = platform_key(&env, "fleet", "jobs:work").await;
        let cfg = WorkerConfig { grace: Duration::from_millis(200), ..fast_worker("polite") };
        let w = RemoteWorker::spawn(&server.url, &key, &env.home().join("polite"), cfg);
        wait_status(&env, "acme", &id, "running", 20).await;
        let report = w.stop().await;
        assert_eq!(report.released, 1, "{report:?}");
        let j = job(&env, "acme", &id).await;
        assert_eq!(j["status"], "queued");
        assert_eq!(j["history"][0]["error"]["code"], "worker_shutdown");
        server.stop().await;
    }

    async fn an_org_worker_key_serves_only_its_own_org(env) {
        let a = bootstrap(&env, "alpha", "hero").await;
        bootstrap(&env, "beta", "superhero").await;
        let a_key = org_worker_key(&env, "alpha").await;
        let platform = platform_key(&env, "fleet", "jobs:work").await;
        let a_job = submit(&env, "alpha", "echo", json!({"org": "alpha"})).await;
        let b_job = submit(&env, "beta", "echo", json!({"org": "beta"})).await;
        let b_exec = submit(&env, "beta", "execute", json!({})).await;

        // Its catalog is its plan's: no superhero kind, and nothing of beta's.
        let tasks = env.http(Method::GET, "/v1/worker/tasks", Some(&a_key), None).await;
        assert_eq!(tasks.status, 200, "{}", tasks.text);
        let names: Vec<&str> = tasks.body["items"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"echo") && names.contains(&"plan") && !names.contains(&"execute"), "{names:?}");
        let all = env.http(Method::GET, "/v1/worker/tasks", Some(&platform), None).await;
        assert!(all.text.contains("\"execute\""), "a platform key sees every kind");

        // It claims alpha's job only, even asking for everything and for beta's kinds.
        let claim = env.http(Method::POST, "/v1/worker/claim", Some(&a_key),
            Some(json!({"worker_id": "byo", "max": 10, "kinds": ["echo", "execute"]}))).await;
        assert_eq!(claim.status, 200, "{}", claim.text);
        let jobs = claim.body["jobs"].as_array().unwrap();
        assert_eq!(jobs.len(), 1, "{}", claim.text);
        assert_eq!((jobs[0]["id"].as_str(), jobs[0]["org_id"].as_str()), (Some(a_job.as_str()), Some(a.org_id.as_str())));
        let again = env.http(Method::POST, "/v1/worker/claim", Some(&a_key),
            Some(json!({"worker_id": "byo", "max": 10, "wait_ms": 300}))).await;
        assert_eq!(again.body["jobs"], json!([]), "beta's jobs are never alpha's to claim");

        // Beta's job, claimed by the platform: alpha's key cannot touch it, even with the token.
        let pc = env.http(Method::POST, "/v1/worker/claim", Some(&platform),
            Some(json!({"worker_id": "platform", "max": 10, "kinds": ["echo"], "lease_ms": 1500}))).await;
        let b_token = pc.body["jobs"].as_array().unwrap().iter()
            .find(|j| j["id"] == b_job.as_str()).unwrap()["token"].as_str().unwrap().to_owned();
        let before = job(&env, "beta", &b_job).await;
        let fin = env.http(Method::POST, "/v1/worker/finish", Some(&a_key),
            Some(json!({"results": [{"id": b_job, "token": b_token, "outcome": "succeeded", "result": {"stolen": true}}]}))).await;
        assert_eq!(fin.body["items"], json!([{"id": b_job, "state": "lease_lost"}]), "{}", fin.text);
        let beat = env.http(Method::POST, "/v1/worker/heartbeat", Some(&a_key),
            Some(json!({"worker_id": "platform", "tokens": [b_token], "lease_ms": 3600000}))).await;
        assert_eq!(beat.body["held"], json!([]), "{}", beat.text);
        let rel = env.http(Method::POST, "/v1/worker/release", Some(&a_key),
            Some(json!({"worker_id": "platform", "tokens": [b_token]}))).await;
        assert_eq!(rel.body["released"], json!([]), "{}", rel.text);
        let after = job(&env, "beta", &b_job).await;
        assert_eq!(after, before, "nothing of beta's changed");
        // Alpha's hour-long renewal did not hold beta's lease: it expires as claimed.
        tokio::time::sleep(Duration::from_millis(1700)).await;
        env.http(Method::POST, "/v1/worker/heartbeat", Some(&platform),
            Some(json!({"worker_id": "other", "tokens": []}))).await;
        let lost = job(&env, "beta", &b_job).await;
        assert_eq!(lost["status"], "queued", "{lost}");
        assert_eq!(lost["history"][0]["outcome"], "lost");
        assert_eq!(job(&env, "beta", &b_exec).await["status"], "queued");

        // Its registration belongs to alpha, never to the platform or beta; the platform's
        // worker of the same id is the platform's own, and alpha's is untouched by it.
        let reg = env.http(Method::POST, "/v1/worker/register", Some(&a_key),
            Some(json!({"worker_id": "byo", "host": "h", "version": "1", "kinds": ["echo"], "concurrency": 2, "heartbeat_secs": 10}))).await;
        assert_eq!((reg.status, reg.body["org_id"].as_str()), (200, Some(a.org_id.as_str())), "{}", reg.text);
        let own = env.http(Method::POST, "/v1/worker/register", Some(&platform),
            Some(json!({"worker_id": "byo", "host": "p", "version": "1", "kinds": [], "concurrency": 1, "heartbeat_secs": 10}))).await;
        assert_eq!((own.status, own.body["org_id"].clone()), (200, Value::Null), "{}", own.text);
        let listed = env.http(Method::GET, "/v1/workers", Some(&a.viewer), None).await;
        let byo: Vec<&Value> = listed.body["items"].as_array().unwrap().iter().filter(|w| w["id"] == "byo").collect();
        assert_eq!(byo.len(), 1, "{}", listed.text);
        assert_eq!((byo[0]["host"].as_str(), byo[0]["concurrency"].as_u64()), (Some("h"), Some(2)), "{}", listed.text);
    }

    async fn only_worker_keys_reach_the_worker_routes(env) {
        let a = bootstrap(&env, "alpha", "hero").await;
        let id = submit(&env, "alpha", "echo", json!({})).await;
        let orgs_only = platform_key(&env, "orgs", "admin:orgs:manage,jobs:read,jobs:submit").await;
        let routes: [(Method, &str, Option<Value>); 7] = [
            (Method::GET, "/v1/worker/tasks", None),
            (Method::POST, "/v1/worker/register", Some(json!({"worker_id": "x", "host": "h", "version": "1", "kinds": [], "concurrency": 1, "heartbeat_secs": 10}))),
            (Method::POST, "/v1/worker/claim", Some(json!({"worker_id": "x", "max": 5}))),
            (Method::POST, "/v1/worker/heartbeat", Some(json!({"worker_id": "x", "tokens": []}))),
            (Method::POST, "/v1/worker/finish", Some(json!({"results": [{"id": id, "token": "t", "outcome": "succeeded"}]}))),
            (Method::POST, "/v1/worker/release", Some(json!({"worker_id": "x", "tokens": ["t"]}))),
            (Method::POST, "/v1/worker/stopped", Some(json!({"worker_id": "x"}))),
        ];
        for (method, path, body) in routes {
            for (who, key) in [("viewer", &a.viewer), ("builder", &a.builder), ("admin", &a.admin), ("platform without jobs:work", &orgs_only)] {
                let r = env.http(method.clone(), path, Some(key), body.clone()).await;
                assert_eq!((r.status, r.problem_code()), (403, "forbidden".to_owned()), "{who}: {method} {path}: {}", r.text);
                assert!(r.text.contains("jobs:work"), "{}", r.text);
            }
            let r = env.http(method.clone(), path, None, body.clone()).await;
            assert_eq!(r.status, 401, "no key: {method} {path}");
        }
        assert_eq!(job(&env, "alpha", &id).await["status"], "queued", "nothing was claimed");
        // A worker key is no key manager, no job reader, no submitter.
        let w = org_worker_key(&env, "alpha").await;
        for (method, path, body) in [
            (Method::GET, "/v1/orgs/alpha/keys", None),
            (Method::POST, "/v1/orgs/alpha/keys", Some(json!({"name": "w2", "role": "worker"}))),
            (Method::GET, "/v1/orgs/alpha/jobs", None),
            (Method::POST, "/v1/orgs/alpha/jobs", Some(json!({"task": "echo"}))),
        ] {
            let r = env.http(method.clone(), path, Some(&w), body).await;
            assert_eq!(r.problem_code(), "forbidden", "worker key: {method} {path}");
        }
        // An org admin (no jobs:work) cannot mint a worker key; bootstrap never makes one.
        let r = env.http(Method::POST, "/v1/orgs/alpha/keys", Some(&a.admin), Some(json!({"name": "w3", "role": "worker"}))).await;
        assert_eq!(r.problem_code(), "forbidden", "{}", r.text);
        assert!(a.doc["keys"].get("worker").is_none());
    }

    async fn worker_inputs_are_bounded(env) {
        bootstrap(&env, "acme", "hero").await;
        let id = submit(&env, "acme", "echo", json!({})).await;
        let key = platform_key(&env, "fleet", "jobs:work").await;
        let post = |path: &'static str, body: Value| {
            let (env, key) = (env.clone(), key.clone());
            async move { env.http(Method::POST, path, Some(&key), Some(body)).await }
        };
        let many: Vec<String> = (0..1025).map(|i| format!("t{i}")).collect();
        for (path, body) in [
            ("/v1/worker/claim", json!({"worker_id": "w", "max": 0})),
            ("/v1/worker/claim", json!({"worker_id": "w", "max": 257})),
            ("/v1/worker/claim", json!({"worker_id": "w", "max": 1, "wait_ms": 30001})),
            ("/v1/worker/claim", json!({"worker_id": "w", "max": 1, "lease_ms": 999})),
            ("/v1/worker/claim", json!({"worker_id": "w", "max": 1, "lease_ms": 3600001})),
            ("/v1/worker/claim", json!({"worker_id": "w\u{0}", "max": 1})),
            ("/v1/worker/claim", json!({"worker_id": "", "max": 1})),
            ("/v1/worker/claim", json!({"worker_id": "x".repeat(201), "max": 1})),
            ("/v1/worker/claim", json!({"worker_id": "w", "max": 1, "org_id": "someone"})),
            ("/v1/worker/claim", json!({"worker_id": "w", "max": 1, "kinds": ["echo\u{0}"]})),
            ("/v1/worker/claim", json!({"worker_id": "w", "max": 1, "kinds": ["echo", "Echo"]})),
            ("/v1/worker/claim", json!({"worker_id": "w", "max": 1, "kinds": ["e".repeat(65)]})),
            ("/v1/worker/heartbeat", json!({"worker_id": "w", "tokens": many})),
            ("/v1/worker/release", json!({"worker_id": "w", "tokens": many})),
            ("/v1/worker/finish", json!({"results": []})),
            ("/v1/worker/finish", json!({"results": [{"id": id, "token": "t", "outcome": "lost"}]})),
            ("/v1/worker/finish", json!({"results": [{"id": id, "token": "t", "outcome": "succeeded", "status": "succeeded"}]})),
            ("/v1/worker/finish", json!({"results": [{"id": id, "token": "t", "outcome": "succeeded"}, {"id": id, "token": "t", "outcome": "failed"}]})),
            ("/v1/worker/finish", json!({"results": [{"id": id, "token": "t", "outcome": "failed", "result": {}}]})),
            ("/v1/worker/finish", json!({"results": [{"id": id, "token": "t", "outcome": "succeeded", "ran_us": -1}]})),
            ("/v1/worker/finish", json!({"results": [{"id": id, "token": "t", "outcome": "succeeded", "ran_us": 315_360_000_000_001_u64}]})),
            ("/v1/worker/finish", json!({"results": [{"id": id, "token": "t", "outcome": "succeeded", "ran_us": "5"}]})),
            ("/v1/worker/finish", json!({"results": [{"id": id, "token": "t", "outcome": "failed", "error": {"code": "x\u{0}", "message": "m"}}]})),
        ] {
            let r = post(path, body.clone()).await;
            assert_eq!((r.status, r.problem_code()), (400, "invalid".to_owned()), "{path} {body}: {}", r.text);
        }
        let results: Vec<Value> = (0..513).map(|i| json!({"id": format!("j{i}"), "token": "t", "outcome": "succeeded"})).collect();
        let r = post("/v1/worker/finish", json!({"results": results})).await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(job(&env, "acme", &id).await["status"], "queued", "no refused claim took the job");

        // `cancelled` only after a cancel was asked.
        let claim = post("/v1/worker/claim", json!({"worker_id": "w", "max": 1})).await;
        let token = claim.body["jobs"][0]["token"].as_str().unwrap().to_owned();
        let r = post("/v1/worker/finish", json!({"results": [{"id": id, "token": token, "outcome": "cancelled"}]})).await;
        assert_eq!(r.problem_code(), "invalid", "{}", r.text);
        assert_eq!(job(&env, "acme", &id).await["status"], "running");
        env.cli_ok(&["job", "cancel", &id, "--org", "acme"]).await;
        let beat = post("/v1/worker/heartbeat", json!({"worker_id": "w", "tokens": [token]})).await;
        assert_eq!(beat.body["held"], json!([{"id": id, "cancel_requested": true}]));
        let r = post("/v1/worker/finish", json!({"results": [{"id": id, "token": token, "outcome": "cancelled"}]})).await;
        assert_eq!(r.body["items"][0]["state"], "accepted", "{}", r.text);
        assert_eq!(job(&env, "acme", &id).await["status"], "cancelled");

        // At most 8 waiting claims per key; the ninth is told to come back.
        let waiting: Vec<_> = (0..8)
            .map(|i| tokio::spawn(post("/v1/worker/claim", json!({"worker_id": format!("w{i}"), "max": 1, "wait_ms": 2000}))))
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let ninth = post("/v1/worker/claim", json!({"worker_id": "w9", "max": 1, "wait_ms": 2000})).await;
        assert_eq!(ninth.status, 429, "{}", ninth.text);
        for w in waiting {
            assert_eq!(w.await.unwrap().status, 200);
        }
        let after = post("/v1/worker/claim", json!({"worker_id": "w9", "max": 1, "wait_ms": 10})).await;
        assert_eq!(after.status, 200, "slots are given back: {}", after.text);
    }

    async fn a_long_poll_returns_as_soon_as_a_job_is_ready(env) {
        bootstrap(&env, "acme", "hero").await;
        let server = Server::start(&env).await;
        let key = platform_key(&env, "fleet", "jobs:work").await;
        let client = velu_cli::remote::Client::new(&server.url, &key, &Default::default()).unwrap();
        let started = std::time::Instant::now();
        let waiting = tokio::spawn(async move {
            let input = velu_core::worker::protocol::ClaimInput {
                worker_id: "poller".into(), max: 5, wait_ms: 20_000, kinds: None, lease_ms: None,
            };
            client.post::<_, velu_core::worker::protocol::Claimed>("/v1/worker/claim", &input, Duration::from_secs(20)).await
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        let id = submit(&env, "acme", "echo", json!({})).await;
        let claimed = waiting.await.unwrap().expect("claim");
        assert_eq!(claimed.jobs.len(), 1);
        assert_eq!(claimed.jobs[0].id, id);
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
        server.stop().await;
    }
}
