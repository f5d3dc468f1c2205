//! SQLite has no notifications: a process learns that another one committed by reading
//! `PRAGMA data_version` on a connection of its own, which changes whenever any other
//! connection (another process, or another connection of this pool) has committed since
//! the last read. The watcher reads it every [`WATCH_EVERY`] and reports each change, so
//! a worker idle on SQLite claims a job submitted by `serve` within milliseconds instead
//! of its next poll (PostgreSQL has `LISTEN`/`NOTIFY` for this: `notify.rs`).
//!
//! The read is of the WAL index in shared memory: no disk I/O, no lock that a writer
//! waits for. A change says only "something was committed"; the handler decides what
//! to look at again.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::{self, ConnectOptions, Connection};

use super::{Backend, Db};

/// How often the watcher reads `data_version`.
pub const WATCH_EVERY: Duration = Duration::from_millis(10);

/// Called after a commit by another connection was seen.
pub type CommitHandler = Arc<dyn Fn() + Send + Sync>;

/// Starts the watcher for an SQLite database (`None` on PostgreSQL). It holds one
/// connection of its own, outside the pool, and reconnects after a failure.
pub fn spawn_commit_watcher(
    db: &Db,
    on_commit: CommitHandler,
) -> Option<tokio::task::JoinHandle<()>> {
    if db.backend() != Backend::Sqlite {
        return None;
    }
    let opts = (*db.conn().get_sqlite_connection_pool().connect_options()).clone();
    Some(tokio::spawn(async move {
        loop {
            match opts.connect().await {
                Ok(mut conn) => {
                    let e = watch(&mut conn, &on_commit).await;
                    tracing::warn!(error = %e, "SQLite commit watcher failed; reconnecting");
                    let _ = conn.close().await;
                }
                Err(e) => tracing::warn!(error = %e, "SQLite commit watcher cannot connect"),
            }
            // Whatever happened meanwhile was not seen: report it.
            on_commit();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }))
}

/// Reads `data_version` until a read fails; calls `on_commit` when it changed.
async fn watch(conn: &mut sqlx::SqliteConnection, on_commit: &CommitHandler) -> sqlx::Error {
    let mut tick = tokio::time::interval(WATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<i64> = None;
    loop {
        tick.tick().await;
        match sqlx::query_scalar::<_, i64>("PRAGMA data_version")
            .fetch_one(&mut *conn)
            .await
        {
            Ok(v) => {
                if last.is_some_and(|l| l != v) {
                    on_commit();
                }
                last = Some(v);
            }
            Err(e) => return e,
        }
    }
}
