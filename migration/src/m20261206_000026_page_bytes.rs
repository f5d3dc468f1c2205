//! A job list page bounded by bytes as well as by count, on PostgreSQL.
//!
//! A page held up to 200 jobs, read whole: on a plan whose payloads reach 1 MiB (and
//! results as much), one request could read, parse and send hundreds of megabytes. Each
//! page now also stops at a byte budget of stored documents (payload, result and error),
//! which velu-core passes in (`velu_core::pagination::MAX_PAGE_BYTES`): a row is on the
//! page when the rows before it hold less than the budget, so a page always has its
//! first row and ends after the row that reaches the budget.
//!
//! The sizes are read without reading the documents: `pg_column_size` answers from a
//! value's header (or its TOAST pointer). It gives the stored size, which for a
//! compressed value can be far below what the value expands to, so this step also stores
//! these columns uncompressed (`STORAGE EXTERNAL`, still moved out of line when large):
//! a stored size is then the size read. Values written before this step keep the
//! compression they had. SQLite's `octet_length` of a text likewise reads only its
//! header; velu-core writes that statement itself.
//!
//! `velu_list_jobs` gains the budget and answers, with each row (the columns of `jobs`),
//! how many rows its scan saw (`listed_seen`, at most the limit asked): fewer rows than that means the budget
//! cut the page and another follows. A first scan reads only sizes, off the index of its
//! filters, and counts the rows the budget keeps; the second reads that many whole, as
//! the page did before. (A window over the page's rows with a join back by id read
//! them once, but cost a fifth of a list's throughput, docs/benchmarks-log.md.)

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::m20261204_000022_read_functions::{list_branches, list_function};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The columns whose stored size a page counts, by table.
const SIZED: [(&str, &str); 4] = [
    ("jobs", "payload"),
    ("jobs", "result"),
    ("jobs", "error"),
    ("schedules", "payload"),
];

/// `velu_list_jobs(column, org, visible_to, status, task, before, limit, budget)`: a page
/// of the org's jobs newest first, as m20261204_000022's, cut at `budget` bytes; one
/// branch per combination of filters, so each keeps the plan of its index. It answers
/// the columns of `jobs` (`columns`: name and type, in order, as the catalog has them
/// when this runs) and `listed_seen`: plain columns, not a `jobs` row with a count beside
/// it, whose fields the caller would have to take apart again (a page of 50 read 0.77
/// times as fast as the plain rows that way). A migration that adds a column to `jobs`
/// must create this function again, `STABLE` (m20261206_000028).
fn budgeted_list_function(columns: &[(String, String)]) -> String {
    let returns: Vec<String> = columns
        .iter()
        .map(|(name, kind)| format!("{name} {kind}"))
        .collect();
    let selected: Vec<String> = columns
        .iter()
        .map(|(name, _)| format!("j.{name}"))
        .collect();
    let selected = selected.join(", ");
    let branches: Vec<String> = list_branches()
        .into_iter()
        .map(|(test, filter)| {
            format!(
                "IF {test} THEN
        SELECT count(*), count(*) FILTER (WHERE w.through - w.size < p_budget)
        INTO v_seen, v_keep
        FROM (SELECT s.size,
                     sum(s.size) OVER (ORDER BY s.id DESC ROWS UNBOUNDED PRECEDING) AS through
              FROM (SELECT j.id,
                           pg_column_size(j.payload)::bigint
                           + COALESCE(pg_column_size(j.result), 0)
                           + COALESCE(pg_column_size(j.error), 0) AS size
                    FROM jobs j WHERE {filter}
                    ORDER BY j.id DESC LIMIT p_limit) s) w;
        RETURN QUERY SELECT {selected}, v_seen FROM jobs j WHERE {filter}
            ORDER BY j.id DESC LIMIT v_keep;
        RETURN;
    END IF;"
            )
        })
        .collect();
    format!(
        r#"
CREATE FUNCTION velu_list_jobs(
    p_column text, p_org text, p_visible_to text,
    p_status text, p_task text, p_before text, p_limit bigint, p_budget bigint
) RETURNS TABLE ({}, listed_seen bigint)
LANGUAGE plpgsql SET enable_sort = off SET jit = off AS $$
#variable_conflict use_column
DECLARE
    v_org text := velu_enter_org(p_column, p_org, p_visible_to);
    v_seen bigint;
    v_keep bigint;
BEGIN
    IF v_org IS NULL THEN
        RETURN;
    END IF;
    {}
END $$;
"#,
        returns.join(", "),
        branches.join("\n    ")
    )
}

/// The columns of table `jobs`, in order: quoted name and type.
async fn job_columns(manager: &SchemaManager<'_>) -> Result<Vec<(String, String)>, DbErr> {
    let rows = manager
        .get_connection()
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT quote_ident(attname) AS name, format_type(atttypid, atttypmod) AS kind
             FROM pg_attribute
             WHERE attrelid = 'jobs'::regclass AND attnum > 0 AND NOT attisdropped
             ORDER BY attnum",
        ))
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("", "name")?, r.try_get("", "kind")?)))
        .collect()
}

/// `ALTER TABLE ... SET STORAGE` of every sized column.
fn storage(kind: &str) -> String {
    SIZED
        .iter()
        .map(|(table, column)| {
            format!("ALTER TABLE {table} ALTER COLUMN {column} SET STORAGE {kind};\n")
        })
        .collect()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        crate::exec(manager, &storage("EXTERNAL")).await?;
        crate::exec(
            manager,
            "DROP FUNCTION velu_list_jobs(text, text, text, text, text, text, bigint)",
        )
        .await?;
        let columns = job_columns(manager).await?;
        crate::exec(manager, &budgeted_list_function(&columns)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        crate::exec(
            manager,
            "DROP FUNCTION IF EXISTS velu_list_jobs(text, text, text, text, text, text, bigint, bigint)",
        )
        .await?;
        crate::exec(manager, &list_function()).await?;
        crate::exec(manager, &storage("EXTENDED")).await
    }
}
