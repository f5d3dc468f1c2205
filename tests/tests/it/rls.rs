//! Row-level security on PostgreSQL (docs/security.md): a query that forgot its org filter,
//! run in a transaction the tenancy floor bound to one org, sees that org's rows only; a
//! transaction bound to nothing sees nothing; Velu's pool runs as an ordinary role; a
//! write in another org's name is refused. On SQLite there are no policies (the tenancy
//! type is the wall), so each test states that and stops.

use serde_json::json;
use velu_core::Principal;
use velu_core::db::{CrossOrg, cross_org};
use velu_core::scopes::Scope;
use velu_core::sea_orm::{ConnectionTrait, DatabaseTransaction, Statement, TransactionTrait};
use velu_core::tenancy::OrgRef;
use velu_tests::{Backend, TestEnv, backend_tests};

use crate::support::{bootstrap, submit};

/// The tables with an `org_id` column that the planted queries read.
const ORG_TABLES: [&str; 5] = ["jobs", "api_keys", "audit_events", "schedules", "workers"];

async fn count(tx: &impl ConnectionTrait, sql: &str) -> i64 {
    let row = tx
        .query_one_raw(Statement::from_string(tx.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .expect("one row");
    row.try_get_by_index(0).expect("a count")
}

/// Two orgs with jobs, a schedule and a paused queue each; returns their ids.
async fn two_orgs(env: &TestEnv) -> (String, String) {
    let alpha = bootstrap(env, "alpha", "hero").await;
    let beta = bootstrap(env, "beta", "hero").await;
    for org in ["alpha", "beta"] {
        for i in 0..3 {
            submit(env, org, "echo", json!({ "i": i })).await;
        }
        env.cli_ok(&[
            "schedule",
            "create",
            "--org",
            org,
            "--task",
            "echo",
            "--cron",
            "0 3 * * *",
        ])
        .await;
        env.cli_ok(&["queue", "pause", "--org", org]).await;
    }
    submit(env, "beta", "echo", json!({ "extra": true })).await;
    (alpha.org_id, beta.org_id)
}

async fn entered(env: &TestEnv, org: &str) -> DatabaseTransaction {
    let (_, tx) = Principal::operator()
        .enter_tx(env.velu().db(), &OrgRef::new(org), Scope::JobsRead)
        .await
        .expect("the operator enters any org");
    tx
}

backend_tests! {
    async fn a_planted_query_without_its_org_filter_sees_only_the_entered_org(env) {
        if env.backend() == Backend::Sqlite {
            return; // no policies on SQLite: the tenancy type is the wall
        }
        let (alpha, beta) = two_orgs(&env).await;
        let tx = entered(&env, "alpha").await;
        // The planted bug: no `WHERE org_id = ...` at all.
        assert_eq!(count(&tx, "SELECT count(*) FROM jobs").await, 3, "alpha's jobs, all of them");
        assert_eq!(count(&tx, "SELECT count(*) FROM schedules").await, 1);
        assert_eq!(count(&tx, "SELECT count(*) FROM api_keys").await, 3, "alpha's three keys");
        for table in ORG_TABLES {
            let other = format!("SELECT count(*) FROM {table} WHERE org_id IS DISTINCT FROM '{alpha}'");
            assert_eq!(count(&tx, &other).await, 0, "{table}: nothing but alpha's");
            let named = format!("SELECT count(*) FROM {table} WHERE org_id = '{beta}'");
            assert_eq!(count(&tx, &named).await, 0, "{table}: naming beta finds nothing");
        }
        // Tables keyed by a parent see through the parent's policy.
        let beta_job = count(&tx, &format!(
            "SELECT count(*) FROM job_attempts a JOIN jobs j ON j.id = a.job_id WHERE j.org_id = '{beta}'"
        )).await;
        assert_eq!(beta_job, 0);
        // The org's own pause is visible, another org's is not.
        assert_eq!(count(&tx, &format!("SELECT count(*) FROM queue_pauses WHERE target = '{alpha}'")).await, 1);
        assert_eq!(count(&tx, &format!("SELECT count(*) FROM queue_pauses WHERE target = '{beta}'")).await, 0);
        // Every org is readable by design (the floor looks slugs up before binding).
        assert_eq!(count(&tx, "SELECT count(*) FROM organizations").await, 2);
        drop(tx);
        // The same planted query entered as beta sees beta's four.
        let tx = entered(&env, &beta).await;
        assert_eq!(count(&tx, "SELECT count(*) FROM jobs").await, 4);
    }

    async fn a_transaction_bound_to_nothing_sees_nothing(env) {
        if env.backend() == Backend::Sqlite {
            return;
        }
        two_orgs(&env).await;
        let conn = env.velu().db().conn();
        // Autocommit on the pool, and a plain transaction: no setting, no rows.
        for table in ORG_TABLES.iter().chain(&["job_attempts", "queue_pauses", "schedule_ticks"]) {
            assert_eq!(count(conn, &format!("SELECT count(*) FROM {table}")).await, 0, "{table}");
        }
        let tx = conn.begin().await.unwrap();
        assert_eq!(count(&tx, "SELECT count(*) FROM jobs").await, 0);
        // An empty or bogus org id matches nothing either.
        tx.execute_unprepared("SELECT set_config('velu.org_id', '', true)").await.unwrap();
        assert_eq!(count(&tx, "SELECT count(*) FROM jobs").await, 0);
        tx.execute_unprepared("SELECT set_config('velu.cross_org', 'yes', true)").await.unwrap();
        assert_eq!(count(&tx, "SELECT count(*) FROM jobs").await, 0, "only 'on' crosses orgs");
        drop(tx);
        // The positive control: the named cross-org mechanism sees all seven.
        let tx = conn.begin().await.unwrap();
        cross_org(&tx, CrossOrg::Platform).await.unwrap();
        assert_eq!(count(&tx, "SELECT count(*) FROM jobs").await, 7);
        tx.commit().await.unwrap();
        // A binding ends with its transaction: the pool's next ones see nothing again.
        for _ in 0..30 {
            let bound = entered(&env, "alpha").await;
            assert_eq!(count(&bound, "SELECT count(*) FROM jobs").await, 3);
            bound.commit().await.unwrap();
            assert_eq!(count(conn, "SELECT count(*) FROM jobs").await, 0, "no leak to the next caller");
        }
    }

    async fn velu_runs_as_an_ordinary_role(env) {
        if env.backend() == Backend::Sqlite {
            return;
        }
        let conn = env.velu().db().conn();
        assert!(env.velu().db().runs_as_app_role());
        let row = conn
            .query_one_raw(Statement::from_string(
                conn.get_database_backend(),
                "SELECT current_user::text, r.rolsuper, r.rolbypassrls, \
                 (SELECT rolsuper FROM pg_roles WHERE rolname = session_user) \
                 FROM pg_roles r WHERE r.rolname = current_user",
            ))
            .await
            .unwrap()
            .unwrap();
        let (user, is_super, bypass, session_super): (String, bool, bool, bool) = (
            row.try_get_by_index(0).unwrap(),
            row.try_get_by_index(1).unwrap(),
            row.try_get_by_index(2).unwrap(),
            row.try_get_by_index(3).unwrap(),
        );
        assert_eq!(user, "velu_app");
        assert!(!is_super && !bypass, "the app role skips no policy");
        assert!(session_super, "the tests connect as a superuser, so the role is what holds");
        // Every tenant table forces its policies, even on its owner.
        let unforced = count(conn,
            "SELECT count(*) FROM pg_class c JOIN information_schema.columns i \
             ON i.table_name = c.relname AND i.column_name = 'org_id' \
             AND i.table_schema = current_schema() \
             WHERE c.relnamespace = current_schema()::regnamespace \
             AND NOT (c.relrowsecurity AND c.relforcerowsecurity)",
        ).await;
        assert_eq!(unforced, 0, "a table with org_id lacks row-level security");
        // And the app role cannot change the schema.
        let err = conn.execute_unprepared("ALTER TABLE jobs DISABLE ROW LEVEL SECURITY").await;
        assert!(err.is_err(), "the app role may not lift the policies");
    }

    async fn a_write_in_another_orgs_name_is_refused(env) {
        if env.backend() == Backend::Sqlite {
            return;
        }
        let (_alpha, beta) = two_orgs(&env).await;
        let tx = entered(&env, "alpha").await;
        let insert = format!(
            "INSERT INTO audit_events (id, org_id, actor_type, actor_id, action, target_type, target_id, details, created_at) \
             VALUES ('01900000-0000-7000-8000-000000000001', '{beta}', 'cli', 'x', 'planted', 'org', 'x', '{{}}', now())"
        );
        let err = tx.execute_unprepared(&insert).await.expect_err("the policy refuses it");
        assert!(err.to_string().contains("row-level security"), "{err}");
        drop(tx);
        let tx = entered(&env, "alpha").await;
        let moved = tx
            .execute_unprepared(&format!("UPDATE jobs SET priority = 9 WHERE org_id = '{beta}'"))
            .await
            .unwrap();
        assert_eq!(moved.rows_affected(), 0, "beta's jobs are not there to update");
        let gone = tx.execute_unprepared("DELETE FROM schedules").await.unwrap();
        assert_eq!(gone.rows_affected(), 1, "only alpha's own schedule");
        // Moving one's own row into another org is refused too.
        let err = tx
            .execute_unprepared(&format!("UPDATE jobs SET org_id = '{beta}'"))
            .await
            .expect_err("WITH CHECK refuses it");
        assert!(err.to_string().contains("row-level security"), "{err}");
        drop(tx);
        // Nothing of beta's changed (seen across orgs, on purpose).
        let tx = env.velu().db().cross_org_read_tx(CrossOrg::Platform).await.unwrap();
        assert_eq!(count(&tx, &format!("SELECT count(*) FROM jobs WHERE org_id = '{beta}' AND priority = 9")).await, 0);
        assert_eq!(count(&tx, "SELECT count(*) FROM schedules").await, 2, "the delete was rolled back");
        assert_eq!(count(&tx, "SELECT count(*) FROM audit_events WHERE action = 'planted'").await, 0);
    }

    async fn an_enter_that_is_refused_binds_nothing(env) {
        // Entering finds the org and binds the transaction in one statement
        // (`rls::enter_org`): a caller refused there, for another org or for a missing
        // scope, must be left with a transaction that sees nothing.
        if env.backend() == Backend::Sqlite {
            return;
        }
        let (alpha, beta) = two_orgs(&env).await;
        let key_of = |org: &str, scopes: &[&str]| Principal {
            actor: velu_core::Actor { kind: velu_core::ActorType::ApiKey, id: "k".into() },
            org_id: Some(org.to_owned()),
            scopes: velu_core::scopes::ScopeSet::parse(scopes).expect("scopes"),
            plan: None,
        };
        let viewer = key_of(&alpha, &["jobs:read"]);
        let db = env.velu().db();
        let cases: [(&Principal, String, Scope, &str); 4] = [
            // Its own org, by slug and by id, without the scope: forbidden.
            (&viewer, "alpha".into(), Scope::JobsSubmit, "forbidden"),
            (&viewer, alpha.clone(), Scope::JobsSubmit, "forbidden"),
            // Another org, by slug and by id, with or without the scope: a missing org.
            (&viewer, "beta".into(), Scope::JobsRead, "not_found"),
            (&viewer, beta.clone(), Scope::JobsSubmit, "not_found"),
        ];
        for (who, org, scope, code) in cases {
            let tx = db.read_tx().await.expect("tx");
            let err = who.enter(&tx, &OrgRef::new(org.clone()), scope).await.expect_err("refused");
            assert_eq!(err.code(), code, "{org} {scope:?}");
            assert_eq!(count(&tx, "SELECT count(*) FROM jobs").await, 0, "{org}: the refused transaction sees nothing");
            let bound = tx
                .query_one_raw(Statement::from_string(
                    tx.get_database_backend(),
                    "SELECT COALESCE(current_setting('velu.org_id', true), '') AS v",
                ))
                .await
                .expect("setting")
                .expect("row")
                .try_get::<String>("", "v")
                .expect("text");
            assert_eq!(bound, "", "{org}: nothing bound");
        }
        // The positive control: the same key with the scope it holds sees its 3 jobs.
        let tx = db.read_tx().await.expect("tx");
        viewer.enter(&tx, &OrgRef::new("alpha"), Scope::JobsRead).await.expect("enters");
        assert_eq!(count(&tx, "SELECT count(*) FROM jobs").await, 3);
    }

    async fn odd_org_names_never_bind_a_transaction(env) {
        let _ = two_orgs(&env).await;
        for bad in ["alpha\0", "ALPHA", "alphä", "", "' OR true --", &"a".repeat(10_000)] {
            let err = Principal::operator()
                .enter_tx(env.velu().db(), &OrgRef::new(bad), Scope::JobsRead)
                .await
                .expect_err("not an org");
            assert_eq!(err.code(), "not_found", "{bad:?}");
        }
    }
}
