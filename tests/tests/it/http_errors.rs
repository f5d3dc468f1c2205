//! What a browser, a script or a fuzzer sends that is wrong: every answer is a
//! problem+json 4xx with security headers, never a 500.

use poem::http::Method;
use poem::{Body, Request};
use serde_json::json;
use velu_tests::{Backend, TestEnv};

use crate::support::bootstrap;

fn req(method: Method, path: &str, key: &str) -> poem::RequestBuilder {
    Request::builder()
        .method(method)
        .uri(path.parse().unwrap())
        .header("x-api-key", key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_problem_json_4xx() {
    let env = TestEnv::start(Backend::Sqlite).await.unwrap();
    let boot = bootstrap(&env, "acme", "hero").await;
    let k = boot.admin.as_str();
    let big = "x".repeat(3 * 1024 * 1024);
    let cases: Vec<(&str, Request, u16, &str)> = vec![
        (
            "malformed JSON",
            req(Method::POST, "/v1/orgs/acme/keys", k)
                .content_type("application/json")
                .body("{bad json"),
            400,
            "invalid",
        ),
        (
            "JSON of the wrong shape",
            req(Method::POST, "/v1/orgs/acme/keys", k)
                .content_type("application/json")
                .body("[1,2]"),
            400,
            "invalid",
        ),
        (
            "unknown field",
            req(Method::POST, "/v1/orgs/acme/keys", k)
                .content_type("application/json")
                .body(r#"{"name":"x","role":"viewer","org_id":"other"}"#),
            400,
            "invalid",
        ),
        (
            "not JSON at all",
            req(Method::POST, "/v1/orgs/acme/keys", k)
                .content_type("text/plain")
                .body("name=x"),
            415,
            "unsupported_media_type",
        ),
        (
            "no content type",
            req(Method::POST, "/v1/orgs/acme/keys", k).body("{}"),
            415,
            "unsupported_media_type",
        ),
        (
            "body too large",
            req(Method::POST, "/v1/orgs/acme/keys", k)
                .content_type("application/json")
                .body(big.clone()),
            413,
            "payload_too_large",
        ),
        // Without Content-Length (chunked): the cap applies while reading.
        (
            "chunked body too large",
            req(Method::POST, "/v1/orgs/acme/keys", k)
                .content_type("application/json")
                .body(Body::from_async_read(std::io::Cursor::new(
                    big.into_bytes(),
                ))),
            413,
            "payload_too_large",
        ),
        (
            "unknown route",
            req(Method::GET, "/v1/nothing", k).finish(),
            404,
            "not_found",
        ),
        (
            "unknown deep route",
            req(Method::GET, "/v1/orgs/acme/keys/x/y/z", k).finish(),
            404,
            "not_found",
        ),
        (
            "wrong method",
            req(Method::DELETE, "/v1/plans", k).finish(),
            405,
            "method_not_allowed",
        ),
        (
            "malformed org id",
            req(Method::GET, "/v1/orgs/%25%25%25", k).finish(),
            404,
            "not_found",
        ),
        (
            "uuid-looking org id",
            req(
                Method::GET,
                "/v1/orgs/00000000-0000-0000-0000-000000000000",
                k,
            )
            .finish(),
            404,
            "not_found",
        ),
        (
            "malformed key id",
            req(Method::GET, "/v1/orgs/acme/keys/%27%3BDROP%20TABLE", k).finish(),
            404,
            "not_found",
        ),
        (
            "malformed job id",
            req(Method::GET, "/v1/orgs/acme/jobs/not-a-uuid", k).finish(),
            404,
            "not_found",
        ),
        (
            "malformed legacy result id",
            req(Method::GET, "/results/123", k).finish(),
            404,
            "not_found",
        ),
        (
            "limit not a number",
            req(Method::GET, "/v1/orgs/acme/keys?limit=abc", k).finish(),
            400,
            "invalid",
        ),
        (
            "limit out of range",
            req(Method::GET, "/v1/orgs/acme/keys?limit=500", k).finish(),
            400,
            "invalid",
        ),
        (
            "forged cursor",
            req(Method::GET, "/v1/orgs/acme/keys?cursor=eyJ4IjoxfQ", k).finish(),
            400,
            "invalid",
        ),
        (
            "unknown plan",
            req(Method::GET, "/v1/plans/gold", k).finish(),
            404,
            "not_found",
        ),
    ];
    for (what, request, status, code) in cases {
        let r = env.send(request).await;
        assert_eq!(r.status, status, "{what}: {}", r.text);
        assert_eq!(r.problem_code(), code, "{what}");
        assert!(
            r.body["type"]
                .as_str()
                .unwrap()
                .starts_with("urn:velu:error:"),
            "{what}"
        );
        assert!(
            r.body["title"].is_string() && r.body["detail"].is_string(),
            "{what}"
        );
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{what}"
        );
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
        assert!(r.header("content-security-policy").is_some(), "{what}");
    }
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_spec_and_docs() {
    let env = TestEnv::start(Backend::Sqlite).await.unwrap();
    let health = env.http(Method::GET, "/health", None, None).await;
    assert_eq!(
        (health.status, health.body.clone()),
        (200, json!({"status": "ok"}))
    );
    let ready = env.http(Method::GET, "/ready", None, None).await;
    assert_eq!(ready.status, 200);
    let spec = env.http(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(spec.body["openapi"], "3.0.0");
    let yaml = env.http(Method::GET, "/openapi.yaml", None, None).await;
    let parsed: serde_json::Value = serde_yaml::from_str(&yaml.text).unwrap();
    assert_eq!(parsed, spec.body, "YAML and JSON specs agree");
    let docs = env.http(Method::GET, "/docs", None, None).await;
    assert_eq!(docs.status, 200);
    assert!(docs.text.contains("SwaggerUIBundle"));
    let csp = docs.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'sha256-") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let root = env.http(Method::GET, "/", None, None).await;
    assert_eq!(root.status, 303);
    assert_eq!(root.header("location"), Some("/docs"));
    let plans = env.http(Method::GET, "/v1/plans", None, None).await;
    assert_eq!(plans.status, 200, "plans are public");
    // A key sent to a public route is still checked: a bad one is never ignored.
    let boot = bootstrap(&env, "acme", "hero").await;
    let with_key = env
        .http(Method::GET, "/v1/plans", Some(&boot.viewer), None)
        .await;
    assert_eq!((with_key.status, with_key.body.clone()), (200, plans.body));
    assert_eq!(with_key.header("ratelimit-limit"), Some("600"));
    let bad = env
        .http(Method::GET, "/v1/tasks", Some("velu_k1_nope"), None)
        .await;
    assert_eq!(bad.problem_code(), "unauthorized");
    env.finish().await;
}
