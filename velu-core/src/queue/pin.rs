//! Plans that hold on SQLite whatever its statistics say.
//!
//! Velu never runs `ANALYZE` on SQLite, but an operator may (or `PRAGMA optimize`), and
//! statistics taken over a history of finished jobs describe the queue's partial indexes
//! as empty. With them, SQLite's planner made the finish walk every running job for each
//! outcome (the running jobs' index as the outer loop, the batch of outcomes inside)
//! instead of looking each outcome's job up by primary key: a burn-down over a million
//! finished analyzed jobs ran at 0.42x of an empty database (docs/benchmarks-log.md). The
//! finish therefore keeps the lease token and the status from steering its plan (unary
//! `+`), and the claim loop's reads of `jobs` name their index (`INDEXED BY`, which fails
//! to prepare rather than fall back to a scan if the index can no longer serve): the
//! bundled SQLite kept those plans with the same statistics, Debian's SQLite 3.40 turned
//! the ready scan's "has a job it may run" into a scan of the whole table. PostgreSQL's
//! planner keeps these plans with statistics (checked with `ANALYZE` over the same
//! history); it gets nothing.

use crate::db::Backend;

/// The queued jobs in claim order (`ix_jobs_claim`, partial on `status = 'queued'`).
pub(super) fn claim_index(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => " INDEXED BY ix_jobs_claim",
        Backend::Postgres => "",
    }
}

/// The running jobs by org (`ix_jobs_running_org`, partial on `status = 'running'`).
pub(super) fn running_index(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => " INDEXED BY ix_jobs_running_org",
        Backend::Postgres => "",
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};

    use crate::db::Db;

    /// A migrated SQLite database holding `finished` finished jobs of one org and no other
    /// job, analyzed: the statistics that misled the planner.
    async fn analyzed_history(finished: u32) -> (Db, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "velu-pin-{}-{}",
            std::process::id(),
            crate::ids::new_id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("velu.db").display());
        let db = Db::connect(&url).await.unwrap();
        db.migrate_up().await.unwrap();
        let conn = db.conn();
        for sql in [
            "INSERT INTO organizations (id, name, slug, plan, created_at, updated_at)
             VALUES ('org', 'Org', 'org', 'superhero', '2026-01-01', '2026-01-01')"
                .to_owned(),
            format!(
                "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {finished})
                 INSERT INTO jobs (id, org_id, task, status, payload, priority, attempts,
                   max_attempts, run_at, actor_type, actor_id, cancel_requested, created_at,
                   updated_at, finished_at)
                 SELECT printf('00000000-0000-7000-8000-%012d', n), 'org', 'echo', 'succeeded',
                   '{{}}', 0, 1, 3, '2026-01-01', 'key', 'k', 0, '2026-01-01', '2026-01-01',
                   '2026-01-01'
                 FROM g"
            ),
            "ANALYZE".to_owned(),
        ] {
            conn.execute_unprepared(&sql).await.unwrap();
        }
        (db, dir)
    }

    /// The names the queue's statements give `jobs`.
    const JOBS: [&str; 4] = ["jobs", "j", "k", "r"];

    /// The lines of `sql`'s plan that read the whole of `jobs` or one of its indexes.
    async fn scans(db: &Db, sql: &str) -> Vec<String> {
        let rows = db
            .conn()
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                format!("EXPLAIN QUERY PLAN {sql}"),
            ))
            .await
            .unwrap_or_else(|e| panic!("{e}: {sql}"));
        rows.iter()
            .map(|r| r.try_get::<String>("", "detail").unwrap())
            .filter(|d| {
                let mut words = d.split_whitespace();
                words.next() == Some("SCAN") && words.next().is_some_and(|t| JOBS.contains(&t))
            })
            .collect()
    }

    #[tokio::test]
    async fn queue_statements_never_scan_jobs_after_analyze() {
        let (db, dir) = analyzed_history(20_000).await;
        let mut bad = Vec::new();
        for (name, sql) in super::super::sqlite_statements() {
            let found = scans(&db, &sql).await;
            if !found.is_empty() {
                bad.push(format!("{name}: {found:?}"));
            }
        }
        assert!(bad.is_empty(), "plans that read all of `jobs`: {bad:#?}");
        db.close().await;
        std::fs::remove_dir_all(dir).ok();
    }
}
