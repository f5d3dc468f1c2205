//! `cargo run -p migration -- up|down|status|fresh|refresh|reset`.
//!
//! Takes the database from `-u URL`, `DATABASE_URL`, or else `VELU_DATABASE_URL`.
//! `velu-cli migrate` is the operator's way: it knows Velu's default SQLite location.

use sea_orm_migration::prelude::*;

#[tokio::main]
async fn main() {
    if std::env::var_os("DATABASE_URL").is_none()
        && let Some(url) = std::env::var_os("VELU_DATABASE_URL")
    {
        // SAFETY: single-threaded at this point; nothing else reads the environment yet.
        unsafe { std::env::set_var("DATABASE_URL", url) };
    }
    cli::run_cli(migration::Migrator).await;
}
