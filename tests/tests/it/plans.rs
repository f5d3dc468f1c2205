//! Plans that hold whatever the server's statistics: here the tables were never analyzed,
//! as on a PostgreSQL server whose autovacuum is off or has not yet caught up with a bulk
//! load or a queue that grew from empty.
//!
//! * A page of an org's history (its jobs, its audit records) is read off an index in
//!   order, never gathered whole and sorted: checked on the plans of the list statements,
//!   in a transaction entered the way `list_jobs` and `list_audit` enter it.
//!   PostgreSQL's `velu_list_jobs` (job list in one statement) reads about a page of rows,
//!   whatever the filters and cursor, first call or cached plan: counted in the
//!   transaction's own table statistics.
//! * The queue's scan of ready orgs takes each next org off the claim index in order.
//! * The claim function plans on indexes only, so a plan it cached while `jobs` was nearly
//!   empty cannot scan the whole table once it is not.

use velu_core::Principal;
use velu_core::db::{CrossOrg, cross_org};
use velu_core::plans::Plan;
use velu_core::queue::{KindsByPlan, explain_ready_scan};
use velu_core::scopes::Scope;
use velu_core::sea_orm::{ConnectionTrait, DatabaseTransaction, Statement, TransactionTrait};
use velu_core::tenancy::OrgRef;
use velu_tests::{Backend, TestEnv, backend_tests};

use crate::support::bootstrap;

/// A query of the integers `first..=last` as column `i`, in the backend's dialect.
fn series(postgres: bool, first: u32, last: u32) -> String {
    if postgres {
        format!("SELECT i FROM generate_series({first}, {last}) AS i")
    } else {
        format!(
            "WITH RECURSIVE s(i) AS (SELECT {first} UNION ALL SELECT i + 1 FROM s WHERE i < {last}) SELECT i FROM s"
        )
    }
}

/// Plants `n` jobs of `status` and `n` audit records in `org`, their ids numbered from
/// `first` (so two orgs' ids never meet), straight into the tables.
async fn plant(env: &TestEnv, org: &str, status: &str, first: u32, n: u32) {
    plant_jobs(env, org, status, "echo", first, n).await;
}

/// [`plant`] with jobs of task `task`.
pub(crate) async fn plant_jobs(
    env: &TestEnv,
    org: &str,
    status: &str,
    task: &str,
    first: u32,
    n: u32,
) {
    let postgres = env.backend() == Backend::Postgres;
    let series = series(postgres, first, first + n - 1);
    let id = if postgres {
        "'00000000-0000-7000-8000-' || lpad(to_hex(i), 12, '0')"
    } else {
        "printf('00000000-0000-7000-8000-%012x', i)"
    };
    let at = "'2026-12-01T00:00:00Z'";
    let jobs = format!(
        "INSERT INTO jobs (id, org_id, task, status, payload, result, priority, attempts,
           max_attempts, run_at, actor_type, actor_id, cancel_requested, created_at,
           updated_at, started_at, finished_at)
         SELECT {id}, '{org}', '{task}', '{status}', '{{}}', '{{}}', 0, 1, 3,
           {at}, 'cli', 'test', false, {at}, {at}, {at}, {at}
         FROM ({series}) AS g"
    );
    let audit = format!(
        "INSERT INTO audit_events (id, org_id, actor_type, actor_id, action, target_type,
           target_id, details, created_at)
         SELECT {id}, '{org}', 'cli', 'test', 'job.submit', 'job', {id}, '{{}}', {at}
         FROM ({series}) AS g"
    );
    let db = env.velu().db();
    let tx = db.write_tx().await.unwrap();
    cross_org(&tx, CrossOrg::Queue).await.unwrap();
    for sql in [jobs, audit] {
        tx.execute_unprepared(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    tx.commit().await.unwrap();
}

/// A queue that has run, on PostgreSQL as a server without autovacuum leaves it: 200 orgs
/// (hero), 15,000 jobs that went queued, running and succeeded (their old versions still
/// in the claim index), then 400 queued. Returns the orgs' ids, in id order.
async fn queue_that_has_run(env: &TestEnv) -> Vec<String> {
    let postgres = env.backend() == Backend::Postgres;
    let pad = |expr: &str, width: u32| {
        if postgres {
            format!("lpad(({expr})::text, {width}, '0')")
        } else {
            format!("printf('%0{width}d', {expr})")
        }
    };
    let org = |i: &str| format!("'00000000-0000-7000-a000-' || {}", pad(i, 12));
    let jobs = |batch: u32, n: u32| {
        format!(
            "INSERT INTO jobs (id, org_id, task, status, payload, priority, attempts,
               max_attempts, run_at, actor_type, actor_id, cancel_requested, created_at,
               updated_at)
             SELECT '00000000-0000-7000-{batch}-' || {id}, {org}, 'echo', 'queued', '{{}}', 0, 0, 3,
               '2026-12-01T00:00:00Z', 'cli', 'test', false, '2026-12-01T00:00:00Z',
               '2026-12-01T00:00:00Z'
             FROM ({series}) AS g",
            id = pad("i", 12),
            org = org("i % 200 + 1"),
            series = series(postgres, 1, n),
        )
    };
    let statements = [
        format!(
            "INSERT INTO organizations (id, name, slug, plan, created_at, updated_at)
             SELECT {id}, 'Org ' || i, 'org-' || i, 'hero', '2026-12-01T00:00:00Z',
               '2026-12-01T00:00:00Z'
             FROM ({series}) AS g",
            id = org("i"),
            series = series(postgres, 1, 200),
        ),
        jobs(8000, 15_000),
        "UPDATE jobs SET status = 'running'".to_owned(),
        "UPDATE jobs SET status = 'succeeded'".to_owned(),
        jobs(9000, 400),
    ];
    let db = env.velu().db();
    let tx = db.write_tx().await.unwrap();
    cross_org(&tx, CrossOrg::Queue).await.unwrap();
    for sql in statements {
        tx.execute_unprepared(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    tx.commit().await.unwrap();
    (1..=200)
        .map(|i| format!("00000000-0000-7000-a000-{i:012}"))
        .collect()
}

/// The plan of `sql` (its `$1` is the org) in `tx`, one line per node or step.
async fn plan(tx: &DatabaseTransaction, postgres: bool, sql: &str, org: &str) -> String {
    let (explain, sql) = if postgres {
        ("EXPLAIN", sql.to_owned())
    } else {
        ("EXPLAIN QUERY PLAN", sql.replace('$', "?"))
    };
    let rows = tx
        .query_all_raw(Statement::from_sql_and_values(
            tx.get_database_backend(),
            format!("{explain} {sql}"),
            [org.into(), "00000000-0000-7000-8000-000000000100".into()],
        ))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.iter()
        .map(|r| {
            // PostgreSQL: one text column; SQLite: (id, parent, notused, detail).
            let line: String = r
                .try_get_by_index(if postgres { 0 } else { 3 })
                .expect("a plan line");
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The list statements' shapes: newest first, by org, optionally by status, task or after
/// a cursor (`$2`), one more than the page. Both parameters are bound every time.
const PAGES: [&str; 5] = [
    "SELECT * FROM jobs WHERE org_id = $1 AND $2 <> '' ORDER BY id DESC LIMIT 21",
    "SELECT * FROM jobs WHERE org_id = $1 AND status = 'queued' AND $2 <> '' ORDER BY id DESC LIMIT 21",
    "SELECT * FROM jobs WHERE org_id = $1 AND task = 'echo' AND $2 <> '' ORDER BY id DESC LIMIT 21",
    "SELECT * FROM jobs WHERE org_id = $1 AND id < $2 ORDER BY id DESC LIMIT 21",
    "SELECT * FROM audit_events WHERE org_id = $1 AND id < $2 ORDER BY id DESC LIMIT 21",
];

backend_tests! {
    async fn a_page_of_history_is_read_in_index_order_without_statistics(env) {
        let postgres = env.backend() == Backend::Postgres;
        let alpha = bootstrap(&env, "alpha", "hero").await;
        let beta = bootstrap(&env, "beta", "hero").await;
        plant(&env, &alpha.org_id, "succeeded", 1, 400).await;
        plant(&env, &beta.org_id, "succeeded", 1_000, 4_000).await;
        for scope in [Scope::JobsRead, Scope::AuditRead] {
            let tx = env.velu().db().read_tx().await.unwrap();
            Principal::operator()
                .enter_to_page(&tx, &OrgRef::new("alpha"), scope)
                .await
                .expect("the operator enters any org");
            if postgres {
                // A plan that must sort anyway is costed past `jit_above_cost`: no JIT.
                let row = tx
                    .query_one_raw(Statement::from_string(
                        tx.get_database_backend(),
                        "SELECT current_setting('enable_sort') || ',' || current_setting('jit')",
                    ))
                    .await
                    .unwrap()
                    .expect("a row");
                let settings: String = row.try_get_by_index(0).unwrap();
                assert_eq!(settings, "off,off", "{scope:?}");
            }
            for sql in PAGES {
                let plan = plan(&tx, postgres, sql, &alpha.org_id).await;
                let sorted = if postgres {
                    plan.contains("Sort")
                } else {
                    plan.contains("TEMP B-TREE")
                };
                assert!(!sorted, "{sql}: a page must not sort the org's rows:\n{plan}");
                let indexed = if postgres {
                    plan.contains("Index Scan Backward")
                } else {
                    plan.contains("USING INDEX") || plan.contains("USING COVERING INDEX")
                };
                assert!(indexed, "{sql}: a page reads an index in order:\n{plan}");
            }
            tx.rollback().await.unwrap();
        }
    }

    async fn sqlite_reads_a_page_of_jobs_in_index_order_within_its_bytes(env) {
        if env.backend() == Backend::Postgres {
            return; // the function's reads are counted below
        }
        let alpha = bootstrap(&env, "alpha", "hero").await;
        plant(&env, &alpha.org_id, "succeeded", 1, 400).await;
        let middle = "00000000-0000-7000-8000-000000000100";
        let low = "00000000-0000-7000-8000-000000000020";
        let tx = env.velu().db().read_tx().await.unwrap();
        for status in [None, Some("succeeded")] {
            for task in [None, Some("echo")] {
                for (before, floor) in [(None, None), (Some(middle), None), (None, Some(low)), (Some(middle), Some(low))] {
                    if floor.is_some() && (status.is_none() || task.is_none()) {
                        continue; // only a page filtered by both has a floor
                    }
                    let statement = velu_core::jobs::page_statement(
                        tx.get_database_backend(), &alpha.org_id, status, task, before, floor, 21,
                    );
                    let explain = Statement::from_sql_and_values(
                        statement.db_backend,
                        format!("EXPLAIN QUERY PLAN {}", statement.sql),
                        statement.values.map(|v| v.0).unwrap_or_default(),
                    );
                    let plan = tx.query_all_raw(explain).await.unwrap().iter()
                        .map(|r| r.try_get_by_index::<String>(3).unwrap())
                        .collect::<Vec<_>>().join("\n");
                    let case = format!("{status:?} {task:?} {before:?} {floor:?}");
                    if floor.is_some() {
                        assert!(plan.contains("ix_jobs_org_status_id") && !plan.contains("ix_jobs_org_task_id"),
                            "{case}: a floored page reads the status's index:\n{plan}");
                    }
                    // Sorted are only the page's ids and sizes the scan kept (for the
                    // window) and the page's rows read back by id, at most the limit
                    // asked each: never the org's rows, read off their index in order.
                    let lines: Vec<&str> = plan.lines().map(str::trim).collect();
                    for (i, line) in lines.iter().enumerate() {
                        if line.contains("TEMP B-TREE") {
                            let read = lines[..i].iter().rev()
                                .find(|l| l.starts_with("SCAN") || l.starts_with("SEARCH"));
                            assert!(
                                read.is_some_and(|l| l.starts_with("SCAN (subquery")
                                    || l.starts_with("SEARCH j USING INDEX sqlite_autoindex_jobs")),
                                "{case}: only the page may be sorted:\n{plan}"
                            );
                        }
                    }
                    assert!(plan.contains("USING INDEX") || plan.contains("USING COVERING INDEX"),
                        "{case}: a page reads an index in order:\n{plan}");
                    assert!(!plan.contains("SCAN j\n") && !plan.lines().any(|l| l.trim() == "SCAN j"),
                        "{case}: never the whole table:\n{plan}");
                }
            }
        }
    }

    async fn the_list_function_reads_a_page_not_the_history_without_statistics(env) {
        if env.backend() == Backend::Sqlite {
            return; // no stored functions on SQLite: the list is the statements above
        }
        bootstrap(&env, "alpha", "hero").await;
        let beta = bootstrap(&env, "beta", "hero").await;
        plant(&env, &beta.org_id, "succeeded", 1_000, 4_000).await;
        let middle = "00000000-0000-7000-8000-000000000bb8"; // job 3,000 of 1,000..=4,999
        let page = 21i64;
        let conn = env.velu().db().conn();
        let backend = conn.get_database_backend();
        // Rows of `jobs` this transaction has read so far, by any scan.
        let read = "SELECT COALESCE(sum(COALESCE(seq_tup_read, 0) + COALESCE(idx_tup_fetch, 0)), 0)::bigint
                    FROM pg_stat_xact_user_tables WHERE relname = 'jobs'";
        for (status, task, before) in [
            (None, None, None),
            (Some("succeeded"), None, None),
            (None, Some("echo"), None),
            (Some("succeeded"), Some("echo"), None),
            (None, None, Some(middle)),
            (Some("succeeded"), None, Some(middle)),
            (None, Some("echo"), Some(middle)),
            (Some("succeeded"), Some("echo"), Some(middle)),
        ] {
            let tx = conn.begin().await.unwrap();
            // PL/pgSQL plans the first calls for their arguments, then may settle on a
            // generic plan: both must read a page.
            for call in 0..8 {
                let before_call: i64 = tx
                    .query_one_raw(Statement::from_string(backend, read))
                    .await.unwrap().expect("a row").try_get_by_index(0).unwrap();
                let rows: i64 = tx
                    .query_one_raw(Statement::from_sql_and_values(
                        backend,
                        "SELECT count(*) FROM velu_list_jobs('slug', 'beta', NULL, $1, $2, $3, $4, $5)",
                        [
                            status.map(str::to_owned).into(),
                            task.map(str::to_owned).into(),
                            before.map(str::to_owned).into(),
                            page.into(),
                            velu_core::pagination::MAX_PAGE_BYTES.into(),
                        ],
                    ))
                    .await.unwrap().expect("a row").try_get_by_index(0).unwrap();
                let after_call: i64 = tx
                    .query_one_raw(Statement::from_string(backend, read))
                    .await.unwrap().expect("a row").try_get_by_index(0).unwrap();
                assert_eq!(rows, page, "{status:?} {task:?} {before:?}: a full page");
                let fetched = after_call - before_call;
                assert!(
                    fetched <= 3 * page,
                    "{status:?} {task:?} {before:?}, call {call}: read {fetched} rows of jobs for a page of {page}: the history, not a page"
                );
            }
            tx.rollback().await.unwrap();
        }
    }

    async fn a_page_filtered_by_both_reads_its_scan_not_the_history_without_statistics(env) {
        if env.backend() == Backend::Sqlite {
            return; // SQLite names the status index (the plans above); counted here
        }
        let beta = bootstrap(&env, "beta", "hero").await;
        let scan = i64::try_from(velu_core::jobs::MAX_LIST_SCAN).unwrap();
        // A rare task under three scans' worth of history of one status.
        plant_jobs(&env, &beta.org_id, "succeeded", "sleep", 1, 2).await;
        plant_jobs(&env, &beta.org_id, "succeeded", "echo", 16, 3 * u32::try_from(scan).unwrap()).await;
        let conn = env.velu().db().conn();
        let backend = conn.get_database_backend();
        let read = "SELECT COALESCE(sum(COALESCE(seq_tup_read, 0) + COALESCE(idx_tup_fetch, 0)), 0)::bigint
                    FROM pg_stat_xact_user_tables WHERE relname = 'jobs'";
        let filter = velu_core::jobs::JobFilter { status: Some("succeeded".into()), task: Some("sleep".into()) };
        let mut cursor = None;
        let mut found = Vec::new();
        for page_no in 0..4 {
            let tx = conn.begin().await.unwrap();
            let org = Principal::operator()
                .enter_to_page(&tx, &OrgRef::new("beta"), Scope::JobsRead).await.unwrap();
            let before_page: i64 = tx.query_one_raw(Statement::from_string(backend, read))
                .await.unwrap().expect("a row").try_get_by_index(0).unwrap();
            let page = velu_core::jobs::list_jobs_in(&tx, org.id(), &filter,
                &velu_core::pagination::PageRequest { limit: Some(50), cursor: cursor.clone() }).await.unwrap();
            let after_page: i64 = tx.query_one_raw(Statement::from_string(backend, read))
                .await.unwrap().expect("a row").try_get_by_index(0).unwrap();
            tx.rollback().await.unwrap();
            let fetched = after_page - before_page;
            // The floor's read and the page's, each at most one scan.
            assert!(fetched <= 2 * scan + 100, "page {page_no}: read {fetched} rows of jobs: the history, not a scan");
            found.extend(page.items.into_iter().map(|j| j.id));
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        assert!(cursor.is_none(), "four scans cover the history");
        assert_eq!(found.len(), 2, "both rare jobs, on the last page");
    }

    async fn the_ready_scan_takes_each_next_org_off_the_index_without_statistics(env) {
        let postgres = env.backend() == Backend::Postgres;
        let orgs = queue_that_has_run(&env).await;
        let kinds: KindsByPlan = [(Plan::Hero, vec!["echo".to_owned()])].into();
        let now = chrono::Utc::now();
        for after in [None, Some(orgs[4].as_str())] {
            let plan = explain_ready_scan(env.velu().db(), now, 64, &kinds, after)
                .await
                .expect("explain the scan")
                .join("\n");
            if postgres {
                assert!(
                    !plan.contains("Sort") && !plan.contains("Bitmap"),
                    "the scan must step through ix_jobs_claim in order, not gather and sort every queued job:\n{plan}"
                );
                assert!(plan.contains("ix_jobs_claim"), "{plan}");
            } else {
                assert!(!plan.contains("TEMP B-TREE"), "{plan}");
            }
        }
    }

    async fn the_claim_function_plans_on_indexes_only(env) {
        if env.backend() == Backend::Sqlite {
            return; // no stored functions on SQLite: the claim is one statement per org
        }
        let row = env
            .velu()
            .db()
            .conn()
            .query_one_raw(Statement::from_string(
                env.velu().db().db_backend(),
                "SELECT array_to_string(ARRAY(SELECT unnest(proconfig) ORDER BY 1), ',')
                 FROM pg_proc WHERE proname = 'velu_claim_batch'",
            ))
            .await
            .unwrap()
            .expect("the claim function exists");
        let config: Option<String> = row.try_get_by_index(0).unwrap();
        assert_eq!(
            config.as_deref(),
            Some("enable_seqscan=off,jit=off"),
            "a generic plan cached while `jobs` was nearly empty would scan the whole table per claim"
        );
    }
}
