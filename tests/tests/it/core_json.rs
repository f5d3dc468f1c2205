//! The hot answers (submit, job list, show, cancel, retry, whoami) are velu-core's
//! documents serialized with serde (`velu_http::core_json::CoreJson`), served under their
//! mirror's schema. These tests make the two ways meet on every shape those documents
//! take: jobs queued, succeeded with a result, failed with errors over attempts,
//! cancelled, delayed, held by a pause (`queue_paused: true`), found again by their
//! idempotency key; attempts seen by an org key (no worker) and by the operator; pages
//! with and without a next cursor; text with quotes, escapes and characters beyond
//! ASCII; whoami of the operator, an org key and a platform key. For each, the core
//! document's serde JSON must equal what its mirror's `ToJSON` writes, and what HTTP
//! answers must be that JSON.

use poem::http::Method;
use poem_openapi::types::ToJSON;
use serde::Serialize;
use serde_json::{Value, json};
use velu_core::jobs::{self, JobFilter};
use velu_core::pagination::PageRequest;
use velu_core::tenancy::OrgRef;
use velu_core::{Principal, keys};
use velu_http::model::jobs as wire;
use velu_http::model::keys::Whoami;
use velu_http::model::{Mirrors, Page};
use velu_tests::{TestEnv, backend_tests};

use crate::support::{bootstrap, drain_queue, fast_worker, platform_key};

/// `doc`'s serde JSON, checked equal to what its mirror `M` writes; returned for further
/// checks.
fn twins<M, C>(what: &str, doc: &C) -> Value
where
    C: Serialize + Clone,
    M: Mirrors<C> + From<C> + ToJSON,
{
    let serde = serde_json::to_value(doc).expect("serializes");
    let mirror = M::from(doc.clone())
        .to_json()
        .expect("a mirror writes a value");
    assert_eq!(serde, mirror, "{what}: serde and the mirror disagree");
    serde
}

/// A submit input from JSON.
fn input(v: Value) -> jobs::SubmitJob {
    serde_json::from_value(v).expect("submit input")
}

/// What `GET path` answers with `key` (200), as JSON.
async fn get(env: &TestEnv, path: &str, key: &str) -> Value {
    let reply = env.http(Method::GET, path, Some(key), None).await;
    assert_eq!(reply.status, 200, "{path}: {}", reply.text);
    reply.body
}

/// The principal of an API key, as the server authenticates it.
async fn principal(env: &TestEnv, token: &str) -> Principal {
    velu_core::auth::authenticate(env.velu(), token, None)
        .await
        .expect("a valid key")
}

backend_tests! {
    async fn every_core_answer_writes_what_its_mirror_would(env) {
        let acme = bootstrap(&env, "acme", "superhero").await;
        let velu = env.velu();
        let builder = principal(&env, &acme.builder).await;
        let operator = Principal::operator();
        let org = OrgRef::new(acme.org_id.clone());

        // Every shape of a job: text with quotes, escapes, a line separator and non-ASCII
        // in payloads, results and errors; a failure for good; a delay; an idempotency key found again.
        let odd = "quote \" backslash \\ tab \t nl \n ls \u{2028} é 漢字 🦀 </script>";
        let later = (chrono::Utc::now() + chrono::Duration::days(300)).to_rfc3339();
        let mut submitted = Vec::new();
        for v in [
            json!({"task": "echo", "payload": {"text": odd, "n": 1.5, "deep": [null, true, {"k": []}]}}),
            json!({"task": "fail", "payload": {"message": odd}, "max_attempts": 1}),
            json!({"task": "echo", "payload": {}, "priority": -7, "idempotency_key": "k-é"}),
            json!({"task": "echo", "payload": {"later": 1}, "run_at": later}),
            json!({"task": "sleep", "payload": {"ms": 1}}),
        ] {
            let done = jobs::submit_job(velu, &builder, &org, &input(v)).await.expect("submit");
            twins::<wire::SubmittedJob, _>("a new job", &done.clone().document());
            submitted.push(done.document().job.id);
        }
        // The same idempotency key: the earlier job, without `queue_paused`.
        let again = jobs::submit_job(
            velu,
            &builder,
            &org,
            &input(json!({"task": "echo", "idempotency_key": "k-é"})),
        )
        .await
        .expect("submit again");
        assert!(!again.created);
        let doc = twins::<wire::SubmittedJob, _>("a job found again", &again.document());
        assert!(doc.get("queue_paused").is_none(), "{doc}");
        // Cancelled before it ran.
        let cancelled = jobs::cancel_job(velu, &builder, &org, &submitted[4]).await.expect("cancel");
        twins::<wire::JobDetail, _>("a cancelled job", &cancelled);

        drain_queue(velu, fast_worker("w-twins")).await;

        // Held by a pause: `queue_paused: true`, and HTTP answers the same bytes' JSON.
        env.cli_ok(&["queue", "pause", "--org", "acme", "--reason", "twins"]).await;
        let held = jobs::submit_job(velu, &builder, &org, &input(json!({"task": "echo"})))
            .await
            .expect("submit while paused");
        let doc = twins::<wire::SubmittedJob, _>("a job held by a pause", &held.document());
        assert_eq!(doc["queue_paused"], json!(true));
        let reply = env
            .http(
                Method::POST,
                "/v1/orgs/acme/jobs",
                Some(&acme.builder),
                Some(json!({"task": "echo", "payload": {"text": odd}})),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        assert_eq!(reply.body["queue_paused"], json!(true));
        assert_eq!(reply.body["payload"]["text"], json!(odd));

        // Every job, shown to the org's key (attempts without a worker) and the operator.
        for id in &submitted {
            for (who, token) in [(&builder, Some(&acme.builder)), (&operator, None)] {
                let detail = jobs::show_job(velu, who, &org, id).await.expect("show");
                let doc = twins::<wire::JobDetail, _>("a shown job", &detail);
                if let Some(token) = token {
                    assert_eq!(get(&env, &format!("/v1/orgs/acme/jobs/{id}"), token).await, doc);
                }
            }
        }
        let failed = jobs::show_job(velu, &operator, &org, &submitted[1]).await.expect("show");
        assert!(!failed.history.is_empty(), "the failing job ran");
        assert!(failed.history.iter().all(|a| a.worker_id.is_some() && a.error.is_some()));
        assert!(failed.job.error.is_some());
        let seen_by_key = jobs::show_job(velu, &builder, &org, &submitted[1]).await.expect("show");
        assert!(seen_by_key.history.iter().all(|a| a.worker_id.is_none()));
        let done = jobs::show_job(velu, &builder, &org, &submitted[0]).await.expect("show");
        assert!(done.job.result.is_some() && done.job.finished_at.is_some());

        // Failed for good, then put back in the queue.
        assert_eq!(failed.job.status, jobs::JobStatus::Failed);
        let retried = jobs::retry_job(velu, &builder, &org, &submitted[1]).await.expect("retry");
        twins::<wire::JobDetail, _>("a retried job", &retried);

        // Pages: one with a next cursor, the last one without, a filtered one.
        let mut page = PageRequest { limit: Some(2), cursor: None };
        let mut pages = 0;
        loop {
            let list = jobs::list_jobs(velu, &builder, &org, &JobFilter::default(), &page)
                .await
                .expect("list");
            let doc = twins::<Page<wire::Job>, _>("a page", &list);
            let mut path = "/v1/orgs/acme/jobs?limit=2".to_owned();
            if let Some(c) = &page.cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            assert_eq!(get(&env, &path, &acme.builder).await, doc);
            pages += 1;
            match list.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        assert!(pages >= 3, "{pages} pages");
        let queued_only = JobFilter { status: Some("queued".into()), task: None };
        let list = jobs::list_jobs(velu, &operator, &org, &queued_only, &PageRequest::default())
            .await
            .expect("list");
        twins::<Page<wire::Job>, _>("a filtered page", &list);

        // whoami: an org key, a platform key and the operator (no org, no plan).
        let platform = platform_key(&env, "ops", "jobs:read").await;
        for token in [&acme.builder, &acme.viewer, &platform] {
            let who = principal(&env, token).await;
            let me = keys::whoami(velu, &who).await.expect("whoami");
            let doc = twins::<Whoami, _>("whoami", &me);
            assert_eq!(get(&env, "/v1/whoami", token).await, doc);
        }
        let me = keys::whoami(velu, &operator).await.expect("whoami");
        twins::<Whoami, _>("the operator's whoami", &me);
    }
}
