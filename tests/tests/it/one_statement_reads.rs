//! Job show and job list enter the org and read in one statement (velu-core
//! `jobs/read_one.rs`: on PostgreSQL `velu_show_job` of migration m20261204_000022 and
//! `velu_list_jobs` of m20261206_000026, `STABLE` since m20261206_000028; on SQLite a `SELECT` with the org lookup as a scalar subquery),
//! where every other org-scoped read enters in a transaction. These
//! tests try to make the two disagree: every principal (the operator, a platform key,
//! each org's keys, a key without the scope) names every job and every page by every
//! name (slug, id, another org's, odd text), with every filter, limit and cursor, and the
//! answer, or error, must be what entering in a transaction gives; and the functions'
//! binding must end with their statement.

use serde_json::json;
use velu_core::jobs::{JobFilter, list_jobs, list_jobs_in, show_job};
use velu_core::pagination::PageRequest;
use velu_core::scopes::{Scope, ScopeSet};
use velu_core::sea_orm::{ConnectionTrait, Statement, Value};
use velu_core::tenancy::OrgRef;
use velu_core::{Actor, ActorType, CoreResult, Principal};
use velu_tests::{Backend, TestEnv, backend_tests};

use crate::job_state::{Attempt, start_attempt};
use crate::support::{bootstrap, drain_queue, exec, fast_worker, submit};

/// A key principal of org `org` (or a platform key: `None`) holding `scopes`.
fn key(org: Option<&str>, scopes: &[&str]) -> Principal {
    Principal {
        actor: Actor {
            kind: ActorType::ApiKey,
            id: "k".into(),
        },
        org_id: org.map(str::to_owned),
        scopes: ScopeSet::parse(scopes).expect("scopes"),
        plan: None,
    }
}

/// What entering in a transaction answers: the reference `show_job` is checked against.
async fn show_in_a_transaction(
    env: &TestEnv,
    who: &Principal,
    org: &str,
    id: &str,
) -> CoreResult<serde_json::Value> {
    let tx = env.velu().db().read_tx().await?;
    let entered = who.enter(&tx, &OrgRef::new(org), Scope::JobsRead).await?;
    let shown = velu_core::jobs::show_job_in(&tx, who, entered.id(), id).await?;
    Ok(serde_json::to_value(shown).expect("json"))
}

/// What entering a transaction to page answers: the reference `list_jobs` is checked
/// against.
async fn list_in_a_transaction(
    env: &TestEnv,
    who: &Principal,
    org: &str,
    filter: &JobFilter,
    page: &PageRequest,
) -> CoreResult<serde_json::Value> {
    let tx = env.velu().db().read_tx().await?;
    let entered = who
        .enter_to_page(&tx, &OrgRef::new(org), Scope::JobsRead)
        .await?;
    let listed = list_jobs_in(&tx, entered.id(), filter, page).await?;
    Ok(serde_json::to_value(listed).expect("json"))
}

/// The `next_cursor` of alpha's first page of two with filter `f`, by the ordinary path.
async fn cursor_of(env: &TestEnv, f: &JobFilter) -> Option<String> {
    let first = PageRequest {
        limit: Some(2),
        cursor: None,
    };
    let page = list_in_a_transaction(env, &Principal::operator(), "alpha", f, &first)
        .await
        .ok()?;
    page["next_cursor"].as_str().map(str::to_owned)
}

/// The principals every test tries: everyone who could and could not read alpha or beta.
fn principals(alpha: &str, beta: &str) -> [(&'static str, Principal); 6] {
    [
        ("operator", Principal::operator()),
        ("platform reader", key(None, &["jobs:read"])),
        ("platform without jobs:read", key(None, &["jobs:submit"])),
        ("alpha viewer", key(Some(alpha), &["jobs:read"])),
        (
            "alpha without jobs:read",
            key(Some(alpha), &["jobs:submit"]),
        ),
        (
            "beta builder",
            key(Some(beta), &["jobs:read", "jobs:submit"]),
        ),
    ]
}

/// Rows of `SELECT count(*) ...` on the pool, outside any transaction.
async fn count(env: &TestEnv, sql: &str, values: Vec<Value>) -> i64 {
    let conn = env.velu().db().conn();
    conn.query_one_raw(Statement::from_sql_and_values(
        conn.get_database_backend(),
        sql,
        values,
    ))
    .await
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
    .expect("a row")
    .try_get_by_index(0)
    .expect("a count")
}

backend_tests! {
    async fn every_principal_and_name_gets_the_answer_of_a_transaction(env) {
        let alpha = bootstrap(&env, "alpha", "hero").await;
        let beta = bootstrap(&env, "beta", "hero").await;
        // A finished job with an ended attempt (history to read), a queued one, and one
        // of the other org.
        let done = submit(&env, "alpha", "echo", json!({ "n": 1 })).await;
        drain_queue(env.velu(), fast_worker("w1")).await;
        let queued = submit(&env, "alpha", "echo", json!({ "n": 2 })).await;
        let theirs = submit(&env, "beta", "echo", json!({ "n": 3 })).await;
        let principals = principals(&alpha.org_id, &beta.org_id);
        let long = "a".repeat(10_000);
        let orgs = ["alpha", alpha.org_id.as_str(), "beta", beta.org_id.as_str(), "gamma",
            "ALPHA", "alpha\0", "alphä", "", "' OR true --", long.as_str()];
        let missing = "01938f3e-0000-7000-8000-000000000000";
        let ids = [done.as_str(), queued.as_str(), theirs.as_str(), missing, "not-a-uuid", "\0"];
        let mut shown = 0;
        for (name, who) in &principals {
            for org in orgs {
                for id in ids {
                    let fast = show_job(env.velu(), who, &OrgRef::new(org), id)
                        .await
                        .map(|d| serde_json::to_value(d).expect("json"));
                    let reference = show_in_a_transaction(&env, who, org, id).await;
                    let label = format!("{name} shows {id:?} of {:.20?}", org);
                    match (&fast, &reference) {
                        (Ok(a), Ok(b)) => {
                            assert_eq!(a, b, "{label}");
                            shown += 1;
                        }
                        (Err(a), Err(b)) => {
                            assert_eq!(a.code(), b.code(), "{label}");
                            assert_eq!(a.to_string(), b.to_string(), "{label}");
                        }
                        _ => panic!("{label}: {fast:?} against {reference:?}"),
                    }
                }
            }
        }
        // What was shown: alpha's two jobs, by slug and by id, to the operator, the
        // platform reader and alpha's viewer (12); beta's job by its two names to the
        // operator, the platform reader and beta's builder (6).
        assert_eq!(shown, 18);
        let detail = show_job(env.velu(), &key(Some(&alpha.org_id), &["jobs:read"]), &OrgRef::new("alpha"), &done)
            .await
            .expect("alpha's viewer sees its job");
        assert_eq!(detail.history.len(), 1, "the ended attempt is read");
        assert_eq!(detail.history[0].worker_id, None, "org keys never see the worker");
        let detail = show_job(env.velu(), &Principal::operator(), &OrgRef::new("alpha"), &done)
            .await
            .expect("the operator sees it");
        assert_eq!(detail.history[0].worker_id.as_deref(), Some("w1"));
    }

    async fn every_page_gets_the_answer_of_a_transaction(env) {
        let alpha = bootstrap(&env, "alpha", "hero").await;
        let beta = bootstrap(&env, "beta", "hero").await;
        for i in 0..3 {
            submit(&env, "alpha", "echo", json!({ "i": i })).await;
        }
        drain_queue(env.velu(), fast_worker("w1")).await;
        for i in 3..5 {
            submit(&env, "alpha", "echo", json!({ "i": i })).await;
        }
        submit(&env, "beta", "echo", json!({ "beta": true })).await;
        let filter = |status: Option<&str>, task: Option<&str>| JobFilter {
            status: status.map(str::to_owned),
            task: task.map(str::to_owned),
        };
        let filters = [
            filter(None, None),
            filter(Some("queued"), None),
            filter(Some("succeeded"), Some("echo")),
            filter(Some("failed"), None),
            filter(Some("bogus"), None),
            filter(None, Some("echo")),
            filter(None, Some("nope")),
            filter(None, Some("ec\0ho")),
        ];
        // Cursors made by the ordinary path for alpha: per filter, and without filters.
        let unfiltered = cursor_of(&env, &filters[0]).await.expect("alpha has a second page");
        let orgs = ["alpha", alpha.org_id.as_str(), "beta", beta.org_id.as_str(), "gamma", "alpha\0"];
        let (mut pages, mut items) = (0, 0);
        for f in &filters {
            let own = cursor_of(&env, f).await;
            let mut requests = vec![
                PageRequest::default(),
                PageRequest { limit: Some(1), cursor: None },
                PageRequest { limit: Some(200), cursor: Some(String::new()) },
                PageRequest { limit: Some(0), cursor: None },
                PageRequest { limit: Some(201), cursor: None },
                PageRequest { limit: Some(2), cursor: Some("garbage".into()) },
                PageRequest { limit: Some(2), cursor: Some(unfiltered.clone()) },
            ];
            if let Some(c) = own {
                requests.push(PageRequest { limit: Some(2), cursor: Some(c) });
            }
            for (name, who) in &principals(&alpha.org_id, &beta.org_id) {
                for org in orgs {
                    for page in &requests {
                        let fast = list_jobs(env.velu(), who, &OrgRef::new(org), f, page)
                            .await
                            .map(|p| serde_json::to_value(p).expect("json"));
                        let reference = list_in_a_transaction(&env, who, org, f, page).await;
                        let label = format!("{name} lists {org:?} {f:?} {page:?}");
                        match (&fast, &reference) {
                            (Ok(a), Ok(b)) => {
                                assert_eq!(a, b, "{label}");
                                pages += 1;
                                items += a["items"].as_array().expect("items").len();
                            }
                            (Err(a), Err(b)) => {
                                assert_eq!(a.code(), b.code(), "{label}");
                                assert_eq!(a.to_string(), b.to_string(), "{label}");
                            }
                            _ => panic!("{label}: {fast:?} against {reference:?}"),
                        }
                    }
                }
            }
        }
        // Pages answered: the three who may read alpha and the three who may read beta,
        // each by two names; the counts pin that the comparison covered real pages.
        assert!(pages > 100, "{pages} pages compared");
        assert!(items > 200, "{items} items compared");
        // And the page itself: alpha's viewer lists alpha's five, newest first, in pages.
        let viewer = key(Some(&alpha.org_id), &["jobs:read"]);
        let first = list_jobs(env.velu(), &viewer, &OrgRef::new("alpha"), &filters[0], &PageRequest { limit: Some(3), cursor: None })
            .await
            .expect("a page");
        assert_eq!(first.items.len(), 3);
        assert!(first.items.iter().all(|j| j.org_id == alpha.org_id));
        let rest = list_jobs(env.velu(), &viewer, &OrgRef::new(alpha.org_id.as_str()), &filters[0], &PageRequest { limit: Some(3), cursor: first.next_cursor.clone() })
            .await
            .expect("the next page, the org named by id");
        assert_eq!(rest.items.len(), 2);
        assert_eq!(rest.next_cursor, None);
        assert!(first.items.last().map(|j| &j.id) > rest.items.first().map(|j| &j.id), "newest first across pages");
    }

    async fn the_one_statement_path_answers_what_it_finds_on_either_backend(env) {
        // The comparisons above hold whichever path answers; this pins that the one
        // statement does answer what it finds (and only that) on both backends.
        use velu_core::jobs::read_one;
        let alpha = bootstrap(&env, "alpha", "hero").await;
        let beta = bootstrap(&env, "beta", "hero").await;
        let done = submit(&env, "alpha", "echo", json!({})).await;
        drain_queue(env.velu(), fast_worker("w1")).await;
        let queued = submit(&env, "alpha", "echo", json!({})).await;
        let viewer = key(Some(&alpha.org_id), &["jobs:read"]);
        let outsider = key(Some(&beta.org_id), &["jobs:read"]);
        let all = JobFilter::default();
        let page = PageRequest::default();
        for who in [&Principal::operator(), &viewer] {
            for org in ["alpha", alpha.org_id.as_str()] {
                let org = OrgRef::new(org);
                let shown = read_one::show_job(env.velu(), who, &org, &done).await.expect("read");
                let shown = shown.expect("found in one statement");
                assert_eq!((shown.job.id.as_str(), shown.history.len()), (done.as_str(), 1));
                assert!(read_one::show_job(env.velu(), who, &org, &queued).await.expect("read").is_some());
                let listed = read_one::list_jobs(env.velu(), who, &org, &all, &page).await.expect("read");
                let ids: Vec<String> = listed.expect("a page in one statement").items.into_iter().map(|j| j.id).collect();
                assert_eq!(ids, [queued.clone(), done.clone()]);
                let succeeded = JobFilter { status: Some("succeeded".into()), task: None };
                let listed = read_one::list_jobs(env.velu(), who, &org, &succeeded, &page).await.expect("read");
                assert_eq!(listed.expect("a filtered page").items.len(), 1);
                // Filtered by both, a page's scan is bounded: the ordinary path reads it.
                let both = JobFilter { status: Some("succeeded".into()), task: Some("echo".into()) };
                let listed = read_one::list_jobs(env.velu(), who, &org, &both, &page).await.expect("read");
                assert!(listed.is_none(), "a page filtered by both goes the ordinary way");
            }
        }
        // Misses are left to the ordinary path: another org's key, another org's name, a
        // job of none, an org with no jobs.
        let missing = "01938f3e-0000-7000-8000-000000000000";
        for (who, org, id) in [(&outsider, "alpha", done.as_str()), (&viewer, "beta", done.as_str()),
                               (&Principal::operator(), "beta", done.as_str()), (&viewer, "alpha", missing)] {
            let org = OrgRef::new(org);
            assert!(read_one::show_job(env.velu(), who, &org, id).await.expect("read").is_none(), "{org:?} {id}");
        }
        for (who, org) in [(&outsider, "alpha"), (&Principal::operator(), "beta"), (&viewer, "beta")] {
            let listed = read_one::list_jobs(env.velu(), who, &OrgRef::new(org), &all, &page).await.expect("read");
            assert!(listed.is_none(), "{org}");
        }
    }

    async fn a_show_keeps_only_the_attempts_ended_when_its_row_was_read(env) {
        // Read outside one transaction, the attempts may be newer than the job's row: the
        // row says attempt 2 is running, while its row in job_attempts (and a third
        // attempt's) were written after. What the row says is the answer: attempt 1
        // ended, attempt 2 in progress, each once.
        let alpha = bootstrap(&env, "alpha", "hero").await;
        let id = submit(&env, "alpha", "echo", json!({})).await;
        start_attempt(&env, &id, Attempt { number: 2, owner: "w2", token: "t2" }).await;
        for (attempt, outcome) in [(1, "failed"), (2, "failed"), (3, "succeeded")] {
            exec(env.velu(), &format!(
                "INSERT INTO job_attempts (job_id, attempt, worker_id, lease_token, started_at,
                   finished_at, outcome)
                 SELECT id, {attempt}, 'w{attempt}', 't{attempt}', created_at, created_at,
                   '{outcome}' FROM jobs WHERE id = '{id}'")).await;
        }
        let viewer = key(Some(&alpha.org_id), &["jobs:read"]);
        for who in [Principal::operator(), viewer] {
            let fast = show_job(env.velu(), &who, &OrgRef::new("alpha"), &id).await.expect("shown");
            let seen: Vec<(i32, bool)> = fast.history.iter().map(|a| (a.attempt, a.outcome.is_some())).collect();
            assert_eq!(seen, [(1, true), (2, false)], "{fast:?}");
            let reference = show_in_a_transaction(&env, &who, "alpha", &id).await.expect("shown");
            assert_eq!(serde_json::to_value(&fast).expect("json"), reference);
        }
    }

    async fn a_page_is_read_in_one_snapshot(env) {
        if env.backend() == Backend::Sqlite {
            return; // SQLite's page is one statement, so one snapshot already
        }
        // `velu_list_jobs` counts the rows its byte budget keeps in one statement and reads
        // them in a second: only a `STABLE` function runs both on its caller's snapshot (a
        // volatile one takes a snapshot per statement, and a submit committed between the
        // two shifted a first page by a row). Migration m20261206_000028.
        let stable = "SELECT count(*) FROM pg_proc WHERE proname = 'velu_list_jobs' AND provolatile = 's'";
        assert_eq!(count(&env, stable, vec![]).await, 1, "velu_list_jobs is STABLE");
        let any = "SELECT count(*) FROM pg_proc WHERE proname = 'velu_list_jobs'";
        assert_eq!(count(&env, any, vec![]).await, 1, "one velu_list_jobs");
        // And it still binds the org it entered: a page through it is the org's page.
        let alpha = bootstrap(&env, "alpha", "hero").await;
        bootstrap(&env, "beta", "hero").await;
        for n in 0..3 {
            submit(&env, "alpha", "echo", json!({"n": n})).await;
        }
        submit(&env, "beta", "echo", json!({})).await;
        let list = "SELECT count(*) FROM velu_list_jobs('slug', $1, $2, NULL, NULL, NULL, 10, $3)";
        let budget = velu_core::pagination::MAX_PAGE_BYTES;
        assert_eq!(count(&env, list, vec!["alpha".into(), None::<String>.into(), budget.into()]).await, 3);
        assert_eq!(count(&env, list, vec!["alpha".into(), Some(alpha.org_id.clone()).into(), budget.into()]).await, 3);
    }

    async fn the_functions_bind_only_their_own_statement(env) {
        if env.backend() == Backend::Sqlite {
            return; // no functions and no policies on SQLite
        }
        let alpha = bootstrap(&env, "alpha", "hero").await;
        let beta = bootstrap(&env, "beta", "hero").await;
        let job = submit(&env, "alpha", "echo", json!({})).await;
        drain_queue(env.velu(), fast_worker("w1")).await;
        let show = "SELECT count(*) FROM velu_show_job($1, $2, $3, $4)";
        let attempts = "SELECT count(*) FROM velu_show_job_attempts($1, $2, $3, $4)";
        let args = |column: &str, org: &str, visible: Option<&str>| -> Vec<Value> {
            vec![column.into(), org.into(), visible.map(str::to_owned).into(), job.as_str().into()]
        };
        // Found by slug and by id, for every org or only alpha.
        for (column, org) in [("slug", "alpha"), ("id", alpha.org_id.as_str())] {
            for visible in [None, Some(alpha.org_id.as_str())] {
                assert_eq!(count(&env, show, args(column, org, visible)).await, 1, "{column} {visible:?}");
                assert_eq!(count(&env, attempts, args(column, org, visible)).await, 1, "{column} {visible:?}");
            }
        }
        // Never through another org: named as beta's, or seen only by beta's keys.
        for (column, org, visible) in [
            ("slug", "beta", None),
            ("id", beta.org_id.as_str(), None),
            ("slug", "alpha", Some(beta.org_id.as_str())),
            ("id", alpha.org_id.as_str(), Some(beta.org_id.as_str())),
            ("slug", "gamma", None),
            ("slug", alpha.org_id.as_str(), None),
            ("id", "alpha", None),
        ] {
            assert_eq!(count(&env, show, args(column, org, visible)).await, 0, "{column} {org} {visible:?}");
            assert_eq!(count(&env, attempts, args(column, org, visible)).await, 0, "{column} {org} {visible:?}");
        }
        // The list: alpha's job, by either name, filtered, before a cursor; never beta's.
        let list = "SELECT count(*) FROM velu_list_jobs($1, $2, $3, $4, $5, $6, $7, $8)";
        let page = |org: &str, visible: Option<&str>, status: Option<&str>, before: Option<&str>| -> Vec<Value> {
            vec!["slug".into(), org.into(), visible.map(str::to_owned).into(),
                status.map(str::to_owned).into(), None::<String>.into(),
                before.map(str::to_owned).into(), 10i64.into(),
                velu_core::pagination::MAX_PAGE_BYTES.into()]
        };
        assert_eq!(count(&env, list, page("alpha", None, None, None)).await, 1);
        assert_eq!(count(&env, list, page("alpha", Some(alpha.org_id.as_str()), Some("succeeded"), None)).await, 1);
        assert_eq!(count(&env, list, page("alpha", None, Some("queued"), None)).await, 0);
        assert_eq!(count(&env, list, page("alpha", None, None, Some(job.as_str()))).await, 0, "nothing before the only job");
        assert_eq!(count(&env, list, page("alpha", Some(beta.org_id.as_str()), None, None)).await, 0);
        assert_eq!(count(&env, list, page("beta", None, None, None)).await, 0, "beta has no jobs");
        // A column it does not know is an error, not a lookup.
        let conn = env.velu().db().conn();
        let err = conn
            .query_one_raw(Statement::from_sql_and_values(
                conn.get_database_backend(),
                show,
                args("name", "Org alpha", None),
            ))
            .await
            .expect_err("no such column");
        assert!(err.to_string().contains("no org column"), "{err}");
        // The binding ends with the statement: the pool's next statements, on whichever
        // connection, see no org's rows and no setting.
        for _ in 0..30 {
            assert_eq!(count(&env, show, args("slug", "alpha", None)).await, 1);
            assert_eq!(count(&env, "SELECT count(*) FROM jobs", vec![]).await, 0, "no leak to the next statement");
            assert_eq!(count(&env, list, page("alpha", None, None, None)).await, 1);
            assert_eq!(count(&env, "SELECT count(*) FROM jobs", vec![]).await, 0, "no leak after a list");
            assert_eq!(
                count(&env, "SELECT count(*) FROM (SELECT current_setting('velu.org_id', true) AS v) s WHERE COALESCE(v, '') <> ''", vec![]).await,
                0,
                "no org left bound"
            );
        }
    }
}
