//! A claim stops at `MAX_CLAIM_BYTES` of stored payload, not only at its `max`: on
//! superhero (payloads up to 1 MiB) one claim of 256 jobs by an org's own worker key would
//! read, parse and send a quarter of a gigabyte. The payloads here are one repeated
//! letter, so a compressed size would let every job through. The bound is the claim's,
//! over all the orgs it serves, not each org's.

use std::collections::HashSet;
use std::time::Duration;

use poem::http::Method;
use serde_json::{Value, json};
use velu_core::plans::Plan;
use velu_core::queue::{self, MAX_CLAIM_BYTES, OrgClaim, ReadyOrg};
use velu_tests::{TestEnv, backend_tests};

use crate::support::{bootstrap, platform_key, submit};

/// Bytes of each large payload: four fit in the budget, the fifth reaches it.
const BIG: usize = 900_000;

/// A payload of about `bytes` bytes that compresses to almost nothing.
fn blob(bytes: usize) -> Value {
    json!({ "blob": "a".repeat(bytes) })
}

/// A claim over HTTP with `key`: the claimed jobs' ids and the answer's size in bytes.
async fn claim(env: &TestEnv, key: &str, max: u32) -> (Vec<String>, usize) {
    let r = env
        .http(
            Method::POST,
            "/v1/worker/claim",
            Some(key),
            Some(json!({"worker_id": "w-bytes", "max": max})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", &r.text[..300.min(r.text.len())]);
    let ids = r.body["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["id"].as_str().expect("id").to_owned())
        .collect();
    (ids, r.text.len())
}

/// The status of job `id` of org `org`, as the operator reads it.
async fn status(env: &TestEnv, org: &str, id: &str) -> String {
    let doc = env.cli_ok(&["job", "show", "--org", org, id]).await;
    doc["status"].as_str().expect("status").to_owned()
}

/// The answer of a claim stays within the budget plus one payload (and the JSON around it).
fn within_budget(bytes: usize) -> bool {
    bytes < usize::try_from(MAX_CLAIM_BYTES).unwrap() + BIG + 100_000
}

backend_tests! {
    async fn a_claim_stops_at_its_byte_budget(env) {
        bootstrap(&env, "acme", "superhero").await;
        // Six large jobs, then two small ones, claimed in that order.
        let mut submitted = Vec::new();
        for _ in 0..6 {
            submitted.push(submit(&env, "acme", "echo", blob(BIG)).await);
        }
        for n in 0..2 {
            submitted.push(submit(&env, "acme", "echo", json!({"n": n})).await);
        }
        let key = env
            .cli_ok(&["key", "create", "--org", "acme", "--name", "w", "--scopes", "jobs:work"])
            .await["token"]
            .as_str()
            .unwrap()
            .to_owned();
        // Asking for every job the org may run: five large ones (the fifth reaches 4 MiB).
        let (first, bytes) = claim(&env, &key, 256).await;
        assert_eq!(first, submitted[..5], "the claim stops after the job that reaches the budget");
        assert!(within_budget(bytes), "a claim of {bytes} bytes");
        for id in &submitted[..5] {
            assert_eq!(status(&env, "acme", id).await, "running");
        }
        for id in &submitted[5..] {
            assert_eq!(status(&env, "acme", id).await, "queued", "left for the next claim, untouched");
        }
        // The rest come with the next claim; a small one is never held back by the budget.
        let (second, _) = claim(&env, &key, 256).await;
        assert_eq!(second, submitted[5..]);
        let (third, _) = claim(&env, &key, 256).await;
        assert!(third.is_empty());
    }

    async fn the_budget_spans_every_org_of_a_claim(env) {
        let alpha = bootstrap(&env, "alpha", "superhero").await;
        let beta = bootstrap(&env, "beta", "superhero").await;
        let mut submitted = HashSet::new();
        for org in ["alpha", "beta"] {
            for _ in 0..4 {
                submitted.insert(submit(&env, org, "echo", blob(BIG)).await);
            }
        }
        // A platform claim over both orgs: four jobs each asked, five fit in all.
        let key = platform_key(&env, "fleet", "jobs:work").await;
        let (first, bytes) = claim(&env, &key, 8).await;
        assert_eq!(first.len(), 5, "the budget is the claim's, not each org's");
        assert!(within_budget(bytes), "a claim of {bytes} bytes");
        let (second, _) = claim(&env, &key, 8).await;
        let (third, _) = claim(&env, &key, 8).await;
        let all: HashSet<String> = first.iter().chain(&second).chain(&third).cloned().collect();
        assert_eq!(all.len(), first.len() + second.len() + third.len(), "no job twice");
        assert_eq!(all, submitted, "every job claimed in the end");
        // The claim over several orgs in the core (the local worker's) holds the same bound.
        let gamma = bootstrap(&env, "gamma", "superhero").await;
        let delta = bootstrap(&env, "delta", "superhero").await;
        for org in ["gamma", "delta"] {
            for _ in 0..4 {
                submit(&env, org, "echo", blob(BIG)).await;
            }
        }
        let (g, d) = (
            ReadyOrg { id: gamma.org_id.clone(), plan: Plan::Superhero },
            ReadyOrg { id: delta.org_id.clone(), plan: Plan::Superhero },
        );
        let echo = vec!["echo".to_owned()];
        let parts = [
            OrgClaim { org: &g, want: 4, kinds: echo.clone() },
            OrgClaim { org: &d, want: 4, kinds: echo.clone() },
        ];
        let now = velu_core::time::now();
        let claimed = queue::claim_for_orgs(env.velu().db(), "w1", &parts, Duration::from_secs(30), now)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 5, "four of one org and one of the other");
        let of = |org: &str| claimed.iter().filter(|j| j.org_id == org).count();
        let mut split = [of(&gamma.org_id), of(&delta.org_id)];
        split.sort_unstable();
        assert_eq!(split, [1, 4]);
        // Untouched orgs are untouched.
        assert!(claimed.iter().all(|j| j.org_id != alpha.org_id && j.org_id != beta.org_id));
    }
}
