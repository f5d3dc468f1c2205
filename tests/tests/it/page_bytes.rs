//! A page of jobs or schedules stops at `MAX_PAGE_BYTES` of stored documents, not only at
//! its limit: on superhero (payloads up to 1 MiB) a page of 200 jobs would read, parse
//! and send hundreds of megabytes for one request. These tests fill pages with large,
//! highly compressible documents (a compressed size would let every row through), on
//! every path a page is read by: the one statement (org by id), the ordinary path (org by
//! slug with a cursor), the transaction's own read, the CLI and HTTP.

use poem::http::Method;
use serde_json::{Value, json};
use velu_core::jobs::{JobFilter, list_jobs, list_jobs_in};
use velu_core::pagination::{MAX_PAGE_BYTES, PageRequest};
use velu_core::scopes::Scope;
use velu_core::tenancy::OrgRef;
use velu_core::{CoreResult, Principal};
use velu_tests::backend_tests;

use crate::support::{bootstrap, drain_queue, fast_worker, submit};

/// A payload of about `bytes` bytes that compresses to almost nothing.
fn blob(bytes: usize) -> Value {
    json!({ "blob": "a".repeat(bytes) })
}

/// Every page of org `org`'s jobs through `list`, as (ids, whether a cursor followed).
async fn pages<F, Fut>(limit: u32, mut list: F) -> Vec<(Vec<String>, bool)>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = CoreResult<Value>>,
{
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = list(PageRequest {
            limit: Some(limit),
            cursor: cursor.clone(),
        })
        .await
        .expect("a page");
        let ids = page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|j| j["id"].as_str().expect("id").to_owned())
            .collect();
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        out.push((ids, cursor.is_some()));
        if cursor.is_none() || out.len() > 20 {
            return out;
        }
    }
}

/// The page sizes of `pages`.
fn sizes(pages: &[(Vec<String>, bool)]) -> Vec<usize> {
    pages.iter().map(|(ids, _)| ids.len()).collect()
}

/// Every id of `pages`, in order.
fn ids(pages: &[(Vec<String>, bool)]) -> Vec<String> {
    pages.iter().flat_map(|(ids, _)| ids.clone()).collect()
}

backend_tests! {
    async fn a_job_page_stops_at_its_byte_budget(env) {
        let boot = bootstrap(&env, "acme", "superhero").await;
        // Two small jobs, then six of 700 kB: 3 of them reach the 2 MiB budget.
        let mut submitted = Vec::new();
        for _ in 0..2 {
            submitted.push(submit(&env, "acme", "echo", json!({"n": 1})).await);
        }
        for _ in 0..6 {
            submitted.push(submit(&env, "acme", "echo", blob(700_000)).await);
        }
        submitted.reverse(); // newest first, as lists are
        let velu = env.velu();
        let operator = Principal::operator();
        let who = &operator;
        let all = JobFilter::default();
        let by_id = OrgRef::new(&boot.org_id);
        let by_slug = OrgRef::new("acme");
        // One statement (by id), the ordinary path (by slug: a cursor sends it there), and
        // the read in a transaction already entered: the same pages.
        let one = pages(200, |p| { let (o, f) = (by_id.clone(), all.clone());
            async move { list_jobs(velu, who, &o, &f, &p).await.map(|x| serde_json::to_value(x).unwrap()) } }).await;
        let ordinary = pages(200, |p| { let (o, f) = (by_slug.clone(), all.clone());
            async move { list_jobs(velu, who, &o, &f, &p).await.map(|x| serde_json::to_value(x).unwrap()) } }).await;
        let entered = pages(200, |p| { let f = all.clone(); let org = boot.org_id.clone();
            async move {
                let tx = velu.db().read_tx().await?;
                let e = Principal::operator().enter_to_page(&tx, &OrgRef::new(&org), Scope::JobsRead).await?;
                list_jobs_in(&tx, e.id(), &f, &p).await.map(|x| serde_json::to_value(x).unwrap())
            } }).await;
        for (path, got) in [("one statement", &one), ("ordinary", &ordinary), ("entered", &entered)] {
            assert_eq!(sizes(got), vec![3, 3, 2], "{path}: pages cut at the bytes");
            assert_eq!(ids(got), submitted, "{path}: every job once, in order");
            assert_eq!(got.iter().map(|(_, more)| *more).collect::<Vec<_>>(), vec![true, true, false], "{path}");
        }
        // A limit below the budget's cut still cuts by count; small rows are not cut.
        let small = pages(1, |p| { let (o, f) = (by_id.clone(), all.clone());
            async move { list_jobs(velu, who, &o, &f, &p).await.map(|x| serde_json::to_value(x).unwrap()) } }).await;
        assert_eq!(sizes(&small), vec![1; 8]);
        // Over HTTP and the CLI: the same first page, and the body stays near the budget.
        let r = env.http(Method::GET, "/v1/orgs/acme/jobs?limit=200", Some(&boot.viewer), None).await;
        assert_eq!(r.status, 200, "{}", &r.text[..200.min(r.text.len())]);
        assert_eq!(r.body["items"].as_array().unwrap().len(), 3);
        assert!(r.body["next_cursor"].is_string());
        let budget = usize::try_from(MAX_PAGE_BYTES).unwrap();
        assert!(r.text.len() < budget + 1_000_000, "a page of {} bytes", r.text.len());
        let doc = env.cli_ok(&["job", "list", "--org", "acme", "--limit", "200"]).await;
        assert_eq!(doc["items"].as_array().unwrap().len(), 3);
        // Results count too: echo returns its payload, so each finished big job holds
        // 1.4 MB, and a page holds two of them.
        drain_queue(velu, fast_worker("w-bytes")).await;
        let done = pages(200, |p| { let (o, f) = (by_id.clone(), all.clone());
            async move { list_jobs(velu, who, &o, &f, &p).await.map(|x| serde_json::to_value(x).unwrap()) } }).await;
        assert_eq!(sizes(&done), vec![2, 2, 2, 2], "with results");
        assert_eq!(ids(&done), submitted);
        // Filtered pages are cut alike.
        let succeeded = JobFilter { status: Some("succeeded".into()), task: Some("echo".into()) };
        let filtered = pages(200, |p| { let (o, f) = (by_id.clone(), succeeded.clone());
            async move { list_jobs(velu, who, &o, &f, &p).await.map(|x| serde_json::to_value(x).unwrap()) } }).await;
        assert_eq!(sizes(&filtered), vec![2, 2, 2, 2]);
    }

    async fn a_schedule_page_stops_at_its_byte_budget(env) {
        let boot = bootstrap(&env, "acme", "superhero").await;
        let payload = blob(900_000).to_string();
        let mut made = Vec::new();
        for _ in 0..5 {
            let doc = env.cli_ok(&["schedule", "create", "--org", "acme", "--task", "echo",
                "--cron", "0 * * * *", "--payload", &payload]).await;
            made.push(doc["id"].as_str().expect("id").to_owned());
        }
        made.sort(); // oldest first: schedule ids sort by creation
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        let mut path = "/v1/orgs/acme/schedules?limit=200".to_owned();
        loop {
            let r = env.http(Method::GET, &path, Some(&boot.viewer), None).await;
            assert_eq!(r.status, 200);
            let items = r.body["items"].as_array().unwrap();
            sizes.push(items.len());
            seen.extend(items.iter().map(|s| s["id"].as_str().unwrap().to_owned()));
            match r.body["next_cursor"].as_str() {
                Some(c) => path = format!("/v1/orgs/acme/schedules?limit=200&cursor={c}"),
                None => break,
            }
            assert!(sizes.len() < 10);
        }
        assert_eq!(sizes, vec![3, 2], "900 kB payloads: three reach 2 MiB");
        assert_eq!(seen, made);
    }
}
