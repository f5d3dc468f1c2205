//! Parity cases of job events: `jobs.events` (one page; `job watch` follows it).

use poem::http::Method;

use crate::parity::{Check, World};

/// A job of `twin-a` submitted then cancelled (so its stream no longer changes), read
/// whole, from the middle, a page at a time, and refused the same way on both sides.
pub(crate) async fn cases(w: &World, op: &str) -> Vec<Check> {
    use Check::*;
    use Method as M;
    match op {
        "jobs.events" => {
            let submitted = w
                .env()
                .cli_ok(&[
                    "job",
                    "submit",
                    "--org",
                    "twin-a",
                    "--task",
                    "echo",
                    "--payload",
                    r#"{"e": 1}"#,
                ])
                .await;
            let job = submitted["id"].as_str().expect("job id").to_owned();
            w.env()
                .cli_ok(&["job", "cancel", &job, "--org", "twin-a"])
                .await;
            let path = format!("/v1/orgs/twin-a/jobs/{job}/events");
            let whole = w.cli(&["job", "events", &job, "--org", "twin-a"]).await;
            let kinds: Vec<&str> = whole["events"]
                .as_array()
                .expect("events")
                .iter()
                .map(|e| e["kind"].as_str().unwrap_or_default())
                .collect();
            assert_eq!(kinds, ["queued", "ended"], "{whole}");
            let first = whole["events"][0]["seq"].as_i64().expect("seq").to_string();
            vec![
                Same(whole.clone(), w.http(M::GET, &path, None).await),
                Same(
                    w.cli(&["job", "events", &job, "--org", "twin-a", "--after", &first])
                        .await,
                    w.http(M::GET, &format!("{path}?after={first}"), None).await,
                ),
                Same(
                    w.cli(&["job", "events", &job, "--org", "twin-a", "--limit", "1"])
                        .await,
                    w.http(M::GET, &format!("{path}?limit=1"), None).await,
                ),
                Error(
                    w.cli_err(&["job", "events", &job, "--org", "twin-a", "--after", "-1"])
                        .await,
                    w.http_err(M::GET, &format!("{path}?after=-1"), None).await,
                ),
                Error(
                    w.cli_err(&["job", "events", &job, "--org", "twin-a", "--limit", "501"])
                        .await,
                    w.http_err(M::GET, &format!("{path}?limit=501"), None).await,
                ),
                Error(
                    w.cli_err(&[
                        "job",
                        "events",
                        "01900000-0000-7000-8000-000000000000",
                        "--org",
                        "twin-a",
                    ])
                    .await,
                    w.http_err(
                        M::GET,
                        "/v1/orgs/twin-a/jobs/01900000-0000-7000-8000-000000000000/events",
                        None,
                    )
                    .await,
                ),
            ]
        }
        other => panic!("no parity case for event operation `{other}`"),
    }
}
