//! Pausing and resuming the queue, tried as an operator and as an attacker would: a
//! paused org's jobs wait while others run, a paused kind waits everywhere, running jobs
//! finish, the pause holds inside the claim itself, rights and tenancy, audit once per
//! change, odd reasons, and admin keys made before the scope existed.

use std::time::Duration;

use poem::http::Method;
use serde_json::{Value, json};
use velu_core::Principal;
use velu_core::orgs::OrgRef;
use velu_core::pause::{self, PauseInput};
use velu_core::plans::Plan;
use velu_core::queue::{self, ReadyOrg};
use velu_tests::{TestEnv, backend_tests};

use crate::support::{
    bootstrap, drain_queue, eventually, fast_worker, platform_key, scalar, spawn_worker, submit,
};

async fn status(env: &TestEnv, org: &str, id: &str) -> Value {
    env.cli_ok(&["job", "show", id, "--org", org]).await["status"].clone()
}

async fn audit_count(env: &TestEnv, action: &str) -> i64 {
    scalar(
        env.velu(),
        &format!("SELECT count(*) FROM audit_events WHERE action = '{action}'"),
    )
    .await
}

fn reason(text: &str) -> PauseInput {
    PauseInput {
        reason: Some(text.to_owned()),
    }
}

backend_tests! {
    async fn a_paused_orgs_jobs_wait_while_other_orgs_run(env) {
        let alpha = bootstrap(&env, "alpha", "hero").await;
        bootstrap(&env, "beta", "hero").await;
        let paused = env.cli_ok(&["queue", "pause", "--org", "alpha", "--reason", "deploy"]).await;
        assert_eq!(paused["paused"], true);
        assert_eq!(paused["pause"]["reason"], "deploy");
        assert_eq!(paused["pause"]["actor_type"], "cli");

        // Submits are accepted, and say so only when held.
        let held = env.cli_ok(&["job", "submit", "--org", "alpha", "--task", "echo", "--payload", "{}"]).await;
        assert_eq!(held["status"], "queued");
        assert_eq!(held["queue_paused"], true);
        let a = held["id"].as_str().unwrap().to_owned();
        let over_http = env
            .http(Method::POST, "/v1/orgs/alpha/jobs", Some(&alpha.builder), Some(json!({"task": "echo", "payload": {}})))
            .await;
        assert_eq!(over_http.status, 201, "{}", over_http.text);
        assert_eq!(over_http.body["queue_paused"], true);
        let a2 = over_http.body["id"].as_str().unwrap().to_owned();
        let free = env.cli_ok(&["job", "submit", "--org", "beta", "--task", "echo", "--payload", "{}"]).await;
        assert!(free.get("queue_paused").is_none(), "absent when not paused: {free}");
        let b = free["id"].as_str().unwrap().to_owned();
        let batch = env
            .http(Method::POST, "/v1/orgs/alpha/jobs/batch", Some(&alpha.builder), Some(json!({"jobs": [{"task": "echo"}]})))
            .await;
        assert_eq!(batch.body["queue_paused"], true, "{}", batch.text);

        let report = drain_queue(env.velu(), fast_worker("w1")).await;
        assert_eq!(report.succeeded, 1, "only beta's job ran");
        assert_eq!(status(&env, "beta", &b).await, "succeeded");
        for id in [&a, &a2] {
            assert_eq!(status(&env, "alpha", id).await, "queued");
        }
        let shown = env.http(Method::GET, "/v1/orgs/alpha/queue", Some(&alpha.admin), None).await;
        assert_eq!((shown.body["paused"].clone(), shown.body["queued"].clone()), (json!(true), json!(3)), "{}", shown.text);

        // The org's own admin resumes it; the jobs run.
        let resumed = env.http(Method::POST, "/v1/orgs/alpha/queue/resume", Some(&alpha.admin), None).await;
        assert_eq!(resumed.status, 200, "{}", resumed.text);
        assert_eq!(resumed.body["paused"], false);
        assert!(resumed.body["pause"].is_null());
        let report = drain_queue(env.velu(), fast_worker("w2")).await;
        assert_eq!(report.succeeded, 3);
        for id in [&a, &a2] {
            assert_eq!(status(&env, "alpha", id).await, "succeeded");
        }
        let after = env.cli_ok(&["job", "submit", "--org", "alpha", "--task", "echo", "--payload", "{}"]).await;
        assert!(after.get("queue_paused").is_none());
    }

    async fn a_pause_between_the_scan_and_the_claim_still_holds(env) {
        // A worker saw the org as ready, then the org was paused before its claim: the
        // claim itself refuses (the check is not only in the scan or a worker's cache).
        let alpha = bootstrap(&env, "alpha", "hero").await;
        let id = submit(&env, "alpha", "echo", json!({})).await;
        let velu = env.velu();
        let kinds: Vec<(Plan, Vec<String>)> = vec![(Plan::Hero, vec!["echo".into()])];
        let kinds = kinds.into_iter().collect();
        let ready = queue::ready_orgs(velu.db(), velu_core::time::now(), 10, &kinds, None).await.unwrap();
        assert_eq!(ready.len(), 1);
        let who = Principal::operator();
        pause::pause_queue(velu, &who, &OrgRef::new("alpha"), &PauseInput::default()).await.unwrap();
        let org = ReadyOrg { id: alpha.org_id.clone(), plan: Plan::Hero };
        let echo = vec!["echo".to_owned()];
        let claim = || queue::claim_for_org(velu.db(), "w", &org, 10, &echo, Duration::from_secs(30), velu_core::time::now());
        assert!(claim().await.unwrap().is_empty(), "a paused org's claim takes nothing");
        assert!(queue::ready_orgs(velu.db(), velu_core::time::now(), 10, &kinds, None).await.unwrap().is_empty(), "nor is it listed");
        assert_eq!(status(&env, "alpha", &id).await, "queued");
        // The same for a kind paused between the scan and the claim.
        pause::resume_queue(velu, &who, &OrgRef::new("alpha")).await.unwrap();
        pause::pause_task(velu, &who, "echo", &PauseInput::default()).await.unwrap();
        assert!(claim().await.unwrap().is_empty(), "a paused kind's job is not claimed");
        pause::resume_task(velu, &who, "echo").await.unwrap();
        assert_eq!(claim().await.unwrap().len(), 1);
    }

    async fn a_paused_kind_waits_in_every_org_and_only_that_kind(env) {
        let alpha = bootstrap(&env, "alpha", "hero").await;
        bootstrap(&env, "beta", "hero").await;
        let state = env.cli_ok(&["task", "pause", "sleep", "--reason", "slow disks"]).await;
        assert_eq!((state["task"].clone(), state["paused"].clone()), (json!("sleep"), json!(true)));
        assert_eq!(state["pause"]["reason"], "slow disks");
        let mut sleeps = Vec::new();
        let mut echoes = Vec::new();
        for org in ["alpha", "beta"] {
            let held = env.cli_ok(&["job", "submit", "--org", org, "--task", "sleep", "--payload", r#"{"seconds": 0}"#]).await;
            assert_eq!(held["queue_paused"], true, "a paused kind's submit says so");
            sleeps.push((org, held["id"].as_str().unwrap().to_owned()));
            echoes.push((org, submit(&env, org, "echo", json!({})).await));
        }
        let shown = env.http(Method::GET, "/v1/orgs/alpha/queue", Some(&alpha.admin), None).await;
        assert_eq!(shown.body["paused"], false, "the org itself is not paused");
        assert_eq!(shown.body["paused_tasks"][0]["task"], "sleep", "{}", shown.text);
        // The org reads why, not which operator (their OS user name) paused it.
        let pause = &shown.body["paused_tasks"][0]["pause"];
        assert_eq!((pause["actor_type"].as_str(), pause["actor_id"].as_str()), (Some("platform"), Some("platform")), "{}", shown.text);
        assert_eq!(pause["reason"], "slow disks");
        let operator = env.cli_ok(&["queue", "show", "--org", "alpha"]).await;
        assert_eq!(operator["paused_tasks"][0]["pause"]["actor_type"], "cli", "the operator sees who");
        // The org's own pause, made by the operator: the same; made by its own admin key:
        // that key, which the org knows.
        env.cli_ok(&["queue", "pause", "--org", "alpha"]).await;
        let shown = env.http(Method::GET, "/v1/orgs/alpha/queue", Some(&alpha.admin), None).await;
        assert_eq!(shown.body["pause"]["actor_id"], "platform", "{}", shown.text);
        env.cli_ok(&["queue", "resume", "--org", "alpha"]).await;
        let paused = env.http(Method::POST, "/v1/orgs/alpha/queue/pause", Some(&alpha.admin), None).await;
        assert_eq!(paused.body["pause"]["actor_type"], "api_key", "{}", paused.text);
        assert_ne!(paused.body["pause"]["actor_id"], "platform", "{}", paused.text);
        env.http(Method::POST, "/v1/orgs/alpha/queue/resume", Some(&alpha.admin), None).await;
        let report = drain_queue(env.velu(), fast_worker("w1")).await;
        assert_eq!(report.succeeded, 2);
        for (org, id) in &echoes {
            assert_eq!(status(&env, org, id).await, "succeeded");
        }
        for (org, id) in &sleeps {
            assert_eq!(status(&env, org, id).await, "queued");
        }
        // An org admin may not touch a kind (it is every org's); unknown kinds are missing.
        for path in ["/v1/tasks/sleep/resume", "/v1/tasks/echo/pause"] {
            let r = env.http(Method::POST, path, Some(&alpha.admin), None).await;
            assert_eq!(r.problem_code(), "forbidden", "{path}");
        }
        assert_eq!(env.cli(&["task", "pause", "nope"]).await.error_code(), "not_found");
        assert_eq!(env.cli(&["task", "resume", "nope"]).await.error_code(), "not_found");
        let ops = platform_key(&env, "ops", "admin:orgs:manage").await;
        for path in ["/v1/tasks/nope/pause", "/v1/tasks/ec%00ho/pause", "/v1/tasks/ec%00ho/resume", "/v1/tasks/%E2%80%AE/resume"] {
            let r = env.http(Method::POST, path, Some(&ops), None).await;
            assert_eq!(r.problem_code(), "not_found", "{path}: {}", r.text);
        }
        let resumed = env.http(Method::POST, "/v1/tasks/sleep/resume", Some(&ops), None).await;
        assert_eq!(resumed.status, 200, "{}", resumed.text);
        assert_eq!(resumed.body, json!({"task": "sleep", "paused": false, "pause": null}));
        let report = drain_queue(env.velu(), fast_worker("w2")).await;
        assert_eq!(report.succeeded, 2);
        for (org, id) in &sleeps {
            assert_eq!(status(&env, org, id).await, "succeeded");
        }
    }

    async fn a_running_job_finishes_when_its_queue_is_paused(env) {
        bootstrap(&env, "alpha", "hero").await;
        let long = submit(&env, "alpha", "sleep", json!({"seconds": 1})).await;
        let w = spawn_worker(env.velu(), fast_worker("w"));
        eventually(10, || { let env = env.clone(); let long = long.clone(); async move {
            (status(&env, "alpha", &long).await == "running").then_some(())
        }}).await;
        let state = env.cli_ok(&["queue", "pause", "--org", "alpha"]).await;
        assert_eq!((state["paused"].clone(), state["running"].clone()), (json!(true), json!(1)));
        let waiting = submit(&env, "alpha", "echo", json!({})).await;
        eventually(10, || { let env = env.clone(); let long = long.clone(); async move {
            (status(&env, "alpha", &long).await == "succeeded").then_some(())
        }}).await;
        // The worker is idle and polling; the paused job stays queued.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(status(&env, "alpha", &waiting).await, "queued");
        env.cli_ok(&["queue", "resume", "--org", "alpha"]).await;
        eventually(10, || { let env = env.clone(); let waiting = waiting.clone(); async move {
            (status(&env, "alpha", &waiting).await == "succeeded").then_some(())
        }}).await;
        w.stop().await;
    }

    async fn only_admins_and_the_platform_touch_an_orgs_queue(env) {
        let alpha = bootstrap(&env, "alpha", "hero").await;
        let beta = bootstrap(&env, "beta", "hero").await;
        let routes = [
            (Method::GET, "/v1/orgs/{org}/queue"),
            (Method::POST, "/v1/orgs/{org}/queue/pause"),
            (Method::POST, "/v1/orgs/{org}/queue/resume"),
        ];
        let worker_only = platform_key(&env, "worker", "jobs:work").await;
        let narrow = env
            .cli_ok(&["key", "create", "--org", "alpha", "--name", "narrow", "--scopes", "admin:api_keys:manage,audit:read,jobs:read,jobs:submit"])
            .await["token"].as_str().unwrap().to_owned();
        for (who, token) in [("viewer", &alpha.viewer), ("builder", &alpha.builder), ("old-admin-scopes", &narrow), ("worker", &worker_only)] {
            for (m, route) in &routes {
                let r = env.http(m.clone(), &route.replace("{org}", "alpha"), Some(token), None).await;
                assert_eq!(r.problem_code(), "forbidden", "{who}: {m} {route}");
            }
        }
        // Another org's admin: beta's queue is not there for alpha (by slug or by id),
        // with the same answer as a missing org.
        for org in ["beta", beta.org_id.as_str()] {
            for (m, route) in &routes {
                let r = env.http(m.clone(), &route.replace("{org}", org), Some(&alpha.admin), None).await;
                let missing = env.http(m.clone(), &route.replace("{org}", "no-such-org"), Some(&alpha.admin), None).await;
                assert_eq!(r.status, 404, "{m} {route} on {org}: {}", r.text);
                assert_eq!(r.problem_code(), missing.problem_code());
            }
        }
        assert_eq!(env.cli_ok(&["queue", "show", "--org", "beta"]).await["paused"], false, "beta untouched");
        assert_eq!(audit_count(&env, "queue.pause").await, 0);
        // The org's admin, and a platform key with admin:orgs:manage, may.
        let r = env.http(Method::POST, "/v1/orgs/alpha/queue/pause", Some(&alpha.admin), Some(json!({"reason": "mine"}))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["pause"]["actor_type"], "api_key");
        let ops = platform_key(&env, "orgs", "admin:orgs:manage").await;
        let r = env.http(Method::POST, "/v1/orgs/beta/queue/pause", Some(&ops), None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = env.http(Method::GET, "/v1/orgs/alpha/queue", Some(&ops), None).await;
        assert_eq!(r.body["pause"]["reason"], "mine");
        // No key, no entry.
        let r = env.http(Method::GET, "/v1/orgs/alpha/queue", None, None).await;
        assert_eq!(r.status, 401);
    }

    async fn each_change_is_audited_once(env) {
        let alpha = bootstrap(&env, "alpha", "hero").await;
        let first = env.cli_ok(&["queue", "pause", "--org", "alpha", "--reason", "first"]).await;
        let again = env
            .http(Method::POST, "/v1/orgs/alpha/queue/pause", Some(&alpha.admin), Some(json!({"reason": "second"})))
            .await;
        assert_eq!(again.status, 200);
        for field in ["paused_at", "reason"] {
            assert_eq!(again.body["pause"][field], first["pause"][field], "a second pause changes nothing");
        }
        // The org's admin reads the operator's pause as the platform's.
        assert_eq!((again.body["pause"]["actor_type"].as_str(), first["pause"]["actor_type"].as_str()), (Some("platform"), Some("cli")));
        for _ in 0..2 {
            env.cli_ok(&["queue", "resume", "--org", "alpha"]).await;
        }
        let audit = env.cli_ok(&["audit", "list", "--org", "alpha"]).await;
        let actions: Vec<&str> = audit["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions.iter().filter(|a| **a == "queue.pause").count(), 1, "{actions:?}");
        assert_eq!(actions.iter().filter(|a| **a == "queue.resume").count(), 1, "{actions:?}");
        let pause_event = audit["items"].as_array().unwrap().iter().find(|e| e["action"] == "queue.pause").unwrap();
        assert_eq!(pause_event["details"]["reason"], "first");
        assert_eq!(pause_event["target_id"], alpha.org_id.as_str());

        for _ in 0..2 {
            env.cli_ok(&["task", "pause", "echo"]).await;
        }
        for _ in 0..3 {
            env.cli_ok(&["task", "resume", "echo"]).await;
        }
        assert_eq!(audit_count(&env, "task.pause").await, 1);
        assert_eq!(audit_count(&env, "task.resume").await, 1);
    }

    async fn odd_reasons_are_refused_or_stored_as_given(env) {
        let alpha = bootstrap(&env, "alpha", "hero").await;
        let velu = env.velu();
        let who = Principal::operator();
        let org = OrgRef::new("alpha");
        for bad in ["a\u{0}b", "two\nlines", "tab\there", "\u{7f}", &"x".repeat(501)] {
            let err = pause::pause_queue(velu, &who, &org, &reason(bad)).await.unwrap_err();
            assert_eq!(err.code(), "invalid", "{bad:?}");
            let err = pause::pause_task(velu, &who, "echo", &reason(bad)).await.unwrap_err();
            assert_eq!(err.code(), "invalid", "{bad:?}");
            let r = env.http(Method::POST, "/v1/orgs/alpha/queue/pause", Some(&alpha.admin), Some(json!({"reason": bad}))).await;
            assert_eq!(r.status, 400, "{bad:?}: {}", r.text);
        }
        // Bodies that are not a pause.
        for body in [json!({"reason": "x", "org_id": "other"}), json!([]), json!("stop"), json!({"reason": 7})] {
            let r = env.http(Method::POST, "/v1/orgs/alpha/queue/pause", Some(&alpha.admin), Some(body.clone())).await;
            assert_eq!(r.status, 400, "{body}: {}", r.text);
        }
        assert_eq!(audit_count(&env, "queue.pause").await, 0, "nothing refused was paused");
        assert_eq!(env.cli_ok(&["queue", "show", "--org", "alpha"]).await["paused"], false);
        // Odd but printable text is kept exactly.
        let odd = "'; DROP TABLE jobs; -- \u{202e}ré\u{1F600} \"%s\" <b>";
        let r = env.http(Method::POST, "/v1/orgs/alpha/queue/pause", Some(&alpha.admin), Some(json!({"reason": odd}))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(env.cli_ok(&["queue", "show", "--org", "alpha"]).await["pause"]["reason"], odd);
        env.cli_ok(&["queue", "resume", "--org", "alpha"]).await;
        // Blank means none; so does no body at all.
        let r = env.http(Method::POST, "/v1/orgs/alpha/queue/pause", Some(&alpha.admin), Some(json!({"reason": "   "}))).await;
        assert!(r.body["pause"]["reason"].is_null(), "{}", r.text);
        env.cli_ok(&["queue", "resume", "--org", "alpha"]).await;
        let r = env.http(Method::POST, "/v1/orgs/alpha/queue/pause", Some(&alpha.admin), None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let longest = "é".repeat(500);
        let state = pause::pause_task(velu, &who, "echo", &reason(&longest)).await.unwrap();
        assert_eq!(state.pause.unwrap().reason.as_deref(), Some(longest.as_str()));
    }

    async fn admin_keys_made_before_the_scope_keep_working_as_admins(env) {
        use migration::MigratorTrait;
        let alpha = bootstrap(&env, "alpha", "hero").await;
        let full = platform_key(&env, "full", "admin:orgs:manage,admin:api_keys:manage,audit:read,jobs:read,jobs:submit").await;
        let orgs_only = platform_key(&env, "orgs-only", "admin:orgs:manage").await;
        let scopes = |kid: String| {
            let env = env.clone();
            async move {
                scalar::<String>(env.velu(), &format!("SELECT scopes FROM api_keys WHERE kid = '{kid}'")).await
            }
        };
        let kid = |token: &str| velu_core::keys::token::parse(token).unwrap().kid;
        // Back to before this step (and the steps after it), then up again, as the
        // database's owner (migrations are not the app role's).
        let names: Vec<String> = migration::Migrator::migrations().iter().map(|m| m.name().to_owned()).collect();
        let at = names.iter().position(|n| n.contains("_000007_")).expect("the pause step");
        let owner = crate::support::owner_tx(env.velu()).await;
        migration::Migrator::down(&owner, Some((names.len() - at) as u32)).await.expect("downs run");
        owner.commit().await.unwrap();
        assert!(!scopes(kid(&alpha.admin)).await.contains("admin:queue:manage"), "down takes the scope away");
        let owner = crate::support::owner_tx(env.velu()).await;
        migration::Migrator::up(&owner, None).await.expect("ups run");
        owner.commit().await.unwrap();
        assert_eq!(scopes(kid(&alpha.admin)).await, "admin:api_keys:manage admin:queue:manage admin:secrets:manage audit:read jobs:read jobs:submit usage:read");
        assert_eq!(scopes(kid(&full)).await, "admin:api_keys:manage admin:orgs:manage admin:queue:manage admin:secrets:manage audit:read jobs:read jobs:submit usage:read");
        assert_eq!(scopes(kid(&alpha.builder)).await, "jobs:read jobs:submit", "only admins gain it");
        assert_eq!(scopes(kid(&orgs_only)).await, "admin:orgs:manage");
        // The old admin key pauses its queue and still manages admin keys.
        let r = env.http(Method::POST, "/v1/orgs/alpha/queue/pause", Some(&alpha.admin), None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = env.http(Method::POST, "/v1/orgs/alpha/keys", Some(&alpha.admin), Some(json!({"name": "second-admin", "role": "admin"}))).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let r = env.http(Method::POST, "/v1/orgs/bootstrap", Some(&full), Some(json!({"name": "Y", "slug": "fresh", "plan": "hero"}))).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
}
