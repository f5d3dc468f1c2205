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
        assert!(r.header("x-request-id").is_some(), "{what}");
        assert_eq!(
            r.body["request_id"].as_str(),
            r.header("x-request-id"),
            "{what}"
        );
    }
    env.finish().await;
}

/// A body that sends `head` and then nothing more, never ending (a slow or stalled
/// client). Its writer is returned too: the body stays open while it is held.
async fn stalled_body(head: &[u8]) -> (Body, tokio::io::DuplexStream) {
    use tokio::io::AsyncWriteExt;
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    client.write_all(head).await.unwrap();
    (Body::from_async_read(server), client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_is_answered_without_reading_the_body() {
    // A chunked body (no Content-Length) used to be read whole, up to 2 MiB, before the
    // key was looked at: anyone could make the server hold 2 MiB per connection. A body
    // that never ends shows it: the answer must come without it.
    let env = TestEnv::start(Backend::Sqlite).await.unwrap();
    let boot = bootstrap(&env, "acme", "hero").await;
    let mut wrong_secret = boot.viewer.clone();
    let last = wrong_secret.pop().unwrap();
    wrong_secret.push(if last == 'A' { 'B' } else { 'A' });
    let routes = [
        "/v1/orgs/acme/jobs",
        "/v1/orgs/acme/keys",
        "/v1/worker/claim",
    ];
    for path in routes {
        for key in [None, Some("velu_k1_nope"), Some(wrong_secret.as_str())] {
            let (body, _writer) = stalled_body(br#"{"task": "echo", "payload": {"#).await;
            let mut r = Request::builder()
                .method(Method::POST)
                .uri(path.parse().unwrap())
                .content_type("application/json");
            if let Some(k) = key {
                r = r.header("x-api-key", k);
            }
            let reply =
                tokio::time::timeout(std::time::Duration::from_secs(30), env.send(r.body(body)))
                    .await
                    .unwrap_or_else(|_| {
                        panic!("{path} with key {key:?}: the server waited for the body")
                    });
            assert_eq!(reply.status, 401, "{path} with key {key:?}: {}", reply.text);
            assert_eq!(reply.problem_code(), "unauthorized");
        }
    }
    // A keyed request still reads its chunked body, within the cap.
    let body = Body::from_async_read(std::io::Cursor::new(
        br#"{"task": "echo", "payload": {"n": 1}}"#.to_vec(),
    ));
    let r = req(Method::POST, "/v1/orgs/acme/jobs", &boot.admin)
        .content_type("application/json")
        .body(body);
    let ok = env.send(r).await;
    assert_eq!(ok.status, 201, "{}", ok.text);
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

/// A request with `X-Request-Id: id` (as raw bytes, so insane values can be sent too).
fn with_id(method: Method, path: &str, key: Option<&str>, id: &[u8]) -> Request {
    let mut r = Request::builder()
        .method(method)
        .uri(path.parse().unwrap())
        .header(
            "x-request-id",
            poem::http::HeaderValue::from_bytes(id).unwrap(),
        );
    if let Some(k) = key {
        r = r.header("x-api-key", k);
    }
    r.finish()
}

/// The id a reply carries; for a problem, the body's `request_id` must agree.
fn reply_id(r: &velu_tests::HttpReply, what: &str) -> String {
    let id = r
        .header("x-request-id")
        .unwrap_or_else(|| panic!("{what}: no X-Request-Id"))
        .to_owned();
    if r.status >= 400 {
        assert_eq!(
            r.body["request_id"].as_str(),
            Some(id.as_str()),
            "{what}: the problem names the request id: {}",
            r.text
        );
    }
    id
}

/// A subscriber that enables nothing but never lets a callsite be cached as `never`.
struct Undecided;

impl tracing::Subscriber for Undecided {
    fn register_callsite(&self, _: &tracing::Metadata<'_>) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::OFF)
    }
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        false
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Captures what `fut` logs at `info` and above, as JSON lines.
async fn captured<T>(fut: impl std::future::Future<Output = T>) -> (T, Vec<serde_json::Value>) {
    use std::sync::{Arc, Mutex};
    use tracing::instrument::WithSubscriber;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buffer::default();
    let writer = buf.clone();
    let subscriber = velu_http::logs::subscriber(
        velu_http::logs::LogFormat::Json,
        tracing_subscriber::EnvFilter::new("info"),
        false,
        move || writer.clone(),
    );
    // tracing caches each callsite's interest process-wide. With a single registered
    // dispatcher, a callsite first reached on another test's thread (no subscriber there)
    // is cached as `never`, and this capture would miss it. A second, permanent dispatcher
    // that always answers `sometimes` keeps every callsite asking the thread's default.
    static UNDECIDED: std::sync::LazyLock<tracing::Dispatch> =
        std::sync::LazyLock::new(|| tracing::Dispatch::new(Undecided));
    std::sync::LazyLock::force(&UNDECIDED);
    let out = fut.with_subscriber(subscriber).await;
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (out, lines)
}

velu_tests::backend_tests! {
    async fn request_ids_are_echoed_or_generated(env) {
        let boot = bootstrap(&env, "acme", "hero").await;
        let viewer = boot.viewer.as_str();
        let cases = [
            ("200", Method::GET, "/v1/orgs/acme/jobs", Some(viewer), 200),
            ("401", Method::GET, "/v1/orgs/acme/jobs", None, 401),
            ("401 bad key", Method::GET, "/v1/orgs/acme/jobs", Some("velu_k1_nope"), 401),
            ("404 unknown route", Method::GET, "/v1/nothing/at/all", Some(viewer), 404),
            ("405", Method::DELETE, "/v1/plans", None, 405),
            ("public 200", Method::GET, "/health", None, 200),
        ];
        for (i, (what, method, path, key, status)) in cases.into_iter().enumerate() {
            let sent = format!("client-{i}:{what}").replace(' ', "_");
            let r = env.send(with_id(method.clone(), path, key, sent.as_bytes())).await;
            assert_eq!(r.status, status, "{what}: {}", r.text);
            assert_eq!(reply_id(&r, what), sent, "{what}: a sane id is echoed");
            // Without one, each request gets its own UUIDv7.
            let mut plain = Request::builder().method(method).uri(path.parse().unwrap());
            if let Some(k) = key {
                plain = plain.header("x-api-key", k);
            }
            let r = env.send(plain.finish()).await;
            let id = reply_id(&r, what);
            assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7, "{what}");
        }
        // 413 from the body cap, before any route runs.
        let big = Request::builder()
            .method(Method::POST)
            .uri("/v1/orgs/acme/keys".parse().unwrap())
            .header("x-api-key", boot.admin.as_str())
            .header("x-request-id", "big-1")
            .content_type("application/json")
            .body("x".repeat(3 * 1024 * 1024));
        let r = env.send(big).await;
        assert_eq!(r.status, 413);
        assert_eq!(reply_id(&r, "413"), "big-1");

        let too_long = "a".repeat(129);
        let insane: [(&str, &[u8]); 5] = [
            ("too long", too_long.as_bytes()),
            ("with spaces", b"has a space"),
            ("with a tab", b"tab\there"),
            ("non-ASCII", "caf\u{e9}-r\u{e9}sum\u{e9}".as_bytes()),
            ("empty", b""),
        ];
        for (what, raw) in insane {
            for (method, path, key) in [
                (Method::GET, "/v1/nothing", None),
                (Method::GET, "/v1/orgs/acme/jobs", Some(viewer)),
            ] {
                let r = env.send(with_id(method, path, key, raw)).await;
                let id = reply_id(&r, what);
                assert_ne!(id.as_bytes(), raw, "{what}");
                assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7, "{what}");
            }
        }
    }

    async fn access_log_names_route_status_and_request_id(env) {
        let boot = bootstrap(&env, "acme", "hero").await;
        let key = boot.viewer.clone();
        let secret = key.rsplit('_').next().unwrap().to_owned();
        let (replies, lines) = captured(async {
            let ok = env
                .send(with_id(Method::GET, "/v1/orgs/acme/jobs", Some(&key), b"trace-ok"))
                .await;
            let unknown = env
                .send(with_id(Method::GET, "/v1/no/such/route", Some(&key), b"trace-404"))
                .await;
            let denied = env
                .send(with_id(Method::GET, "/v1/orgs/acme/jobs", Some("velu_k1_nope"), b"trace-401"))
                .await;
            (ok.status, unknown.status, denied.status)
        })
        .await;
        assert_eq!(replies, (200, 404, 401));
        let text = lines.iter().map(|l| l.to_string()).collect::<Vec<_>>().join("\n");
        assert!(!text.contains(&key), "the key text is never logged:\n{text}");
        assert!(!text.contains(&secret), "nor its secret:\n{text}");
        let access = |id: &str| {
            let found: Vec<_> = lines
                .iter()
                .filter(|l| {
                    l["target"] == "velu_http::access"
                        && l["spans"]
                            .as_array()
                            .is_some_and(|s| s.iter().any(|s| s["request_id"] == id))
                })
                .collect();
            assert_eq!(found.len(), 1, "one access line for {id}: {} lines\n{text}", lines.len());
            found[0].clone()
        };
        let ok = access("trace-ok");
        assert_eq!(ok["level"], "INFO");
        assert_eq!(ok["method"], "GET");
        assert_eq!(ok["route"], "/v1/orgs/{org}/jobs", "the template, not the slug");
        assert_eq!(ok["status"], 200);
        assert!(ok["duration_ms"].as_f64().is_some(), "{ok}");
        assert_eq!(ok["org_id"], boot.org_id.as_str());
        assert!(ok["key_id"].as_str().is_some_and(|k| !k.is_empty()), "{ok}");
        let unknown = access("trace-404");
        assert_eq!(unknown["route"], "/v1/no/such/route", "unmatched: the raw path");
        assert_eq!(unknown["status"], 404);
        let denied = access("trace-401");
        assert_eq!(denied["route"], "/v1/orgs/{org}/jobs");
        assert_eq!(denied["status"], 401);
        assert!(denied.get("key_id").is_none() && denied.get("org_id").is_none(), "{denied}");
    }
}
