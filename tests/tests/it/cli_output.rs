//! The CLI's output for scripts and people: `-q`, `--field`, `-o table`, YAML that YAML 1.1
//! readers read back as the JSON document, and `job submit --wait` endings.

use serde_json::Value;
use velu_tests::backend_tests;

use crate::support::{bootstrap, fast_worker, spawn_worker, submit};

backend_tests! {
    async fn quiet_and_field_print_bare_values_scripts_can_use(env) {
        bootstrap(&env, "acme", "hero").await;
        let a = submit(&env, "acme", "echo", serde_json::json!({"n": 1})).await;
        let b = submit(&env, "acme", "echo", serde_json::json!({"n": 2})).await;
        let ids = env.cli(&["job", "list", "--org", "acme", "-q"]).await;
        assert_eq!(ids.code, 0, "{}", ids.stderr);
        let mut listed: Vec<&str> = ids.stdout.lines().collect();
        listed.sort_unstable();
        let mut want = vec![a.as_str(), b.as_str()];
        want.sort_unstable();
        assert_eq!(listed, want);

        let made = env.cli(&["key", "create", "--org", "acme", "--name", "ci", "--role", "builder", "-q"]).await;
        let kid = made.stdout.trim();
        assert!(!kid.is_empty(), "{}", made.stderr);
        assert_eq!(made.stdout.lines().count(), 1, "{}", made.stdout);
        let shown = env.cli(&["key", "show", kid, "--org", "acme", "--field", "name"]).await;
        assert_eq!(shown.stdout, "ci\n", "{}", shown.stderr);

        let status = env.cli(&["job", "show", &a, "--org", "acme", "--field", "status"]).await;
        assert_eq!(status.stdout, "queued\n", "{}", status.stderr);
        // A nested value prints as a document; a missing step is `invalid`, naming what exists.
        let payload = env.cli(&["job", "show", &a, "--org", "acme", "--field", "payload", "-o", "json"]).await;
        assert_eq!(serde_json::from_str::<Value>(&payload.stdout).unwrap(), serde_json::json!({"n": 1}));
        let bad = env.cli(&["job", "show", &a, "--org", "acme", "--field", "nope"]).await;
        assert_eq!(bad.error_code(), "invalid");
        assert!(bad.stderr.contains("status"), "{}", bad.stderr);
        let both = env.cli(&["job", "list", "--org", "acme", "-q", "--field", "items"]).await;
        assert_eq!(both.code, 2, "-q and --field conflict: {}", both.stderr);
    }

    async fn tables_are_for_people_and_yaml_reads_back_everywhere(env) {
        bootstrap(&env, "acme", "hero").await;
        let id = submit(&env, "acme", "echo", serde_json::json!({"day": "2026-12-01", "ok": "yes"})).await;
        let table = env.cli(&["job", "list", "--org", "acme", "-o", "table"]).await;
        let first = table.stdout.lines().next().unwrap_or_default();
        assert!(first.starts_with("ID ") && first.contains("STATUS"), "{}", table.stdout);
        assert!(table.stdout.contains(&id), "{}", table.stdout);

        let yaml = env.cli(&["job", "show", &id, "--org", "acme"]).await;
        let json = env.cli(&["job", "show", &id, "--org", "acme", "-o", "json"]).await;
        // Timestamps and YAML 1.1 booleans are quoted, so no reader retypes them.
        assert!(yaml.stdout.contains("created_at: '"), "{}", yaml.stdout);
        assert!(yaml.stdout.contains("day: '2026-12-01'"), "{}", yaml.stdout);
        assert!(yaml.stdout.contains("ok: 'yes'"), "{}", yaml.stdout);
        assert_eq!(yaml.yaml(), serde_json::from_str::<Value>(&json.stdout).unwrap());
    }

    async fn wait_prints_the_job_and_exits_with_how_it_ended(env) {
        bootstrap(&env, "acme", "hero").await;
        // No worker: the wait gives up, prints the job as it is, exits 23.
        let gave_up = env
            .cli(&["job", "submit", "--org", "acme", "--task", "echo", "--wait", "--timeout", "1s"])
            .await;
        assert_eq!(gave_up.code, 23, "{}", gave_up.stderr);
        let doc: Value = serde_yaml::from_str(&gave_up.stdout).unwrap();
        assert_eq!(doc["status"], "queued");

        let worker = spawn_worker(env.velu(), fast_worker("w-wait"));
        let failed = env
            .cli(&["job", "submit", "--org", "acme", "--task", "fail", "--max-attempts", "1", "--wait"])
            .await;
        assert_eq!(failed.code, 20, "{}", failed.stderr);
        assert_eq!(serde_yaml::from_str::<Value>(&failed.stdout).unwrap()["status"], "failed");
        let ok = env
            .cli(&["job", "submit", "--org", "acme", "--task", "echo", "--wait", "--timeout", "60s"])
            .await;
        assert_eq!(ok.code, 0, "{}", ok.stderr);
        assert_eq!(serde_yaml::from_str::<Value>(&ok.stdout).unwrap()["status"], "succeeded");
        worker.stop().await;
        let no_wait = env.cli(&["job", "submit", "--org", "acme", "--task", "echo", "--timeout", "1s"]).await;
        assert_eq!(no_wait.code, 2, "--timeout needs --wait: {}", no_wait.stderr);
    }
}

/// `velu-cli <args>` in a child process with `envs` set: its exit status and stderr.
/// Awaited, so that this process's runtime goes on serving the child's requests.
async fn cli_in_child(args: &[&str], envs: &[(&str, &str)]) -> (i32, String) {
    let mut all = vec!["velu-cli"];
    all.extend_from_slice(args);
    let out = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "support::child_cli_process",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env("VELU_CHILD_CLI_ARGS", serde_json::to_string(&all).unwrap())
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .envs(envs.iter().copied())
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A key file for remote mode, in the world's home.
fn key_file(env: &velu_tests::TestEnv, name: &str, key: &str) -> String {
    let path = env.home().join(format!("{name}.key"));
    std::fs::write(&path, format!("{key}\n")).unwrap();
    path.display().to_string()
}

backend_tests! {
    async fn remote_mode_maps_problems_to_the_same_errors_and_refuses_what_is_local(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        bootstrap(&env, "other", "hero").await;
        let server = env.serve_tcp().await;
        let admin = key_file(&env, "admin", &acme.admin);
        let remote = |args: &[&str]| {
            let mut all = vec!["--server", server.url.as_str(), "--key-file", admin.as_str()];
            all.extend_from_slice(args);
            all.into_iter().map(str::to_owned).collect::<Vec<_>>()
        };
        let run = |args: Vec<String>| {
            let env = env.clone();
            async move {
                let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                env.cli(&refs).await
            }
        };
        // Another org is not_found, exactly as locally for a missing org.
        let other = run(remote(&["job", "list", "--org", "other"])).await;
        assert_eq!(other.error_code(), "not_found");
        assert_eq!(other.code, 3);
        // The admin key may not make orgs: forbidden, exit 7.
        let create = run(remote(&["org", "create", "--name", "X", "--slug", "xx"])).await;
        assert_eq!(create.error_code(), "forbidden");
        assert_eq!(create.code, 7);
        // Operator-only commands say they need local mode.
        for local in [
            vec!["migrate", "status"],
            vec!["key", "list", "--platform"],
            vec!["org", "bootstrap", "--name", "Y", "--slug", "yy", "--env-file", "y.env"],
        ] {
            let out = run(remote(&local)).await;
            assert_eq!(out.error_code(), "invalid", "{local:?}");
            assert!(out.stderr.contains("local mode"), "{local:?}: {}", out.stderr);
        }
        // `--all` follows every page; the documents equal the local ones.
        for n in 0..5 {
            submit(&env, "acme", "echo", serde_json::json!({"n": n})).await;
        }
        let paged = run(remote(&["job", "list", "--org", "acme", "--limit", "2", "--all", "-o", "json"])).await;
        let local = env.cli(&["job", "list", "--org", "acme", "--limit", "2", "--all", "-o", "json"]).await;
        assert_eq!(paged.code, 0, "{}", paged.stderr);
        assert_eq!(paged.stdout, local.stdout);
        assert_eq!(serde_json::from_str::<Value>(&paged.stdout).unwrap()["items"].as_array().unwrap().len(), 5);
        // No key, a wrong key, no server.
        let keyless = env.cli(&["--server", &server.url, "--key-file", "/nonexistent/key", "plan", "list"]).await;
        assert_eq!(keyless.error_code(), "config");
        let wrong = key_file(&env, "wrong", "vk_nope");
        let refused = env.cli(&["--server", &server.url, "--key-file", &wrong, "whoami"]).await;
        assert_eq!(refused.error_code(), "unauthorized");
        let gone = env.cli(&["--server", "http://127.0.0.1:9", "--key-file", &admin, "plan", "list"]).await;
        assert_eq!(gone.error_code(), "unavailable");
        assert!(gone.stderr.contains("cannot reach"), "{}", gone.stderr);
        // Plain http to another machine would send the key in clear: refused before
        // anything is sent, unless the operator allows it (0.0.0.0 is no loopback name,
        // yet reaches this machine's closed port 9 at once).
        let clear = env.cli(&["--server", "http://0.0.0.0:9", "--key-file", &admin, "plan", "list"]).await;
        assert_eq!(clear.error_code(), "invalid", "{}", clear.stderr);
        assert!(clear.stderr.contains("--allow-http"), "{}", clear.stderr);
        let allowed = env.cli(&["--server", "http://0.0.0.0:9", "--allow-http", "--key-file", &admin, "plan", "list"]).await;
        assert_eq!(allowed.error_code(), "unavailable", "{}", allowed.stderr);
        // A proxy from the environment would carry the key off this machine in clear:
        // plain http to this machine never goes through one (here a closed port, which
        // would make the call fail).
        let proxies = [("HTTP_PROXY", "http://127.0.0.1:9"), ("http_proxy", "http://127.0.0.1:9"), ("ALL_PROXY", "http://127.0.0.1:9")];
        for server in [server.url.clone(), server.url.replace("127.0.0.1", "localhost")] {
            let (code, stderr) = cli_in_child(&["--server", &server, "--key-file", &admin, "plan", "list"], &proxies).await;
            assert_eq!(code, 0, "{server}: {stderr}");
        }
        // A CA file without a certificate: remote mode does not run on less trust.
        let junk = key_file(&env, "junk-ca", "not a certificate");
        let untrusting = env.cli(&["--server", &server.url, "--ca-file", &junk, "--key-file", &admin, "plan", "list"]).await;
        assert_eq!(untrusting.error_code(), "config", "{}", untrusting.stderr);
        // Ids that would change the route are refused before anything is sent.
        let dots = run(remote(&["job", "show", "..", "--org", "acme"])).await;
        assert_eq!(dots.error_code(), "invalid");
        server.stop().await;
    }

    async fn print_http_prints_a_curl_line_that_does_the_same(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        let server = env.serve_tcp().await;
        let line = env
            .cli(&["--print-http", "job", "submit", "--org", "acme", "--task", "echo", "--payload", r#"{"quote": "it's"}"#])
            .await;
        assert_eq!(line.code, 0, "{}", line.stderr);
        assert!(line.stdout.starts_with("curl "), "{}", line.stdout);
        assert!(line.stdout.contains("$VELU_API_KEY") && !line.stdout.contains(&acme.builder));
        // Nothing was sent.
        let before = env.cli_ok(&["job", "list", "--org", "acme"]).await;
        assert_eq!(before["items"].as_array().unwrap().len(), 0);
        // Async: the server runs on this test's runtime.
        let ran = tokio::process::Command::new("bash")
            .args(["-c", &line.stdout])
            .env("VELU_API_KEY", &acme.builder)
            .env("VELU_SERVER", &server.url)
            .output()
            .await
            .unwrap();
        assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
        let made: Value = serde_json::from_slice(&ran.stdout).unwrap();
        assert_eq!(made["payload"]["quote"], "it's");
        let shown = env.cli_ok(&["job", "show", made["id"].as_str().unwrap(), "--org", "acme"]).await;
        assert_eq!(shown["actor_type"], "api_key");
        // A read: the curl line's document equals the CLI's own.
        let list = env.cli(&["--print-http", "job", "list", "--org", "acme"]).await;
        let listed = tokio::process::Command::new("bash")
            .args(["-c", &list.stdout])
            .env("VELU_API_KEY", &acme.viewer)
            .env("VELU_SERVER", &server.url)
            .output()
            .await
            .unwrap();
        let curl_doc: Value = serde_json::from_slice(&listed.stdout).unwrap();
        assert_eq!(curl_doc, env.cli_ok(&["job", "list", "--org", "acme"]).await);
        server.stop().await;
    }

    async fn remote_wait_follows_the_job_on_the_server(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        let server = env.serve_tcp().await;
        let builder = key_file(&env, "builder", &acme.builder);
        let worker = spawn_worker(env.velu(), fast_worker("w-remote-wait"));
        let done = env
            .cli(&["--server", &server.url, "--key-file", &builder, "job", "submit", "--org", "acme",
                   "--task", "fail", "--max-attempts", "1", "--wait", "--timeout", "60s"])
            .await;
        assert_eq!(done.code, 20, "{}", done.stderr);
        assert_eq!(serde_yaml::from_str::<Value>(&done.stdout).unwrap()["status"], "failed");
        worker.stop().await;
        server.stop().await;
    }
}

backend_tests! {
    async fn contexts_supply_defaults_that_flags_override(env) {
        bootstrap(&env, "acme", "hero").await;
        bootstrap(&env, "other", "hero").await;
        let id = submit(&env, "acme", "echo", serde_json::json!({})).await;
        // No org anywhere: a clear error, not a guess.
        let nothing = env.cli(&["job", "list"]).await;
        assert_eq!(nothing.code, 2, "{}", nothing.stderr);
        let no_owner = env.cli(&["key", "list"]).await;
        assert_eq!(no_owner.error_code(), "invalid");
        // A context with a default org; the first context becomes the current one.
        let made = env.cli_ok(&["context", "set", "work", "--to-org", "acme"]).await;
        assert_eq!(made["current"], true);
        assert_eq!(made["org"], "acme");
        assert!(made.get("home").is_none(), "only what was given is set: {made}");
        let listed = env.cli(&["job", "list", "-q"]).await;
        assert_eq!(listed.stdout.trim(), id, "{}", listed.stderr);
        assert_eq!(env.cli(&["key", "list", "-q"]).await.stdout.lines().count(), 3);
        // A flag wins over the context.
        let other = env.cli_ok(&["job", "list", "--org", "other"]).await;
        assert_eq!(other["items"].as_array().unwrap().len(), 0);
        // Another context, chosen per command or made current.
        env.cli_ok(&["context", "set", "elsewhere", "--to-org", "other"]).await;
        let picked = env.cli_ok(&["--context", "elsewhere", "job", "list"]).await;
        assert_eq!(picked["items"].as_array().unwrap().len(), 0);
        env.cli_ok(&["context", "use", "elsewhere"]).await;
        assert_eq!(env.cli_ok(&["context", "show"]).await["name"], "elsewhere");
        assert_eq!(env.cli(&["--context", "nope", "plan", "list"]).await.error_code(), "not_found");
        // Odd names and values are refused; server and database together make no sense.
        assert_eq!(env.cli(&["context", "set", "a/b", "--to-org", "x"]).await.error_code(), "invalid");
        assert_eq!(env.cli(&["context", "set", "x", "--to-org", "a\u{7}b"]).await.error_code(), "invalid");
        let both = env
            .cli(&["context", "set", "y", "--to-server", "http://h", "--to-database-url", "postgres://h/d"])
            .await;
        assert_eq!(both.error_code(), "invalid");
        // The file is private, and deleting the current context leaves none current.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.home().join("config.yaml")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        env.cli_ok(&["context", "delete", "elsewhere"]).await;
        let left = env.cli_ok(&["context", "list"]).await;
        assert_eq!(left["current"], Value::Null);
        assert_eq!(left["items"].as_array().unwrap().len(), 1);
        // A broken file is a config error naming it.
        std::fs::write(env.home().join("config.yaml"), "contexts: [").unwrap();
        let broken = env.cli(&["plan", "list"]).await;
        assert_eq!(broken.error_code(), "config");
        assert!(broken.stderr.contains("config.yaml"), "{}", broken.stderr);
    }
}
