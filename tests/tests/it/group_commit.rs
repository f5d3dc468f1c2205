//! Group commit of single submits (`velu-core/src/jobs/group.rs`): concurrent submits of
//! many orgs and keys share transactions, and each keeps its own checks, result and
//! error. The group's transaction crosses orgs on purpose, so these tests try to make a
//! job land in the wrong org, under the wrong actor, past a quota or without its records.

use poem::http::Method;
use serde_json::{Value, json};
use velu_tests::{Backend, TestEnv, backend_tests};

use crate::support::{Boot, bootstrap, scalar};

/// Sends `n` submits at once, each `(key, org, body)`; returns (status, body) in order.
async fn burst(env: &TestEnv, asks: Vec<(String, String, Value)>) -> Vec<(u16, Value)> {
    let handles: Vec<_> = asks
        .into_iter()
        .map(|(key, org, body)| spawn_submit(env, key, org, body))
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

/// Sends one submit on a task of its own; the task answers (status, body).
fn spawn_submit(
    env: &TestEnv,
    key: String,
    org: String,
    body: Value,
) -> tokio::task::JoinHandle<(u16, Value)> {
    let app = velu_http::app(env.velu().clone());
    tokio::spawn(async move {
        use poem::{Body, Endpoint, IntoResponse, Request};
        let req = Request::builder()
            .method(Method::POST)
            .uri(format!("/v1/orgs/{org}/jobs").parse().expect("uri"))
            .header("x-api-key", key)
            .header("content-type", "application/json")
            .body(Body::from_string(body.to_string()));
        let resp = match app.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        };
        let status = resp.status().as_u16();
        let text = resp.into_body().into_string().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    })
}

fn kid(token: &str) -> String {
    token
        .strip_prefix("velu_k1_")
        .expect("token prefix")
        .split('_')
        .next()
        .expect("kid")
        .to_owned()
}

async fn count(env: &TestEnv, sql: &str) -> i64 {
    scalar::<i64>(env.velu(), sql).await
}

/// Holds `org_id`'s admission turn for the queued-jobs quota (its lock space, velu-core
/// `admission.rs`), as the org's own batch of 50,000 jobs would, until the returned
/// transaction ends.
async fn hold_turn(env: &TestEnv, org_id: &str) -> velu_core::sea_orm::DatabaseTransaction {
    use velu_core::sea_orm::{ConnectionTrait, Statement, TransactionTrait};
    let conn = env.velu().db().conn();
    let batch = conn.begin().await.unwrap();
    batch
        .execute_raw(Statement::from_sql_and_values(
            conn.get_database_backend(),
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            [0x5645_4c55i32.into(), org_id.into()],
        ))
        .await
        .unwrap();
    batch
}

/// Two hero orgs, `acme` and `other`, with acme's admission turn held (see [`hold_turn`]);
/// `None` on SQLite, whose one writer at a time leaves nothing to hold apart.
async fn acme_busy_beside_other(
    env: &TestEnv,
) -> Option<(Boot, Boot, velu_core::sea_orm::DatabaseTransaction)> {
    if env.backend() == Backend::Sqlite {
        return None;
    }
    let acme = bootstrap(env, "acme", "hero").await;
    let other = bootstrap(env, "other", "hero").await;
    let batch = hold_turn(env, &acme.org_id).await;
    Some((acme, other, batch))
}

/// Checks that `tasks` (submits of `org`) still wait for its turn, releases the turn
/// (`batch`), then checks that each is written into `org`.
async fn waiting_until_released(
    batch: velu_core::sea_orm::DatabaseTransaction,
    tasks: Vec<tokio::task::JoinHandle<(u16, Value)>>,
    org: &Boot,
) {
    assert!(
        tasks.iter().all(|t| !t.is_finished()),
        "acme's submits wait for acme's turn"
    );
    batch.commit().await.unwrap();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["org_id"], org.org_id.as_str());
    }
}

backend_tests! {
    async fn an_org_whose_turn_is_held_does_not_hold_up_the_orgs_grouped_with_it(env) {
        // Acme's admission turn held, as its own batch of 50,000 jobs would hold it.
        let Some((acme, other, batch)) = acme_busy_beside_other(&env).await else {
            return;
        };
        // Acme's submits and other's, interleaved, so groups hold both.
        let (mut acme_tasks, mut other_tasks) = (Vec::new(), Vec::new());
        for i in 0..64 {
            let body = json!({"task": "echo", "payload": {"i": i}});
            if i % 8 == 0 {
                acme_tasks.push(spawn_submit(&env, acme.builder.clone(), "acme".into(), body));
            } else {
                other_tasks.push(spawn_submit(&env, other.builder.clone(), "other".into(), body));
            }
        }
        // Every one of other's is answered while acme's turn is still held: a liveness
        // bound, generous for a shared machine, not a measure of speed.
        for t in other_tasks {
            let (status, body) = tokio::time::timeout(std::time::Duration::from_secs(60), t)
                .await
                .expect("other's submit must not wait for acme's turn")
                .unwrap();
            assert_eq!(status, 201, "{body}");
        }
        waiting_until_released(batch, acme_tasks, &acme).await;
        let jobs = |org: &str| format!("SELECT count(*) FROM jobs WHERE org_id = '{org}'");
        assert_eq!(count(&env, &jobs(&acme.org_id)).await, 8);
        assert_eq!(count(&env, &jobs(&other.org_id)).await, 56);
    }

    async fn a_busy_org_is_waited_for_once_not_by_every_group_that_meets_it(env) {
        // Acme keeps its admission turn busy (as its own long batches would) and sends
        // single submits all the while, one in each burst of other's.
        let Some((acme, other, batch)) = acme_busy_beside_other(&env).await else {
            return;
        };
        let before = env.velu().submit_waits_run_out();
        let rounds = 8;
        let mut acme_tasks = Vec::new();
        for round in 0..rounds {
            acme_tasks.push(spawn_submit(&env, acme.builder.clone(), "acme".into(), json!({"task": "echo", "payload": {"round": round}})));
            let others: Vec<_> = (0..7)
                .map(|i| spawn_submit(&env, other.builder.clone(), "other".into(), json!({"task": "echo", "payload": {"round": round, "i": i}})))
                .collect();
            for t in others {
                let (status, body) = tokio::time::timeout(std::time::Duration::from_secs(60), t)
                    .await
                    .expect("other's submit must not wait for acme's turn")
                    .unwrap();
                assert_eq!(status, 201, "{body}");
            }
        }
        // The group that first met acme's request waited for its turn and found it busy;
        // the groups after it tried acme's turn without waiting. (Before, each of the
        // eight groups holding one of acme's requests waited: eight or more.) Other's own
        // groups may wait out a turn once or twice on a slow machine, never eight times.
        let waited = env.velu().submit_waits_run_out() - before;
        assert!((1..=3).contains(&waited), "{waited} waits ran out over {rounds} rounds");
        // Once acme's turn is free, its submits are written, and a group that meets acme
        // again waits for its turn as for any org's (it was seen free and forgotten).
        waiting_until_released(batch, acme_tasks, &acme).await;
        let again = burst(&env, vec![
            (acme.builder.clone(), "acme".into(), json!({"task": "echo"})),
            (other.builder.clone(), "other".into(), json!({"task": "echo"})),
        ]).await;
        assert!(again.iter().all(|(status, _)| *status == 201), "{again:?}");
        let jobs = |org: &str| format!("SELECT count(*) FROM jobs WHERE org_id = '{org}'");
        assert_eq!(count(&env, &jobs(&acme.org_id)).await, rounds + 1);
        assert_eq!(count(&env, &jobs(&other.org_id)).await, 7 * rounds + 1);
    }

    async fn each_submit_of_a_burst_keeps_its_own_org_actor_and_error(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        let beta = bootstrap(&env, "beta", "hero").await;
        let mut asks = Vec::new();
        let mut expect = Vec::new();
        for i in 0..48 {
            let (key, org, body, want): (&str, &str, Value, &str) = match i % 6 {
                0 | 1 => (&acme.builder, "acme", json!({"task": "echo", "payload": {"i": i}}), "acme"),
                2 => (&beta.builder, "beta", json!({"task": "echo", "payload": {"i": i}}), "beta"),
                // Another org's key, by slug and by id: a missing org.
                3 => (&beta.builder, if i % 12 == 3 { "acme" } else { acme.org_id.as_str() },
                      json!({"task": "echo", "payload": {}}), "not_found"),
                // A viewer may not submit.
                4 => (&acme.viewer, "acme", json!({"task": "echo", "payload": {}}), "forbidden"),
                // A bad submission in the middle of good ones.
                _ => (&beta.builder, "beta", json!({"task": "no-such-kind", "payload": {"i": "\u{0}"}}), "invalid"),
            };
            asks.push((key.to_owned(), org.to_owned(), body));
            expect.push(want);
        }
        let answers = burst(&env, asks).await;
        let mut ids = Vec::new();
        for (i, ((status, body), want)) in answers.iter().zip(&expect).enumerate() {
            match *want {
                "acme" | "beta" => {
                    assert_eq!(*status, 201, "submit {i}: {body}");
                    let (boot, slug): (&Boot, &str) = if *want == "acme" { (&acme, "acme") } else { (&beta, "beta") };
                    assert_eq!(body["org_id"], boot.org_id.as_str(), "submit {i} to {slug}: {body}");
                    assert_eq!(body["actor_id"], kid(&boot.builder).as_str(), "submit {i}: {body}");
                    assert_eq!(body["payload"]["i"], i as u64, "submit {i} got another's payload: {body}");
                    assert_eq!(body["status"], "queued");
                    ids.push((body["id"].as_str().expect("id").to_owned(), boot.org_id.clone()));
                }
                code => {
                    assert_ne!(*status, 201, "submit {i} should fail with {code}: {body}");
                    assert_eq!(body["code"], code, "submit {i}: {body}");
                }
            }
        }
        assert_eq!(ids.len(), 24);
        // Every accepted job is stored in its org, with one queued event and one audit
        // record in that org; nothing else was written.
        for (id, org_id) in &ids {
            let stored = count(&env, &format!("SELECT count(*) FROM jobs WHERE id = '{id}' AND org_id = '{org_id}'")).await;
            assert_eq!(stored, 1, "job {id} in {org_id}");
            let events = count(&env, &format!(
                "SELECT count(*) FROM job_events WHERE job_id = '{id}' AND org_id = '{org_id}' AND kind = 'queued'")).await;
            assert_eq!(events, 1, "queued event of {id}");
            let audit = count(&env, &format!(
                "SELECT count(*) FROM audit_events WHERE target_id = '{id}' AND org_id = '{org_id}' AND action = 'job.submit'")).await;
            assert_eq!(audit, 1, "audit of {id}");
        }
        // Each audit record names the key that submitted its job and the job's task.
        let builder = |org: &str| if org == acme.org_id { kid(&acme.builder) } else { kid(&beta.builder) };
        for (id, org_id) in &ids {
            let actor = count(&env, &format!(
                "SELECT count(*) FROM audit_events WHERE target_id = '{id}' AND actor_type = 'api_key'
                   AND actor_id = '{}'", builder(org_id))).await;
            assert_eq!(actor, 1, "audit actor of {id}");
            let page = env.cli_ok(&["audit", "list", "--org", org_id, "--limit", "100"]).await;
            let rec = page["items"].as_array().expect("items").iter()
                .find(|r| r["target_id"] == id.as_str()).unwrap_or_else(|| panic!("audit of {id}: {page}"));
            assert_eq!(rec["details"], json!({"task": "echo"}), "{rec}");
        }
        assert_eq!(count(&env, "SELECT count(*) FROM jobs").await, 24);
        assert_eq!(count(&env, &format!("SELECT count(*) FROM jobs WHERE org_id = '{}'", acme.org_id)).await, 16);
        // Usage and counters agree with what was accepted.
        let submitted = count(&env, &format!(
            "SELECT CAST(COALESCE(SUM(jobs_submitted), 0) AS BIGINT) FROM usage_daily WHERE org_id = '{}'", beta.org_id)).await;
        assert_eq!(submitted, 8);
        let stats = env.cli_ok(&["job", "stats", "--org", "acme"]).await;
        assert_eq!(stats["by_status"]["queued"], 16, "{stats}");
        // Each job is readable by its own org only.
        let (id, _) = ids.iter().find(|(_, o)| *o == acme.org_id).expect("an acme job");
        let seen = env.http(Method::GET, &format!("/v1/orgs/beta/jobs/{id}"), Some(&beta.builder), None).await;
        assert_eq!(seen.status, 404, "{}", seen.text);
    }

    async fn a_burst_wakes_the_workers_of_each_org_it_wrote(env) {
        // PostgreSQL: the group's statement sends one wake-up per org it wrote (a worker in
        // another process learns of the jobs from it, not from its next poll). SQLite has
        // no notifications (its workers watch the file: `db/sqlite_watch.rs`).
        use std::sync::{Arc, Mutex};
        use velu_core::db::notify::{Change, spawn_listener};
        let acme = bootstrap(&env, "acme", "hero").await;
        let beta = bootstrap(&env, "beta", "hero").await;
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = seen.clone();
        let Some(listener) = spawn_listener(env.velu().db(), Arc::new(move |change| {
            if let Change::Jobs(org) = change {
                sink.lock().expect("lock").push(org);
            }
        })) else {
            return;
        };
        // The listener subscribes asynchronously: submit until a wake-up arrives, so the
        // test does not depend on how fast it subscribed.
        let mut rounds = 0;
        loop {
            let asks = (0..8)
                .map(|i| {
                    let (key, org) = if i % 2 == 0 { (&acme.builder, "acme") } else { (&beta.builder, "beta") };
                    (key.clone(), org.to_owned(), json!({"task": "echo", "payload": {}}))
                })
                .collect();
            assert!(burst(&env, asks).await.iter().all(|(s, _)| *s == 201));
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let got = seen.lock().expect("lock").clone();
            if got.contains(&acme.org_id) && got.contains(&beta.org_id) {
                break;
            }
            rounds += 1;
            assert!(rounds < 50, "no wake-up for both orgs after {rounds} bursts: {got:?}");
        }
        listener.abort();
        // Nothing but the two orgs' ids was sent on the jobs channel.
        let got = seen.lock().expect("lock").clone();
        assert!(got.iter().all(|o| *o == acme.org_id || *o == beta.org_id), "{got:?}");
    }

    async fn a_burst_at_the_quota_admits_exactly_the_room_left(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        // hero: 10,000 queued jobs. Leave room for 5.
        let batch: Vec<_> = (0..9_995).map(|_| json!({"task": "echo", "payload": {}})).collect();
        let file = env.home().join("batch.json");
        std::fs::write(&file, serde_json::to_string(&batch).unwrap()).unwrap();
        env.cli_ok(&["job", "submit-batch", "--org", "acme", "--file", file.to_str().unwrap()]).await;
        let asks = (0..12)
            .map(|i| (acme.builder.clone(), "acme".to_owned(), json!({"task": "echo", "payload": {"i": i}})))
            .collect();
        let answers = burst(&env, asks).await;
        let ok = answers.iter().filter(|(s, _)| *s == 201).count();
        let refused = answers.iter().filter(|(_, b)| b["code"] == "quota_exceeded").count();
        assert_eq!((ok, refused), (5, 7), "{answers:?}");
        assert_eq!(count(&env, &format!("SELECT count(*) FROM jobs WHERE org_id = '{}'", acme.org_id)).await, 10_000);
    }
}
