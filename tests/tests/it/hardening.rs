//! The adversarial review's reproductions, kept as tests: each one failed before its fix.
//! Authentication under attack, bounded times, retries, starvation past 256 orgs, NUL
//! bytes in inputs, and bootstrap's env file.

use std::net::IpAddr;

use poem::http::Method;
use serde_json::json;
use velu_core::OpenOptions;
use velu_core::auth::authenticate;
use velu_core::keys::token;
use velu_tests::backend_tests;

use crate::support::{bootstrap, drain_queue, exec, fast_worker, join_all, scalar};

fn ip(text: &str) -> Option<IpAddr> {
    Some(text.parse().unwrap())
}

/// A checksum-valid key text for `kid` with a random (wrong) secret.
fn forged(kid: &str) -> String {
    token::format(kid, &token::new_secret())
}

backend_tests! {
    async fn others_failures_never_lock_out_a_correct_key(env) {
        let boot = bootstrap(&env, "acme", "hero").await;
        let kid = token::parse(&boot.builder).unwrap().kid;
        // A node that has never seen the key (nothing cached), attacked through its
        // public kid from one address: 40 forged secrets, far past every budget.
        let node = env.another_node(OpenOptions::default()).await;
        let mut throttled = 0;
        for _ in 0..40 {
            let e = authenticate(&node, &forged(&kid), ip("10.0.0.66")).await.unwrap_err();
            assert!(matches!(e.code(), "unauthorized" | "rate_limited"), "{e}");
            throttled += usize::from(e.code() == "rate_limited");
        }
        assert!(throttled > 0, "the attacker's address is throttled");
        // The real key still works: from another address, and then from the attacker's
        // own address (a NAT shared with the attacker), also once its cache entry is gone
        // (a plan change drops it) and a query is needed again.
        for from in ["10.0.0.7", "10.0.0.66"] {
            let p = authenticate(&node, &boot.builder, ip(from)).await;
            assert!(p.is_ok(), "correct key refused from {from}: {:?}", p.err());
        }
        env.cli_ok(&["org", "set-plan", "acme", "superhero"]).await;
        velu_core::orgs::set_plan(&node, &velu_core::Principal::operator(), &velu_core::orgs::OrgRef::new("acme"), "superhero").await.unwrap();
        let p = authenticate(&node, &boot.builder, ip("10.0.0.66")).await.unwrap();
        assert_eq!(p.plan, Some(velu_core::plans::Plan::Superhero), "re-read, not stale");
        // The attacker's forged secrets from that address still cost nothing and wait.
        let e = authenticate(&node, &forged(&kid), ip("10.0.0.66")).await.unwrap_err();
        assert_eq!(e.code(), "rate_limited");
    }

    async fn malformed_keys_cost_nothing_and_spend_no_budget(env) {
        let boot = bootstrap(&env, "acme", "hero").await;
        let node = env.another_node(OpenOptions::default()).await;
        let good = boot.viewer.clone();
        let mut typo = good.clone().into_bytes();
        typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(typo).unwrap();
        for bad in [typo.as_str(), "velu_k1_short", "x", &"é".repeat(40), &format!("{good}é")] {
            for _ in 0..50 {
                let e = authenticate(&node, bad, ip("10.0.0.9")).await.unwrap_err();
                assert_eq!(e.code(), "unauthorized", "{bad:?}");
            }
        }
        // 250 malformed attempts from one address spent nothing: an uncached real key
        // from the same address passes, and a wrong secret is still a plain 401.
        assert!(authenticate(&node, &good, ip("10.0.0.9")).await.is_ok());
        let kid = token::parse(&good).unwrap().kid;
        let e = authenticate(&node, &forged(&kid), ip("10.0.0.9")).await.unwrap_err();
        assert_eq!(e.code(), "unauthorized");
    }

    async fn argon2_keys_are_bounded_and_upgraded(env) {
        // A key hashed the old way (argon2id, 19 MiB a check).
        let boot = bootstrap(&env, "acme", "hero").await;
        let kid = token::parse(&boot.admin).unwrap().kid;
        let secret = token::parse(&boot.admin).unwrap().secret;
        let slow = env.velu().hasher().unwrap().hash_argon2id(&secret).unwrap();
        exec(env.velu(), &format!("UPDATE api_keys SET secret_hash = '{slow}' WHERE kid = '{kid}'")).await;
        let node = env.another_node(OpenOptions::default()).await;

        // 40 simultaneous wrong secrets for the live kid: budgets are reserved before
        // hashing, so at most the key's budget (10 a minute) get to argon2; before the
        // fix all 40 passed the check and hashed at once.
        let attempts = (0..40).map(|i| {
            let node = node.clone();
            let text = forged(&kid);
            async move { authenticate(&node, &text, ip(&format!("10.1.0.{i}"))).await }
        });
        let results = join_all(attempts).await;
        let hashed = results.iter().filter(|r| r.as_ref().is_err_and(|e| e.code() == "unauthorized")).count();
        let refused = results.iter().filter(|r| r.as_ref().is_err_and(|e| e.code() == "rate_limited")).count();
        assert_eq!(hashed + refused, 40);
        assert!(hashed <= 10, "{hashed} wrong secrets reached argon2");

        // The right secret, on a node where the key's budget is not spent, upgrades the
        // stored hash to the HMAC form: no argon2 for this key ever again.
        let fresh = env.another_node(OpenOptions::default()).await;
        assert!(authenticate(&fresh, &boot.admin, ip("10.2.0.1")).await.is_ok());
        let stored = scalar::<String>(env.velu(), &format!("SELECT secret_hash FROM api_keys WHERE kid = '{kid}'")).await;
        assert!(stored.starts_with("hmac-sha256$"), "{stored}");
        // And now even the attacked node lets the correct key through at once.
        assert!(authenticate(&node, &boot.admin, ip("10.1.0.1")).await.is_ok());
    }

    async fn non_ascii_keys_are_a_plain_401_everywhere(env) {
        bootstrap(&env, "acme", "hero").await;
        let weird = format!("velu_k1_{}", "é".repeat(33));
        for text in [weird.as_str(), "velu_k1_ÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿ"] {
            let run = env.cli(&["whoami", "--key", text]).await;
            assert_eq!(run.error_code(), "unauthorized", "{}", run.stderr);
            assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        }
        // Exactly the v1 length in bytes, with a multi-byte character inside.
        let good = token::format(&token::new_kid(), &token::new_secret());
        let bad = format!("{}é{}", &good[..20], &good[22..]);
        assert_eq!(bad.len(), token::TOKEN_LEN);
        assert_eq!(env.cli(&["whoami", "--key", &bad]).await.error_code(), "unauthorized");
    }

    async fn client_times_are_bounded(env) {
        let boot = bootstrap(&env, "acme", "base").await;
        // Key expiry: the reproduction created 13 keys on a base org (limit 5) by
        // expiring them in year 10000, which SQLite compared as text before 2026.
        for expires in ["+10000-01-01T00:00:00Z", "9999-01-01T00:00:00Z", "2040-01-01T00:00:00Z"] {
            let r = env
                .http(Method::POST, "/v1/orgs/acme/keys", Some(&boot.admin),
                    Some(json!({"name": "far", "role": "viewer", "expires_at": expires})))
                .await;
            assert_eq!(r.problem_code(), "invalid", "{expires}");
            let run = env.cli(&["key", "create", "--org", "acme", "--name", "far", "--role", "viewer", "--expires-at", expires]).await;
            assert_eq!(run.error_code(), "invalid", "{expires}");
        }
        let soon = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
        let r = env
            .http(Method::POST, "/v1/orgs/acme/keys", Some(&boot.admin),
                Some(json!({"name": "soon", "role": "viewer", "expires_at": soon})))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);

        // run_at: within a year.
        env.cli_ok(&["org", "set-plan", "acme", "hero"]).await;
        for run_at in ["+10000-01-01T00:00:00Z", "2999-01-01T00:00:00Z"] {
            let r = env
                .http(Method::POST, "/v1/orgs/acme/jobs", Some(&boot.builder),
                    Some(json!({"task": "echo", "payload": {}, "run_at": run_at})))
                .await;
            assert_eq!(r.problem_code(), "invalid", "{run_at}");
        }
        let next_month = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
        let r = env
            .http(Method::POST, "/v1/orgs/acme/jobs", Some(&boot.builder),
                Some(json!({"task": "echo", "payload": {}, "run_at": next_month})))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        // Nothing runs early: the job scheduled next month is not claimed now.
        let report = drain_queue(env.velu(), fast_worker("w")).await;
        assert_eq!(report.claimed, 0);
    }

    async fn retry_respects_the_quota_and_never_grows_the_budget(env) {
        let boot = bootstrap(&env, "acme", "hero").await;
        let velu = env.velu();
        let job = env.cli_ok(&["job", "submit", "--org", "acme", "--task", "fail", "--payload", "{}"]).await;
        let id = job["id"].as_str().unwrap().to_owned();
        let budget = i64::from(velu.tasks().get("fail").unwrap().max_attempts);
        // As if it had failed with its budget spent, twice in a row: the budget after a
        // retry is attempts + the kind's budget, never doubled.
        for round in 1..=3 {
            exec(velu, &format!("UPDATE jobs SET status = 'failed', attempts = max_attempts WHERE id = '{id}'")).await;
            let before = env.cli_ok(&["job", "show", &id, "--org", "acme"]).await;
            let attempts = before["attempts"].as_i64().unwrap();
            let r = env.http(Method::POST, &format!("/v1/orgs/acme/jobs/{id}/retry"), Some(&boot.builder), None).await;
            assert_eq!(r.status, 200, "round {round}: {}", r.text);
            assert_eq!(r.body["max_attempts"].as_i64().unwrap(), attempts + budget, "round {round}");
        }
        // A full queue refuses a retry like a submit (the quota is 10,000 on hero).
        exec(velu, &format!("UPDATE jobs SET status = 'failed' WHERE id = '{id}'")).await;
        let batch: Vec<_> = (0..10_000).map(|_| velu_core::jobs::SubmitJob {
            task: "echo".into(),
            payload: json!({}),
            ..Default::default()
        }).collect();
        let who = velu_core::Principal::operator();
        velu_core::jobs::submit_batch(velu, &who, &velu_core::orgs::OrgRef::new("acme"), &batch).await.unwrap();
        let r = env.http(Method::POST, &format!("/v1/orgs/acme/jobs/{id}/retry"), Some(&boot.builder), None).await;
        assert_eq!(r.problem_code(), "quota_exceeded");
        let run = env.cli(&["job", "retry", &id, "--org", "acme"]).await;
        assert_eq!(run.error_code(), "quota_exceeded");
    }

    async fn orgs_that_cannot_run_never_starve_one_that_can(env) {
        // 300 orgs with a ready job each, then downgraded to base (which runs nothing):
        // before the fix they filled the worker's 256 places and a hero org never ran.
        let velu = env.velu();
        let who = velu_core::Principal::operator();
        for i in 0..300 {
            let slug = format!("a{i:04}");
            velu_core::orgs::create_org(velu, &who, &velu_core::orgs::CreateOrg {
                name: slug.clone(), slug: slug.clone(), plan: Some("hero".into()),
            }).await.unwrap();
            let org = velu_core::orgs::OrgRef::new(slug.clone());
            velu_core::jobs::submit_job(velu, &who, &org, &velu_core::jobs::SubmitJob {
                task: "echo".into(), payload: json!({}), ..Default::default()
            }).await.unwrap();
            velu_core::orgs::set_plan(velu, &who, &org, "base").await.unwrap();
        }
        // The runnable org sorts last by id (created last, ids are time-ordered).
        bootstrap(&env, "zeta", "hero").await;
        let job = env.cli_ok(&["job", "submit", "--org", "zeta", "--task", "echo", "--payload", "{}"]).await;
        let report = drain_queue(velu, fast_worker("w")).await;
        assert_eq!(report.claimed, 1, "exactly the runnable job");
        let shown = env.cli_ok(&["job", "show", job["id"].as_str().unwrap(), "--org", "zeta"]).await;
        assert_eq!(shown["status"], "succeeded");
    }

    async fn nul_bytes_in_inputs_are_a_clear_400(env) {
        let boot = bootstrap(&env, "acme", "hero").await;
        let job = env.cli_ok(&["job", "submit", "--org", "acme", "--task", "echo", "--payload", "{}"]).await;
        let job_id = job["id"].as_str().unwrap();
        let key = Some(boot.admin.as_str());
        for payload in [json!({"a": "x\u{0}y"}), json!({"k\u{0}": 1}), json!({"deep": [{"x": ["\u{0}"]}]})] {
            let r = env.http(Method::POST, "/v1/orgs/acme/jobs", key, Some(json!({"task": "echo", "payload": payload}))).await;
            assert_eq!(r.problem_code(), "invalid", "{payload}");
            assert!(r.text.contains("payload"), "{}", r.text);
            let run = env.cli(&["job", "submit", "--org", "acme", "--task", "echo", "--payload", &payload.to_string()]).await;
            assert_eq!(run.error_code(), "invalid");
        }
        let r = env.http(Method::GET, "/v1/orgs/acme/jobs?task=ec%00ho", key, None).await;
        assert_eq!(r.problem_code(), "invalid");
        let platform = crate::support::platform_key(&env, "ops", crate::support::ALL_SCOPES).await;
        let r = env.http(Method::GET, "/v1/orgs?q=a%00b", Some(&platform), None).await;
        assert_eq!(r.problem_code(), "invalid");
        let cursor = {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(json!({"l": "jobs", "f": format!("{}||", boot.org_id), "k": ["a\u{0}b"]}).to_string())
        };
        let r = env.http(Method::GET, &format!("/v1/orgs/acme/jobs?cursor={cursor}"), key, None).await;
        assert_eq!(r.problem_code(), "invalid");
        for path in [
            "/v1/orgs/ac%00me/jobs".to_owned(),
            format!("/v1/orgs/acme/jobs/{job_id}%00"),
            "/v1/orgs/acme/keys/abc%00def".to_owned(),
            "/v1/orgs/acme/keys/abcdefgh%00ijklmn/revoke".to_owned(),
        ] {
            let method = if path.ends_with("revoke") { Method::POST } else { Method::GET };
            let r = env.http(method, &path, key, None).await;
            assert!(r.status < 500, "{path}: {} {}", r.status, r.text);
            assert_eq!(r.problem_code(), "not_found", "{path}");
        }
    }

    async fn bootstrap_never_loses_keys_to_its_env_file(env) {
        use std::os::unix::fs::PermissionsExt;
        // An unwritable folder: refused before anything is created.
        let locked = env.home().join("locked");
        std::fs::create_dir(&locked).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).unwrap();
        let path = locked.join("acme.env");
        let run = env.cli(&["org", "bootstrap", "--name", "Acme", "--slug", "acme", "--env-file", path.to_str().unwrap()]).await;
        let as_root = nix::unistd::geteuid().is_root();
        if !as_root {
            assert_eq!(run.error_code(), "config");
            assert_eq!(env.cli(&["org", "show", "acme"]).await.error_code(), "not_found", "nothing was committed");
        }
        // A missing folder: the same, for root too.
        let missing = env.home().join("no/such/dir/acme.env");
        let run = env.cli(&["org", "bootstrap", "--name", "Beta", "--slug", "beta", "--env-file", missing.to_str().unwrap()]).await;
        assert_eq!(run.error_code(), "config");
        assert_eq!(env.cli(&["org", "show", "beta"]).await.error_code(), "not_found");

        // An existing file is never overwritten without --force, and nothing is created.
        let existing = env.home().join("gamma.env");
        std::fs::write(&existing, "KEEP=1\n").unwrap();
        let run = env.cli(&["org", "bootstrap", "--name", "G", "--slug", "gamma", "--env-file", existing.to_str().unwrap()]).await;
        assert_eq!(run.error_code(), "conflict");
        assert_eq!(std::fs::read_to_string(&existing).unwrap(), "KEEP=1\n");
        assert_eq!(env.cli(&["org", "show", "gamma"]).await.error_code(), "not_found");
        // With --force it is replaced, 0600.
        let doc = env.cli_ok(&["org", "bootstrap", "--name", "G", "--slug", "gamma", "--env-file", existing.to_str().unwrap(), "--force"]).await;
        let text = std::fs::read_to_string(&existing).unwrap();
        assert!(text.contains(doc["keys"]["admin"]["token"].as_str().unwrap()));
        assert_eq!(std::fs::metadata(&existing).unwrap().permissions().mode() & 0o777, 0o600);

        // --rotate with a refused env file: the old keys stay alive (nothing committed).
        let run = env.cli(&["org", "bootstrap", "--name", "G", "--slug", "gamma", "--rotate", "--env-file", existing.to_str().unwrap()]).await;
        assert_eq!(run.error_code(), "conflict");
        let admin = doc["keys"]["admin"]["token"].as_str().unwrap();
        assert_eq!(env.http(Method::GET, "/v1/whoami", Some(admin), None).await.status, 200);
    }
}
