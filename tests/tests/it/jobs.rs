//! Jobs through HTTP and the CLI: checks, stamping, reading, steering, compat routes.

use poem::http::Method;
use serde_json::json;
use velu_tests::backend_tests;

use crate::support::{bootstrap, drain_queue, fast_worker};

backend_tests! {
    async fn each_submit_check_has_its_own_code(env) {
        let base = bootstrap(&env, "tiny", "base").await;
        let hero = bootstrap(&env, "acme", "hero").await;
        let submit = |key: String, org: &'static str, body: serde_json::Value| {
            let env = env.clone();
            async move { env.http(Method::POST, &format!("/v1/orgs/{org}/jobs"), Some(&key), Some(body)).await }
        };
        let r = submit(hero.builder.clone(), "acme", json!({"task": "nope", "payload": {}})).await;
        assert_eq!((r.problem_code(), r.body["field"].clone()), ("invalid".into(), json!("task")));
        // Names outside the spec's pattern are refused at the door, naming the field.
        for bad in [json!("Echo"), json!("é"), json!("a".repeat(65)), json!("ec\u{0}ho"), json!("")] {
            let r = submit(hero.builder.clone(), "acme", json!({"task": bad, "payload": {}})).await;
            assert_eq!(r.status, 400, "{bad}: {}", r.text);
            assert_eq!(r.body["field"], "task", "{bad}: {}", r.text);
        }

        let r = submit(base.builder.clone(), "tiny", json!({"task": "echo", "payload": {}})).await;
        assert_eq!(r.status, 403);
        assert_eq!(r.problem_code(), "upgrade_required");
        assert_eq!(r.body["plan"], "hero");
        env.cli_ok(&["org", "set-plan", "tiny", "hero"]).await;
        let r = submit(base.builder.clone(), "tiny", json!({"task": "echo", "payload": {}})).await;
        assert_eq!(r.status, 201, "right after set-plan hero: {}", r.text);

        let r = submit(hero.builder.clone(), "acme", json!({"task": "execute", "payload": {}})).await;
        assert_eq!((r.problem_code(), r.body["plan"].clone()), ("upgrade_required".into(), json!("superhero")));

        for payload in [json!([1, 2]), json!("text"), json!({"_velu": {"org_id": "x"}}), json!({"_org_id": "x"})] {
            let r = submit(hero.builder.clone(), "acme", json!({"task": "echo", "payload": payload})).await;
            assert_eq!(r.problem_code(), "invalid", "{payload}");
            assert_eq!(r.body["field"], "payload");
        }
        let big = "x".repeat(300 * 1024);
        let r = submit(hero.builder.clone(), "acme", json!({"task": "echo", "payload": {"blob": big}})).await;
        assert_eq!((r.status, r.problem_code()), (413, "payload_too_large".into()));
        assert_eq!(r.body["limit"], 256 * 1024);

        for forged in [json!({"org_id": "other"}), json!({"actor_id": "spoofed"}), json!({"actor_type": "user"}), json!({"status": "succeeded"})] {
            let mut body = json!({"task": "echo", "payload": {}});
            body.as_object_mut().unwrap().extend(forged.as_object().unwrap().clone());
            let r = submit(hero.builder.clone(), "acme", body).await;
            assert_eq!(r.problem_code(), "invalid", "internal fields are refused: {forged}");
        }
        for (field, value) in [("priority", json!(1000)), ("max_attempts", json!(0)), ("run_at", json!("soon"))] {
            let mut body = json!({"task": "echo"});
            body[field] = value;
            let r = submit(hero.builder.clone(), "acme", body).await;
            assert_eq!(r.body["field"], field);
        }
        // Nothing above reached the queue.
        let stats = env.cli_ok(&["job", "stats", "--org", "acme"]).await;
        assert_eq!(stats["total"], 0);
    }

    async fn the_queue_quota_is_the_plans(env) {
        bootstrap(&env, "acme", "hero").await;
        let batch: Vec<_> = (0..10_000).map(|i| json!({"task": "echo", "payload": {"i": i}})).collect();
        let file = env.home().join("batch.json");
        std::fs::write(&file, serde_json::to_string(&batch).unwrap()).unwrap();
        let done = env.cli_ok(&["job", "submit-batch", "--org", "acme", "--file", file.to_str().unwrap()]).await;
        assert_eq!(done["count"], 10_000);
        let more = env.cli(&["job", "submit", "--org", "acme", "--task", "echo"]).await;
        assert_eq!(more.error_code(), "quota_exceeded");
        assert_eq!(more.code, 10);
    }

    async fn actors_come_from_the_principal_only(env) {
        let boot = bootstrap(&env, "acme", "hero").await;
        let r = env.http(Method::POST, "/v1/orgs/acme/jobs", Some(&boot.builder), Some(json!({"task": "echo", "payload": {"actor_id": "in-payload-only"}}))).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let builder_kid = boot.doc["keys"]["builder"]["key"]["id"].as_str().unwrap();
        assert_eq!(r.body["actor_type"], "api_key");
        assert_eq!(r.body["actor_id"], builder_kid);
        assert_eq!(r.body["org_id"], boot.org_id.as_str());
        let cli = env.cli_ok(&["job", "submit", "--org", "acme", "--task", "echo"]).await;
        assert_eq!(cli["actor_type"], "cli");
        assert_eq!(cli["actor_id"], velu_core::principal::os_user());
        let audit = env.cli_ok(&["audit", "list", "--org", "acme", "--limit", "2"]).await;
        assert_eq!(audit["items"][0]["action"], "job.submit");
        assert_eq!(audit["items"][1]["actor_id"], builder_kid);
    }

    async fn idempotency_keys_return_the_first_job(env) {
        let boot = bootstrap(&env, "acme", "hero").await;
        let body = json!({"task": "echo", "payload": {"n": 1}, "idempotency_key": "order-42"});
        let first = env.http(Method::POST, "/v1/orgs/acme/jobs", Some(&boot.builder), Some(body.clone())).await;
        let second = env.http(Method::POST, "/v1/orgs/acme/jobs", Some(&boot.builder), Some(body)).await;
        assert_eq!((first.status, second.status), (201, 200));
        assert_eq!(first.body["id"], second.body["id"]);
        let cli = env.cli_ok(&["job", "submit", "--org", "acme", "--task", "echo", "--idempotency-key", "order-42"]).await;
        assert_eq!(cli["id"], first.body["id"]);
        assert_eq!(env.cli_ok(&["job", "stats", "--org", "acme"]).await["total"], 1);
    }

    async fn reading_and_steering(env) {
        let boot = bootstrap(&env, "acme", "hero").await;
        let mut ids = Vec::new();
        for i in 0..5 {
            let task = if i % 2 == 0 { "echo" } else { "sleep" };
            let j = env.cli_ok(&["job", "submit", "--org", "acme", "--task", task, "--payload", &format!("{{\"seconds\": 0, \"i\": {i}}}")]).await;
            ids.push(j["id"].as_str().unwrap().to_owned());
        }
        let page = env.http(Method::GET, "/v1/orgs/acme/jobs?limit=2&task=echo", Some(&boot.viewer), None).await;
        assert_eq!(page.body["items"].as_array().unwrap().len(), 2);
        let cursor = page.body["next_cursor"].as_str().unwrap();
        let rest = env.http(Method::GET, &format!("/v1/orgs/acme/jobs?limit=2&task=echo&cursor={cursor}"), Some(&boot.viewer), None).await;
        assert_eq!(rest.body["items"].as_array().unwrap().len(), 1);
        assert!(rest.body["next_cursor"].is_null());
        let reused = env.http(Method::GET, &format!("/v1/orgs/acme/jobs?limit=2&task=sleep&cursor={cursor}"), Some(&boot.viewer), None).await;
        assert_eq!(reused.problem_code(), "invalid", "a cursor is bound to its filters");
        assert_eq!(env.http(Method::GET, "/v1/orgs/acme/jobs?status=done", Some(&boot.viewer), None).await.problem_code(), "invalid");

        // Cancel a queued job at once; retry it; a finished job cannot be cancelled.
        let c = env.http(Method::POST, &format!("/v1/orgs/acme/jobs/{}/cancel", ids[0]), Some(&boot.builder), None).await;
        assert_eq!(c.body["status"], "cancelled");
        assert_eq!(c.body["error"]["code"], "cancelled");
        let again = env.http(Method::POST, &format!("/v1/orgs/acme/jobs/{}/cancel", ids[0]), Some(&boot.builder), None).await;
        assert_eq!(again.status, 200, "cancel is idempotent");
        let r = env.http(Method::POST, &format!("/v1/orgs/acme/jobs/{}/retry", ids[0]), Some(&boot.builder), None).await;
        assert_eq!(r.body["status"], "queued");
        let r = env.http(Method::POST, &format!("/v1/orgs/acme/jobs/{}/retry", ids[0]), Some(&boot.builder), None).await;
        assert_eq!(r.problem_code(), "conflict", "only failed or cancelled jobs are retried");
        let viewer = env.http(Method::POST, &format!("/v1/orgs/acme/jobs/{}/cancel", ids[1]), Some(&boot.viewer), None).await;
        assert_eq!(viewer.problem_code(), "forbidden");

        let report = drain_queue(env.velu(), fast_worker("w1")).await;
        assert_eq!(report.succeeded, 5);
        let done = env.http(Method::GET, &format!("/v1/orgs/acme/jobs/{}", ids[2]), Some(&boot.viewer), None).await;
        assert_eq!(done.body["status"], "succeeded");
        assert_eq!(done.body["result"]["i"], 2, "echo returns its payload");
        assert_eq!(done.body["history"].as_array().unwrap().len(), 1);
        // Org keys do not see which platform host ran it; the operator and platform keys do.
        assert!(done.body["history"][0]["worker_id"].is_null(), "{}", done.text);
        assert_eq!(done.body["history"][0]["outcome"], "succeeded");
        let shown = env.cli_ok(&["job", "show", &ids[2], "--org", "acme"]).await;
        assert_eq!(shown["history"][0]["worker_id"], "w1");
        let platform = crate::support::platform_key(&env, "ops", "jobs:read").await;
        let seen = env.http(Method::GET, &format!("/v1/orgs/acme/jobs/{}", ids[2]), Some(&platform), None).await;
        assert_eq!(seen.body["history"][0]["worker_id"], "w1");
        let late = env.http(Method::POST, &format!("/v1/orgs/acme/jobs/{}/cancel", ids[2]), Some(&boot.builder), None).await;
        assert_eq!(late.problem_code(), "conflict");

        let stats = env.http(Method::GET, "/v1/orgs/acme/jobs/stats", Some(&boot.viewer), None).await;
        assert_eq!(stats.body["total"], 5);
        assert_eq!(stats.body["by_status"]["succeeded"], 5);
        assert_eq!(stats.body["by_task"]["sleep"]["succeeded"], 2);
        let audit = env.cli_ok(&["audit", "list", "--org", "acme", "--limit", "5"]).await;
        let actions: Vec<_> = audit["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect();
        assert!(actions.contains(&"job.retry".to_owned()) && actions.contains(&"job.cancel".to_owned()), "{actions:?}");
    }

    async fn other_orgs_jobs_do_not_exist(env) {
        let a = bootstrap(&env, "alpha", "hero").await;
        let b = bootstrap(&env, "beta", "hero").await;
        let job = env.http(Method::POST, "/v1/orgs/beta/jobs", Some(&b.builder), Some(json!({"task": "echo", "payload": {"secret": 1}}))).await;
        let id = job.body["id"].as_str().unwrap();
        for (m, path) in [
            (Method::GET, format!("/v1/orgs/alpha/jobs/{id}")),
            (Method::POST, format!("/v1/orgs/alpha/jobs/{id}/cancel")),
            (Method::POST, format!("/v1/orgs/alpha/jobs/{id}/retry")),
            (Method::GET, format!("/v1/orgs/beta/jobs/{id}")),
            (Method::GET, format!("/results/{id}")),
        ] {
            let r = env.http(m.clone(), &path, Some(&a.admin), None).await;
            assert_eq!(r.status, 404, "{m} {path}: {}", r.text);
        }
        let list = env.http(Method::GET, "/v1/orgs/alpha/jobs", Some(&a.admin), None).await;
        assert_eq!(list.body["items"], json!([]));
        assert_eq!(env.cli_ok(&["job", "show", id, "--org", "beta"]).await["payload"]["secret"], 1);
    }

    async fn earlier_clients_keep_working(env) {
        let a = bootstrap(&env, "alpha", "hero").await;
        let b = bootstrap(&env, "beta", "hero").await;
        let r = env.http(Method::POST, "/tasks", Some(&a.builder), Some(json!({"task": "echo", "payload": {"x": 1}}))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["ok"], true);
        let id = r.body["job_id"].as_str().unwrap().to_owned();
        let mut req = poem::Request::builder().uri(format!("/results/{id}").parse().unwrap());
        req = req.header("authorization", format!("Bearer {}", a.viewer));
        let got = env.send(req.finish()).await;
        assert_eq!(got.status, 200, "{}", got.text);
        assert_eq!(got.body["item"]["id"], id.as_str());
        assert!(got.body["item"]["payload"].get("_velu").is_none(), "no internal fields leak");
        assert_eq!(env.http(Method::GET, &format!("/results/{id}"), Some(&b.viewer), None).await.status, 404);
        assert_eq!(env.http(Method::GET, "/results/42", Some(&a.viewer), None).await.status, 404);
        let spoof = env.http(Method::POST, "/tasks", Some(&a.builder), Some(json!({"task": "echo", "payload": {"_velu": {"org_id": b.org_id}}}))).await;
        assert_eq!(spoof.problem_code(), "invalid");
        assert_eq!(env.cli_ok(&["job", "stats", "--org", "beta"]).await["total"], 0, "nothing landed in beta");
    }
}
