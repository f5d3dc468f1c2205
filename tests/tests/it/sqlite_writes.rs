//! SQLite's write path (`Db::write_tx` in `velu-core/src/db/mod.rs`): the write
//! transactions of a process run one at a time on its one writer connection, waiting in
//! line for it rather than in SQLite's busy handler (which sleeps a millisecond or more
//! per try), and every connection keeps temporary data in memory.

use std::time::Duration;

use velu_core::sea_orm::{ConnectionTrait, DbBackend, Statement};
use velu_tests::{Backend, backend_tests};

/// The first column of the first row of `sql`, as an integer.
async fn int<C: ConnectionTrait>(conn: &C, sql: &str) -> i64 {
    conn.query_one_raw(Statement::from_string(DbBackend::Sqlite, sql))
        .await
        .expect("query")
        .expect("a row")
        .try_get_by_index::<i64>(0)
        .expect("an integer")
}

backend_tests! {
    async fn concurrent_write_transactions_take_turns_on_one_connection(env) {
        if env.backend() != Backend::Sqlite {
            return; // PostgreSQL writers share the pool: row locks, no file lock
        }
        let db = env.velu().db().clone();
        // A temporary table belongs to the connection that made it: the first writer
        // makes one, and every later writer sees it only on the same connection. Each
        // holds its turn a moment so the others queue behind it.
        let writers: Vec<_> = (0..16)
            .map(|_| {
                let db = db.clone();
                tokio::spawn(async move {
                    let tx = db.write_tx().await.expect("a write transaction");
                    let seen = int(
                        &tx,
                        "SELECT count(*) FROM sqlite_temp_master WHERE name = 'velu_turns'",
                    )
                    .await;
                    if seen == 0 {
                        tx.execute_unprepared("CREATE TEMP TABLE velu_turns (n INTEGER)")
                            .await
                            .expect("create");
                    }
                    tx.execute_unprepared("INSERT INTO velu_turns VALUES (1)")
                        .await
                        .expect("insert");
                    tokio::time::sleep(Duration::from_millis(3)).await;
                    tx.commit().await.expect("commit");
                    seen == 0
                })
            })
            .collect();
        let mut made = 0;
        for w in writers {
            made += usize::from(w.await.expect("writer"));
        }
        assert_eq!(made, 1, "the writers ran on {made} connections, not on the one writer");
        let tx = db.write_tx().await.expect("a write transaction");
        assert_eq!(int(&tx, "SELECT count(*) FROM velu_turns").await, 16, "every turn wrote");
    }

    async fn a_refused_caller_never_waits_for_the_writer(env) {
        if env.backend() != Backend::Sqlite {
            return; // PostgreSQL has no one writer to wait for
        }
        use poem::http::Method;
        use serde_json::json;
        let _alpha = crate::support::bootstrap(&env, "alpha", "hero").await;
        let beta = crate::support::bootstrap(&env, "beta", "hero").await;
        let job = crate::support::submit(&env, "alpha", "echo", json!({})).await;
        let schedule = env.cli_ok(&["schedule", "create", "--org", "alpha", "--task", "echo", "--cron", "0 0 1 1 *"]).await["id"]
            .as_str().unwrap().to_owned();
        let kid = env.cli_ok(&["key", "list", "--org", "alpha"]).await["items"][0]["id"].as_str().unwrap().to_owned();
        // Another org's admin, at alpha's resources: each answer is not_found, and none
        // waits for the writer, which this test holds the whole time.
        env.http(Method::GET, "/v1/whoami", Some(&beta.admin), None).await;
        let held = env.velu().db().write_tx().await.expect("the writer");
        let calls = [
            (Method::POST, format!("/v1/orgs/alpha/keys/{kid}/revoke"), None),
            (Method::POST, format!("/v1/orgs/alpha/keys/{kid}/rotate"), None),
            (Method::POST, "/v1/orgs/alpha/schedules".to_owned(), Some(json!({"task": "echo", "cron": "0 0 1 1 *"}))),
            (Method::POST, format!("/v1/orgs/alpha/schedules/{schedule}/pause"), None),
            (Method::DELETE, format!("/v1/orgs/alpha/schedules/{schedule}"), None),
            (Method::POST, format!("/v1/orgs/alpha/jobs/{job}/cancel"), None),
            (Method::PUT, "/v1/orgs/alpha/secrets/TOKEN".to_owned(), Some(json!({"value": "v"}))),
            (Method::DELETE, "/v1/orgs/alpha/secrets/TOKEN".to_owned(), None),
        ];
        for (method, path, body) in calls {
            let answer = tokio::time::timeout(Duration::from_secs(20), env.http(method.clone(), &path, Some(&beta.admin), body)).await;
            let r = answer.unwrap_or_else(|_| panic!("{method} {path} waited for the writer"));
            assert_eq!((r.status, r.problem_code()), (404, "not_found".to_owned()), "{method} {path}: {}", r.text);
        }
        held.rollback().await.expect("let the writer go");
    }

    async fn temporary_data_stays_in_memory(env) {
        if env.backend() != Backend::Sqlite {
            return;
        }
        let db = env.velu().db();
        // 2 = MEMORY: statement journals and temporary B-trees never become files.
        assert_eq!(int(db.conn(), "PRAGMA temp_store").await, 2, "the pool's connections");
        let tx = db.write_tx().await.expect("a write transaction");
        assert_eq!(int(&tx, "PRAGMA temp_store").await, 2, "the writer connection");
    }
}
