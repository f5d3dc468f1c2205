//! The job counters (`job_counts`, kept by triggers on `jobs`): `job stats` and the queued
//! quota read them, so they must equal what the jobs table holds after every kind of
//! write, concurrent ones included.

use serde_json::{Value, json};
use velu_tests::{TestEnv, backend_tests};

use crate::job_state::claim_all_sql;
use crate::support::{bootstrap, drain_queue, exec, fast_worker, scalar, spawn_worker};

/// `(task, status) -> n` as the jobs table says, for `org_id`.
async fn counted(env: &TestEnv, org_id: &str) -> Value {
    let sql = format!(
        "SELECT COALESCE(json_group_object(k, n), '{{}}') FROM (SELECT task || '/' || status AS k, count(*) AS n \
         FROM jobs WHERE org_id = '{org_id}' GROUP BY task, status)"
    );
    let pg = format!(
        "SELECT COALESCE(json_object_agg(k, n)::text, '{{}}') FROM (SELECT task || '/' || status AS k, count(*) AS n \
         FROM jobs WHERE org_id = '{org_id}' GROUP BY task, status) t"
    );
    let text: String = match env.backend() {
        velu_tests::Backend::Sqlite => scalar(env.velu(), &sql).await,
        velu_tests::Backend::Postgres => scalar(env.velu(), &pg).await,
    };
    serde_json::from_str(&text).expect("json")
}

/// The same from `job stats`.
async fn stats(env: &TestEnv, org: &str) -> Value {
    let s = env.cli_ok(&["job", "stats", "--org", org]).await;
    let mut out = serde_json::Map::new();
    for (task, by_status) in s["by_task"].as_object().expect("by_task") {
        for (status, n) in by_status.as_object().expect("by status") {
            if n.as_u64() != Some(0) {
                out.insert(format!("{task}/{status}"), n.clone());
            }
        }
    }
    Value::Object(out)
}

async fn assert_counts_true(env: &TestEnv, org: &str, org_id: &str) {
    assert_eq!(
        stats(env, org).await,
        counted(env, org_id).await,
        "stats of {org}"
    );
}

backend_tests! {
    async fn counters_follow_every_kind_of_write(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        let beta = bootstrap(&env, "beta", "hero").await;
        let batch: Vec<_> = (0..40)
            .map(|i| match i % 4 {
                0 => json!({"task": "fail", "payload": {}, "max_attempts": 1}),
                _ => json!({"task": "echo", "payload": {"i": i}}),
            })
            .collect();
        let file = env.home().join("batch.json");
        std::fs::write(&file, serde_json::to_string(&batch).unwrap()).unwrap();
        for org in ["acme", "beta"] {
            env.cli_ok(&["job", "submit-batch", "--org", org, "--file", file.to_str().unwrap()]).await;
        }
        assert_counts_true(&env, "acme", &acme.org_id).await;
        // Cancel one queued job; run the rest.
        let list = env.cli_ok(&["job", "list", "--org", "acme", "--task", "echo", "--limit", "1"]).await;
        let one = list["items"][0]["id"].as_str().expect("a job").to_owned();
        env.cli_ok(&["job", "cancel", "--org", "acme", &one]).await;
        assert_counts_true(&env, "acme", &acme.org_id).await;
        drain_queue(env.velu(), fast_worker("counts")).await;
        assert_counts_true(&env, "acme", &acme.org_id).await;
        assert_counts_true(&env, "beta", &beta.org_id).await;
        let s = env.cli_ok(&["job", "stats", "--org", "acme"]).await;
        assert_eq!(s["by_status"]["failed"], 10, "{s}");
        assert_eq!(s["by_status"]["cancelled"], 1, "{s}");
        assert_eq!(s["by_status"]["succeeded"], 29, "{s}");
        // Retry a failed job: back to queued.
        let failed = env.cli_ok(&["job", "list", "--org", "acme", "--status", "failed", "--limit", "1"]).await;
        let failed = failed["items"][0]["id"].as_str().expect("a failed job").to_owned();
        env.cli_ok(&["job", "retry", "--org", "acme", &failed]).await;
        assert_counts_true(&env, "acme", &acme.org_id).await;
        // History removed in bulk (what retention does) is counted out too.
        exec(env.velu(), &format!("DELETE FROM jobs WHERE org_id = '{}' AND status = 'succeeded'", acme.org_id)).await;
        assert_counts_true(&env, "acme", &acme.org_id).await;
        assert_counts_true(&env, "beta", &beta.org_id).await;
    }

    async fn stats_read_the_counters_not_the_history(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        env.cli_ok(&["job", "submit", "--org", "acme", "--task", "echo"]).await;
        // A counter moved behind the jobs table's back shows in stats: stats read counters.
        exec(env.velu(), &format!("UPDATE job_counts SET n = n + 41 WHERE org_id = '{}'", acme.org_id)).await;
        let s = env.cli_ok(&["job", "stats", "--org", "acme"]).await;
        assert_eq!(s["total"], 42, "{s}");
        assert_eq!(s["by_task"]["echo"]["queued"], 42, "{s}");
        // And the quota: a hero org holds 10,000 queued jobs; counters say it is full.
        exec(env.velu(), &format!("UPDATE job_counts SET n = 10000 WHERE org_id = '{}'", acme.org_id)).await;
        let more = env.cli(&["job", "submit", "--org", "acme", "--task", "echo"]).await;
        assert_eq!(more.error_code(), "quota_exceeded");
    }

    async fn counters_stay_true_under_concurrent_workers_and_submits(env) {
        let acme = bootstrap(&env, "acme", "superhero").await;
        let workers: Vec<_> = (0..3)
            .map(|i| spawn_worker(env.velu(), velu_core::worker::WorkerConfig { concurrency: 8, ..fast_worker(&format!("w{i}")) }))
            .collect();
        let submitters: Vec<_> = (0..4)
            .map(|s| {
                let velu = env.velu().clone();
                let who = velu_core::principal::Principal::operator();
                tokio::spawn(async move {
                    for i in 0..25 {
                        let input = velu_core::jobs::SubmitJob {
                            task: if i % 5 == 0 { "fail".into() } else { "echo".into() },
                            payload: json!({"s": s, "i": i}),
                            max_attempts: Some(1),
                            ..Default::default()
                        };
                        velu_core::jobs::submit_job(&velu, &who, &velu_core::tenancy::OrgRef::new("acme"), &input)
                            .await
                            .expect("submits");
                    }
                })
            })
            .collect();
        for s in submitters {
            s.await.expect("submitter");
        }
        crate::support::eventually(60, || async {
            let s = env.cli_ok(&["job", "stats", "--org", "acme"]).await;
            (s["by_status"]["queued"] == 0 && s["by_status"]["running"] == 0).then_some(())
        })
        .await;
        for w in workers {
            w.stop().await;
        }
        assert_counts_true(&env, "acme", &acme.org_id).await;
        let s = env.cli_ok(&["job", "stats", "--org", "acme"]).await;
        assert_eq!(s["total"], 100, "{s}");
    }
}

/// One transaction of a private pool on PostgreSQL, crossing orgs, with its backend's pid.
async fn pg_tx(
    pool: &velu_core::sea_orm::DatabaseConnection,
) -> (velu_core::sea_orm::DatabaseTransaction, i32) {
    use velu_core::db::{CrossOrg, cross_org};
    use velu_core::sea_orm::{ConnectionTrait, Statement, TransactionTrait};
    let tx = pool.begin().await.expect("begin");
    cross_org(&tx, CrossOrg::Queue).await.expect("cross orgs");
    let row = tx
        .query_one_raw(Statement::from_string(
            tx.get_database_backend(),
            "SELECT pg_backend_pid()",
        ))
        .await
        .expect("pid")
        .expect("a row");
    (tx, row.try_get_by_index(0).expect("an int"))
}

backend_tests! {
    async fn a_claim_over_orgs_and_a_grouped_submit_lock_counters_in_one_order(env) {
        use velu_core::sea_orm::{ConnectOptions, ConnectionTrait, Database, DbErr};
        if env.backend() == velu_tests::Backend::Sqlite {
            return; // one writer at a time: no lock order to keep
        }
        // Six orgs, one queued job each; two of them, `a` and `b`, whose claim-lock order
        // (hashtext) and id order disagree.
        exec(
            env.velu(),
            "INSERT INTO organizations (id, name, slug, plan, created_at, updated_at)
             SELECT '00000000-0000-7000-b000-00000000000' || i, 'Org ' || i, 'lock-' || i,
               'hero', now(), now()
             FROM generate_series(1, 6) AS i",
        )
        .await;
        let job = |org: &str, n: &str| {
            format!(
                "('{org}', '00000000-0000-7000-c000-{n:0>12}', 'echo', 'queued', '{{}}', 0, 0, 3, now(),
                  'cli', 'test', false, now(), now())"
            )
        };
        let columns = "(org_id, id, task, status, payload, priority, attempts, max_attempts, run_at,
             actor_type, actor_id, cancel_requested, created_at, updated_at)";
        let queued: Vec<String> = (1..=6)
            .map(|i| job(&format!("00000000-0000-7000-b000-00000000000{i}"), &i.to_string()))
            .collect();
        exec(env.velu(), &format!("INSERT INTO jobs {columns} VALUES {}", queued.join(", "))).await;
        let pair: String = scalar(
            env.velu(),
            "SELECT a.id || ' ' || b.id FROM organizations a, organizations b
             WHERE a.slug LIKE 'lock-%' AND b.slug LIKE 'lock-%'
               AND hashtext(a.id) < hashtext(b.id) AND a.id > b.id
             ORDER BY 1 LIMIT 1",
        )
        .await;
        let (a, b) = pair.split_once(' ').expect("two orgs whose orders disagree");

        // Two connections whose counter writes land on the same shard (pid % 16).
        let mut opts = ConnectOptions::new(env.settings().database_url());
        opts.max_connections(20).min_connections(0);
        let pool = Database::connect(opts).await.expect("a pool");
        let mut open = Vec::new();
        let (claim, submit) = loop {
            let (tx, pid) = pg_tx(&pool).await;
            if let Some(i) = open.iter().position(|(_, p): &(_, i32)| p % 16 == pid % 16) {
                let (other, _) = open.swap_remove(i);
                break (other, tx);
            }
            assert!(open.len() < 17, "17 pids cannot all differ mod 16");
            open.push((tx, pid));
        };
        drop(open);

        // The claim takes org `a` first (its lock key comes first), as velu_claim_batch does.
        let claim_org = |org: &str| claim_all_sql(org);
        claim.execute_unprepared(&claim_org(a)).await.expect("claim in a");
        // A grouped submit to both orgs, in one statement, from the other connection.
        let group = format!(
            "INSERT INTO jobs {columns} VALUES {}, {}",
            job(a, "100"),
            job(b, "101")
        );
        let submitting = tokio::spawn(async move {
            submit.execute_unprepared(&group).await?;
            submit.commit().await
        });
        // Until the submit waits on the claim (it needs a counter row the claim holds).
        let mut waits = false;
        for _ in 0..100 {
            let waiting: i64 = scalar(
                env.velu(),
                "SELECT count(*) FROM pg_stat_activity
                 WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO jobs%'",
            )
            .await;
            if waiting > 0 {
                waits = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(waits, "the submit waits on the claim's counters");
        // The claim goes on to org `b`: with the submit holding `b`'s counters while it
        // waits for `a`'s, this is a deadlock, and PostgreSQL aborts one of the two.
        let second = claim.execute_unprepared(&claim_org(b)).await;
        let committed: Result<(), DbErr> = match second {
            Ok(_) => claim.commit().await,
            Err(e) => Err(e),
        };
        let submitted = submitting.await.expect("the submit task");
        assert!(
            committed.is_ok() && submitted.is_ok(),
            "no deadlock between a claim over orgs and a grouped submit: claim {committed:?}, submit {submitted:?}"
        );
        pool.close().await.ok();
    }

    async fn queue_show_reads_the_counters_not_the_queue(env) {
        let acme = bootstrap(&env, "acme", "hero").await;
        for i in 0..5 {
            env.cli_ok(&["job", "submit", "--org", "acme", "--task", "echo", "--payload", &format!("{{\"i\": {i}}}")]).await;
        }
        let shown = env.cli_ok(&["queue", "show", "--org", "acme"]).await;
        assert_eq!((shown["queued"].as_u64(), shown["running"].as_u64()), (Some(5), Some(0)), "{shown}");
        // A counter row that says more than the table holds: `queue show` follows the
        // counters (a handful of rows), so it cannot be counting the queue itself.
        exec(env.velu(), &format!(
            "INSERT INTO job_counts (org_id, task, status, shard, n) VALUES ('{}', 'echo', 'queued', 999, 1000), ('{}', 'echo', 'running', 999, 7)",
            acme.org_id, acme.org_id)).await;
        let shown = env.cli_ok(&["queue", "show", "--org", "acme"]).await;
        assert_eq!((shown["queued"].as_u64(), shown["running"].as_u64()), (Some(1005), Some(7)), "{shown}");
    }
}
