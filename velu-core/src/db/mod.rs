//! The database handle: one pool, SQLite or PostgreSQL, and the few places where the two
//! backends differ (write transactions, wake-up notifications: `notify.rs` on PostgreSQL,
//! `sqlite_watch.rs` on SQLite).

pub mod autovacuum;
pub(crate) mod batch;
pub(crate) mod events;
mod migrate;
pub mod notify;
pub mod rls;
pub(crate) mod sql;
pub mod sqlite_busy;
pub mod sqlite_watch;
mod transport;
pub(crate) mod usage;

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

pub use migrate::{MigrationState, MigrationStatus, SchemaPolicy};
pub use rls::{CrossOrg, cross_org};

use crate::settings::redact_url;
use crate::{CoreError, CoreResult};

/// Which database server is behind a [`Db`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A local SQLite file (the default).
    Sqlite,
    /// A PostgreSQL server shared by many processes.
    Postgres,
}

impl Backend {
    /// May a process generate a secret (the pepper) into its local data directory? Only
    /// where every process shares that directory: on the SQLite default. On PostgreSQL
    /// processes run on many machines and must be given the same secret.
    pub fn may_generate_local_secrets(self) -> bool {
        match self {
            Backend::Sqlite => true,
            Backend::Postgres => false,
        }
    }

    /// The backend of a sea-orm connection or statement.
    pub(crate) fn of(backend: DbBackend) -> Backend {
        match backend {
            DbBackend::Postgres => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }

    /// `sqlite` or `postgres`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// The backend a URL selects, or a configuration error naming the schemes we accept.
    pub fn from_url(url: &str) -> CoreResult<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(CoreError::Config(format!(
                "unsupported database URL `{}`; use sqlite://PATH or postgres://...",
                redact_url(url)
            )))
        }
    }
}

/// A pooled connection to Velu's database.
#[derive(Clone, Debug)]
pub struct Db {
    conn: DatabaseConnection,
    backend: Backend,
    /// PostgreSQL: do the pool's connections run as [`rls::APP_ROLE`]? (Always true on
    /// SQLite, which has no roles.)
    app_role: bool,
    /// PostgreSQL, running as the app role: a second pool whose sessions start with
    /// `velu.cross_org = on`, for the paths of [`CrossOrg`] (the worker's queue
    /// statements above all), so crossing orgs costs no extra statement or transaction.
    /// Only [`Db::cross_org_tx`], [`Db::cross_org_read_tx`] and
    /// [`Db::query_all_cross_org`] hand it out.
    cross: Option<DatabaseConnection>,
    /// SQLite: a pool of one connection that every write transaction of this process
    /// takes (see [`Db::write_tx`]); `None` on PostgreSQL.
    writer: Option<DatabaseConnection>,
}

/// SQLite waits this long for a competing writer (another process) before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a pooled connection may lie idle before it is checked again on its way out of
/// the pool. Under load connections are hot and never checked.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// The most connections each of a process's pools opens unless configured
/// (`--db-pool-size`): on PostgreSQL the org-scoped pool and the cross-org pool, on SQLite
/// the readers' pool (its writer is always one connection). Measured against 20 on this
/// kind of machine (docs/benchmarks.md, "Connections per pool"): the same throughput or
/// more with shorter tails, since a 2-core server runs fewer backends at once.
pub const DEFAULT_POOL_SIZE: u32 = 8;

/// The largest `--db-pool-size` accepted.
pub const MAX_POOL_SIZE: u32 = 256;

impl Db {
    /// Connects to `url` with pools of [`DEFAULT_POOL_SIZE`]. SQLite files are created on
    /// first use, in WAL mode with a busy timeout so `serve`, workers and the CLI can share
    /// one file.
    pub async fn connect(url: &str) -> CoreResult<Db> {
        Db::connect_with(url, DEFAULT_POOL_SIZE).await
    }

    /// Connects to `url` with pools of at most `pool_size` connections each (clamped to
    /// 1..=[`MAX_POOL_SIZE`]; `Settings::with_db_pool_size` refuses anything else first).
    pub async fn connect_with(url: &str, pool_size: u32) -> CoreResult<Db> {
        let pool_size = pool_size.clamp(1, MAX_POOL_SIZE);
        let backend = Backend::from_url(url)?;
        let mut opts = ConnectOptions::new(url.to_owned());
        opts.sqlx_logging(false)
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(15))
            // A connection is checked (a ping: a round trip to PostgreSQL, a hand-off to
            // SQLite's connection thread) only when it comes out of the pool after lying
            // idle, where a server restart or a proxy may have dropped it; a hot one goes
            // straight to its statement. The pool's default pings on every checkout.
            .test_before_acquire_if_idle_for(PING_AFTER_IDLE);
        match backend {
            Backend::Sqlite => {
                opts.max_connections(pool_size)
                    .map_sqlx_sqlite_opts(|o| {
                        o.journal_mode(SqliteJournalMode::Wal)
                            .synchronous(SqliteSynchronous::Normal)
                            .busy_timeout(SQLITE_BUSY_TIMEOUT)
                            .foreign_keys(true)
                            // Statement journals and temporary B-trees in memory: without it a
                            // burn-down created and unlinked a temporary file every few dozen jobs.
                            .pragma("temp_store", "memory")
                            .create_if_missing(true)
                    })
                    // Another process's write lock is polled every millisecond at most, not
                    // with SQLite's back-off of up to 100 ms (`sqlite_busy.rs`).
                    .map_sqlx_sqlite_pool_opts(|pool| {
                        pool.after_connect(|conn, _| {
                            Box::pin(sqlite_busy::install(conn, SQLITE_BUSY_TIMEOUT))
                        })
                    });
            }
            Backend::Postgres => {
                opts.max_connections(pool_size).min_connections(0);
            }
        }
        let mut app_role = true;
        let mut cross = None;
        let unreachable = |e: sea_orm::DbErr| unreachable_at(url, &e);
        if backend == Backend::Postgres {
            let checked = preflight_postgres(url).await?;
            app_role = checked.app_role;
            // Plain text to a server on this host, unless the URL or PGSSLMODE names a TLS
            // setting (`transport.rs`). Each `map_sqlx_postgres_opts` replaces the one
            // before, so each applies it.
            let plain = checked.plain;
            opts.map_sqlx_postgres_opts(move |o| transport::apply(o, plain));
            if app_role {
                // The cross-org pool: the same role, with the setting the policies read
                // for crossing orgs set for the whole session (startup parameters).
                let mut cross_opts = opts.clone();
                cross_opts.map_sqlx_postgres_opts(move |o| {
                    transport::apply(o, plain)
                        .options([("role", rls::APP_ROLE), ("velu.cross_org", "on")])
                });
                cross = Some(Database::connect(cross_opts).await.map_err(unreachable)?);
                // Every pooled connection runs as the ordinary role the row-level security
                // policies hold (a startup parameter: no extra statement).
                opts.map_sqlx_postgres_opts(move |o| {
                    transport::apply(o, plain).options([("role", rls::APP_ROLE)])
                });
            }
        }
        let writer = match backend {
            Backend::Sqlite => {
                let mut writer_opts = opts.clone();
                writer_opts.max_connections(1).min_connections(0);
                Some(Database::connect(writer_opts).await.map_err(unreachable)?)
            }
            Backend::Postgres => None,
        };
        let conn = Database::connect(opts).await.map_err(unreachable)?;
        Ok(Db {
            conn,
            backend,
            app_role,
            cross,
            writer,
        })
    }

    /// PostgreSQL: do this pool's connections run as [`rls::APP_ROLE`], under row-level
    /// security? False only before `migrate up` created the role (then the schema is
    /// behind and Velu refuses to run, or reconnects once it has migrated).
    pub fn runs_as_app_role(&self) -> bool {
        self.app_role
    }

    /// The sea-orm connection, for queries.
    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// What to do about pending migrations when the caller does not say: apply them on
    /// SQLite (one machine, nothing to coordinate), require them applied on PostgreSQL.
    pub fn default_schema_policy(&self) -> SchemaPolicy {
        match self.backend {
            Backend::Sqlite => SchemaPolicy::Apply,
            Backend::Postgres => SchemaPolicy::Require,
        }
    }

    /// Starts a transaction that will write. On SQLite it runs on the process's one
    /// writer connection and takes the write lock at `BEGIN` (`IMMEDIATE`), so it waits
    /// for other writers instead of failing when it upgrades.
    ///
    /// SQLite has one writer at a time per file, and a connection that finds the write
    /// lock taken does not queue: its busy handler sleeps and retries (SQLite's own slept
    /// 1 ms, then 2, 5, 10 ms and longer, where a write of the queue holds the lock for
    /// well under a millisecond: about a thousand such sleeps per 20,000 jobs of a
    /// burn-down). Writers of this process wait instead for the writer connection, first
    /// come first served and woken when it is free; the busy handler is left for other
    /// processes' writers (`serve` and a worker sharing the file), and polls every
    /// millisecond at most (`sqlite_busy.rs`). One connection also keeps its page cache
    /// across write transactions: in WAL mode a connection discards its whole cache when
    /// another connection has committed since its last transaction, and with writes
    /// spread over the pool nearly every write started cold (docs/benchmarks-log.md).
    pub async fn write_tx(&self) -> CoreResult<DatabaseTransaction> {
        let Some(writer) = &self.writer else {
            return Ok(self.conn.begin().await?);
        };
        let opts = TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        Ok(writer.begin_with_options(opts).await?)
    }

    /// Starts a transaction that reads only (on SQLite a deferred one, so it takes no write
    /// lock). Org-scoped reads run in one, bound to the org by the tenancy floor.
    pub async fn read_tx(&self) -> CoreResult<DatabaseTransaction> {
        Ok(self.conn.begin().await?)
    }

    /// Starts a write transaction that may see and write every org's rows, for path
    /// `why` (see [`rls::cross_org`]).
    pub async fn cross_org_tx(&self, why: CrossOrg) -> CoreResult<DatabaseTransaction> {
        if let Some(cross) = &self.cross {
            tracing::trace!(path = why.as_str(), "cross-org transaction");
            return Ok(cross.begin().await?);
        }
        let tx = self.write_tx().await?;
        rls::cross_org(&tx, why).await?;
        Ok(tx)
    }

    /// Starts a read-only transaction that may see every org's rows, for path `why`.
    pub async fn cross_org_read_tx(&self, why: CrossOrg) -> CoreResult<DatabaseTransaction> {
        if let Some(cross) = &self.cross {
            tracing::trace!(path = why.as_str(), "cross-org transaction");
            return Ok(cross.begin().await?);
        }
        let tx = self.read_tx().await?;
        rls::cross_org(&tx, why).await?;
        Ok(tx)
    }

    /// Runs a trivial query: is the database reachable?
    pub async fn ping(&self) -> CoreResult<()> {
        self.conn
            .execute_unprepared("SELECT 1")
            .await
            .map(|_| ())
            .map_err(|e| {
                CoreError::Unavailable(format!("database: {}", first_line(&e.to_string())))
            })
    }

    /// The sea-orm backend enum, for raw statements.
    pub fn db_backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    /// Closes the pool.
    pub async fn close(self) {
        if let Some(cross) = self.cross {
            let _ = cross.close().await;
        }
        if let Some(writer) = self.writer {
            let _ = writer.close().await;
        }
        let _ = self.conn.close().await;
    }
}

/// What [`preflight_postgres`] found.
struct Preflight {
    /// May the connecting user run as [`rls::APP_ROLE`]?
    app_role: bool,
    /// Do the pools connect in plain text (`transport.rs`: a loopback URL naming no TLS
    /// setting, a server on this host, and a plain connection accepted)?
    plain: bool,
}

/// One direct connection attempt in the URL's own mode, so an unreachable server is
/// reported at once and with its cause (the pool would retry quietly until its acquire
/// timeout). Answers whether the connecting user may run as [`rls::APP_ROLE`], and whether
/// the pools may connect in plain text: then a second, plain attempt must be accepted.
async fn preflight_postgres(url: &str) -> CoreResult<Preflight> {
    use sea_orm::sqlx::postgres::PgConnectOptions;
    let options: PgConnectOptions = url.parse().map_err(|e| unreachable_at(url, &e))?;
    let mut conn = connect_once(url, options.clone()).await?;
    let ready = rls::app_role_ready(&mut conn).await;
    let local = transport::may_go_plain_here(url) && {
        let addr: Result<Option<String>, _> =
            sea_orm::sqlx::query_scalar("SELECT host(inet_server_addr())")
                .fetch_one(&mut conn)
                .await;
        transport::server_address_is_loopback(addr.ok().flatten().as_deref())
    };
    let _ = sea_orm::sqlx::Connection::close(conn).await;
    let app_role = ready?;
    let plain = local
        && match connect_once(url, transport::apply(options, true)).await {
            Ok(conn) => {
                let _ = sea_orm::sqlx::Connection::close(conn).await;
                true
            }
            Err(e) => {
                tracing::info!(error = %e, "PostgreSQL on this host refused a plain-text connection; keeping TLS");
                false
            }
        };
    Ok(Preflight { app_role, plain })
}

/// One connection with `options`, within 5 s, its failure an `unavailable` naming `url`
/// (its password redacted).
async fn connect_once(
    url: &str,
    options: sea_orm::sqlx::postgres::PgConnectOptions,
) -> CoreResult<sea_orm::sqlx::PgConnection> {
    use sea_orm::sqlx::ConnectOptions as _;
    match tokio::time::timeout(Duration::from_secs(5), options.connect()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(unreachable_at(url, &e)),
        Err(_) => Err(CoreError::Unavailable(format!(
            "cannot connect to the database at {}: no answer within 5 s",
            redact_url(url)
        ))),
    }
}

fn unreachable_at(url: &str, e: &dyn std::fmt::Display) -> CoreError {
    CoreError::Unavailable(format!(
        "cannot connect to the database at {}: {}",
        redact_url(url),
        first_line(&e.to_string())
    ))
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}
