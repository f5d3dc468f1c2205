//! Least privilege on key operations, tried as an attacker holding one key would: every
//! acting scope set x every key operation x every target role, and bootstrap by narrow
//! platform keys. Each case that should be refused must be `forbidden` and change nothing.

use poem::http::Method;
use serde_json::{Value, json};
use velu_tests::{TestEnv, backend_tests};

use crate::support::{bootstrap, platform_key};

/// The scope sets an org key can hold that include key management.
const ACTORS: &[&[&str]] = &[
    &["admin:api_keys:manage"],
    &["admin:api_keys:manage", "jobs:read"],
    &["admin:api_keys:manage", "jobs:read", "jobs:submit"],
    &["admin:api_keys:manage", "audit:read"],
    &[
        "admin:api_keys:manage",
        "audit:read",
        "jobs:read",
        "jobs:submit",
    ],
    &[
        "admin:api_keys:manage",
        "admin:queue:manage",
        "audit:read",
        "jobs:read",
        "jobs:submit",
    ],
    &[
        "admin:api_keys:manage",
        "admin:queue:manage",
        "admin:secrets:manage",
        "audit:read",
        "jobs:read",
        "jobs:submit",
        "usage:read",
    ],
    // A key manager that is also a worker may mint worker keys (and only then).
    &["admin:api_keys:manage", "jobs:work"],
];

fn role_scopes(role: &str) -> &'static [&'static str] {
    match role {
        "viewer" => &["jobs:read"],
        "builder" => &["jobs:read", "jobs:submit"],
        "worker" => &["jobs:work"],
        _ => &[
            "admin:api_keys:manage",
            "admin:queue:manage",
            "admin:secrets:manage",
            "audit:read",
            "jobs:read",
            "jobs:submit",
            "usage:read",
        ],
    }
}

fn holds_all(actor: &[&str], target: &[&str]) -> bool {
    target.iter().all(|s| actor.contains(s))
}

async fn make_key(env: &TestEnv, name: &str, scopes: &[&str]) -> (String, String) {
    let doc = env
        .cli_ok(&[
            "key",
            "create",
            "--org",
            "acme",
            "--name",
            name,
            "--scopes",
            &scopes.join(","),
        ])
        .await;
    (
        doc["key"]["id"].as_str().unwrap().to_owned(),
        doc["token"].as_str().unwrap().to_owned(),
    )
}

async fn key_row(env: &TestEnv, kid: &str) -> Value {
    env.cli_ok(&["key", "show", "--org", "acme", kid]).await
}

backend_tests! {
    async fn no_key_outlives_the_key_that_made_it(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        let at = |secs: i64| velu_core::time::format(&(velu_core::time::now() + chrono::Duration::seconds(secs)));
        let (hour, two_hours, minute) = (at(3600), at(7200), at(60));
        // A contractor's admin key, good for an hour.
        let temp = env.cli_ok(&["key", "create", "--org", "acme", "--name", "contractor", "--role", "admin", "--expires-at", &hour]).await;
        let temp = temp["token"].as_str().unwrap().to_owned();
        let create = |name: &str, expires: Option<&str>| {
            let mut body = json!({"name": name, "role": "admin"});
            if let Some(e) = expires {
                body["expires_at"] = json!(e);
            }
            body
        };
        // It cannot make a key that lasts longer (forever, or past its own hour)...
        for (name, expires) in [("forever", None), ("longer", Some(two_hours.as_str()))] {
            let r = env.http(Method::POST, "/v1/orgs/acme/keys", Some(&temp), Some(create(name, expires))).await;
            assert_eq!((r.status, r.body["field"].as_str()), (400, Some("expires_at")), "{name}: {}", r.text);
        }
        // ... nor take the secret of one that does (the org's admin key never expires).
        let admin_kid = acme.doc["keys"]["admin"]["key"]["id"].as_str().unwrap().to_owned();
        let r = env.http(Method::POST, &format!("/v1/orgs/acme/keys/{admin_kid}/rotate"), Some(&temp), None).await;
        assert_eq!((r.status, r.body["field"].as_str()), (400, Some("key")), "{}", r.text);
        assert_eq!(env.http(Method::GET, "/v1/whoami", Some(&acme.admin), None).await.status, 200, "the admin secret is unchanged");
        let listed = env.cli_ok(&["key", "list", "--org", "acme"]).await;
        let names: Vec<&str> = listed["items"].as_array().unwrap().iter().map(|k| k["name"].as_str().unwrap()).collect();
        assert!(!names.contains(&"forever") && !names.contains(&"longer"), "{names:?}");
        // Within its hour it works as before: a shorter key, its own rotation.
        let r = env.http(Method::POST, "/v1/orgs/acme/keys", Some(&temp), Some(create("brief", Some(&minute)))).await;
        assert!(r.status < 300, "{}", r.text);
        let brief = r.body["key"]["id"].as_str().unwrap().to_owned();
        let r = env.http(Method::POST, &format!("/v1/orgs/acme/keys/{brief}/rotate"), Some(&temp), None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let me = env.http(Method::GET, "/v1/whoami", Some(&temp), None).await;
        let own = me.body["actor_id"].as_str().unwrap().to_owned();
        let r = env.http(Method::POST, &format!("/v1/orgs/acme/keys/{own}/rotate"), Some(&temp), None).await;
        assert_eq!(r.status, 200, "a key rotates itself: {}", r.text);
        // A key without expiry, and the operator, are not limited.
        let r = env.http(Method::POST, "/v1/orgs/acme/keys", Some(&acme.admin), Some(create("forever", None))).await;
        assert!(r.status < 300, "{}", r.text);
        // A platform key with an expiry is held to it too, in any org.
        let ops = env.cli_ok(&["key", "create", "--platform", "--name", "ops-temp", "--scopes", "admin:orgs:manage,admin:api_keys:manage,jobs:read", "--expires-at", &hour]).await;
        let ops = ops["token"].as_str().unwrap().to_owned();
        let r = env.http(Method::POST, "/v1/orgs/acme/keys", Some(&ops), Some(json!({"name": "ops-forever", "role": "viewer"}))).await;
        assert_eq!((r.status, r.body["field"].as_str()), (400, Some("expires_at")), "{}", r.text);
        // Nor bootstrap an org, new or existing (its three keys never expire), with every
        // scope bootstrap needs.
        let full = env.cli_ok(&["key", "create", "--platform", "--name", "full-temp", "--scopes",
            "admin:orgs:manage,admin:api_keys:manage,admin:queue:manage,admin:secrets:manage,audit:read,jobs:read,jobs:submit,usage:read",
            "--expires-at", &hour]).await;
        let full = full["token"].as_str().unwrap().to_owned();
        for (slug, rotate) in [("acme", true), ("fresh", false)] {
            let r = env.http(Method::POST, "/v1/orgs/bootstrap", Some(&full),
                Some(json!({"name": "X", "slug": slug, "plan": "hero", "rotate": rotate}))).await;
            assert_eq!((r.status, r.body["field"].as_str()), (400, Some("key")), "{slug}: {}", r.text);
        }
        assert_eq!(env.http(Method::GET, "/v1/whoami", Some(&acme.admin), None).await.status, 200, "acme's admin key was not re-issued");
    }

    async fn key_operations_never_reach_past_the_actors_scopes(env) {
        bootstrap(&env, "acme", "superhero").await;
        for (a, actor) in ACTORS.iter().enumerate() {
            let (_, token) = make_key(&env, &format!("actor-{a}"), actor).await;
            for target_role in ["viewer", "builder", "admin", "worker"] {
                let target = role_scopes(target_role);
                let allowed = holds_all(actor, target);
                let case = format!("actor {actor:?} on a {target_role} key");
                let (kid, _) = make_key(&env, &format!("t-{a}-{target_role}"), target).await;
                let before = key_row(&env, &kid).await;

                // create a key of the target's role
                let created = env
                    .http(Method::POST, "/v1/orgs/acme/keys", Some(&token),
                        Some(json!({"name": format!("c-{a}-{target_role}"), "role": target_role})))
                    .await;
                // show, rotate with a week of grace (the reported attack), revoke
                let show = env.http(Method::GET, &format!("/v1/orgs/acme/keys/{kid}"), Some(&token), None).await;
                let rotate = env
                    .http(Method::POST, &format!("/v1/orgs/acme/keys/{kid}/rotate?grace_secs=604800"), Some(&token), None)
                    .await;
                let revoke = env
                    .http(Method::POST, &format!("/v1/orgs/acme/keys/{kid}/revoke"), Some(&token), None)
                    .await;
                for (op, reply, ok) in [("create", &created, 201), ("show", &show, 200), ("rotate", &rotate, 200), ("revoke", &revoke, 200)] {
                    if allowed {
                        assert_eq!(reply.status, ok, "{case}: {op} should pass: {}", reply.text);
                    } else {
                        assert_eq!(reply.problem_code(), "forbidden", "{case}: {op}");
                        assert!(reply.body.get("token").is_none(), "{case}: {op} leaked a token");
                    }
                }
                if !allowed {
                    let after = key_row(&env, &kid).await;
                    assert_eq!(after, before, "{case}: a refused operation changed the key");
                }
            }
        }
    }

    async fn a_key_manager_cannot_take_over_the_admin_key(env) {
        // The reported attack, end to end: a manage-only key rotates the admin key with a
        // week's grace and uses the new token.
        let boot = bootstrap(&env, "acme", "hero").await;
        let admin_kid = boot.doc["keys"]["admin"]["key"]["id"].as_str().unwrap().to_owned();
        let (_, manager) = make_key(&env, "manager", &["admin:api_keys:manage"]).await;
        let r = env
            .http(Method::POST, &format!("/v1/orgs/acme/keys/{admin_kid}/rotate?grace_secs=604800"), Some(&manager), None)
            .await;
        assert_eq!(r.problem_code(), "forbidden");
        assert!(r.text.contains("audit:read") || r.text.contains("jobs:"), "names a missing scope: {}", r.text);
        // The admin key still works, with its old secret and no grace period.
        let me = env.http(Method::GET, "/v1/whoami", Some(&boot.admin), None).await;
        assert_eq!(me.status, 200);
        assert!(key_row(&env, &admin_kid).await["grace_until"].is_null());
        // Nor can it list its way to a token: listings never carry secrets.
        let list = env.http(Method::GET, "/v1/orgs/acme/keys", Some(&manager), None).await;
        assert_eq!(list.status, 200);
        assert!(!list.text.contains("velu_k1_"), "a listing carries no key text");
    }

    async fn narrow_platform_keys_cannot_mint_org_admins(env) {
        bootstrap(&env, "acme", "hero").await;
        let orgs_only = platform_key(&env, "orgs-only", "admin:orgs:manage").await;
        for (slug, rotate) in [("acme", true), ("fresh", false)] {
            let r = env
                .http(Method::POST, "/v1/orgs/bootstrap", Some(&orgs_only),
                    Some(json!({"name": "X", "slug": slug, "plan": "hero", "rotate": rotate})))
                .await;
            assert_eq!(r.problem_code(), "forbidden", "bootstrap of {slug} (rotate {rotate})");
        }
        assert_eq!(env.cli(&["org", "show", "fresh"]).await.error_code(), "not_found", "nothing was created");
        // A platform key holding every scope an org admin holds may bootstrap.
        let full = platform_key(&env, "full", "admin:orgs:manage,admin:api_keys:manage,admin:queue:manage,admin:secrets:manage,audit:read,jobs:read,jobs:submit,usage:read").await;
        let r = env
            .http(Method::POST, "/v1/orgs/bootstrap", Some(&full), Some(json!({"name": "Y", "slug": "fresh", "plan": "hero"})))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }

    async fn platform_keys_follow_the_same_rule(env) {
        let manager = platform_key(&env, "pm", "admin:orgs:manage").await;
        let strong = platform_key(&env, "strong", "admin:orgs:manage,jobs:work").await;
        let strong_kid = velu_core::keys::token::parse(&strong).unwrap().kid;
        let shown = env.cli_ok(&["key", "show", "--platform", &strong_kid]).await;
        assert_eq!(shown["status"], "active");
        // Through velu-core directly: platform key routes are CLI-only.
        let velu = env.velu();
        let who = velu_core::auth::authenticate(velu, &manager, None).await.unwrap();
        let owner = velu_core::keys::KeyOwner::Platform;
        let rot = velu_core::keys::rotate_key(velu, &who, &owner, &strong_kid, &Default::default()).await;
        assert_eq!(rot.unwrap_err().code(), "forbidden");
        let rev = velu_core::keys::revoke_key(velu, &who, &owner, &strong_kid).await;
        assert_eq!(rev.unwrap_err().code(), "forbidden");
        assert_eq!(env.cli_ok(&["key", "show", "--platform", &strong_kid]).await["status"], "active");
    }
}

/// Every org-scoped route of the API, with `{org}`, `{key}` and `{job}` to fill in.
const ORG_ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/orgs/{org}"),
    ("PUT", "/v1/orgs/{org}/plan"),
    ("GET", "/v1/orgs/{org}/keys"),
    ("POST", "/v1/orgs/{org}/keys"),
    ("GET", "/v1/orgs/{org}/keys/{key}"),
    ("POST", "/v1/orgs/{org}/keys/{key}/revoke"),
    ("POST", "/v1/orgs/{org}/keys/{key}/rotate"),
    ("GET", "/v1/orgs/{org}/audit"),
    ("GET", "/v1/orgs/{org}/jobs"),
    ("POST", "/v1/orgs/{org}/jobs"),
    ("POST", "/v1/orgs/{org}/jobs/batch"),
    ("GET", "/v1/orgs/{org}/jobs/stats"),
    ("GET", "/v1/orgs/{org}/jobs/{job}"),
    ("POST", "/v1/orgs/{org}/jobs/{job}/cancel"),
    ("POST", "/v1/orgs/{org}/jobs/{job}/retry"),
    ("GET", "/v1/orgs/{org}/schedules"),
    ("POST", "/v1/orgs/{org}/schedules"),
    ("GET", "/v1/orgs/{org}/queue"),
    ("POST", "/v1/orgs/{org}/queue/pause"),
    ("POST", "/v1/orgs/{org}/queue/resume"),
];

fn body_for(method: &str, path: &str) -> Option<Value> {
    (method != "GET").then(|| {
        if path.ends_with("/plan") {
            json!({"plan": "superhero"})
        } else if path.ends_with("/keys") {
            json!({"name": "probe", "role": "viewer"})
        } else if path.ends_with("/jobs") {
            json!({"task": "echo", "payload": {}})
        } else if path.ends_with("/schedules") {
            json!({"task": "echo", "cron": "* * * * *"})
        } else if path.ends_with("/batch") {
            json!({"jobs": [{"task": "echo", "payload": {}}]})
        } else {
            json!({})
        }
    })
}

backend_tests! {
    async fn another_orgs_real_resources_look_missing_to_every_key_type(env) {
        let a = bootstrap(&env, "alpha", "hero").await;
        let b = bootstrap(&env, "beta", "hero").await;
        let b_kid = b.doc["keys"]["viewer"]["key"]["id"].as_str().unwrap().to_owned();
        let b_job = env.cli_ok(&["job", "submit", "--org", "beta", "--task", "echo", "--payload", "{}"]).await["id"]
            .as_str().unwrap().to_owned();
        let (_, narrow) = {
            let doc = env.cli_ok(&["key", "create", "--org", "alpha", "--name", "narrow", "--scopes", "admin:api_keys:manage"]).await;
            (doc["key"]["id"].as_str().unwrap().to_owned(), doc["token"].as_str().unwrap().to_owned())
        };
        let before = env.cli_ok(&["job", "show", &b_job, "--org", "beta"]).await;
        for (role, token) in [("viewer", &a.viewer), ("builder", &a.builder), ("admin", &a.admin), ("manage-only", &narrow)] {
            for (m, template) in ORG_ROUTES {
                let method = poem::http::Method::from_bytes(m.as_bytes()).unwrap();
                let fill = |org: &str, key: &str, job: &str| {
                    template.replace("{org}", org).replace("{key}", key).replace("{job}", job)
                };
                // Beta's real org, key and job, named by slug and by id ...
                for org in ["beta", b.org_id.as_str()] {
                    let path = fill(org, &b_kid, &b_job);
                    let foreign = env.http(method.clone(), &path, Some(token), body_for(m, &path)).await;
                    let missing_path = fill("no-such-org", &b_kid, &b_job);
                    let missing = env.http(method.clone(), &missing_path, Some(token), body_for(m, &missing_path)).await;
                    assert_eq!(foreign.status, 404, "{role}: {m} {path}: {}", foreign.text);
                    assert_eq!(foreign.problem_code(), missing.problem_code(), "{role}: {m} {path}");
                }
                // ... and beta's key or job addressed through the caller's own org.
                if template.contains("{key}") || template.contains("{job}") {
                    let path = fill("alpha", &b_kid, &b_job);
                    let r = env.http(method.clone(), &path, Some(token), body_for(m, &path)).await;
                    assert!(matches!(r.status, 403 | 404), "{role}: {m} {path}: {}", r.text);
                    if r.status == 403 {
                        // Only a missing scope may answer first, and it names the scope,
                        // never beta's resource.
                        assert!(!r.text.contains(&b_job) && !r.text.contains(&b_kid), "{}", r.text);
                    }
                }
            }
        }
        // Nothing of beta's changed.
        assert_eq!(env.cli_ok(&["job", "show", &b_job, "--org", "beta"]).await, before);
        assert_eq!(env.cli_ok(&["org", "show", "beta"]).await["plan"], "hero");
        assert_eq!(env.cli_ok(&["key", "show", &b_kid, "--org", "beta"]).await["status"], "active");
        assert_eq!(env.http(Method::GET, "/v1/whoami", Some(&b.viewer), None).await.status, 200);
    }
}
