//! A page of jobs filtered by both status and task reads at most `MAX_LIST_SCAN` jobs of
//! that status: the list reads the status's index and tests the task row by row, so a
//! rare task under a long history of one status (a viewer's
//! `?status=succeeded&task=<rare>` over a million finished jobs) cost the whole history
//! per request. Past the bound, a page answers what it found, perhaps nothing, with a
//! cursor after the last job it read.

use poem::http::Method;
use serde_json::Value;
use velu_core::Principal;
use velu_core::jobs::{JobFilter, MAX_LIST_SCAN, list_jobs};
use velu_core::pagination::PageRequest;
use velu_core::tenancy::OrgRef;
use velu_tests::{TestEnv, backend_tests};

use crate::plans::plant_jobs;
use crate::support::bootstrap;

/// Every page of org `acme`'s jobs with these filters, read by the operator through the
/// core: each page's ids.
async fn pages(
    env: &TestEnv,
    status: Option<&str>,
    task: Option<&str>,
    limit: u32,
) -> Vec<Vec<String>> {
    let filter = JobFilter {
        status: status.map(str::to_owned),
        task: task.map(str::to_owned),
    };
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = list_jobs(
            env.velu(),
            &Principal::operator(),
            &OrgRef::new("acme"),
            &filter,
            &PageRequest {
                limit: Some(limit),
                cursor: cursor.clone(),
            },
        )
        .await
        .expect("a page");
        out.push(page.items.iter().map(|j| j.id.clone()).collect());
        cursor = page.next_cursor;
        if cursor.is_none() || out.len() > 100 {
            return out;
        }
    }
}

/// The ids of a list answer's `items`.
fn ids(doc: &Value) -> Vec<String> {
    doc["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|j| j["id"].as_str().expect("id").to_owned())
        .collect()
}

backend_tests! {
    async fn a_page_filtered_by_status_and_task_stops_its_scan(env) {
        let boot = bootstrap(&env, "acme", "hero").await;
        // Two `sleep` jobs, the oldest, under 7,000 `echo` jobs of the same status.
        let history = u32::try_from(MAX_LIST_SCAN).unwrap() + 2_000;
        plant_jobs(&env, &boot.org_id, "succeeded", "sleep", 1, 2).await;
        plant_jobs(&env, &boot.org_id, "succeeded", "echo", 16, history).await;
        let rare = ["00000000-0000-7000-8000-000000000002", "00000000-0000-7000-8000-000000000001"];
        // The first page reads 5,000 `echo` jobs and finds nothing: empty, with a cursor;
        // the second reads the rest and finds both.
        let both = pages(&env, Some("succeeded"), Some("sleep"), 50).await;
        assert_eq!(both, vec![vec![], rare.map(str::to_owned).to_vec()]);
        // One filter reads its own index, where every entry matches: no empty pages.
        assert_eq!(pages(&env, None, Some("sleep"), 50).await, vec![rare.map(str::to_owned).to_vec()]);
        let by_status = pages(&env, Some("succeeded"), None, 200).await;
        assert_eq!(by_status.iter().map(Vec::len).sum::<usize>(), usize::try_from(history).unwrap() + 2);
        // A page cut by its limit inside the scan goes on after its last job, and every
        // job comes once, in order.
        let echo = pages(&env, Some("succeeded"), Some("echo"), 200).await;
        let all: Vec<String> = echo.concat();
        assert_eq!(all.len(), usize::try_from(history).unwrap());
        assert!(all.windows(2).all(|w| w[0] > w[1]), "newest first, each once");
        assert_eq!(echo[0].len(), 200);
        // Over HTTP (an org's viewer) and the CLI: the same empty first page, then the two.
        let path = "/v1/orgs/acme/jobs?status=succeeded&task=sleep&limit=50";
        let first = env.http(Method::GET, path, Some(&boot.viewer), None).await;
        assert_eq!(first.status, 200, "{}", first.text);
        assert!(ids(&first.body).is_empty());
        let cursor = first.body["next_cursor"].as_str().expect("a cursor after the scan").to_owned();
        let second = env
            .http(Method::GET, &format!("{path}&cursor={cursor}"), Some(&boot.viewer), None)
            .await;
        assert_eq!(ids(&second.body), rare.to_vec());
        assert!(second.body["next_cursor"].is_null());
        let doc = env
            .cli_ok(&["job", "list", "--org", "acme", "--status", "succeeded", "--task", "sleep"])
            .await;
        assert!(ids(&doc).is_empty());
        assert_eq!(doc["next_cursor"].as_str(), Some(cursor.as_str()));
    }
}
