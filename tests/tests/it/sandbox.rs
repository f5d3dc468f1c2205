//! The job sandbox under attack: processes that try to outlive their job, links planted
//! for the worker to follow, output the database refuses, descriptors and files a job must
//! not reach.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use velu_tests::{Backend, TestEnv, backend_tests, on_backend, runtime};

use crate::support::{bootstrap, drain_queue, eventually, fast_worker, spawn_worker, submit};

async fn job(env: &TestEnv, id: &str) -> Value {
    env.cli_ok(&["job", "show", id, "--org", "acme"]).await
}

/// Waits until the job is in one of `statuses` and returns it.
async fn wait_for(env: &TestEnv, id: &str, statuses: &[&str], secs: u64) -> Value {
    eventually(secs, || {
        let (env, id) = (env.clone(), id.to_owned());
        let statuses: Vec<String> = statuses.iter().map(|s| (*s).to_owned()).collect();
        async move {
            let j = job(&env, &id).await;
            statuses
                .iter()
                .any(|s| j["status"] == s.as_str())
                .then_some(j)
        }
    })
    .await
}

fn workspace(env: &TestEnv, org_id: &str, id: &str) -> PathBuf {
    env.home().join("workspaces").join(org_id).join(id)
}

/// The pids the `escaper` probe wrote (its `setsid` child and its daemon), once both exist.
async fn escaped_pids(ws: PathBuf) -> Vec<i32> {
    eventually(10, || {
        let ws = ws.clone();
        async move {
            let read = |name: &str| {
                std::fs::read_to_string(ws.join(name))
                    .ok()
                    .and_then(|t| t.trim().parse::<i32>().ok())
            };
            Some(vec![read("setsid.pid")?, read("daemon.pid")?])
        }
    })
    .await
}

/// Waits (up to 5 s) until none of `pids` runs (gone, or a zombie nobody reaped yet).
async fn all_gone(pids: &[i32], case: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let alive: Vec<i32> = pids
            .iter()
            .copied()
            .filter(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                !stat.is_empty()
                    && !stat
                        .rsplit_once(") ")
                        .is_some_and(|(_, s)| s.starts_with('Z'))
            })
            .collect();
        if alive.is_empty() {
            return;
        }
        if std::time::Instant::now() > deadline {
            for pid in &alive {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(*pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            panic!("{case}: processes {alive:?} outlived their job");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `setsid` children and double-forked daemons end with their job: after a normal exit,
/// a timeout and a cancel.
#[test]
fn every_process_of_a_job_ends_with_it() {
    runtime().block_on(on_backend(Backend::Sqlite, |env| async move {
        let boot = bootstrap(&env, "acme", "hero").await;
        let w = spawn_worker(env.velu(), fast_worker("w"));

        let exits = submit(&env, "acme", "escaper", json!({"then": "exit"})).await;
        let pids = escaped_pids(workspace(&env, &boot.org_id, &exits)).await;
        let j = wait_for(&env, &exits, &["succeeded", "failed"], 10).await;
        assert_eq!(j["status"], "succeeded", "{j}");
        all_gone(&pids, "after a normal exit").await;

        let hangs = submit(&env, "acme", "escaper", json!({"then": "hang"})).await;
        let pids = escaped_pids(workspace(&env, &boot.org_id, &hangs)).await;
        let j = wait_for(&env, &hangs, &["succeeded", "failed"], 10).await;
        assert_eq!(j["error"]["code"], "timed_out", "{j}");
        all_gone(&pids, "after a timeout").await;

        let cancelled = submit(&env, "acme", "escaper-slow", json!({"then": "hang"})).await;
        let pids = escaped_pids(workspace(&env, &boot.org_id, &cancelled)).await;
        env.cli_ok(&["job", "cancel", &cancelled, "--org", "acme"])
            .await;
        let j = wait_for(&env, &cancelled, &["cancelled", "succeeded", "failed"], 10).await;
        assert_eq!(j["status"], "cancelled", "{j}");
        all_gone(&pids, "after a cancel").await;

        w.stop().await;
    }));
}

backend_tests! {
    /// A job plants links to outside paths and fails; preparing its retry and removing its
    /// workspace never act on their targets.
    async fn planted_links_are_never_followed(env) {
        use std::os::unix::fs::PermissionsExt;
        let boot = bootstrap(&env, "acme", "hero").await;
        let outside = env.home().join("outside");
        std::fs::create_dir_all(outside.join("dir")).unwrap();
        let file = outside.join("passwd");
        std::fs::write(&file, "root:x:0:0\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(outside.join("dir").join("keep.txt"), "keep").unwrap();

        let id = submit(&env, "acme", "planter", json!({"file": file, "dir": outside.join("dir")})).await;
        let w = spawn_worker(env.velu(), fast_worker("w"));
        let j = wait_for(&env, &id, &["failed", "succeeded"], 20).await;
        w.stop().await;
        assert_eq!(j["attempts"], 2, "the job was retried: {j}");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "preparing the retry changed a file outside the workspace");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "root:x:0:0\n");
        let message = j["error"]["message"].as_str().unwrap();
        assert!(message.contains("attempt 2 (tmp was a dir)"), "the retry got a real tmp: {j}");

        let ws = workspace(&env, &boot.org_id, &id);
        assert!(std::fs::symlink_metadata(ws.join("tmp")).unwrap().is_symlink(), "the last plant is there to clean");
        assert_eq!(velu_core::worker::workspace::collect_garbage(env.velu(), Duration::ZERO), 1);
        assert!(!ws.exists());
        assert_eq!(std::fs::read_to_string(outside.join("dir").join("keep.txt")).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "root:x:0:0\n");
    }

    /// Output holding U+0000 (which PostgreSQL's jsonb refuses) is stored with U+FFFD, and
    /// the jobs finishing alongside it are recorded.
    async fn nul_in_job_output_is_stored_safely(env) {
        bootstrap(&env, "acme", "hero").await;
        let json_out = submit(&env, "acme", "nul", json!({"mode": "json"})).await;
        let raw_out = submit(&env, "acme", "nul", json!({"mode": "raw"})).await;
        let stderr = submit(&env, "acme", "nul", json!({"mode": "fail"})).await;
        let mut others = Vec::new();
        for n in 0..6 {
            others.push((n, submit(&env, "acme", "echo", json!({"n": n})).await));
        }
        let w = spawn_worker(env.velu(), velu_core::worker::WorkerConfig { concurrency: 8, ..fast_worker("w") });
        let mut done = Vec::new();
        for id in [&json_out, &raw_out, &stderr] {
            done.push(wait_for(&env, id, &["succeeded", "failed"], 30).await);
        }
        for (n, id) in &others {
            let j = wait_for(&env, id, &["succeeded", "failed"], 30).await;
            assert_eq!(j["result"], json!({"n": n}), "{j}");
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), w.stop()).await;

        let r = &done[0]["result"];
        assert_eq!(r["text"], "a\u{FFFD}b", "{r}");
        assert_eq!(r["k\u{FFFD}"], 1, "{r}");
        assert_eq!(done[1]["result"]["output"], "raw\u{FFFD}text\n");
        assert_eq!(done[2]["status"], "failed");
        assert_eq!(done[2]["error"]["code"], "exit_status");
        assert!(done[2]["error"]["message"].as_str().unwrap().contains("bad\u{FFFD}byte"), "{}", done[2]);
        assert_eq!(done[2]["history"][0]["error"], done[2]["error"]);
        for j in &done {
            assert!(!j.to_string().contains("\\u0000"), "a NUL was stored: {j}");
        }
    }
}

/// A descriptor the worker holds without close-on-exec does not reach the job.
#[test]
fn inherited_descriptors_are_closed() {
    runtime().block_on(on_backend(Backend::Sqlite, |env| async move {
        use std::os::fd::AsRawFd;
        bootstrap(&env, "acme", "hero").await;
        let file = std::fs::File::open(env.home()).unwrap();
        // SAFETY: duplicates a descriptor this test owns; F_DUPFD leaves close-on-exec off.
        let leaked = unsafe { nix::libc::fcntl(file.as_raw_fd(), nix::libc::F_DUPFD, 20) };
        assert!(leaked >= 20, "dup failed");
        let id = submit(&env, "acme", "fds", json!({})).await;
        drain_queue(env.velu(), fast_worker("w")).await;
        // SAFETY: closes the duplicate made above.
        unsafe { nix::libc::close(leaked) };
        let j = job(&env, &id).await;
        assert_eq!(j["status"], "succeeded", "{j}");
        let open: Vec<i64> = j["result"]["open"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        if leaked <= 64 {
            assert!(
                !open.contains(&i64::from(leaked)),
                "the worker's descriptor {leaked} reached the job: {open:?}"
            );
        }
        assert!(
            open.is_empty(),
            "descriptors beyond stderr reached the job: {open:?}"
        );
    }));
}

/// The Landlock sandbox: no `/etc/shadow`, no data directory, no `/proc`, no writes
/// outside the workspace; the example scripts still run.
#[test]
fn jobs_cannot_read_secrets_or_write_outside() {
    runtime().block_on(on_backend(Backend::Sqlite, |env| async move {
        bootstrap(&env, "acme", "superhero").await;
        std::fs::write(env.home().join("secret.txt"), "s3cret").unwrap();
        let outside = env.home().join("escaped.txt");
        let probe = submit(
            &env,
            "acme",
            "probe",
            json!({"read": env.home().join("secret.txt"), "write": outside}),
        )
        .await;
        let plan = submit(&env, "acme", "plan", json!({"goal": "ship"})).await;
        let chat = submit(&env, "acme", "assistant-chat", json!({"message": "hello"})).await;
        let exec = submit(&env, "acme", "execute", json!({"note": "n"})).await;
        drain_queue(env.velu(), fast_worker("w")).await;

        let j = job(&env, &probe).await;
        assert_eq!(j["status"], "succeeded", "{j}");
        let r = &j["result"];
        assert_eq!(r["own_ok"], true, "it can use its workspace");
        if velu_core::worker::sandbox::enforced() {
            assert_eq!(r["shadow_ok"], false, "it cannot read /etc/shadow");
            assert_eq!(r["read_ok"], false, "it cannot read Velu's data directory");
            assert_eq!(r["proc_ok"], false, "it cannot read /proc");
            assert_eq!(
                r["write_ok"], false,
                "it cannot write outside its workspace"
            );
            assert!(!outside.exists());
        } else {
            eprintln!("note: this kernel has no Landlock; the filesystem sandbox is not checked");
        }
        for id in [&plan, &chat, &exec] {
            let j = job(&env, id).await;
            assert_eq!(
                j["status"], "succeeded",
                "the example scripts run in the sandbox: {j}"
            );
        }
    }));
}
