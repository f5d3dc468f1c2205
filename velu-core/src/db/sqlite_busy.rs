//! How a SQLite connection waits for another process's write lock.
//!
//! `serve`, workers and the CLI share one SQLite file, and SQLite lets one connection at a
//! time write. A connection that finds the write lock taken calls its busy handler until
//! the lock is free or the handler gives up. SQLite's own handler (what `busy_timeout`
//! installs) sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50 and then 100 ms between tries,
//! while a transaction here holds the lock for a millisecond or two: under steady writes
//! from two processes (a worker's claims and finishes, `serve`'s submits) the loser slept
//! up to 25 ms at a time past the moment the lock was free, and its jobs' submit-to-start
//! p99 reached 115 to 175 ms at 750 to 1,000 submits a second (docs/benchmarks-log.md,
//! "SQLite's wait for another process's lock").
//!
//! [`install`] replaces that handler on every SQLite connection Velu opens: it tries
//! again after [`FIRST_PAUSE`], doubling up to [`LONGEST_PAUSE`], and gives up once it has
//! waited the connection's busy timeout, as SQLite's handler does. Each try is one
//! attempt at a file lock, so polling every millisecond costs the waiting process little.

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sea_orm::sqlx::SqliteConnection;

/// The pause before the second try for the lock.
pub const FIRST_PAUSE: Duration = Duration::from_micros(100);

/// The longest pause between two tries.
pub const LONGEST_PAUSE: Duration = Duration::from_millis(1);

/// Times any SQLite connection of this process found the lock taken and paused.
static WAITS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// When the current wait of this thread's connection began. sqlx runs each SQLite
    /// connection on a thread of its own, and SQLite calls the handler on the thread
    /// that runs the statement, so a thread has at most one wait at a time.
    static WAIT_BEGAN: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// How many times this process's SQLite connections paused for a lock another held.
pub fn lock_waits() -> u64 {
    WAITS.load(Ordering::Relaxed)
}

/// The pause after the `tries`-th failed try of one wait (0 for the first).
pub fn pause_after(tries: u32) -> Duration {
    FIRST_PAUSE
        .checked_mul(1u32 << tries.min(16))
        .map_or(LONGEST_PAUSE, |p| p.min(LONGEST_PAUSE))
}

/// Replaces `conn`'s busy handler with one that polls every [`LONGEST_PAUSE`] at most
/// and gives up after `timeout`.
pub async fn install(conn: &mut SqliteConnection, timeout: Duration) -> sea_orm::sqlx::Result<()> {
    // The timeout travels in the handler's argument, as milliseconds: no allocation to
    // own and free with the connection.
    let millis = usize::try_from(timeout.as_millis()).unwrap_or(usize::MAX);
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: `db` is the open connection `handle` holds locked for this call; the
    // handler is a plain function and its argument an integer, valid for as long as
    // the connection lives.
    let rc =
        unsafe { libsqlite3_sys::sqlite3_busy_handler(db, Some(on_busy), millis as *mut c_void) };
    if rc == libsqlite3_sys::SQLITE_OK {
        Ok(())
    } else {
        Err(sea_orm::sqlx::Error::Protocol(format!(
            "could not install SQLite's busy handler (code {rc})"
        )))
    }
}

/// SQLite's busy handler: `tries` is how many times it was called before in this wait.
/// Returns nonzero to try again, zero to give up (the statement then fails with
/// `SQLITE_BUSY`).
extern "C" fn on_busy(timeout_millis: *mut c_void, tries: c_int) -> c_int {
    let timeout = Duration::from_millis(timeout_millis as usize as u64);
    let tries = u32::try_from(tries).unwrap_or(0);
    let now = Instant::now();
    let began = WAIT_BEGAN.with(|cell| {
        let began = match cell.get() {
            Some(at) if tries > 0 => at,
            _ => now,
        };
        cell.set(Some(began));
        began
    });
    match next_pause(timeout, now.duration_since(began), tries) {
        Some(pause) => {
            WAITS.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(pause);
            1
        }
        None => 0,
    }
}

/// The pause before the next try of a wait that has lasted `waited` over `tries` earlier
/// calls, or `None` to give up: past `timeout`, as SQLite's own handler.
fn next_pause(timeout: Duration, waited: Duration, tries: u32) -> Option<Duration> {
    (waited < timeout).then(|| pause_after(tries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use sea_orm::ConnectionTrait;

    #[test]
    fn pauses_double_from_the_first_to_the_longest() {
        assert_eq!(pause_after(0), FIRST_PAUSE);
        assert_eq!(pause_after(1), FIRST_PAUSE * 2);
        assert_eq!(pause_after(2), FIRST_PAUSE * 4);
        assert_eq!(pause_after(3), FIRST_PAUSE * 8);
        assert_eq!(pause_after(4), LONGEST_PAUSE);
        assert_eq!(pause_after(40), LONGEST_PAUSE);
        assert_eq!(pause_after(u32::MAX), LONGEST_PAUSE);
    }

    #[test]
    fn gives_up_once_the_timeout_has_passed() {
        let timeout = Duration::from_secs(10);
        assert_eq!(next_pause(timeout, Duration::ZERO, 0), Some(FIRST_PAUSE));
        assert_eq!(
            next_pause(timeout, Duration::from_millis(9_999), 5_000),
            Some(LONGEST_PAUSE)
        );
        assert_eq!(next_pause(timeout, timeout, 9_000), None);
        assert_eq!(next_pause(Duration::ZERO, Duration::ZERO, 0), None);
    }

    /// Two handles on one file, as two processes have: the second's write waits for the
    /// first's lock through this handler (SQLite's own would leave [`lock_waits`] as it
    /// was, and give up after the busy timeout), then goes through once it is free.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_waits_for_another_handles_lock_through_this_handler() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("busy.db").display());
        let first = Db::connect(&url).await.unwrap();
        let second = Db::connect(&url).await.unwrap();
        first
            .conn()
            .execute_unprepared("CREATE TABLE t (x INTEGER)")
            .await
            .unwrap();
        let before = lock_waits();
        let held = first.write_tx().await.unwrap();
        held.execute_unprepared("INSERT INTO t VALUES (1)")
            .await
            .unwrap();
        let waiting = tokio::spawn(async move {
            let tx = second.write_tx().await?;
            tx.execute_unprepared("INSERT INTO t VALUES (2)").await?;
            tx.commit().await?;
            crate::CoreResult::Ok(second)
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        while lock_waits() == before {
            assert!(
                Instant::now() < deadline,
                "the second handle never paused in this handler"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(!waiting.is_finished(), "the write went through a held lock");
        held.commit().await.unwrap();
        let second = waiting
            .await
            .unwrap()
            .expect("the write once the lock is free");
        let rows = second
            .conn()
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Sqlite,
                "SELECT count(*) AS n FROM t",
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rows.try_get::<i64>("", "n").unwrap(), 2);
    }
}
