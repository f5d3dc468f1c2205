//! The claim over several orgs at once (`queue::claim_for_orgs`, one round trip on
//! PostgreSQL) and the wake-up of idle workers on SQLite (`db/sqlite_watch.rs`): each
//! org's cap, pause and share hold as in a claim of one org; concurrent claims over the
//! same orgs in opposite orders neither deadlock nor take a job twice.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;
use velu_core::plans::Plan;
use velu_core::queue::{self, OrgClaim, ReadyOrg};
use velu_core::{OpenOptions, Principal};
use velu_tests::{TestEnv, backend_tests};

use crate::job_state::count_jobs;
use crate::support::{bootstrap, eventually, scalar};

/// Submits `n` echo jobs to `org` in one batch.
async fn fill(env: &TestEnv, org: &str, n: usize) {
    let batch: Vec<_> = (0..n)
        .map(|i| json!({"task": "echo", "payload": {"i": i}}))
        .collect();
    let file = env.home().join(format!("{org}.json"));
    std::fs::write(&file, serde_json::to_string(&batch).unwrap()).unwrap();
    env.cli_ok(&[
        "job",
        "submit-batch",
        "--org",
        org,
        "--file",
        file.to_str().unwrap(),
    ])
    .await;
}

fn echo() -> Vec<String> {
    vec!["echo".to_owned()]
}

backend_tests! {
    async fn the_orgs_wake_ups_name_are_read_with_their_current_plans(env) {
        let a = bootstrap(&env, "alpha", "hero").await;
        let b = bootstrap(&env, "beta", "superhero").await;
        let db = env.velu().db();
        assert!(queue::plans_of(db, &[]).await.unwrap().is_empty());
        // Missing orgs, an id twice and 254 unknown ones: the orgs that exist, once each.
        let unknown: Vec<String> = (0..254).map(|_| velu_core::ids::new_id()).collect();
        let mut ids: Vec<&str> = vec![&a.org_id, &b.org_id, &a.org_id];
        ids.extend(unknown.iter().map(String::as_str));
        let mut found = queue::plans_of(db, &ids).await.unwrap();
        found.sort_by(|x, y| x.id.cmp(&y.id));
        let mut want = vec![
            ReadyOrg { id: a.org_id.clone(), plan: Plan::Hero },
            ReadyOrg { id: b.org_id.clone(), plan: Plan::Superhero },
        ];
        want.sort_by(|x, y| x.id.cmp(&y.id));
        assert_eq!(found, want);
        // The plan as it is now, not as it was.
        env.cli_ok(&["org", "set-plan", "beta", "hero"]).await;
        let found = queue::plans_of(db, &[b.org_id.as_str()]).await.unwrap();
        assert_eq!(found, [ReadyOrg { id: b.org_id.clone(), plan: Plan::Hero }]);
    }

    async fn one_claim_over_many_orgs_keeps_each_orgs_rules(env) {
        let a = bootstrap(&env, "alpha", "hero").await; // cap 10
        let b = bootstrap(&env, "beta", "hero").await;
        let c = bootstrap(&env, "gamma", "superhero").await; // cap 100
        let d = bootstrap(&env, "delta", "hero").await;
        for org in ["alpha", "beta", "gamma", "delta"] {
            fill(&env, org, 30).await;
        }
        env.cli_ok(&["queue", "pause", "--org", "delta"]).await;
        let ready = |id: &str, plan| ReadyOrg { id: id.to_owned(), plan };
        let (ra, rb, rc, rd) = (
            ready(&a.org_id, Plan::Hero),
            ready(&b.org_id, Plan::Hero),
            ready(&c.org_id, Plan::Superhero),
            ready(&d.org_id, Plan::Hero),
        );
        let parts = vec![
            // More than alpha's cap: the cap wins.
            OrgClaim { org: &ra, want: 25, kinds: echo() },
            OrgClaim { org: &rb, want: 3, kinds: echo() },
            // A kind gamma has none of: nothing.
            OrgClaim { org: &rc, want: 5, kinds: vec!["sleep".into()] },
            // Paused: nothing.
            OrgClaim { org: &rd, want: 5, kinds: echo() },
        ];
        let now = velu_core::time::now();
        let claimed = queue::claim_for_orgs(env.velu().db(), "w1", &parts, Duration::from_secs(30), now)
            .await
            .unwrap();
        let count = |org: &str| claimed.iter().filter(|j| j.org_id == org).count();
        assert_eq!(
            (count(&a.org_id), count(&b.org_id), count(&c.org_id), count(&d.org_id)),
            (10, 3, 0, 0),
            "alpha at its cap, beta its share, gamma no such kind, delta paused"
        );
        // Each claimed job is running under its own lease, on its first attempt (started
        // now, on its row: the attempt's `job_attempts` row is appended when it ends), with
        // one `claimed` event.
        let ids: HashSet<&str> = claimed.iter().map(|j| j.id.as_str()).collect();
        assert_eq!(ids.len(), 13);
        let list = claimed.iter().map(|j| format!("'{}'", j.id)).collect::<Vec<_>>().join(",");
        let running = count_jobs(&env, &format!("j.status = 'running' AND j.lease_owner = 'w1' AND j.attempts = 1 AND j.lease_started_at IS NOT NULL AND j.id IN ({list})")).await;
        let attempts: i64 = scalar(env.velu(), &format!("SELECT COUNT(*) FROM job_attempts WHERE job_id IN ({list})")).await;
        let events: i64 = scalar(env.velu(), &format!("SELECT COUNT(*) FROM job_events WHERE kind = 'claimed' AND job_id IN ({list})")).await;
        assert_eq!((running, attempts, events), (13, 0, 13));
        // Alpha is full: a second claim gets none of it, but the rest of beta's.
        let again = queue::claim_for_orgs(env.velu().db(), "w2", &parts[..2], Duration::from_secs(30), now)
            .await
            .unwrap();
        assert_eq!(again.iter().filter(|j| j.org_id == a.org_id).count(), 0, "alpha is at its cap");
        assert_eq!(again.iter().filter(|j| j.org_id == b.org_id).count(), 3);
    }

    async fn concurrent_claims_in_opposite_orders_take_each_job_once(env) {
        let mut orgs = Vec::new();
        for slug in ["o1", "o2", "o3", "o4", "o5", "o6"] {
            let boot = bootstrap(&env, slug, "superhero").await;
            fill(&env, slug, 40).await;
            orgs.push(ReadyOrg { id: boot.org_id, plan: Plan::Superhero });
        }
        let mut reversed = orgs.clone();
        reversed.reverse();
        let db = env.velu().db().clone();
        let mut tasks = Vec::new();
        for w in 0..8 {
            let db = db.clone();
            let order = if w % 2 == 0 { orgs.clone() } else { reversed.clone() };
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let parts: Vec<OrgClaim<'_>> = order
                        .iter()
                        .map(|org| OrgClaim { org, want: 3, kinds: vec!["echo".to_owned()] })
                        .collect();
                    let got = queue::claim_for_orgs(&db, &format!("w{w}"), &parts, Duration::from_secs(60), velu_core::time::now())
                        .await
                        .expect("no claim fails (no deadlock)");
                    if got.is_empty() {
                        return mine;
                    }
                    mine.extend(got.into_iter().map(|j| j.id));
                }
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let distinct: HashSet<&String> = all.iter().collect();
        assert_eq!(all.len(), 240, "every job claimed");
        assert_eq!(distinct.len(), 240, "none twice");
        let attempts = count_jobs(&env, "j.attempts = 1 AND j.lease_started_at IS NOT NULL").await;
        assert_eq!(attempts, 240, "one attempt per job");
    }

    async fn platform_claims_beside_each_other_share_a_list_and_take_each_job_once(env) {
        // The worker protocol's platform claims share the server's list of ready orgs
        // (`worker/shared_scan.rs`), locked only between the database's answers. Eight
        // remote workers at once, with the same kinds in two orders (one list) and every
        // kind (another), each asking for 7: every job claimed, none twice, and each
        // claim within the org's plan.
        let mut orgs = HashSet::new();
        for slug in ["p1", "p2", "p3", "p4", "p5", "p6"] {
            orgs.insert(bootstrap(&env, slug, "superhero").await.org_id);
            fill(&env, slug, 40).await;
        }
        let work = crate::support::platform_key(&env, "fleet", "jobs:work").await;
        let claimers = (0..8).map(|w| {
            let (env, work, orgs) = (env.clone(), work.clone(), orgs.clone());
            async move {
                let kinds = match w % 3 {
                    0 => json!(["echo", "sleep"]),
                    1 => json!(["sleep", "echo", "echo"]),
                    _ => serde_json::Value::Null,
                };
                let mut mine = Vec::new();
                loop {
                    let body = json!({"worker_id": format!("r-{w}"), "max": 7, "kinds": kinds});
                    let r = env.http(poem::http::Method::POST, "/v1/worker/claim", Some(&work), Some(body)).await;
                    assert_eq!(r.status, 200, "{}", r.text);
                    let jobs = r.body["jobs"].as_array().expect("jobs").clone();
                    assert!(jobs.len() <= 7, "at most what was asked");
                    if jobs.is_empty() {
                        return mine;
                    }
                    for j in jobs {
                        assert!(orgs.contains(j["org_id"].as_str().unwrap()));
                        mine.push(j["id"].as_str().unwrap().to_owned());
                    }
                }
            }
        });
        let all: Vec<String> = crate::support::join_all(claimers).await.into_iter().flatten().collect();
        let distinct: HashSet<&String> = all.iter().collect();
        assert_eq!(all.len(), 240, "every job claimed");
        assert_eq!(distinct.len(), 240, "none twice");
        let running = count_jobs(&env, "j.status = 'running' AND j.attempts = 1").await;
        assert_eq!(running, 240, "one attempt per job");
    }

    async fn concurrent_claims_never_pass_an_orgs_cap(env) {
        // Eight claims at once over the same three orgs (cap 10 each, 40 ready), each
        // asking far past the cap and starting at another org: the cap holds for each
        // org whatever the order the claims take their locks in.
        let mut orgs = Vec::new();
        for slug in ["c1", "c2", "c3"] {
            let boot = bootstrap(&env, slug, "hero").await;
            fill(&env, slug, 40).await;
            orgs.push(ReadyOrg { id: boot.org_id, plan: Plan::Hero });
        }
        let db = env.velu().db().clone();
        let mut tasks = Vec::new();
        for w in 0..8 {
            let db = db.clone();
            let mut order = orgs.clone();
            order.rotate_left(w % 3);
            tasks.push(tokio::spawn(async move {
                let parts: Vec<OrgClaim<'_>> = order
                    .iter()
                    .map(|org| OrgClaim { org, want: 25, kinds: vec!["echo".to_owned()] })
                    .collect();
                queue::claim_for_orgs(&db, &format!("w{w}"), &parts, Duration::from_secs(60), velu_core::time::now())
                    .await
                    .expect("no claim fails")
                    .len()
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        assert_eq!(total, 30, "each org's cap of 10, however many claim at once");
        for org in &orgs {
            let running = count_jobs(&env, &format!("j.org_id = '{}' AND j.status = 'running'", org.id)).await;
            assert_eq!(running, 10, "org {} past its cap", org.id);
        }
    }

    async fn an_idle_node_hears_of_jobs_another_node_submits(env) {
        // Two nodes of one database, each with its own pools (two processes, in effect):
        // a submit on one must wake the other's idle workers, on SQLite too.
        let opts = || OpenOptions { background: true, ..OpenOptions::default() };
        let listener = env.another_node(opts()).await;
        let submitter = env.another_node(OpenOptions::default()).await;
        bootstrap(&env, "acme", "hero").await;
        let mut ready = listener.jobs_ready();
        // Let what the nodes did so far be heard (the listener's start, the bootstrap):
        // until the signal stays quiet for a while.
        loop {
            ready.borrow_and_update();
            tokio::time::sleep(Duration::from_millis(300)).await;
            if !ready.has_changed().unwrap() {
                break;
            }
        }
        let input: velu_core::jobs::SubmitJob =
            serde_json::from_value(json!({"task": "echo", "payload": {}})).unwrap();
        velu_core::jobs::submit_job(&submitter, &Principal::operator(), &velu_core::orgs::OrgRef::new("acme"), &input)
            .await
            .unwrap();
        eventually(10, || {
            let changed = ready.has_changed().unwrap();
            async move { changed.then_some(()) }
        })
        .await;
        listener.shutdown().await;
    }

    async fn the_scan_lists_an_org_by_a_job_it_may_run_however_deep(env) {
        // The scan's "has a job this worker may run" stops at the first such job
        // (queue/ready.rs): it must still find one behind many it may not run, and list
        // no org whose ready jobs are all of kinds not asked for or paused.
        let alpha = bootstrap(&env, "alpha", "hero").await;
        bootstrap(&env, "beta", "hero").await;
        for org in ["alpha", "beta"] {
            let batch: Vec<_> = (0..60).map(|_| json!({"task": "sleep", "payload": {"seconds": 0}})).collect();
            let file = env.home().join(format!("{org}-sleep.json"));
            std::fs::write(&file, serde_json::to_string(&batch).unwrap()).unwrap();
            env.cli_ok(&["job", "submit-batch", "--org", org, "--file", file.to_str().unwrap()]).await;
        }
        // Alpha's one echo job comes after its 60 sleeps in the claim order.
        env.cli_ok(&["job", "submit", "--org", "alpha", "--task", "echo", "--payload", "{}"]).await;
        let velu = env.velu();
        let scan = |kinds: Vec<String>| {
            let kinds = [(Plan::Hero, kinds)].into_iter().collect();
            async move { queue::ready_orgs(velu.db(), velu_core::time::now(), 10, &kinds, None).await.unwrap() }
        };
        let listed: Vec<String> = scan(echo()).await.into_iter().map(|o| o.id).collect();
        assert_eq!(listed, vec![alpha.org_id.clone()], "alpha by its echo job; beta has none");
        assert_eq!(scan(vec!["sleep".into()]).await.len(), 2, "both have sleeps");
        assert!(scan(vec!["fail".into()]).await.is_empty(), "nobody has a fail job");
        env.cli_ok(&["task", "pause", "echo"]).await;
        assert!(scan(echo()).await.is_empty(), "a paused kind takes no place");
    }

    async fn the_scan_wraps_around_after_its_cursor_in_id_order(env) {
        // One statement scans the orgs after the cursor, then from the first org up to
        // the cursor: in that order, within the limit (queue/ready.rs).
        let mut ids = Vec::new();
        for org in ["alpha", "beta", "gamma"] {
            ids.push(bootstrap(&env, org, "hero").await.org_id);
            fill(&env, org, 2).await;
        }
        let alpha_id = ids[0].clone();
        ids.sort();
        let velu = env.velu();
        let kinds = [(Plan::Hero, echo())].into_iter().collect();
        let scan = |limit: u64, after: Option<String>| {
            let kinds = &kinds;
            async move {
                let found = queue::ready_orgs(velu.db(), velu_core::time::now(), limit, kinds, after.as_deref())
                    .await
                    .unwrap();
                found.into_iter().map(|o| o.id).collect::<Vec<_>>()
            }
        };
        assert_eq!(scan(10, None).await, ids, "no cursor: every org in id order");
        let (first, middle, last) = (ids[0].clone(), ids[1].clone(), ids[2].clone());
        assert_eq!(scan(10, Some(middle.clone())).await, vec![last.clone(), first.clone(), middle.clone()]);
        assert_eq!(scan(2, Some(middle.clone())).await, vec![last.clone(), first.clone()], "the limit cuts the wrap");
        assert_eq!(scan(1, Some(middle)).await, vec![last.clone()]);
        assert_eq!(scan(10, Some(last.clone())).await, ids, "after the last: from the start");
        // An org at its cap takes no place in either pass.
        let hero_cap = Plan::Hero.limits().concurrent_jobs;
        fill(&env, "alpha", hero_cap as usize).await;
        let alpha = ReadyOrg { id: alpha_id, plan: Plan::Hero };
        let claimed = queue::claim_for_org(velu.db(), "w", &alpha, hero_cap, &echo(), Duration::from_secs(30), velu_core::time::now()).await.unwrap();
        assert_eq!(claimed.len(), hero_cap as usize);
        let left = scan(10, Some(ids[1].clone())).await;
        assert!(!left.contains(&alpha.id) && left.len() == 2, "{left:?}");
    }
}
