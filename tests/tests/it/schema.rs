//! The schema: migrations, locks, refusing to run behind, WAL on SQLite.

use velu_core::db::{Db, MigrationState, SchemaPolicy};
use velu_core::sea_orm::{ConnectionTrait, Database, Statement};
use velu_core::settings::Settings;
use velu_core::{OpenOptions, Velu};
use velu_tests::{Backend, PG_ENV, TestEnv, backend_tests, test_tasks};

backend_tests! {
    async fn status_lists_every_migration_as_applied(env) {
        let doc = env.cli_ok(&["migrate", "status"]).await;
        let items = doc["items"].as_array().unwrap();
        assert!(items.len() >= 5);
        assert!(items.iter().all(|m| m["state"] == "applied"), "{doc}");
        let expected = if env.backend() == Backend::Postgres { "postgres" } else { "sqlite" };
        assert_eq!(doc["backend"], expected);
        let up = env.cli_ok(&["migrate", "up"]).await;
        assert_eq!(up["applied"], serde_json::json!([]), "nothing left to apply");
    }

    async fn every_migration_has_a_working_down(env) {
        use migration::MigratorTrait;
        let db = env.velu().db();
        // As the database's owner: schema changes are not the app role's (PostgreSQL).
        let owner = crate::support::owner_tx(env.velu()).await;
        migration::Migrator::down(&owner, None).await.expect("all downs run");
        owner.commit().await.expect("commits");
        let status = db.migration_status().await.unwrap();
        assert!(status.iter().all(|m| m.state == MigrationState::Pending));
        db.migrate_up().await.expect("and up again");
        assert!(db.migration_status().await.unwrap().iter().all(|m| m.state == MigrationState::Applied));
    }
}

/// A fresh, empty Postgres database (or `None` without a server).
async fn empty_pg_database() -> Option<(String, String, String)> {
    let admin = std::env::var(PG_ENV).ok()?;
    let name = format!("velu_t_{}", uuid::Uuid::now_v7().simple());
    let conn = Database::connect(&admin).await.unwrap();
    conn.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap();
    conn.close().await.ok();
    let (prefix, _) = admin.rsplit_once('/').unwrap();
    Some((admin.clone(), name.clone(), format!("{prefix}/{name}")))
}

async fn drop_pg_database(admin: &str, name: &str) {
    let conn = Database::connect(admin).await.unwrap();
    conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
        .ok();
    conn.close().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_behind_refuses_to_run_until_migrated_and_migrations_take_a_lock() {
    let Some((admin, name, url)) = empty_pg_database().await else {
        eprintln!("skipped: {PG_ENV} is not set");
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let settings = Settings::new(Some(home.path().to_owned()), Some(url.clone()))
        .unwrap()
        .with_pepper(Some("pepper-for-schema-tests-0123".into()));
    let err = Velu::open(settings.clone(), test_tasks(), OpenOptions::default())
        .await
        .err()
        .expect("a database behind is refused");
    assert_eq!(err.code(), "schema_mismatch");
    assert!(err.to_string().contains("velu-cli migrate up"), "{err}");

    // A server opened without looking still says so on /ready.
    let blind = Velu::open(
        settings.clone(),
        test_tasks(),
        OpenOptions {
            schema: Some(SchemaPolicy::Ignore),
            ..OpenOptions::default()
        },
    )
    .await
    .unwrap();
    let app = velu_http::app(blind.clone());
    let resp = poem::Endpoint::call(
        &app,
        poem::Request::builder()
            .uri("/ready".parse().unwrap())
            .finish(),
    )
    .await
    .unwrap();
    let resp = poem::IntoResponse::into_response(resp);
    assert_eq!(
        resp.status().as_u16(),
        503,
        "/ready reports the schema behind"
    );
    // By its code alone: no key is needed to read it, and the cause names migrations.
    let body = resp.into_body().into_string().await.unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({"status": "schema_mismatch"})
    );
    blind.shutdown().await;
    drop(blind);

    // The CLI says the same, with its exit code, and stdout stays empty.
    let args = [
        "velu-cli",
        "--home",
        home.path().to_str().unwrap(),
        "--database-url",
        &url,
    ];
    let (mut out, mut errs) = (Vec::new(), Vec::new());
    let code = velu_cli::run(
        args.iter().copied().chain(["org", "list"]),
        &mut out,
        &mut errs,
    )
    .await;
    assert_eq!(code, 12);
    assert!(out.is_empty());
    assert!(
        String::from_utf8(errs)
            .unwrap()
            .starts_with("error[schema_mismatch]")
    );

    // Two processes migrating at once: the lock makes one wait, both succeed.
    let (a, b) = (
        Db::connect(&url).await.unwrap(),
        Db::connect(&url).await.unwrap(),
    );
    let (ra, rb) = tokio::join!(a.migrate_up(), b.migrate_up());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    use migration::MigratorTrait;
    assert_eq!(
        ra.len() + rb.len(),
        migration::Migrator::migrations().len(),
        "each migration applied exactly once: {ra:?} {rb:?}"
    );
    assert!(ra.is_empty() || rb.is_empty());

    let velu = Velu::open(settings, test_tasks(), OpenOptions::default())
        .await
        .unwrap();
    assert!(velu.db().require_current_schema().await.is_ok());
    velu.shutdown().await;
    drop(velu);
    a.close().await;
    b.close().await;
    drop_pg_database(&admin, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_without_pepper_fails_closed() {
    let Some((admin, name, url)) = empty_pg_database().await else {
        eprintln!("skipped: {PG_ENV} is not set");
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let settings = Settings::new(Some(home.path().to_owned()), Some(url)).unwrap();
    let velu = Velu::open(
        settings,
        test_tasks(),
        OpenOptions {
            schema: Some(SchemaPolicy::Apply),
            ..OpenOptions::default()
        },
    )
    .await
    .unwrap();
    let err = velu.hasher().unwrap_err();
    assert_eq!(err.code(), "config");
    assert!(err.to_string().contains("VELU_API_KEY_PEPPER"));
    assert!(
        !home.path().join("pepper").exists(),
        "never invents a pepper for Postgres"
    );
    velu.shutdown().await;
    drop(velu);
    drop_pg_database(&admin, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_default_is_private_wal_and_self_migrating() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::start(Backend::Sqlite).await.unwrap();
    let conn = env.velu().db().conn();
    let row = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            "PRAGMA journal_mode",
        ))
        .await
        .unwrap()
        .unwrap();
    let mode: String = row.try_get_by_index(0).unwrap();
    assert_eq!(mode, "wal");
    for file in ["velu.db", "pepper"] {
        let m = std::fs::metadata(env.home().join(file))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(m, 0o600, "{file}");
    }
    env.finish().await;

    // A data directory Velu creates itself is private too.
    let parent = tempfile::tempdir().unwrap();
    let home = parent.path().join("fresh-home");
    let velu = Velu::open(
        Settings::new(Some(home.clone()), None).unwrap(),
        test_tasks(),
        OpenOptions::default(),
    )
    .await
    .unwrap();
    let dir = std::fs::metadata(&home).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir, 0o700);
    velu.shutdown().await;
}

backend_tests! {
    async fn autovacuum_off_names_the_server_setting_and_each_table(env) {
        use velu_core::db::autovacuum::autovacuum_off;
        let db = env.velu().db();
        let before = autovacuum_off(db).await.unwrap();
        if env.backend() == Backend::Sqlite {
            assert!(!before.any(), "SQLite needs no vacuum for the queue");
            return;
        }
        let server: String = crate::support::scalar(env.velu(), "SELECT current_setting('autovacuum')").await;
        assert_eq!(before.server, server == "off");
        assert!(before.tables.is_empty(), "{before:?}");
        crate::support::exec(env.velu(), "ALTER TABLE job_events SET (autovacuum_enabled = false)").await;
        crate::support::exec(env.velu(), "ALTER TABLE jobs SET (autovacuum_enabled = false)").await;
        let off = autovacuum_off(db).await.unwrap();
        assert_eq!(off.tables, ["job_events", "jobs"]);
        assert!(off.any());
        crate::support::exec(env.velu(), "ALTER TABLE jobs RESET (autovacuum_enabled)").await;
        crate::support::exec(env.velu(), "ALTER TABLE job_events SET (autovacuum_enabled = true)").await;
        assert_eq!(autovacuum_off(db).await.unwrap(), before);
    }
}
