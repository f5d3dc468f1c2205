//! Job events: a job's life in order (queued, claimed by its worker, the progress lines
//! it wrote, the end), retries, the per-job cap under 100k lines, tenancy and roles, odd
//! input, the long poll, server-sent events, progress through the remote worker protocol,
//! and `job watch`'s exit status.

use std::time::{Duration, Instant};

use poem::http::Method;
use serde_json::{Value, json};
use velu_core::events::{MAX_EVENTS_PER_JOB, MAX_LINE_BYTES};
use velu_tests::{TestEnv, backend_tests};

use crate::support::{ALL_SCOPES, bootstrap, drain_queue, fast_worker, platform_key, submit};

/// Every event of `job` through the CLI, reading page after page.
async fn all_events(env: &TestEnv, org: &str, job: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after = "0".to_owned();
    loop {
        let page = env
            .cli_ok(&[
                "job", "events", job, "--org", org, "--after", &after, "--limit", "500",
            ])
            .await;
        let items = page["events"].as_array().expect("events").clone();
        after = page["next_after"].as_i64().expect("next_after").to_string();
        let done = items.is_empty();
        events.extend(items);
        if done {
            return events;
        }
    }
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["kind"].as_str().unwrap()).collect()
}

/// Seqs grow strictly along the stream.
fn assert_ordered(events: &[Value]) {
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
}

backend_tests! {
    async fn a_jobs_life_appears_in_order(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        let job = submit(&env, "acme", "progress", json!({"lines": 3})).await;
        drain_queue(env.velu(), fast_worker("w-life")).await;
        let events = all_events(&env, "acme", &job).await;
        assert_ordered(&events);
        assert_eq!(
            kinds(&events),
            ["queued", "claimed", "progress", "progress", "progress", "ended"],
            "{events:?}"
        );
        assert_eq!(events[0]["via"], "submit");
        assert_eq!(events[1]["worker_id"], "w-life", "the operator sees which worker");
        assert_eq!(events[1]["attempt"], 1);
        let lines: Vec<&str> = events[2..5].iter().map(|e| e["line"].as_str().unwrap()).collect();
        assert_eq!(lines, ["step 1 of 3", "step 2 of 3", "step 3 of 3"]);
        assert_eq!(events[5]["status"], "succeeded");
        assert!(events[5].get("error_code").is_none(), "{:?}", events[5]);
        // Never the job's output in the stream.
        assert!(!serde_json::to_string(&events).unwrap().contains("done"));

        // A viewer reads them (and does not see the platform's worker ids).
        let path = format!("/v1/orgs/acme/jobs/{job}/events");
        let r = env.http(Method::GET, &path, Some(&acme.viewer), None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["ended"], true);
        assert_eq!(r.body["events"].as_array().unwrap().len(), 6);
        assert!(r.body["events"][1].get("worker_id").is_none(), "{}", r.text);
        assert_eq!(r.body["next_after"], events[5]["seq"]);

        // Resuming after the claim gives the rest; after the end, nothing, and ended.
        let claimed = events[1]["seq"].as_i64().unwrap();
        let r = env.http(Method::GET, &format!("{path}?after={claimed}&limit=2"), Some(&acme.viewer), None).await;
        assert_eq!(kinds(r.body["events"].as_array().unwrap()), ["progress", "progress"]);
        assert_eq!(r.body["ended"], false, "a full page is not the end");
        let last = events[5]["seq"].as_i64().unwrap();
        let r = env.http(Method::GET, &format!("{path}?after={last}"), Some(&acme.viewer), None).await;
        assert_eq!(r.body["events"], json!([]));
        assert_eq!(r.body["ended"], true);
        assert_eq!(r.body["next_after"], last);
    }

    async fn a_retry_shows_the_failed_attempt_and_the_requeue(env) {
        bootstrap(&env, "acme", "hero").await;
        let job = submit(&env, "acme", "progress", json!({"lines": 1, "exit": 3})).await;
        // Two attempts, one second apart: the first fails and is queued again.
        env.cli_ok(&["job", "cancel", "--org", "acme", &job]).await;
        env.cli_ok(&["job", "retry", "--org", "acme", &job]).await;
        let worker = crate::support::spawn_worker(env.velu(), fast_worker("w-retry"));
        crate::support::eventually(20, || async {
            let j = env.cli_ok(&["job", "show", &job, "--org", "acme"]).await;
            (j["status"] == "failed").then_some(())
        })
        .await;
        worker.stop().await;
        let events = all_events(&env, "acme", &job).await;
        assert_ordered(&events);
        assert_eq!(
            kinds(&events),
            ["queued", "ended", "queued", "claimed", "progress", "ended"],
            "{events:?}"
        );
        assert_eq!(events[1]["status"], "cancelled");
        assert_eq!(events[1]["error_code"], "cancelled");
        assert_eq!(events[2]["via"], "retry");
        assert_eq!(events[5]["status"], "failed");
        assert_eq!(events[5]["error_code"], "exit_status");

        // A job with attempts left: the failed attempt, then queued again with its time.
        let again = env
            .cli_ok(&["job", "submit", "--org", "acme", "--task", "progress", "--max-attempts", "2",
                      "--payload", r#"{"lines": 0, "exit": 1}"#])
            .await["id"].as_str().unwrap().to_owned();
        let worker = crate::support::spawn_worker(env.velu(), fast_worker("w-retry2"));
        crate::support::eventually(20, || async {
            let j = env.cli_ok(&["job", "show", &again, "--org", "acme"]).await;
            (j["status"] == "failed").then_some(())
        })
        .await;
        worker.stop().await;
        let events = all_events(&env, "acme", &again).await;
        assert_eq!(
            kinds(&events),
            ["queued", "claimed", "retrying", "claimed", "ended"],
            "{events:?}"
        );
        let retrying = &events[2];
        assert_eq!((retrying["attempt"].as_i64(), retrying["status"].as_str()), (Some(1), Some("queued")));
        assert_eq!(retrying["error_code"], "exit_status");
        assert!(retrying["run_at"].is_string(), "{retrying}");
        assert_eq!(events[3]["attempt"], 2);
    }

    async fn the_cap_holds_when_a_job_writes_100k_lines(env) {
        bootstrap(&env, "acme", "hero").await;
        let job = submit(&env, "acme", "progress", json!({"lines": 100_000})).await;
        drain_queue(env.velu(), fast_worker("w-cap")).await;
        let events = all_events(&env, "acme", &job).await;
        assert_ordered(&events);
        let n = events.len() as i64;
        assert!(n <= MAX_EVENTS_PER_JOB + 1, "{n} events");
        assert!(n >= MAX_EVENTS_PER_JOB - 2, "progress fills the stream: {n}");
        // The first and the end are kept; the lines kept are the first ones, in order.
        assert_eq!(kinds(&events)[..2], ["queued", "claimed"]);
        assert_eq!(events.last().unwrap()["kind"], "ended");
        assert_eq!(events.last().unwrap()["status"], "succeeded");
        assert_eq!(events[2]["line"], "step 1 of 100000");
        assert_eq!(events[3]["line"], "step 2 of 100000");
        let stored: i64 = crate::support::scalar(
            env.velu(),
            &format!("SELECT count(*) FROM job_events WHERE job_id = '{job}'"),
        )
        .await;
        assert_eq!(stored, n);
    }

    async fn another_org_sees_not_found_and_odd_input_is_refused(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        let other = bootstrap(&env, "other", "hero").await;
        let job = submit(&env, "acme", "echo", json!({})).await;
        let path = format!("/v1/orgs/acme/jobs/{job}/events");
        // Another org's key: the org is not found, as a missing one.
        let r = env.http(Method::GET, &path, Some(&other.admin), None).await;
        assert_eq!((r.status, r.problem_code()), (404, "not_found".to_owned()));
        // Its own org path with acme's job id: the job is not found either.
        let r = env.http(Method::GET, &format!("/v1/orgs/other/jobs/{job}/events"), Some(&other.admin), None).await;
        assert_eq!((r.status, r.problem_code()), (404, "not_found".to_owned()));
        let missing = env.http(Method::GET, "/v1/orgs/other/jobs/01900000-0000-7000-8000-000000000000/events", Some(&other.admin), None).await;
        assert_eq!(r.body["detail"].as_str().map(|d| d.replace(&job, "ID")),
                   missing.body["detail"].as_str().map(|d| d.replace("01900000-0000-7000-8000-000000000000", "ID")),
                   "same words as a missing job");
        // Even long polls and streams refuse before waiting.
        let r = env.http(Method::GET, &format!("{path}?wait=5"), Some(&other.viewer), None).await;
        assert_eq!(r.status, 404);
        let req = poem::Request::builder().method(Method::GET).uri(path.parse().unwrap())
            .header("x-api-key", &other.viewer).header("accept", "text/event-stream").finish();
        let r = env.send(req).await;
        assert_eq!((r.status, r.problem_code()), (404, "not_found".to_owned()));
        // Without the key: 401. A platform key without jobs:read: 403.
        assert_eq!(env.http(Method::GET, &path, None, None).await.status, 401);
        let plat = platform_key(&env, "no-read", "jobs:submit").await;
        assert_eq!(env.http(Method::GET, &path, Some(&plat), None).await.problem_code(), "forbidden");
        let full = platform_key(&env, "reader", ALL_SCOPES).await;
        assert_eq!(env.http(Method::GET, &path, Some(&full), None).await.status, 200);
        // Odd input.
        for (query, code) in [("after=-1", 400), ("limit=0", 400), ("limit=501", 400), ("wait=31", 400),
                              ("after=abc", 400), ("after=99999999999999", 200)] {
            let r = env.http(Method::GET, &format!("{path}?{query}"), Some(&acme.viewer), None).await;
            assert_eq!(r.status, code, "{query}: {}", r.text);
        }
        for bad in ["nope", "%00", "caf%C3%A9", &"a".repeat(300)] {
            let r = env.http(Method::GET, &format!("/v1/orgs/acme/jobs/{bad}/events"), Some(&acme.viewer), None).await;
            assert_eq!(r.status, 404, "{bad}: {}", r.text);
        }
        assert_eq!(env.cli(&["job", "events", &job, "--org", "other"]).await.error_code(), "not_found");
    }

    async fn a_long_poll_returns_on_a_new_event_before_its_wait_ends(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        let job = submit(&env, "acme", "echo", json!({})).await;
        let page = env.cli_ok(&["job", "events", &job, "--org", "acme"]).await;
        let after = page["next_after"].as_i64().unwrap();
        let path = format!("/v1/orgs/acme/jobs/{job}/events?after={after}&wait=20");
        let started = Instant::now();
        let poll = {
            let env = env.clone();
            let key = acme.viewer.clone();
            let path = path.clone();
            tokio::spawn(async move { env.http(Method::GET, &path, Some(&key), None).await })
        };
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(!poll.is_finished(), "it waits while nothing happens");
        env.cli_ok(&["job", "cancel", "--org", "acme", &job]).await;
        let r = poll.await.unwrap();
        let took = started.elapsed();
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(took < Duration::from_secs(10), "returned after {took:?}");
        assert_eq!(kinds(r.body["events"].as_array().unwrap()), ["ended"]);
        assert_eq!(r.body["ended"], true);
        // An ended job answers at once, whatever the wait.
        let started = Instant::now();
        let end = r.body["next_after"].as_i64().unwrap();
        let r = env.http(Method::GET, &format!("/v1/orgs/acme/jobs/{job}/events?after={end}&wait=20"), Some(&acme.viewer), None).await;
        assert_eq!((r.status, r.body["ended"].as_bool()), (200, Some(true)));
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    async fn waiting_readers_are_bounded_per_key(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        let job = submit(&env, "acme", "echo", json!({})).await;
        let after = env.cli_ok(&["job", "events", &job, "--org", "acme"]).await["next_after"].clone();
        let path = format!("/v1/orgs/acme/jobs/{job}/events?after={after}&wait=3");
        let mut polls = Vec::new();
        for _ in 0..12 {
            let env = env.clone();
            let (key, path) = (acme.viewer.clone(), path.clone());
            polls.push(tokio::spawn(async move { env.http(Method::GET, &path, Some(&key), None).await.status }));
        }
        let mut statuses = Vec::new();
        for p in polls {
            statuses.push(p.await.unwrap());
        }
        let limited = statuses.iter().filter(|s| **s == 429).count();
        assert_eq!(limited, 12 - velu_core::waiting::Waiting::Events.per_key(), "{statuses:?}");
        assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");
        // Another key still waits.
        let r = env.http(Method::GET, &format!("/v1/orgs/acme/jobs/{job}/events?after={after}&wait=1"), Some(&acme.builder), None).await;
        assert_eq!(r.status, 200);
    }

    async fn waiting_readers_are_bounded_per_org_however_many_keys_it_holds(env) {
        bootstrap(&env, "acme", "hero").await;
        let job = submit(&env, "acme", "echo", json!({})).await;
        let after = env.cli_ok(&["job", "events", &job, "--org", "acme"]).await["next_after"].clone();
        let path = format!("/v1/orgs/acme/jobs/{job}/events?after={after}&wait=3");
        let per_key = velu_core::waiting::Waiting::Events.per_key();
        let per_org = velu_core::waiting::Waiting::Events.per_org();
        // Enough keys that their own caps together exceed the org's by two keys' worth.
        let keys = per_org / per_key + 2;
        let mut tokens = Vec::new();
        for k in 0..keys {
            let doc = env.cli_ok(&["key", "create", "--org", "acme", "--name", &format!("reader-{k}"), "--role", "viewer"]).await;
            tokens.push(doc["token"].as_str().unwrap().to_owned());
        }
        let mut polls = Vec::new();
        for key in tokens {
            for _ in 0..per_key {
                let (env, key, path) = (env.clone(), key.clone(), path.clone());
                polls.push(tokio::spawn(async move { env.http(Method::GET, &path, Some(&key), None).await.status }));
            }
        }
        let mut statuses = Vec::new();
        for p in polls {
            statuses.push(p.await.unwrap());
        }
        let waited = statuses.iter().filter(|s| **s == 200).count();
        assert_eq!(waited, per_org, "{statuses:?}");
        assert_eq!(statuses.len() - waited, statuses.iter().filter(|s| **s == 429).count(), "{statuses:?}");
        // Another org's readers are not held up by acme's.
        bootstrap(&env, "beta", "hero").await;
        let other = submit(&env, "beta", "echo", json!({})).await;
        let beta_viewer = env.cli_ok(&["key", "create", "--org", "beta", "--name", "r", "--role", "viewer"]).await["token"].as_str().unwrap().to_owned();
        let r = env.http(Method::GET, &format!("/v1/orgs/beta/jobs/{other}/events?wait=0"), Some(&beta_viewer), None).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }

    async fn a_cancel_asked_again_writes_nothing(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        let job = submit(&env, "acme", "echo", json!({})).await;
        let key = platform_key(&env, "fleet", "jobs:work").await;
        let claim = env.http(Method::POST, "/v1/worker/claim", Some(&key), Some(json!({"worker_id": "w", "max": 1}))).await;
        assert_eq!(claim.body["jobs"][0]["id"], job.as_str(), "{}", claim.text);
        let audits = |env: TestEnv| async move {
            let page = env.cli_ok(&["audit", "list", "--org", "acme", "--limit", "200"]).await;
            page["items"].as_array().unwrap().iter().filter(|a| a["action"] == "job.cancel").count()
        };
        for _ in 0..5 {
            let r = env.http(Method::POST, &format!("/v1/orgs/acme/jobs/{job}/cancel"), Some(&acme.builder), None).await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.body["status"], "running", "{}", r.text);
            env.cli_ok(&["job", "cancel", "--org", "acme", &job]).await;
        }
        let events = all_events(&env, "acme", &job).await;
        assert_eq!(kinds(&events).iter().filter(|k| **k == "cancel_requested").count(), 1, "{events:?}");
        assert_eq!(audits(env.clone()).await, 1);
        // The worker still sees the one cancel asked.
        let token = claim.body["jobs"][0]["token"].as_str().unwrap();
        let beat = env.http(Method::POST, "/v1/worker/heartbeat", Some(&key), Some(json!({"worker_id": "w", "tokens": [token]}))).await;
        assert_eq!(beat.body["held"], json!([{"id": job, "cancel_requested": true}]), "{}", beat.text);
    }

    async fn a_revoked_keys_event_stream_ends(env) {
        bootstrap(&env, "acme", "hero").await;
        // A job that will not run for a day: its stream would otherwise last its ten minutes.
        let later = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
        let job = env.cli_ok(&["job", "submit", "--org", "acme", "--task", "echo", "--run-at", &later]).await["id"].as_str().unwrap().to_owned();
        let doc = env.cli_ok(&["key", "create", "--org", "acme", "--name", "watcher", "--role", "viewer"]).await;
        let (kid, token) = (doc["key"]["id"].as_str().unwrap().to_owned(), doc["token"].as_str().unwrap().to_owned());
        let req = poem::Request::builder().uri(format!("/v1/orgs/acme/jobs/{job}/events").parse().unwrap())
            .header("x-api-key", &token).header("accept", "text/event-stream").finish();
        let started = Instant::now();
        let stream = { let env = env.clone(); tokio::spawn(async move { env.send(req).await }) };
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!stream.is_finished(), "the stream is open while its key is valid");
        env.cli_ok(&["key", "revoke", &kid, "--org", "acme"]).await;
        let r = tokio::time::timeout(Duration::from_secs(30), stream).await
            .expect("the stream ends within a slice of its key's revocation").unwrap();
        assert_eq!(r.status, 200);
        assert!(r.text.contains("id: "), "{}", r.text);
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    async fn server_sent_events_carry_ids_and_end_with_the_job(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        let job = submit(&env, "acme", "progress", json!({"lines": 2})).await;
        drain_queue(env.velu(), fast_worker("w-sse")).await;
        let events = all_events(&env, "acme", &job).await;
        let path = format!("/v1/orgs/acme/jobs/{job}/events");
        let req = poem::Request::builder().method(Method::GET).uri(path.parse().unwrap())
            .header("x-api-key", &acme.viewer).header("accept", "text/event-stream").finish();
        let r = env.send(req).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.header("content-type").unwrap().starts_with("text/event-stream"), "{:?}", r.headers);
        let ids: Vec<i64> = r.text.lines().filter_map(|l| l.strip_prefix("id: ")).map(|i| i.parse().unwrap()).collect();
        let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
        assert_eq!(ids, seqs, "{}", r.text);
        let data: Vec<Value> = r.text.lines().filter_map(|l| l.strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).unwrap()).collect();
        assert_eq!(kinds(&data), kinds(&events));
        assert!(data[1].get("worker_id").is_none(), "an org key never sees worker ids");
        // Resuming with Last-Event-ID sends only what came after.
        let req = poem::Request::builder().method(Method::GET).uri(path.parse().unwrap())
            .header("x-api-key", &acme.viewer).header("accept", "text/event-stream")
            .header("last-event-id", seqs[3].to_string()).finish();
        let r = env.send(req).await;
        let ids: Vec<i64> = r.text.lines().filter_map(|l| l.strip_prefix("id: ")).map(|i| i.parse().unwrap()).collect();
        assert_eq!(ids, seqs[4..], "{}", r.text);
        // gzip is never applied to a stream (it would hold every event until the end).
        let req = poem::Request::builder().method(Method::GET).uri(path.parse().unwrap())
            .header("x-api-key", &acme.viewer).header("accept", "text/event-stream")
            .header("accept-encoding", "gzip").finish();
        let r = env.send(req).await;
        assert!(r.header("content-encoding").is_none());
        assert!(r.text.contains("data: "));
    }

    async fn remote_workers_report_progress_along_the_heartbeat(env) {
        bootstrap(&env, "acme", "hero").await;
        let other = bootstrap(&env, "other", "hero").await;
        let job = submit(&env, "acme", "echo", json!({})).await;
        let theirs = submit(&env, "other", "echo", json!({})).await;
        let work = platform_key(&env, "remote", "jobs:work").await;
        let claimed = env.http(Method::POST, "/v1/worker/claim", Some(&work),
            Some(json!({"worker_id": "r-1", "max": 10}))).await;
        assert_eq!(claimed.status, 200, "{}", claimed.text);
        let token_of = |id: &str| claimed.body["jobs"].as_array().unwrap().iter()
            .find(|j| j["id"] == id).expect("claimed")["token"].as_str().unwrap().to_owned();
        let (mine, not_acme) = (token_of(&job), token_of(&theirs));
        let long = "é".repeat(1000);
        let beat = env.http(Method::POST, "/v1/worker/heartbeat", Some(&work), Some(json!({
            "worker_id": "r-1", "tokens": [mine, not_acme],
            "progress": [{"token": mine, "lines": ["half\u{0}way", "\u{1b}[31mred", long]}]
        }))).await;
        assert_eq!(beat.status, 200, "{}", beat.text);
        let events = all_events(&env, "acme", &job).await;
        let lines: Vec<&str> = events.iter().filter(|e| e["kind"] == "progress")
            .map(|e| e["line"].as_str().unwrap()).collect();
        assert_eq!(lines.len(), 3, "{events:?}");
        assert_eq!(lines[0], "half\u{FFFD}way");
        assert_eq!(lines[1], "\u{FFFD}[31mred");
        assert!(lines[2].len() <= MAX_LINE_BYTES && lines[2].ends_with('…'));
        // Too many lines in one heartbeat: refused as a whole, before anything is written.
        let many: Vec<String> = (0..65).map(|i| format!("l{i}")).collect();
        let r = env.http(Method::POST, "/v1/worker/heartbeat", Some(&work), Some(json!({
            "worker_id": "r-1", "tokens": [mine], "progress": [{"token": mine, "lines": many}]
        }))).await;
        assert_eq!(r.status, 400, "{}", r.text);
        // An org's jobs:work key cannot write into another org's stream, even with its token.
        let acme_work = env.cli_ok(&["key", "create", "--org", "acme", "--name", "w", "--scopes", "jobs:work"]).await;
        let acme_work = acme_work["token"].as_str().unwrap();
        let r = env.http(Method::POST, "/v1/worker/heartbeat", Some(acme_work), Some(json!({
            "worker_id": "r-1", "tokens": [not_acme], "progress": [{"token": not_acme, "lines": ["planted"]}]
        }))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let theirs_events = all_events(&env, "other", &theirs).await;
        assert!(!serde_json::to_string(&theirs_events).unwrap().contains("planted"), "{theirs_events:?}");
        let _ = other;
    }

    async fn job_watch_follows_to_the_end_and_exits_as_submit_wait(env) {
        bootstrap(&env, "acme", "hero").await;
        let failed = env
            .cli_ok(&["job", "submit", "--org", "acme", "--task", "progress", "--max-attempts", "1",
                      "--payload", r#"{"lines": 1, "exit": 4}"#])
            .await["id"].as_str().unwrap().to_owned();
        let ok = submit(&env, "acme", "echo", json!({})).await;
        let queued = submit(&env, "acme", "sleep", json!({"seconds": 0})).await;
        drain_queue(env.velu(), fast_worker("w-watch")).await;
        let run = env.cli(&["job", "watch", &failed, "--org", "acme", "-o", "json"]).await;
        assert_eq!(run.code, 20, "{}", run.stderr);
        assert_eq!(env.cli(&["job", "watch", &ok, "--org", "acme"]).await.code, 0);
        // Cancelled: 21; still queued with --timeout: 23.
        let at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
        let later = env
            .cli_ok(&["job", "submit", "--org", "acme", "--task", "echo", "--run-at", &at])
            .await;
        let later = later["id"].as_str().unwrap().to_owned();
        let r = env.cli(&["job", "watch", &later, "--org", "acme", "--timeout", "1s"]).await;
        assert_eq!(r.code, 23, "{}", r.stderr);
        env.cli_ok(&["job", "cancel", "--org", "acme", &later]).await;
        assert_eq!(env.cli(&["job", "watch", &later, "--org", "acme"]).await.code, 21);
        assert_ne!(env.cli(&["job", "watch", &queued, "--org", "other"]).await.code, 0);
    }
}
