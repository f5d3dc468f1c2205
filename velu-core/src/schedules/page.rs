//! A page of an org's schedules, oldest first, cut at [`MAX_PAGE_BYTES`] of stored
//! payloads (see `pagination`): a schedule's payload may be as large as its plan allows a
//! job's (1 MiB on superhero), so 200 of them would be 200 MiB read for one request.
//!
//! The scan reads ids and payload sizes only (`octet_length` on SQLite, `pg_column_size`
//! on PostgreSQL, where migration m20261206_000026 stores the payload uncompressed so the
//! stored size is the size read); the schedules on the page are then read whole.

use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};

use crate::CoreResult;
use crate::entity::schedules;
use crate::pagination::{MAX_PAGE_BYTES, PageQuery};

/// Up to `fetch` of org `org_id`'s schedules after id `after`, cut at the byte budget,
/// and how many rows the scan saw (for `PageQuery::finish_seen`). Runs in a transaction
/// already entered into the org.
pub(super) async fn read<C: ConnectionTrait>(
    conn: &C,
    org_id: &str,
    after: Option<&str>,
    fetch: u64,
) -> CoreResult<(Vec<schedules::Model>, u64)> {
    let backend = conn.get_database_backend();
    let (size, placeholder): (&str, fn(usize) -> String) = match backend {
        DbBackend::Sqlite => ("octet_length", |_| "?".to_owned()),
        _ => ("pg_column_size", |n| format!("${n}")),
    };
    let mut values: Vec<Value> = vec![org_id.into()];
    let mut filter = format!("x.org_id = {}", placeholder(1));
    if let Some(after) = after {
        values.push(after.into());
        filter.push_str(&format!(" AND x.id > {}", placeholder(values.len())));
    }
    values.push(i64::try_from(fetch).unwrap_or(i64::MAX).into());
    let limit = placeholder(values.len());
    values.push(MAX_PAGE_BYTES.into());
    let budget = placeholder(values.len());
    let sql = format!(
        "SELECT sc.*, w.seen AS listed_seen FROM ( \
           SELECT s.id, s.size, \
                  CAST(sum(s.size) OVER (ORDER BY s.id ROWS UNBOUNDED PRECEDING) AS BIGINT) AS through, \
                  count(*) OVER () AS seen \
           FROM (SELECT x.id AS id, CAST({size}(x.payload) AS BIGINT) AS size \
                 FROM schedules x WHERE {filter} ORDER BY x.id LIMIT {limit}) s \
         ) w JOIN schedules sc ON sc.id = w.id \
         WHERE w.through - w.size < {budget} ORDER BY w.id"
    );
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    PageQuery::rows_and_seen(&rows)
}
