//! Parity cases of the org secret operations (`secrets.*` rows of docs/parity.md). The
//! CLI reads values from a file (`--from-file`; stdin is the test process's own), and in
//! remote mode sends them in the body of its HTTP twin.

use poem::http::Method;
use serde_json::json;

use crate::parity::{Check, World};

/// A value file in the world's data directory.
fn value_file(w: &World, name: &str, value: &str) -> String {
    let path = w.env().home().join(format!("parity-{name}.value"));
    std::fs::write(&path, value).unwrap();
    path.display().to_string()
}

/// The checks of one `secrets.*` operation.
pub(crate) async fn cases(w: &World, op: &str) -> Vec<Check> {
    use Check::*;
    use Method as M;
    match op {
        "secrets.set" => {
            let file = value_file(w, "token", "s3cr3t-parity");
            let empty = value_file(w, "empty", "");
            vec![
                SameShape(
                    w.cli(&[
                        "secret",
                        "set",
                        "TOKEN",
                        "--org",
                        "twin-a",
                        "--from-file",
                        &file,
                    ])
                    .await,
                    w.http(
                        M::PUT,
                        "/v1/orgs/twin-b/secrets/TOKEN",
                        Some(json!({"value": "s3cr3t-parity"})),
                    )
                    .await,
                ),
                // A second set is version 2 on both.
                SameShape(
                    w.cli(&[
                        "secret",
                        "set",
                        "TOKEN",
                        "--org",
                        "twin-a",
                        "--from-file",
                        &file,
                    ])
                    .await,
                    w.http(
                        M::PUT,
                        "/v1/orgs/twin-b/secrets/TOKEN",
                        Some(json!({"value": "s3cr3t-parity"})),
                    )
                    .await,
                ),
                Error(
                    w.cli_err(&[
                        "secret",
                        "set",
                        "lower",
                        "--org",
                        "twin-a",
                        "--from-file",
                        &file,
                    ])
                    .await,
                    w.http_err(
                        M::PUT,
                        "/v1/orgs/twin-a/secrets/lower",
                        Some(json!({"value": "x"})),
                    )
                    .await,
                ),
                Error(
                    w.cli_err(&[
                        "secret",
                        "set",
                        "TOKEN",
                        "--org",
                        "nope",
                        "--from-file",
                        &file,
                    ])
                    .await,
                    w.http_err(
                        M::PUT,
                        "/v1/orgs/nope/secrets/TOKEN",
                        Some(json!({"value": "x"})),
                    )
                    .await,
                ),
                Error(
                    w.cli_err(&[
                        "secret",
                        "set",
                        "TOKEN",
                        "--org",
                        "twin-a",
                        "--from-file",
                        &empty,
                    ])
                    .await,
                    w.http_err(
                        M::PUT,
                        "/v1/orgs/twin-a/secrets/TOKEN",
                        Some(json!({"value": "a\u{0}b"})),
                    )
                    .await,
                ),
            ]
        }
        "secrets.list" => vec![
            Same(
                w.cli(&["secret", "list", "--org", "twin-a"]).await,
                w.http(M::GET, "/v1/orgs/twin-a/secrets", None).await,
            ),
            Error(
                w.cli_err(&["secret", "list", "--org", "nope"]).await,
                w.http_err(M::GET, "/v1/orgs/nope/secrets", None).await,
            ),
        ],
        "secrets.delete" => {
            let file = value_file(w, "gone", "bye");
            w.cli(&[
                "secret",
                "set",
                "GONE",
                "--org",
                "twin-a",
                "--from-file",
                &file,
            ])
            .await;
            w.cli(&[
                "secret",
                "set",
                "GONE",
                "--org",
                "twin-b",
                "--from-file",
                &file,
            ])
            .await;
            vec![
                SameShape(
                    w.cli(&["secret", "delete", "GONE", "--org", "twin-a"])
                        .await,
                    w.http(M::DELETE, "/v1/orgs/twin-b/secrets/GONE", None)
                        .await,
                ),
                Error(
                    w.cli_err(&["secret", "delete", "GONE", "--org", "twin-a"])
                        .await,
                    w.http_err(M::DELETE, "/v1/orgs/twin-b/secrets/GONE", None)
                        .await,
                ),
            ]
        }
        other => panic!("no parity case for secret operation `{other}`"),
    }
}
