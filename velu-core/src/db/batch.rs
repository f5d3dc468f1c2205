//! Batch inserts of jobs: one statement and one JSON parameter per chunk of rows (the cost
//! of binding a score of columns per row is what dominates a naive multi-row `INSERT`).

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use serde::Serialize;

use super::sql::{JsonField, json_param, json_records, json_time, stmt};
use crate::CoreResult;

/// Rows per `INSERT` statement.
const INSERT_CHUNK: usize = 5_000;

/// What every row of a batch shares: the org, the status, the actor and the time.
pub(crate) struct Stamp<'a> {
    /// The org.
    pub org_id: &'a str,
    /// The stored status of a new job.
    pub status: &'a str,
    /// `cli` or `api_key`.
    pub actor_type: &'a str,
    /// The actor's id.
    pub actor_id: &'a str,
    /// `created_at` and `updated_at`.
    pub at: DateTime<Utc>,
}

/// One new job of a batch: the fields that differ from row to row.
#[derive(Serialize)]
pub(crate) struct NewJobRow {
    pub id: String,
    pub task: String,
    pub payload: serde_json::Value,
    pub priority: i32,
    pub max_attempts: i32,
    #[serde(serialize_with = "as_json_time")]
    pub run_at: DateTime<Utc>,
}

fn as_json_time<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&json_time(*t))
}

/// The fields of a [`NewJobRow`], in the column order of the `INSERT`.
const FIELDS: [(&str, JsonField); 6] = [
    ("id", JsonField::Text),
    ("task", JsonField::Text),
    ("payload", JsonField::Json),
    ("priority", JsonField::Int),
    ("max_attempts", JsonField::Int),
    ("run_at", JsonField::Time),
];

/// Inserts `rows` with `stamp`, in chunks, inside the caller's transaction.
pub(crate) async fn insert_jobs<C: ConnectionTrait>(
    conn: &C,
    stamp: &Stamp<'_>,
    rows: &[NewJobRow],
) -> CoreResult<()> {
    let backend = conn.get_database_backend();
    let source = json_records(backend, 1, &FIELDS);
    let sql = format!(
        "INSERT INTO jobs (id, task, payload, priority, max_attempts, run_at, org_id, status,
           attempts, actor_type, actor_id, cancel_requested, created_at, updated_at)
         SELECT s.*, $2, $3, 0, $4, $5, false, $6, $6 FROM ({source}) AS s"
    );
    for chunk in rows.chunks(INSERT_CHUNK) {
        conn.execute_raw(stmt(
            backend,
            &sql,
            vec![
                json_param(chunk)?,
                stamp.org_id.to_owned().into(),
                stamp.status.to_owned().into(),
                stamp.actor_type.to_owned().into(),
                stamp.actor_id.to_owned().into(),
                stamp.at.into(),
            ],
        ))
        .await?;
    }
    Ok(())
}
