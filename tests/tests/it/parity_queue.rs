//! Parity cases of the queue's pauses: `queue.show`, `queue.pause`, `queue.resume`,
//! `tasks.pause`, `tasks.resume`.

use poem::http::Method;
use serde_json::{Value, json};

use crate::parity::{Check, World};

/// Masks when a pause was taken (each front end paused its own twin at its own time).
fn masked(mut doc: Value) -> Value {
    if let Some(at) = doc.pointer_mut("/pause/paused_at")
        && !at.is_null()
    {
        *at = json!("<volatile>");
    }
    doc
}

pub(crate) async fn cases(w: &World, op: &str) -> Vec<Check> {
    use Check::*;
    use Method as M;
    match op {
        "queue.show" => vec![
            Same(
                w.cli(&["queue", "show", "--org", "twin-a"]).await,
                w.http(M::GET, "/v1/orgs/twin-a/queue", None).await,
            ),
            Error(
                w.cli_err(&["queue", "show", "--org", "nope"]).await,
                w.http_err(M::GET, "/v1/orgs/nope/queue", None).await,
            ),
        ],
        "queue.pause" => vec![
            SameShape(
                masked(
                    w.cli(&["queue", "pause", "--org", "twin-a", "--reason", "upgrade"])
                        .await,
                ),
                masked(
                    w.http(
                        M::POST,
                        "/v1/orgs/twin-b/queue/pause",
                        Some(json!({"reason": "upgrade"})),
                    )
                    .await,
                ),
            ),
            // Paused twice: the same state, the first pause kept.
            Same(
                w.cli(&["queue", "pause", "--org", "twin-a", "--reason", "other"])
                    .await,
                w.http(
                    M::POST,
                    "/v1/orgs/twin-a/queue/pause",
                    Some(json!({"reason": "other"})),
                )
                .await,
            ),
            Error(
                w.cli_err(&["queue", "pause", "--org", "twin-a", "--reason", "a\tb"])
                    .await,
                w.http_err(
                    M::POST,
                    "/v1/orgs/twin-a/queue/pause",
                    Some(json!({"reason": "a\tb"})),
                )
                .await,
            ),
            Error(
                w.cli_err(&["queue", "pause", "--org", "nope"]).await,
                w.http_err(M::POST, "/v1/orgs/nope/queue/pause", None).await,
            ),
        ],
        "queue.resume" => vec![
            SameShape(
                w.cli(&["queue", "resume", "--org", "twin-a"]).await,
                w.http(M::POST, "/v1/orgs/twin-b/queue/resume", None).await,
            ),
            Same(
                w.cli(&["queue", "resume", "--org", "twin-a"]).await,
                w.http(M::POST, "/v1/orgs/twin-a/queue/resume", None).await,
            ),
            Error(
                w.cli_err(&["queue", "resume", "--org", "nope"]).await,
                w.http_err(M::POST, "/v1/orgs/nope/queue/resume", None)
                    .await,
            ),
        ],
        // A kind's pause is every org's: the second pause returns the first one's state.
        "tasks.pause" => vec![
            Same(
                w.cli(&["task", "pause", "echo", "--reason", "maintenance"])
                    .await,
                w.http(
                    M::POST,
                    "/v1/tasks/echo/pause",
                    Some(json!({"reason": "maintenance"})),
                )
                .await,
            ),
            Error(
                w.cli_err(&["task", "pause", "nope"]).await,
                w.http_err(M::POST, "/v1/tasks/nope/pause", None).await,
            ),
        ],
        "tasks.resume" => vec![
            Same(
                w.cli(&["task", "resume", "echo"]).await,
                w.http(M::POST, "/v1/tasks/echo/resume", None).await,
            ),
            Error(
                w.cli_err(&["task", "resume", "nope"]).await,
                w.http_err(M::POST, "/v1/tasks/nope/resume", None).await,
            ),
        ],
        other => panic!("no parity case for queue operation `{other}`"),
    }
}
