//! Raw SQL helpers for statements written by hand (the queue's hot path, batch inserts):
//! placeholders per backend, JSON parameters, and the few fragments that differ between
//! SQLite and PostgreSQL.

use std::sync::LazyLock;

use chrono::{DateTime, SecondsFormat, Utc};
use regex::Regex;
use sea_orm::{DbBackend, Statement, Value as DbValue};
use serde::Serialize;

use super::Backend;
use crate::{CoreError, CoreResult};

static DOLLAR_PARAM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$(\d+)").expect("a constant, valid regex"));

/// A statement for the backend: PostgreSQL takes `$n`, SQLite `?n`.
pub(crate) fn stmt(backend: DbBackend, sql: &str, values: Vec<DbValue>) -> Statement {
    let sql = match backend {
        DbBackend::Sqlite => DOLLAR_PARAM.replace_all(sql, "?$1").into_owned(),
        _ => sql.to_owned(),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// Timestamps inside JSON parameters, in the form sqlx writes for SQLite (so text
/// comparisons order correctly there) and that PostgreSQL parses.
pub(crate) fn json_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// A value serialized as a JSON text parameter. A value that cannot be serialized is an
/// `internal` error (logged): never a stand-in that would quietly write nothing.
pub(crate) fn json_param<T: Serialize + ?Sized>(v: &T) -> CoreResult<DbValue> {
    serde_json::to_string(v).map(DbValue::from).map_err(|e| {
        tracing::error!(error = %e, "cannot serialize a JSON statement parameter");
        CoreError::internal(e)
    })
}

/// `SELECT` of the elements of a JSON text array parameter `$param`.
pub(crate) fn json_array_rows(backend: Backend, param: usize) -> String {
    match backend {
        Backend::Postgres => format!("SELECT jsonb_array_elements_text(${param}::jsonb)"),
        Backend::Sqlite => format!("SELECT value FROM json_each(${param})"),
    }
}

/// The SQL type of a field of [`json_records`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonField {
    /// `text`.
    Text,
    /// A JSON document (`jsonb`).
    Json,
    /// `int`.
    Int,
    /// `timestamptz` (written with [`json_time`]).
    Time,
}

/// `SELECT` of the records of a JSON array-of-objects parameter `$param`, one column per
/// field, in order and named after it.
pub(crate) fn json_records(
    backend: DbBackend,
    param: usize,
    fields: &[(&str, JsonField)],
) -> String {
    match backend {
        DbBackend::Postgres => {
            let columns = fields
                .iter()
                .map(|(name, _)| format!("x.{name}"))
                .collect::<Vec<_>>()
                .join(", ");
            let types = fields
                .iter()
                .map(|(name, ty)| {
                    let ty = match ty {
                        JsonField::Text => "text",
                        JsonField::Json => "jsonb",
                        JsonField::Int => "int",
                        JsonField::Time => "timestamptz",
                    };
                    format!("{name} {ty}")
                })
                .collect::<Vec<_>>()
                .join(", ");
            format!("SELECT {columns} FROM jsonb_to_recordset(${param}::jsonb) AS x({types})")
        }
        _ => {
            let columns = fields
                .iter()
                .map(|(name, ty)| {
                    let op = if *ty == JsonField::Json { "->" } else { "->>" };
                    format!("value {op} '$.{name}' AS {name}")
                })
                .collect::<Vec<_>>()
                .join(", ");
            format!("SELECT {columns} FROM json_each(${param})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_placeholders_are_numbered_and_json_paths_untouched() {
        let s = stmt(
            DbBackend::Sqlite,
            "SELECT value ->> '$.id' FROM t WHERE a = $1 AND b = $12",
            vec![],
        );
        assert_eq!(
            s.sql,
            "SELECT value ->> '$.id' FROM t WHERE a = ?1 AND b = ?12"
        );
        let p = stmt(DbBackend::Postgres, "a = $1", vec![]);
        assert_eq!(p.sql, "a = $1");
    }

    #[test]
    fn json_records_per_backend() {
        let fields = [("id", JsonField::Text), ("payload", JsonField::Json)];
        assert_eq!(
            json_records(DbBackend::Postgres, 1, &fields),
            "SELECT x.id, x.payload FROM jsonb_to_recordset($1::jsonb) AS x(id text, payload jsonb)"
        );
        assert_eq!(
            json_records(DbBackend::Sqlite, 1, &fields),
            "SELECT value ->> '$.id' AS id, value -> '$.payload' AS payload FROM json_each($1)"
        );
    }

    #[test]
    fn json_param_serializes_or_fails() {
        assert_eq!(
            json_param(&["a"]).unwrap(),
            DbValue::from("[\"a\"]".to_owned())
        );
        let mut bad = std::collections::HashMap::new();
        bad.insert(vec![1u8], 1);
        assert_eq!(json_param(&bad).unwrap_err().code(), "internal");
    }
}
