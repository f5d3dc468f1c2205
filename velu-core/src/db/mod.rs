//! The database handle: one pool, SQLite or PostgreSQL, and the few places where the two
//! backends differ (write transactions, wake-up notifications).

pub(crate) mod batch;
mod migrate;
pub mod notify;
pub(crate) mod sql;

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

pub use migrate::{MigrationState, MigrationStatus, SchemaPolicy};

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
}

/// SQLite waits this long for a competing writer (another process) before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

impl Db {
    /// Connects to `url`. SQLite files are created on first use, in WAL mode with a busy
    /// timeout so `serve`, workers and the CLI can share one file.
    pub async fn connect(url: &str) -> CoreResult<Db> {
        let backend = Backend::from_url(url)?;
        let mut opts = ConnectOptions::new(url.to_owned());
        opts.sqlx_logging(false)
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(15));
        match backend {
            Backend::Sqlite => {
                opts.max_connections(8).map_sqlx_sqlite_opts(|o| {
                    o.journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Normal)
                        .busy_timeout(SQLITE_BUSY_TIMEOUT)
                        .foreign_keys(true)
                        .create_if_missing(true)
                });
            }
            Backend::Postgres => {
                opts.max_connections(20).min_connections(0);
            }
        }
        if backend == Backend::Postgres {
            preflight_postgres(url).await?;
        }
        let conn = Database::connect(opts).await.map_err(|e| {
            CoreError::Unavailable(format!(
                "cannot connect to {}: {}",
                redact_url(url),
                first_line(&e.to_string())
            ))
        })?;
        Ok(Db { conn, backend })
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

    /// Starts a transaction that will write. On SQLite it takes the write lock at `BEGIN`
    /// (`IMMEDIATE`), so it waits for other writers instead of failing when it upgrades.
    pub async fn write_tx(&self) -> CoreResult<DatabaseTransaction> {
        let opts = match self.backend {
            Backend::Sqlite => TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            },
            Backend::Postgres => TransactionOptions::default(),
        };
        Ok(self.conn.begin_with_options(opts).await?)
    }

    /// Runs a trivial query: is the database reachable?
    pub async fn ping(&self) -> CoreResult<()> {
        self.conn
            .execute_unprepared("SELECT 1")
            .await
            .map(|_| ())
            .map_err(|e| CoreError::Unavailable(first_line(&e.to_string()).to_owned()))
    }

    /// The sea-orm backend enum, for raw statements.
    pub fn db_backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    /// Closes the pool.
    pub async fn close(self) {
        let _ = self.conn.close().await;
    }
}

/// One direct connection attempt, so an unreachable server is reported at once and with
/// its cause (the pool would retry quietly until its acquire timeout).
async fn preflight_postgres(url: &str) -> CoreResult<()> {
    use sea_orm::sqlx::Connection;
    let attempt = sea_orm::sqlx::PgConnection::connect(url);
    match tokio::time::timeout(Duration::from_secs(5), attempt).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(CoreError::Unavailable(format!(
            "cannot connect to {}: {}",
            redact_url(url),
            first_line(&e.to_string())
        ))),
        Err(_) => Err(CoreError::Unavailable(format!(
            "cannot connect to {}: no answer within 5 s",
            redact_url(url)
        ))),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}
