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

/// The documented PostgreSQL setup: the database's owner is not a superuser (it needs
/// `CREATEROLE` once). Row-level security then binds the migrations' own copies and
/// backfills, unless they cross orgs: run down and up again over live rows, the fleet
/// registry keeps its workers and the key and job counters count what is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_that_is_not_a_superuser_keeps_its_rows_through_the_migrations() {
    use migration::MigratorTrait;
    let Some((admin, name, url)) = empty_pg_database().await else {
        eprintln!("skipped: {PG_ENV} is not set");
        return;
    };
    let role = format!("velu_owner_{}", &name[name.len() - 12..]);
    let su = Database::connect(&admin).await.unwrap();
    for sql in [
        format!("CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS CREATEROLE"),
        format!("ALTER DATABASE \"{name}\" OWNER TO {role}"),
        // velu_app is server-wide: made by whichever test (or this one) came first.
        "DO $$ BEGIN CREATE ROLE velu_app NOLOGIN; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
            .to_owned(),
        format!("GRANT velu_app TO {role}"),
    ] {
        su.execute_unprepared(&sql).await.unwrap();
    }
    let owner_url = url.replacen("://postgres@", &format!("://{role}@"), 1);
    assert_ne!(
        owner_url, url,
        "the test database URL names the user postgres"
    );

    let home = tempfile::tempdir().unwrap();
    let settings = Settings::new(Some(home.path().to_owned()), Some(owner_url.clone()))
        .unwrap()
        .with_pepper(Some("pepper-for-schema-tests-0123".into()));
    let open = |policy| {
        let settings = settings.clone();
        async move {
            let options = OpenOptions {
                schema: Some(policy),
                ..OpenOptions::default()
            };
            Velu::open(settings, test_tasks(), options)
                .await
                .expect("open as the owner")
        }
    };
    // Live rows: an org with its keys and a job, a platform worker and an org's worker.
    let velu = open(SchemaPolicy::Apply).await;
    let who = velu_core::Principal::operator();
    let boot = velu_core::bootstrap::bootstrap_org(
        &velu,
        &who,
        &velu_core::bootstrap::BootstrapOrg {
            name: "Acme".into(),
            slug: "acme".into(),
            plan: Some("hero".into()),
            rotate: false,
        },
    )
    .await
    .unwrap();
    let org_id = boot.org.id.clone();
    let submit = velu_core::jobs::SubmitJob {
        task: "echo".into(),
        payload: serde_json::json!({}),
        ..Default::default()
    };
    velu_core::jobs::submit_job(&velu, &who, &velu_core::orgs::OrgRef::new("acme"), &submit)
        .await
        .unwrap();
    let at = velu_core::time::now();
    for org in [None, Some(org_id.clone())] {
        let reg = velu_core::fleet::WorkerRegistration {
            id: "w1".into(),
            org_id: org,
            host: "h".into(),
            version: "1".into(),
            kinds: vec!["echo".into()],
            remote: true,
            concurrency: 1,
            heartbeat: std::time::Duration::from_secs(10),
            at,
        };
        velu_core::fleet::register(&velu, &reg).await.unwrap();
    }
    velu.shutdown().await;

    // Down past the key counter and up again, as the owner.
    let owner = Database::connect(&owner_url).await.unwrap();
    let steps = crate::support::steps_back_to("m20261205_000023_key_counts");
    migration::Migrator::down(&owner, Some(steps))
        .await
        .expect("down as the owner");
    migration::Migrator::up(&owner, None)
        .await
        .expect("up as the owner");
    owner.close().await.ok();

    // Seen as the superuser: every row is where it belongs.
    let su_db = Database::connect(&url).await.unwrap();
    let count = |sql: &'static str| {
        let conn = &su_db;
        async move {
            conn.query_one_raw(Statement::from_string(
                conn.get_database_backend(),
                sql.to_owned(),
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index::<i64>(0)
            .unwrap()
        }
    };
    assert_eq!(
        count("SELECT count(*) FROM workers").await,
        1,
        "down keeps one row per id"
    );
    assert_eq!(
        count("SELECT count(*) FROM key_counts WHERE unrevoked = 3").await,
        1,
        "the key counter counts acme's keys"
    );
    assert_eq!(
        count("SELECT COALESCE(sum(n), 0)::bigint FROM job_counts").await,
        1,
        "the job counter counts the job"
    );
    su_db.close().await.ok();
    su.close().await.ok();
    drop_pg_database(&admin, &name).await;
    let su = Database::connect(&admin).await.unwrap();
    su.execute_unprepared(&format!("DROP ROLE IF EXISTS {role}"))
        .await
        .ok();
    su.close().await.ok();
}
