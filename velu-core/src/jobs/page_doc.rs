//! A SQLite job page's rows as one JSON document each.
//!
//! sqlx copies every value of a SQLite row out of the statement (`sqlite3_value_dup`, an
//! allocation or two per column, in the connection's thread) and sea-orm then finds each
//! column by name: a page of 21 rows of 22 columns cost about 900 allocations, freed on
//! another thread, and glibc's allocator and its locks took more of SQLite's threads
//! than the query itself (docs/benchmarks-log.md, "A SQLite page as one document per
//! row"). A page's rows are therefore read as one text column each, [`SQLITE_JOB_DOC`]
//! (the fields a [`Job`] shows, the stored values as they are: the documents as their
//! stored text, the times as their stored text), and [`job_of_doc`] makes the job of it.
//!
//! The conversions are those of the row path (`Job::from_model` over sqlx's decoding),
//! for the values Velu stores: the payload, result and error parsed from their stored
//! text by serde_json, as sqlx's `Json` does; times in RFC 3339, the form sqlx writes
//! and the first it reads; `cancel_requested` an integer, true unless 0. Anything else
//! (a time in another of the forms sqlx accepts, a value of another type) makes
//! [`job_of_doc`] answer `None`, and the page is read again as rows, so every row reads
//! exactly as before whatever is stored.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::{Job, JobError, JobStatus};
use crate::time::Timestamp;

/// SQLite: a job row of `j` as one JSON object of the stored values a [`Job`] shows.
/// Text values (the JSON documents among them) are JSON strings, integers numbers, nulls
/// null.
pub(super) const SQLITE_JOB_DOC: &str = "json_object(\
    'id', j.id, 'org_id', j.org_id, 'task', j.task, 'status', j.status, \
    'payload', j.payload, 'result', j.result, 'error', j.error, \
    'priority', j.priority, 'attempts', j.attempts, 'max_attempts', j.max_attempts, \
    'run_at', j.run_at, 'actor_type', j.actor_type, 'actor_id', j.actor_id, \
    'idempotency_key', j.idempotency_key, 'cancel_requested', j.cancel_requested, \
    'created_at', j.created_at, 'updated_at', j.updated_at, \
    'started_at', j.started_at, 'finished_at', j.finished_at)";

/// The stored values of [`SQLITE_JOB_DOC`], which names every field (`null` for a null);
/// a field it does not name is a document this code did not write.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobDoc {
    id: String,
    org_id: String,
    task: String,
    status: String,
    payload: String,
    result: Option<String>,
    error: Option<String>,
    priority: i32,
    attempts: i32,
    max_attempts: i32,
    run_at: String,
    actor_type: String,
    actor_id: String,
    idempotency_key: Option<String>,
    cancel_requested: i64,
    created_at: String,
    updated_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
}

/// The job of one [`SQLITE_JOB_DOC`] document; `None` when a value is not in the form
/// the row path would read the same way (see the module): the caller reads the rows.
pub(super) fn job_of_doc(text: &str) -> Option<Job> {
    let d: JobDoc = serde_json::from_str(text).ok()?;
    let document = |t: &str| serde_json::from_str::<Value>(t).ok();
    let error = match d.error {
        Some(t) => Some(serde_json::from_value::<JobError>(document(&t)?).ok()?),
        None => None,
    };
    Some(Job {
        status: JobStatus::parse(&d.status)?,
        payload: document(&d.payload)?,
        result: match d.result {
            Some(t) => Some(document(&t)?),
            None => None,
        },
        error,
        priority: d.priority,
        attempts: d.attempts,
        max_attempts: d.max_attempts,
        run_at: time(&d.run_at)?,
        id: d.id,
        org_id: d.org_id,
        task: d.task,
        actor_type: d.actor_type,
        actor_id: d.actor_id,
        idempotency_key: d.idempotency_key,
        cancel_requested: d.cancel_requested != 0,
        created_at: time(&d.created_at)?,
        updated_at: time(&d.updated_at)?,
        started_at: optional_time(d.started_at.as_deref())?,
        finished_at: optional_time(d.finished_at.as_deref())?,
    })
}

/// A stored time in RFC 3339 (sqlx reads that form first, and writes it).
fn time(text: &str) -> Option<Timestamp> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| Timestamp(t.with_timezone(&Utc)))
}

/// `Some(None)` for a null, `Some(Some(_))` for a time [`time`] reads, `None` otherwise.
fn optional_time(text: Option<&str>) -> Option<Option<Timestamp>> {
    match text {
        None => Some(None),
        Some(t) => time(t).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "id": "01a24e55-6440-7604-bff8-43da081dbd53", "org_id": "o", "task": "echo",
            "status": "failed", "payload": "{\"n\":1,\"s\":\"\\u0000é\\\"\"}",
            "result": null, "error": "{\"code\":\"task_failed\",\"message\":\"boom\"}",
            "priority": -3, "attempts": 2, "max_attempts": 3,
            "run_at": "2026-12-07T02:55:52.070913+00:00", "actor_type": "api_key",
            "actor_id": "kid", "idempotency_key": null, "cancel_requested": 1,
            "created_at": "2026-12-07T02:55:52.070913+00:00",
            "updated_at": "2026-12-07T02:55:53.1Z",
            "started_at": "2026-12-07T02:55:52.5+00:00", "finished_at": null,
        })
    }

    #[test]
    fn a_document_reads_as_its_row_would() {
        let job = job_of_doc(&doc().to_string()).expect("reads");
        assert_eq!(job.status, JobStatus::Failed);
        assert_eq!(job.payload, json!({"n": 1, "s": "\u{0}é\""}));
        assert_eq!(job.error.as_ref().map(|e| e.message.as_str()), Some("boom"));
        assert!(job.cancel_requested);
        assert_eq!(job.priority, -3);
        assert_eq!(
            crate::time::format(&job.updated_at.0),
            "2026-12-07T02:55:53.100000Z"
        );
        assert_eq!(job.finished_at, None);
        assert!(job.started_at.is_some());
    }

    #[test]
    fn anything_the_row_path_might_read_otherwise_goes_back_to_it() {
        let with = |key: &str, value: Value| {
            let mut d = doc();
            d[key] = value;
            job_of_doc(&d.to_string())
        };
        // Times sqlx reads in its other forms, or from numbers.
        assert!(with("run_at", json!("2026-12-07 02:55:52.070913")).is_none());
        assert!(with("created_at", json!(1_765_000_000)).is_none());
        assert!(with("started_at", json!("yesterday")).is_none());
        // Values of another type than Velu stores.
        assert!(with("cancel_requested", json!("true")).is_none());
        assert!(with("priority", json!(1.5)).is_none());
        assert!(with("payload", json!({"n": 1})).is_none());
        assert!(with("payload", json!("{not json")).is_none());
        assert!(with("error", json!("{\"code\":\"task_failed\"}")).is_none());
        assert!(with("status", json!("sleeping")).is_none());
        // A document missing a value, or with one more.
        let mut d = doc();
        d.as_object_mut().unwrap().remove("created_at");
        assert!(job_of_doc(&d.to_string()).is_none());
        assert!(with("lease_token", json!("t")).is_none());
        assert!(job_of_doc("not json").is_none());
        // The reference document itself reads.
        assert!(with("cancel_requested", json!(0)).is_some_and(|j| !j.cancel_requested));
    }
}
