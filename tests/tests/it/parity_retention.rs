//! Parity cases of history retention: `jobs.retention` (an org's state) and
//! `retention.run` (the removal), the same documents and refusals on both front ends.

use poem::http::Method;
use serde_json::{Value, json};

use crate::parity::{Check, World};

/// Masks the cutoff: each front end reads the clock at its own time.
fn masked(mut doc: Value) -> Value {
    if let Some(at) = doc.pointer_mut("/cutoff") {
        *at = json!("<volatile>");
    }
    doc
}

pub(crate) async fn cases(w: &World, op: &str) -> Vec<Check> {
    use Check::*;
    use Method as M;
    match op {
        "jobs.retention" => vec![
            Same(
                masked(w.cli(&["retention", "show", "--org", "twin-a"]).await),
                masked(w.http(M::GET, "/v1/orgs/twin-a/jobs/retention", None).await),
            ),
            Error(
                w.cli_err(&["retention", "show", "--org", "nope"]).await,
                w.http_err(M::GET, "/v1/orgs/nope/jobs/retention", None)
                    .await,
            ),
        ],
        // The twins' jobs are young: nothing is due, so both runs remove nothing.
        "retention.run" => vec![
            Same(
                w.cli(&["retention", "run", "--org", "twin-a"]).await,
                w.http(M::POST, "/v1/retention/run", Some(json!({"org": "twin-a"})))
                    .await,
            ),
            Same(
                w.cli(&["retention", "run", "--max-jobs", "10"]).await,
                w.http(M::POST, "/v1/retention/run", Some(json!({"max_jobs": 10})))
                    .await,
            ),
            Error(
                w.cli_err(&["retention", "run", "--org", "nope"]).await,
                w.http_err(M::POST, "/v1/retention/run", Some(json!({"org": "nope"})))
                    .await,
            ),
            // A start before every id: the whole walk, to its end (`next_org` null).
            Same(
                w.cli(&[
                    "retention",
                    "run",
                    "--from-org",
                    "00000000-0000-7000-8000-000000000000",
                ])
                .await,
                w.http(
                    M::POST,
                    "/v1/retention/run",
                    Some(json!({"from_org": "00000000-0000-7000-8000-000000000000"})),
                )
                .await,
            ),
            Error(
                w.cli_err(&["retention", "run", "--org", "twin-a", "--from-org", "x"])
                    .await,
                w.http_err(
                    M::POST,
                    "/v1/retention/run",
                    Some(json!({"org": "twin-a", "from_org": "x"})),
                )
                .await,
            ),
            Error(
                w.cli_err(&["retention", "run", "--max-jobs", "0"]).await,
                w.http_err(M::POST, "/v1/retention/run", Some(json!({"max_jobs": 0})))
                    .await,
            ),
        ],
        other => panic!("no retention case for {other}"),
    }
}
