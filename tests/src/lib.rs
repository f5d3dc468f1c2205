//! The integration-test harness: a [`TestEnv`] per test with its own data directory and
//! database, the CLI run in-process, and the HTTP app called in-process.
//!
//! Every storage test runs on SQLite and, when `VELU_TEST_DATABASE_URL` points at a
//! PostgreSQL server, on a fresh database created for the test and dropped after it
//! (see [`backend_tests!`]). Logs are silent unless `TEST_LOG` is set.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

use poem::http::{HeaderMap, Method};
use poem::{Body, Endpoint, IntoResponse, Request};
use serde_json::Value;
use velu_core::db::SchemaPolicy;
use velu_core::sea_orm::{ConnectionTrait, Database};
use velu_core::settings::Settings;
use velu_core::tasks::TaskCatalog;
use velu_core::{OpenOptions, Velu};

/// The variable naming the PostgreSQL server for the Postgres half of the suite.
pub const PG_ENV: &str = "VELU_TEST_DATABASE_URL";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A fresh SQLite file (the product's default) in a temporary data directory.
    Sqlite,
    /// A fresh database on the server of `VELU_TEST_DATABASE_URL`.
    Postgres,
}

/// One test's world: data directory, database, a [`Velu`] on it.
#[derive(Clone)]
pub struct TestEnv {
    inner: Arc<Inner>,
}

struct Inner {
    velu: Velu,
    home: tempfile::TempDir,
    backend: Backend,
    database_url: Option<String>,
    pepper_file: Option<PathBuf>,
    pg: Option<PgDatabase>,
}

struct PgDatabase {
    admin_url: String,
    name: String,
}

/// An HTTP app served on a TCP port ([`TestEnv::serve_tcp`]).
pub struct Served {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<()>,
}

impl Served {
    /// Stops serving and waits for the server to end.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.handle).await;
    }
}

/// The outcome of one CLI run.
#[derive(Debug, Clone)]
pub struct CliRun {
    /// Exit status.
    pub code: u8,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

impl CliRun {
    /// Stdout parsed as YAML into JSON values (panics with the output if it fails).
    pub fn yaml(&self) -> Value {
        assert_eq!(self.code, 0, "command failed: {}", self.stderr);
        serde_yaml::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not YAML ({e}):\n{}", self.stdout))
    }

    /// The error code from `error[<code>]: ...` on stderr.
    pub fn error_code(&self) -> String {
        assert_ne!(self.code, 0, "command succeeded: {}", self.stdout);
        assert!(
            self.stdout.is_empty(),
            "stdout must stay empty on failure: {}",
            self.stdout
        );
        let rest = self
            .stderr
            .lines()
            .find_map(|l| l.strip_prefix("error["))
            .unwrap_or_else(|| panic!("no error line in stderr: {}", self.stderr));
        rest.split(']').next().unwrap_or_default().to_owned()
    }
}

/// The outcome of one HTTP request.
#[derive(Debug, Clone)]
pub struct HttpReply {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body parsed as JSON (`Null` if empty or not JSON).
    pub body: Value,
    /// The raw body.
    pub text: String,
}

impl HttpReply {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The problem `code` of an error reply, after checking it is problem+json.
    pub fn problem_code(&self) -> String {
        assert!(
            self.status >= 400,
            "expected an error, got {}: {}",
            self.status,
            self.text
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "error body must be problem+json: {}",
            self.text
        );
        assert_eq!(self.body["status"], self.status, "status member matches");
        self.body["code"].as_str().unwrap_or_default().to_owned()
    }
}

fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(
                    std::env::var("TEST_LOG").unwrap_or_else(|_| "info".into()),
                ))
                .with_test_writer()
                .try_init();
        }
    });
}

/// The workspace root (for `examples/` and `docs/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf()
}

/// The catalog every test uses: built-ins plus `tests/fixtures/tasks.yaml` (the example
/// kinds and probes).
pub fn test_tasks() -> TaskCatalog {
    velu_core::config::load_tasks_file(
        &workspace_root().join("tests/fixtures/tasks.yaml"),
        velu_http::flags::yaml_tasks,
    )
    .expect("tests/fixtures/tasks.yaml loads")
}

static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// Drops test databases left behind by runs that died (their names carry a UUIDv7, so
/// their age is known): any older than an hour.
async fn sweep_stale_databases(admin: &velu_core::sea_orm::DatabaseConnection) {
    use velu_core::sea_orm::Statement;
    let backend = admin.get_database_backend();
    let Ok(rows) = admin
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT datname FROM pg_database WHERE datname LIKE 'velu\\_t\\_%'",
        ))
        .await
    else {
        return;
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    for row in rows {
        let Ok(name) = row.try_get_by_index::<String>(0) else {
            continue;
        };
        let born_ms = name
            .strip_prefix("velu_t_")
            .and_then(|hex| hex.get(..12))
            .and_then(|h| u64::from_str_radix(h, 16).ok());
        if born_ms.is_some_and(|b| now_ms.saturating_sub(b) > 3_600_000) {
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
        }
    }
}

/// The same URL with another database name.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let prefix = base.rsplit_once('/').map_or(base, |(p, _)| p);
    format!("{prefix}/{name}{query}")
}

/// The org secrets key every test world has: `<home>/secrets.key`, mode 0600, which every
/// process of the world (the CLI with `--home`, the test's `Velu`) finds by default.
pub const TEST_SECRETS_KEY: &str = "dGVzdC1zZWNyZXRzLWtleS0wMTIzNDU2Nzg5YWJjZGU=";

fn write_secrets_key(home: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let path = home.join("secrets.key");
    std::fs::write(&path, TEST_SECRETS_KEY).expect("secrets key file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
}

impl TestEnv {
    /// Starts a fresh world on `backend`; `None` for Postgres when `VELU_TEST_DATABASE_URL`
    /// is not set.
    pub async fn start(backend: Backend) -> Option<TestEnv> {
        Self::start_with(backend, OpenOptions::default()).await
    }

    /// Like [`TestEnv::start`] with explicit open options for the test's own [`Velu`].
    pub async fn start_with(backend: Backend, mut opts: OpenOptions) -> Option<TestEnv> {
        init_logs();
        let home = tempfile::tempdir().expect("temp dir");
        write_secrets_key(home.path());
        let (database_url, pepper_file, pg) = match backend {
            Backend::Sqlite => (None, None, None),
            Backend::Postgres => {
                let admin_url = std::env::var(PG_ENV).ok()?;
                let name = format!("velu_t_{}", uuid::Uuid::now_v7().simple());
                let admin = Database::connect(&admin_url)
                    .await
                    .unwrap_or_else(|e| panic!("{PG_ENV} is set but unreachable: {e}"));
                SWEPT.get_or_init(|| sweep_stale_databases(&admin)).await;
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                let pepper = home.path().join("pepper.secret");
                std::fs::write(&pepper, "test-pepper-0123456789abcdef").expect("pepper file");
                (
                    Some(with_database(&admin_url, &name)),
                    Some(pepper),
                    Some(PgDatabase { admin_url, name }),
                )
            }
        };
        let settings = Settings::new(Some(home.path().to_owned()), database_url.clone())
            .expect("settings")
            .with_pepper_from(None, pepper_file.as_deref())
            .expect("pepper");
        if backend == Backend::Postgres {
            opts.schema = Some(SchemaPolicy::Apply);
        }
        let velu = Velu::open(settings, test_tasks(), opts)
            .await
            .expect("open velu");
        Some(TestEnv {
            inner: Arc::new(Inner {
                velu,
                home,
                backend,
                database_url,
                pepper_file,
                pg,
            }),
        })
    }

    /// A second process's view of the same database: its own pools, caches and
    /// listener (a "node").
    pub async fn another_node(&self, opts: OpenOptions) -> Velu {
        let settings = self.settings();
        Velu::open(settings, test_tasks(), opts)
            .await
            .expect("open second node")
    }

    /// Another node whose database pools open at most `size` connections each.
    pub async fn node_with_pool(&self, size: u32, opts: OpenOptions) -> Velu {
        let settings = self
            .settings()
            .with_db_pool_size(Some(size))
            .expect("pool size");
        Velu::open(settings, test_tasks(), opts)
            .await
            .expect("open node")
    }

    /// Settings pointing at this test's data directory and database.
    pub fn settings(&self) -> Settings {
        Settings::new(
            Some(self.home().to_owned()),
            self.inner.database_url.clone(),
        )
        .expect("settings")
        .with_pepper_from(None, self.inner.pepper_file.as_deref())
        .expect("pepper")
    }

    /// The test's Velu handle.
    pub fn velu(&self) -> &Velu {
        &self.inner.velu
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The data directory.
    pub fn home(&self) -> &Path {
        self.inner.home.path()
    }

    /// The flags that point the CLI at this world.
    pub fn cli_prefix(&self) -> Vec<String> {
        let mut args = vec![
            "velu-cli".to_owned(),
            // Hermetic: never the user's own contexts.
            "--config".to_owned(),
            self.home().join("config.yaml").display().to_string(),
            "--home".to_owned(),
            self.home().display().to_string(),
            "--tasks-file".to_owned(),
            workspace_root()
                .join("tests/fixtures/tasks.yaml")
                .display()
                .to_string(),
        ];
        if let Some(url) = &self.inner.database_url {
            args.extend(["--database-url".to_owned(), url.clone()]);
        }
        if let Some(p) = &self.inner.pepper_file {
            args.extend(["--pepper-file".to_owned(), p.display().to_string()]);
        }
        args
    }

    /// Runs `velu-cli <args>` in-process against this world.
    pub async fn cli(&self, args: &[&str]) -> CliRun {
        let mut all = self.cli_prefix();
        all.extend(args.iter().map(|s| (*s).to_owned()));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = velu_cli::run(all, &mut out, &mut err).await;
        CliRun {
            code,
            stdout: String::from_utf8(out).expect("utf-8 stdout"),
            stderr: String::from_utf8(err).expect("utf-8 stderr"),
        }
    }

    /// Runs a CLI command that must succeed and returns its document.
    pub async fn cli_ok(&self, args: &[&str]) -> Value {
        self.cli(args).await.yaml()
    }

    /// Sends one request to the HTTP app (in-process), with an optional API key and
    /// JSON body.
    pub async fn http(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> HttpReply {
        let mut req = Request::builder()
            .method(method)
            .uri(path.parse().expect("uri"));
        if let Some(k) = key {
            req = req.header("x-api-key", k);
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from_string(b.to_string())),
            None => req.finish(),
        };
        self.send(req).await
    }

    /// Sends a prepared request to the HTTP app.
    pub async fn send(&self, req: Request) -> HttpReply {
        let app = velu_http::app(self.velu().clone());
        let resp = match app.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.into_body().into_string().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        HttpReply {
            status,
            headers,
            body,
            text,
        }
    }

    /// Serves this world's HTTP app on a real TCP port of 127.0.0.1 (for clients that are
    /// not in-process: the CLI's remote mode, remote workers), until `stop()`.
    pub async fn serve_tcp(&self) -> Served {
        use poem::listener::{Acceptor, Listener, TcpListener};
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("bind 127.0.0.1:0");
        let addr = acceptor
            .local_addr()
            .into_iter()
            .find_map(|a| a.as_socket_addr().copied())
            .expect("a TCP address");
        let app = velu_http::app(self.velu().clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(
                    app,
                    async {
                        let _ = stopped.await;
                    },
                    Some(std::time::Duration::from_secs(2)),
                )
                .await;
        });
        Served {
            url: format!("http://{addr}"),
            stop: Some(stop),
            handle,
        }
    }

    /// Tears the world down: closes the pool and drops the Postgres database.
    pub async fn finish(self) {
        let Ok(inner) = Arc::try_unwrap(self.inner) else {
            return;
        };
        inner.velu.shutdown().await;
        let pg = inner.pg;
        drop(inner.velu);
        if let Some(pg) = pg
            && std::env::var_os("VELU_TEST_KEEP_DB").is_none()
            && let Ok(admin) = Database::connect(&pg.admin_url).await
        {
            let _ = admin
                .execute_unprepared(&format!(
                    "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                    pg.name
                ))
                .await;
            admin.close().await.ok();
        }
    }
}

/// Runs `test` on a fresh world of `backend`, then tears it down, also when the test
/// panics. Fails the Postgres half when no server is configured (build.rs compiles those
/// halves as ignored when `VELU_TEST_DATABASE_URL` is unset at build time).
pub async fn on_backend<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(TestEnv) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    // A Postgres half runs only when built with the server configured (it is compiled as
    // `#[ignore]` otherwise, see build.rs): then a missing server is a failure, never a
    // silent pass.
    let Some(env) = TestEnv::start(backend).await else {
        panic!("{PG_ENV} is not set: the PostgreSQL half of this test cannot run");
    };
    let outcome = tokio::spawn(test(env.clone())).await;
    env.finish().await;
    if let Err(e) = outcome
        && e.is_panic()
    {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// A runtime for one test: two workers with roomy stacks (debug builds of large async
/// state machines need them).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(8 * 1024 * 1024)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Declares tests that run once per backend: `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! backend_tests {
    ($( $(#[$meta:meta])* async fn $name:ident($env:ident) $body:block )*) => {
        $(
            $(#[$meta])*
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                #[test]
                fn sqlite() {
                    $crate::runtime().block_on($crate::on_backend($crate::Backend::Sqlite, |$env: $crate::TestEnv| async move $body))
                }

                #[test]
                #[cfg_attr(not(velu_pg), ignore = "VELU_TEST_DATABASE_URL was not set when the tests were built")]
                fn postgres() {
                    $crate::runtime().block_on($crate::on_backend($crate::Backend::Postgres, |$env: $crate::TestEnv| async move $body))
                }
            }
        )*
    };
}
