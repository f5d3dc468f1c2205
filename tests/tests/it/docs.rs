//! /docs for people: gzip when asked (and only then), the spec's tag order, `servers`,
//! plain-text summaries, the docs page showing the finished spec. The page itself, in a
//! real browser, is scripts/browser-check.sh.

use std::io::Read;

use flate2::read::GzDecoder;
use poem::http::{HeaderMap, Method};
use poem::{Endpoint, IntoResponse, Request};
use serde_json::{Value, json};
use velu_tests::{Backend, TestEnv, backend_tests};

use crate::support::{bootstrap, submit};

/// An answer as bytes, undecoded.
struct Raw {
    status: u16,
    headers: HeaderMap,
    bytes: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `Vary` values, lower-cased, across every `Vary` line.
    fn vary(&self) -> Vec<String> {
        self.headers
            .get_all("vary")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().to_ascii_lowercase())
            .collect()
    }

    fn is_gzip(&self) -> bool {
        self.header("content-encoding") == Some("gzip")
    }

    /// The body, gunzipped when it says gzip.
    fn decoded(&self) -> Vec<u8> {
        if !self.is_gzip() {
            return self.bytes.clone();
        }
        let mut out = Vec::new();
        GzDecoder::new(self.bytes.as_slice())
            .read_to_end(&mut out)
            .expect("a valid gzip body");
        out
    }
}

async fn get(
    env: &TestEnv,
    method: Method,
    path: &str,
    accept: Option<&str>,
    key: Option<&str>,
) -> Raw {
    let mut req = Request::builder()
        .method(method)
        .uri(path.parse().expect("uri"));
    if let Some(a) = accept {
        req = req.header("accept-encoding", a);
    }
    if let Some(k) = key {
        req = req.header("x-api-key", k);
    }
    let app = velu_http::app(env.velu().clone());
    let resp = match app.call(req.finish()).await {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    };
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().into_vec().await.expect("body");
    Raw {
        status,
        headers,
        bytes,
    }
}

/// The spec, the YAML spec and the docs page: gzip when asked, identity otherwise, the
/// same bytes either way, `Vary: Accept-Encoding` once, and much smaller compressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_documents_are_gzipped_only_when_asked() {
    let env = TestEnv::start(Backend::Sqlite).await.unwrap();
    let spec = velu_http::openapi_json() + "\n";
    for (path, kind) in [
        ("/openapi.json", "application/json"),
        ("/openapi.yaml", "application/x-yaml"),
        ("/docs", "text/html"),
        ("/docs/", "text/html"),
    ] {
        let plain = get(&env, Method::GET, path, None, None).await;
        let refused = get(&env, Method::GET, path, Some("gzip;q=0, br"), None).await;
        let packed = get(&env, Method::GET, path, Some("gzip, deflate, br"), None).await;
        for r in [&plain, &refused, &packed] {
            assert_eq!(r.status, 200, "{path}");
            assert!(
                r.header("content-type").unwrap().starts_with(kind),
                "{path}"
            );
            assert_eq!(r.vary(), vec!["accept-encoding"], "{path}: Vary once");
            assert!(
                r.header("x-request-id").is_some(),
                "{path}: other headers stay"
            );
        }
        assert!(
            !plain.is_gzip() && !refused.is_gzip(),
            "{path}: identity unless asked"
        );
        assert!(packed.is_gzip(), "{path}: gzip when asked");
        assert_eq!(refused.bytes, plain.bytes, "{path}");
        assert_eq!(packed.decoded(), plain.bytes, "{path}: the same document");
        assert!(
            packed.bytes.len() * 3 < plain.bytes.len(),
            "{path}: {} gzipped of {}",
            packed.bytes.len(),
            plain.bytes.len()
        );
        if path == "/openapi.json" {
            assert_eq!(plain.bytes, spec.as_bytes());
        }
    }
    // The docs page under its CSP, in both encodings.
    let page = get(&env, Method::GET, "/docs", Some("gzip"), None).await;
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'sha256-") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    env.finish().await;
}

backend_tests! {
    /// API answers: gzip for large JSON when asked (also above the size compressed off the
    /// request threads), identity otherwise; the same bytes either way.
    async fn api_answers_are_gzipped_when_large_and_asked(env) {
        let boot = bootstrap(&env, "gz-org", "hero").await;
        // Above 64 KiB once serialized, so it is compressed on the blocking pool.
        let payload = json!({"text": "velu ".repeat(20_000)});
        let job = submit(&env, "gz-org", "echo", payload).await;
        let paths = [
            "/v1/tasks".to_owned(),
            format!("/v1/orgs/{}/jobs/{job}", boot.org_id),
            format!("/v1/orgs/{}/jobs", boot.org_id),
        ];
        for path in &paths {
            let plain = get(&env, Method::GET, path, None, Some(&boot.viewer)).await;
            let packed = get(&env, Method::GET, path, Some("gzip"), Some(&boot.viewer)).await;
            assert_eq!((plain.status, packed.status), (200, 200), "{path}");
            assert!(plain.bytes.len() >= velu_http::compression::MIN_BYTES, "{path}");
            assert!(!plain.is_gzip() && packed.is_gzip(), "{path}");
            assert!(plain.vary().contains(&"accept-encoding".to_owned()), "{path}");
            assert!(packed.vary().contains(&"accept-encoding".to_owned()), "{path}");
            assert_eq!(packed.decoded(), plain.bytes, "{path}: the same document");
            assert!(packed.bytes.len() < plain.bytes.len(), "{path}");
            assert_eq!(packed.header("cache-control"), Some("no-store"), "{path}");
            assert!(packed.header("ratelimit-remaining").is_some(), "{path}: headers stay");
        }
        let big = get(&env, Method::GET, &paths[1], Some("gzip"), Some(&boot.viewer)).await;
        let doc: Value = serde_json::from_slice(&big.decoded()).unwrap();
        assert!(big.decoded().len() > 64 * 1024, "large enough for the blocking pool");
        assert_eq!(doc["id"], job.as_str());
        env.finish().await;
    }

    /// Tiny answers and problems stay identity whatever the client accepts; so does every
    /// answer to a client that refuses gzip, however it says so.
    async fn tiny_answers_problems_and_refusals_stay_identity(env) {
        let boot = bootstrap(&env, "gz-tiny", "hero").await;
        let health = get(&env, Method::GET, "/health", Some("gzip"), None).await;
        assert_eq!(health.status, 200);
        assert!(!health.is_gzip() && health.bytes.len() < velu_http::compression::MIN_BYTES);
        let problems = [
            get(&env, Method::GET, "/v1/nope", Some("gzip"), None).await,
            get(&env, Method::GET, "/v1/whoami", Some("gzip"), Some("velu_k1_nope")).await,
            get(&env, Method::DELETE, "/v1/tasks", Some("gzip"), None).await,
            get(&env, Method::GET, "/v1/orgs/00000000-0000-0000-0000-000000000000/jobs", Some("gzip"), Some(&boot.viewer)).await,
        ];
        for p in &problems {
            assert!(p.status >= 400, "{}", p.status);
            assert_eq!(p.header("content-type"), Some("application/problem+json"));
            assert!(!p.is_gzip(), "problem {} stays identity", p.status);
            let body: Value = serde_json::from_slice(&p.bytes).expect("problem JSON");
            assert_eq!(body["request_id"].as_str(), p.header("x-request-id"));
        }
        for refusal in ["identity", "gzip;q=0", "gzip;q=0.0, *;q=1", "*;q=0", "br, zstd", "gzip;q=bogus", ""] {
            let r = get(&env, Method::GET, "/v1/tasks", Some(refusal), Some(&boot.viewer)).await;
            assert_eq!(r.status, 200, "{refusal}");
            assert!(!r.is_gzip(), "{refusal:?} refuses gzip");
            assert!(r.vary().contains(&"accept-encoding".to_owned()), "{refusal}");
        }
        for consent in ["x-gzip", "*", "br;q=1, gzip;q=0.1", "GZIP"] {
            let r = get(&env, Method::GET, "/v1/tasks", Some(consent), Some(&boot.viewer)).await;
            assert!(r.is_gzip(), "{consent:?} accepts gzip");
        }
        env.finish().await;
    }
}

/// HEAD of a gzipped document: the headers of the GET, no body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_of_the_docs_page_has_no_body() {
    let env = TestEnv::start(Backend::Sqlite).await.unwrap();
    let head = get(&env, Method::HEAD, "/docs", Some("gzip"), None).await;
    assert_eq!(head.status, 200);
    assert!(head.bytes.is_empty());
    assert!(head.is_gzip());
    env.finish().await;
}

fn spec() -> Value {
    serde_json::from_str(&velu_http::openapi_json()).expect("the spec is JSON")
}

/// The tags follow what users do first: jobs, keys, orgs, plans, ...; compat last. Each has
/// a description, and every operation's tag is among them.
#[test]
fn tags_follow_what_users_do_first() {
    let spec = spec();
    let tags: Vec<&str> = spec["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        tags,
        [
            "Jobs",
            "Keys",
            "Orgs",
            "Plans",
            "Schedules",
            "Secrets",
            "Queue",
            "Audit",
            "Usage",
            "Workers",
            "WorkerProtocol",
            "Metrics",
            "Health",
            "Compat"
        ]
    );
    for tag in spec["tags"].as_array().unwrap() {
        let d = tag["description"].as_str().unwrap_or_default();
        assert!(d.len() > 10, "{tag} has a description");
    }
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let t = op["tags"].as_array().unwrap();
            assert_eq!(t.len(), 1, "{method} {path} shows once in the docs");
            assert!(tags.contains(&t[0].as_str().unwrap()), "{method} {path}");
        }
    }
}

/// `servers` is this server (relative), so "Try it out" goes where the page came from and
/// the spec stays the same wherever it is served.
#[test]
fn servers_is_the_serving_server() {
    let spec = spec();
    assert_eq!(spec["servers"].as_array().map(Vec::len), Some(1));
    assert_eq!(spec["servers"][0]["url"], "/");
    assert_eq!(
        velu_http::api::finished_spec(),
        velu_http::api::finished_spec(),
        "deterministic"
    );
}

/// Swagger UI shows summaries as plain text: one line, one sentence, no backticks; the
/// rest, code spans included, is in the description (Markdown).
#[test]
fn summaries_are_plain_text() {
    let spec = spec();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let s = op["summary"].as_str().unwrap_or_default();
            assert!(!s.is_empty(), "{method} {path} has a summary");
            assert!(
                !s.contains('`') && !s.contains('\n'),
                "{method} {path}: {s}"
            );
            assert!(s.len() < 200, "{method} {path}: one sentence: {s}");
            if op.get("security").is_some() {
                let d = op["description"].as_str().unwrap_or_default();
                assert!(
                    !d.is_empty(),
                    "{method} {path}: the scope is in the description"
                );
            }
        }
    }
    // A code span of a first sentence renders below: nothing is lost.
    let claim = &spec["paths"]["/v1/worker/claim"]["post"];
    assert!(
        claim["description"].as_str().unwrap().contains('`'),
        "{claim}"
    );
}

/// The docs page embeds the spec as served (tags in order, servers), not poem's raw one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_shows_the_served_spec() {
    let env = TestEnv::start(Backend::Sqlite).await.unwrap();
    let page = get(&env, Method::GET, "/docs", None, None).await;
    let html = String::from_utf8(page.bytes).unwrap();
    let spec = velu_http::openapi_json().replace("</", "<\\/");
    assert!(html.contains(&format!("let spec = {spec};")));
    assert!(html.contains("<title>Velu API</title>"));
    env.finish().await;
}
