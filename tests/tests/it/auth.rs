//! Authentication and authorization, tried as an attacker would.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use poem::http::Method;
use serde_json::json;
use velu_core::OpenOptions;
use velu_core::auth::authenticate;
use velu_tests::{Backend, TestEnv, backend_tests};

use crate::support::{bootstrap, platform_key};

/// Every authenticated route (method, path template). `{org}` is filled in per case.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/whoami"),
    ("GET", "/v1/orgs"),
    ("POST", "/v1/orgs"),
    ("POST", "/v1/orgs/bootstrap"),
    ("GET", "/v1/orgs/{org}"),
    ("PUT", "/v1/orgs/{org}/plan"),
    ("GET", "/v1/orgs/{org}/keys"),
    ("POST", "/v1/orgs/{org}/keys"),
    ("GET", "/v1/orgs/{org}/keys/nokey"),
    ("POST", "/v1/orgs/{org}/keys/nokey/revoke"),
    ("POST", "/v1/orgs/{org}/keys/nokey/rotate"),
    ("GET", "/v1/orgs/{org}/audit"),
    ("GET", "/v1/orgs/{org}/jobs"),
    ("POST", "/v1/orgs/{org}/jobs"),
    ("GET", "/v1/orgs/{org}/jobs/stats"),
    (
        "GET",
        "/v1/orgs/{org}/jobs/00000000-0000-7000-8000-000000000000",
    ),
    (
        "POST",
        "/v1/orgs/{org}/jobs/00000000-0000-7000-8000-000000000000/cancel",
    ),
    (
        "POST",
        "/v1/orgs/{org}/jobs/00000000-0000-7000-8000-000000000000/retry",
    ),
    ("POST", "/tasks"),
    ("GET", "/results/00000000-0000-7000-8000-000000000000"),
];

fn method(m: &str) -> Method {
    m.parse().unwrap()
}

/// A well-formed body for each route, so only authorization can refuse it.
fn body_for(m: &str, path: &str) -> Option<serde_json::Value> {
    if m == "GET" {
        return None;
    }
    Some(if path.ends_with("/plan") {
        json!({"plan": "hero"})
    } else if path.ends_with("/keys") {
        json!({"name": "probe", "role": "viewer"})
    } else if path.ends_with("/jobs") || path == "/tasks" {
        json!({"task": "echo", "payload": {}})
    } else if path == "/v1/orgs" || path == "/v1/orgs/bootstrap" {
        json!({"name": "Probe", "slug": "probe"})
    } else {
        json!({})
    })
}

backend_tests! {
    async fn every_route_refuses_missing_malformed_and_dead_keys(env) {
        let boot = bootstrap(&env, "acme", "hero").await;
        let revoked = env.cli_ok(&["key", "create", "--org", "acme", "--name", "gone", "--role", "admin"]).await;
        env.cli_ok(&["key", "revoke", revoked["key"]["id"].as_str().unwrap(), "--org", "acme"]).await;
        let rotated = env.cli_ok(&["key", "create", "--org", "acme", "--name", "old", "--role", "admin"]).await;
        env.cli_ok(&["key", "rotate", rotated["key"]["id"].as_str().unwrap(), "--org", "acme"]).await;
        let valid = &boot.admin;
        let wrong_secret = format!("{}{}", &valid[..30], "x".repeat(valid.len() - 30));
        let bad: Vec<(&str, Option<String>)> = vec![
            ("missing", None),
            ("garbage", Some("hello".into())),
            // The last checksum character changed (to one it is not: a fixed 'A' made this
            // case the valid key once in 62 runs).
            ("wrong checksum", Some(format!(
                "{}{}",
                &valid[..valid.len() - 1],
                if valid.ends_with('A') { 'B' } else { 'A' }
            ))),
            ("wrong secret", Some(wrong_secret)),
            ("revoked", Some(revoked["token"].as_str().unwrap().into())),
            ("rotated out", Some(rotated["token"].as_str().unwrap().into())),
        ];
        let mut bodies = std::collections::BTreeSet::new();
        for (m, template) in ROUTES {
            let path = template.replace("{org}", "acme");
            for (what, key) in &bad {
                let r = env.http(method(m), &path, key.as_deref(), body_for(m, &path)).await;
                assert_eq!(r.status, 401, "{what} on {m} {path}: {}", r.text);
                assert_eq!(r.problem_code(), "unauthorized");
                // Identical but for the request's own id, which names the request, not
                // the cause.
                let mut body = r.body.clone();
                assert_eq!(body["request_id"].as_str(), r.header("x-request-id"));
                body.as_object_mut().unwrap().remove("request_id");
                bodies.insert(body.to_string());
            }
        }
        assert_eq!(bodies.len(), 1, "one body for every 401: {bodies:?}");
    }

    async fn another_orgs_resources_look_missing(env) {
        let a = bootstrap(&env, "alpha", "hero").await;
        let b = bootstrap(&env, "beta", "hero").await;
        let b_admin_kid = b.doc["keys"]["admin"]["key"]["id"].as_str().unwrap();
        for (m, template) in ROUTES.iter().filter(|(_, p)| p.contains("{org}")) {
            for org in ["beta", b.org_id.as_str()] {
                let path = template.replace("{org}", org).replace("nokey", b_admin_kid);
                let foreign = env.http(method(m), &path, Some(&a.admin), body_for(m, &path)).await;
                let missing_path = template.replace("{org}", "no-such-org").replace("nokey", b_admin_kid);
                let missing = env.http(method(m), &missing_path, Some(&a.admin), body_for(m, &missing_path)).await;
                // Whatever the answer, foreign and missing are answered alike; where the
                // key holds the scope, that answer is 404.
                assert_eq!(foreign.status, missing.status, "{m} {path}: {} vs {}", foreign.text, missing.text);
                assert_eq!(foreign.problem_code(), missing.problem_code());
                if !path.ends_with("/plan") {
                    assert_eq!(foreign.status, 404, "{m} {path}: {}", foreign.text);
                }
                assert_eq!(
                    foreign.body["detail"].as_str().unwrap().replace(org, "X"),
                    missing.body["detail"].as_str().unwrap().replace("no-such-org", "X"),
                    "same words for foreign and missing"
                );
            }
        }
        // Beta's key is untouched by alpha's attempts.
        assert_eq!(env.http(Method::GET, "/v1/whoami", Some(&b.admin), None).await.status, 200);
    }

    async fn missing_scope_is_forbidden_and_named(env) {
        let boot = bootstrap(&env, "acme", "hero").await;
        let cases = [
            (Method::GET, "/v1/orgs/acme/keys", None, "admin:api_keys:manage"),
            (Method::POST, "/v1/orgs/acme/keys", Some(json!({"name": "x", "role": "viewer"})), "admin:api_keys:manage"),
            (Method::GET, "/v1/orgs/acme/audit", None, "audit:read"),
            (Method::GET, "/v1/orgs", None, "admin:orgs:manage"),
            (Method::POST, "/v1/orgs/acme/jobs", Some(json!({"task": "echo", "payload": {}})), "jobs:submit"),
        ];
        for (m, path, body, scope) in cases {
            let r = env.http(m.clone(), path, Some(&boot.viewer), body).await;
            assert_eq!(r.status, 403, "{m} {path}: {}", r.text);
            assert_eq!(r.problem_code(), "forbidden");
            assert_eq!(r.body["scope"], scope);
        }
        // Viewers may read their own org.
        assert_eq!(env.http(Method::GET, "/v1/orgs/acme", Some(&boot.viewer), None).await.status, 200);
    }

    async fn plan_change_reaches_the_next_request(env) {
        let boot = bootstrap(&env, "acme", "base").await;
        let first = env.http(Method::GET, "/v1/whoami", Some(&boot.viewer), None).await;
        assert_eq!(first.header("ratelimit-limit"), Some("60"));
        assert_eq!(first.body["plan"], "base");
        // The change is made by another process (the CLI) and by HTTP; both are seen at once.
        env.cli_ok(&["org", "set-plan", "acme", "hero"]).await;
        let ops = platform_key(&env, "ops", "admin:orgs:manage").await;
        env.http(Method::PUT, "/v1/orgs/acme/plan", Some(&ops), Some(json!({"plan": "superhero"}))).await;
        let next = env.http(Method::GET, "/v1/whoami", Some(&boot.viewer), None).await;
        assert_eq!(next.body["plan"], "superhero");
        assert_eq!(next.header("ratelimit-limit"), Some("6000"), "the cache dropped the old plan");
    }

    async fn org_requests_are_rate_limited_by_plan(env) {
        let boot = bootstrap(&env, "acme", "base").await;
        // 60 a minute with a burst of 60: the budget runs out well before 120 quick calls.
        let mut limited = None;
        for i in 0..120 {
            let r = env.http(Method::GET, "/v1/whoami", Some(&boot.viewer), None).await;
            if r.status == 429 {
                limited = Some((i, r));
                break;
            }
            assert_eq!(r.status, 200);
        }
        let (count, last) = limited.expect("the base plan's budget ran out");
        assert!(count >= 60, "the first 60 requests pass ({count})");
        assert_eq!(last.status, 429, "{}", last.text);
        assert_eq!(last.problem_code(), "rate_limited");
        let retry: u64 = last.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry));
        assert_eq!(last.header("x-content-type-options"), Some("nosniff"), "errors carry security headers");
        // Another org is unaffected.
        let other = bootstrap(&env, "other", "base").await;
        assert_eq!(env.http(Method::GET, "/v1/whoami", Some(&other.viewer), None).await.status, 200);
    }

    async fn revocation_reaches_another_node_within_seconds(env) {
        let boot = bootstrap(&env, "acme", "hero").await;
        let node2 = env.another_node(OpenOptions { background: true, ..OpenOptions::default() }).await;
        authenticate(&node2, &boot.builder, None).await.expect("valid on node 2");
        let kid = boot.doc["keys"]["builder"]["key"]["id"].as_str().unwrap();
        let started = Instant::now();
        env.cli_ok(&["key", "revoke", kid, "--org", "acme"]).await;
        loop {
            match authenticate(&node2, &boot.builder, None).await {
                Err(e) => {
                    assert_eq!(e.code(), "unauthorized");
                    break;
                }
                Ok(_) => {
                    assert!(started.elapsed() < Duration::from_secs(8), "node 2 still accepts a revoked key");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        let waited = started.elapsed();
        if env.backend() == Backend::Postgres {
            assert!(waited < Duration::from_secs(3), "LISTEN/NOTIFY is near-immediate: {waited:?}");
        }
        node2.shutdown().await;
    }
}

/// Random keys from one address are cut off after its failure budget, without blocking
/// other clients or cached keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_random_keys_is_cut_off_cheaply() {
    let env = TestEnv::start(Backend::Sqlite).await.unwrap();
    let boot = bootstrap(&env, "acme", "hero").await;
    let velu = env.velu();
    authenticate(velu, &boot.viewer, None).await.unwrap();
    let attacker: IpAddr = "203.0.113.9".parse().unwrap();
    let mut limited = 0;
    for i in 0..200 {
        let fake = velu_core::keys::token::format(
            &velu_core::keys::token::new_kid(),
            &format!("{i:0>43}"),
        );
        match authenticate(velu, &fake, Some(attacker)).await {
            Err(e) if e.code() == "rate_limited" => limited += 1,
            Err(e) => assert_eq!(e.code(), "unauthorized"),
            Ok(_) => panic!("a random key was accepted"),
        }
    }
    assert!(
        limited >= 150,
        "the attacker was cut off early ({limited} of 200 limited)"
    );
    let friend: IpAddr = "198.51.100.7".parse().unwrap();
    assert!(
        authenticate(velu, &boot.builder, Some(friend))
            .await
            .is_ok(),
        "other clients pass"
    );
    // From the spent address, a key this node never verified waits like the flood (it
    // costs no query), while a key it verified before passes (known-good secret).
    let waits = authenticate(velu, &boot.admin, Some(attacker))
        .await
        .unwrap_err();
    assert_eq!(waits.code(), "rate_limited");
    assert!(
        authenticate(velu, &boot.builder, Some(attacker))
            .await
            .is_ok(),
        "the builder key was verified for the friend: it passes from the spent address too"
    );
    assert!(
        authenticate(velu, &boot.viewer, Some(attacker))
            .await
            .is_ok(),
        "a cached key keeps working, even from that address (it costs nothing)"
    );

    // Guessing secrets for one real key id from many addresses: each guess is one read
    // and an HMAC (no argon2), every one is refused, and the key keeps working.
    let kid = boot.doc["keys"]["admin"]["key"]["id"].as_str().unwrap();
    for i in 0..20 {
        let guess = velu_core::keys::token::format(kid, &format!("{i:0>43}"));
        let ip: IpAddr = format!("192.0.2.{i}").parse().unwrap();
        let err = authenticate(velu, &guess, Some(ip)).await.unwrap_err();
        assert_eq!(err.code(), "unauthorized");
    }
    let node = env.another_node(velu_core::OpenOptions::default()).await;
    assert!(
        authenticate(&node, &boot.admin, Some(attacker))
            .await
            .is_ok(),
        "the attacked key still works on a node that never cached it"
    );
    env.finish().await;
}
