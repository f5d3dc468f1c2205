//! Parity cases of the usage report (`usage.*` rows of docs/parity.md): the same report
//! of one org and of every org on both front ends, and the same refusals.

use poem::http::Method;

use crate::parity::{Check, World};

/// A range around today (UTC), so the twins' jobs of this run are inside it.
fn range() -> (String, String) {
    let today = chrono::Utc::now().date_naive();
    let f = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    (
        f(today - chrono::Duration::days(1)),
        f(today + chrono::Duration::days(1)),
    )
}

/// The checks of one `usage.*` operation.
pub(crate) async fn cases(w: &World, op: &str) -> Vec<Check> {
    use Check::*;
    use Method as M;
    let (from, to) = range();
    let q = format!("from={from}&to={to}");
    match op {
        "usage.org" => vec![
            Same(
                w.cli(&["usage", "--org", "twin-a", "--from", &from, "--to", &to])
                    .await,
                w.http(M::GET, &format!("/v1/orgs/twin-a/usage?{q}"), None)
                    .await,
            ),
            Error(
                w.cli_err(&["usage", "--org", "nope", "--from", &from, "--to", &to])
                    .await,
                w.http_err(M::GET, &format!("/v1/orgs/nope/usage?{q}"), None)
                    .await,
            ),
            Error(
                w.cli_err(&["usage", "--org", "twin-a", "--from", &to, "--to", &from])
                    .await,
                w.http_err(
                    M::GET,
                    &format!("/v1/orgs/twin-a/usage?from={to}&to={from}"),
                    None,
                )
                .await,
            ),
        ],
        "usage.all" => vec![
            Same(
                w.cli(&["usage", "--from", &from, "--to", &to]).await,
                w.http(M::GET, &format!("/v1/usage?{q}"), None).await,
            ),
            Error(
                w.cli_err(&["usage", "--from", "2024-01-01", "--to", "2025-01-01"])
                    .await,
                w.http_err(M::GET, "/v1/usage?from=2024-01-01&to=2025-01-01", None)
                    .await,
            ),
        ],
        other => panic!("no parity case for usage operation `{other}`"),
    }
}
