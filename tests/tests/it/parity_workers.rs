//! Parity cases of the fleet: `workers.list`.

use std::time::Duration;

use poem::http::Method;
use velu_core::fleet::{self, WorkerRegistration};
use velu_core::time::now;

use crate::parity::{Check, World};

/// Registers a platform worker and one of `twin-a` once, then compares the lists.
pub(crate) async fn cases(w: &World, op: &str) -> Vec<Check> {
    use Check::*;
    use Method as M;
    match op {
        "workers.list" => {
            let twin_a = w.env().cli_ok(&["org", "show", "twin-a"]).await;
            let twin_a = twin_a["id"].as_str().expect("org id").to_owned();
            for (id, org) in [("parity-plat", None), ("parity-twin-a", Some(twin_a))] {
                let reg = WorkerRegistration {
                    id: id.into(),
                    remote: org.is_some(),
                    org_id: org,
                    host: "parity.example".into(),
                    version: "0.1.0".into(),
                    kinds: vec!["echo".into(), "add".into()],
                    concurrency: 3,
                    // Long enough that no state changes between the two front ends' calls.
                    heartbeat: Duration::from_secs(600),
                    at: now(),
                };
                fleet::register(w.env().velu(), &reg)
                    .await
                    .expect("registers");
            }
            vec![
                Same(
                    w.cli(&["worker", "list"]).await,
                    w.http(M::GET, "/v1/workers", None).await,
                ),
                Same(
                    w.cli(&["worker", "list", "--org", "twin-a", "--state", "live"])
                        .await,
                    w.http(M::GET, "/v1/workers?org=twin-a&state=live", None)
                        .await,
                ),
                Same(
                    w.cli(&["worker", "list", "--limit", "1"]).await,
                    w.http(M::GET, "/v1/workers?limit=1", None).await,
                ),
                Error(
                    w.cli_err(&["worker", "list", "--state", "dead"]).await,
                    w.http_err(M::GET, "/v1/workers?state=dead", None).await,
                ),
                Error(
                    w.cli_err(&["worker", "list", "--org", "nope"]).await,
                    w.http_err(M::GET, "/v1/workers?org=nope", None).await,
                ),
            ]
        }
        other => panic!("no parity case for worker operation `{other}`"),
    }
}
