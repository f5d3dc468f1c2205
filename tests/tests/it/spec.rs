//! The spec says what the server does: every constraint the server enforces is declared
//! (so a fuzzer's schema-valid request is accepted), 405s carry `Allow`, 401s carry
//! `WWW-Authenticate`, request bodies refuse unknown fields, and hostile input (U+0000 in
//! a path, a query or a body) is a 4xx on both backends, never a 500. scripts/schemathesis.sh
//! checks the same end to end against a running server.

use poem::http::Method;
use serde_json::{Value, json};
use velu_tests::{Backend, TestEnv, backend_tests};

use crate::support::{ALL_SCOPES, bootstrap, platform_key};

fn spec() -> Value {
    serde_json::from_str(&velu_http::openapi_json()).unwrap()
}

fn schema<'a>(spec: &'a Value, name: &str) -> &'a Value {
    &spec["components"]["schemas"][name]
}

/// The query parameter `name` of `method path`.
fn param<'a>(spec: &'a Value, path: &str, method: &str, name: &str) -> &'a Value {
    spec["paths"][path][method]["parameters"]
        .as_array()
        .unwrap_or_else(|| panic!("{method} {path} has parameters"))
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{method} {path} has `{name}`"))
}

#[test]
fn the_spec_declares_the_servers_constraints() {
    use velu_core::jobs::{MAX_BATCH, STATUSES};
    use velu_core::pagination::MAX_LIMIT;
    use velu_core::tasks::MAX_ATTEMPTS_LIMIT;
    use velu_http::model::common::{
        KEY_NAME_PATTERN, NAME_PATTERN, PLAIN_TEXT_PATTERN, TASK_PATTERN,
    };
    let spec = spec();

    for body in ["CreateOrg", "BootstrapOrg"] {
        let s = schema(&spec, body);
        assert_eq!(
            s["properties"]["slug"]["pattern"],
            velu_core::orgs::SLUG_PATTERN,
            "{body}"
        );
        assert_eq!(s["properties"]["name"]["pattern"], NAME_PATTERN, "{body}");
        assert_eq!(
            s["properties"]["name"]["maxLength"],
            velu_core::orgs::MAX_NAME_CHARS,
            "{body}"
        );
        assert!(
            s["properties"]["plan"]
                .to_string()
                .contains("#/components/schemas/Plan"),
            "{body}: plan is the enum"
        );
    }
    assert_eq!(
        schema(&spec, "Plan")["enum"],
        json!(["base", "hero", "superhero"])
    );

    let key = schema(&spec, "CreateKey");
    assert_eq!(key["properties"]["name"]["pattern"], KEY_NAME_PATTERN);
    assert_eq!(
        key["properties"]["name"]["maxLength"],
        velu_core::keys::MAX_KEY_NAME
    );
    let org_scopes: Vec<&str> = velu_core::scopes::Scope::ALL
        .iter()
        .filter(|s| !s.platform_only())
        .map(|s| s.as_str())
        .collect();
    assert_eq!(
        schema(&spec, "OrgScope")["enum"],
        json!(org_scopes),
        "org keys take org scopes only"
    );
    assert_eq!(
        schema(&spec, "Role")["enum"],
        json!(["viewer", "builder", "admin", "worker"])
    );

    for body in ["SubmitJob", "BatchJob", "LegacyTask"] {
        let props = &schema(&spec, body)["properties"];
        assert_eq!(props["task"]["pattern"], TASK_PATTERN, "{body}");
        assert_eq!(props["payload"]["type"], "object", "{body}");
        if body != "LegacyTask" {
            assert_eq!(
                (
                    props["priority"]["minimum"].as_f64(),
                    props["priority"]["maximum"].as_f64()
                ),
                (Some(-100.0), Some(100.0)),
                "{body}"
            );
            assert_eq!(
                props["max_attempts"]["maximum"].as_f64(),
                Some(f64::from(MAX_ATTEMPTS_LIMIT)),
                "{body}"
            );
            assert_eq!(
                props["max_attempts"]["minimum"].as_f64(),
                Some(1.0),
                "{body}"
            );
        }
    }
    assert_eq!(
        schema(&spec, "SubmitJob")["properties"]["idempotency_key"]["pattern"],
        PLAIN_TEXT_PATTERN
    );
    let jobs = &schema(&spec, "SubmitBatch")["properties"]["jobs"];
    assert_eq!(
        (jobs["minItems"].as_u64(), jobs["maxItems"].as_u64()),
        (Some(1), Some(MAX_BATCH as u64))
    );
    assert!(
        schema(&spec, "BatchJob")["properties"]
            .get("idempotency_key")
            .is_none(),
        "not taken in batches"
    );

    for (path, method) in [
        ("/v1/orgs", "get"),
        ("/v1/orgs/{org}/keys", "get"),
        ("/v1/orgs/{org}/jobs", "get"),
        ("/v1/orgs/{org}/audit", "get"),
    ] {
        let limit = &param(&spec, path, method, "limit")["schema"];
        assert_eq!(
            (limit["minimum"].as_f64(), limit["maximum"].as_f64()),
            (Some(1.0), Some(f64::from(MAX_LIMIT))),
            "{path}"
        );
        assert!(
            param(&spec, path, method, "cursor")["schema"]["pattern"].is_string(),
            "{path}"
        );
    }
    let status = param(&spec, "/v1/orgs/{org}/jobs", "get", "status");
    assert!(
        status
            .to_string()
            .contains("#/components/schemas/JobStatus")
    );
    assert_eq!(schema(&spec, "JobStatus")["enum"], json!(STATUSES));
    assert_eq!(
        param(&spec, "/v1/orgs/{org}/jobs", "get", "task")["schema"]["pattern"],
        PLAIN_TEXT_PATTERN
    );
    let q = &param(&spec, "/v1/orgs", "get", "q")["schema"];
    assert_eq!(
        (q["maxLength"].as_u64(), &q["pattern"]),
        (Some(200), &json!(PLAIN_TEXT_PATTERN))
    );
    let grace = &param(
        &spec,
        "/v1/orgs/{org}/keys/{key}/rotate",
        "post",
        "grace_secs",
    )["schema"];
    assert_eq!(
        grace["maximum"].as_f64(),
        Some(velu_core::keys::MAX_GRACE.as_secs() as f64)
    );
    assert_eq!(grace["minimum"].as_f64(), Some(0.0));
}

#[test]
fn the_spec_declares_every_status_and_header() {
    let spec = spec();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            if op.get("requestBody").is_some() {
                assert!(
                    responses.contains_key("415"),
                    "{method} {path} takes a body: 415"
                );
                assert!(
                    responses.contains_key("413"),
                    "{method} {path} takes a body: 413"
                );
            } else {
                assert!(
                    !responses.contains_key("415"),
                    "{method} {path} has no body: no 415"
                );
            }
            if op.get("security").is_some() {
                let www = &responses["401"]["headers"]["WWW-Authenticate"];
                assert_eq!(
                    www["required"], true,
                    "{method} {path}: 401 declares WWW-Authenticate"
                );
                assert!(
                    responses["429"]["headers"].get("Retry-After").is_some(),
                    "{method} {path}"
                );
            }
        }
    }
    // Public routes check a key when one is sent: their 401 and 429 are declared too.
    for path in ["/v1/plans", "/v1/plans/{plan}", "/v1/tasks"] {
        let responses = &spec["paths"][path]["get"]["responses"];
        assert!(
            responses.get("401").is_some() && responses.get("429").is_some(),
            "{path}"
        );
    }
}

#[test]
fn request_bodies_declare_that_they_refuse_unknown_fields() {
    let spec = spec();
    for name in [
        "CreateOrg",
        "BootstrapOrg",
        "SetPlan",
        "CreateKey",
        "SubmitJob",
        "SubmitBatch",
        "BatchJob",
        "LegacyTask",
    ] {
        assert_eq!(schema(&spec, name)["additionalProperties"], false, "{name}");
    }
    for name in ["Org", "Job", "ApiKey", "Problem"] {
        assert!(
            schema(&spec, name).get("additionalProperties").is_none(),
            "{name} is an answer"
        );
    }
}

#[test]
fn optional_answer_fields_are_nullable() {
    let spec = spec();
    for (name, field) in [
        ("Job", "finished_at"),
        ("Job", "error"),
        ("Job", "result"),
        ("Job", "idempotency_key"),
        ("ApiKey", "org_id"),
        ("ApiKey", "revoked_at"),
        ("Whoami", "org"),
        ("AuditEvent", "org_id"),
        ("Page_Job", "next_cursor"),
    ] {
        assert_eq!(
            schema(&spec, name)["properties"][field]["nullable"],
            true,
            "{name}.{field}"
        );
    }
}

/// Every fixed segment of a route is a reserved slug, so no org's slug can collide with a
/// route (an org `bootstrap` could never be shown at `/v1/orgs/{org}`).
#[test]
fn every_fixed_route_segment_is_a_reserved_slug() {
    let spec = spec();
    for path in spec["paths"].as_object().unwrap().keys() {
        for seg in path
            .split('/')
            .filter(|s| !s.is_empty() && !s.starts_with('{'))
        {
            if velu_core::orgs::validate_slug(seg).is_ok() || seg.len() < 2 {
                assert!(
                    velu_core::orgs::RESERVED_SLUGS.contains(&seg) || seg.len() < 2,
                    "`{seg}` (of {path}) is a route word: reserve it in velu_core::orgs::RESERVED_SLUGS"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_words_are_refused_as_slugs_on_both_front_ends() {
    let env = TestEnv::start(Backend::Sqlite).await.unwrap();
    let platform = platform_key(&env, "ops", ALL_SCOPES).await;
    for slug in ["bootstrap", "new", "batch", "stats"] {
        let cli = env
            .cli(&["org", "create", "--name", "X", "--slug", slug])
            .await;
        assert_eq!(cli.error_code(), "invalid", "cli org create {slug}");
        let cli = env
            .cli(&["org", "bootstrap", "--name", "X", "--slug", slug])
            .await;
        assert_eq!(cli.error_code(), "invalid", "cli org bootstrap {slug}");
        for path in ["/v1/orgs", "/v1/orgs/bootstrap"] {
            let r = env
                .http(
                    Method::POST,
                    path,
                    Some(&platform),
                    Some(json!({"name": "X", "slug": slug})),
                )
                .await;
            assert_eq!(
                (r.status, r.problem_code()),
                (400, "invalid".into()),
                "POST {path} {slug}: {}",
                r.text
            );
            assert_eq!(r.body["field"], "slug", "POST {path} {slug}");
        }
    }
    let ok = env
        .http(
            Method::POST,
            "/v1/orgs",
            Some(&platform),
            Some(json!({"name": "X", "slug": "bootstrap-co"})),
        )
        .await;
    assert_eq!(
        ok.status, 201,
        "only the whole word is reserved: {}",
        ok.text
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compat_submit_refuses_unknown_fields() {
    let env = TestEnv::start(Backend::Sqlite).await.unwrap();
    let boot = bootstrap(&env, "acme", "hero").await;
    for (field, value) in [
        ("org_id", json!("someone-else")),
        ("priority", json!(100)),
        ("status", json!("succeeded")),
    ] {
        let mut body = json!({"task": "echo", "payload": {}});
        body[field] = value;
        let r = env
            .http(Method::POST, "/tasks", Some(&boot.builder), Some(body))
            .await;
        assert_eq!(
            (r.status, r.problem_code()),
            (400, "invalid".into()),
            "{field}: {}",
            r.text
        );
        assert_eq!(r.body["field"], field, "the problem names the field");
        assert!(
            r.body["detail"].as_str().unwrap().contains(field),
            "{}",
            r.text
        );
    }
    let ok = env
        .http(
            Method::POST,
            "/tasks",
            Some(&boot.builder),
            Some(json!({"task": "echo", "payload": {"x": 1}})),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let stats = env.cli_ok(&["job", "stats", "--org", "acme"]).await;
    assert_eq!(stats["total"], 1, "only the well-formed submit was queued");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_catalog_never_shows_command_lines() {
    let env = TestEnv::start(Backend::Sqlite).await.unwrap();
    let platform = platform_key(&env, "ops", ALL_SCOPES).await;
    let anonymous = env.http(Method::GET, "/v1/tasks", None, None).await;
    let with_key = env
        .http(Method::GET, "/v1/tasks", Some(&platform), None)
        .await;
    let cli = env.cli_ok(&["task", "list"]).await;
    assert_eq!(anonymous.status, 200);
    assert_eq!(with_key.body, anonymous.body, "a platform key sees no more");
    assert_eq!(cli, anonymous.body, "the CLI prints the same document");
    let items = anonymous.body["items"].as_array().unwrap();
    assert!(
        items.iter().any(|t| t["kind"] == "command"),
        "the fixture has command kinds"
    );
    for item in items {
        // Sorted: documents keep their fields' order, this checks the set.
        let mut keys: Vec<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "description",
                "kind",
                "max_attempts",
                "min_plan",
                "name",
                "timeout_secs"
            ]
        );
    }
    // The fixture's programs and their folders appear nowhere.
    for secret in [".sh", "examples/tasks", "fixtures", "probe", "spawner", "/"] {
        let text = items
            .iter()
            .map(|t| t["description"].as_str().unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        if secret == "probe" || secret == "spawner" {
            // Kind names may say it; descriptions may not.
            assert!(!text.contains(&format!("{secret}.sh")), "{text}");
        } else {
            assert!(
                !text.contains(secret),
                "descriptions leak `{secret}`: {text}"
            );
        }
    }
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_405_says_allow_and_every_401_says_www_authenticate() {
    let env = TestEnv::start(Backend::Sqlite).await.unwrap();
    let boot = bootstrap(&env, "acme", "hero").await;
    for (method, path, allow) in [
        (Method::DELETE, "/v1/plans", "GET, HEAD"),
        (Method::TRACE, "/health", "GET, HEAD"),
        (Method::PATCH, "/v1/orgs", "GET, HEAD, POST"),
        (Method::GET, "/v1/orgs/bootstrap", "POST"),
        (Method::DELETE, "/v1/orgs/acme/jobs/stats", "GET, HEAD"),
        (Method::GET, "/v1/orgs/acme/jobs/batch", "POST"),
        (Method::DELETE, "/v1/orgs/acme/keys/abc", "GET, HEAD"),
        (Method::GET, "/v1/orgs/acme/keys/abc/rotate", "POST"),
        (Method::POST, "/v1/orgs/acme/plan", "PUT"),
        (Method::PUT, "/results/x", "GET, HEAD"),
        (Method::POST, "/openapi.json", "GET, HEAD"),
    ] {
        let r = env
            .http(method.clone(), path, Some(&boot.admin), None)
            .await;
        assert_eq!(
            (r.status, r.problem_code()),
            (405, "method_not_allowed".into()),
            "{method} {path}"
        );
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
    }
    for (path, key) in [
        ("/v1/whoami", None),
        ("/v1/whoami", Some("velu_k1_nope")),
        ("/v1/tasks", Some("not-a-key-at-all")),
    ] {
        let r = env.http(Method::GET, path, key, None).await;
        assert_eq!(
            (r.status, r.problem_code()),
            (401, "unauthorized".into()),
            "{path} {key:?}"
        );
        let challenges: Vec<&str> = r
            .headers
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert!(
            challenges.iter().any(|c| c.starts_with("Bearer ")),
            "{path}: {challenges:?}"
        );
        assert!(
            challenges
                .iter()
                .any(|c| c.starts_with("ApiKey ") && c.contains("X-API-Key")),
            "{path}: {challenges:?}"
        );
    }
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_valid_edges_are_accepted_and_the_rest_refused() {
    let env = TestEnv::start(Backend::Sqlite).await.unwrap();
    let platform = platform_key(&env, "ops", ALL_SCOPES).await;
    let k = Some(platform.as_str());
    let get = |path: String| {
        let env = env.clone();
        async move { env.http(Method::GET, &path, k, None).await }
    };
    assert_eq!(get("/v1/orgs?limit=200".into()).await.status, 200);
    assert_eq!(get("/v1/orgs?limit=1&cursor=".into()).await.status, 200);
    for bad in ["limit=0", "limit=201", "q=a%09b", "cursor=%2F%2F"] {
        let r = get(format!("/v1/orgs?{bad}")).await;
        assert_eq!(
            (r.status, r.problem_code()),
            (400, "invalid".into()),
            "{bad}"
        );
    }
    let post = |body: Value| {
        let env = env.clone();
        async move { env.http(Method::POST, "/v1/orgs", k, Some(body)).await }
    };
    let long = "a".repeat(63);
    for ok in [
        json!({"name": " N ", "slug": long, "plan": null}),
        json!({"name": "x".repeat(200), "slug": "ab", "plan": "hero"}),
    ] {
        assert_eq!(post(ok.clone()).await.status, 201, "{ok}");
    }
    for (bad, field) in [
        (json!({"name": "N", "slug": false}), "body"),
        (json!({"name": 7, "slug": "seven"}), "body"),
        (json!({"name": "   ", "slug": "blank"}), "name"),
        (json!({"name": "x".repeat(201), "slug": "long"}), "name"),
        (json!({"name": "N", "slug": "gold", "plan": "gold"}), "body"),
        (json!({"name": "N", "slug": "extra", "extra": 1}), "extra"),
    ] {
        let r = post(bad.clone()).await;
        assert_eq!(
            (r.status, r.problem_code()),
            (400, "invalid".into()),
            "{bad}: {}",
            r.text
        );
        assert_eq!(r.body["field"], field, "{bad}");
    }
    env.finish().await;
}

backend_tests! {
    /// U+0000 in a path parameter, a query parameter or a JSON body is refused as
    /// `invalid` (or is simply not found), never a 500 (PostgreSQL's text cannot hold it).
    async fn nul_anywhere_is_a_4xx_never_a_500(env) {
        let boot = bootstrap(&env, "acme", "hero").await;
        let platform = platform_key(&env, "ops", ALL_SCOPES).await;
        let job = env.cli_ok(&["job", "submit", "--org", "acme", "--task", "echo"]).await;
        let job = job["id"].as_str().unwrap().to_owned();
        let cases: Vec<(Method, String, &str, Option<Value>)> = vec![
            (Method::GET, "/v1/orgs/%00".into(), &platform, None),
            (Method::GET, "/v1/orgs/ac%00me".into(), &platform, None),
            (Method::GET, "/v1/orgs/acme/jobs/%00".into(), &boot.admin, None),
            (Method::POST, "/v1/orgs/acme/jobs/%00/cancel".into(), &boot.admin, None),
            (Method::GET, "/v1/orgs/acme/keys/%00".into(), &boot.admin, None),
            (Method::GET, "/v1/plans/%00".into(), &boot.admin, None),
            (Method::GET, "/results/%00".into(), &boot.admin, None),
            (Method::GET, "/v1/orgs/acme/jobs?task=%00".into(), &boot.admin, None),
            (Method::GET, "/v1/orgs/acme/jobs?task=echo%00".into(), &boot.admin, None),
            (Method::GET, "/v1/orgs?q=a%00b".into(), &platform, None),
            (Method::GET, "/v1/orgs/acme/jobs?cursor=%00".into(), &boot.admin, None),
            // A well-formed cursor whose sort key holds U+0000.
            (Method::GET, format!("/v1/orgs/acme/jobs?cursor={}", forged_cursor()), &boot.admin, None),
            (Method::POST, "/v1/orgs/acme/jobs".into(), &boot.builder, Some(json!({"task": "echo", "payload": {"a": "x\u{0}y"}}))),
            (Method::POST, "/v1/orgs/acme/jobs".into(), &boot.builder, Some(json!({"task": "echo", "payload": {"k\u{0}": 1}}))),
            (Method::POST, "/v1/orgs/acme/jobs".into(), &boot.builder, Some(json!({"task": "echo", "idempotency_key": "a\u{0}"}))),
            (Method::POST, "/v1/orgs/acme/jobs".into(), &boot.builder, Some(json!({"task": "ec\u{0}ho"}))),
            (Method::POST, "/v1/orgs/acme/jobs".into(), &boot.builder, Some(json!({"task": "echo", "run_at": "2030-01-01T00:00:00Z\u{0}"}))),
            (Method::POST, "/v1/orgs/acme/jobs/batch".into(), &boot.builder, Some(json!({"jobs": [{"task": "echo", "payload": {"a": "\u{0}"}}]}))),
            (Method::POST, "/tasks".into(), &boot.builder, Some(json!({"task": "echo", "payload": {"a": "\u{0}"}}))),
            (Method::POST, "/v1/orgs/acme/keys".into(), &boot.admin, Some(json!({"name": "k\u{0}", "role": "viewer"}))),
            (Method::POST, "/v1/orgs".into(), &platform, Some(json!({"name": "N\u{0}", "slug": "nul-org"}))),
        ];
        for (method, path, key, body) in cases {
            let r = env.http(method.clone(), &path, Some(key), body.clone()).await;
            assert!((400..500).contains(&r.status), "{method} {path} {body:?}: {} {}", r.status, r.text);
            let code = r.problem_code();
            assert!(code == "invalid" || code == "not_found", "{method} {path} {body:?}: {code}");
        }
        // The job the CLI made is still there and untouched.
        let shown = env.http(Method::GET, &format!("/v1/orgs/acme/jobs/{job}"), Some(&boot.admin), None).await;
        assert_eq!(shown.status, 200);
        assert_eq!(shown.body["payload"], json!({}));
    }
}

/// A cursor in the server's format (base64url of `{l, f, k}`) whose key holds U+0000.
fn forged_cursor() -> String {
    use base64::Engine;
    let body = json!({"l": "jobs", "f": "x", "k": ["\u{0}"]});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(body.to_string())
}

/// Every answer carries `X-Request-Id`, and every problem its `request_id`.
#[test]
fn every_response_declares_the_request_id() {
    let spec = spec();
    let problem = schema(&spec, "Problem");
    assert_eq!(problem["properties"]["request_id"]["type"], "string");
    assert!(
        problem["required"]
            .as_array()
            .unwrap()
            .contains(&json!("request_id")),
        "request_id is always there"
    );
    let mut seen = 0;
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                let header = &response["headers"]["X-Request-Id"];
                assert_eq!(header["required"], true, "{method} {path} {status}");
                assert_eq!(
                    header["schema"]["type"], "string",
                    "{method} {path} {status}"
                );
                seen += 1;
            }
        }
    }
    assert!(seen > 100, "{seen} responses");
}
