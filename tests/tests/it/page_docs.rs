//! A SQLite job page reads each row as one JSON document (velu-core `jobs/page_doc.rs`);
//! these tests hold every job a page answers to what a show answers of it (the show
//! decodes the whole row, as the page did before), for jobs in every state with odd
//! documents (escapes, control characters, non-ASCII, huge numbers, deep nesting), and check that a row
//! whose stored values the documents would not read the same way (a time in another of
//! the forms sqlx reads, a flag stored as text) sends the page back to whole rows, with
//! the same answer. On PostgreSQL the page reads its rows by position (`jobs/pg_rows.rs`)
//! while the show reads its row through `jobs::Model`: the same checks hold the two to
//! each other.

use serde_json::{Value, json};
use velu_core::Principal;
use velu_core::jobs::{JobFilter, list_jobs, show_job};
use velu_core::pagination::PageRequest;
use velu_core::tenancy::OrgRef;
use velu_tests::{Backend, TestEnv, backend_tests};

use crate::support::{bootstrap, drain_queue, exec, fast_worker, submit};

/// Every job of org `slug`'s first page (of 200) as the list answers it, by id.
async fn listed(env: &TestEnv, slug: &str) -> Vec<Value> {
    let page = PageRequest {
        limit: Some(200),
        cursor: None,
    };
    let listed = list_jobs(
        env.velu(),
        &Principal::operator(),
        &OrgRef::new(slug),
        &JobFilter::default(),
        &page,
    )
    .await
    .expect("list");
    listed
        .items
        .iter()
        .map(|j| serde_json::to_value(j).expect("json"))
        .collect()
}

/// Job `id` as a show answers it, without its attempts.
async fn shown(env: &TestEnv, slug: &str, id: &str) -> Value {
    let detail = show_job(env.velu(), &Principal::operator(), &OrgRef::new(slug), id)
        .await
        .expect("show");
    serde_json::to_value(detail.job).expect("json")
}

/// Every listed job equals its show, and the list holds `n` jobs.
async fn list_matches_show(env: &TestEnv, slug: &str, n: usize, why: &str) -> Vec<Value> {
    let jobs = listed(env, slug).await;
    assert_eq!(jobs.len(), n, "{why}");
    for job in &jobs {
        let id = job["id"].as_str().expect("id");
        assert_eq!(job, &shown(env, slug, id).await, "{why}: job {id}");
    }
    jobs
}

/// Payloads a page must carry exactly.
fn odd_payloads() -> Vec<Value> {
    let mut deep = json!({"leaf": true});
    for _ in 0..40 {
        deep = json!({"d": deep});
    }
    vec![
        json!({}),
        json!({"quote": "\"", "backslash": "\\", "escaped nul": "a\\u0000b", "ctl": "\u{1}\u{1f}\n\t"}),
        json!({"text": "é ü 雪 🦀 \u{202e}rtl", "key \"x\"": ["\\u0000"]}),
        json!({"big": 12345678901234567890u64, "neg": -9223372036854775808i64, "f": 1.5e300, "tiny": 5e-324}),
        json!({"nested": [[], {}, [null, false, 0]], "deep": deep}),
        json!({"sql": "'); DROP TABLE jobs; --", "json": "{\"n\":1}"}),
    ]
}

backend_tests! {
    async fn a_page_answers_each_job_as_a_show_does(env) {
        bootstrap(&env, "acme", "superhero").await;
        let mut ids = Vec::new();
        for payload in odd_payloads() {
            ids.push(submit(&env, "acme", "echo", payload).await);
        }
        // Some run (results), some fail (errors), one is cancelled, one has a key and a
        // priority, and some stay queued.
        submit(&env, "acme", "fail", json!({"why": "é\u{7f}"})).await;
        drain_queue(env.velu(), fast_worker("w")).await;
        let later = env.cli_ok(&["job", "submit", "--org", "acme", "--task", "echo",
            "--payload", r#"{"later": true}"#, "--priority", "-7", "--max-attempts", "5",
            "--idempotency-key", "ключ-1", "--run-at", "2027-06-01T00:00:00Z"]).await;
        let later = later["id"].as_str().expect("id").to_owned();
        let cancelled = submit(&env, "acme", "echo", json!({"n": 2})).await;
        env.cli_ok(&["job", "cancel", &cancelled, "--org", "acme"]).await;
        let jobs = list_matches_show(&env, "acme", 9, "every state").await;
        let status = |id: &str| jobs.iter().find(|j| j["id"] == id).map(|j| j["status"].clone());
        assert_eq!(status(&ids[0]), Some(json!("succeeded")));
        assert_eq!(status(&cancelled), Some(json!("cancelled")));
        assert_eq!(status(&later), Some(json!("queued")));
        let payloads: Vec<&Value> = jobs.iter().map(|j| &j["payload"]).collect();
        for payload in odd_payloads() {
            assert!(payloads.contains(&&payload), "{payload} listed as sent");
        }
        assert!(jobs.iter().any(|j| j["error"]["code"] == "task_failed"), "a failed job's error");
        let later = jobs.iter().find(|j| j["id"] == later.as_str()).expect("listed");
        assert_eq!((later["priority"].clone(), later["idempotency_key"].clone(), later["max_attempts"].clone()),
            (json!(-7), json!("ключ-1"), json!(5)), "{later}");
        assert_eq!(later["run_at"], "2027-06-01T00:00:00.000000Z", "{later}");
    }

    async fn a_row_the_documents_would_read_otherwise_sends_the_page_back_to_rows(env) {
        bootstrap(&env, "acme", "hero").await;
        let plain = submit(&env, "acme", "echo", json!({"n": 1})).await;
        let odd = submit(&env, "acme", "echo", json!({"n": 2})).await;
        let before = list_matches_show(&env, "acme", 2, "as written").await;
        if env.backend() == Backend::Sqlite {
            // Forms sqlx reads as well as RFC 3339, written behind Velu's back: a space
            // for the `T`, no offset, a cancel flag of 2.
            exec(env.velu(), &format!(
                "UPDATE jobs SET created_at = '2026-12-07 02:55:52.070913', \
                 run_at = '2026-12-07T02:55:52', cancel_requested = 2 WHERE id = '{odd}'")).await;
            let after = list_matches_show(&env, "acme", 2, "with times in other forms").await;
            let job = after.iter().find(|j| j["id"] == odd.as_str()).expect("listed");
            assert_eq!(job["created_at"], "2026-12-07T02:55:52.070913Z", "{job}");
            assert_eq!(job["run_at"], "2026-12-07T02:55:52.000000Z", "{job}");
            assert_eq!(job["cancel_requested"], true, "{job}");
            let same = |v: &Vec<Value>| v.iter().find(|j| j["id"] == plain.as_str()).cloned();
            assert_eq!(same(&after), same(&before), "the other job reads as before");
        }
    }

    async fn only_the_pages_own_rows_are_read_into_jobs(env) {
        // The row after a page (fetched to learn that more follow) is not read into a
        // job: a value no path reads fails the page that holds it, not the one before.
        bootstrap(&env, "acme", "hero").await;
        let oldest = submit(&env, "acme", "echo", json!({"n": 0})).await;
        for n in 1..3 {
            submit(&env, "acme", "echo", json!({"n": n})).await;
        }
        exec(env.velu(), &format!(
            "UPDATE jobs SET error = '{{\"not\": \"a job error\"}}' WHERE id = '{oldest}'")).await;
        let who = Principal::operator();
        let first = PageRequest { limit: Some(2), cursor: None };
        let page = list_jobs(env.velu(), &who, &OrgRef::new("acme"), &JobFilter::default(), &first)
            .await.expect("the first page holds the two newest");
        assert_eq!(page.items.len(), 2);
        let next = PageRequest { limit: Some(2), cursor: page.next_cursor.clone() };
        assert!(next.cursor.is_some(), "more follow");
        let e = list_jobs(env.velu(), &who, &OrgRef::new("acme"), &JobFilter::default(), &next)
            .await.expect_err("the page holding the row fails");
        assert_eq!(e.code(), "internal", "{e:?}");
    }
}
