//! The parity rule, checked: walks `docs/parity.md`, runs each operation through the CLI
//! and through HTTP on the same database, and compares the documents and error codes.

use std::collections::BTreeSet;

use poem::http::Method;
use serde_json::{Value, json};
use velu_tests::{TestEnv, backend_tests, workspace_root};

use crate::support::{ALL_SCOPES, platform_key};

/// Operations of the spec that have no CLI twin, on purpose (see docs/parity.md).
const HTTP_ONLY: &[&str] = &[
    "health",
    "ready",
    "metrics",
    // The billing system's signed webhook (docs/billing.md); operators use `org set-plan`.
    "billing.events",
    // The worker protocol: its CLI twin is the `velu-cli worker --server` process.
    "worker.tasks",
    "worker.register",
    "worker.claim",
    "worker.heartbeat",
    "worker.finish",
    "worker.release",
    "worker.stopped",
    "worker.secrets",
];

/// A row of the table: CLI command words, HTTP method and path, operation id.
#[derive(Debug, Clone)]
struct Row {
    cli: Vec<String>,
    method: String,
    path: String,
    op: String,
}

fn table() -> Vec<Row> {
    let text = std::fs::read_to_string(workspace_root().join("docs/parity.md")).unwrap();
    let code = |cell: &str| cell.trim().trim_matches('`').to_owned();
    text.lines()
        .skip_while(|l| !l.starts_with("| operation |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<_> = l.split('|').map(str::trim).collect();
            let http = code(cells[3]);
            let (method, path) = http.split_once(' ').unwrap();
            Row {
                cli: code(cells[2])
                    .split_whitespace()
                    .skip(1)
                    .map(str::to_owned)
                    .collect(),
                method: method.to_owned(),
                path: path.to_owned(),
                op: code(cells[4]),
            }
        })
        .collect()
}

/// Fields that legitimately differ between two runs that each create something.
const VOLATILE: &[&str] = &[
    "id",
    "org_id",
    "slug",
    "created_at",
    "updated_at",
    "revoked_at",
    "rotated_at",
    "grace_until",
    "last_used_at",
    "token",
    "actor_id",
    "actor_type",
    "created_by_id",
    "created_by_type",
    "target_id",
    "job_id",
    "started_at",
    "finished_at",
    "run_at",
    "next_cursor",
    "ids",
];

fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if VOLATILE.contains(&k.as_str()) && !v.is_null() {
                        json!("<volatile>")
                    } else {
                        normalize(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

/// The world of a parity run: an all-scopes platform key for HTTP (the operator's rights)
/// and twin orgs so a mutation can run once per front end.
pub(crate) struct World {
    env: TestEnv,
    ops: String,
    /// Every CLI command line and HTTP request a case made, to check them against the
    /// table's CLI and HTTP columns.
    calls: std::sync::Mutex<Calls>,
    /// Remote mode: the flags that send every CLI command to a real server as the
    /// platform key (`--server URL --key-file FILE`); empty for local mode.
    remote: Vec<String>,
}

#[derive(Default)]
struct Calls {
    cli: Vec<Vec<String>>,
    http: Vec<(String, String)>,
}

/// Does a request path (query aside) match a table route like `/v1/orgs/{org}/jobs`?
fn route_matches(template: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    let (t, p): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}') && !p.is_empty()) || t == p)
}

impl World {
    /// The test environment (database, CLI, HTTP app).
    pub(crate) fn env(&self) -> &TestEnv {
        &self.env
    }

    fn record_cli(&self, args: &[&str]) {
        let words = args.iter().map(|a| (*a).to_owned()).collect();
        self.calls.lock().unwrap().cli.push(words);
    }

    fn record_http(&self, method: &Method, path: &str) {
        let call = (method.as_str().to_owned(), path.to_owned());
        self.calls.lock().unwrap().http.push(call);
    }

    /// The command line as this world runs it (remote mode adds its flags).
    fn cli_args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        self.remote
            .iter()
            .map(String::as_str)
            .chain(args.iter().copied())
            .collect()
    }

    pub(crate) async fn cli(&self, args: &[&str]) -> Value {
        self.record_cli(args);
        self.env.cli_ok(&self.cli_args(args)).await
    }

    pub(crate) async fn cli_err(&self, args: &[&str]) -> String {
        self.record_cli(args);
        self.env.cli(&self.cli_args(args)).await.error_code()
    }

    pub(crate) async fn http(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        self.record_http(&method, path);
        let r = self
            .env
            .http(method.clone(), path, Some(&self.ops), body)
            .await;
        assert!(r.status < 300, "{method} {path}: {} {}", r.status, r.text);
        r.body
    }

    pub(crate) async fn http_err(&self, method: Method, path: &str, body: Option<Value>) -> String {
        self.record_http(&method, path);
        self.env
            .http(method, path, Some(&self.ops), body)
            .await
            .problem_code()
    }
}

/// What one case compares.
pub(crate) enum Check {
    /// Both documents must be equal as they are (reads of the same data).
    Same(Value, Value),
    /// Equal once ids, times and actors are masked (each front end made its own).
    SameShape(Value, Value),
    /// Both failed with this code.
    Error(String, String),
}

async fn run_case(w: &World, op: &str) -> Vec<Check> {
    use Check::*;
    use Method as M;
    let kid_of = |doc: &Value| doc["key"]["id"].as_str().unwrap().to_owned();
    match op {
        "plans.list" => vec![Same(
            w.cli(&["plan", "list"]).await,
            w.http(M::GET, "/v1/plans", None).await,
        )],
        "plans.show" => vec![
            Same(
                w.cli(&["plan", "show", "hero"]).await,
                w.http(M::GET, "/v1/plans/hero", None).await,
            ),
            Error(
                w.cli_err(&["plan", "show", "gold"]).await,
                w.http_err(M::GET, "/v1/plans/gold", None).await,
            ),
        ],
        "tasks.list" => vec![Same(
            w.cli(&["task", "list"]).await,
            w.http(M::GET, "/v1/tasks", None).await,
        )],
        "orgs.create" => vec![
            SameShape(
                w.cli(&[
                    "org", "create", "--name", "New", "--slug", "new-cli", "--plan", "hero",
                ])
                .await,
                w.http(
                    M::POST,
                    "/v1/orgs",
                    Some(json!({"name": "New", "slug": "new-http", "plan": "hero"})),
                )
                .await,
            ),
            Error(
                w.cli_err(&["org", "create", "--name", "New", "--slug", "new-cli"])
                    .await,
                w.http_err(
                    M::POST,
                    "/v1/orgs",
                    Some(json!({"name": "New", "slug": "new-cli"})),
                )
                .await,
            ),
            Error(
                w.cli_err(&["org", "create", "--name", "Bad", "--slug", "Bad!"])
                    .await,
                w.http_err(
                    M::POST,
                    "/v1/orgs",
                    Some(json!({"name": "Bad", "slug": "Bad!"})),
                )
                .await,
            ),
        ],
        "orgs.bootstrap" => vec![
            SameShape(
                w.cli(&[
                    "org",
                    "bootstrap",
                    "--name",
                    "Boot",
                    "--slug",
                    "boot-cli",
                    "--plan",
                    "hero",
                ])
                .await,
                w.http(
                    M::POST,
                    "/v1/orgs/bootstrap",
                    Some(json!({"name": "Boot", "slug": "boot-http", "plan": "hero"})),
                )
                .await,
            ),
            SameShape(
                w.cli(&[
                    "org",
                    "bootstrap",
                    "--name",
                    "Boot",
                    "--slug",
                    "boot-cli",
                    "--rotate",
                ])
                .await,
                w.http(
                    M::POST,
                    "/v1/orgs/bootstrap",
                    Some(json!({"name": "Boot", "slug": "boot-http", "rotate": true})),
                )
                .await,
            ),
            Error(
                w.cli_err(&["org", "bootstrap", "--name", "Boot", "--slug", "boot-cli"])
                    .await,
                w.http_err(
                    M::POST,
                    "/v1/orgs/bootstrap",
                    Some(json!({"name": "Boot", "slug": "boot-cli"})),
                )
                .await,
            ),
        ],
        "orgs.list" => vec![
            Same(
                w.cli(&["org", "list", "--limit", "2"]).await,
                w.http(M::GET, "/v1/orgs?limit=2", None).await,
            ),
            Same(
                w.cli(&["org", "list", "--q", "twin"]).await,
                w.http(M::GET, "/v1/orgs?q=twin", None).await,
            ),
            Error(
                w.cli_err(&["org", "list", "--limit", "999"]).await,
                w.http_err(M::GET, "/v1/orgs?limit=999", None).await,
            ),
        ],
        "orgs.show" => vec![
            Same(
                w.cli(&["org", "show", "twin-a"]).await,
                w.http(M::GET, "/v1/orgs/twin-a", None).await,
            ),
            Error(
                w.cli_err(&["org", "show", "nope"]).await,
                w.http_err(M::GET, "/v1/orgs/nope", None).await,
            ),
        ],
        "orgs.set_plan" => vec![
            SameShape(
                w.cli(&["org", "set-plan", "twin-a", "superhero"]).await,
                w.http(
                    M::PUT,
                    "/v1/orgs/twin-b/plan",
                    Some(json!({"plan": "superhero"})),
                )
                .await,
            ),
            Error(
                w.cli_err(&["org", "set-plan", "twin-a", "gold"]).await,
                w.http_err(
                    M::PUT,
                    "/v1/orgs/twin-a/plan",
                    Some(json!({"plan": "gold"})),
                )
                .await,
            ),
        ],
        "keys.create" => vec![
            SameShape(
                w.cli(&[
                    "key",
                    "create",
                    "--org",
                    "twin-a",
                    "--name",
                    "made",
                    "--scopes",
                    "jobs:read,jobs:submit",
                ])
                .await,
                w.http(
                    M::POST,
                    "/v1/orgs/twin-b/keys",
                    Some(json!({"name": "made", "scopes": ["jobs:read", "jobs:submit"]})),
                )
                .await,
            ),
            Error(
                w.cli_err(&[
                    "key",
                    "create",
                    "--org",
                    "twin-a",
                    "--name",
                    "x",
                    "--scopes",
                    "admin:orgs:manage",
                ])
                .await,
                w.http_err(
                    M::POST,
                    "/v1/orgs/twin-a/keys",
                    Some(json!({"name": "x", "scopes": ["admin:orgs:manage"]})),
                )
                .await,
            ),
        ],
        "keys.list" => vec![
            Same(
                w.cli(&["key", "list", "--org", "twin-a"]).await,
                w.http(M::GET, "/v1/orgs/twin-a/keys", None).await,
            ),
            Error(
                w.cli_err(&["key", "list", "--org", "nope"]).await,
                w.http_err(M::GET, "/v1/orgs/nope/keys", None).await,
            ),
        ],
        "keys.show" => {
            let kid = w.cli(&["key", "list", "--org", "twin-a"]).await["items"][0]["id"]
                .as_str()
                .unwrap()
                .to_owned();
            vec![
                Same(
                    w.cli(&["key", "show", &kid, "--org", "twin-a"]).await,
                    w.http(M::GET, &format!("/v1/orgs/twin-a/keys/{kid}"), None)
                        .await,
                ),
                Error(
                    w.cli_err(&["key", "show", &kid, "--org", "twin-b"]).await,
                    w.http_err(M::GET, &format!("/v1/orgs/twin-b/keys/{kid}"), None)
                        .await,
                ),
            ]
        }
        "keys.revoke" => {
            let a = kid_of(
                &w.cli(&[
                    "key",
                    "create",
                    "--org",
                    "twin-a",
                    "--name",
                    "to-revoke",
                    "--role",
                    "viewer",
                ])
                .await,
            );
            let b = kid_of(
                &w.cli(&[
                    "key",
                    "create",
                    "--org",
                    "twin-b",
                    "--name",
                    "to-revoke",
                    "--role",
                    "viewer",
                ])
                .await,
            );
            vec![
                SameShape(
                    w.cli(&["key", "revoke", &a, "--org", "twin-a"]).await,
                    w.http(M::POST, &format!("/v1/orgs/twin-b/keys/{b}/revoke"), None)
                        .await,
                ),
                Same(
                    w.cli(&["key", "revoke", &a, "--org", "twin-a"]).await,
                    w.http(M::POST, &format!("/v1/orgs/twin-a/keys/{a}/revoke"), None)
                        .await,
                ),
            ]
        }
        "keys.rotate" => {
            let a = kid_of(
                &w.cli(&[
                    "key",
                    "create",
                    "--org",
                    "twin-a",
                    "--name",
                    "to-rotate",
                    "--role",
                    "viewer",
                ])
                .await,
            );
            let b = kid_of(
                &w.cli(&[
                    "key",
                    "create",
                    "--org",
                    "twin-b",
                    "--name",
                    "to-rotate",
                    "--role",
                    "viewer",
                ])
                .await,
            );
            vec![
                SameShape(
                    w.cli(&["key", "rotate", &a, "--org", "twin-a", "--grace", "1h"])
                        .await,
                    w.http(
                        M::POST,
                        &format!("/v1/orgs/twin-b/keys/{b}/rotate?grace_secs=3600"),
                        None,
                    )
                    .await,
                ),
                Error(
                    w.cli_err(&["key", "rotate", "missing", "--org", "twin-a"])
                        .await,
                    w.http_err(M::POST, "/v1/orgs/twin-a/keys/missing/rotate", None)
                        .await,
                ),
            ]
        }
        "whoami" => vec![Same(
            w.cli(&["whoami", "--key", &w.ops]).await,
            w.http(M::GET, "/v1/whoami", None).await,
        )],
        "audit.list" => vec![
            Same(
                w.cli(&["audit", "list", "--org", "twin-a"]).await,
                w.http(M::GET, "/v1/orgs/twin-a/audit", None).await,
            ),
            Error(
                w.cli_err(&["audit", "list", "--org", "nope"]).await,
                w.http_err(M::GET, "/v1/orgs/nope/audit", None).await,
            ),
        ],
        "jobs.events" => Box::pin(crate::parity_events::cases(w, op)).await,
        "jobs.retention" | "retention.run" => Box::pin(crate::parity_retention::cases(w, op)).await,
        op if op.starts_with("jobs.") => Box::pin(run_job_case(w, op)).await,
        op if op.starts_with("workers.") => Box::pin(crate::parity_workers::cases(w, op)).await,
        op if op.starts_with("queue.") || op == "tasks.pause" || op == "tasks.resume" => {
            Box::pin(crate::parity_queue::cases(w, op)).await
        }
        op if op.starts_with("schedules.") => Box::pin(crate::parity_schedules::cases(w, op)).await,
        op if op.starts_with("usage.") => Box::pin(crate::parity_usage::cases(w, op)).await,
        op if op.starts_with("secrets.") => Box::pin(crate::parity_secrets::cases(w, op)).await,
        // Each further noun keeps its cases in its own file, `parity_<noun>.rs`:
        // `pub(crate) async fn cases(w: &World, op: &str) -> Vec<Check>`.
        other => panic!("docs/parity.md lists `{other}` but the parity test has no case for it"),
    }
}

async fn run_job_case(w: &World, op: &str) -> Vec<Check> {
    use Check::*;
    use Method as M;
    match op {
        "jobs.submit" => vec![
            SameShape(
                w.cli(&[
                    "job",
                    "submit",
                    "--org",
                    "twin-a",
                    "--task",
                    "echo",
                    "--payload",
                    r#"{"n": 1}"#,
                    "--priority",
                    "5",
                ])
                .await,
                w.http(
                    M::POST,
                    "/v1/orgs/twin-b/jobs",
                    Some(json!({"task": "echo", "payload": {"n": 1}, "priority": 5})),
                )
                .await,
            ),
            Error(
                w.cli_err(&["job", "submit", "--org", "twin-a", "--task", "nope"])
                    .await,
                w.http_err(
                    M::POST,
                    "/v1/orgs/twin-a/jobs",
                    Some(json!({"task": "nope", "payload": {}})),
                )
                .await,
            ),
            Error(
                w.cli_err(&[
                    "job",
                    "submit",
                    "--org",
                    "twin-a",
                    "--task",
                    "echo",
                    "--payload",
                    r#"{"_velu": 1}"#,
                ])
                .await,
                w.http_err(
                    M::POST,
                    "/v1/orgs/twin-a/jobs",
                    Some(json!({"task": "echo", "payload": {"_velu": 1}})),
                )
                .await,
            ),
        ],
        "jobs.submit_batch" => {
            let jobs = json!([{"task": "echo", "payload": {"b": 1}}, {"task": "sleep", "payload": {"seconds": 0}}]);
            let file = w.env.home().join("parity-batch.json");
            std::fs::write(&file, jobs.to_string()).unwrap();
            let empty = w.env.home().join("parity-empty.json");
            std::fs::write(&empty, "[]").unwrap();
            vec![
                SameShape(
                    w.cli(&[
                        "job",
                        "submit-batch",
                        "--org",
                        "twin-a",
                        "--file",
                        file.to_str().unwrap(),
                    ])
                    .await,
                    w.http(
                        M::POST,
                        "/v1/orgs/twin-b/jobs/batch",
                        Some(json!({"jobs": jobs})),
                    )
                    .await,
                ),
                Error(
                    w.cli_err(&[
                        "job",
                        "submit-batch",
                        "--org",
                        "twin-a",
                        "--file",
                        empty.to_str().unwrap(),
                    ])
                    .await,
                    w.http_err(
                        M::POST,
                        "/v1/orgs/twin-a/jobs/batch",
                        Some(json!({"jobs": []})),
                    )
                    .await,
                ),
            ]
        }
        "jobs.list" => vec![
            Same(
                w.cli(&["job", "list", "--org", "twin-a"]).await,
                w.http(M::GET, "/v1/orgs/twin-a/jobs", None).await,
            ),
            Same(
                w.cli(&[
                    "job", "list", "--org", "twin-a", "--task", "echo", "--limit", "1",
                ])
                .await,
                w.http(M::GET, "/v1/orgs/twin-a/jobs?task=echo&limit=1", None)
                    .await,
            ),
            Error(
                w.cli_err(&["job", "list", "--org", "twin-a", "--status", "done"])
                    .await,
                w.http_err(M::GET, "/v1/orgs/twin-a/jobs?status=done", None)
                    .await,
            ),
        ],
        "jobs.show" => {
            let id = w.cli(&["job", "list", "--org", "twin-a"]).await["items"][0]["id"]
                .as_str()
                .unwrap()
                .to_owned();
            vec![
                Same(
                    w.cli(&["job", "show", &id, "--org", "twin-a"]).await,
                    w.http(M::GET, &format!("/v1/orgs/twin-a/jobs/{id}"), None)
                        .await,
                ),
                Error(
                    w.cli_err(&["job", "show", &id, "--org", "twin-b"]).await,
                    w.http_err(M::GET, &format!("/v1/orgs/twin-b/jobs/{id}"), None)
                        .await,
                ),
                Error(
                    w.cli_err(&["job", "show", "not-an-id", "--org", "twin-a"])
                        .await,
                    w.http_err(M::GET, "/v1/orgs/twin-a/jobs/not-an-id", None)
                        .await,
                ),
            ]
        }
        "jobs.cancel" => {
            let a = w
                .cli(&[
                    "job",
                    "submit",
                    "--org",
                    "twin-a",
                    "--task",
                    "echo",
                    "--payload",
                    r#"{"c": 1}"#,
                ])
                .await["id"]
                .as_str()
                .unwrap()
                .to_owned();
            let b = w
                .cli(&[
                    "job",
                    "submit",
                    "--org",
                    "twin-b",
                    "--task",
                    "echo",
                    "--payload",
                    r#"{"c": 1}"#,
                ])
                .await["id"]
                .as_str()
                .unwrap()
                .to_owned();
            vec![
                SameShape(
                    w.cli(&["job", "cancel", &a, "--org", "twin-a"]).await,
                    w.http(M::POST, &format!("/v1/orgs/twin-b/jobs/{b}/cancel"), None)
                        .await,
                ),
                Same(
                    w.cli(&["job", "cancel", &a, "--org", "twin-a"]).await,
                    w.http(M::POST, &format!("/v1/orgs/twin-a/jobs/{a}/cancel"), None)
                        .await,
                ),
            ]
        }
        "jobs.retry" => {
            let cancelled = |org: &'static str| async move {
                let list = w
                    .cli(&["job", "list", "--org", org, "--status", "cancelled"])
                    .await;
                list["items"][0]["id"].as_str().unwrap().to_owned()
            };
            let (a, b) = (cancelled("twin-a").await, cancelled("twin-b").await);
            vec![
                SameShape(
                    w.cli(&["job", "retry", &a, "--org", "twin-a"]).await,
                    w.http(M::POST, &format!("/v1/orgs/twin-b/jobs/{b}/retry"), None)
                        .await,
                ),
                Error(
                    w.cli_err(&["job", "retry", &a, "--org", "twin-a"]).await,
                    w.http_err(M::POST, &format!("/v1/orgs/twin-a/jobs/{a}/retry"), None)
                        .await,
                ),
            ]
        }
        "jobs.stats" => vec![
            Same(
                w.cli(&["job", "stats", "--org", "twin-a"]).await,
                w.http(M::GET, "/v1/orgs/twin-a/jobs/stats", None).await,
            ),
            Error(
                w.cli_err(&["job", "stats", "--org", "nope"]).await,
                w.http_err(M::GET, "/v1/orgs/nope/jobs/stats", None).await,
            ),
        ],
        other => panic!("no parity case for job operation `{other}`"),
    }
}

/// Walks the table: every case's CLI run (locally, or in remote mode through a real
/// server) against its HTTP twin.
async fn walk(env: &TestEnv, remote: bool) {
    let rows = table();
    assert!(rows.len() >= 15, "the table was read");
    for twin in ["twin-a", "twin-b"] {
        env.cli_ok(&[
            "org",
            "bootstrap",
            "--name",
            "Twin",
            "--slug",
            twin,
            "--plan",
            "hero",
        ])
        .await;
    }
    let ops = platform_key(env, "parity", ALL_SCOPES).await;
    let server = if remote {
        Some(env.serve_tcp().await)
    } else {
        None
    };
    let remote = match &server {
        Some(server) => {
            let key_file = env.home().join("parity.key");
            std::fs::write(&key_file, format!("{ops}\n")).unwrap();
            vec![
                "--server".to_owned(),
                server.url.clone(),
                "--key-file".to_owned(),
                key_file.display().to_string(),
            ]
        }
        None => Vec::new(),
    };
    let world = World {
        env: env.clone(),
        ops,
        calls: Default::default(),
        remote,
    };
    for row in &rows {
        // Boxed: the case futures are large for a debug build's stack.
        let checks = Box::pin(run_case(&world, &row.op)).await;
        assert!(!checks.is_empty(), "{}: no checks", row.op);
        // The case exercised the table's own CLI command and HTTP route.
        let calls = std::mem::take(&mut *world.calls.lock().unwrap());
        assert!(
            calls.cli.iter().any(|args| args.starts_with(&row.cli)),
            "{}: the case never ran `velu-cli {}` (the table's CLI column)",
            row.op,
            row.cli.join(" ")
        );
        assert!(
            calls
                .http
                .iter()
                .any(|(m, p)| m.eq_ignore_ascii_case(&row.method) && route_matches(&row.path, p)),
            "{}: the case never sent `{} {}` (the table's HTTP column); it sent {:?}",
            row.op,
            row.method,
            row.path,
            calls.http
        );
        for (i, check) in checks.into_iter().enumerate() {
            match check {
                Check::Same(cli, http) => {
                    assert_eq!(cli, http, "{} #{i}: CLI and HTTP differ", row.op)
                }
                Check::SameShape(cli, http) => assert_eq!(
                    normalize(&cli),
                    normalize(&http),
                    "{} #{i}: CLI and HTTP differ",
                    row.op
                ),
                Check::Error(cli, http) => {
                    assert_eq!(cli, http, "{} #{i}: error codes differ", row.op);
                    assert!(!cli.is_empty());
                }
            }
        }
    }
    if let Some(server) = server {
        server.stop().await;
    }
}

backend_tests! {
    async fn every_operation_prints_the_same_document_on_both_front_ends(env) {
        walk(&env, false).await;
    }

    async fn every_operation_prints_the_same_document_in_remote_mode(env) {
        walk(&env, true).await;
    }
}

#[test]
fn routes_match_only_their_own_shape() {
    assert!(route_matches(
        "/v1/orgs/{org}/jobs",
        "/v1/orgs/acme/jobs?limit=2"
    ));
    assert!(!route_matches(
        "/v1/orgs/{org}/jobs",
        "/v1/orgs/acme/jobs/stats"
    ));
    assert!(!route_matches(
        "/v1/orgs/{org}/jobs/{job}",
        "/v1/orgs/acme/jobs/"
    ));
    assert!(!route_matches("/v1/orgs/{org}/keys", "/v1/orgs/acme/jobs"));
}

/// The table, the spec and the CLI name the same operations.
#[test]
fn the_table_matches_the_spec_and_the_cli() {
    let rows = table();
    let spec: Value = serde_json::from_str(&velu_http::openapi_json()).unwrap();
    let mut spec_ops = BTreeSet::new();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap().to_owned();
            if op["deprecated"] == true || HTTP_ONLY.contains(&id.as_str()) {
                continue;
            }
            let row = rows.iter().find(|r| r.op == id).unwrap_or_else(|| {
                panic!("`{id}` ({method} {path}) is missing from docs/parity.md")
            });
            assert_eq!(
                (row.method.to_lowercase(), row.path.as_str()),
                (method.clone(), path.as_str()),
                "docs/parity.md has the wrong route for `{id}`"
            );
            spec_ops.insert(id);
        }
    }
    let table_ops: BTreeSet<_> = rows.iter().map(|r| r.op.clone()).collect();
    assert_eq!(
        table_ops, spec_ops,
        "docs/parity.md lists operations the spec does not have"
    );

    let root = velu_cli::command();
    for row in &rows {
        let mut cmd = &root;
        for word in &row.cli {
            cmd = cmd
                .find_subcommand(word)
                .unwrap_or_else(|| panic!("`velu-cli {}` does not exist", row.cli.join(" ")));
        }
    }
}
