//! `--db-pool-size`: a process's pools open no more connections than it says, and every
//! operation still completes with one connection per pool (no path holds a connection
//! while it waits for a second from the same pool, which a small pool under load would
//! turn into a stall until the acquire timeout).

use std::time::Duration;

use poem::http::Method;
use velu_core::OpenOptions;
use velu_core::Principal;
use velu_core::auth::authenticate;
use velu_core::jobs::{self, JobFilter, SubmitJob};
use velu_core::keys::{CreateKey, KeyOwner, create_key};
use velu_core::orgs::OrgRef;
use velu_core::pagination::PageRequest;
use velu_core::sea_orm::{ConnectionTrait, DbBackend, Statement};
use velu_tests::{Backend, backend_tests};

use crate::support::{bootstrap, scalar};

backend_tests! {
    async fn one_connection_per_pool_serves_concurrent_operations(env) {
        let boot = bootstrap(&env, "acme", "hero").await;
        // A long-running node (serve, worker): its change listener keeps a connection of
        // its own, outside the pools.
        let node = env.node_with_pool(1, OpenOptions { background: true, ..OpenOptions::default() }).await;
        let acme = OrgRef::new("acme");
        // Sixteen operations at once, of every kind that reads and writes: each holds at
        // most one connection of a pool at a time, or this stalls and fails with
        // `unavailable` after the acquire timeout.
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let (node, acme, admin) = (node.clone(), acme.clone(), boot.admin.clone());
                tokio::spawn(async move {
                    let op = Principal::operator();
                    match i % 4 {
                        0 => {
                            let input = SubmitJob { task: "echo".into(), payload: serde_json::json!({"i": i}), ..Default::default() };
                            jobs::submit_job(&node, &op, &acme, &input).await.map(|_| ())
                        }
                        1 => jobs::list_jobs(&node, &op, &acme, &JobFilter::default(), &PageRequest::default()).await.map(|_| ()),
                        2 => {
                            let input = CreateKey { name: format!("k-{i}"), role: Some("viewer".into()), ..Default::default() };
                            create_key(&node, &op, &KeyOwner::Org(acme.clone()), &input).await.map(|_| ())
                        }
                        _ => authenticate(&node, &admin, None).await.map(|_| ()),
                    }
                })
            })
            .collect();
        let all = async {
            for t in tasks {
                t.await.expect("task").expect("operation");
            }
        };
        tokio::time::timeout(Duration::from_secs(12), all).await.expect("no operation waits for a second connection");
        assert_eq!(env.http(Method::GET, "/v1/orgs/acme/jobs", Some(&boot.admin), None).await.body["items"].as_array().unwrap().len(), 4);
    }

    async fn a_pool_opens_no_more_connections_than_its_size(env) {
        if env.backend() != Backend::Postgres {
            // SQLite's connections are threads of this process, with nothing to count
            // from outside; the test above runs it with one reader.
            return;
        }
        let node = env.node_with_pool(2, OpenOptions::default()).await;
        let sleeps: Vec<_> = (0..8)
            .map(|_| {
                let node = node.clone();
                tokio::spawn(async move {
                    node.db().conn().execute_raw(Statement::from_string(DbBackend::Postgres, "SELECT pg_sleep(0.25) /* pool-size-probe */")).await
                })
            })
            .collect();
        let mut most = 0;
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = scalar::<i64>(env.velu(), "SELECT count(*) FROM pg_stat_activity
                WHERE datname = current_database() AND state = 'active' AND query LIKE '%pool-size-probe%'
                  AND query NOT LIKE '%pg_stat_activity%'").await;
            most = most.max(now);
        }
        for s in sleeps {
            s.await.expect("task").expect("sleep");
        }
        assert!((1..=2).contains(&most), "{most} connections at once from a pool of 2");
    }

    async fn the_flag_refuses_sizes_out_of_range(env) {
        for size in ["0", "257", "many"] {
            let run = env.cli(&["--db-pool-size", size, "org", "list"]).await;
            assert_eq!(run.code, 2, "{size}: {}", run.stderr);
        }
        let ok = env.cli(&["--db-pool-size", "1", "org", "list"]).await;
        assert_eq!(ok.code, 0, "{}", ok.stderr);
    }
}
