//! Schedules: one job per tick however many tickers run, the missed-tick rule, pause and
//! resume, refusals recorded (never retried), rights and tenancy, odd inputs, the job's
//! actor, DST and far-future times.

use chrono::{DateTime, Duration, Utc};
use poem::http::Method;
use serde_json::{Value, json};
use velu_core::OpenOptions;
use velu_core::schedules::tick_once;
use velu_tests::{TestEnv, backend_tests};

use crate::support::bootstrap;

fn t(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .with_timezone(&Utc)
}

/// Creates a schedule through the CLI and returns its document.
async fn create(env: &TestEnv, org: &str, cron: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "schedule", "create", "--org", org, "--task", "echo", "--cron", cron,
    ];
    args.extend_from_slice(extra);
    env.cli_ok(&args).await
}

/// The error code of a CLI create that must fail.
async fn create_err(env: &TestEnv, org: &str) -> String {
    env.cli(&[
        "schedule",
        "create",
        "--org",
        org,
        "--task",
        "echo",
        "--cron",
        "0 0 * * *",
    ])
    .await
    .error_code()
}

fn next_run_at(doc: &Value) -> DateTime<Utc> {
    t(doc["next_run_at"].as_str().expect("next_run_at set"))
}

async fn show(env: &TestEnv, org: &str, id: &str) -> Value {
    env.cli_ok(&["schedule", "show", id, "--org", org]).await
}

/// The org's jobs, newest first (up to 200).
async fn jobs(env: &TestEnv, org: &str) -> Vec<Value> {
    let list = env
        .cli_ok(&["job", "list", "--org", org, "--limit", "200"])
        .await;
    list["items"].as_array().unwrap().clone()
}

/// Runs `n` passes at `at` at once, spread over three "processes" (handles with their own
/// pools), and returns how many jobs they queued in all.
async fn tick_concurrently(
    env: &TestEnv,
    nodes: &[velu_core::Velu],
    at: DateTime<Utc>,
    n: usize,
) -> usize {
    let mut tasks = Vec::new();
    for i in 0..n {
        let velu = if i % 3 == 0 {
            env.velu().clone()
        } else {
            nodes[i % nodes.len()].clone()
        };
        tasks.push(tokio::spawn(async move {
            tick_once(&velu, at).await.expect("tick")
        }));
    }
    let mut queued = 0;
    for task in tasks {
        queued += task.await.unwrap().enqueued.len();
    }
    queued
}

backend_tests! {
    async fn one_job_per_tick_however_many_tickers_run(env) {
        bootstrap(&env, "acme", "hero").await;
        let s = create(&env, "acme", "*/5 * * * *", &["--payload", r#"{"n": 1}"#]).await;
        let id = s["id"].as_str().unwrap().to_owned();
        let first = next_run_at(&s);
        assert!(first > Utc::now(), "the first job is at the first tick after creation");
        assert_eq!(first.timestamp() % 300, 0, "on a five-minute boundary");
        let nodes = vec![
            env.another_node(OpenOptions::default()).await,
            env.another_node(OpenOptions::default()).await,
        ];
        // Nothing before the first tick.
        assert_eq!(tick_concurrently(&env, &nodes, first - Duration::seconds(1), 4).await, 0);
        assert!(jobs(&env, "acme").await.is_empty());
        // Eight passes at the same instant: one job.
        assert_eq!(tick_concurrently(&env, &nodes, first, 8).await, 1);
        assert_eq!(tick_concurrently(&env, &nodes, first, 8).await, 0, "the tick is spent");
        let second = first + Duration::minutes(5);
        assert_eq!(tick_concurrently(&env, &nodes, second + Duration::seconds(3), 8).await, 1);
        let listed = jobs(&env, "acme").await;
        assert_eq!(listed.len(), 2, "{listed:?}");
        for job in &listed {
            assert_eq!(job["actor_type"], "schedule");
            assert_eq!(job["actor_id"], id.as_str());
            assert_eq!(job["task"], "echo");
            assert_eq!(job["payload"], json!({"n": 1}));
            assert_eq!(job["status"], "queued");
        }
        let s = show(&env, "acme", &id).await;
        assert_eq!(s["last_job_id"], listed[0]["id"]);
        assert_eq!(next_run_at(&s), second + Duration::minutes(5));
        assert!(s["last_error"].is_null());
        // The job's submit is audited with the schedule as actor.
        let audit = env.cli_ok(&["audit", "list", "--org", "acme"]).await;
        let submits: Vec<_> = audit["items"].as_array().unwrap().iter()
            .filter(|e| e["action"] == "job.submit").collect();
        assert_eq!(submits.len(), 2);
        assert!(submits.iter().all(|e| e["actor_type"] == "schedule" && e["actor_id"] == id.as_str()));
        for node in nodes {
            node.shutdown().await;
        }
    }

    async fn missed_ticks_queue_only_the_latest(env) {
        bootstrap(&env, "acme", "hero").await;
        let s = create(&env, "acme", "*/5 * * * *", &[]).await;
        let id = s["id"].as_str().unwrap().to_owned();
        let first = next_run_at(&s);
        // Down for an hour and two minutes: twelve ticks missed, one job.
        let back = first + Duration::minutes(62);
        let report = tick_once(env.velu(), back).await.unwrap();
        assert_eq!(report.enqueued.len(), 1);
        assert_eq!(tick_once(env.velu(), back).await.unwrap().enqueued.len(), 0);
        let s = show(&env, "acme", &id).await;
        assert_eq!(next_run_at(&s), first + Duration::minutes(65), "on from the next tick after now");
        assert_eq!(t(s["last_enqueued_at"].as_str().unwrap()), back);
        assert_eq!(jobs(&env, "acme").await.len(), 1);
        // Far in the future: still one job, and nothing panics when the calendar ends.
        let far = t("9999-12-31T23:59:59Z");
        assert_eq!(tick_once(env.velu(), far).await.unwrap().enqueued.len(), 1);
        let s = show(&env, "acme", &id).await;
        assert!(s["next_run_at"].is_null(), "no tick after the calendar's end: {s}");
        assert_eq!(tick_once(env.velu(), far).await.unwrap(), Default::default());
        assert_eq!(jobs(&env, "acme").await.len(), 2);
    }

    async fn paused_schedules_queue_nothing_and_resume_from_the_next_tick(env) {
        bootstrap(&env, "acme", "hero").await;
        let s = create(&env, "acme", "* * * * *", &[]).await;
        let id = s["id"].as_str().unwrap().to_owned();
        let first = next_run_at(&s);
        let paused = env.cli_ok(&["schedule", "pause", &id, "--org", "acme"]).await;
        assert_eq!(paused["paused"], true);
        assert!(paused["next_run_at"].is_null());
        let again = env.cli_ok(&["schedule", "pause", &id, "--org", "acme"]).await;
        assert_eq!(again, paused, "pausing twice changes nothing");
        for minutes in [0, 1, 10, 60] {
            let report = tick_once(env.velu(), first + Duration::minutes(minutes)).await.unwrap();
            assert!(report.enqueued.is_empty());
        }
        assert!(jobs(&env, "acme").await.is_empty());
        let resumed = env.cli_ok(&["schedule", "resume", &id, "--org", "acme"]).await;
        assert_eq!(resumed["paused"], false);
        let next = next_run_at(&resumed);
        assert!(next > Utc::now() && next <= Utc::now() + Duration::minutes(1), "{next}");
        // Ticks missed while paused are not queued: one job at the next tick.
        assert_eq!(tick_once(env.velu(), next).await.unwrap().enqueued.len(), 1);
        assert_eq!(jobs(&env, "acme").await.len(), 1);
        let actions: Vec<String> = env.cli_ok(&["audit", "list", "--org", "acme"]).await["items"]
            .as_array().unwrap().iter()
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .filter(|a| a.starts_with("schedule."))
            .collect();
        assert_eq!(actions, ["schedule.resume", "schedule.pause", "schedule.create"]);
    }

    async fn refused_enqueues_are_recorded_and_skipped(env) {
        bootstrap(&env, "acme", "hero").await;
        let s = create(&env, "acme", "*/5 * * * *", &[]).await;
        let id = s["id"].as_str().unwrap().to_owned();
        let first = next_run_at(&s);
        // A downgrade: the plan gate refuses, the tick is skipped, nothing crashes.
        env.cli_ok(&["org", "set-plan", "acme", "base"]).await;
        let report = tick_once(env.velu(), first).await.unwrap();
        assert_eq!((report.enqueued.len(), report.refused), (0, 1));
        let s = show(&env, "acme", &id).await;
        assert!(s["last_error"].as_str().unwrap().starts_with("upgrade_required:"), "{s}");
        assert_eq!(next_run_at(&s), first + Duration::minutes(5));
        // Never retried: the same instant again does nothing.
        assert_eq!(tick_once(env.velu(), first).await.unwrap(), Default::default());
        // Back on hero with a full queue: the quota refuses.
        env.cli_ok(&["org", "set-plan", "acme", "hero"]).await;
        let batch: Vec<_> = (0..10_000).map(|i| json!({"task": "echo", "payload": {"i": i}})).collect();
        let file = env.home().join("batch.json");
        std::fs::write(&file, serde_json::to_string(&batch).unwrap()).unwrap();
        env.cli_ok(&["job", "submit-batch", "--org", "acme", "--file", file.to_str().unwrap()]).await;
        let report = tick_once(env.velu(), first + Duration::minutes(5)).await.unwrap();
        assert_eq!(report.refused, 1);
        let s = show(&env, "acme", &id).await;
        assert!(s["last_error"].as_str().unwrap().starts_with("quota_exceeded:"), "{s}");
        let stats = env.cli_ok(&["job", "stats", "--org", "acme"]).await;
        assert_eq!(stats["total"], 10_000);
        // Room again: the next tick queues, and the error is cleared.
        let one = jobs(&env, "acme").await[0]["id"].as_str().unwrap().to_owned();
        env.cli_ok(&["job", "cancel", &one, "--org", "acme"]).await;
        let report = tick_once(env.velu(), first + Duration::minutes(10)).await.unwrap();
        assert_eq!(report.enqueued.len(), 1);
        let s = show(&env, "acme", &id).await;
        assert!(s["last_error"].is_null(), "{s}");
        assert_eq!(s["last_job_id"].as_str(), report.enqueued.first().map(String::as_str));
    }

    async fn a_downgrade_leaves_only_the_oldest_schedules_running(env) {
        bootstrap(&env, "acme", "superhero").await;
        let cap = velu_core::plans::Plan::Hero.limits().schedules as usize;
        let mut ids = Vec::new();
        for _ in 0..cap + 3 {
            ids.push(create(&env, "acme", "*/5 * * * *", &[]).await["id"].as_str().unwrap().to_owned());
        }
        // The latest first tick of them all: creating them may cross a five-minute
        // boundary, and then the oldest are due earlier than the rest.
        let mut first = next_run_at(&show(&env, "acme", &ids[0]).await);
        for id in &ids {
            first = first.max(next_run_at(&show(&env, "acme", id).await));
        }
        // Down to hero: the schedules stay, but only the oldest `cap` queue jobs.
        env.cli_ok(&["org", "set-plan", "acme", "hero"]).await;
        let report = tick_once(env.velu(), first).await.unwrap();
        assert_eq!((report.enqueued.len(), report.refused), (cap, 3));
        for (i, id) in ids.iter().enumerate() {
            let s = show(&env, "acme", id).await;
            if i < cap {
                assert!(s["last_error"].is_null(), "schedule {i}: {s}");
            } else {
                assert!(s["last_error"].as_str().unwrap().starts_with("quota_exceeded:"), "schedule {i}: {s}");
            }
        }
        // One of the oldest deleted: the next in age runs in its place, the newest two not.
        env.cli_ok(&["schedule", "delete", &ids[0], "--org", "acme"]).await;
        let report = tick_once(env.velu(), first + Duration::minutes(5)).await.unwrap();
        assert_eq!((report.enqueued.len(), report.refused), (cap, 2));
        assert!(show(&env, "acme", &ids[cap]).await["last_error"].is_null());
        assert!(!show(&env, "acme", &ids[cap + 2]).await["last_error"].is_null());
        // Back up: every one runs again.
        env.cli_ok(&["org", "set-plan", "acme", "superhero"]).await;
        let report = tick_once(env.velu(), first + Duration::minutes(10)).await.unwrap();
        assert_eq!((report.enqueued.len(), report.refused), (cap + 2, 0));
    }

    async fn rights_and_tenancy_hold(env) {
        let a = bootstrap(&env, "acme", "hero").await;
        let b = bootstrap(&env, "other", "hero").await;
        let body = json!({"task": "echo", "cron": "0 * * * *"});
        let r = env.http(Method::POST, "/v1/orgs/acme/schedules", Some(&a.viewer), Some(body.clone())).await;
        assert_eq!((r.status, r.problem_code()), (403, "forbidden".into()));
        assert_eq!(r.body["scope"], "jobs:submit");
        let r = env.http(Method::POST, "/v1/orgs/acme/schedules", Some(&a.builder), Some(body.clone())).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let id = r.body["id"].as_str().unwrap().to_owned();
        assert_eq!(r.body["created_by_type"], "api_key");
        assert_eq!(r.body["created_by_id"], a.doc["keys"]["builder"]["key"]["id"]);
        // The viewer reads, and may not steer.
        let r = env.http(Method::GET, &format!("/v1/orgs/acme/schedules/{id}"), Some(&a.viewer), None).await;
        assert_eq!(r.status, 200);
        let r = env.http(Method::GET, "/v1/orgs/acme/schedules", Some(&a.viewer), None).await;
        assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
        for (method, path) in [
            (Method::POST, format!("/v1/orgs/acme/schedules/{id}/pause")),
            (Method::POST, format!("/v1/orgs/acme/schedules/{id}/resume")),
            (Method::DELETE, format!("/v1/orgs/acme/schedules/{id}")),
        ] {
            let r = env.http(method.clone(), &path, Some(&a.viewer), None).await;
            assert_eq!(r.problem_code(), "forbidden", "{method} {path}");
        }
        // Another org's keys: its org does not exist, nor does the schedule under their own.
        for (method, path) in [
            (Method::GET, format!("/v1/orgs/acme/schedules/{id}")),
            (Method::GET, "/v1/orgs/acme/schedules".to_owned()),
            (Method::POST, format!("/v1/orgs/acme/schedules/{id}/pause")),
            (Method::DELETE, format!("/v1/orgs/acme/schedules/{id}")),
            (Method::GET, format!("/v1/orgs/other/schedules/{id}")),
            (Method::POST, format!("/v1/orgs/other/schedules/{id}/pause")),
            (Method::POST, format!("/v1/orgs/other/schedules/{id}/resume")),
            (Method::DELETE, format!("/v1/orgs/other/schedules/{id}")),
        ] {
            let r = env.http(method.clone(), &path, Some(&b.admin), None).await;
            assert_eq!((r.status, r.problem_code()), (404, "not_found".into()), "{method} {path}");
        }
        let r = env.http(Method::POST, "/v1/orgs/acme/schedules", Some(&b.admin), Some(body)).await;
        assert_eq!(r.problem_code(), "not_found");
        let r = env.http(Method::GET, "/v1/orgs/other/schedules", Some(&b.admin), None).await;
        assert_eq!(r.body["items"], json!([]));
        // Still there, untouched.
        let s = show(&env, "acme", &id).await;
        assert_eq!(s["paused"], false);
        // Malformed ids are not found, never an error of another kind.
        for bad in ["nope", "00000000-0000-0000-0000-000000000000", "%00"] {
            let r = env.http(Method::GET, &format!("/v1/orgs/acme/schedules/{bad}"), Some(&a.viewer), None).await;
            assert_eq!(r.problem_code(), "not_found", "{bad}");
        }
    }

    async fn odd_inputs_are_refused(env) {
        let a = bootstrap(&env, "acme", "hero").await;
        let tiny = bootstrap(&env, "tiny", "base").await;
        let post = |key: String, org: &'static str, body: Value| {
            let env = env.clone();
            async move { env.http(Method::POST, &format!("/v1/orgs/{org}/schedules"), Some(&key), Some(body)).await }
        };
        for (body, field) in [
            (json!({"task": "echo", "cron": "61 * * * *"}), "cron"),
            (json!({"task": "echo", "cron": "* * * *"}), "cron"),
            (json!({"task": "echo", "cron": "*/10 * * * * *"}), "cron"),
            (json!({"task": "echo", "cron": "0 0 30 2 *"}), "cron"),
            (json!({"task": "echo", "cron": "@reboot"}), "cron"),
            (json!({"task": "echo", "cron": "* * * * *", "timezone": "Mars/Olympus"}), "timezone"),
            (json!({"task": "echo", "cron": "* * * * *", "timezone": "utc"}), "timezone"),
            (json!({"task": "nope", "cron": "* * * * *"}), "task"),
            (json!({"task": "echo", "cron": "* * * * *", "payload": {"_velu": 1}}), "payload"),
            (json!({"task": "echo", "cron": "* * * * *", "payload": {"s": "a\u{0}b"}}), "payload"),
            (json!({"task": "echo", "cron": "* * * * *", "payload": [1]}), "payload"),
        ] {
            let r = post(a.builder.clone(), "acme", body.clone()).await;
            assert_eq!((r.problem_code(), r.body["field"].clone()), ("invalid".into(), json!(field)), "{body}: {}", r.text);
        }
        let r = post(a.builder.clone(), "acme", json!({"task": "echo", "cron": "*/10 * * * * *"})).await;
        assert!(r.body["detail"].as_str().unwrap().contains("once a minute"), "{}", r.text);
        for body in [
            json!({"task": "echo", "cron": "* * * * *", "org_id": "x"}),
            json!({"task": "echo", "cron": "* * * * *", "actor_id": "x"}),
            json!({"task": "echo", "cron": "* \u{0} * * *"}),
            json!({"task": "echo", "cron": "*".repeat(201)}),
            json!({"task": "echo", "cron": 5}),
            json!({"task": "echo"}),
        ] {
            let r = post(a.builder.clone(), "acme", body.clone()).await;
            assert_eq!(r.problem_code(), "invalid", "{body}");
        }
        // The CLI refuses the same way.
        let r = env.cli(&["schedule", "create", "--org", "acme", "--task", "echo", "--cron", "* * * * * *"]).await;
        assert_eq!(r.error_code(), "invalid");
        let r = env.cli(&["schedule", "create", "--org", "acme", "--task", "echo", "--cron", "* * * * *", "--timezone", "Nowhere"]).await;
        assert_eq!(r.error_code(), "invalid");
        let r = env.cli(&["schedule", "create", "--org", "acme", "--task", "echo", "--cron", "* * * * *", "--payload", "{"]).await;
        assert_eq!(r.error_code(), "invalid");
        // Plan gates: the task's plan, the payload size, the schedule cap.
        let r = post(a.builder.clone(), "acme", json!({"task": "execute", "cron": "* * * * *"})).await;
        assert_eq!((r.problem_code(), r.body["plan"].clone()), ("upgrade_required".into(), json!("superhero")));
        let r = post(tiny.builder.clone(), "tiny", json!({"task": "echo", "cron": "* * * * *"})).await;
        assert_eq!(r.problem_code(), "upgrade_required");
        let big = "x".repeat(300 * 1024);
        let r = post(a.builder.clone(), "acme", json!({"task": "echo", "cron": "* * * * *", "payload": {"b": big}})).await;
        assert_eq!((r.status, r.problem_code()), (413, "payload_too_large".into()));
        let cap = velu_core::plans::Plan::Hero.limits().schedules;
        for i in 0..cap {
            let r = post(a.builder.clone(), "acme", json!({"task": "echo", "cron": format!("{} * * * *", i % 60), "timezone": "Europe/Paris"})).await;
            assert_eq!(r.status, 201, "{}", r.text);
            assert_eq!(r.body["timezone"], "Europe/Paris");
        }
        let r = post(a.builder.clone(), "acme", json!({"task": "echo", "cron": "* * * * *"})).await;
        assert_eq!((r.problem_code(), r.body["limit"].clone()), ("quota_exceeded".into(), json!(cap)));
        // Nothing above queued a job.
        assert_eq!(env.cli_ok(&["job", "stats", "--org", "acme"]).await["total"], 0);
    }

    async fn the_schedule_cap_holds_under_concurrent_creates(env) {
        let a = bootstrap(&env, "acme", "hero").await;
        let cap = velu_core::plans::Plan::Hero.limits().schedules as usize;
        let mut tasks = Vec::new();
        for i in 0..cap + 6 {
            let (env, key) = (env.clone(), a.builder.clone());
            tasks.push(tokio::spawn(async move {
                let body = json!({"task": "echo", "cron": format!("{} * * * *", i % 60)});
                env.http(Method::POST, "/v1/orgs/acme/schedules", Some(&key), Some(body)).await
            }));
        }
        let mut created = 0;
        for task in tasks {
            let r = task.await.unwrap();
            match r.status {
                201 => created += 1,
                _ => assert_eq!(r.problem_code(), "quota_exceeded", "{}", r.text),
            }
        }
        assert_eq!(created, cap);
        let listed = env.cli_ok(&["schedule", "list", "--org", "acme", "--all", "--limit", "7"]).await;
        assert_eq!(listed["items"].as_array().unwrap().len(), cap, "pages merge to the whole list");
        // A paused schedule still counts.
        let first = listed["items"][0]["id"].as_str().unwrap().to_owned();
        env.cli_ok(&["schedule", "pause", &first, "--org", "acme"]).await;
        let r = create_err(&env, "acme").await;
        assert_eq!(r, "quota_exceeded");
        env.cli_ok(&["schedule", "delete", &first, "--org", "acme"]).await;
        create(&env, "acme", "0 0 * * *", &[]).await;
    }

    async fn deleting_a_schedule_stops_it(env) {
        bootstrap(&env, "acme", "hero").await;
        let s = create(&env, "acme", "*/5 * * * *", &[]).await;
        let id = s["id"].as_str().unwrap().to_owned();
        let first = next_run_at(&s);
        assert_eq!(tick_once(env.velu(), first).await.unwrap().enqueued.len(), 1);
        let gone = env.cli_ok(&["schedule", "delete", &id, "--org", "acme"]).await;
        assert_eq!(gone["id"], id.as_str());
        assert_eq!(env.cli(&["schedule", "show", &id, "--org", "acme"]).await.error_code(), "not_found");
        assert_eq!(env.cli(&["schedule", "delete", &id, "--org", "acme"]).await.error_code(), "not_found");
        for minutes in [5, 10, 600] {
            assert_eq!(tick_once(env.velu(), first + Duration::minutes(minutes)).await.unwrap(), Default::default());
        }
        let listed = jobs(&env, "acme").await;
        assert_eq!(listed.len(), 1, "the job it queued stays");
        let audit = env.cli_ok(&["audit", "list", "--org", "acme"]).await;
        assert_eq!(audit["items"][0]["action"], "schedule.delete");
        assert_eq!(audit["items"][0]["target_id"], id.as_str());
    }

    async fn daylight_saving_days_tick_once(env) {
        bootstrap(&env, "acme", "hero").await;
        // 02:30 in Paris: missing on 2027-03-28, twice on 2027-10-31.
        let s = create(&env, "acme", "30 2 * * *", &["--timezone", "Europe/Paris"]).await;
        let id = s["id"].as_str().unwrap().to_owned();
        for (from, to) in [
            ("2027-03-27T12:00:00Z", "2027-03-28T12:00:00Z"),
            ("2027-10-30T12:00:00Z", "2027-10-31T12:00:00Z"),
        ] {
            // Catch up to the day before (one job for the missed ticks), then walk the day
            // a quarter of an hour at a time.
            tick_once(env.velu(), t(from)).await.unwrap();
            let mut at = t(from);
            let mut queued = 0;
            while at <= t(to) {
                at += Duration::minutes(15);
                queued += tick_once(env.velu(), at).await.unwrap().enqueued.len();
            }
            assert_eq!(queued, 1, "one job on the day up to {to}");
            let s = show(&env, "acme", &id).await;
            assert!(next_run_at(&s) > t(to), "{s}");
        }
    }
}

/// The spec's body of `schedules.create` states velu-core's own limits and patterns.
#[test]
fn the_spec_declares_the_core_rules() {
    use velu_core::schedules::{MAX_CRON_LEN, MAX_TIMEZONE_LEN};
    use velu_http::model::common::{PLAIN_TEXT_PATTERN, TASK_PATTERN};
    let spec: Value = serde_json::from_str(&velu_http::openapi_json()).unwrap();
    let body = &spec["components"]["schemas"]["CreateSchedule"];
    assert_eq!(body["additionalProperties"], false);
    let props = &body["properties"];
    assert_eq!(props["task"]["pattern"], TASK_PATTERN);
    assert_eq!(props["payload"]["type"], "object");
    for (field, max) in [("cron", MAX_CRON_LEN), ("timezone", MAX_TIMEZONE_LEN)] {
        assert_eq!(props[field]["pattern"], PLAIN_TEXT_PATTERN, "{field}");
        assert_eq!(
            props[field]["maxLength"].as_u64(),
            Some(max as u64),
            "{field}"
        );
    }
    let limit = &spec["paths"]["/v1/orgs/{org}/schedules"]["get"]["parameters"];
    assert!(limit.to_string().contains("\"maximum\":200"), "{limit}");
}
