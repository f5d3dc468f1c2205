//! History retention (docs/retention.md): finished jobs past their org's plan days are
//! removed with their attempts and events, nothing else is; only the operator and
//! platform keys with `admin:orgs:manage` may run it; the budget, the slices and
//! concurrent runs hold their counts.

use chrono::{DateTime, Duration, Utc};
use poem::http::Method;
use serde_json::{Value, json};
use velu_core::sea_orm::{ConnectionTrait, Statement, Value as DbValue};
use velu_tests::{TestEnv, backend_tests};

use crate::support::{bootstrap, owner_tx, platform_key, scalar};

/// A UUIDv7 job id made `days_ago` days ago (as Velu would have made it then).
fn old_id(at: DateTime<Utc>) -> String {
    let mut random = [0u8; 10];
    random.copy_from_slice(&uuid::Uuid::now_v7().as_bytes()[6..]);
    uuid::Builder::from_unix_timestamp_millis(at.timestamp_millis() as u64, &random)
        .into_uuid()
        .to_string()
}

/// Plants `n` jobs of `org_id` behind Velu's back (as the database's owner), each with one
/// attempt and one event: made `made_days` ago, in `status`, finished `finished_days` ago
/// (none for queued and running). Returns their ids.
async fn plant(
    env: &TestEnv,
    org_id: &str,
    status: &str,
    made_days: i64,
    finished_days: Option<i64>,
    n: usize,
) -> Vec<String> {
    let now = Utc::now();
    let made = now - Duration::days(made_days);
    let finished = finished_days.map(|d| now - Duration::days(d));
    let tx = owner_tx(env.velu()).await;
    let backend = tx.get_database_backend();
    let pg = backend == velu_core::sea_orm::DbBackend::Postgres;
    let p = |i: usize| if pg { format!("${i}") } else { format!("?{i}") };
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let id = old_id(made);
        let jobs = format!(
            "INSERT INTO jobs (id, org_id, task, status, payload, priority, attempts, \
             max_attempts, run_at, actor_type, actor_id, cancel_requested, created_at, \
             updated_at, started_at, finished_at) \
             VALUES ({}, {}, 'echo', {}, '{{}}', 0, 1, 3, {}, 'cli', 'test', false, {}, {}, {}, {})",
            p(1),
            p(2),
            p(3),
            p(4),
            p(4),
            p(4),
            p(4),
            p(5)
        );
        let values: Vec<DbValue> = vec![
            id.clone().into(),
            org_id.into(),
            status.into(),
            made.into(),
            finished.into(),
        ];
        tx.execute_raw(Statement::from_sql_and_values(backend, &jobs, values))
            .await
            .expect("planted job");
        let attempt = format!(
            "INSERT INTO job_attempts (job_id, attempt, worker_id, lease_token, started_at, \
             finished_at, outcome) VALUES ({}, 1, 'w', 't', {}, {}, NULL)",
            p(1),
            p(2),
            p(3)
        );
        tx.execute_raw(Statement::from_sql_and_values(
            backend,
            &attempt,
            vec![id.clone().into(), made.into(), finished.into()],
        ))
        .await
        .expect("planted attempt");
        let event = format!(
            "INSERT INTO job_events (job_id, org_id, kind, at) VALUES ({}, {}, 'queued', {})",
            p(1),
            p(2),
            p(3)
        );
        tx.execute_raw(Statement::from_sql_and_values(
            backend,
            &event,
            vec![id.clone().into(), org_id.into(), made.into()],
        ))
        .await
        .expect("planted event");
        ids.push(id);
    }
    tx.commit().await.expect("commit");
    ids
}

/// How many rows of `table` belong to the jobs `ids` (`id` for jobs, `job_id` otherwise).
async fn rows_of(env: &TestEnv, table: &str, ids: &[String]) -> i64 {
    let col = if table == "jobs" { "id" } else { "job_id" };
    let list = ids
        .iter()
        .map(|i| format!("'{i}'"))
        .collect::<Vec<_>>()
        .join(",");
    scalar(
        env.velu(),
        &format!("SELECT COUNT(*) FROM {table} WHERE {col} IN ({list})"),
    )
    .await
}

/// Every id of `ids` still there with its attempt and event, or every one gone.
async fn assert_all(env: &TestEnv, ids: &[String], there: bool, what: &str) {
    let want = if there { ids.len() as i64 } else { 0 };
    for table in ["jobs", "job_attempts", "job_events"] {
        assert_eq!(rows_of(env, table, ids).await, want, "{what}: {table}");
    }
}

/// The org's `jobs.retention` audit records.
async fn retention_audit(env: &TestEnv, org: &str) -> Vec<Value> {
    let audit = env.cli_ok(&["audit", "list", "--org", org, "--all"]).await;
    audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["action"] == "jobs.retention")
        .cloned()
        .collect()
}

async fn run(env: &TestEnv, args: &[&str]) -> Value {
    let mut all = vec!["retention", "run"];
    all.extend_from_slice(args);
    env.cli_ok(&all).await
}

backend_tests! {
    async fn only_finished_history_past_the_plan_is_removed(env) {
        let hero = bootstrap(&env, "acme", "hero").await; // 30 days
        let sup = bootstrap(&env, "big", "superhero").await; // 90 days
        // Due in acme: finished 31 days ago, whatever the outcome.
        let due_ok = plant(&env, &hero.org_id, "succeeded", 32, Some(31), 2).await;
        let due_failed = plant(&env, &hero.org_id, "failed", 40, Some(31), 1).await;
        let due_cancelled = plant(&env, &hero.org_id, "cancelled", 35, Some(35), 1).await;
        // Kept in acme: finished inside 30 days (made long before), and queued or running
        // jobs however old.
        let young = plant(&env, &hero.org_id, "succeeded", 60, Some(29), 1).await;
        let queued = plant(&env, &hero.org_id, "queued", 400, None, 1).await;
        let running = plant(&env, &hero.org_id, "running", 400, None, 1).await;
        // In big (90 days): 31 days is kept, 91 is due.
        let sup_kept = plant(&env, &sup.org_id, "succeeded", 31, Some(31), 1).await;
        let sup_due = plant(&env, &sup.org_id, "succeeded", 91, Some(91), 1).await;
        let due: Vec<String> = [due_ok, due_failed, due_cancelled].concat();

        let state = env.cli_ok(&["retention", "show", "--org", "acme"]).await;
        assert_eq!(state["plan"], "hero", "{state}");
        assert_eq!(state["history_days"], 30, "{state}");
        assert_eq!(state["due_jobs"], 4, "{state}");
        assert_eq!(state["due_jobs_capped"], false, "{state}");
        // A viewer of the org reads the same over HTTP; another org's key sees nothing.
        let r = env.http(Method::GET, "/v1/orgs/acme/jobs/retention", Some(&hero.viewer), None).await;
        assert_eq!((r.status, &r.body["due_jobs"]), (200, &json!(4)), "{}", r.text);
        let r = env.http(Method::GET, "/v1/orgs/acme/jobs/retention", Some(&sup.admin), None).await;
        assert_eq!((r.status, r.problem_code()), (404, "not_found".to_owned()), "{}", r.text);

        let stats_before = env.cli_ok(&["job", "stats", "--org", "acme"]).await;
        assert_eq!(stats_before["total"], 7, "{stats_before}");
        let report = run(&env, &["--org", "acme"]).await;
        assert_eq!(report["removed"], 4, "{report}");
        assert_eq!(report["more"], false, "{report}");
        assert_eq!(report["orgs"].as_array().map(Vec::len), Some(1), "{report}");
        assert_eq!(report["orgs"][0]["org_id"], hero.org_id.as_str(), "{report}");
        assert_eq!(report["orgs"][0]["removed"], 4, "{report}");
        assert_all(&env, &due, false, "due jobs").await;
        for (kept, what) in [(&young, "young"), (&queued, "queued"), (&running, "running"),
                             (&sup_kept, "other org"), (&sup_due, "other org, not asked")] {
            assert_all(&env, kept, true, what).await;
        }
        // The counters follow: stats count what is left.
        let stats = env.cli_ok(&["job", "stats", "--org", "acme"]).await;
        assert_eq!(stats["total"], 3, "{stats}");
        assert_eq!(stats["by_status"]["failed"], 0, "{stats}");
        assert_eq!(stats["by_status"]["queued"], 1, "{stats}");
        // Audited in the org.
        let items = retention_audit(&env, "acme").await;
        assert_eq!(items.len(), 1, "{items:?}");
        assert_eq!(items[0]["details"]["removed"], 4, "{items:?}");
        assert_eq!(items[0]["details"]["history_days"], 30, "{items:?}");
        // Every org: the other org's due job goes, nothing else; then nothing is left.
        let report = run(&env, &[]).await;
        assert_eq!(report["removed"], 1, "{report}");
        assert_eq!(report["orgs"][0]["org_id"], sup.org_id.as_str(), "{report}");
        assert_all(&env, &sup_due, false, "other org's due job").await;
        assert_all(&env, &sup_kept, true, "other org's young job").await;
        let report = run(&env, &[]).await;
        assert_eq!((report["removed"].clone(), report["orgs"].clone()), (json!(0), json!([])), "{report}");
        let state = env.cli_ok(&["retention", "show", "--org", "acme"]).await;
        assert_eq!(state["due_jobs"], 0, "{state}");
    }

    async fn only_the_platform_may_run_it(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        let due = plant(&env, &acme.org_id, "succeeded", 40, Some(40), 2).await;
        let usage_only = platform_key(&env, "usage", "usage:read").await;
        let platform = platform_key(&env, "orgs", "admin:orgs:manage").await;
        for (key, what) in [(&acme.admin, "org admin"), (&acme.viewer, "viewer"), (&usage_only, "platform key without the scope")] {
            for body in [json!({"org": "acme"}), json!({})] {
                let r = env.http(Method::POST, "/v1/retention/run", Some(key), Some(body)).await;
                assert_eq!((r.status, r.problem_code()), (403, "forbidden".to_owned()), "{what}: {}", r.text);
            }
        }
        let r = env.http(Method::POST, "/v1/retention/run", None, None).await;
        assert_eq!(r.status, 401, "{}", r.text);
        assert_all(&env, &due, true, "after refused runs").await;
        // Odd input: unknown org, NUL, a budget out of range, unknown fields.
        for (body, status, code) in [
            (json!({"org": "nope"}), 404, "not_found"),
            (json!({"org": "ac\u{0}me"}), 404, "not_found"),
            (json!({"org": "ácmé"}), 404, "not_found"),
            (json!({"max_jobs": 0}), 400, "invalid"),
            (json!({"max_jobs": 10_000_001u64}), 400, "invalid"),
            (json!({"everything": true}), 400, "invalid"),
        ] {
            let r = env.http(Method::POST, "/v1/retention/run", Some(&platform), Some(body.clone())).await;
            assert_eq!((r.status, r.problem_code()), (status, code.to_owned()), "{body}: {}", r.text);
        }
        let cli = env.cli(&["retention", "run", "--max-jobs", "0"]).await;
        assert_eq!(cli.error_code(), "invalid");
        assert_all(&env, &due, true, "after refused input").await;
        let r = env.http(Method::POST, "/v1/retention/run", Some(&platform), Some(json!({"org": "acme"}))).await;
        assert_eq!((r.status, &r.body["removed"]), (200, &json!(2)), "{}", r.text);
        assert_all(&env, &due, false, "after the platform's run").await;
    }

    async fn the_budget_and_concurrent_runs_keep_their_counts(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        let beta = bootstrap(&env, "beta", "hero").await;
        let a = plant(&env, &acme.org_id, "succeeded", 45, Some(45), 1_500).await;
        let b = plant(&env, &beta.org_id, "failed", 45, Some(45), 30).await;
        // A budget smaller than what is due: it stops there and says more is due.
        let report = run(&env, &["--max-jobs", "1200"]).await;
        assert_eq!((report["removed"].clone(), report["more"].clone()), (json!(1200), json!(true)), "{report}");
        let state = env.cli_ok(&["retention", "show", "--org", "acme"]).await;
        let state_b = env.cli_ok(&["retention", "show", "--org", "beta"]).await;
        let left = state["due_jobs"].as_u64().unwrap() + state_b["due_jobs"].as_u64().unwrap();
        assert_eq!(left, 330, "{state} {state_b}");
        // Two runs at once over what is left: every due job removed once, no error.
        let (r1, r2) = tokio::join!(run(&env, &[]), run(&env, &[]));
        let total = r1["removed"].as_u64().unwrap() + r2["removed"].as_u64().unwrap();
        assert_eq!(total, 330, "{r1} {r2}");
        assert_all(&env, &a, false, "acme").await;
        assert_all(&env, &b, false, "beta").await;
        // The slices are audited, and their counts add up.
        let mut audited = 0;
        for org in ["acme", "beta"] {
            for item in retention_audit(&env, org).await {
                let n = item["details"]["removed"].as_u64().expect("removed");
                assert!((1..=1_000).contains(&n), "a slice holds at most 1000: {item}");
                audited += n;
            }
        }
        assert_eq!(audited, 1_530);
        for org in ["acme", "beta"] {
            let stats = env.cli_ok(&["job", "stats", "--org", org]).await;
            assert_eq!(stats["total"], 0, "{org}: {stats}");
        }
    }

    async fn a_run_over_every_org_visits_a_bounded_number_and_says_where_to_go_on(env) {
        use velu_core::jobs::retention::ORGS_PER_RUN;
        let first = bootstrap(&env, "first", "hero").await;
        let last = bootstrap(&env, "last", "hero").await;
        // As many orgs as one run visits, all before `first` in id order, none with history.
        let pg = env.backend() == velu_tests::Backend::Postgres;
        let series = if pg {
            format!("SELECT i FROM generate_series(1, {ORGS_PER_RUN}) AS i")
        } else {
            format!("WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {ORGS_PER_RUN}) SELECT i FROM s")
        };
        let pad = if pg { "lpad(i::text, 12, '0')" } else { "printf('%012d', i)" };
        let tx = owner_tx(env.velu()).await;
        tx.execute_unprepared(&format!(
            "INSERT INTO organizations (id, name, slug, plan, created_at, updated_at)
             SELECT '00000000-0000-7000-a000-' || {pad}, 'Filler ' || i, 'filler-' || i, 'hero',
                    '2026-12-01T00:00:00Z', '2026-12-01T00:00:00Z' FROM ({series}) AS g"
        ))
        .await
        .expect("planted orgs");
        tx.commit().await.unwrap();
        let due_first = plant(&env, &first.org_id, "succeeded", 45, Some(45), 5).await;
        let due_last = plant(&env, &last.org_id, "succeeded", 45, Some(45), 2).await;
        // The first run visits the fillers only, and says where the next one starts.
        let report = run(&env, &[]).await;
        assert_eq!(report["removed"], 0, "{report}");
        assert_eq!(report["more"], true, "{report}");
        assert_eq!(report["next_org"], first.org_id.as_str(), "{report}");
        assert_all(&env, &due_first, true, "first: not reached").await;
        // From there, a budget that stops inside `first`: the next run starts at it again.
        let report = run(&env, &["--from-org", &first.org_id, "--max-jobs", "3"]).await;
        assert_eq!((report["removed"].clone(), report["more"].clone()), (json!(3), json!(true)), "{report}");
        assert_eq!(report["next_org"], first.org_id.as_str(), "{report}");
        // Over HTTP, the same input and answer: the rest of `first`, then `last`, the end.
        let key = platform_key(&env, "ops", "admin:orgs:manage").await;
        let r = env
            .http(Method::POST, "/v1/retention/run", Some(&key), Some(json!({"from_org": first.org_id})))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!((r.body["removed"].clone(), r.body["more"].clone()), (json!(4), json!(false)), "{}", r.text);
        assert!(r.body["next_org"].is_null(), "{}", r.text);
        assert_all(&env, &due_first, false, "first").await;
        assert_all(&env, &due_last, false, "last").await;
        // An org named with a start is refused, on both front ends; nothing is removed.
        let cli = env.cli(&["retention", "run", "--org", "first", "--from-org", &first.org_id]).await;
        assert_eq!(cli.error_code(), "invalid", "{}", cli.stderr);
        let r = env
            .http(Method::POST, "/v1/retention/run", Some(&key),
                  Some(json!({"org": "first", "from_org": first.org_id})))
            .await;
        assert_eq!((r.status, r.problem_code()), (400, "invalid".to_owned()), "{}", r.text);
    }

    async fn a_run_on_sqlite_lets_another_process_write_between_slices(env) {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        use velu_core::jobs::retention::{RetentionRun, run_retention};
        use velu_core::jobs::{SubmitJob, submit_job};
        use velu_core::orgs::OrgRef;
        if env.backend() != velu_tests::Backend::Sqlite {
            return; // PostgreSQL's slices lock their own rows only: nothing to wait for
        }
        let old = bootstrap(&env, "old", "base").await;
        bootstrap(&env, "busy", "superhero").await;
        // Three slices of history due on the base plan's 7 days.
        plant(&env, &old.org_id, "succeeded", 30, Some(30), 3_000).await;
        // Another process on the same file: its own writer connection, so it meets the run
        // in SQLite's busy handler, as `serve` meets a cron's `retention run`.
        let other = env.another_node(velu_core::OpenOptions::default()).await;
        let done = Arc::new(AtomicBool::new(false));
        let writer = {
            let done = done.clone();
            tokio::spawn(async move {
                let input: SubmitJob = serde_json::from_value(json!({"task": "echo"})).unwrap();
                let (who, org) = (velu_core::Principal::operator(), OrgRef::new("busy"));
                let mut during = 0;
                while !done.load(Ordering::Acquire) {
                    submit_job(&other, &who, &org, &input).await.expect("a submit");
                    if !done.load(Ordering::Acquire) {
                        during += 1;
                    }
                }
                during
            })
        };
        let input = RetentionRun { org: Some("old".into()), max_jobs: Some(3_000), from_org: None };
        let report = run_retention(env.velu(), &velu_core::Principal::operator(), &input)
            .await
            .expect("the run");
        done.store(true, Ordering::Release);
        let during = writer.await.unwrap();
        assert_eq!(report.removed, 3_000);
        // Slices taken back to back (about 20 ms each) left the other writer, asleep in
        // the busy handler, a rare free moment: 2 to 29 submits in the whole run (eight
        // tries without the pause). With the lock free between slices it wrote 188 to 235.
        assert!(during >= 60, "the other process wrote {during} times during the run");
    }
}
