//! Usage: the rollups equal the jobs actually run (submits, batches, a worker where some
//! fail), run seconds are real and bounded by the wall clock, API requests are counted
//! per org and flushed, concurrent submits lose no count; rights (another org's admin gets
//! 404, viewer and builder 403, platform keys need `usage:read`), range errors and odd
//! input, and `-o csv`.

use std::time::Instant;

use chrono::{Duration, Utc};
use poem::http::Method;
use serde_json::{Value, json};
use velu_tests::{TestEnv, backend_tests};

use crate::support::{bootstrap, drain_queue, fast_worker, platform_key, submit};

/// Yesterday to tomorrow (UTC): a run that crosses midnight still lands inside.
fn around_today() -> (String, String) {
    let today = Utc::now().date_naive();
    let f = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    (f(today - Duration::days(1)), f(today + Duration::days(1)))
}

/// The operator's report of `org` around today.
async fn report(env: &TestEnv, org: &str) -> Value {
    let (from, to) = around_today();
    env.cli_ok(&["usage", "--org", org, "--from", &from, "--to", &to])
        .await
}

/// Sums a counter over the rows of `task` (`None`: the org-wide row).
fn sum(report: &Value, task: Option<&str>, field: &str) -> f64 {
    report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["task"].as_str() == task)
        .map(|r| r[field].as_f64().unwrap())
        .sum()
}

fn usage_path(org: &str) -> String {
    let (from, to) = around_today();
    format!("/v1/orgs/{org}/usage?from={from}&to={to}")
}

backend_tests! {
    async fn figures_equal_the_jobs_actually_run(env) {
        bootstrap(&env, "acme", "hero").await;
        let quiet = bootstrap(&env, "quiet", "hero").await;
        for _ in 0..3 {
            submit(&env, "acme", "sleep", json!({"seconds": 0.2})).await;
        }
        for _ in 0..2 {
            env.cli_ok(&[
                "job", "submit", "--org", "acme", "--task", "fail", "--max-attempts", "1",
                "--payload", r#"{"message": "no"}"#,
            ])
            .await;
        }
        let batch = env.home().join("batch.json");
        std::fs::write(
            &batch,
            json!([{"task": "sleep", "payload": {"seconds": 0.1}}, {"task": "echo"}, {"task": "echo"}])
                .to_string(),
        )
        .unwrap();
        env.cli_ok(&["job", "submit-batch", "--org", "acme", "--file", batch.to_str().unwrap()])
            .await;
        let started = Instant::now();
        let ran = drain_queue(env.velu(), fast_worker("usage-w")).await;
        let wall = started.elapsed().as_secs_f64();
        assert_eq!(ran.succeeded + ran.failed, 8, "{ran:?}");

        let r = report(&env, "acme").await;
        assert_eq!(sum(&r, Some("sleep"), "jobs_submitted"), 4.0, "{r}");
        assert_eq!(sum(&r, Some("sleep"), "jobs_succeeded"), 4.0, "{r}");
        assert_eq!(sum(&r, Some("echo"), "jobs_submitted"), 2.0, "{r}");
        assert_eq!(sum(&r, Some("echo"), "jobs_succeeded"), 2.0, "{r}");
        assert_eq!(sum(&r, Some("fail"), "jobs_submitted"), 2.0, "{r}");
        assert_eq!(sum(&r, Some("fail"), "jobs_failed"), 2.0, "{r}");
        assert_eq!(sum(&r, Some("fail"), "jobs_succeeded"), 0.0, "{r}");
        // Four sleeps of 0.2 + 0.2 + 0.2 + 0.1 s ran: their run time is at least what they
        // slept, and each of the eight attempts ran inside the wall time of the drain.
        let sleep_secs = sum(&r, Some("sleep"), "run_seconds");
        assert!(sleep_secs >= 0.7 && sleep_secs <= 4.0 * wall, "{sleep_secs} s in {wall} s: {r}");
        let all_secs = r["totals"]["run_seconds"].as_f64().unwrap();
        assert!(all_secs >= sleep_secs && all_secs <= 8.0 * wall, "{all_secs} s in {wall} s: {r}");
        // Each kind's figure is its attempts' recorded times (the handler's run, not the
        // time since the claim: echo and fail run in well under a millisecond), to the
        // millisecond per attempt.
        let listed = env.cli_ok(&["job", "list", "--org", "acme", "--limit", "200"]).await;
        let mut recorded: std::collections::HashMap<String, (i64, i64)> = Default::default();
        for j in listed["items"].as_array().unwrap() {
            let shown = env.cli_ok(&["job", "show", j["id"].as_str().unwrap(), "--org", "acme"]).await;
            for a in shown["history"].as_array().unwrap() {
                let t = |f: &str| chrono::DateTime::parse_from_rfc3339(a[f].as_str().unwrap()).unwrap();
                let e = recorded.entry(j["task"].as_str().unwrap().to_owned()).or_default();
                *e = (e.0 + (t("finished_at") - t("started_at")).num_milliseconds(), e.1 + 1);
            }
        }
        for (task, (ms, attempts)) in &recorded {
            let billed = (sum(&r, Some(task), "run_seconds") * 1000.0).round() as i64;
            assert!((billed - ms).abs() <= *attempts, "{task}: {billed} ms billed, {ms} ms recorded: {r}");
        }
        assert_eq!(recorded.len(), 3, "{recorded:?}");
        assert_eq!(r["totals"]["jobs_submitted"], 8, "{r}");
        assert_eq!(r["totals"]["jobs_succeeded"], 6, "{r}");
        assert_eq!(r["totals"]["jobs_failed"], 2, "{r}");
        assert_eq!(r["org_id"], r["items"][0]["org_id"]);
        // The rollups agree with the jobs themselves.
        let jobs = env.cli_ok(&["job", "list", "--org", "acme", "--limit", "200"]).await;
        let count = |status: &str| {
            jobs["items"].as_array().unwrap().iter().filter(|j| j["status"] == status).count() as f64
        };
        assert_eq!(count("succeeded"), 6.0);
        assert_eq!(count("failed"), 2.0);
        // Nothing leaked into another org's figures.
        let q = report(&env, &quiet.org_id).await;
        assert_eq!(q["items"], json!([]), "{q}");
        assert_eq!(q["totals"]["jobs_submitted"], 0);
        // A retried job runs again (the kind's 3 attempts, with backoff): the attempt's
        // time counts, but an attempt that will be retried is no failure, and a retry is no
        // new submit.
        let fail_secs = sum(&r, Some("fail"), "run_seconds");
        let id = env.cli_ok(&["job", "list", "--org", "acme", "--status", "failed", "--limit", "1"])
            .await["items"][0]["id"].as_str().unwrap().to_owned();
        env.cli_ok(&["job", "retry", &id, "--org", "acme"]).await;
        drain_queue(env.velu(), fast_worker("usage-w2")).await;
        let r2 = report(&env, "acme").await;
        assert_eq!(sum(&r2, Some("fail"), "jobs_failed"), 2.0, "{r2}");
        assert_eq!(sum(&r2, Some("fail"), "jobs_submitted"), 2.0, "{r2}");
        // The new attempt's own run time was added: a failing attempt can end within the
        // millisecond it started (counted as 0 ms, as documented), so the figure is checked
        // against the attempt's times, to the millisecond, not merely for growth.
        let shown = env.cli_ok(&["job", "show", &id, "--org", "acme"]).await;
        let history = shown["history"].as_array().unwrap();
        assert_eq!(history.len(), 2, "the retried job ran again: {shown}");
        let time = |field: &str| {
            chrono::DateTime::parse_from_rfc3339(history[1][field].as_str().unwrap()).unwrap()
        };
        let attempt_ms = (time("finished_at") - time("started_at")).num_milliseconds();
        let added_ms = ((sum(&r2, Some("fail"), "run_seconds") - fail_secs) * 1000.0).round() as i64;
        assert!((added_ms - attempt_ms).abs() <= 1, "{added_ms} ms added for an attempt of {attempt_ms} ms: {r2}");
    }

    async fn concurrent_submits_lose_no_count(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        let sends = (0..24).map(|i| {
            let env = env.clone();
            let key = acme.builder.clone();
            async move {
                let r = env
                    .http(Method::POST, "/v1/orgs/acme/jobs", Some(&key), Some(json!({"task": "echo", "payload": {"i": i}})))
                    .await;
                assert_eq!(r.status, 201, "{}", r.text);
            }
        });
        let tasks: Vec<_> = sends.map(tokio::spawn).collect();
        for t in tasks {
            t.await.unwrap();
        }
        let r = report(&env, "acme").await;
        assert_eq!(sum(&r, Some("echo"), "jobs_submitted"), 24.0, "{r}");
        // An idempotent replay is the same job: not counted again.
        for _ in 0..2 {
            env.http(Method::POST, "/v1/orgs/acme/jobs", Some(&acme.builder),
                Some(json!({"task": "echo", "idempotency_key": "once"}))).await;
        }
        let r = report(&env, "acme").await;
        assert_eq!(sum(&r, Some("echo"), "jobs_submitted"), 25.0, "{r}");
    }

    async fn api_requests_are_counted_per_org_and_flushed(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        let other = bootstrap(&env, "other", "hero").await;
        let ops = platform_key(&env, "ops", "jobs:read").await;
        for _ in 0..7 {
            let r = env.http(Method::GET, "/v1/orgs/acme/jobs", Some(&acme.viewer), None).await;
            assert_eq!(r.status, 200);
        }
        // Refused requests are not counted: no key, a wrong key, a missing scope is
        // counted (the key was good and admitted), platform keys belong to no org.
        env.http(Method::GET, "/v1/orgs/acme/jobs", None, None).await;
        env.http(Method::GET, "/v1/orgs/acme/jobs", Some("velu_k1_nope"), None).await;
        let r = env.http(Method::POST, "/v1/orgs/acme/jobs", Some(&acme.viewer), Some(json!({"task": "echo"}))).await;
        assert_eq!(r.status, 403);
        env.http(Method::GET, "/v1/orgs/acme/jobs", Some(&ops), None).await;
        env.http(Method::GET, "/v1/orgs/other/jobs", Some(&other.viewer), None).await;
        assert!(env.velu().api_requests().pending() >= 2);
        let written = velu_core::usage::flush_api_requests(env.velu()).await.unwrap();
        assert_eq!(written, 2, "one row per (org, day)");
        assert_eq!(env.velu().api_requests().pending(), 0);
        let r = report(&env, "acme").await;
        assert_eq!(sum(&r, None, "api_requests"), 8.0, "{r}");
        assert_eq!(sum(&r, Some("echo"), "api_requests"), 0.0, "{r}");
        let o = report(&env, "other").await;
        assert_eq!(sum(&o, None, "api_requests"), 1.0, "{o}");
        // A second flush adds to the same row; an empty one writes nothing.
        env.http(Method::GET, "/v1/whoami", Some(&acme.viewer), None).await;
        velu_core::usage::flush_api_requests(env.velu()).await.unwrap();
        assert_eq!(velu_core::usage::flush_api_requests(env.velu()).await.unwrap(), 0);
        let r = report(&env, "acme").await;
        assert_eq!(sum(&r, None, "api_requests"), 9.0, "{r}");
        let org_row = r["items"].as_array().unwrap().iter().find(|x| x["task"].is_null()).unwrap();
        assert_eq!(org_row["jobs_submitted"], 0);
    }

    async fn rights_and_tenancy(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        let other = bootstrap(&env, "other", "hero").await;
        submit(&env, "acme", "echo", json!({})).await;
        submit(&env, "other", "echo", json!({})).await;
        // Its own admin reads it.
        let mine = env.http(Method::GET, &usage_path("acme"), Some(&acme.admin), None).await;
        assert_eq!(mine.status, 200, "{}", mine.text);
        assert_eq!(mine.body["org_id"], acme.org_id.as_str());
        assert_eq!(mine.body["totals"]["jobs_submitted"], 1);
        // Another org's admin: exactly a missing org's answer.
        let theirs = env.http(Method::GET, &usage_path("acme"), Some(&other.admin), None).await;
        let missing = env.http(Method::GET, &usage_path("nope"), Some(&other.admin), None).await;
        assert_eq!((theirs.status, theirs.problem_code()), (404, "not_found".to_owned()));
        assert_eq!(missing.problem_code(), "not_found");
        assert_eq!(
            theirs.body["detail"].as_str().unwrap().replace("acme", "X"),
            missing.body["detail"].as_str().unwrap().replace("nope", "X")
        );
        let by_id = env.http(Method::GET, &usage_path(&acme.org_id), Some(&other.admin), None).await;
        assert_eq!(by_id.problem_code(), "not_found");
        // Viewer and builder: forbidden, naming the scope.
        for key in [&acme.viewer, &acme.builder] {
            let r = env.http(Method::GET, &usage_path("acme"), Some(key), None).await;
            assert_eq!((r.status, r.problem_code()), (403, "forbidden".to_owned()));
            assert_eq!(r.body["scope"], "usage:read");
        }
        // No key at all.
        let anon = env.http(Method::GET, &usage_path("acme"), None, None).await;
        assert_eq!(anon.problem_code(), "unauthorized");
        // `/v1/usage` with an org key is its own org only.
        let (from, to) = around_today();
        let own = env.http(Method::GET, &format!("/v1/usage?from={from}&to={to}"), Some(&other.admin), None).await;
        assert_eq!(own.status, 200, "{}", own.text);
        assert_eq!(own.body["org_id"], other.org_id.as_str());
        assert!(own.body["items"].as_array().unwrap().iter().all(|r| r["org_id"] == other.org_id.as_str()));
        // Platform keys: `usage:read` needed; with it, every org.
        let no_scope = platform_key(&env, "ops", "admin:orgs:manage").await;
        let r = env.http(Method::GET, &format!("/v1/usage?from={from}&to={to}"), Some(&no_scope), None).await;
        assert_eq!(r.problem_code(), "forbidden");
        let reader = platform_key(&env, "reader", "usage:read").await;
        let all = env.http(Method::GET, &format!("/v1/usage?from={from}&to={to}"), Some(&reader), None).await;
        assert_eq!(all.status, 200, "{}", all.text);
        assert!(all.body["org_id"].is_null());
        assert_eq!(all.body["totals"]["jobs_submitted"], 2);
        let orgs: std::collections::BTreeSet<_> = all.body["items"].as_array().unwrap().iter()
            .map(|r| r["org_id"].as_str().unwrap().to_owned()).collect();
        assert_eq!(orgs, [acme.org_id.clone(), other.org_id.clone()].into_iter().collect());
        // Least privilege: an admin mints a key with `usage:read` alone (for a billing
        // export), which reads usage and nothing else.
        let r = env.http(Method::POST, "/v1/orgs/acme/keys", Some(&acme.admin),
            Some(json!({"name": "billing-export", "scopes": ["usage:read"]}))).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let export = r.body["token"].as_str().unwrap().to_owned();
        let ok = env.http(Method::GET, &usage_path("acme"), Some(&export), None).await;
        assert_eq!(ok.status, 200, "{}", ok.text);
        let jobs = env.http(Method::GET, "/v1/orgs/acme/jobs", Some(&export), None).await;
        assert_eq!(jobs.problem_code(), "forbidden");
        let theirs = env.http(Method::GET, &usage_path("other"), Some(&export), None).await;
        assert_eq!(theirs.problem_code(), "not_found");
    }

    async fn range_errors_and_odd_input(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        for (from, to) in [
            ("2026-12-02", "2026-12-01"),
            ("2024-01-01", "2025-01-01"),
            ("2026-02-30", "2026-03-01"),
            ("2026-2-1", "2026-03-01"),
            ("yesterday", "2026-03-01"),
            ("2026-12-01", "2026-12-01\u{0}"),
            ("2026-12-01", "２０２６-12-01"),
        ] {
            let code = env.cli(&["usage", "--org", "acme", "--from", from, "--to", to]).await.error_code();
            assert_eq!(code, "invalid", "{from:?} {to:?}");
        }
        // The longest range (a leap year) is fine and empty.
        let r = env.cli_ok(&["usage", "--org", "acme", "--from", "2024-01-01", "--to", "2024-12-31"]).await;
        assert_eq!(r["items"], json!([]));
        // Over HTTP: the same refusals, odd bytes included, as `invalid` (400).
        for query in [
            "from=2026-12-02&to=2026-12-01",
            "from=2024-01-01&to=2025-01-01",
            "from=2026-12-01&to=2026-12-01%00",
            "from=2026-12-01&to=%EF%BC%92026-12-01",
            "from=2026-12-01",
            &format!("from=2026-12-01&to={}", "9".repeat(5000)),
        ] {
            let r = env.http(Method::GET, &format!("/v1/orgs/acme/usage?{query}"), Some(&acme.admin), None).await;
            assert_eq!((r.status, r.problem_code()), (400, "invalid".to_owned()), "{query}: {}", r.text);
        }
        // An org name that cannot be one is simply not found.
        let r = env.http(Method::GET, "/v1/orgs/ac%00me/usage?from=2026-12-01&to=2026-12-01", Some(&acme.admin), None).await;
        assert_eq!(r.problem_code(), "not_found");
    }

    async fn cli_and_http_print_the_same_report(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        submit(&env, "acme", "echo", json!({})).await;
        env.http(Method::GET, "/v1/whoami", Some(&acme.viewer), None).await;
        velu_core::usage::flush_api_requests(env.velu()).await.unwrap();
        drain_queue(env.velu(), fast_worker("twin-w")).await;
        let reader = platform_key(&env, "reader", "usage:read").await;
        let (from, to) = around_today();
        let cli = env.cli_ok(&["usage", "--org", "acme", "--from", &from, "--to", &to]).await;
        let http = env.http(Method::GET, &usage_path("acme"), Some(&reader), None).await;
        assert_eq!(cli, http.body);
        assert!(cli["items"][0]["task"].is_null(), "{cli}");
        let cli = env.cli_ok(&["usage", "--from", &from, "--to", &to, "-o", "json"]).await;
        let http = env.http(Method::GET, &format!("/v1/usage?from={from}&to={to}"), Some(&reader), None).await;
        assert_eq!(cli, http.body);
        assert!(cli["org_id"].is_null());
        // The twin the CLI would send (remote mode, --print-http).
        let curl = env.cli(&["--print-http", "usage", "--org", "acme", "--from", &from, "--to", &to]).await;
        assert!(curl.stdout.contains(&format!("/v1/orgs/acme/usage?from={from}&to={to}")), "{}", curl.stdout);
    }

    async fn csv_prints_a_header_and_one_line_per_row(env) {
        bootstrap(&env, "acme", "hero").await;
        submit(&env, "acme", "echo", json!({})).await;
        submit(&env, "acme", "sleep", json!({"seconds": 0})).await;
        let (from, to) = around_today();
        let run = env.cli(&["usage", "--org", "acme", "--from", &from, "--to", &to, "-o", "csv"]).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        let lines: Vec<&str> = run.stdout.lines().collect();
        assert_eq!(
            lines[0],
            "day,org_id,task,jobs_submitted,jobs_succeeded,jobs_failed,run_seconds,api_requests"
        );
        assert_eq!(lines.len(), 3, "{}", run.stdout);
        let today = Utc::now().date_naive().format("%Y-%m-%d").to_string();
        assert!(lines[1].starts_with(&today) && lines[1].contains(",echo,1,0,0,0.0,0"), "{}", run.stdout);
        assert!(lines[2].contains(",sleep,1,"), "{}", run.stdout);
        // A document that is not a list is refused in CSV, before anything is printed.
        let code = env.cli(&["org", "show", "acme", "-o", "csv"]).await.error_code();
        assert_eq!(code, "invalid");
    }
}
