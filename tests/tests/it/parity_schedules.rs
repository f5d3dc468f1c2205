//! Parity cases of the schedule operations (`schedules.*` rows of docs/parity.md). A
//! yearly cron keeps `next_run_at` the same for the twins made by each front end.

use poem::http::Method;
use serde_json::json;

use crate::parity::{Check, World};

/// The twins' cron: midnight on 1 January, so both front ends compute the same next tick.
const YEARLY: &str = "0 0 1 1 *";

async fn made_by_cli(w: &World, org: &str) -> String {
    w.cli(&[
        "schedule", "create", "--org", org, "--task", "echo", "--cron", YEARLY,
    ])
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The checks of one `schedules.*` operation.
pub(crate) async fn cases(w: &World, op: &str) -> Vec<Check> {
    use Check::*;
    use Method as M;
    match op {
        "schedules.create" => vec![
            SameShape(
                w.cli(&[
                    "schedule", "create", "--org", "twin-a", "--task", "echo", "--cron", YEARLY,
                    "--timezone", "Europe/Paris", "--payload", r#"{"n": 1}"#,
                ])
                .await,
                w.http(
                    M::POST,
                    "/v1/orgs/twin-b/schedules",
                    Some(json!({"task": "echo", "cron": YEARLY, "timezone": "Europe/Paris", "payload": {"n": 1}})),
                )
                .await,
            ),
            Error(
                w.cli_err(&["schedule", "create", "--org", "twin-a", "--task", "echo", "--cron", "61 * * * *"])
                    .await,
                w.http_err(
                    M::POST,
                    "/v1/orgs/twin-a/schedules",
                    Some(json!({"task": "echo", "cron": "61 * * * *"})),
                )
                .await,
            ),
            Error(
                w.cli_err(&[
                    "schedule", "create", "--org", "twin-a", "--task", "echo", "--cron", YEARLY,
                    "--timezone", "Mars/Olympus",
                ])
                .await,
                w.http_err(
                    M::POST,
                    "/v1/orgs/twin-a/schedules",
                    Some(json!({"task": "echo", "cron": YEARLY, "timezone": "Mars/Olympus"})),
                )
                .await,
            ),
        ],
        "schedules.list" => vec![
            Same(
                w.cli(&["schedule", "list", "--org", "twin-a"]).await,
                w.http(M::GET, "/v1/orgs/twin-a/schedules", None).await,
            ),
            Error(
                w.cli_err(&["schedule", "list", "--org", "nope"]).await,
                w.http_err(M::GET, "/v1/orgs/nope/schedules", None).await,
            ),
        ],
        "schedules.show" => {
            let id = w.cli(&["schedule", "list", "--org", "twin-a"]).await["items"][0]["id"]
                .as_str()
                .unwrap()
                .to_owned();
            vec![
                Same(
                    w.cli(&["schedule", "show", &id, "--org", "twin-a"]).await,
                    w.http(M::GET, &format!("/v1/orgs/twin-a/schedules/{id}"), None)
                        .await,
                ),
                Error(
                    w.cli_err(&["schedule", "show", &id, "--org", "twin-b"]).await,
                    w.http_err(M::GET, &format!("/v1/orgs/twin-b/schedules/{id}"), None)
                        .await,
                ),
            ]
        }
        "schedules.pause" | "schedules.resume" => {
            let verb = op.trim_start_matches("schedules.");
            let (a, b) = (made_by_cli(w, "twin-a").await, made_by_cli(w, "twin-b").await);
            if verb == "resume" {
                w.cli(&["schedule", "pause", &a, "--org", "twin-a"]).await;
                w.cli(&["schedule", "pause", &b, "--org", "twin-b"]).await;
            }
            vec![
                SameShape(
                    w.cli(&["schedule", verb, &a, "--org", "twin-a"]).await,
                    w.http(M::POST, &format!("/v1/orgs/twin-b/schedules/{b}/{verb}"), None)
                        .await,
                ),
                // A second time changes nothing, on either front end.
                Same(
                    w.cli(&["schedule", verb, &a, "--org", "twin-a"]).await,
                    w.http(M::POST, &format!("/v1/orgs/twin-a/schedules/{a}/{verb}"), None)
                        .await,
                ),
                Error(
                    w.cli_err(&["schedule", verb, &a, "--org", "twin-b"]).await,
                    w.http_err(M::POST, &format!("/v1/orgs/twin-b/schedules/{a}/{verb}"), None)
                        .await,
                ),
            ]
        }
        "schedules.delete" => {
            let (a, b) = (made_by_cli(w, "twin-a").await, made_by_cli(w, "twin-b").await);
            vec![
                SameShape(
                    w.cli(&["schedule", "delete", &a, "--org", "twin-a"]).await,
                    w.http(M::DELETE, &format!("/v1/orgs/twin-b/schedules/{b}"), None)
                        .await,
                ),
                Error(
                    w.cli_err(&["schedule", "delete", &a, "--org", "twin-a"]).await,
                    w.http_err(M::DELETE, &format!("/v1/orgs/twin-a/schedules/{a}"), None)
                        .await,
                ),
            ]
        }
        other => panic!("no parity case for schedule operation `{other}`"),
    }
}
