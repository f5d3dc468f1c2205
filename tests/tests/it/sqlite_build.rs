//! How the bundled SQLite is built (`.cargo/config.toml`):
//! - with the query planner stability guarantee on, so a statement's plan never depends
//!   on its bound values and a new binding never makes SQLite parse and plan the
//!   statement again. Without it, every statement with a bound `LIMIT` (sea-orm binds
//!   every limit, `.one()` included) was prepared anew on each execution
//!   (docs/benchmarks-log.md, "SQLite re-prepared every page");
//! - without SQLite's process-wide locks on memory: each connection keeps a page cache of
//!   its own (no `ENABLE_MEMORY_MANAGEMENT`, which shares one cache behind one mutex) and
//!   allocations are not counted under a mutex (`DEFAULT_MEMSTATUS=0`)
//!   (docs/benchmarks-log.md, "SQLite without its global locks").

use velu_core::sea_orm::{ConnectionTrait, DbBackend, Statement};
use velu_tests::{Backend, TestEnv};

#[tokio::test]
async fn the_bundled_sqlite_keeps_plans_whatever_the_bound_values() {
    let options = compile_options().await;
    assert!(
        options.iter().any(|o| o == "ENABLE_QPSG"),
        "SQLite built without SQLITE_ENABLE_QPSG (LIBSQLITE3_FLAGS in .cargo/config.toml): {options:?}"
    );
}

#[tokio::test]
async fn the_bundled_sqlite_takes_no_process_wide_lock_for_memory() {
    let options = compile_options().await;
    assert!(
        !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
        "SQLite built with one page cache shared behind a mutex \
         (LIBSQLITE3_FLAGS in .cargo/config.toml): {options:?}"
    );
    assert!(
        options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
        "SQLite built counting allocations under a mutex \
         (LIBSQLITE3_FLAGS in .cargo/config.toml): {options:?}"
    );
}

/// The options the bundled SQLite was compiled with (`PRAGMA compile_options`), read
/// through a fresh Velu on SQLite.
async fn compile_options() -> Vec<String> {
    let env = TestEnv::start(Backend::Sqlite)
        .await
        .expect("SQLite always runs");
    let rows = env
        .velu()
        .db()
        .conn()
        .query_all_raw(Statement::from_string(
            DbBackend::Sqlite,
            "PRAGMA compile_options",
        ))
        .await
        .expect("compile options");
    rows.iter()
        .map(|r| r.try_get_by_index::<String>(0).expect("an option"))
        .collect()
}
