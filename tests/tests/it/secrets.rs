//! Org secrets: a planted value reaches the job whose kind names it and appears nowhere
//! else (every table, every document, every output); other orgs, lesser keys and odd
//! input are refused; a row copied across orgs does not open; a wrong or missing key fails
//! closed; `secret rekey` moves every value; a remote worker gets secrets only for a live
//! lease it holds.

use base64::Engine;
use poem::http::Method;
use serde_json::{Value, json};
use velu_core::secrets::{self, Kek};
use velu_core::settings::Settings;
use velu_core::tasks::TaskCatalog;
use velu_core::{OpenOptions, Principal, Velu};
use velu_tests::{Backend, TestEnv, backend_tests, workspace_root};

use crate::support::{bootstrap, drain_queue, exec, fast_worker};

/// A value nobody could find by chance, with a non-ASCII character.
fn planted() -> String {
    format!("pl4nted-{}-é", uuid::Uuid::now_v7().simple())
}

/// The forms a leak could take: the text, hex, base64 (standard and URL-safe).
fn forms(value: &str) -> Vec<String> {
    let b = value.as_bytes();
    vec![
        value.to_owned(),
        b.iter().map(|x| format!("{x:02x}")).collect(),
        base64::engine::general_purpose::STANDARD.encode(b),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b),
    ]
}

/// SHA-256 of `value` in hex, by `sha256sum` (what the fixture script uses).
fn sha256_hex(value: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(value.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// Every byte the database holds, as text: on SQLite the files themselves (the WAL
/// too), on PostgreSQL every row of every table cast to text (bytea as hex).
async fn database_text(env: &TestEnv) -> String {
    use velu_core::sea_orm::{ConnectionTrait, Statement};
    match env.backend() {
        Backend::Sqlite => {
            let mut all = String::new();
            for file in ["velu.db", "velu.db-wal", "velu.db-shm"] {
                if let Ok(bytes) = std::fs::read(env.home().join(file)) {
                    all.push_str(&String::from_utf8_lossy(&bytes));
                    // Hex of the raw bytes too, so a BLOB holding the value in clear shows.
                    all.extend(bytes.iter().map(|x| format!("{x:02x}")));
                }
            }
            assert!(all.len() > 1000, "the database files were read");
            all
        }
        Backend::Postgres => {
            let conn = env.velu().db().conn();
            let backend = conn.get_database_backend();
            let tables = conn
                .query_all_raw(Statement::from_string(
                    backend,
                    "SELECT table_name::text AS t FROM information_schema.tables \
                     WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
                ))
                .await
                .unwrap();
            assert!(tables.len() >= 8, "every table was listed");
            let mut all = String::new();
            for row in tables {
                let table: String = row.try_get("", "t").unwrap();
                let rows = conn
                    .query_all_raw(Statement::from_string(
                        backend,
                        format!("SELECT x::text AS r FROM \"{table}\" x"),
                    ))
                    .await
                    .unwrap();
                for r in rows {
                    let text: String = r.try_get("", "r").unwrap();
                    all.push_str(&text);
                    all.push('\n');
                }
            }
            assert!(all.contains("org_secrets") || all.contains("DEPLOY_TOKEN"));
            all
        }
    }
}

fn assert_absent(haystack: &str, value: &str, place: &str) {
    for form in forms(value) {
        assert!(
            !haystack.contains(&form),
            "the planted value (as `{form}`) leaked into {place}"
        );
    }
}

/// A `Velu` on this world's database with its own secrets key settings.
async fn node_with(env: &TestEnv, settings: Settings) -> Velu {
    let _ = env;
    let tasks = velu_core::config::load_tasks_file(
        &workspace_root().join("tests/fixtures/tasks.yaml"),
        velu_http::flags::yaml_tasks,
    )
    .unwrap_or_else(|_| TaskCatalog::builtin());
    Velu::open(settings, tasks, OpenOptions::default())
        .await
        .expect("open a second node")
}

/// One request to the HTTP app of `node` (not the world's own), as `key`: status and body.
async fn http_on(node: &Velu, method: Method, path: &str, key: &str, body: Value) -> (u16, Value) {
    use poem::{Endpoint, IntoResponse};
    let req = poem::Request::builder()
        .method(method)
        .uri(path.parse().expect("uri"))
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(body.to_string());
    let resp = match velu_http::app(node.clone()).call(req).await {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    };
    let status = resp.status().as_u16();
    let text = resp.into_body().into_string().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A 0600 key file of 32 bytes of `byte` in `env`'s home.
fn key_file(env: &TestEnv, name: &str, byte: u8) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = env.home().join(name);
    std::fs::write(
        &path,
        base64::engine::general_purpose::STANDARD.encode([byte; 32]),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

async fn job(env: &TestEnv, org: &str, id: &str) -> Value {
    env.cli_ok(&["job", "show", id, "--org", org]).await
}

backend_tests! {
    async fn a_planted_secret_reaches_the_job_that_names_it_and_nowhere_else(env) {
        let alpha = bootstrap(&env, "alpha", "hero").await;
        let beta = bootstrap(&env, "beta", "hero").await;
        let value = planted();
        let mut seen = String::new();

        // Set over HTTP (the org's admin), then again from a file with the CLI.
        let r = env.http(Method::PUT, "/v1/orgs/alpha/secrets/DEPLOY_TOKEN", Some(&alpha.admin), Some(json!({"value": value}))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["version"], 1);
        assert_eq!(r.body.as_object().unwrap().len(), 4, "name, version and dates only: {}", r.text);
        seen.push_str(&r.text);
        let file = env.home().join("value.txt");
        std::fs::write(&file, &value).unwrap();
        let run = env.cli(&["secret", "set", "DEPLOY_TOKEN", "--org", "alpha", "--from-file", file.to_str().unwrap()]).await;
        assert_eq!(run.yaml()["version"], 2);
        seen.push_str(&run.stdout);
        seen.push_str(&run.stderr);
        std::fs::remove_file(&file).unwrap();
        // Reads show names, versions and dates.
        let listed = env.cli(&["secret", "list", "--org", "alpha", "-o", "json"]).await;
        assert_eq!(listed.yaml()["items"][0]["name"], "DEPLOY_TOKEN");
        seen.push_str(&listed.stdout);
        let r = env.http(Method::GET, "/v1/orgs/alpha/secrets", Some(&alpha.admin), None).await;
        assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
        seen.push_str(&r.text);

        // The job of a kind that names it receives it (it prints only its hash).
        let r = env.http(Method::POST, "/v1/orgs/alpha/jobs", Some(&alpha.builder), Some(json!({"task": "secret-user"}))).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let good = r.body["id"].as_str().unwrap().to_owned();
        // Beta never set it: its job fails with a clear job error, the worker goes on.
        let r = env.http(Method::POST, "/v1/orgs/beta/jobs", Some(&beta.builder), Some(json!({"task": "secret-user"}))).await;
        let missing = r.body["id"].as_str().unwrap().to_owned();
        let report = drain_queue(env.velu(), fast_worker("secrets-w")).await;
        seen.push_str(&format!("{report:?}"));
        let done = job(&env, "alpha", &good).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        assert_eq!(done["result"]["sha256"], sha256_hex(&value));
        assert_eq!(done["result"]["bytes"], value.len());
        let failed = job(&env, "beta", &missing).await;
        assert_eq!(failed["status"], "failed", "{failed}");
        assert_eq!(failed["error"]["code"], "secret_unavailable");
        let message = failed["error_message"].as_str().unwrap_or_default().to_owned()
            + failed["error"].to_string().as_str();
        assert!(message.contains("DEPLOY_TOKEN"), "the error names the secret: {failed}");
        seen.push_str(&done.to_string());
        seen.push_str(&failed.to_string());
        let r = env.http(Method::GET, &format!("/v1/orgs/alpha/jobs/{good}"), Some(&alpha.builder), None).await;
        seen.push_str(&r.text);

        // Audited with name and version only.
        let r = env.http(Method::GET, "/v1/orgs/alpha/audit", Some(&alpha.admin), None).await;
        let sets: Vec<_> = r.body["items"].as_array().unwrap().iter().filter(|e| e["action"] == "secret.set").collect();
        assert_eq!(sets.len(), 2, "{}", r.text);
        assert_eq!(sets[0]["details"], json!({"name": "DEPLOY_TOKEN", "version": 2}));
        seen.push_str(&r.text);
        let deleted = env.cli(&["secret", "delete", "DEPLOY_TOKEN", "--org", "alpha"]).await;
        seen.push_str(&deleted.stdout);
        seen.push_str(&deleted.stderr);

        assert_absent(&seen, &value, "a document or an output");
        assert_absent(&database_text(&env).await, &value, "the database");
    }

    async fn other_orgs_lesser_keys_and_odd_input_are_refused(env) {
        let alpha = bootstrap(&env, "alpha", "hero").await;
        let beta = bootstrap(&env, "beta", "hero").await;
        let put = |key: String, path: &'static str, body: Value| {
            let env = env.clone();
            async move { env.http(Method::PUT, path, Some(&key), Some(body)).await }
        };
        let r = put(alpha.admin.clone(), "/v1/orgs/alpha/secrets/TOKEN", json!({"value": "v"})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        // Another org's admin: exactly like a missing org.
        let r = put(beta.admin.clone(), "/v1/orgs/alpha/secrets/TOKEN", json!({"value": "x"})).await;
        assert_eq!((r.status, r.problem_code().as_str()), (404, "not_found"), "{}", r.text);
        for (method, path) in [(Method::GET, "/v1/orgs/alpha/secrets"), (Method::DELETE, "/v1/orgs/alpha/secrets/TOKEN")] {
            let r = env.http(method, path, Some(&beta.admin), None).await;
            assert_eq!(r.status, 404, "{path}: {}", r.text);
        }
        // Viewer and builder keys of the org itself.
        for key in [&alpha.viewer, &alpha.builder] {
            let r = env.http(Method::GET, "/v1/orgs/alpha/secrets", Some(key), None).await;
            assert_eq!(r.status, 403, "{}", r.text);
            assert_eq!(r.body["scope"], "admin:secrets:manage");
            let r = put(key.clone(), "/v1/orgs/alpha/secrets/TOKEN", json!({"value": "x"})).await;
            assert_eq!(r.status, 403, "{}", r.text);
        }
        // A key manager without the scope cannot mint a key holding it.
        let manager = env.cli_ok(&["key", "create", "--org", "alpha", "--name", "mgr", "--scopes", "admin:api_keys:manage,jobs:read"]).await;
        let manager = manager["token"].as_str().unwrap().to_owned();
        let r = env.http(Method::POST, "/v1/orgs/alpha/keys", Some(&manager), Some(json!({"name": "sneaky", "scopes": ["admin:secrets:manage"]}))).await;
        assert_eq!(r.status, 403, "{}", r.text);
        // Odd names: NUL, non-ASCII, lower case, too long, reserved.
        for name in ["TO%00KEN", "T%C3%89", "token", &"A".repeat(65), "VELU_X", "PATH", "LD_PRELOAD"] {
            let r = env.http(Method::PUT, &format!("/v1/orgs/alpha/secrets/{name}"), Some(&alpha.admin), Some(json!({"value": "x"}))).await;
            assert_eq!(r.status, 400, "{name}: {}", r.text);
        }
        // Odd values: NUL, empty, huge; unknown fields.
        let r = put(alpha.admin.clone(), "/v1/orgs/alpha/secrets/TOKEN", json!({"value": "a\u{0}b"})).await;
        assert_eq!(r.status, 400, "{}", r.text);
        let r = put(alpha.admin.clone(), "/v1/orgs/alpha/secrets/TOKEN", json!({"value": ""})).await;
        assert_eq!(r.status, 400, "{}", r.text);
        let huge = "é".repeat(40_000);
        let r = put(alpha.admin.clone(), "/v1/orgs/alpha/secrets/TOKEN", json!({"value": huge})).await;
        assert_eq!(r.status, 413, "{}", r.text);
        assert!(!r.text.contains("éé"));
        let r = put(alpha.admin.clone(), "/v1/orgs/alpha/secrets/TOKEN", json!({"value": "x", "org_id": beta.org_id})).await;
        assert_eq!(r.status, 400, "{}", r.text);
        let big = env.home().join("big");
        std::fs::write(&big, vec![b'x'; 64 * 1024 + 1]).unwrap();
        let run = env.cli(&["secret", "set", "TOKEN", "--org", "alpha", "--from-file", big.to_str().unwrap()]).await;
        assert_eq!(run.error_code(), "payload_too_large");
        // No --value flag: a value never travels in argv.
        let run = env.cli(&["secret", "set", "TOKEN", "--org", "alpha", "--value", "x"]).await;
        assert_ne!(run.code, 0);
        // --print-http would print the value: refused.
        let run = env.cli(&["--print-http", "secret", "set", "TOKEN", "--org", "alpha", "--from-file", big.to_str().unwrap()]).await;
        assert_eq!(run.error_code(), "invalid");
        // Still version 1 after every refusal; deleting twice is not_found the second time.
        let r = env.http(Method::GET, "/v1/orgs/alpha/secrets", Some(&alpha.admin), None).await;
        assert_eq!(r.body["items"][0]["version"], 1, "{}", r.text);
        let r = env.http(Method::DELETE, "/v1/orgs/alpha/secrets/TOKEN", Some(&alpha.admin), None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = env.http(Method::DELETE, "/v1/orgs/alpha/secrets/TOKEN", Some(&alpha.admin), None).await;
        assert_eq!(r.status, 404, "{}", r.text);
    }

    async fn concurrent_sets_leave_one_row_with_a_version_per_set(env) {
        let alpha = bootstrap(&env, "alpha", "hero").await;
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (env, key) = (env.clone(), alpha.admin.clone());
            tasks.push(tokio::spawn(async move {
                env.http(Method::PUT, "/v1/orgs/alpha/secrets/RACE", Some(&key), Some(json!({"value": format!("v{i}")}))).await.status
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), 200);
        }
        let r = env.http(Method::GET, "/v1/orgs/alpha/secrets", Some(&alpha.admin), None).await;
        assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
        assert_eq!(r.body["items"][0]["version"], 8, "{}", r.text);
        let env_of = secrets::secrets_for_org(env.velu(), &alpha.org_id, &["RACE".to_owned()]).await.unwrap();
        assert!(env_of.iter().all(|(_, v)| v.starts_with('v')));
    }

    async fn a_row_copied_across_orgs_or_names_does_not_open_and_a_wrong_key_fails_closed(env) {
        let alpha = bootstrap(&env, "alpha", "hero").await;
        let beta = bootstrap(&env, "beta", "hero").await;
        let value = planted();
        let file = env.home().join("v");
        std::fs::write(&file, &value).unwrap();
        for (org, name) in [("alpha", "DEPLOY_TOKEN"), ("beta", "DEPLOY_TOKEN"), ("alpha", "OTHER")] {
            env.cli_ok(&["secret", "set", name, "--org", org, "--from-file", file.to_str().unwrap()]).await;
        }
        // Alpha's sealed value pasted into beta's row, and into alpha's OTHER.
        for (org, name) in [(&beta.org_id, "DEPLOY_TOKEN"), (&alpha.org_id, "OTHER")] {
            exec(env.velu(), &format!(
                "UPDATE org_secrets SET nonce = (SELECT nonce FROM org_secrets WHERE org_id = '{a}' AND name = 'DEPLOY_TOKEN'), \
                 ciphertext = (SELECT ciphertext FROM org_secrets WHERE org_id = '{a}' AND name = 'DEPLOY_TOKEN') \
                 WHERE org_id = '{org}' AND name = '{name}'", a = alpha.org_id)).await;
        }
        let err = secrets::secrets_for_org(env.velu(), &beta.org_id, &["DEPLOY_TOKEN".to_owned()]).await.unwrap_err();
        assert_eq!(err.code(), "internal");
        assert_absent(&err.to_string(), &value, "an error");
        let err = secrets::secrets_for_org(env.velu(), &alpha.org_id, &["OTHER".to_owned()]).await.unwrap_err();
        assert_eq!(err.code(), "internal");
        let ok = secrets::secrets_for_org(env.velu(), &alpha.org_id, &["DEPLOY_TOKEN".to_owned()]).await.unwrap();
        assert_eq!(ok.iter().next().unwrap().1, value);
        // Beta's job fails with a clear job error, not the worker.
        let r = env.http(Method::POST, "/v1/orgs/beta/jobs", Some(&beta.builder), Some(json!({"task": "secret-user"}))).await;
        let id = r.body["id"].as_str().unwrap().to_owned();
        drain_queue(env.velu(), fast_worker("copy-w")).await;
        let failed = job(&env, "beta", &id).await;
        assert_eq!(failed["error"]["code"], "secret_unavailable", "{failed}");
        assert_absent(&failed.to_string(), &value, "the job document");

        // A process with another key: `config`, naming both key ids, never a value.
        let other = key_file(&env, "other.key", 0x42);
        let wrong = node_with(&env, env.settings().with_secrets_key(None, Some(other.clone()))).await;
        let err = secrets::secrets_for_org(&wrong, &alpha.org_id, &["DEPLOY_TOKEN".to_owned()]).await.unwrap_err();
        assert_eq!(err.code(), "config");
        assert!(err.to_string().contains("rekey"), "{err}");
        // A job that process runs fails; its readers, the org's, learn that the server's
        // key is at fault, not the key ids or the files the operator's log names.
        let r = env.http(Method::POST, "/v1/orgs/alpha/jobs", Some(&alpha.builder), Some(json!({"task": "secret-user"}))).await;
        let id = r.body["id"].as_str().unwrap().to_owned();
        drain_queue(&wrong, fast_worker("wrong-key-w")).await;
        let failed = job(&env, "alpha", &id).await;
        assert_eq!(failed["error"]["code"], "secret_unavailable", "{failed}");
        let text = failed.to_string();
        assert!(text.contains("`config`"), "{failed}");
        let right = Kek::from_file(&env.home().join("secrets.key")).unwrap();
        for internal in [Kek::from_file(&other).unwrap().id().to_owned(), right.id().to_owned(), "other.key".to_owned()] {
            assert!(!text.contains(&internal), "{internal} in {failed}");
        }
        // No usable key: every operation that needs one fails closed.
        let loose = key_file(&env, "loose.key", 0x43);
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        for settings in [
            env.settings().with_secrets_key(None, Some(env.home().join("absent.key"))),
            env.settings().with_secrets_key(None, Some(loose)),
            env.settings().with_secrets_key(Some("too-short".into()), None),
        ] {
            let node = node_with(&env, settings).await;
            let who = Principal::operator();
            let org = velu_core::orgs::OrgRef::new("alpha");
            let err = secrets::set_secret(&node, &who, &org, "NEW", b"v").await.unwrap_err();
            assert_eq!(err.code(), "config", "{err}");
            // Over HTTP, the org's admin learns that the server is at fault, and nothing of
            // its files: the operator's text (which names them) stays in the server's log.
            let (status, body) = http_on(&node, Method::PUT, "/v1/orgs/alpha/secrets/NEW", &alpha.admin, json!({"value": "v"})).await;
            assert_eq!((status, body["code"].as_str()), (500, Some("config")), "{body}");
            assert_ne!(body["detail"].as_str(), Some(err.to_string().as_str()), "the operator's text stays on the server");
            let home = env.home().display().to_string();
            for internal in [home.as_str(), "absent.key", "loose.key", "too-short", "secrets-key", "VELU_"] {
                assert!(!body.to_string().contains(internal), "{internal} in {body}");
            }
            let err = secrets::secrets_for_org(&node, &alpha.org_id, &["DEPLOY_TOKEN".to_owned()]).await.unwrap_err();
            assert_eq!(err.code(), "config");
            node.shutdown().await;
        }
        wrong.shutdown().await;
    }

    async fn rekey_moves_every_value_to_the_new_key(env) {
        let alpha = bootstrap(&env, "alpha", "hero").await;
        let beta = bootstrap(&env, "beta", "hero").await;
        let file = env.home().join("v");
        for (org, value) in [("alpha", "alpha-value"), ("beta", "beta-välue")] {
            std::fs::write(&file, value).unwrap();
            env.cli_ok(&["secret", "set", "DEPLOY_TOKEN", "--org", org, "--from-file", file.to_str().unwrap()]).await;
        }
        let new = key_file(&env, "new.key", 0x17);
        // Not over HTTP, not for an API key, not to the same key.
        let run = env.cli(&["--server", "http://127.0.0.1:9", "secret", "rekey", "--new-key-file", new.to_str().unwrap()]).await;
        assert_eq!(run.error_code(), "invalid");
        let mut key_principal = Principal::operator();
        key_principal.actor.kind = velu_core::ActorType::ApiKey;
        let err = secrets::rekey_secrets(env.velu(), &key_principal, &Kek::from_file(&new).unwrap()).await.unwrap_err();
        assert_eq!(err.code(), "forbidden");
        let same = env.cli(&["secret", "rekey", "--new-key-file", env.home().join("secrets.key").to_str().unwrap()]).await;
        assert_eq!(same.error_code(), "invalid");

        let report = env.cli_ok(&["secret", "rekey", "--new-key-file", new.to_str().unwrap()]).await;
        assert_eq!(report["rekeyed"], 2, "{report}");
        assert_eq!(report["to_key_id"], Kek::from_file(&new).unwrap().id());
        // Run again (interrupted run): nothing left under the old key.
        let again = env.cli_ok(&["secret", "rekey", "--new-key-file", new.to_str().unwrap()]).await;
        assert_eq!((again["rekeyed"].clone(), again["already"].clone()), (json!(0), json!(2)), "{again}");
        // The old key no longer opens them; the new key does, with the same values.
        let names = ["DEPLOY_TOKEN".to_owned()];
        assert_eq!(secrets::secrets_for_org(env.velu(), &alpha.org_id, &names).await.unwrap_err().code(), "config");
        let node = node_with(&env, env.settings().with_secrets_key(None, Some(new))).await;
        for (org, value) in [(&alpha.org_id, "alpha-value"), (&beta.org_id, "beta-välue")] {
            let got = secrets::secrets_for_org(&node, org, &names).await.unwrap();
            assert_eq!(got.iter().next().unwrap().1, value);
        }
        node.shutdown().await;
    }

    async fn a_remote_worker_gets_secrets_only_for_a_live_lease_it_holds(env) {
        let alpha = bootstrap(&env, "alpha", "hero").await;
        let beta = bootstrap(&env, "beta", "hero").await;
        let value = planted();
        let r = env.http(Method::PUT, "/v1/orgs/alpha/secrets/DEPLOY_TOKEN", Some(&alpha.admin), Some(json!({"value": value}))).await;
        assert_eq!(r.status, 200);
        let worker_key = |org: &'static str| {
            let env = env.clone();
            async move {
                env.cli_ok(&["key", "create", "--org", org, "--name", "w", "--role", "worker"]).await["token"].as_str().unwrap().to_owned()
            }
        };
        let (wa, wb) = (worker_key("alpha").await, worker_key("beta").await);
        let r = env.http(Method::POST, "/v1/orgs/alpha/jobs", Some(&alpha.builder), Some(json!({"task": "secret-user"}))).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let r = env.http(Method::POST, "/v1/worker/claim", Some(&wa), Some(json!({"worker_id": "w1", "max": 1, "kinds": ["secret-user"]}))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let leased = &r.body["jobs"][0];
        let (job_id, token) = (leased["id"].as_str().unwrap(), leased["token"].as_str().unwrap());
        assert_absent(&r.text, &value, "the claim answer");
        let ask = |key: String, worker: &'static str, job: String, token: String| {
            let env = env.clone();
            async move {
                env.http(Method::POST, "/v1/worker/secrets", Some(&key), Some(json!({"worker_id": worker, "job_id": job, "token": token}))).await
            }
        };
        let r = ask(wa.clone(), "w1", job_id.into(), token.into()).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["secrets"], json!([{"name": "DEPLOY_TOKEN", "value": value}]));
        // Wrong token, another worker id, another org's worker key, a builder key.
        for (key, worker, tok) in [
            (wa.clone(), "w1", "not-the-token".to_owned()),
            (wa.clone(), "w2", token.to_owned()),
            (wb.clone(), "w1", token.to_owned()),
        ] {
            let r = ask(key, worker, job_id.into(), tok).await;
            assert_eq!(r.status, 404, "{}", r.text);
            assert_absent(&r.text, &value, "a refusal");
        }
        let r = ask(alpha.builder.clone(), "w1", job_id.into(), token.into()).await;
        assert_eq!(r.status, 403, "{}", r.text);
        // Once the lease has ended, the token opens nothing.
        let r = env.http(Method::POST, "/v1/worker/release", Some(&wa), Some(json!({"worker_id": "w1", "tokens": [token]}))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = ask(wa.clone(), "w1", job_id.into(), token.into()).await;
        assert_eq!(r.status, 404, "{}", r.text);
        let _ = beta;
    }
}
