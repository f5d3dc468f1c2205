//! `GET /metrics` and the `--metrics-addr` listener: who may scrape, that the output is
//! OpenMetrics text, that counters move with traffic, and that label sets stay bounded.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::time::Duration;

use poem::http::Method;
use poem::{Body, Endpoint, IntoResponse, Request};
use serde_json::json;
use velu_core::metrics::CONTENT_TYPE;
use velu_core::plans::Plan;
use velu_core::queue::{self, ReadyOrg};
use velu_tests::{TestEnv, backend_tests};

use crate::support::{bootstrap, drain_queue, fast_worker, platform_key, submit};

/// One sample line: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses `k="v",k2="v2"` (values escaped as `\\`, `\"`, `\n`).
fn parse_labels(text: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("label without =\" in `{line}`"));
        assert!(
            is_metric_name(key) && !key.contains(':'),
            "label name `{key}` in `{line}`"
        );
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => panic!("bad escape {other:?} in `{line}`"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => {
                    assert!(c != '\n', "raw newline in a label value: `{line}`");
                    value.push(c);
                }
                None => panic!("unterminated label value in `{line}`"),
            }
        };
        assert!(
            labels.insert(key.to_owned(), value).is_none(),
            "label `{key}` twice in `{line}`"
        );
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    labels
}

/// Checks the exposition line by line (OpenMetrics text: `# TYPE`/`# HELP`/`# UNIT`
/// metadata, samples of declared families only, `# EOF` last) and returns its samples.
fn parse_exposition(text: &str) -> Vec<Sample> {
    assert!(text.ends_with("# EOF\n"), "the exposition ends with # EOF");
    let mut families: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if *line == "# EOF" {
            assert_eq!(i, lines.len() - 1, "# EOF is the last line");
            continue;
        }
        if let Some(meta) = line.strip_prefix("# ") {
            let mut parts = meta.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap(), parts.next().unwrap_or(""));
            assert!(is_metric_name(name), "metric name `{name}` in `{line}`");
            match kind {
                "TYPE" => {
                    let ty = parts.next().unwrap_or("");
                    assert!(
                        ["counter", "gauge", "histogram", "info", "unknown"].contains(&ty),
                        "type `{ty}` in `{line}`"
                    );
                    assert!(
                        families.insert(name.to_owned(), ty.to_owned()).is_none(),
                        "family `{name}` declared twice"
                    );
                }
                "HELP" | "UNIT" => {}
                other => panic!("unknown metadata `{other}` in `{line}`"),
            }
            continue;
        }
        assert!(!line.is_empty(), "no empty lines in OpenMetrics");
        let (head, value) = line.rsplit_once(' ').expect("a sample has a value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("value `{v}` in `{line}`")),
        };
        let (name, labels) = match head.split_once('{') {
            Some((name, rest)) => {
                let inner = rest.strip_suffix('}').expect("labels end with }");
                (name, parse_labels(inner, line))
            }
            None => (head, BTreeMap::new()),
        };
        assert!(is_metric_name(name), "sample name `{name}` in `{line}`");
        let family = ["_total", "_bucket", "_count", "_sum", "_created", ""]
            .iter()
            .find_map(|suffix| {
                let base = name.strip_suffix(suffix)?;
                families.contains_key(base).then_some(base)
            })
            .unwrap_or_else(|| panic!("sample `{name}` of no declared family"));
        assert!(
            family.starts_with("velu_"),
            "every family is velu_*: {family}"
        );
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    samples
}

/// The value of the sample `name` whose labels include `labels`, summed over the others.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

/// Scrapes `/metrics` with `key`, checks status and media type, parses.
async fn scrape(env: &TestEnv, key: &str) -> Vec<Sample> {
    let r = env.http(Method::GET, "/metrics", Some(key), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), Some(CONTENT_TYPE));
    parse_exposition(&r.text)
}

/// A platform key that may scrape.
async fn scraper(env: &TestEnv) -> String {
    platform_key(env, "prometheus", "admin:orgs:manage").await
}

backend_tests! {
    async fn metrics_need_a_platform_key(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        let none = env.http(Method::GET, "/metrics", None, None).await;
        assert_eq!(none.problem_code(), "unauthorized");
        let wrong = env.http(Method::GET, "/metrics", Some("velu_k1_nonsense"), None).await;
        assert_eq!(wrong.problem_code(), "unauthorized");
        for key in [&acme.admin, &acme.builder, &acme.viewer] {
            let r = env.http(Method::GET, "/metrics", Some(key), None).await;
            assert_eq!(r.problem_code(), "forbidden", "org keys never scrape: {}", r.text);
            assert_eq!(r.body["scope"], "admin:orgs:manage");
            assert!(!r.text.contains("velu_"), "no metric leaks into a refusal");
        }
        // A platform key without the platform admin scope (a worker's key) is refused too.
        let worker_key = platform_key(&env, "worker", "jobs:work").await;
        let r = env.http(Method::GET, "/metrics", Some(&worker_key), None).await;
        assert_eq!(r.problem_code(), "forbidden");
        let ops = scraper(&env).await;
        let samples = scrape(&env, &ops).await;
        for family in [
            "velu_http_requests_total",
            "velu_auth_failures_total",
            "velu_rate_limited_total",
            "velu_queue_jobs",
            "velu_worker_live",
            "velu_worker_running_jobs",
        ] {
            assert!(samples.iter().any(|s| s.name == family), "{family} is exposed");
        }
        // The refusals above were counted, each under its own route and status.
        let route = [("route", "/metrics"), ("method", "GET")];
        assert_eq!(value(&samples, "velu_http_requests_total", &[route[0], route[1], ("status", "401")]), 2.0);
        assert_eq!(value(&samples, "velu_http_requests_total", &[route[0], route[1], ("status", "403")]), 4.0);
        // Other verbs are not scrapes.
        let r = env.http(Method::POST, "/metrics", Some(&ops), Some(json!({}))).await;
        assert_eq!(r.status, 405);
    }

    async fn request_counters_move_by_route_template(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        let ops = scraper(&env).await;
        let series = |samples: &[Sample], status: &str| {
            value(samples, "velu_http_requests_total", &[
                ("method", "GET"),
                ("route", "/v1/orgs/{org}/jobs"),
                ("status", status),
            ])
        };
        let before = scrape(&env, &ops).await;
        for _ in 0..3 {
            let r = env.http(Method::GET, "/v1/orgs/acme/jobs", Some(&acme.viewer), None).await;
            assert_eq!(r.status, 200);
        }
        let r = env.http(Method::GET, "/v1/orgs/nobody/jobs", Some(&acme.viewer), None).await;
        assert_eq!(r.status, 404);
        let after = scrape(&env, &ops).await;
        assert_eq!(series(&after, "200") - series(&before, "200"), 3.0);
        assert_eq!(series(&after, "404") - series(&before, "404"), 1.0);
        // The latency histogram counts the same requests, with cumulative buckets.
        let count = value(&after, "velu_http_request_duration_seconds_count", &[
            ("route", "/v1/orgs/{org}/jobs"),
            ("status", "200"),
        ]);
        assert_eq!(count, 3.0);
        let inf = value(&after, "velu_http_request_duration_seconds_bucket", &[
            ("route", "/v1/orgs/{org}/jobs"),
            ("status", "200"),
            ("le", "+Inf"),
        ]);
        assert_eq!(inf, 3.0);
        // No raw path, slug or org id is ever a label value.
        for s in &after {
            for v in s.labels.values() {
                assert!(!v.contains("acme") && !v.contains("nobody") && !v.contains(&acme.org_id), "{s:?}");
            }
        }
    }

    async fn auth_failures_and_rate_limits_are_counted(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        let ops = scraper(&env).await;
        let failures = |s: &[Sample], reason: &str| value(s, "velu_auth_failures_total", &[("reason", reason)]);
        let before = scrape(&env, &ops).await;
        env.http(Method::GET, "/v1/whoami", None, None).await;
        for bad in ["velu_k1_nonsense", "not a key at all, not at all", &format!("{}x", acme.viewer)] {
            let r = env.http(Method::GET, "/v1/whoami", Some(bad), None).await;
            assert_eq!(r.status, 401);
        }
        let after = scrape(&env, &ops).await;
        assert_eq!(failures(&after, "missing") - failures(&before, "missing"), 1.0);
        assert_eq!(failures(&after, "invalid") - failures(&before, "invalid"), 3.0);
        // A good key is no failure.
        env.http(Method::GET, "/v1/whoami", Some(&acme.viewer), None).await;
        let again = scrape(&env, &ops).await;
        assert_eq!(failures(&again, "invalid"), failures(&after, "invalid"));

        // The org's request budget (base: 60 a minute) refuses, and each refusal counts.
        let small = bootstrap(&env, "small", "base").await;
        let limited = |s: &[Sample]| value(s, "velu_rate_limited_total", &[("limit", "org_requests")]);
        let app = velu_http::app(env.velu().clone());
        let mut refused = 0;
        for _ in 0..100 {
            if call(&app, Method::GET, "/v1/whoami", Some(&small.viewer)).await == 429 {
                refused += 1;
            }
        }
        assert!(refused > 0, "the budget ran out");
        let last = scrape(&env, &ops).await;
        assert_eq!(limited(&last) - limited(&again), f64::from(refused));
    }

    async fn queue_depth_follows_submitted_jobs_by_status_and_plan(env) {
        let hero = bootstrap(&env, "acme", "hero").await;
        let mega = bootstrap(&env, "mega", "superhero").await;
        let ops = scraper(&env).await;
        let depth = |s: &[Sample], status: &str, plan: &str| {
            value(s, "velu_queue_jobs", &[("status", status), ("plan", plan)])
        };
        let empty = scrape(&env, &ops).await;
        for status in ["queued", "running"] {
            for plan in ["base", "hero", "superhero"] {
                let n = empty.iter().filter(|s| s.name == "velu_queue_jobs" && s.labels["status"] == status && s.labels["plan"] == plan).count();
                assert_eq!(n, 1, "one series for {status}/{plan}, zero included");
                assert_eq!(depth(&empty, status, plan), 0.0);
            }
        }
        assert!(!empty.iter().any(|s| s.name == "velu_queue_jobs" && s.labels["status"] == "succeeded"), "history is not queue depth");
        for _ in 0..3 {
            submit(&env, "acme", "echo", json!({})).await;
        }
        submit(&env, "mega", "echo", json!({})).await;
        // A worker takes one of acme's jobs.
        let org = ReadyOrg { id: hero.org_id.clone(), plan: Plan::Hero };
        let claimed = queue::claim_for_org(env.velu().db(), "w", &org, 1, &["echo".into()], Duration::from_secs(30), velu_core::time::now()).await.unwrap();
        assert_eq!(claimed.len(), 1);
        // Counts are cached for a second.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let counted = std::time::Instant::now();
        let s = scrape(&env, &ops).await;
        assert_eq!(depth(&s, "queued", "hero"), 2.0);
        assert_eq!(depth(&s, "running", "hero"), 1.0);
        assert_eq!(depth(&s, "queued", "superhero"), 1.0);
        assert_eq!(depth(&s, "running", "superhero"), 0.0);
        assert_eq!(depth(&s, "queued", "base"), 0.0);
        // Within the second, the same numbers (no query), even after more work arrives.
        // (Checked only when this machine was quick enough to scrape again within it.)
        let r = env.http(Method::POST, "/v1/orgs/mega/jobs", Some(&mega.builder), Some(json!({"task": "echo", "payload": {}}))).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let cached = scrape(&env, &ops).await;
        if counted.elapsed() < velu_core::metrics::DEPTH_TTL {
            assert_eq!(depth(&cached, "queued", "superhero"), 1.0, "cached");
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let fresh = scrape(&env, &ops).await;
        assert_eq!(depth(&fresh, "queued", "superhero"), 2.0);
    }

    async fn worker_outcomes_move_by_task(env) {
        bootstrap(&env, "acme", "hero").await;
        let ops = scraper(&env).await;
        let attempts = |s: &[Sample], task: &str, outcome: &str| {
            value(s, "velu_worker_attempts_total", &[("task", task), ("outcome", outcome)])
        };
        let before = scrape(&env, &ops).await;
        for _ in 0..2 {
            submit(&env, "acme", "echo", json!({})).await;
        }
        env.cli_ok(&["job", "submit", "--org", "acme", "--task", "fail", "--payload", r#"{"message": "boom"}"#, "--max-attempts", "1"]).await;
        let report = drain_queue(env.velu(), fast_worker("metered")).await;
        assert_eq!((report.succeeded, report.failed), (2, 1));
        // The fleet is counted at most once a second.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let after = scrape(&env, &ops).await;
        // Worker families are per process and other tests run workers too: at least ours.
        assert!(attempts(&after, "echo", "succeeded") - attempts(&before, "echo", "succeeded") >= 2.0);
        assert!(attempts(&after, "fail", "failed") - attempts(&before, "fail", "failed") >= 1.0);
        let runs = |s: &[Sample]| value(s, "velu_worker_run_duration_seconds_count", &[("task", "echo")]);
        assert!(runs(&after) - runs(&before) >= 2.0);
        assert!(value(&after, "velu_worker_claim_duration_seconds_count", &[]) >= 1.0);
        // The fleet registry (shared by every process) has one series per state and
        // location, and counts the worker that just ran (registered local, now stopped).
        let fleet: Vec<_> = after.iter().filter(|s| s.name == "velu_fleet_workers").collect();
        assert_eq!(fleet.len(), 6, "{fleet:?}");
        assert!(value(&after, "velu_fleet_workers", &[("location", "local")]) >= 1.0, "{fleet:?}");
        assert_eq!(value(&after, "velu_fleet_workers", &[("location", "remote")]), 0.0);
        for s in after.iter().filter(|s| s.name == "velu_worker_attempts_total") {
            let task = &s.labels["task"];
            assert!(task == "other" || env.velu().tasks().get(task).is_some(), "task label `{task}` is a kind");
            assert!(
                velu_core::jobs::AttemptOutcome::parse(&s.labels["outcome"]).is_some(),
                "{s:?}"
            );
        }
    }

    async fn label_sets_stay_bounded(env) {
        bootstrap(&env, "acme", "hero").await;
        // A platform key has no org request budget, so a thousand requests all pass.
        let ops = platform_key(&env, "ops", "admin:orgs:manage,jobs:read").await;
        let app = velu_http::app(env.velu().clone());
        for _ in 0..1000 {
            let id = uuid::Uuid::now_v7().to_string();
            let status = call(&app, Method::GET, &format!("/v1/orgs/acme/jobs/{id}"), Some(&ops)).await;
            assert_eq!(status, 404);
        }
        for i in 0..200 {
            call(&app, Method::GET, &format!("/no/such/{i}"), None).await;
            let odd = Method::from_bytes(format!("BREW{i}").as_bytes()).unwrap();
            call(&app, odd, &format!("/v1/orgs/acme/jobs/{i}"), None).await;
        }
        let samples = scrape(&env, &ops).await;
        let requests: Vec<&Sample> = samples.iter().filter(|s| s.name == "velu_http_requests_total").collect();
        let job_route: Vec<_> = requests.iter().filter(|s| s.labels["route"] == "/v1/orgs/{org}/jobs/{job}").collect();
        let keys: BTreeSet<_> = job_route.iter().map(|s| (s.labels["method"].clone(), s.labels["status"].clone())).collect();
        assert_eq!(
            keys.iter().filter(|(m, _)| m == "GET").count(),
            1,
            "a thousand job ids are one series: {keys:?}"
        );
        assert_eq!(value(&samples, "velu_http_requests_total", &[("route", "/v1/orgs/{org}/jobs/{job}"), ("method", "GET"), ("status", "404")]), 1000.0);
        assert_eq!(value(&samples, "velu_http_requests_total", &[("route", "/v1/orgs/{org}/jobs/{job}"), ("method", "other")]), 200.0);
        assert_eq!(value(&samples, "velu_http_requests_total", &[("route", "unmatched")]), 200.0);
        assert!(requests.len() < 12, "a handful of series, not one per path: {}", requests.len());
        let buckets = samples.iter().filter(|s| s.name == "velu_http_request_duration_seconds_bucket").count();
        assert!(buckets < 12 * 15, "{buckets} histogram buckets");
        for s in &samples {
            for v in s.labels.values() {
                assert!(!v.starts_with("BREW") && !v.starts_with("/no/"), "{s:?}");
            }
        }
    }

    async fn the_metrics_listener_serves_without_a_key(env) {
        let listener = velu_http::listen_metrics(env.velu().clone(), "127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr();
        assert!(addr.port() > 0);
        let (status, headers, body) = raw_get(addr, "/metrics").await;
        assert_eq!(status, 200, "{body}");
        assert!(headers.contains(&format!("content-type: {CONTENT_TYPE}")), "{headers}");
        let samples = parse_exposition(&body);
        assert!(samples.iter().any(|s| s.name == "velu_queue_jobs"));
        // Only /metrics: the API is not served there.
        let (status, _, _) = raw_get(addr, "/v1/orgs").await;
        assert_eq!(status, 404);
        // A bad address fails at startup, as a configuration error.
        let err = velu_http::listen_metrics(env.velu().clone(), "not an address").await.unwrap_err();
        assert_eq!(err.code(), "config");
        // Dropped, it stops listening.
        drop(listener);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let refused = tokio::task::spawn_blocking(move || std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1))).await.unwrap();
        assert!(refused.is_err(), "the listener is gone");
    }
}

/// A process without a database (a remote worker) serves its worker families.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_without_a_database_serves_its_own_families() {
    let listener = velu_http::listen_worker_metrics("127.0.0.1:0")
        .await
        .unwrap();
    let (status, _, body) = raw_get(listener.local_addr(), "/metrics").await;
    assert_eq!(status, 200);
    let samples = parse_exposition(&body);
    assert!(samples.iter().any(|s| s.name == "velu_worker_live"));
    assert!(
        !samples.iter().any(|s| s.name == "velu_queue_jobs"),
        "no database, no queue depth"
    );
}

/// One request to an app built once (building the app per request, as `TestEnv::http`
/// does, costs more than the request): its status.
async fn call(app: &impl Endpoint, method: Method, path: &str, key: Option<&str>) -> u16 {
    let mut req = Request::builder().method(method).uri(path.parse().unwrap());
    if let Some(k) = key {
        req = req.header("x-api-key", k);
    }
    match app.call(req.body(Body::empty())).await {
        Ok(r) => r.into_response().status().as_u16(),
        Err(e) => e.into_response().status().as_u16(),
    }
}

/// One HTTP/1.1 GET over a plain socket: status, header block (lower-cased), body.
async fn raw_get(addr: std::net::SocketAddr, path: &str) -> (u16, String, String) {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: metrics\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("read");
        let text = String::from_utf8(raw).expect("utf-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("headers end");
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, head.to_lowercase(), body.to_owned())
    })
    .await
    .unwrap()
}

#[test]
fn the_parser_refuses_what_is_not_openmetrics() {
    let ok = "# TYPE velu_x counter\n# HELP velu_x X.\nvelu_x_total{a=\"b\\\"c\"} 1\n# EOF\n";
    let samples = parse_exposition(ok);
    assert_eq!(samples[0].labels["a"], "b\"c");
    for bad in [
        "# TYPE velu_x counter\nvelu_x_total 1\n",
        "velu_y 1\n# EOF\n",
        "# TYPE velu_x counter\nvelu_x_total{a=\"b} 1\n# EOF\n",
        "# TYPE velu_x counter\nvelu_x_total one\n# EOF\n",
        "# TYPE velu_x counter\n# EOF\nvelu_x_total 1\n# EOF\n",
    ] {
        assert!(
            std::panic::catch_unwind(|| parse_exposition(bad)).is_err(),
            "{bad:?}"
        );
    }
}
